/**
 * App-only tokens (client credentials) with msal-node. src/auth is the only
 * importer of msal-node, and msal is loaded lazily so that usage errors, help
 * and cached tokens never pay for its import (~100 ms).
 */
import type { LoadedCertificate, StoreCertificate } from "./certificate.ts";
import { msalSetup, type MsalTarget, tokenResultOf, toTokenError } from "./msal_common.ts";
import { signedAssertion } from "./assertion.ts";

export type AppCredential =
  | { kind: "secret"; secret: string }
  | { kind: "certificate"; certificate: LoadedCertificate }
  | { kind: "store"; certificate: StoreCertificate };

export interface AppTokenRequest extends MsalTarget {
  credential: AppCredential;
  scopes: string[];
}

export interface TokenResult {
  accessToken: string;
  expiresOn: Date | null;
  fromCache: boolean;
}

/** Gets an app token for Exchange Online. Throws `TokenError` (exit 3). */
export async function acquireAppToken(request: AppTokenRequest): Promise<TokenResult> {
  const msal = await import("@azure/msal-node");
  const setup = msalSetup(request);
  const app = new msal.ConfidentialClientApplication({
    auth: {
      ...setup.auth,
      ...credentialConfig(request, setup.auth.authority),
    },
    system: setup.system,
    cache: setup.cache,
  });
  try {
    return tokenResultOf(await app.acquireTokenByClientCredential({ scopes: request.scopes }));
  } catch (error) {
    throw toTokenError(error, setup.network, request.timeoutMs);
  } finally {
    setup.network.close();
  }
}

/** msal-node's credential settings: a secret, a key it signs with, or our store assertion. */
function credentialConfig(request: AppTokenRequest, authority: string) {
  const credential = request.credential;
  switch (credential.kind) {
    case "secret":
      return { clientSecret: credential.secret };
    case "certificate":
      return {
        clientCertificate: {
          thumbprintSha256: credential.certificate.thumbprintSha256,
          privateKey: credential.certificate.privateKeyPem,
          x5c: credential.certificate.chainPem,
        },
      };
    case "store": {
      const { der, signer } = credential.certificate;
      let rs256 = false;
      return {
        // msal calls this for every token request it sends, with the endpoint as `aud`.
        clientAssertion: async (config: { tokenEndpoint?: string }) => {
          const assertion = await signedAssertion(
            {
              clientId: request.clientId,
              audience: config.tokenEndpoint ?? `${authority}/oauth2/v2.0/token`,
              certificate: der,
            },
            (alg, data) => signer.sign(alg, data),
            rs256,
          );
          if (assertion.pssRefused !== undefined) {
            rs256 = true;
            request.onVerbose?.(
              `The key cannot sign with PSS (${assertion.pssRefused}); the assertion is signed ` +
                "with RS256 and x5t (SHA-1) instead",
            );
          }
          return assertion.jwt;
        },
      };
    }
  }
}
