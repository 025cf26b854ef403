/**
 * msal-node's HTTP client, replaced so that we control TLS trust (-CaFile via
 * Deno.createHttpClient), timeouts (-TimeoutSeconds), and error reporting:
 * msal turns every transport failure into a vague `network_error`, so the
 * real cause is kept here and surfaced by token.ts.
 */
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from "@azure/msal-node";

export interface NetworkOptions {
  caCerts: string[];
  timeoutMs: number;
  /** -Proxy (credentials allowed). Without it Deno honours HTTPS_PROXY / NO_PROXY itself. */
  proxy?: URL;
  /** Called once per request with method and URL (for -Verbose). */
  onRequest?: (method: string, url: string) => void;
}

/** Why the last request failed at the transport level (not an HTTP error status). */
export interface TransportFailure {
  url: string;
  error: unknown;
  timedOut: boolean;
}

export class FetchNetworkClient implements INetworkModule {
  #client: Deno.HttpClient | undefined;
  #options: NetworkOptions;
  lastFailure: TransportFailure | undefined;
  /**
   * The last error answer from the authority (HTTP 4xx/5xx with JSON). Some
   * msal flows (device code) drop Entra's AADSTS code and description; this
   * keeps them for the error message.
   */
  lastErrorBody: { error?: string; error_description?: string } | undefined;

  constructor(options: NetworkOptions) {
    this.#options = options;
    // A dedicated client only when extra CAs are given: it adds them to the
    // system roots instead of replacing them.
    this.#client = options.caCerts.length > 0 || options.proxy
      ? Deno.createHttpClient({
        caCerts: options.caCerts,
        proxy: options.proxy ? proxyConfig(options.proxy) : undefined,
      })
      : undefined;
  }

  sendGetRequestAsync<T>(
    url: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    return this.#send<T>("GET", url, options);
  }

  sendPostRequestAsync<T>(
    url: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    return this.#send<T>("POST", url, options);
  }

  async #send<T>(
    method: string,
    url: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    this.#options.onRequest?.(method, url);
    const signal = AbortSignal.timeout(this.#options.timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers: options?.headers,
        body: method === "POST" ? options?.body ?? "" : undefined,
        signal,
        client: this.#client,
      });
      text = await response.text();
    } catch (error) {
      this.lastFailure = { url, error, timedOut: signal.aborted };
      throw error;
    }
    let body: unknown;
    try {
      body = text === "" ? {} : JSON.parse(text);
    } catch (error) {
      this.lastFailure = {
        url,
        error: new Error(
          `HTTP ${response.status} from ${new URL(url).host} with a body that is not JSON`,
          { cause: error },
        ),
        timedOut: false,
      };
      throw this.lastFailure.error;
    }
    if (response.status >= 400 && body && typeof body === "object") {
      this.lastErrorBody = body as { error?: string; error_description?: string };
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((value, key) => headers[key] = value);
    return { headers, body: body as T, status: response.status };
  }

  close(): void {
    this.#client?.close();
  }
}

/** Deno's proxy settings from a -Proxy URL: the credentials go to basicAuth, not the URL. */
function proxyConfig(proxy: URL): Deno.Proxy {
  const url = `${proxy.protocol}//${proxy.host}`;
  return proxy.username
    ? {
      url,
      basicAuth: {
        username: decodeURIComponent(proxy.username),
        password: decodeURIComponent(proxy.password),
      },
    }
    : { url };
}
