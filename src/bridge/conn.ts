/**
 * The client's connection as the session code (ClientLines, relay) sees it: a plain Deno
 * connection, or TLS on top of one. Deno can start TLS only as a client (`Deno.startTls`), so
 * the server side of STLS/STARTTLS is node:tls's TLSSocket over the same TCP connection; implicit
 * TLS takes the same path (not `Deno.listenTls`: a Deno TLS connection closed during its
 * handshake keeps its TCP socket open in Deno 2.9.6, so a client that never starts the handshake
 * would hold a socket for good; here the handshake has a deadline and the socket is closed).
 * This interface is what both have in common, so one session code serves them all.
 */
import { Duplex } from "node:stream";
import { type SecureContext, TLSSocket } from "node:tls";

export interface BridgeConn {
  /** Bytes into `p`; null at the end of the stream; throws when closed while waiting. */
  read(p: Uint8Array): Promise<number | null>;
  /** Bytes written (at least one); throws when the connection is gone. */
  write(p: Uint8Array): Promise<number>;
  /** Ends the connection; a pending read fails. Never throws. */
  close(): void;
}

/** How long a closed upgraded connection may take to send its last bytes and close_notify. */
const CLOSE_GRACE_MS = 2000;

/**
 * Runs the server side of a TLS handshake on `conn` (after the go-ahead to STLS/STARTTLS) and
 * returns the encrypted connection. Throws when the handshake fails or takes longer than
 * `timeoutMs`; `conn` is closed then.
 */
export async function acceptTls(
  conn: Deno.Conn,
  context: SecureContext,
  timeoutMs: number,
): Promise<BridgeConn> {
  const socket = new TLSSocket(duplexOf(conn), { isServer: true, secureContext: context });
  const secure = Promise.withResolvers<void>();
  const timer = setTimeout(() => secure.reject(new Error("TLS handshake timed out")), timeoutMs);
  const onError = (error: Error) => secure.reject(error);
  socket.once("secure", () => secure.resolve());
  socket.once("error", onError);
  socket.once("close", () => secure.reject(new Error("closed during the TLS handshake")));
  try {
    await secure.promise;
  } catch (error) {
    socket.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
    socket.off("error", onError);
  }
  return new UpgradedConn(socket);
}

/** A Deno connection as the node stream that TLSSocket wraps. */
function duplexOf(conn: Deno.Conn): Duplex {
  const buffer = new Uint8Array(16 * 1024);
  let closed = false;
  const closeConn = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch {
      // already closed
    }
  };
  return new Duplex({
    read() {
      conn.read(buffer).then(
        (n) => this.push(n === null ? null : buffer.slice(0, n)),
        (error) => this.destroy(error),
      );
    },
    write(chunk: Uint8Array, _encoding, done) {
      (async () => {
        for (let sent = 0; sent < chunk.length;) sent += await conn.write(chunk.subarray(sent));
      })().then(() => done(), done);
    },
    final(done) {
      try {
        conn.closeWrite();
      } catch {
        // already closed
      }
      done();
    },
    destroy(error, done) {
      closeConn();
      done(error);
    },
  });
}

class UpgradedConn implements BridgeConn {
  readonly #socket: TLSSocket;
  readonly #chunks: AsyncIterator<Uint8Array>;
  #rest: Uint8Array = new Uint8Array(0);
  #closed = Promise.withResolvers<"closed">();
  #isClosed = false;

  constructor(socket: TLSSocket) {
    this.#socket = socket;
    // Errors arrive through the iterator and the write callbacks; no unhandled 'error' event.
    socket.on("error", () => {});
    this.#chunks = socket[Symbol.asyncIterator]();
  }

  async read(p: Uint8Array): Promise<number | null> {
    if (this.#rest.length === 0) {
      if (this.#isClosed) throw new Deno.errors.BadResource("the connection is closed");
      const next = await Promise.race([this.#chunks.next(), this.#closed.promise]);
      // Like Deno.Conn: a read waiting when close() is called fails.
      if (next === "closed") throw new Deno.errors.Interrupted("the connection was closed");
      if (next.done) return null;
      this.#rest = next.value;
    }
    const n = Math.min(p.length, this.#rest.length);
    p.set(this.#rest.subarray(0, n));
    this.#rest = this.#rest.subarray(n);
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#isClosed) return Promise.reject(new Deno.errors.BadResource("closed"));
    // A copy: the callers reuse their buffers once write() resolved.
    const bytes = p.slice();
    return new Promise((resolve, reject) => {
      this.#socket.write(bytes, (error) => error ? reject(error) : resolve(bytes.length));
    });
  }

  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#closed.resolve("closed");
    // end(): the data still queued and TLS close_notify go out first (clients such as curl
    // report a connection cut without it); destroy() at the latest after a short grace.
    const timer = setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS);
    Deno.unrefTimer(timer);
    this.#socket.once("close", () => clearTimeout(timer));
    this.#socket.end(() => this.#socket.destroy());
  }
}
