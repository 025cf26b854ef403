/**
 * App-only tokens (client credentials) with msal-node. src/auth is the only
 * importer of msal-node, and msal is loaded lazily so that usage errors, help
 * and cached tokens never pay for its import (~100 ms).
 */
import type { LoadedCertificate } from "./certificate.ts";
import { msalSetup, type MsalTarget, tokenResultOf, toTokenError } from "./msal_common.ts";

export type AppCredential =
  | { kind: "secret"; secret: string }
  | { kind: "certificate"; certificate: LoadedCertificate };

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
  const credential = request.credential;
  const app = new msal.ConfidentialClientApplication({
    auth: {
      ...setup.auth,
      ...(credential.kind === "secret" ? { clientSecret: credential.secret } : {
        clientCertificate: {
          thumbprintSha256: credential.certificate.thumbprintSha256,
          privateKey: credential.certificate.privateKeyPem,
          x5c: credential.certificate.chainPem,
        },
      }),
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
