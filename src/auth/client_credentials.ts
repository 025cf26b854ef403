/**
 * The client-credentials grant (RFC 6749 §4.4 with Entra's v2.0 endpoint) as one form POST,
 * without msal-node: importing msal costs ~90 ms of a ~370 ms fresh check, and for this grant
 * it adds nothing our own code does not do already — the authority is fixed (no discovery),
 * the HTTP client with its retries, deadline and error reporting is ours (network.ts), the
 * persistent cache is ours (cache.ts), and the assertion for a certificate is built by
 * assertion.ts (as for the certificate store). User sign-ins keep msal-node (user.ts).
 *
 * What goes on the wire is what msal-node sends for this grant: `client_id`, `scope`,
 * `grant_type=client_credentials`, and either `client_secret` or a JWT `client_assertion`
 * (PS256 with `x5t#S256` and `x5c`, `aud` = the token endpoint), and a `client-request-id`
 * that Entra's answer (and so our errors) carries as the Correlation ID.
 */
import { messageOf, ToolError, UsageError } from "../errors.ts";
import { fromBase64 } from "../base64.ts";
import { type AssertionSigner, signedAssertion } from "./assertion.ts";
import type { FetchNetworkClient } from "./network.ts";
import { tokenResultOf } from "./msal_common.ts";

/** How the request proves the app's identity. */
export type ClientAuthentication =
  | { kind: "secret"; secret: string }
  | { kind: "assertion"; assertion: (audience: string) => Promise<string> };

export interface ClientCredentialsRequest {
  /** `https://host/tenant` */
  authority: string;
  clientId: string;
  scopes: string[];
  authentication: ClientAuthentication;
  network: FetchNetworkClient;
  now?: () => number;
}

/**
 * Entra's error answer (RFC 6749 §5.2 plus Entra's numbers), with msal-node's field names, so
 * that msal_common.ts's toTokenError() turns it into the same TokenError as msal's errors.
 */
export class EntraRefusal extends Error {
  override readonly name = "EntraRefusal";
  constructor(
    readonly errorCode: string,
    readonly errorMessage: string,
    readonly errorNo?: string,
  ) {
    super(errorMessage);
  }
}

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/**
 * Requests an app token. Resolves with the token; rejects with an `EntraRefusal` when
 * Entra refused (for toTokenError), or with what the network client threw.
 */
export async function requestClientCredentialsToken(
  request: ClientCredentialsRequest,
): Promise<{ accessToken: string; expiresOn: Date | null; fromCache: boolean }> {
  const tokenEndpoint = `${request.authority}/oauth2/v2.0/token`;
  const form = new URLSearchParams({
    client_id: request.clientId,
    scope: request.scopes.join(" "),
    grant_type: "client_credentials",
    // In the body, as msal-node sends it: Entra answers with it as the Correlation ID.
    "client-request-id": crypto.randomUUID(),
  });
  const auth = request.authentication;
  if (auth.kind === "secret") {
    form.set("client_secret", auth.secret);
  } else {
    form.set("client_assertion_type", ASSERTION_TYPE);
    form.set("client_assertion", await signed(auth.assertion, tokenEndpoint));
  }
  const sentAt = (request.now ?? Date.now)();
  const answer = await request.network.sendPostRequestAsync<Record<string, unknown>>(
    tokenEndpoint,
    {
      headers: { "Content-Type": "application/x-www-form-urlencoded;charset=utf-8" },
      body: form.toString(),
    },
  );
  const body = answer.body ?? {};
  if (answer.status >= 400 || typeof body.error === "string") {
    const codes = Array.isArray(body.error_codes) ? body.error_codes : [];
    throw new EntraRefusal(
      typeof body.error === "string" ? body.error : `HTTP_${answer.status}`,
      typeof body.error_description === "string" ? body.error_description : `HTTP ${answer.status}`,
      codes.length > 0 ? String(codes[0]) : undefined,
    );
  }
  // Entra sends expires_in as a number; some proxies and older stacks send a string.
  const seconds = Number(body.expires_in);
  // An answer without a token is an error, as for msal's flows.
  return tokenResultOf({
    accessToken: typeof body.access_token === "string" ? body.access_token : undefined,
    expiresOn: Number.isFinite(seconds) && seconds > 0 ? new Date(sentAt + seconds * 1000) : null,
    fromCache: false,
  });
}

/**
 * The assertion, or an error that says the key failed here: nothing was sent, so it must not read
 * as Entra's refusal (the store's signer reports its own errors already).
 */
async function signed(
  assertion: (audience: string) => Promise<string>,
  audience: string,
): Promise<string> {
  try {
    return await assertion(audience);
  } catch (error) {
    if (error instanceof ToolError) throw error;
    const why = messageOf(error);
    throw new UsageError(
      `-clientcertificate: the certificate's key cannot sign the client assertion (${why})`,
      { code: "CERT_SIGN_FAILED", cause: error },
    );
  }
}

/**
 * Signs assertions with an RSA key held here (a PEM or PFX file): WebCrypto, so nothing is
 * imported. PS256 uses a salt as long as the hash (RFC 7518 §3.5). The key is PKCS#8
 * ("PRIVATE KEY"): certificate.ts exports every key it reads (PKCS#1, encrypted, PFX) that way.
 */
export function pemKeySigner(privateKeyPem: string): AssertionSigner {
  const der = new Uint8Array(fromBase64(
    privateKeyPem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, "").replace(/\s+/g, ""),
  ));
  // One signature per run (RS256 only if PS256 were refused): the key is imported for it.
  return async (alg, data) => {
    const algorithm = alg === "PS256"
      ? { name: "RSA-PSS", saltLength: 32 }
      : { name: "RSASSA-PKCS1-v1_5" };
    const key = await crypto.subtle.importKey(
      "pkcs8",
      der,
      { name: algorithm.name, hash: "SHA-256" },
      false,
      ["sign"],
    );
    const signature = await crypto.subtle.sign(algorithm, key, new Uint8Array(data));
    return { signature: new Uint8Array(signature) };
  };
}

/** An assertion builder for a certificate whose key signs through `sign`. */
export function certificateAssertion(
  clientId: string,
  certificates: Uint8Array[],
  sign: AssertionSigner,
  onPssRefused?: (why: string) => void,
): (audience: string) => Promise<string> {
  let rs256 = false;
  return async (audience) => {
    const assertion = await signedAssertion(
      { clientId, audience, certificate: certificates[0], chain: certificates },
      sign,
      rs256,
    );
    if (assertion.pssRefused !== undefined) {
      rs256 = true;
      onPssRefused?.(assertion.pssRefused);
    }
    return assertion.jwt;
  };
}
