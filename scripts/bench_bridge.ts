/**
 * The bridge's section of `deno task bench` (issue 17's performance figures), from one run:
 * - a 10 MB message fetched (POP3 RETR) through the bridge against directly from the same
 *   Dovecot over TLS, with the same client code, interleaved (target <= 1.2x);
 * - the latency a login through the bridge adds with a warm token: PASS to "+OK" through the
 *   bridge against a direct XOAUTH2 login to Dovecot (connect, TLS, greeting, AUTH), difference of
 *   the medians (target <= 10 ms); the local password check's own cost is shown beside it;
 * - memory per idle logged-in session: the bridge's VmRSS with none and with N sessions.
 * The bridge runs as in production: `-Bridge config.json` in a child process.
 */
import { APP, MAILBOX, SECRET, TENANT, type TestBed } from "../test/bed/testbed.ts";
import { dovecotPath, startDovecot } from "../test/bed/dovecot.ts";
import { hashPassword, verifyPassword } from "../src/bridge/password.ts";
import { buildXoauth2 } from "../src/sasl/xoauth2.ts";

const main = new URL("../src/main.ts", import.meta.url).pathname;
const LOCAL_USER = "bench";
const LOCAL_PASSWORD = "bench password for the bridge";

export interface BridgeBenchOptions {
  runs: number;
  /** Size of the message fetched; default 10 MB. */
  messageBytes?: number;
  /** Idle sessions for the memory figure; default 200. */
  idleSessions?: number;
}

const mid = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A plain line client over any connection (TLS to Dovecot, TCP to the bridge). */
class Pop3Client {
  #pending = new Uint8Array(0);
  readonly #buffer = new Uint8Array(256 * 1024);
  constructor(readonly conn: Deno.Conn) {}

  static async tls(port: number, caCerts: string[]): Promise<Pop3Client> {
    return new Pop3Client(await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts }));
  }

  static async tcp(port: number): Promise<Pop3Client> {
    return new Pop3Client(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async send(line: string): Promise<void> {
    const bytes = encoder.encode(line + "\r\n");
    for (let sent = 0; sent < bytes.length;) sent += await this.conn.write(bytes.subarray(sent));
  }

  async #fill(): Promise<void> {
    const n = await this.conn.read(this.#buffer);
    if (n === null) throw new Error("the server closed the connection");
    const next = new Uint8Array(this.#pending.length + n);
    next.set(this.#pending);
    next.set(this.#buffer.subarray(0, n), this.#pending.length);
    this.#pending = next;
  }

  async line(): Promise<string> {
    for (;;) {
      const end = this.#pending.indexOf(10);
      if (end >= 0) {
        const line = decoder.decode(this.#pending.subarray(0, end)).replace(/\r$/, "");
        this.#pending = this.#pending.slice(end + 1);
        return line;
      }
      await this.#fill();
    }
  }

  /** Sends `command`, expects "+OK". */
  async ok(command: string): Promise<string> {
    await this.send(command);
    const reply = await this.line();
    if (!reply.startsWith("+OK")) throw new Error(`${command.split(" ")[0]}: ${reply}`);
    return reply;
  }

  /** RETR: the whole multi-line answer; returns its size in bytes. */
  async retr(n: number): Promise<number> {
    await this.send(`RETR ${n}`);
    const first = await this.line();
    if (!first.startsWith("+OK")) throw new Error(`RETR: ${first}`);
    let size = 0;
    let tail = this.#pending;
    this.#pending = new Uint8Array(0);
    // Scan for CRLF.CRLF without keeping the message: only the last bytes matter.
    for (;;) {
      size += tail.length;
      if (endsWithDot(tail)) return size;
      const n = await this.conn.read(this.#buffer);
      if (n === null) throw new Error("closed during RETR");
      const keep = tail.subarray(Math.max(0, tail.length - 4));
      const joined = new Uint8Array(keep.length + n);
      joined.set(keep);
      joined.set(this.#buffer.subarray(0, n), keep.length);
      size -= keep.length;
      tail = joined;
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

function endsWithDot(bytes: Uint8Array): boolean {
  const end = [13, 10, 46, 13, 10];
  if (bytes.length < 5) return false;
  return end.every((b, i) => bytes[bytes.length - 5 + i] === b);
}

/** A message of about `bytes` octets: header, then 76-character lines. */
function bigMessage(bytes: number): string {
  const header = [
    "From: Sender <sender@testbed.localhost>",
    `To: ${MAILBOX}`,
    "Subject: 10 MB for the bridge bench",
    "Message-ID: <bench-big@testbed.localhost>",
    "Date: Mon, 1 Jan 2024 10:00:00 +0000",
    "",
  ].join("\r\n");
  const line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n";
  return header + "\r\n" + line.repeat(Math.ceil(bytes / line.length));
}

/** The bridge as a child process: `-Bridge config`; resolves once it listens. */
async function startBridgeProcess(config: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", main, "-Bridge", config],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  let log = "";
  const ports: Record<string, number> = {};
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const reading = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      log += value;
    }
  })();
  const deadline = Date.now() + 30_000;
  while (Object.keys(ports).length < 2) {
    for (const m of log.matchAll(/listening for (POP3|IMAP) on 127\.0\.0\.1:(\d+)/g)) {
      ports[m[1]] = Number(m[2]);
    }
    if (Date.now() > deadline) throw new Error(`the bridge did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    pid: child.pid,
    /** POP3 to Dovecot, IMAP to the Exchange-like server. */
    ports,
    log: () => log,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await reading;
    },
  };
}

/** CPU time (user + system) a process used so far in ms (Linux), or null. */
function cpuMs(pid: number): number | null {
  try {
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
  } catch {
    return null;
  }
}

/** VmRSS of a process in KiB (Linux), or null. */
function rssKib(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** A token for MAILBOX from the program itself (cached by the bench's earlier runs). */
async function appToken(bed: TestBed): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--quiet",
      main,
      ...bed.common(),
      "-clientId",
      APP,
      "-clientsecret",
      SECRET,
      "-targetMailbox",
      MAILBOX,
      "-OutputFormat",
      "Token",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`no token: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout).trim();
}

export async function bridgeBench(bed: TestBed, options: BridgeBenchOptions): Promise<void> {
  if (dovecotPath() === null) {
    console.log("bridge: skipped (Dovecot not installed)");
    return;
  }
  const runs = options.runs;
  const messageBytes = options.messageBytes ?? 10 * 1024 * 1024;
  const idle = options.idleSessions ?? 200;
  const caCerts = [bed.pki.caPem];
  const dovecot = await startDovecot(bed.dovecotOptions({
    mechanisms: ["xoauth2"],
    seed: { [MAILBOX]: [bigMessage(messageBytes)] },
  }));
  const dir = await Deno.makeTempDir({ prefix: "gia-bench-bridge-" });
  let bridge: Awaited<ReturnType<typeof startBridgeProcess>> | undefined;
  const clients: Pop3Client[] = [];
  try {
    await Deno.writeTextFile(`${dir}/secret`, SECRET, { mode: 0o600 });
    const config = `${dir}/bridge.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        tenantId: TENANT,
        clientId: APP,
        credential: { secretFile: `${dir}/secret` },
        authorityHost: bed.entra.url,
        caFile: bed.pki.caFile,
        listeners: [
          { protocol: "POP3", address: "127.0.0.1", port: 0 },
          // IMAP to the Exchange-like server for the idle sessions: Dovecot allows only 10
          // sessions per user and address (mail_max_userip_connections).
          { protocol: "IMAP", address: "127.0.0.1", port: 0 },
        ],
        upstream: {
          pop3: { host: "127.0.0.1", port: dovecot.pop3sPort },
          imap: { host: "127.0.0.1", port: bed.exchange.imapPort },
        },
        accounts: {
          [LOCAL_USER]: { mailbox: MAILBOX, passwordHash: await hashPassword(LOCAL_PASSWORD) },
        },
        timeouts: { upstreamSeconds: 30, idleSeconds: 600, shutdownSeconds: 1 },
        // All the idle sessions come from this host.
        maxSessionsPerAddress: idle + 20,
      }),
      { mode: 0o600 },
    );
    bridge = await startBridgeProcess(config);
    const b = bridge;
    const sasl = buildXoauth2(MAILBOX, await appToken(bed));

    const direct = async () => {
      const started = performance.now();
      const c = await Pop3Client.tls(dovecot.pop3sPort, caCerts);
      await c.line();
      // As the bridge logs in upstream: the two-line form Exchange needs.
      await c.send("AUTH XOAUTH2");
      const ready = await c.line();
      if (!ready.startsWith("+")) throw new Error(`AUTH XOAUTH2: ${ready}`);
      await c.ok(sasl);
      return { c, login: performance.now() - started };
    };
    const viaBridge = async () => {
      const c = await Pop3Client.tcp(b.ports.POP3);
      await c.line();
      await c.ok(`USER ${LOCAL_USER}`);
      const started = performance.now();
      await c.ok(`PASS ${LOCAL_PASSWORD}`);
      return { c, login: performance.now() - started };
    };
    const fetch = async (open: () => Promise<{ c: Pop3Client; login: number }>) => {
      const { c, login } = await open();
      try {
        const started = performance.now();
        const size = await c.retr(1);
        const ms = performance.now() - started;
        await c.ok("QUIT");
        return { login, ms, size };
      } finally {
        c.close();
      }
    };
    // Warm-up: the bridge's token, TLS and Dovecot's caches.
    await fetch(direct);
    const first = await fetch(viaBridge);
    const t = { directRetr: [] as number[], bridgeRetr: [] as number[] };
    const l = { direct: [] as number[], bridge: [] as number[] };
    const cpu = { direct: 0, bridge: 0, client: 0 };
    for (let i = 0; i < runs; i++) {
      let self = cpuMs(Deno.pid) ?? 0;
      const d = await fetch(direct);
      cpu.direct += (cpuMs(Deno.pid) ?? 0) - self;
      self = cpuMs(Deno.pid) ?? 0;
      const relay = cpuMs(b.pid) ?? 0;
      const v = await fetch(viaBridge);
      cpu.client += (cpuMs(Deno.pid) ?? 0) - self;
      cpu.bridge += (cpuMs(b.pid) ?? 0) - relay;
      t.directRetr.push(d.ms);
      t.bridgeRetr.push(v.ms);
      l.direct.push(d.login);
      l.bridge.push(v.login);
    }
    const scrypt: number[] = [];
    const hash = await hashPassword(LOCAL_PASSWORD);
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      await verifyPassword(LOCAL_PASSWORD, hash, null);
      scrypt.push(performance.now() - started);
    }
    const mb = (first.size / 1024 / 1024).toFixed(1);
    const [dr, br] = [mid(t.directRetr), mid(t.bridgeRetr)];
    console.log(`bridge: median of ${runs} runs each, interleaved (Dovecot over TLS, POP3)`);
    console.log(`RETR ${mb} MB directly from Dovecot (TLS)        ${dr.toFixed(0).padStart(5)} ms`);
    console.log(`RETR ${mb} MB through the bridge                 ${br.toFixed(0).padStart(5)} ms`);
    console.log(`bridge / direct = ${(br / dr).toFixed(2)} (target <= 1.2)`);
    if (cpuMs(b.pid) !== null) {
      const per = (ms: number) => `${(ms / runs).toFixed(0)} ms`;
      console.log(
        `CPU per fetch (mean): direct, this client ${per(cpu.direct)}; through the bridge, ` +
          `the bridge ${per(cpu.bridge)} + this client ${per(cpu.client)}`,
      );
    }
    const [ld, lb] = [mid(l.direct), mid(l.bridge)];
    console.log(`login directly (connect, TLS, AUTH XOAUTH2)    ${ld.toFixed(1).padStart(7)} ms`);
    console.log(`login through the bridge (PASS to +OK)         ${lb.toFixed(1).padStart(7)} ms`);
    console.log(
      `added login latency = ${(lb - ld).toFixed(1)} ms (target <= 10); the local password ` +
        `check: scrypt ${mid(scrypt).toFixed(1)} ms on a client's first login, then remembered ` +
        `(15 min)`,
    );

    // Memory: idle logged-in sessions through the bridge (to the Exchange-like server).
    await new Promise((r) => setTimeout(r, 500));
    const before = rssKib(b.pid);
    if (before === null) {
      console.log("bridge memory per idle session: skipped (no /proc)");
      return;
    }
    for (let i = 0; i < idle; i++) {
      const c = await Pop3Client.tcp(b.ports.IMAP);
      clients.push(c);
      await c.line();
      await c.send(`a1 LOGIN ${LOCAL_USER} "${LOCAL_PASSWORD}"`);
      for (let line = await c.line(); !line.startsWith("a1 "); line = await c.line()) {
        // untagged lines before the tagged OK
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    const after = rssKib(b.pid) ?? before;
    console.log(
      `bridge RSS idle ${
        (before / 1024).toFixed(1)
      } MiB, with ${idle} idle logged-in IMAP sessions ` +
        `${(after / 1024).toFixed(1)} MiB: ${((after - before) / idle).toFixed(0)} KiB per session`,
    );
  } finally {
    for (const c of clients) c.close();
    await bridge?.stop();
    await dovecot.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
