/** Runs the real CLI as a child process, the way scripts and mail fetchers do. */
import { APP, MAILBOX, SECRET } from "../bed/testbed.ts";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliOptions {
  /** Written to standard input, then closed (a string as UTF-8). */
  stdin?: string | Uint8Array;
  env?: Record<string, string>;
  /** Kills the run after this long (a test of something that must not hang). */
  killAfterMs?: number;
}

export interface SecretArgsOptions {
  /** Default APP. */
  clientId?: string;
  /** Default SECRET; "-" reads it from standard input. */
  secret?: string;
  /** Default MAILBOX; null leaves -targetMailbox out (-MailboxFile, or given later). */
  mailbox?: string | null;
}

/**
 * The app-secret sign-in of the test bed's apps: `-clientId APP -clientsecret SECRET
 * -targetMailbox MAILBOX`, each value replaceable. Callers put the tenant and the test bed's
 * endpoints (`bed.common()`) before it.
 */
export function secretArgs(
  { clientId = APP, secret = SECRET, mailbox = MAILBOX }: SecretArgsOptions = {},
): string[] {
  const target = mailbox === null ? [] : ["-targetMailbox", mailbox];
  return ["-clientId", clientId, "-clientsecret", secret, ...target];
}

export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    // Deno's own update check would go through a test's HTTPS_PROXY (CONNECT dl.deno.land).
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...options.env },
    signal: options.killAfterMs === undefined
      ? undefined
      : AbortSignal.timeout(options.killAfterMs),
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    const bytes = typeof options.stdin === "string"
      ? new TextEncoder().encode(options.stdin)
      : options.stdin;
    // A child that stops reading early (a size limit) closes the pipe: not our failure.
    await writer.write(bytes).catch(() => {});
    await writer.close().catch(() => {});
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    ms: performance.now() - started,
  };
}

/** The run's JSON output; a readable failure (with both streams) when stdout is not JSON. */
// deno-lint-ignore no-explicit-any
export function json(r: CliResult): any {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}

/** A TCP listener that only counts connections: proof that bad input makes no traffic. */
export function tripwire(): { port: number; count: () => number; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let count = 0;
  (async () => {
    try {
      for await (const conn of listener) {
        count++;
        conn.close();
      }
    } catch {
      // listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    count: () => count,
    close: () => listener.close(),
  };
}

/** A running CLI whose stderr can be watched line by line and whose stdin can be written. */
export interface LiveCli {
  /** Resolves with the first stderr line matching `pattern` (rejects after `ms`). */
  waitForStderr(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Everything it wrote to stderr so far. */
  readonly stderr: string;
  writeStdin(text: string): Promise<void>;
  closeStdin(): Promise<void>;
  /** Sends a signal to the CLI (e.g. SIGTERM to stop a long-running `-Bridge`). */
  kill(signal: Deno.Signal): void;
  done: Promise<CliResult>;
}

export function spawnCli(args: string[], options: { env?: Record<string, string> } = {}): LiveCli {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    // Deno's own update check would go through a test's HTTPS_PROXY (CONNECT dl.deno.land).
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...options.env },
  }).spawn();
  const writer = child.stdin.getWriter();
  let stderr = "";
  const waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = stderr.match(w.pattern);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  const stderrDone = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += chunk;
      check();
    }
  })();
  const stdoutText = new Response(child.stdout).text();
  const done = (async () => {
    const status = await child.status;
    await stderrDone;
    await writer.close().catch(() => {});
    return { code: status.code, stdout: await stdoutText, stderr, ms: performance.now() - started };
  })();
  return {
    waitForStderr(pattern, ms = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no stderr line matching ${pattern} within ${ms} ms:\n${stderr}`)),
          ms,
        );
        waiters.push({
          pattern,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
        check();
      });
    },
    get stderr() {
      return stderr;
    },
    writeStdin: (text) => writer.write(new TextEncoder().encode(text)),
    closeStdin: () => writer.close().catch(() => {}),
    kill: (signal) => {
      try {
        child.kill(signal);
      } catch {
        // it has ended already
      }
    },
    done,
  };
}
