/**
 * App-only tokens (client credentials): one form POST to Entra's token endpoint
 * (client_credentials.ts), with a secret or a certificate's assertion. msal-node is not
 * needed for this grant (see client_credentials.ts); errors are translated exactly as for
 * msal's flows (msal_common.ts), so codes and advice are the same.
 */
import type { LoadedCertificate, StoreCertificate } from "./certificate.ts";
import { type MsalTarget, networkFor, toTokenError } from "./msal_common.ts";
import {
  certificateAssertion,
  type ClientAuthentication,
  pemKeySigner,
  requestClientCredentialsToken,
} from "./client_credentials.ts";
import { fromBase64 } from "../base64.ts";

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
  const network = networkFor(request);
  try {
    return await requestClientCredentialsToken({
      authority: `${request.authorityHost}/${request.tenantId}`,
      clientId: request.clientId,
      scopes: request.scopes,
      authentication: authenticationOf(request),
      network,
    });
  } catch (error) {
    throw toTokenError(error, network, request.timeoutMs);
  } finally {
    network.close();
  }
}

/** The secret, or an assertion signed by the key in the file or in the certificate store. */
function authenticationOf(request: AppTokenRequest): ClientAuthentication {
  const credential = request.credential;
  switch (credential.kind) {
    case "secret":
      return { kind: "secret", secret: credential.secret };
    case "certificate": {
      const { x5c, privateKeyPem } = credential.certificate;
      return {
        kind: "assertion",
        assertion: certificateAssertion(
          request.clientId,
          x5c.map((der) => fromBase64(der)),
          pemKeySigner(privateKeyPem),
        ),
      };
    }
    case "store": {
      const { der, signer } = credential.certificate;
      return {
        kind: "assertion",
        assertion: certificateAssertion(
          request.clientId,
          [der],
          (alg, data) => signer.sign(alg, data),
          (why) =>
            request.onVerbose?.(
              `The key cannot sign with PSS (${why}); the assertion is signed with RS256 and ` +
                "x5t (SHA-1) instead",
            ),
        ),
      };
    }
  }
}
