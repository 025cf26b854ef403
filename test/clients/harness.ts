/**
 * Running real mail clients from a test: child processes with a time limit, a detached tmux
 * for clients that need a terminal, Maildir reading, and an unprivileged user for clients that
 * refuse to run as root.
 */
import { waitUntil } from "../bed/wait.ts";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Killed (SIGTERM) after this long; the result then has `timedOut`. Default 30 s. */
  timeoutMs?: number;
  /** Resolves early, killing the child, once stdout+stderr match. */
  until?: RegExp;
}

/**
 * Runs a program without a terminal (stdin from /dev/null), as cron or a mail fetcher would. It
 * gets a process group of its own, so that a time-out also stops what it started (a shell's
 * curl, a client's token command), which would otherwise keep the output pipes open.
 */
export async function run(
  program: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const child = new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
    detached: true,
  }).spawn();
  let timedOut = false;
  let output = "";
  const kill = () => {
    try {
      Deno.kill(-child.pid, "SIGTERM");
    } catch {
      // the group is gone already
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutMs ?? 30_000);
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let text = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      output += chunk;
      if (options.until?.test(output)) kill();
    }
    return text;
  };
  try {
    const [stdout, stderr, status] = await Promise.all([
      collect(child.stdout),
      collect(child.stderr),
      child.status,
    ]);
    return { code: status.code, stdout, stderr, timedOut };
  } finally {
    clearTimeout(timer);
  }
}

/** Where `program` is on PATH, or null. */
export function which(program: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      const path = `${dir}/${program}`;
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not in this folder
    }
  }
  return null;
}

/** Throws a clear message naming the Debian package when a client is missing. */
export function requireProgram(program: string, debianPackage: string): string {
  const path = which(program);
  if (path === null) {
    throw new Error(
      `${program} is not installed, so this client cannot be tested: ` +
        `apt-get install -y --no-install-recommends ${debianPackage}`,
    );
  }
  return path;
}

/** Cyrus SASL's XOAUTH2 plugin, which mbsync needs for AuthMechs XOAUTH2. */
export function requireKdeXoauth2(): void {
  const dirs = [
    "/usr/lib/x86_64-linux-gnu/sasl2",
    "/usr/lib/aarch64-linux-gnu/sasl2",
    "/usr/lib/sasl2",
  ];
  for (const dir of dirs) {
    try {
      if (Deno.statSync(`${dir}/libkdexoauth2.so`).isFile) return;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    "Cyrus SASL has no XOAUTH2 plugin, so mbsync cannot use AuthMechs XOAUTH2: " +
      "apt-get install -y --no-install-recommends libsasl2-modules-kdexoauth2",
  );
}

export async function writeExecutable(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, 0o755);
}

/** The messages in a Maildir (new/ and cur/), each as its text. */
export async function maildirMessages(maildir: string): Promise<string[]> {
  const messages: string[] = [];
  for (const sub of ["new", "cur"]) {
    try {
      for await (const entry of Deno.readDir(`${maildir}/${sub}`)) {
        if (entry.isFile) messages.push(await Deno.readTextFile(`${maildir}/${sub}/${entry.name}`));
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return messages;
}

/** The Subject header of a message (unfolded headers are not needed for the test's subjects). */
export function subjectOf(message: string): string | undefined {
  return /^Subject: (.*?)\r?$/m.exec(message)?.[1];
}

/**
 * A tmux server of its own (socket in a temp dir, no user config) for a client that needs a
 * terminal. The session runs `command`; when it ends, the session and server go away.
 */
export class Tmux {
  constructor(readonly socket: string) {}

  #tmux(args: string[]): Promise<RunResult> {
    const env: Record<string, string> = { TMUX: "" };
    return run("tmux", ["-S", this.socket, "-f", "/dev/null", ...args], { env, timeoutMs: 10_000 });
  }

  async start(session: string, command: string, size = { width: 160, height: 30 }) {
    const r = await this.#tmux([
      "new-session",
      "-d",
      "-s",
      session,
      "-x",
      String(size.width),
      "-y",
      String(size.height),
      command,
    ]);
    if (r.code !== 0) throw new Error(`tmux new-session failed: ${r.stderr}`);
  }

  /** The visible screen as text; "" once the session has ended. */
  async screen(session: string): Promise<string> {
    const r = await this.#tmux(["capture-pane", "-p", "-t", session]);
    return r.code === 0 ? r.stdout : "";
  }

  /** Polls the screen until it matches; throws with the last screen after `ms`. */
  waitForScreen(session: string, pattern: RegExp, ms = 20_000): Promise<string> {
    let last = "";
    return waitUntil(async () => {
      last = await this.screen(session);
      return pattern.test(last) && last;
    }, { timeoutMs: ms, intervalMs: 100, what: () => `the screen to show ${pattern}:\n${last}` });
  }

  async sendKeys(session: string, ...keys: string[]): Promise<void> {
    const r = await this.#tmux(["send-keys", "-t", session, ...keys]);
    if (r.code !== 0) throw new Error(`tmux send-keys failed: ${r.stderr}`);
  }

  /** Types `text` literally (no key names, no tmux command separators). */
  async type(session: string, text: string): Promise<void> {
    const r = await this.#tmux(["send-keys", "-t", session, "-l", text]);
    if (r.code !== 0) throw new Error(`tmux send-keys -l failed: ${r.stderr}`);
  }

  /** Ends the server and everything in it (no-op when it is already gone). */
  async kill(): Promise<void> {
    await this.#tmux(["kill-server"]);
  }
}

/** The text of `path` once it exists (a client's exit-code file); throws after `ms`. */
export function waitForFile(path: string, ms = 15_000): Promise<string> {
  return waitUntil(() => Deno.readTextFile(path).catch(() => undefined), {
    timeoutMs: ms,
    intervalMs: 100,
    what: `${path} to appear`,
  });
}

/** Deno and the tool's entry point as a client's user can run them. */
export interface Runtime {
  deno: string;
  main: string;
  /** Environment for that user's Deno (its own DENO_DIR when it cannot use ours). */
  env: Record<string, string>;
}

/**
 * The user a client runs as when it refuses root (getmail will not deliver to a Maildir as
 * root): `nobody` when the tests run as root, else the current user (no switch needed).
 */
export interface ClientUser {
  /** Prefix for running a program as that user, e.g. `["runuser", "-u", "nobody", "--"]`. */
  prefix: string[];
  /** Gives `dir` and everything below it to that user. */
  own(dir: string): Promise<void>;
  /**
   * Deno and the project (`root`, with `main` inside it) for that user, copied into `dir`
   * where it cannot read them: root's Deno cache lives in root's home, and a checkout or Deno
   * under /root is out of reach too.
   */
  runtime(dir: string, root: string, main: string): Promise<Runtime>;
}

export function unprivilegedUser(): ClientUser {
  if (Deno.uid() !== 0) {
    return {
      prefix: [],
      own: () => Promise.resolve(),
      runtime: (_dir, _root, main) => Promise.resolve({ deno: Deno.execPath(), main, env: {} }),
    };
  }
  const runuser = requireProgram("runuser", "util-linux");
  const prefix = [runuser, "-u", "nobody", "--"];
  const canRead = async (path: string) =>
    (await run(runuser, ["-u", "nobody", "--", "test", "-r", path])).code === 0;
  const copy = async (args: string[]) => {
    const r = await run("cp", args);
    if (r.code !== 0) throw new Error(`cp ${args.join(" ")} failed: ${r.stderr}`);
  };
  return {
    prefix,
    async own(dir) {
      const r = await run("chown", ["-R", "nobody:", dir]);
      if (r.code !== 0) throw new Error(`chown -R nobody: ${dir} failed: ${r.stderr}`);
    },
    async runtime(dir, root, main) {
      await Deno.mkdir(dir, { recursive: true });
      let deno = Deno.execPath();
      if (!(await canRead(deno))) {
        await copy([deno, `${dir}/deno`]);
        deno = `${dir}/deno`;
      }
      if (!(await canRead(main))) {
        await Deno.mkdir(`${dir}/project`);
        const parts = ["src", "deno.json", "deno.lock"].map((p) => `${root}/${p}`);
        await copy(["-r", ...parts, `${dir}/project/`]);
        main = `${dir}/project/${main.slice(root.length + 1)}`;
      }
      const info = await run(Deno.execPath(), ["info", "--json"]);
      const npmCache = JSON.parse(info.stdout).npmCache as string;
      await copy(["-r", npmCache, `${dir}/npm`]);
      return { deno, main, env: { DENO_DIR: dir } };
    },
  };
}
