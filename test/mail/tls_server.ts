/**
 * Tiny local servers for transport tests: a TLS server and a plain TCP server
 * on 127.0.0.1 with an ephemeral port, each running a handler per connection.
 * `close()` stops accepting, closes every connection and waits for the
 * handlers, so Deno's resource and op sanitizers stay happy.
 */

import { type ServerPki, signServerCertificate } from "../bed/pki.ts";

export interface TestServer {
  port: number;
  /** Errors thrown by handlers (e.g. a handshake the client aborted). */
  errors: unknown[];
  close(): Promise<void>;
}

type Handler<C extends Deno.Conn> = (conn: C) => Promise<unknown>;

function serve<C extends Deno.Conn>(listener: Deno.Listener<C>, handler: Handler<C>): TestServer {
  const conns = new Set<C>();
  const handlers: Promise<unknown>[] = [];
  const errors: unknown[] = [];
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      handlers.push(handler(conn).catch((error) => void errors.push(error)));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    errors,
    async close() {
      listener.close();
      await loop;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // the handler closed it already
        }
      }
      await Promise.all(handlers);
    },
  };
}

/** A TLS server presenting `cert`/`key` (PEM). */
export function serveTls(
  tls: { certPem: string; keyPem: string },
  handler: Handler<Deno.TlsConn>,
): TestServer {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: tls.certPem,
    key: tls.keyPem,
  });
  return serve(listener, handler);
}

/** A plain TCP server (e.g. one that never starts TLS). */
export function serveTcp(handler: Handler<Deno.TcpConn>): TestServer {
  return serve(Deno.listen({ hostname: "127.0.0.1", port: 0 }), handler);
}

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * A server certificate signed by `pki`'s CA but valid only for `name`, to
 * test hostname checks against a CA the client trusts.
 */
export async function makeCertForName(
  pki: ServerPki,
  name: string,
): Promise<{ certPem: string; keyPem: string }> {
  const base = `other-${name.replace(/[^A-Za-z0-9.-]/g, "_")}`;
  return await signServerCertificate(pki.dir, pki.caFile, base, name, `DNS:${name}`);
}
