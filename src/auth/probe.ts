/**
 * -Diagnose's first network check: is the authority reachable over trusted
 * TLS, and does it know the tenant? One GET of the tenant's OpenID
 * configuration, the same document msal would fetch.
 */
import { receivedCode, TokenError } from "../errors.ts";
import { aadstsCode, describeTransport, entraDescription } from "./msal_common.ts";
import { FetchNetworkClient } from "./network.ts";
import type { ProxyRoute } from "../net/proxy_choice.ts";

export async function probeAuthority(target: {
  authorityHost: string;
  tenantId: string;
  caCerts: string[];
  timeoutMs: number;
  proxy?: URL;
  proxyRoute?: ProxyRoute;
}): Promise<void> {
  const network = new FetchNetworkClient({
    caCerts: target.caCerts,
    timeoutMs: target.timeoutMs,
    proxy: target.proxy,
    route: target.proxyRoute,
  });
  const url = `${target.authorityHost}/${target.tenantId}/v2.0/.well-known/openid-configuration`;
  try {
    const response = await network.sendGetRequestAsync<Record<string, unknown>>(url);
    if (response.status === 200) return;
    // Retries used up on 429/5xx: Entra is unwell, which says nothing about the tenant.
    if (network.gaveUp) {
      throw new TokenError(`Entra ID refused the request: ${network.gaveUp.message}`, {
        code: receivedCode(network.gaveUp.code),
      });
    }
    const description = String(response.body?.error_description ?? `HTTP ${response.status}`);
    throw new TokenError(`Entra ID does not know the tenant: ${entraDescription(description)}`, {
      code: aadstsCode({ errorMessage: description }) ?? `HTTP_${response.status}` as const,
    });
  } catch (error) {
    if (error instanceof TokenError) throw error;
    if (network.lastFailure) throw describeTransport(network.lastFailure, target.timeoutMs);
    throw new TokenError(`cannot read ${url}`, { code: "NETWORK_ERROR", cause: error });
  } finally {
    network.close();
  }
}
