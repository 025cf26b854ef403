/**
 * An Exchange Online look-alike for tests: IMAP (implicit TLS) and POP3
 * (implicit TLS) that answer with the exact strings recorded in
 * shared/reference/exchange-wire.md and reproduce Exchange's quirks:
 *
 * - IMAP `AUTHENTICATE` succeeds for a valid token even when the app has no
 *   FullAccess on the mailbox; only the next command fails, with
 *   `BAD User is authenticated but not connected.`
 * - POP3 reports the same missing permission as an authentication failure.
 * - Only CRLF ends a line: LF-only lines get no answer until 8 KiB pile up,
 *   then the server says `Connection is closed. 13` and hangs up.
 *
 * Strings that exchange-wire.md does not record are marked "modelling choice".
 * Nothing here writes to stdout and no connection handler ever throws.
 */

export interface ExchangeOptions {
  tls: { certPem: string; keyPem: string };
  /**
   * Public key (SPKI PEM) that signs valid access tokens (RS256). When
   * `issuer` is set, a token's `iss` must start with it.
   */
  tokenKey: { publicKeyPem: string; issuer?: string };
  /** Mailbox (lower-case address) -> principals with FullAccess: app IDs (token `appid`) or user UPNs. */
  mailboxPermissions: Record<string, string[]>;
  /** Mailbox -> message sizes in octets (for POP3 STAT); default: 3 messages. */
  messages?: Record<string, number[]>;
  /** Mailbox -> extra IMAP folders ("/" separated); INBOX and the standard folders are always there. */
  folders?: Record<string, string[]>;
  /** Faults for timeout tests: "silent" = accept TCP+TLS but never send a greeting. */
  behaviour?: "normal" | "silent";
  /** The POP3 SASL continuation line; Exchange has been seen sending both forms. Default "+". */
  pop3Continuation?: "+" | "+ ";
}

export interface ExchangeSession {
  protocol: "IMAP" | "POP3";
  /** Complete lines the client sent (CRLF removed), in order. */
  received: string[];
  /** Lines the server sent (CRLF removed), in order. */
  sent: string[];
}

export interface ExchangeServer {
  host: "127.0.0.1";
  imapPort: number;
  pop3Port: number;
  /** TCP connections accepted so far (both protocols). */
  connections: number;
  /** One entry per accepted connection, in accept order. */
  sessions: ExchangeSession[];
  close(): Promise<void>;
}

/** Exchange's default mailbox contents: 3 messages, 14523 octets (as in exchange-wire.md). */
const DEFAULT_MESSAGES = [4821, 5102, 4600];
/** Longest run of bytes without CRLF before the server gives up on the client. */
const MAX_PENDING_BYTES = 8 * 1024;
const IMAP_CAPABILITIES =
  "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+";
/** The folders every Exchange Online mailbox has, with the attributes Exchange lists. */
const STANDARD_FOLDERS: [string, string[]][] = [
  ["INBOX", []],
  ["Archive", []],
  ["Deleted Items", ["\\Trash"]],
  ["Drafts", ["\\Drafts"]],
  ["Junk Email", ["\\Junk"]],
  ["Outbox", []],
  ["Sent Items", ["\\Sent"]],
];
/**
 * Audiences Exchange accepts. `outlook.office.com` is what delegated
 * `https://outlook.office.com/IMAP.AccessAsUser.All` tokens carry.
 */
const AUDIENCES = new Set([
  "https://outlook.office365.com",
  "https://outlook.office.com",
  "00000002-0000-0ff1-ce00-000000000000",
]);

type Protocol = "IMAP" | "POP3";

interface Context {
  options: ExchangeOptions;
  key: CryptoKey;
  /** The bracketed part of the greeting: Exchange sends base64 of its UTF-16LE host name. */
  banner: string;
}

/** Starts both listeners on 127.0.0.1 (ephemeral ports). */
export async function startExchange(options: ExchangeOptions): Promise<ExchangeServer> {
  const key = await crypto.subtle.importKey(
    "spki",
    derFromPem(options.tokenKey.publicKeyPem),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["verify"],
  );
  const context: Context = {
    options,
    key,
    banner: utf16Base64("TB0P264MB0001.testbed.prod.outlook.com"),
  };
  const tls = {
    hostname: "127.0.0.1",
    port: 0,
    cert: options.tls.certPem,
    key: options.tls.keyPem,
  };
  const imapListener = Deno.listenTls(tls);
  const pop3Listener = Deno.listenTls(tls);

  const open = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const server: ExchangeServer = {
    host: "127.0.0.1",
    imapPort: (imapListener.addr as Deno.NetAddr).port,
    pop3Port: (pop3Listener.addr as Deno.NetAddr).port,
    connections: 0,
    sessions: [],
    close: () => closing ??= closeAll(),
  };
  let closing: Promise<void> | undefined;

  const accept = async (listener: Deno.TlsListener, protocol: Protocol) => {
    try {
      for await (const conn of listener) {
        server.connections++;
        const session: ExchangeSession = { protocol, received: [], sent: [] };
        server.sessions.push(session);
        open.add(conn);
        const handler = serve(context, conn, session).finally(() => {
          open.delete(conn);
          handlers.delete(handler);
        });
        handlers.add(handler);
      }
    } catch {
      // the listener was closed
    }
  };
  const loops = [accept(imapListener, "IMAP"), accept(pop3Listener, "POP3")];

  async function closeAll(): Promise<void> {
    imapListener.close();
    pop3Listener.close();
    for (const conn of open) closeQuietly(conn);
    await Promise.all(loops);
    await Promise.all([...handlers]);
  }
  return server;
}

/** Runs one connection to its end; swallows every error (a test server must not crash tests). */
async function serve(
  context: Context,
  conn: Deno.TlsConn,
  session: ExchangeSession,
): Promise<void> {
  const io = new SessionIo(conn, session);
  try {
    if (context.options.behaviour === "silent") {
      await conn.handshake();
      // Swallow whatever the client sends until it gives up or the server closes.
      const sink = new Uint8Array(16 * 1024);
      while (await conn.read(sink) !== null) { /* no answer, ever */ }
      return;
    }
    if (session.protocol === "IMAP") await serveImap(context, io);
    else await servePop3(context, io);
  } catch {
    // TLS failure, reset, or the server was closed under us: end the session.
  } finally {
    closeQuietly(conn);
  }
}

// ---------------------------------------------------------------- line I/O

const OVERFLOW = Symbol("overflow");

/** CRLF-only line reading and CRLF line writing, with the session transcript. */
class SessionIo {
  #pending = new Uint8Array(0);
  #decoder = new TextDecoder();
  #encoder = new TextEncoder();

  constructor(readonly conn: Deno.Conn, readonly session: ExchangeSession) {}

  /**
   * The next CRLF-terminated line; null on EOF; OVERFLOW when more than
   * 8 KiB arrived without a CRLF (a bare LF does not end a line).
   */
  async readLine(): Promise<string | null | typeof OVERFLOW> {
    const chunk = new Uint8Array(16 * 1024);
    while (true) {
      const end = indexOfCrlf(this.#pending);
      if (end >= 0) {
        const line = this.#decoder.decode(this.#pending.subarray(0, end));
        this.#pending = this.#pending.slice(end + 2);
        this.session.received.push(line);
        return line;
      }
      if (this.#pending.length > MAX_PENDING_BYTES) return OVERFLOW;
      const n = await this.conn.read(chunk);
      if (n === null) return null;
      const joined = new Uint8Array(this.#pending.length + n);
      joined.set(this.#pending);
      joined.set(chunk.subarray(0, n), this.#pending.length);
      this.#pending = joined;
    }
  }

  async send(...lines: string[]): Promise<void> {
    this.session.sent.push(...lines);
    const bytes = this.#encoder.encode(lines.map((line) => line + "\r\n").join(""));
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }
}

function indexOfCrlf(bytes: Uint8Array): number {
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10) return i;
  }
  return -1;
}

// ---------------------------------------------------------------- IMAP

/** Commands valid only after login; before it Exchange calls them "Invalid state". */
const IMAP_AUTHENTICATED_COMMANDS = new Set([
  "SELECT",
  "EXAMINE",
  "CREATE",
  "DELETE",
  "RENAME",
  "SUBSCRIBE",
  "UNSUBSCRIBE",
  "LIST",
  "LSUB",
  "STATUS",
  "APPEND",
  "CHECK",
  "CLOSE",
  "EXPUNGE",
  "SEARCH",
  "FETCH",
  "STORE",
  "COPY",
  "MOVE",
  "UID",
  "UNSELECT",
  "IDLE",
  "NAMESPACE",
]);

type ImapState =
  | { kind: "anonymous" }
  | { kind: "notConnected" }
  | { kind: "connected"; mailbox: string; expires: number };

async function serveImap(context: Context, io: SessionIo): Promise<void> {
  await io.send(`* OK The Microsoft Exchange IMAP4 service is ready. [${context.banner}]`);
  let state: ImapState = { kind: "anonymous" };
  while (true) {
    const line = await io.readLine();
    if (line === null) return;
    if (line === OVERFLOW) return await io.send("* BYE Connection is closed. 13");

    const [tag, rawCommand = "", ...args] = line.split(" ");
    const command = rawCommand.toUpperCase();
    const reply = (text: string) => io.send(`${tag || "*"} ${text}`);

    if (command === "LOGOUT") {
      return await io.send(
        "* BYE Microsoft Exchange Server IMAP4 server signing off.",
        `${tag} OK LOGOUT completed.`,
      );
    }
    if (state.kind === "notConnected") {
      await reply("BAD User is authenticated but not connected.");
      continue;
    }
    if (state.kind === "connected" && Date.now() / 1000 >= state.expires) {
      return await io.send("* BYE Session invalidated - AccessTokenExpired");
    }

    if (command === "CAPABILITY") {
      await io.send(`* CAPABILITY ${IMAP_CAPABILITIES}`, `${tag} OK CAPABILITY completed.`);
    } else if (command === "NOOP") {
      await reply("OK NOOP completed.");
    } else if (command === "ID") {
      // Modelling choice: Exchange's ID answer is not recorded; NIL is valid RFC 2971.
      await io.send("* ID NIL", `${tag} OK ID completed.`);
    } else if (command === "AUTHENTICATE" || command === "LOGIN") {
      if (state.kind !== "anonymous") {
        await reply("BAD Command received in Invalid state.");
        continue;
      }
      if (command === "LOGIN") {
        // Basic authentication is switched off in Exchange Online tenants.
        await reply("NO LOGIN failed.");
        continue;
      }
      const mechanism = args[0]?.toUpperCase();
      if (mechanism !== "XOAUTH2" && mechanism !== "PLAIN") {
        await reply("NO AUTHENTICATE failed.");
        continue;
      }
      const response = await imapSaslResponse(io, args);
      if (response === null) return;
      if (response === OVERFLOW) return await io.send("* BYE Connection is closed. 13");
      if (response === "*") {
        // Modelling choice: RFC 3501 demands a tagged BAD for a cancelled exchange.
        await reply("BAD AUTHENTICATE aborted.");
        continue;
      }
      // PLAIN is advertised but basic authentication is off: it always fails.
      const result = mechanism === "XOAUTH2"
        ? await checkXoauth2(context, response, "IMAP")
        : { ok: false as const };
      if (!result.ok) {
        await reply("NO AUTHENTICATE failed.");
        continue;
      }
      state = result.access
        ? { kind: "connected", mailbox: result.mailbox, expires: result.expires }
        : { kind: "notConnected" };
      await reply("OK AUTHENTICATE completed.");
    } else if (IMAP_AUTHENTICATED_COMMANDS.has(command)) {
      if (state.kind === "anonymous") await reply("BAD Command received in Invalid state.");
      else await imapMailboxCommand(context, io, tag, command, args.join(" "), state.mailbox);
    } else {
      await reply("BAD Command Error. 12");
    }
  }
}

/** The client's SASL response: SASL-IR argument, or one continuation round. */
async function imapSaslResponse(
  io: SessionIo,
  args: string[],
): Promise<string | null | typeof OVERFLOW> {
  if (args.length >= 2) return args[1];
  await io.send("+ ");
  return await io.readLine();
}

async function imapMailboxCommand(
  context: Context,
  io: SessionIo,
  tag: string,
  command: string,
  args: string,
  mailbox: string,
): Promise<void> {
  const folders = folderList(context.options, mailbox);
  if (command === "LIST" || command === "LSUB") {
    const [reference = "", pattern = ""] = imapStrings(args);
    const match = folderPattern(reference + pattern);
    const lines = folders
      .filter((folder) => match.test(folder.name))
      .map((folder) =>
        `* ${command} (${folder.attributes.join(" ")}) "/" ${imapAString(folder.name)}`
      );
    await io.send(...lines, `${tag} OK ${command} completed.`);
  } else if (command === "NAMESPACE") {
    await io.send('* NAMESPACE (("" "/")) NIL NIL', `${tag} OK NAMESPACE completed.`);
  } else if (command === "SELECT" || command === "EXAMINE") {
    const [name = ""] = imapStrings(args);
    const folder = folders.find((f) => f.name.toLowerCase() === name.toLowerCase());
    if (!folder) {
      // Modelling choice: Exchange's text for a missing folder is not recorded.
      await io.send(`${tag} NO ${command} failed.`);
      return;
    }
    const count = folder.name === "INBOX" ? messageSizes(context.options, mailbox).length : 0;
    const mode = command === "SELECT" ? "READ-WRITE" : "READ-ONLY";
    await io.send(
      `* ${count} EXISTS`,
      "* 0 RECENT",
      "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)",
      "* OK [UIDVALIDITY 14] UIDVALIDITY value",
      `* OK [UIDNEXT ${count + 1}] The next unique identifier value`,
      `${tag} OK [${mode}] ${command} completed.`,
    );
  } else {
    // Modelling choice: commands the test bed does not model get Exchange's generic error.
    await io.send(`${tag} BAD Command Error. 12`);
  }
}

interface Folder {
  name: string;
  attributes: string[];
}

function folderList(options: ExchangeOptions, mailbox: string): Folder[] {
  const named = new Map<string, string[]>(STANDARD_FOLDERS);
  for (const extra of options.folders?.[mailbox] ?? []) if (!named.has(extra)) named.set(extra, []);
  const names = [...named.keys()];
  return names.map((name) => {
    const children = names.some((other) => other.startsWith(name + "/"));
    return {
      name,
      attributes: [children ? "\\HasChildren" : "\\HasNoChildren", ...named.get(name)!],
    };
  });
}

/** Parses a run of IMAP atoms and quoted strings (enough for LIST/SELECT arguments). */
function imapStrings(text: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of text.matchAll(re)) {
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]);
  }
  return out;
}

/** IMAP list wildcards: `*` matches anything, `%` anything but the hierarchy separator. */
function folderPattern(pattern: string): RegExp {
  const source = [...pattern].map((c) =>
    c === "*" ? ".*" : c === "%" ? "[^/]*" : c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  ).join("");
  return new RegExp(`^${source}$`, "i");
}

/** An atom when it is one, else a quoted string (as Exchange writes `"Sent Items"`). */
function imapAString(name: string): string {
  if (/^[A-Za-z0-9._\/-]+$/.test(name)) return name;
  return `"${name.replace(/["\\]/g, "\\$&")}"`;
}

// ---------------------------------------------------------------- POP3

const POP3_AUTH_FAILURE = "-ERR Authentication failure: unknown user name or bad password.";
const POP3_TRANSACTION_COMMANDS = new Set([
  "STAT",
  "LIST",
  "RETR",
  "DELE",
  "NOOP",
  "RSET",
  "TOP",
  "UIDL",
]);

async function servePop3(context: Context, io: SessionIo): Promise<void> {
  await io.send(`+OK The Microsoft Exchange POP3 service is ready. [${context.banner}]`);
  let mailbox: string | null = null;
  while (true) {
    const line = await io.readLine();
    if (line === null) return;
    if (line === OVERFLOW) return await io.send("-ERR Connection is closed. 13");

    const [rawCommand = "", ...args] = line.split(" ");
    const command = rawCommand.toUpperCase();

    if (command === "QUIT") {
      return await io.send("+OK Microsoft Exchange Server POP3 server signing off.");
    } else if (command === "CAPA") {
      await io.send("+OK", "TOP", "UIDL", "SASL PLAIN XOAUTH2", "USER", ".");
    } else if (command === "AUTH" || command === "USER" || command === "PASS") {
      if (mailbox !== null) {
        await io.send("-ERR Command is not valid in this state.");
        continue;
      }
      if (command === "AUTH" && args.length === 0) {
        await io.send("+OK", "PLAIN", "XOAUTH2", ".");
        continue;
      }
      if (command === "USER") {
        // Basic authentication is off; Exchange only fails at PASS.
        await io.send("+OK");
        continue;
      }
      if (command === "PASS") {
        await io.send(POP3_AUTH_FAILURE);
        continue;
      }
      const mechanism = args[0].toUpperCase();
      if (args.length > 1 || (mechanism !== "XOAUTH2" && mechanism !== "PLAIN")) {
        // Modelling choice: Exchange documents only the two-line AUTH form; the
        // test bed answers the one-line (initial response) form as a protocol error.
        await io.send("-ERR Protocol error. 14");
        continue;
      }
      await io.send(context.options.pop3Continuation ?? "+");
      const response = await io.readLine();
      if (response === null) return;
      if (response === OVERFLOW) return await io.send("-ERR Connection is closed. 13");
      const result = mechanism === "XOAUTH2"
        ? await checkXoauth2(context, response, "POP3")
        : { ok: false as const };
      // Exchange reports a missing mailbox permission as a failed login on POP3.
      if (!result.ok || !result.access) {
        await io.send(POP3_AUTH_FAILURE);
        continue;
      }
      mailbox = result.mailbox;
      await io.send("+OK User successfully authenticated.");
    } else if (POP3_TRANSACTION_COMMANDS.has(command)) {
      if (mailbox === null) await io.send("-ERR Command is not valid in this state.");
      else await pop3Transaction(context, io, command, args, mailbox);
    } else {
      await io.send("-ERR Protocol error. 14");
    }
  }
}

async function pop3Transaction(
  context: Context,
  io: SessionIo,
  command: string,
  args: string[],
  mailbox: string,
): Promise<void> {
  const sizes = messageSizes(context.options, mailbox);
  const total = sizes.reduce((sum, size) => sum + size, 0);
  if (command === "STAT") {
    await io.send(`+OK ${sizes.length} ${total}`);
  } else if (command === "LIST" && args.length === 0) {
    await io.send(`+OK ${sizes.length} ${total}`, ...sizes.map((s, i) => `${i + 1} ${s}`), ".");
  } else if (command === "LIST") {
    const n = Number(args[0]);
    if (Number.isInteger(n) && n >= 1 && n <= sizes.length) {
      await io.send(`+OK ${n} ${sizes[n - 1]}`);
    } else await io.send("-ERR The specified message is out of range.");
  } else if (command === "NOOP" || command === "RSET") {
    await io.send("+OK");
  } else {
    // Modelling choice: the test bed does not serve message contents.
    await io.send("-ERR Protocol error. 14");
  }
}

function messageSizes(options: ExchangeOptions, mailbox: string): number[] {
  return options.messages?.[mailbox] ?? DEFAULT_MESSAGES;
}

// ---------------------------------------------------------------- XOAUTH2 and tokens

type Xoauth2Result =
  | { ok: false }
  | { ok: true; mailbox: string; access: boolean; expires: number };

/**
 * Decodes `base64("user=" + mailbox + "\x01auth=Bearer " + jwt + "\x01\x01")`
 * and checks the token as Exchange does. `ok` means Exchange accepts the login
 * itself; `access` says whether the principal may open `user=`'s mailbox.
 * Any malformed input is a plain failure.
 */
async function checkXoauth2(
  context: Context,
  base64: string,
  protocol: Protocol,
): Promise<Xoauth2Result> {
  const sasl = parseXoauth2(base64);
  if (!sasl) return { ok: false };
  const claims = await verifyToken(context, sasl.token);
  if (!claims) return { ok: false };

  const delegated = typeof claims.scp === "string";
  if (delegated) {
    const scopes = (claims.scp as string).split(" ");
    if (!scopes.includes(`${protocol === "IMAP" ? "IMAP" : "POP"}.AccessAsUser.All`)) {
      return { ok: false };
    }
  } else {
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    if (!roles.includes(`${protocol === "IMAP" ? "IMAP" : "POP"}.AccessAsApp`)) {
      return { ok: false };
    }
  }
  const principal = String(
    (delegated ? claims.upn ?? claims.preferred_username : claims.appid ?? claims.azp) ?? "",
  ).toLowerCase();
  if (!principal) return { ok: false };

  const mailbox = sasl.user.toLowerCase();
  const ownMailbox = delegated && mailbox === principal;
  const permitted = permissions(context.options, mailbox);
  // Modelling choice: a mailbox Exchange does not know fails the login itself
  // ("wrong mailbox" in exchange-wire.md); a known one without FullAccess is
  // the "authenticated but not connected" case.
  if (permitted === undefined && !ownMailbox) return { ok: false };
  const access = ownMailbox || (permitted ?? []).some((p) => p.toLowerCase() === principal);
  return { ok: true, mailbox, access, expires: claims.exp as number };
}

function permissions(options: ExchangeOptions, mailbox: string): string[] | undefined {
  for (const [address, principals] of Object.entries(options.mailboxPermissions)) {
    if (address.toLowerCase() === mailbox) return principals;
  }
  return undefined;
}

function parseXoauth2(base64: string): { user: string; token: string } | null {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)),
    );
  } catch {
    return null;
  }
  // Exactly: user=<mailbox> ^A auth=Bearer <token> ^A ^A
  const parts = text.split("\x01");
  if (parts.length !== 4 || parts[2] !== "" || parts[3] !== "") return null;
  const user = /^user=(.+)$/.exec(parts[0])?.[1];
  const token = /^auth=Bearer (.+)$/i.exec(parts[1])?.[1];
  return user && token ? { user, token } : null;
}

/** Verifies signature and standard claims; returns the payload, or null for any problem. */
async function verifyToken(
  context: Context,
  token: string,
): Promise<Record<string, unknown> | null> {
  try {
    const [h, p, s, ...rest] = token.split(".");
    if (rest.length > 0 || s === undefined) return null;
    const header = JSON.parse(new TextDecoder().decode(base64UrlDecode(h)));
    const claims = JSON.parse(new TextDecoder().decode(base64UrlDecode(p)));
    if (header?.alg !== "RS256" || typeof claims !== "object" || claims === null) return null;
    const valid = await crypto.subtle.verify(
      "RSASSA-PKCS1-v1_5",
      context.key,
      base64UrlDecode(s),
      new TextEncoder().encode(`${h}.${p}`),
    );
    if (!valid) return null;

    const now = Date.now() / 1000;
    const aud = typeof claims.aud === "string" ? claims.aud.replace(/\/$/, "") : "";
    if (!AUDIENCES.has(aud)) return null;
    if (typeof claims.exp !== "number" || claims.exp <= now) return null;
    // Entra ID tolerates five minutes of clock skew on nbf.
    if (typeof claims.nbf === "number" && claims.nbf > now + 300) return null;
    const issuer = context.options.tokenKey.issuer;
    if (issuer !== undefined && !String(claims.iss ?? "").startsWith(issuer)) return null;
    return claims;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- encodings

function base64UrlDecode(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not base64url");
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(
    atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)),
    (c) => c.charCodeAt(0),
  );
}

function derFromPem(pem: string): Uint8Array<ArrayBuffer> {
  const match = /-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----/.exec(pem);
  if (!match) throw new Error("tokenKey.publicKeyPem must be an SPKI PEM (BEGIN PUBLIC KEY)");
  return Uint8Array.from(atob(match[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
}

function utf16Base64(text: string): string {
  let binary = "";
  for (const c of text) binary += String.fromCharCode(c.charCodeAt(0) & 0xff, c.charCodeAt(0) >> 8);
  return btoa(binary);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
