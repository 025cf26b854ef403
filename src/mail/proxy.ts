/**
 * Mail connections through an HTTP proxy with CONNECT (often the only way out
 * of a corporate network). The proxy's credentials are secrets: they go into
 * the Proxy-Authorization header and nowhere else.
 */
import { ConnectionError } from "../errors.ts";
import { describeProxy, type ProxyRoute, unreachableMessage } from "../net/proxy_choice.ts";
import { base64 } from "../base64.ts";

export interface ProxyDialOptions {
  proxy: ProxyRoute;
  host: string;
  port: number;
  timeoutMs: number;
}

function basicAuth(proxy: URL): string | null {
  if (!proxy.username) return null;
  const user = decodeURIComponent(proxy.username);
  const pass = decodeURIComponent(proxy.password);
  return base64(new TextEncoder().encode(`${user}:${pass}`));
}

/** Opens a TCP tunnel to host:port through the proxy; TLS (if any) runs inside it. */
export async function dialThroughProxy(options: ProxyDialOptions): Promise<Deno.TcpConn> {
  const { host, port, timeoutMs } = options;
  const proxy = options.proxy.url;
  // "the proxy host:port (from -Proxy)": never its credentials.
  const via = describeProxy(options.proxy);
  const signal = AbortSignal.timeout(timeoutMs);
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({
      hostname: proxy.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: Number(proxy.port || 80),
      signal,
    });
  } catch (cause) {
    throw new ConnectionError(
      signal.aborted
        ? `no answer from ${via} within ${timeoutMs / 1000} s`
        : unreachableMessage(options.proxy, String((cause as Error)?.message ?? cause)),
      { code: signal.aborted ? "TIMEOUT" : "PROXY_UNREACHABLE", cause },
    );
  }
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const auth = basicAuth(proxy);
    const target = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    const request = `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n` +
      (auth ? `Proxy-Authorization: Basic ${auth}\r\n` : "") + "\r\n";
    await conn.write(new TextEncoder().encode(request));
    // Read the reply head byte by byte: nothing after it may be consumed, the
    // tunnel's first bytes belong to the mail protocol or the TLS handshake.
    const one = new Uint8Array(1);
    let head = "";
    while (!head.endsWith("\r\n\r\n")) {
      const n = await conn.read(one);
      if (n === null) throw new Error("the proxy closed the connection");
      head += String.fromCharCode(one[0]);
      if (head.length > 16384) throw new Error("the proxy's answer is too long");
    }
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
    if (status === 200) return conn;
    conn.close();
    if (status === 407) {
      throw new ConnectionError(
        `${via} refused the credentials (HTTP 407)` +
          (proxy.username ? "" : "; give them in -Proxy http://user:password@host:port"),
        { code: "PROXY_AUTH_FAILED" },
      );
    }
    throw new ConnectionError(
      `${via} refused the connection to ${target} (HTTP ${status || "?"})`,
      { code: "PROXY_REFUSED" },
    );
  } catch (error) {
    try {
      conn.close();
    } catch { /* already closed */ }
    if (error instanceof ConnectionError) throw error;
    throw new ConnectionError(`${via} failed: ${(error as Error).message}`, {
      code: "PROXY_REFUSED",
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
}
