/**
 * A listener's accept loop that survives accept errors. `for await (const conn of listener)`
 * ends at the first error, so running out of file descriptors (EMFILE) or a client aborting
 * during the accept (ECONNABORTED) would stop that listener for good while the process keeps
 * running. Here only a closed listener (or the shutdown) ends the loop; any other error is logged
 * and the loop accepts again after a short pause (200 ms, doubling up to 1 s) so that a lasting
 * error such as EMFILE does not spin the CPU while sessions end and free descriptors.
 */
import { messageOf } from "../errors.ts";

/** What the loop needs of a listener (a `Deno.Listener` in production). */
export interface Acceptor<C> {
  accept(): Promise<C>;
}

export interface AcceptLoopOptions {
  /** Where it listens, for the log line (`127.0.0.1:1110`). */
  label: string;
  log: (line: string) => void;
  /** True once the shutdown began: the next error ends the loop. */
  stopping: () => boolean;
  sleep?: (ms: number) => Promise<void>;
}

export const FIRST_RETRY_MS = 200;
export const MAX_RETRY_MS = 1000;

/** Accepts until the listener is closed; hands each connection to `onConn`. */
export async function acceptLoop<C>(
  listener: Acceptor<C>,
  onConn: (conn: C) => void,
  options: AcceptLoopOptions,
): Promise<void> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let pauseMs = FIRST_RETRY_MS;
  while (!options.stopping()) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (
        options.stopping() || error instanceof Deno.errors.BadResource ||
        error instanceof Deno.errors.Interrupted
      ) return; // the listener was closed
      const message = messageOf(error);
      options.log(`bridge: accepting on ${options.label} failed: ${message}; retrying`);
      await sleep(pauseMs);
      pauseMs = Math.min(pauseMs * 2, MAX_RETRY_MS);
      continue;
    }
    pauseMs = FIRST_RETRY_MS;
    onConn(conn);
  }
}
