/**
 * A small HTTP proxy for the test bed that only speaks CONNECT (what corporate
 * proxies allow for TLS), records every request, and can demand Basic
 * credentials (407 otherwise). It tunnels bytes both ways.
 */

export interface ProxyRequest {
  method: string;
  /** host:port asked for. */
  target: string;
  /** The Proxy-Authorization header, decoded ("user:pass"), if any. */
  credentials: string | null;
  status: number;
}

export interface TestProxy {
  url: string;
  port: number;
  requests: ProxyRequest[];
  close(): Promise<void>;
}

export function startProxy(options: { credentials?: string } = {}): TestProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const requests: ProxyRequest[] = [];
  const open = new Set<Deno.Conn>();
  const tunnels = new Set<Promise<void>>();

  async function readHead(conn: Deno.Conn): Promise<string | null> {
    const buffer = new Uint8Array(8192);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) return null;
      head += new TextDecoder().decode(buffer.subarray(0, n));
      if (head.length > 16384) return null;
    }
    return head;
  }

  async function handle(client: Deno.Conn): Promise<void> {
    open.add(client);
    try {
      const head = await readHead(client);
      if (!head) return;
      const [requestLine, ...headerLines] = head.split("\r\n");
      const [method, target] = requestLine.split(" ");
      const auth = headerLines.find((h) => /^proxy-authorization:/i.test(h));
      const credentials = auth ? atob(auth.replace(/^[^:]+:\s*Basic\s+/i, "").trim()) : null;
      const record: ProxyRequest = { method, target, credentials, status: 0 };
      requests.push(record);
      const reply = async (status: number, text: string, extra = "") => {
        record.status = status;
        await client.write(new TextEncoder().encode(`HTTP/1.1 ${status} ${text}\r\n${extra}\r\n`));
      };
      if (method !== "CONNECT") return await reply(405, "Method Not Allowed");
      if (options.credentials && credentials !== options.credentials) {
        return await reply(
          407,
          "Proxy Authentication Required",
          'Proxy-Authenticate: Basic realm="test"\r\n',
        );
      }
      const [host, portText] = target.split(/:(?=\d+$)/);
      let upstream: Deno.Conn;
      try {
        upstream = await Deno.connect({ hostname: host, port: Number(portText) });
      } catch {
        return await reply(502, "Bad Gateway");
      }
      open.add(upstream);
      await reply(200, "Connection established");
      const pipe = (from: Deno.Conn, to: Deno.Conn) =>
        from.readable.pipeTo(to.writable, { preventClose: false }).catch(() => {});
      await Promise.race([pipe(client, upstream), pipe(upstream, client)]);
      try {
        upstream.close();
      } catch { /* already closed */ }
      open.delete(upstream);
    } finally {
      try {
        client.close();
      } catch { /* already closed */ }
      open.delete(client);
    }
  }

  const loop = (async () => {
    try {
      for await (const conn of listener) {
        const t = handle(conn).catch(() => {});
        tunnels.add(t);
        t.finally(() => tunnels.delete(t));
      }
    } catch { /* closed */ }
  })();

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    async close() {
      listener.close();
      for (const c of open) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await loop;
      await Promise.all([...tunnels]);
    },
  };
}
