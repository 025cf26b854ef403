/**
 * The JWT client assertion for a certificate whose key is elsewhere (the certificate store):
 * built here, signed by whoever holds the key. msal-node signs assertions itself only when it
 * has the key, so for the store it gets this through its `clientAssertion` callback.
 *
 * PS256 with `x5t#S256` first, as msal-node and Entra prefer; a key that cannot sign with PSS
 * (legacy CryptoAPI keys) gets the same claims as RS256 with the SHA-1 `x5t`, which Entra
 * accepts too.
 */

import type { SignResult } from "./store_signer.ts";
import { base64, base64url } from "../base64.ts";

export type AssertionAlgorithm = "PS256" | "RS256";

/** Signs the JWT's `header.payload` bytes with the certificate's key. */
export type AssertionSigner = (alg: AssertionAlgorithm, data: Uint8Array) => Promise<SignResult>;

export interface AssertionRequest {
  clientId: string;
  /** The token endpoint the assertion is for (`aud`). */
  audience: string;
  /** The certificate (DER): its thumbprints go into the header, itself into `x5c`. */
  certificate: Uint8Array;
  /** The whole chain for `x5c`, leaf first (default: the certificate alone). */
  chain?: Uint8Array[];
  now?: Date;
  /** Validity; Entra accepts up to a day, msal-node uses 10 minutes. */
  lifetimeSeconds?: number;
}

export interface Assertion {
  jwt: string;
  alg: AssertionAlgorithm;
  /** Why PS256 was not used, when it was not. */
  pssRefused?: string;
}

/** Builds and signs the assertion; `preferRs256` skips the PSS attempt (known to be refused). */
export async function signedAssertion(
  request: AssertionRequest,
  sign: AssertionSigner,
  preferRs256 = false,
): Promise<Assertion> {
  const now = Math.floor((request.now ?? new Date()).getTime() / 1000);
  const payload = {
    aud: request.audience,
    iss: request.clientId,
    sub: request.clientId,
    jti: crypto.randomUUID(),
    nbf: now,
    iat: now,
    exp: now + (request.lifetimeSeconds ?? 600),
  };
  const x5c = (request.chain ?? [request.certificate]).map((der) => base64(der));
  let pssRefused: string | undefined;
  if (!preferRs256) {
    const header = {
      alg: "PS256",
      typ: "JWT",
      "x5t#S256": base64url(await digest("SHA-256", request.certificate)),
      x5c,
    };
    const input = `${encodeJson(header)}.${encodeJson(payload)}`;
    const result = await sign("PS256", new TextEncoder().encode(input));
    if ("signature" in result) {
      return { jwt: `${input}.${base64url(result.signature)}`, alg: "PS256" };
    }
    pssRefused = result.pssRefused;
  }
  const header = {
    alg: "RS256",
    typ: "JWT",
    x5t: base64url(await digest("SHA-1", request.certificate)),
    x5c,
  };
  const input = `${encodeJson(header)}.${encodeJson(payload)}`;
  const result = await sign("RS256", new TextEncoder().encode(input));
  if (!("signature" in result)) {
    // Only PSS can be refused; an RS256 refusal is a protocol error of the signer.
    throw new Error(`the signer refused RS256 (${result.pssRefused})`);
  }
  return { jwt: `${input}.${base64url(result.signature)}`, alg: "RS256", pssRefused };
}

async function digest(name: "SHA-1" | "SHA-256", data: Uint8Array): Promise<Uint8Array> {
  // A copy: subtle wants an ArrayBuffer-backed view.
  return new Uint8Array(await crypto.subtle.digest(name, new Uint8Array(data)));
}

function encodeJson(value: unknown): string {
  return base64url(new TextEncoder().encode(JSON.stringify(value)));
}
