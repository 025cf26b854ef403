/**
 * An Exchange Online look-alike for tests: IMAP (implicit TLS), POP3
 * (implicit TLS) and SMTP submission (plain TCP + STARTTLS, like
 * smtp.office365.com:587) that answer with the exact strings recorded in
 * shared/reference/exchange-wire.md and reproduce Exchange's quirks:
 *
 * - IMAP `AUTHENTICATE` succeeds for a valid token even when the app has no
 *   FullAccess on the mailbox; only the next command fails, with
 *   `BAD User is authenticated but not connected.`
 * - POP3 reports the same missing permission as an authentication failure.
 * - Only CRLF ends a line: LF-only lines get no answer until 8 KiB pile up,
 *   then the server says `Connection is closed. 13` and hangs up.
 * - SMTP offers STARTTLS before TLS and `AUTH LOGIN XOAUTH2` only after it;
 *   AUTH succeeds for any valid token for a known mailbox, and a missing
 *   permission shows only at `MAIL FROM` (5.7.60), or after DATA (554 5.2.252
 *   SendAsDenied, `smtpSendAsDenied: "data"`).
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
  /**
   * Mailbox -> whole messages (header, blank line, body; LF or CRLF) that POP3 serves with
   * RETR, TOP and UIDL; their sizes replace `messages`. Without it, contents are not served.
   */
  contents?: Record<string, string[]>;
  /** Mailbox -> extra IMAP folders ("/" separated); INBOX and the standard folders are always there. */
  folders?: Record<string, string[]>;
  /** Faults for timeout tests: "silent" = accept TCP+TLS but never send a greeting. */
  behaviour?: "normal" | "silent";
  /** The POP3 SASL continuation line; Exchange has been seen sending both forms. Default "+". */
  pop3Continuation?: "+" | "+ ";
  /** SMTP never offers (and refuses) STARTTLS, like a server whose TLS was stripped. */
  smtpNoStartTls?: boolean;
  /**
   * SMTP AUTH switched off (Set-TransportConfig / Set-CASMailbox): valid logins get 5.7.139.
   * `basic-retired`: Basic authentication for Client Submission retired (Exchange Online, 2026):
   * AUTH LOGIN gets 550 5.7.30, and so do valid XOAUTH2 logins (modelling choice: a login
   * Exchange takes for Basic auth; exchange-wire.md does not record when that happens).
   */
  smtpAuthDisabled?: "tenant" | "mailbox" | "basic-retired";
  /**
   * Where a sender without SendAs permission is refused: at MAIL FROM with 550 5.7.60
   * (default), or after DATA with 554 5.2.252 SendAsDenied, as Exchange Online answers a
   * message whose From it may not use.
   */
  smtpSendAsDenied?: "mail-from" | "data";
}

/** A message the SMTP service accepted for delivery. */
export interface DeliveredMessage {
  /** The MAIL FROM address. */
  from: string;
  /** The RCPT TO addresses. */
  to: string[];
  /** The message as the client meant it: lines joined with CRLF, dot stuffing undone, no final `.`. */
  data: string;
}

export interface ExchangeSession {
  protocol: "IMAP" | "POP3" | "SMTP";
  /** Complete lines the client sent (CRLF removed), in order. */
  received: string[];
  /** For each line of `received`: whether TLS was up when it arrived (always for IMAP/POP3). */
  receivedSecure: boolean[];
  /** Lines the server sent (CRLF removed), in order. */
  sent: string[];
  /** SMTP: an XOAUTH2 string arrived before STARTTLS (it is refused, but it was sent in clear). */
  credentialsBeforeTls: boolean;
  /** SMTP: messages accepted for delivery in this session, in order. */
  delivered: DeliveredMessage[];
  /** When the client connected (ms since the epoch, `performance.timeOrigin` based). */
  connectedAt: number;
}

export interface ExchangeServer {
  host: "127.0.0.1";
  imapPort: number;
  pop3Port: number;
  /** SMTP submission: plain TCP, STARTTLS required before AUTH. */
  smtpPort: number;
  /** TCP connections accepted so far (all protocols). */
  connections: number;
  /** Most connections open at the same time so far (all protocols). */
  peakConnections: number;
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

type Protocol = "IMAP" | "POP3" | "SMTP";

/** The host name the server calls itself (Exchange Online front-end style). */
const SERVER_HOST = "TB0P264MB0001.testbed.prod.outlook.com";

interface Context {
  options: ExchangeOptions;
  key: CryptoKey;
  /** The bracketed part of the greeting: Exchange sends base64 of its UTF-16LE host name. */
  banner: string;
  /** Server side of SMTP's STARTTLS. */
  terminator: StartTlsTerminator;
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
    banner: utf16Base64(SERVER_HOST),
    terminator: new StartTlsTerminator(options.tls),
  };
  const tls = {
    hostname: "127.0.0.1",
    port: 0,
    cert: options.tls.certPem,
    key: options.tls.keyPem,
  };
  const imapListener = Deno.listenTls(tls);
  const pop3Listener = Deno.listenTls(tls);
  const smtpListener = Deno.listen({ hostname: "127.0.0.1", port: 0 });

  const open = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const server: ExchangeServer = {
    host: "127.0.0.1",
    imapPort: (imapListener.addr as Deno.NetAddr).port,
    pop3Port: (pop3Listener.addr as Deno.NetAddr).port,
    smtpPort: (smtpListener.addr as Deno.NetAddr).port,
    connections: 0,
    peakConnections: 0,
    sessions: [],
    close: () => closing ??= closeAll(),
  };
  let closing: Promise<void> | undefined;

  const accept = async (listener: Deno.Listener, protocol: Protocol) => {
    try {
      for await (const conn of listener) {
        server.connections++;
        const session: ExchangeSession = {
          protocol,
          received: [],
          receivedSecure: [],
          sent: [],
          credentialsBeforeTls: false,
          delivered: [],
          connectedAt: performance.timeOrigin + performance.now(),
        };
        server.sessions.push(session);
        open.add(conn);
        server.peakConnections = Math.max(server.peakConnections, open.size);
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
  const loops = [
    accept(imapListener, "IMAP"),
    accept(pop3Listener, "POP3"),
    accept(smtpListener, "SMTP"),
  ];

  async function closeAll(): Promise<void> {
    imapListener.close();
    pop3Listener.close();
    smtpListener.close();
    for (const conn of open) closeQuietly(conn);
    await context.terminator.close();
    await Promise.all(loops);
    await Promise.all([...handlers]);
  }
  return server;
}

/** Runs one connection to its end; swallows every error (a test server must not crash tests). */
async function serve(
  context: Context,
  conn: Deno.Conn,
  session: ExchangeSession,
): Promise<void> {
  const secure = session.protocol !== "SMTP";
  const io = new SessionIo(conn, session, secure);
  try {
    if (context.options.behaviour === "silent") {
      if (secure) await (conn as Deno.TlsConn).handshake();
      // Swallow whatever the client sends until it gives up or the server closes.
      const sink = new Uint8Array(16 * 1024);
      while (await conn.read(sink) !== null) { /* no answer, ever */ }
      return;
    }
    if (session.protocol === "IMAP") await serveImap(context, io);
    else if (session.protocol === "POP3") await servePop3(context, io);
    else await serveSmtp(context, io);
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

  /** @param secure whether TLS protects `conn` (recorded with every line received). */
  constructor(
    readonly conn: Deno.Conn,
    readonly session: ExchangeSession,
    readonly secure: boolean,
  ) {}

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
        this.session.receivedSecure.push(this.secure);
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
  } else if (context.options.contents?.[mailbox] !== undefined) {
    await pop3Contents(io, command, args, messageLines(context.options.contents[mailbox]));
  } else {
    // Modelling choice: the test bed does not serve message contents.
    await io.send("-ERR Protocol error. 14");
  }
}

function messageSizes(options: ExchangeOptions, mailbox: string): number[] {
  const contents = options.contents?.[mailbox];
  if (contents) return messageLines(contents).map((lines) => lines.join("\r\n").length + 2);
  return options.messages?.[mailbox] ?? DEFAULT_MESSAGES;
}

function messageLines(contents: string[]): string[][] {
  return contents.map((m) => m.replace(/\r?\n$/, "").split(/\r?\n/));
}

/**
 * RETR, TOP, UIDL and DELE for mailboxes with `contents`. Modelling choice: exchange-wire.md
 * records no transaction replies beyond STAT; these follow RFC 1939 (dot stuffing, "." ends a
 * multi-line reply) with Exchange's wording for a bad message number.
 */
async function pop3Contents(
  io: SessionIo,
  command: string,
  args: string[],
  messages: string[][],
): Promise<void> {
  const n = Number(args[0]);
  const valid = Number.isInteger(n) && n >= 1 && n <= messages.length;
  const uid = (i: number) => `AAQkAGE${String(i).padStart(4, "0")}`;
  const stuffed = (lines: string[]) => lines.map((l) => (l.startsWith(".") ? `.${l}` : l));
  if (command === "UIDL" && args.length === 0) {
    await io.send("+OK", ...messages.map((_, i) => `${i + 1} ${uid(i + 1)}`), ".");
  } else if (!valid) {
    await io.send("-ERR The specified message is out of range.");
  } else if (command === "UIDL") {
    await io.send(`+OK ${n} ${uid(n)}`);
  } else if (command === "RETR") {
    await io.send("+OK", ...stuffed(messages[n - 1]), ".");
  } else if (command === "TOP") {
    const lines = messages[n - 1];
    const blank = lines.indexOf("");
    const head = blank < 0 ? lines : lines.slice(0, blank + 1 + Math.max(0, Number(args[1]) || 0));
    await io.send("+OK", ...stuffed(head), ".");
  } else if (command === "DELE") {
    await io.send("+OK");
  } else {
    await io.send("-ERR Protocol error. 14");
  }
}

// ---------------------------------------------------------------- SMTP

/** Exchange's `[host]` suffix on SMTP failure replies. */
const SMTP_HOST_TAG = `[${SERVER_HOST}]`;
/**
 * Modelling choice: the EHLO keywords Exchange Online lists, minus CHUNKING and
 * BINARYMIME (BDAT is not modelled, so the test bed does not offer it).
 * exchange-wire.md records STARTTLS before TLS and `AUTH LOGIN XOAUTH2` after it.
 */
const SMTP_EXTENSIONS = ["SIZE 157286400", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES"];
const SMTP_TAIL_EXTENSIONS = ["8BITMIME", "SMTPUTF8"];
/** Largest message accepted (SIZE above is Exchange's; the test bed needs far less). */
const SMTP_MAX_MESSAGE = 1024 * 1024;
const SMTP_AUTH_FAILED = `535 5.7.3 Authentication unsuccessful ${SMTP_HOST_TAG}`;
const SMTP_AUTH_DISABLED = {
  tenant: "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for " +
    `the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. ${SMTP_HOST_TAG}`,
  // Modelling choice: exchange-wire.md records the tenant text; the mailbox one follows it.
  mailbox: "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for " +
    `the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information. ${SMTP_HOST_TAG}`,
};
const SMTP_BASIC_DISABLED =
  `535 5.7.139 Authentication unsuccessful, basic authentication is disabled. ${SMTP_HOST_TAG}`;
/** Basic authentication for Client Submission retired (Microsoft's announced reply). */
const SMTP_BASIC_RETIRED =
  "550 5.7.30 Basic authentication is not supported for Client Submission.";
/** Exchange's refusal, after DATA, of a message whose sender the login may not send as. */
function smtpSendAsDenied(principal: string, from: string): string {
  return `554 5.2.252 SendAsDenied; ${principal} not allowed to send as ${from}; ` +
    "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to " +
    "process message due to a permanent exception with message [BeginDiagnosticData]Cannot " +
    `submit message. ${SMTP_HOST_TAG}`;
}

interface SmtpState {
  helo: boolean;
  /** Set by a successful AUTH. */
  login?: Extract<Xoauth2Result, { ok: true }>;
  /** The mail transaction in progress. */
  from?: string;
  to: string[];
  /** The sender may not be used: the message is refused after DATA (smtpSendAsDenied "data"). */
  sendAsDenied?: boolean;
}

async function serveSmtp(context: Context, plainIo: SessionIo): Promise<void> {
  let io = plainIo;
  let tls: Spliced | undefined;
  const state: SmtpState = { helo: false, to: [] };
  const session = io.session;
  const peer = (io.conn.remoteAddr as Deno.NetAddr).hostname;
  try {
    await io.send(
      `220 ${SERVER_HOST} Microsoft ESMTP MAIL Service ready at ${smtpDate(new Date())}`,
    );
    while (true) {
      const line = await io.readLine();
      if (line === null) return;
      // Modelling choice: Exchange's answer to an overlong SMTP line is not recorded.
      if (line === OVERFLOW) return await io.send("500 5.3.3 Line too long");
      if (!io.secure && containsXoauth2(line)) session.credentialsBeforeTls = true;

      const [verb = "", ...args] = line.split(" ");
      const command = verb.toUpperCase();
      const argument = args.join(" ");

      if (command === "QUIT") {
        return await io.send("221 2.0.0 Service closing transmission channel");
      } else if (command === "EHLO" || command === "HELO") {
        if (argument === "") {
          // Modelling choice (RFC 5321 reply for a missing domain).
          await io.send("501 5.5.4 Invalid domain name");
          continue;
        }
        Object.assign(state, { helo: true, from: undefined, to: [], sendAsDenied: undefined });
        const hello = `${SERVER_HOST} Hello [${peer}]`;
        if (command === "HELO") {
          await io.send(`250 ${hello}`);
          continue;
        }
        // STARTTLS only before TLS, AUTH only after it (exchange-wire.md).
        let security: string[] = ["AUTH LOGIN XOAUTH2"];
        if (!io.secure) security = context.options.smtpNoStartTls ? [] : ["STARTTLS"];
        const lines = [hello, ...SMTP_EXTENSIONS, ...security, ...SMTP_TAIL_EXTENSIONS];
        await io.send(...lines.map((text, i) => `250${i === lines.length - 1 ? " " : "-"}${text}`));
      } else if (command === "STARTTLS") {
        if (context.options.smtpNoStartTls || io.secure) {
          // Modelling choice: Exchange's answer to an unknown verb.
          await io.send("500 5.3.3 Unrecognized command");
          continue;
        }
        await io.send("220 2.0.0 SMTP server ready");
        // Whatever the client sent after STARTTLS is dropped with the old
        // SessionIo's buffer: it arrived in clear (RFC 3207 section 4.2).
        tls = await context.terminator.upgrade(io.conn);
        await tls.conn.handshake();
        io = new SessionIo(tls.conn, session, true);
        // RFC 3207: the client must start over with EHLO.
        Object.assign(state, { helo: false, from: undefined, to: [] });
      } else if (command === "AUTH") {
        if (!await smtpAuth(context, io, state, args)) return;
      } else if (command === "MAIL") {
        await smtpMail(context, io, state, argument);
      } else if (command === "RCPT") {
        const address = /^TO:\s*<([^<>]*)>/i.exec(argument)?.[1];
        if (state.from === undefined) await io.send("503 5.5.2 Need mail command");
        else if (!address) await io.send("501 5.5.4 Invalid arguments");
        else {
          state.to.push(address);
          await io.send("250 2.1.5 Recipient OK");
        }
      } else if (command === "DATA") {
        if (state.from === undefined) await io.send("503 5.5.2 Need mail command");
        else if (state.to.length === 0) await io.send("503 5.5.2 Need rcpt command");
        else if (!await smtpData(io, state)) return;
      } else if (command === "RSET") {
        Object.assign(state, { from: undefined, to: [], sendAsDenied: undefined });
        await io.send("250 2.0.0 Resetting");
      } else if (command === "NOOP") {
        await io.send("250 2.0.0 OK");
      } else {
        await io.send("500 5.3.3 Unrecognized command");
      }
    }
  } finally {
    if (tls) {
      // The last reply may still be on its way through the splice: let it
      // drain (the splice then closes the client's connection) before the
      // caller closes that connection under it.
      closeQuietly(tls.conn);
      await tls.spliced;
    }
  }
}

/** AUTH; false when the connection ended during it. */
async function smtpAuth(
  context: Context,
  io: SessionIo,
  state: SmtpState,
  args: string[],
): Promise<boolean> {
  if (!io.secure) {
    await io.send("530 5.7.0 Must issue a STARTTLS command first");
    return true;
  }
  // Modelling choice: Exchange's texts for these two sequence errors are not recorded.
  if (!state.helo) {
    await io.send("503 5.5.2 Send hello first");
    return true;
  }
  if (state.login) {
    await io.send("503 5.5.2 Already authenticated");
    return true;
  }
  const mechanism = args[0]?.toUpperCase();
  if (mechanism === "LOGIN") {
    // Basic authentication is off in Exchange Online: ask for what is missing
    // (the user name may come with the command), then refuse.
    const prompts = args.length >= 2
      ? ["334 UGFzc3dvcmQ6"]
      : ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"];
    for (const prompt of prompts) {
      await io.send(prompt);
      const answer = await io.readLine();
      if (answer === null || answer === OVERFLOW) return false;
      if (answer === "*") {
        await io.send("501 5.0.0 Authentication cancelled");
        return true;
      }
    }
    await io.send(
      context.options.smtpAuthDisabled === "basic-retired"
        ? SMTP_BASIC_RETIRED
        : SMTP_BASIC_DISABLED,
    );
    return true;
  }
  if (mechanism !== "XOAUTH2") {
    await io.send(`504 5.7.4 Unrecognized authentication type ${SMTP_HOST_TAG}`);
    return true;
  }
  let response: string | null | typeof OVERFLOW = args[1] ?? null;
  if (response === null) {
    await io.send("334 ");
    response = await io.readLine();
    if (response === null || response === OVERFLOW) return false;
  }
  if (response === "*") {
    // Modelling choice (RFC 4954 reply for a cancelled exchange).
    await io.send("501 5.0.0 Authentication cancelled");
    return true;
  }
  const result = await checkXoauth2(context, response, "SMTP");
  if (!result.ok) {
    await io.send(SMTP_AUTH_FAILED);
    return true;
  }
  const disabled = context.options.smtpAuthDisabled;
  if (disabled) {
    await io.send(disabled === "basic-retired" ? SMTP_BASIC_RETIRED : SMTP_AUTH_DISABLED[disabled]);
    return true;
  }
  state.login = result;
  await io.send("235 2.7.0 Authentication successful");
  return true;
}

async function smtpMail(
  context: Context,
  io: SessionIo,
  state: SmtpState,
  argument: string,
): Promise<void> {
  if (!state.helo) return await io.send("503 5.5.2 Send hello first");
  if (!state.login) return await io.send("530 5.7.57 Client not authenticated to send mail");
  if (state.from !== undefined) return await io.send("503 5.5.2 Sender already specified");
  const sender = /^FROM:\s*<([^<>]*)>/i.exec(argument)?.[1];
  if (sender === undefined) return await io.send("501 5.5.4 Invalid arguments");
  // Sending as a mailbox needs a permission on it (modelled by mailboxPermissions),
  // or being its owner (a user's own mailbox).
  const { principal, delegated } = state.login;
  const address = sender.toLowerCase();
  const allowed = (delegated && address === principal) ||
    (permissions(context.options, address) ?? []).some((p) => p.toLowerCase() === principal);
  if (!allowed && context.options.smtpSendAsDenied !== "data") {
    return await io.send(
      "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
    );
  }
  state.sendAsDenied = !allowed;
  state.from = sender;
  await io.send("250 2.1.0 Sender OK");
}

/** DATA up to the final `.`; false when the connection ended during it. */
async function smtpData(io: SessionIo, state: SmtpState): Promise<boolean> {
  const denied = state.sendAsDenied;
  await io.send("354 Start mail input; end with <CRLF>.<CRLF>");
  const lines: string[] = [];
  let size = 0;
  while (true) {
    const line = await io.readLine();
    if (line === null || line === OVERFLOW) return false;
    if (line === ".") break;
    const unstuffed = line.startsWith(".") ? line.slice(1) : line;
    size += unstuffed.length + 2;
    lines.push(unstuffed);
  }
  const from = state.from!;
  const to = state.to;
  Object.assign(state, { from: undefined, to: [], sendAsDenied: undefined });
  if (denied) {
    await io.send(smtpSendAsDenied(state.login?.principal ?? "", from));
    return true;
  }
  if (size > SMTP_MAX_MESSAGE) {
    await io.send("552 5.3.4 Message size exceeds fixed maximum message size");
    return true;
  }
  const data = lines.join("\r\n");
  io.session.delivered.push({ from, to, data });
  const messageId = /^Message-ID:\s*(<[^>]*>)/im.exec(data)?.[1] ??
    `<${crypto.randomUUID()}@${SERVER_HOST.toLowerCase()}>`;
  await io.send(`250 2.0.0 OK ${messageId} [Hostname=${SERVER_HOST}] Queued mail for delivery`);
  return true;
}

/** True when any word of `line` is an XOAUTH2 string (so a token travelled with it). */
function containsXoauth2(line: string): boolean {
  return line.split(" ").some((word) => word.length > 20 && parseXoauth2(word) !== null);
}

/** Exchange's greeting date: RFC 5322 in UTC, e.g. `Mon, 20 Nov 2023 09:28:37 +0000`. */
function smtpDate(date: Date): string {
  return date.toUTCString().replace(/GMT$/, "+0000");
}

// ---------------------------------------------------------------- server-side STARTTLS

/**
 * The server side of STARTTLS for the test bed. Deno can upgrade only client
 * connections (`Deno.startTls`), so the plain connection is spliced to a
 * loopback TLS listener that terminates TLS: bytes are copied both ways
 * between the client's TCP connection and an inner connection to that
 * listener, and the listener's accepted `TlsConn` carries the decrypted
 * stream. Connections made here are not counted as client connections.
 */
/** A connection after server-side STARTTLS. */
export interface Spliced {
  /** The decrypted side: read and write the protocol here. */
  conn: Deno.TlsConn;
  /**
   * Settles once the splice has ended (after `conn` or the client's connection
   * closed) and has closed the client's connection; all bytes written to
   * `conn` before it closed have been passed on by then.
   */
  spliced: Promise<void>;
}

export class StartTlsTerminator {
  readonly #listener: Deno.TlsListener;
  /** Accepted inner connections and those waiting for them, by the inner client's port. */
  readonly #accepted = new Map<number, Deno.TlsConn>();
  readonly #waiting = new Map<
    number,
    { resolve: (conn: Deno.TlsConn) => void; reject: (error: Error) => void }
  >();
  readonly #open = new Set<Deno.Conn>();
  readonly #pumps = new Set<Promise<void>>();
  readonly #loop: Promise<void>;
  #closed = false;

  constructor(tls: { certPem: string; keyPem: string }) {
    this.#listener = Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: tls.certPem,
      key: tls.keyPem,
    });
    this.#loop = this.#accept();
  }

  /**
   * Starts TLS as the server on `plain`, which is then only read and written
   * by the splice. The handshake happens on the first use of the returned
   * `conn` (or its `handshake()`). Closing `conn`, or the client closing
   * `plain`, tears the splice down.
   */
  async upgrade(plain: Deno.Conn): Promise<Spliced> {
    if (this.#closed) throw new Error("terminator closed");
    const port = (this.#listener.addr as Deno.NetAddr).port;
    const inner = await Deno.connect({ hostname: "127.0.0.1", port });
    this.#open.add(inner);
    this.#open.add(plain);
    const key = (inner.localAddr as Deno.NetAddr).port;
    const pump = Promise.all([copy(plain, inner), copy(inner, plain)]).then(() => {
      closeQuietly(plain);
      closeQuietly(inner);
      this.#open.delete(plain);
      this.#open.delete(inner);
      this.#pumps.delete(pump);
    });
    this.#pumps.add(pump);
    const ready = this.#accepted.get(key);
    this.#accepted.delete(key);
    const conn = ready ??
      await new Promise<Deno.TlsConn>((resolve, reject) =>
        this.#waiting.set(key, { resolve, reject })
      );
    // Closing `conn` is its user's job; the terminator only forgets it.
    return { conn, spliced: pump.then(() => void this.#open.delete(conn)) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    for (const conn of this.#open) closeQuietly(conn);
    for (const waiter of this.#waiting.values()) waiter.reject(new Error("terminator closed"));
    this.#waiting.clear();
    await this.#loop;
    await Promise.all([...this.#pumps]);
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        this.#open.add(conn);
        const key = (conn.remoteAddr as Deno.NetAddr).port;
        const waiter = this.#waiting.get(key);
        if (waiter) {
          this.#waiting.delete(key);
          waiter.resolve(conn);
        } else {
          this.#accepted.set(key, conn);
        }
      }
    } catch {
      // the listener was closed
    }
  }
}

/** Copies `from` to `to` until either side ends; then closes both, so the other direction ends too. */
async function copy(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  try {
    while (true) {
      const n = await from.read(buffer);
      if (n === null) break;
      let offset = 0;
      while (offset < n) offset += await to.write(buffer.subarray(offset, n));
    }
  } catch {
    // one side was closed
  } finally {
    closeQuietly(from);
    closeQuietly(to);
  }
}

// ---------------------------------------------------------------- XOAUTH2 and tokens

type Xoauth2Result =
  | { ok: false }
  | {
    ok: true;
    mailbox: string;
    access: boolean;
    expires: number;
    /** App ID (app token) or UPN (user token), lower-case. */
    principal: string;
    delegated: boolean;
  };

/** Application role and delegated scope each protocol needs. */
const PERMISSIONS: Record<Protocol, { role: string; scope: string }> = {
  IMAP: { role: "IMAP.AccessAsApp", scope: "IMAP.AccessAsUser.All" },
  POP3: { role: "POP.AccessAsApp", scope: "POP.AccessAsUser.All" },
  SMTP: { role: "SMTP.SendAsApp", scope: "SMTP.Send" },
};

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

  const needed = PERMISSIONS[protocol];
  const delegated = typeof claims.scp === "string";
  if (delegated) {
    const scopes = (claims.scp as string).split(" ");
    if (!scopes.includes(needed.scope)) return { ok: false };
  } else {
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    if (!roles.includes(needed.role)) return { ok: false };
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
  return { ok: true, mailbox, access, expires: claims.exp as number, principal, delegated };
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
