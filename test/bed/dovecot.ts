/**
 * Runs Debian's real Dovecot 2.3 as an XOAUTH2 IMAP/POP3/submission server for
 * end-to-end tests. Each start gets a fresh temp dir with its own config,
 * sockets, log, keys and Maildirs, so runs never share state (stale sockets in
 * a reused base_dir break auth). Access tokens are RS256 JWTs that Dovecot
 * validates locally against the public key we drop into `keys/`.
 *
 * The settings follow test-bed.md, where each of them was verified on this
 * kind of machine; the comments say why the non-obvious ones are there.
 */

import { freePort } from "./ports.ts";
import { waitUntil } from "./wait.ts";

export interface DovecotOptions {
  tls: { certFile: string; keyFile: string };
  /** Accepted `iss` values. */
  issuers: string[];
  /** Public key (SPKI PEM) that signs valid tokens; `kid` is the JWT header's `kid`. */
  signingKey: { kid: string; publicKeyPem: string };
  /** Mailbox address -> number of messages to seed into its Maildir (for POP3 STAT). */
  messages?: Record<string, number>;
  /** Claim that must equal the XOAUTH2 `user=`; default `email`. */
  usernameAttribute?: "email" | "upn" | "preferred_username";
  /**
   * SASL mechanisms offered; default both. `["xoauth2"]` offers what Exchange Online offers, so
   * a client that prefers OAUTHBEARER (curl) must take the XOAUTH2 path it takes there.
   */
  mechanisms?: ("xoauth2" | "oauthbearer")[];
  /** Mailbox address -> whole messages (header, blank line, body) to put into its Maildir. */
  seed?: Record<string, string[]>;
  /**
   * Adds a deny list in front of the token check, so a test can make the server refuse a
   * mailbox whose tokens are still valid (see denyLogins).
   */
  denyList?: boolean;
}

export interface Dovecot {
  host: "127.0.0.1";
  imapsPort: number;
  pop3sPort: number;
  /** Plain submission (STARTTLS available); it relays into a sink that keeps mail in `relayed`. */
  submissionPort?: number;
  /** Messages submission relayed to the sink so far, in order (live). */
  relayed: RelayedMessage[];
  dir: string;
  /** Dovecot's log plus anything it printed on stderr, for failure messages. */
  log(): Promise<string>;
  /** Stops Dovecot, waits for it, stops the relay sink and removes the dir. */
  stop(): Promise<void>;
}

/** A message Dovecot's submission service handed to its relay (the sink). */
export interface RelayedMessage {
  from: string;
  to: string[];
  /** The message as relayed (with Dovecot's added headers): CRLF lines, dot stuffing undone. */
  data: string;
}

const CANDIDATES = ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"];
const START_DEADLINE_MS = 15_000;
const INSTALL_HINT =
  "Dovecot is not installed: run `apt-get install -y dovecot-imapd dovecot-pop3d dovecot-submissiond`";

/** Path of the dovecot binary, or null when Dovecot is not installed. */
export function dovecotPath(): string | null {
  for (const path of CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not there; try the next one
    }
  }
  return null;
}

/** Starts Dovecot in the foreground and resolves once all its ports accept connections. */
export async function startDovecot(options: DovecotOptions): Promise<Dovecot> {
  const binary = dovecotPath();
  if (binary === null) throw new Error(INSTALL_HINT);

  const dir = await Deno.makeTempDir({ prefix: "gia-dovecot-" });
  const sink = startSmtpSink();
  let child: Deno.ChildProcess | undefined;
  let stderr = Promise.resolve("");
  const cleanup = async () => {
    if (child) {
      killGroup(child.pid);
      await child.status;
      running.delete(child.pid);
    }
    await stderr;
    await sink.close();
    await removeDir(dir);
  };

  try {
    const ports = {
      imaps: await freePort(),
      pop3s: await freePort(),
      submission: await freePort(),
    };
    const owner = await processOwner();
    await writeFiles(dir, options, ports, sink.port, owner);

    // `detached` gives Dovecot its own process group, so stop() can kill the
    // master and all its children at once (see killGroup).
    child = new Deno.Command(binary, {
      args: ["-F", "-c", `${dir}/dovecot.conf`],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      detached: true,
    }).spawn();
    watchForExit(child.pid);
    stderr = new Response(child.stderr).text().catch(() => "");
    let exited = false;
    child.status.then(() => exited = true);

    const log = async () => {
      const file = await Deno.readTextFile(`${dir}/dovecot.log`).catch(() => "");
      const err = exited ? await stderr : "";
      return err ? `${file}\n[stderr]\n${err}` : file;
    };

    await waitForPorts([ports.imaps, ports.pop3s, ports.submission], () => exited, log);

    let stopped: Promise<void> | undefined;
    return {
      host: "127.0.0.1",
      imapsPort: ports.imaps,
      pop3sPort: ports.pop3s,
      submissionPort: ports.submission,
      relayed: sink.messages,
      dir,
      log,
      stop: () => stopped ??= cleanup(),
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** Process groups still running, killed when the test process exits without stop(). */
const running = new Set<number>();
let unloadHooked = false;

function watchForExit(pid: number): void {
  running.add(pid);
  if (unloadHooked) return;
  unloadHooked = true;
  globalThis.addEventListener("unload", () => {
    for (const group of running) killGroup(group);
  });
}

/**
 * SIGKILL to the whole group. A graceful SIGTERM costs at least 1.1 s, and
 * about 6 s when a login process is still starting up (as right after the
 * port probe); the dir with all of Dovecot's state is deleted anyway.
 */
function killGroup(pid: number): void {
  try {
    Deno.kill(-pid, "SIGKILL");
  } catch {
    // the group is gone already
  }
}

interface Owner {
  root: boolean;
  user: string;
  group: string;
  /** uid/gid the mail processes run as (and that owns the Maildirs). */
  mailUid: number;
  mailGid: number;
}

/**
 * Dovecot drops privileges to fixed users when started as root (CI and this
 * machine); a normal user must instead run every service as itself.
 */
async function processOwner(): Promise<Owner> {
  if (Deno.uid() === 0) {
    return {
      root: true,
      user: "root",
      group: "root",
      mailUid: Number(await id(["-u", "mail"])),
      mailGid: Number(await id(["-g", "mail"])),
    };
  }
  return {
    root: false,
    user: await id(["-un"]),
    group: await id(["-gn"]),
    mailUid: Deno.uid() ?? 0,
    mailGid: Deno.gid() ?? 0,
  };
}

async function id(args: string[]): Promise<string> {
  const out = await new Deno.Command("id", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`id ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

async function writeFiles(
  dir: string,
  options: DovecotOptions,
  ports: { imaps: number; pop3s: number; submission: number },
  sinkPort: number,
  owner: Owner,
): Promise<void> {
  // The auth process runs as user `dovecot` and must read keys/ and oauth2.conf.ext.
  await Deno.chmod(dir, 0o755);
  const keyDir = `${dir}/keys/default/RS256`;
  await Deno.mkdir(keyDir, { recursive: true });
  await Deno.mkdir(`${dir}/mail`);
  await Deno.writeTextFile(`${keyDir}/${options.signingKey.kid}`, options.signingKey.publicKeyPem);
  await Deno.writeTextFile(`${dir}/oauth2.conf.ext`, oauth2Config(dir, options));
  await Deno.writeTextFile(
    `${dir}/dovecot.conf`,
    dovecotConfig(dir, options, ports, sinkPort, owner),
  );
  await seedMessages(dir, options.messages ?? {});
  await seedRawMessages(dir, options.seed ?? {});
  // Empty at first; Dovecot re-reads it when it changes. It holds no secrets.
  if (options.denyList) await Deno.writeTextFile(denyFile(dir), "", { mode: 0o644 });
  await chownTree(`${dir}/mail`, owner.mailUid, owner.mailGid);
}

function oauth2Config(dir: string, options: DovecotOptions): string {
  // `issuers` is a space-separated list; an empty active_attribute switches
  // off the "active" check that only introspection responses carry.
  return [
    "introspection_mode = local",
    `local_validation_key_dict = fs:posix:prefix=${dir}/keys/`,
    `username_attribute = ${options.usernameAttribute ?? "email"}`,
    `issuers = ${options.issuers.join(" ")}`,
    "active_attribute =",
    "active_value =",
    "",
  ].join("\n");
}

function dovecotConfig(
  dir: string,
  options: DovecotOptions,
  ports: { imaps: number; pop3s: number; submission: number },
  sinkPort: number,
  owner: Owner,
): string {
  // Dovecot's config has no variables: every path is written out absolute.
  const users = owner.root
    // mail (uid 8) is below the default first_valid_uid of 500.
    ? ["first_valid_uid = 1"]
    : [
      `default_internal_user = ${owner.user}`,
      `default_login_user = ${owner.user}`,
      `default_internal_group = ${owner.group}`,
    ];
  // A non-root master cannot chroot, so the services that chroot by default must not.
  const chroot = owner.root ? "" : "  chroot =\n";
  return `# Written by test/bed/dovecot.ts for one test run.
base_dir = ${dir}/base
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
listen = 127.0.0.1
protocols = imap pop3 submission
${users.join("\n")}

ssl = required
ssl_cert = <${options.tls.certFile}
ssl_key = <${options.tls.keyFile}

auth_mechanisms = ${(options.mechanisms ?? ["xoauth2", "oauthbearer"]).join(" ")}
# Without these two every failed login costs 2 s or more.
auth_failure_delay = 0
auth_verbose = yes
service anvil {
${chroot}  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

${options.denyList ? denyPassdb(dir) : ""}passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${dir}/oauth2.conf.ext
}
userdb {
  driver = static
  args = uid=${owner.mailUid} gid=${owner.mailGid} home=${dir}/mail/%d/%n
}
mail_location = maildir:~/Maildir

service imap-login {
${chroot}  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = ${ports.imaps}
    ssl = yes
  }
}
service pop3-login {
${chroot}  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = ${ports.pop3s}
    ssl = yes
  }
}
service submission-login {
${chroot}  inet_listener submission {
    port = ${ports.submission}
  }
}
# Submission refuses AUTH unless it can reach its relay: a sink in this process.
hostname = testbed.localhost
submission_relay_host = 127.0.0.1
submission_relay_port = ${sinkPort}
`;
}

function maildirOf(dir: string, address: string): string {
  const [local, domain] = address.toLowerCase().split("@");
  return `${dir}/mail/${domain}/${local}/Maildir`;
}

async function seedRawMessages(dir: string, seed: Record<string, string[]>): Promise<void> {
  for (const [address, messages] of Object.entries(seed)) {
    const maildir = maildirOf(dir, address);
    for (const sub of ["cur", "new", "tmp"]) {
      await Deno.mkdir(`${maildir}/${sub}`, { recursive: true });
    }
    for (const [i, message] of messages.entries()) {
      // Names sort in seed order; Dovecot numbers new mail in the order it lists the folder.
      const name = `1700000100.raw${String(i + 1).padStart(4, "0")}.testbed`;
      await Deno.writeTextFile(`${maildir}/new/${name}`, message);
    }
  }
}

function denyFile(dir: string): string {
  return `${dir}/denied-users`;
}

/**
 * A passdb that fails every login of a user listed in the deny file, whatever the token says,
 * the way Exchange refuses a valid token once the app lost its access to the mailbox.
 */
function denyPassdb(dir: string): string {
  return `passdb {
  driver = passwd-file
  args = ${denyFile(dir)}
  deny = yes
}
`;
}

/**
 * From now on Dovecot refuses logins to these mailboxes (needs `denyList: true`), even with a
 * token it would accept: "the app's access was removed" on the mail server's side.
 */
export async function denyLogins(dovecot: Dovecot, addresses: string[]): Promise<void> {
  const file = denyFile(dovecot.dir);
  try {
    await Deno.stat(file);
  } catch (error) {
    throw new Error("denyLogins needs a Dovecot started with denyList: true", { cause: error });
  }
  // passwd-file lines are `user:password:...`; a deny list needs only the user.
  const lines = addresses.map((a) => `${a.toLowerCase()}:\n`).join("");
  await Deno.writeTextFile(file, lines, { append: true });
  // Dovecot looks at a passwd-file's mtime at most once per second (of its own clock): a login
  // in the same second as this write would still see the old list.
  await new Promise((resolve) => setTimeout(resolve, 1100));
}

async function seedMessages(dir: string, messages: Record<string, number>): Promise<void> {
  for (const [address, count] of Object.entries(messages)) {
    const [local, domain] = address.toLowerCase().split("@");
    const maildir = `${dir}/mail/${domain}/${local}/Maildir`;
    for (const sub of ["cur", "new", "tmp"]) {
      await Deno.mkdir(`${maildir}/${sub}`, { recursive: true });
    }
    for (let i = 1; i <= count; i++) {
      const body = [
        `From: sender@testbed.localhost`,
        `To: ${address}`,
        `Subject: Test message ${i}`,
        `Message-ID: <seed-${i}@testbed.localhost>`,
        `Date: Mon, 1 Jan 2024 00:00:00 +0000`,
        "",
        `Seeded message ${i} for ${address}.`,
        "",
      ].join("\n");
      await Deno.writeTextFile(`${maildir}/new/1700000000.seed${i}.testbed`, body);
    }
  }
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  if (Deno.uid() !== 0) return;
  await Deno.chown(path, uid, gid);
  for await (const entry of Deno.readDir(path)) {
    const child = `${path}/${entry.name}`;
    if (entry.isDirectory) await chownTree(child, uid, gid);
    else await Deno.chown(child, uid, gid);
  }
}

async function waitForPorts(
  ports: number[],
  exited: () => boolean,
  log: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  for (const port of ports) {
    await waitUntil(async () => {
      if (exited()) throw new Error(`Dovecot exited during start-up. Log:\n${await log()}`);
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.close();
        return true;
      } catch {
        return false;
      }
    }, {
      timeoutMs: Math.max(1, deadline - Date.now()),
      intervalMs: 25,
      what: async () => `Dovecot to open port ${port}. Log:\n${await log()}`,
    });
  }
}

async function removeDir(dir: string): Promise<void> {
  // Dovecot's children may still be writing for a moment after the master exits.
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await Deno.remove(dir, { recursive: true });
      return;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

interface SmtpSink {
  port: number;
  /** Every message accepted, in order. */
  messages: RelayedMessage[];
  close(): Promise<void>;
}

/**
 * A tiny SMTP server that accepts everything: Dovecot's submission service
 * needs a relay to talk to, and tests check what arrives there.
 */
function startSmtpSink(): SmtpSink {
  const messages: RelayedMessage[] = [];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const handler = serveSmtpSink(conn, messages).finally(() => {
          conns.delete(conn);
          handlers.delete(handler);
        });
        handlers.add(handler);
      }
    } catch {
      // listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    messages,
    async close() {
      listener.close();
      for (const conn of conns) closeQuietly(conn);
      await accepting;
      await Promise.all([...handlers]);
    },
  };
}

async function serveSmtpSink(conn: Deno.Conn, messages: RelayedMessage[]): Promise<void> {
  const encoder = new TextEncoder();
  const send = (line: string) => writeAll(conn, encoder.encode(line + "\r\n"));
  const path = (line: string) => /<([^<>]*)>/.exec(line)?.[1] ?? "";
  let from = "";
  let to: string[] = [];
  let data: string[] | undefined;
  try {
    await send("220 sink.testbed.localhost ESMTP sink");
    for await (const line of crlfLines(conn)) {
      if (data) {
        if (line === ".") {
          messages.push({ from, to, data: data.join("\r\n") });
          [from, to, data] = ["", [], undefined];
          await send("250 2.0.0 Ok: queued");
        } else {
          data.push(line.startsWith(".") ? line.slice(1) : line);
        }
        continue;
      }
      const verb = line.split(" ")[0].toUpperCase();
      if (verb === "MAIL") {
        [from, to] = [path(line), []];
        await send("250 2.1.0 Ok");
      } else if (verb === "RCPT") {
        to.push(path(line));
        await send("250 2.1.5 Ok");
      } else if (verb === "EHLO") {
        await send("250-sink.testbed.localhost");
        await send("250-8BITMIME");
        await send("250 PIPELINING");
      } else if (verb === "DATA") {
        data = [];
        await send("354 End data with <CR><LF>.<CR><LF>");
      } else if (verb === "QUIT") {
        await send("221 2.0.0 Bye");
        break;
      } else {
        await send("250 2.0.0 Ok");
      }
    }
  } catch {
    // the peer went away; nothing to keep
  } finally {
    closeQuietly(conn);
  }
}

async function* crlfLines(conn: Deno.Conn): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  let pending = "";
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) return;
    pending += decoder.decode(buffer.subarray(0, n), { stream: true });
    let end;
    while ((end = pending.indexOf("\r\n")) >= 0) {
      yield pending.slice(0, end);
      pending = pending.slice(end + 2);
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
