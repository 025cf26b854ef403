/**
 * After both logins the bridge is a byte pipe: whatever one side sends goes to the other,
 * unchanged, until either side closes, nothing moved for `idleMs`, the session's time is up
 * (`limitMs`), or `stop` fires (shutdown deadline). Both connections are closed when it ends.
 */
import type { BridgeConn } from "./conn.ts";

export interface RelayOptions {
  idleMs: number;
  /** Bytes already read from the client / server that belong to the other side. */
  clientRest?: Uint8Array;
  serverRest?: Uint8Array;
  /** Ends the relay at once (the shutdown deadline passed). */
  stop?: AbortSignal;
  /** Ends the relay after this long however busy it is (what is left of the session's time). */
  limitMs?: number;
}

export type RelayEnd =
  | "client closed"
  | "server closed"
  | "idle"
  | "error"
  | "stopped"
  | "session limit";

export interface RelayResult {
  /** Bytes from the client to the server, and back. */
  up: number;
  down: number;
  end: RelayEnd;
}

/**
 * One TLS record's worth (16 KiB): a read from a TLS connection returns a record or two (Dovecot
 * sends 4 KiB records), so a larger buffer brings no speed, only memory in every idle session
 * (two buffers each; 64 KiB ones cost some 50-80 KiB more RSS per session in `deno task bench`).
 */
const CHUNK = 16 * 1024;

export async function relay(
  client: BridgeConn,
  server: BridgeConn,
  options: RelayOptions,
): Promise<RelayResult> {
  const result: RelayResult = { up: 0, down: 0, end: "error" };
  // TCP_NODELAY (the client's plain TCP connection; Deno's TLS connections have no setter): with
  // Nagle's algorithm on, as for accepted connections, small chunks (a TLS record's 4 KiB) wait
  // for the client's ACK, and a 10 MB fetch took 1.3-1.6x as long as directly, against ~1.0x.
  for (const c of [client, server]) {
    if ("setNoDelay" in c && typeof c.setNoDelay === "function") c.setNoDelay(true);
  }
  let ended: RelayEnd | undefined;
  let last = performance.now();
  const finish = (why: RelayEnd) => {
    if (ended !== undefined) return;
    ended = why;
    for (const c of [client, server]) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
  };
  const timer = setInterval(() => {
    if (performance.now() - last >= options.idleMs) finish("idle");
  }, Math.min(1000, Math.max(10, options.idleMs / 4)));
  const limit = options.limitMs === undefined
    ? undefined
    : setTimeout(() => finish("session limit"), Math.max(0, options.limitMs));
  const onStop = () => finish("stopped");
  options.stop?.addEventListener("abort", onStop);
  if (options.stop?.aborted) onStop();

  const writeAll = async (to: BridgeConn, bytes: Uint8Array) => {
    for (let sent = 0; sent < bytes.length;) sent += await to.write(bytes.subarray(sent));
  };
  const pump = async (
    from: BridgeConn,
    to: BridgeConn,
    first: Uint8Array | undefined,
    count: (n: number) => void,
    closed: RelayEnd,
  ) => {
    try {
      if (first && first.length > 0) {
        await writeAll(to, first);
        count(first.length);
      }
      const buffer = new Uint8Array(CHUNK);
      while (ended === undefined) {
        const n = await from.read(buffer);
        if (n === null) return finish(closed);
        last = performance.now();
        await writeAll(to, buffer.subarray(0, n));
        count(n);
      }
    } catch {
      finish("error");
    }
  };
  try {
    await Promise.all([
      pump(client, server, options.clientRest, (n) => result.up += n, "client closed"),
      pump(server, client, options.serverRest, (n) => result.down += n, "server closed"),
    ]);
  } finally {
    clearInterval(timer);
    clearTimeout(limit);
    options.stop?.removeEventListener("abort", onStop);
  }
  result.end = ended ?? "error";
  return result;
}
