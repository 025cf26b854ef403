/**
 * The bridge's configuration file: JSON an admin writes by hand. `parseBridgeConfig` checks all
 * of it before anything listens or connects, and names the field of the first problem in one
 * line (`-Bridge bridge.json: accounts.scanner.mailbox: ...`, exit 2, BRIDGE_BAD_CONFIG).
 * Keys starting with `_` are comments and ignored; any other unknown key is an error (a typo
 * must not silently fall back to a default).
 */
import { UsageError } from "../errors.ts";
import { mailboxProblem } from "../sasl/xoauth2.ts";
import { type Cloud, CLOUDS } from "../net/clouds.ts";
import { inNetwork, parseIp, parseNetwork } from "../net/ip.ts";
import { caCertificates } from "../cli/ca_file.ts";
import { shown } from "../text.ts";
import { passwordHashProblem } from "./password.ts";
import { createPrivateKey, X509Certificate } from "node:crypto";

/** Protocols a listener may speak in this version. */
export type BridgeProtocol = "POP3" | "IMAP" | "SMTP";

export interface ListenerConfig {
  protocol: BridgeProtocol;
  /** Any address with `tls`; without it loopback only (passwords would cross the network). */
  address: string;
  /** 0 = any free port (the bridge logs the one it got). */
  port: number;
  /** Absent: plain text (loopback only). */
  tls?: ListenerTls;
  /** SMTP only: client addresses that may send without AUTH, each as one account. */
  allowWithoutAuth?: AllowWithoutAuth[];
}

export interface ListenerTls {
  /** `implicit`: TLS from the first byte (995, 993, 465); `starttls`: plain until STLS/STARTTLS. */
  mode: "implicit" | "starttls";
  /** PEM: the server certificate (then any intermediates) and its private key. */
  certificate: string;
  key: string;
  /** Where they were read from: read again when they change (src/bridge/tls_files.ts). */
  certificateFile: string;
  keyFile: string;
}

export interface AllowWithoutAuth {
  /** An exact IP address, or a network `a.b.c.d/n` or `2001:db8::/48`. */
  address: string;
  /** The lower-cased key of the account in `accounts`. */
  account: string;
}

export interface UpstreamConfig {
  host: string;
  port: number;
}

export type BridgeCredential =
  | { kind: "secret"; secret: string }
  | { kind: "certificate"; value: string; password?: string; keyFile?: string }
  /**
   * A cached user sign-in (delegated token): made earlier by the program's own interactive or
   * device-code sign-in; renewed silently with its refresh token, never a new sign-in.
   */
  | { kind: "user"; user: string; tokenCachePath?: string };

export interface AccountConfig {
  /** The local user name as written in the file. */
  name: string;
  /** The Exchange Online mailbox the bridge logs in to for this user. */
  mailbox: string;
  /** `scrypt$N$r$p$salt$hash` made by `-BridgePasswordHash`. */
  passwordHash: string;
  /**
   * SMTP: addresses the account may give as `MAIL FROM` besides its mailbox (shared mailboxes,
   * addresses it has Send As on; Exchange still decides). Exact addresses, compared ignoring case.
   */
  allowedSenders?: string[];
}

export interface BridgeConfig {
  /** The file, for messages. */
  path: string;
  tenantId: string;
  clientId: string;
  credential: BridgeCredential;
  cloud: Cloud;
  /** `https://host[:port]`: Entra ID's login host. */
  authorityHost: string;
  /** Exchange resource of the cloud (the token's scope is `<resource>/.default`). */
  resource: string;
  /** Extra trusted CA certificates (PEM) for Entra ID and the upstream servers. */
  caCerts: string[];
  listeners: ListenerConfig[];
  upstream: Record<BridgeProtocol, UpstreamConfig>;
  /** Keyed by the lower-cased local user name. */
  accounts: Map<string, AccountConfig>;
  timeouts: {
    /** Connect, TLS handshake and each reply of the upstream login. */
    upstreamMs: number;
    /** A session with no byte in either direction for this long is closed. */
    idleMs: number;
    /** After SIGTERM/Ctrl+C, sessions still open after this long are closed. */
    shutdownMs: number;
    /** A session is closed this long after it started, however busy it is. */
    sessionMs: number;
    /** A session not logged in locally this long after it started is closed. */
    loginMs: number;
  };
  /** Sessions open at once; a connection beyond them is refused at once. */
  maxSessions: number;
  /**
   * Sessions open at once from one client address (IPv6: one /64), so that one device stuck in a
   * reconnect loop cannot take every slot; a connection beyond them is refused at once.
   */
  maxSessionsPerAddress: number;
  /** Delay of each local login from an address after one recent failure (doubling with more). */
  failureDelayMs: number;
}

/** Reads a file named in the configuration (secret, CA, TLS certificate and key); throws with its message. */
export type ReadFile = (path: string) => string;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]$/i;
const HOST =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const LOCAL_NAME = /^[\x21-\x7e]{1,64}$/;

/**
 * `sessionSeconds`: 4 hours. POP3 and SMTP sessions last seconds to minutes; an IMAP client that
 * stays connected (IDLE) reconnects on its own when closed. The limit bounds how long a session
 * outlives a change (an account removed from this file, the app's access revoked: the upstream
 * login is only checked at its start) and how long a stuck or hostile session holds a slot,
 * while a slow full download of a large mailbox still fits.
 */
export const DEFAULT_TIMEOUTS = {
  upstreamSeconds: 30,
  idleSeconds: 600,
  shutdownSeconds: 10,
  sessionSeconds: 4 * 3600,
  loginSeconds: 60,
};
/**
 * Sessions at once: each relayed session holds two file descriptors and some memory; far more
 * than a site's scanners and fetchers need, far less than a flood of connections could open.
 */
export const DEFAULT_MAX_SESSIONS = 200;
/** A quarter of the default maxSessions: a stuck device leaves room for the others. */
export const DEFAULT_MAX_SESSIONS_PER_ADDRESS = 50;
export const DEFAULT_FAILURE_DELAY_MS = 1000;

/** Whether `address` is this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase();
  return a === "localhost" || a === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

type Json = Record<string, unknown>;

class Checker {
  constructor(readonly path: string) {}

  fail(field: string, problem: string): never {
    throw new UsageError(`-Bridge ${shown(this.path)}: ${field}: ${problem}`, {
      code: "BRIDGE_BAD_CONFIG",
    });
  }

  object(value: unknown, field: string, keys: readonly string[]): Json {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.fail(field, "expected an object { ... }");
    }
    for (const key of Object.keys(value)) {
      if (!key.startsWith("_") && !keys.includes(key)) {
        this.fail(
          field === "(top level)" ? key : `${field}.${key}`,
          `unknown setting; expected one of ${keys.join(", ")} (keys starting with _ are comments)`,
        );
      }
    }
    return value as Json;
  }

  string(value: unknown, field: string): string {
    if (typeof value !== "string" || value.trim() === "") {
      this.fail(field, "expected a non-empty string");
    }
    return value.trim();
  }

  optionalString(value: unknown, field: string): string | undefined {
    return value === undefined ? undefined : this.string(value, field);
  }

  number(value: unknown, field: string, min: number, max: number, integer = true): number {
    if (
      typeof value !== "number" || !Number.isFinite(value) || value < min || value > max ||
      (integer && !Number.isInteger(value))
    ) {
      this.fail(field, `expected ${integer ? "a whole number" : "a number"} from ${min} to ${max}`);
    }
    return value;
  }
}

/** Parses and checks the configuration text; `readFile` reads the files it names. */
export function parseBridgeConfig(text: string, path: string, readFile: ReadFile): BridgeConfig {
  const c: Checker = new Checker(path);
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (error) {
    c.fail("(top level)", `not valid JSON (${error instanceof Error ? error.message : error})`);
  }
  const top = c.object(raw, "(top level)", [
    "tenantId",
    "clientId",
    "credential",
    "cloud",
    "authorityHost",
    "caFile",
    "listeners",
    "upstream",
    "accounts",
    "timeouts",
    "failureDelaySeconds",
    "maxSessions",
    "maxSessionsPerAddress",
  ]);

  const tenantId = c.string(top.tenantId, "tenantId");
  if (!GUID.test(tenantId) && !DOMAIN.test(tenantId)) {
    c.fail("tenantId", `expected the Directory (tenant) ID or domain, got '${shown(tenantId)}'`);
  }
  const clientId = c.string(top.clientId, "clientId");
  if (!GUID.test(clientId)) {
    c.fail("clientId", `expected the Application (client) ID (a GUID), got '${shown(clientId)}'`);
  }

  const cloudName = top.cloud === undefined ? "Global" : c.string(top.cloud, "cloud");
  const cloud = (Object.keys(CLOUDS) as Cloud[]).find((k) =>
    k.toLowerCase() === cloudName.toLowerCase()
  );
  if (!cloud) c.fail("cloud", `expected one of ${Object.keys(CLOUDS).join(", ")}`);

  let authorityHost = CLOUDS[cloud].authorityHost;
  if (top.authorityHost !== undefined) {
    const given = c.string(top.authorityHost, "authorityHost");
    let url: URL | undefined;
    try {
      url = new URL(given);
    } catch {
      // reported below
    }
    if (!url || url.protocol !== "https:" || (url.pathname !== "/" && url.pathname !== "")) {
      c.fail("authorityHost", `expected an https URL of the host only, got '${shown(given)}'`);
    }
    authorityHost = `https://${url.host}`;
  }

  let caCerts: string[] = [];
  if (top.caFile !== undefined) {
    const caFile = c.string(top.caFile, "caFile");
    const pem = readOrFail(c, readFile, caFile, "caFile");
    try {
      caCerts = caCertificates(pem, caFile);
    } catch (error) {
      c.fail("caFile", (error instanceof Error ? error.message : "").replace(/^-CaFile: /, ""));
    }
  }

  const credential = parseCredential(c, top.credential, readFile);

  if (!Array.isArray(top.listeners) || top.listeners.length === 0) {
    c.fail("listeners", "expected a list with at least one listener [{ ... }]");
  }
  const listeners = top.listeners.map((l, i) => parseListener(c, l, `listeners[${i}]`, readFile));

  const upstreamRaw = top.upstream === undefined
    ? {}
    : c.object(top.upstream, "upstream", ["pop3", "imap", "smtp"]);
  const upstream: Record<BridgeProtocol, UpstreamConfig> = {
    POP3: parseUpstream(c, upstreamRaw.pop3, "upstream.pop3", {
      host: CLOUDS[cloud].mailHost,
      port: 995,
    }),
    IMAP: parseUpstream(c, upstreamRaw.imap, "upstream.imap", {
      host: CLOUDS[cloud].mailHost,
      port: 993,
    }),
    SMTP: parseUpstream(c, upstreamRaw.smtp, "upstream.smtp", {
      host: CLOUDS[cloud].smtpHost,
      port: 587,
    }),
  };

  const accountsRaw = c.object(top.accounts, "accounts", Object.keys(top.accounts ?? {}));
  const accounts = new Map<string, AccountConfig>();
  for (const [name, value] of Object.entries(accountsRaw)) {
    if (name.startsWith("_")) continue;
    const field = `accounts.${name}`;
    if (!LOCAL_NAME.test(name)) {
      c.fail(field, "a local user name is 1-64 printable ASCII characters without spaces");
    }
    const account = c.object(value, field, ["mailbox", "passwordHash", "allowedSenders"]);
    const mailbox = c.string(account.mailbox, `${field}.mailbox`);
    const problem = mailboxProblem(mailbox);
    if (problem) c.fail(`${field}.mailbox`, `'${shown(mailbox)}' ${problem}`);
    const passwordHash = c.string(account.passwordHash, `${field}.passwordHash`);
    const hashProblem = passwordHashProblem(passwordHash);
    if (hashProblem) {
      c.fail(
        `${field}.passwordHash`,
        `${hashProblem}; make one with -BridgePasswordHash (never put the password itself here)`,
      );
    }
    if (accounts.has(name.toLowerCase())) {
      c.fail(field, "the same user name (ignoring case) appears twice");
    }
    const parsed: AccountConfig = { name, mailbox, passwordHash };
    if (account.allowedSenders !== undefined) {
      parsed.allowedSenders = parseAllowedSenders(
        c,
        account.allowedSenders,
        `${field}.allowedSenders`,
        mailbox,
      );
    }
    accounts.set(name.toLowerCase(), parsed);
  }
  if (accounts.size === 0) c.fail("accounts", "expected at least one local account");
  listeners.forEach((l, i) =>
    l.allowWithoutAuth?.forEach((a, j) => {
      if (!accounts.has(a.account)) {
        c.fail(
          `listeners[${i}].allowWithoutAuth[${j}].account`,
          `'${shown(a.account)}' is not in accounts`,
        );
      }
    })
  );

  const t = top.timeouts === undefined
    ? {}
    : c.object(top.timeouts, "timeouts", Object.keys(DEFAULT_TIMEOUTS));
  const seconds = (key: keyof typeof DEFAULT_TIMEOUTS) =>
    t[key] === undefined
      ? DEFAULT_TIMEOUTS[key] * 1000
      : c.number(t[key], `timeouts.${key}`, 0.1, 86400, false) * 1000;

  return {
    path,
    tenantId,
    clientId,
    credential,
    cloud,
    authorityHost,
    resource: CLOUDS[cloud].resource,
    caCerts,
    listeners,
    upstream,
    accounts,
    timeouts: {
      upstreamMs: seconds("upstreamSeconds"),
      idleMs: seconds("idleSeconds"),
      shutdownMs: seconds("shutdownSeconds"),
      sessionMs: seconds("sessionSeconds"),
      loginMs: seconds("loginSeconds"),
    },
    maxSessions: top.maxSessions === undefined
      ? DEFAULT_MAX_SESSIONS
      : c.number(top.maxSessions, "maxSessions", 1, 100_000),
    maxSessionsPerAddress: top.maxSessionsPerAddress === undefined
      ? DEFAULT_MAX_SESSIONS_PER_ADDRESS
      : c.number(top.maxSessionsPerAddress, "maxSessionsPerAddress", 1, 100_000),
    failureDelayMs: top.failureDelaySeconds === undefined
      ? DEFAULT_FAILURE_DELAY_MS
      : c.number(top.failureDelaySeconds, "failureDelaySeconds", 0, 60, false) * 1000,
  };
}

function readOrFail(c: Checker, readFile: ReadFile, file: string, field: string): string {
  try {
    return readFile(file);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "file not found"
      : error instanceof Error
      ? error.message
      : String(error);
    c.fail(field, `${reason}: ${shown(file)}`);
  }
}

function parseCredential(c: Checker, value: unknown, readFile: ReadFile): BridgeCredential {
  const keys = [
    "secret",
    "secretFile",
    "certificate",
    "certificatePassword",
    "keyFile",
    "user",
    "tokenCachePath",
  ];
  const o = c.object(value, "credential", keys);
  const given = ["secret", "secretFile", "certificate", "user"].filter((k) => o[k] !== undefined);
  if (given.length !== 1) {
    c.fail(
      "credential",
      "give exactly one of secretFile (recommended), secret, certificate (file or thumbprint), " +
        "or user (a cached sign-in)",
    );
  }
  if (o.user === undefined && o.tokenCachePath !== undefined) {
    c.fail("credential.tokenCachePath", "only with credential.user");
  }
  if (o.certificate === undefined) {
    for (const k of ["certificatePassword", "keyFile"]) {
      if (o[k] !== undefined) c.fail(`credential.${k}`, "only with credential.certificate");
    }
    if (o.user !== undefined) {
      const user = c.string(o.user, "credential.user");
      const problem = mailboxProblem(user);
      if (problem) c.fail("credential.user", `'${shown(user)}' ${problem}`);
      return {
        kind: "user",
        user,
        tokenCachePath: c.optionalString(o.tokenCachePath, "credential.tokenCachePath"),
      };
    }
    if (o.secret !== undefined) {
      return { kind: "secret", secret: c.string(o.secret, "credential.secret") };
    }
    const file = c.string(o.secretFile, "credential.secretFile");
    const secret = readOrFail(c, readFile, file, "credential.secretFile").trim();
    if (secret === "") c.fail("credential.secretFile", `the file is empty: ${shown(file)}`);
    return { kind: "secret", secret };
  }
  const password = o.certificatePassword;
  if (password !== undefined && typeof password !== "string") {
    c.fail("credential.certificatePassword", "expected a string");
  }
  return {
    kind: "certificate",
    value: c.string(o.certificate, "credential.certificate"),
    password,
    keyFile: c.optionalString(o.keyFile, "credential.keyFile"),
  };
}

/**
 * The widest network `allowWithoutAuth` takes (prefix lengths): everyone in it may send as the
 * account without a password, so `0.0.0.0/0` or `::/0` would make an open relay for its mailbox.
 */
export const ALLOW_WITHOUT_AUTH_V4 = 24;
export const ALLOW_WITHOUT_AUTH_V6 = 64;

function parseListener(
  c: Checker,
  value: unknown,
  field: string,
  readFile: ReadFile,
): ListenerConfig {
  const o = c.object(value, field, ["protocol", "address", "port", "tls", "allowWithoutAuth"]);
  const protocol = c.string(o.protocol, `${field}.protocol`).toUpperCase();
  const known: Record<string, BridgeProtocol> = {
    POP3: "POP3",
    POP: "POP3",
    IMAP: "IMAP",
    IMAP4: "IMAP",
    SMTP: "SMTP",
    SUBMISSION: "SMTP",
  };
  if (!(protocol in known)) c.fail(`${field}.protocol`, "expected POP3, IMAP or SMTP");
  const address = o.address === undefined ? "127.0.0.1" : c.string(o.address, `${field}.address`);
  const tls = o.tls === undefined ? undefined : parseTls(c, o.tls, `${field}.tls`, readFile);
  if (!tls && !isLoopback(address)) {
    // Local passwords must never cross a network in plain text.
    c.fail(
      `${field}.tls`,
      `${shown(address)} is not a loopback address, so the listener needs TLS: ` +
        '"tls": { "mode": "implicit" or "starttls", "certificate": "<PEM file>", "key": "<PEM file>" }',
    );
  }
  const listener: ListenerConfig = {
    protocol: known[protocol],
    address,
    port: c.number(o.port, `${field}.port`, 0, 65535),
  };
  if (tls) listener.tls = tls;
  if (o.allowWithoutAuth !== undefined) {
    const f = `${field}.allowWithoutAuth`;
    if (listener.protocol !== "SMTP") c.fail(f, "only on an SMTP listener");
    if (!Array.isArray(o.allowWithoutAuth)) {
      c.fail(f, 'expected a list [{ "address": "<client IP>", "account": "<local user>" }]');
    }
    listener.allowWithoutAuth = o.allowWithoutAuth.map((entry, j) => {
      const e = c.object(entry, `${f}[${j}]`, ["address", "account"]);
      const client = c.string(e.address, `${f}[${j}].address`);
      const network = parseNetwork(client);
      if (network === undefined) {
        c.fail(
          `${f}[${j}].address`,
          `expected an IP address or network (a.b.c.d/n, 2001:db8::/64), got '${shown(client)}'`,
        );
      }
      const widest = network.version === 4 ? ALLOW_WITHOUT_AUTH_V4 : ALLOW_WITHOUT_AUTH_V6;
      if (network.bits < widest) {
        // 0.0.0.0/0 on a listener anyone reaches would be an open relay for the mailbox.
        c.fail(
          `${f}[${j}].address`,
          `'${shown(client)}' is wider than /${widest}: everyone in it could send as the account ` +
            `without a password; list single devices (a network of at most /${ALLOW_WITHOUT_AUTH_V4} ` +
            `for IPv4, /${ALLOW_WITHOUT_AUTH_V6} for IPv6)`,
        );
      }
      return { address: client, account: c.string(e.account, `${f}[${j}].account`).toLowerCase() };
    });
  }
  return listener;
}

function parseTls(c: Checker, value: unknown, field: string, readFile: ReadFile): ListenerTls {
  const o = c.object(value, field, ["mode", "certificate", "key"]);
  const mode = c.string(o.mode, `${field}.mode`).toLowerCase();
  if (mode !== "implicit" && mode !== "starttls") {
    c.fail(`${field}.mode`, "expected implicit (TLS from the first byte) or starttls");
  }
  const certFile = c.string(o.certificate, `${field}.certificate`);
  const certificate = readOrFail(c, readFile, certFile, `${field}.certificate`);
  const keyFile = c.string(o.key, `${field}.key`);
  const key = readOrFail(c, readFile, keyFile, `${field}.key`);
  const problem = tlsPairProblem(certificate, key, certFile, keyFile);
  if (problem) c.fail(`${field}.${problem.field}`, problem.why);
  return { mode, certificate, key, certificateFile: certFile, keyFile };
}

/**
 * Why a PEM certificate and private key cannot serve TLS together (which of the two, and why,
 * naming the files), or undefined when they can. At start and when the files change.
 */
export function tlsPairProblem(
  certificate: string,
  key: string,
  certFile: string,
  keyFile: string,
): { field: "certificate" | "key"; why: string } | undefined {
  let cert: X509Certificate | undefined;
  try {
    if (certificate.includes("-----BEGIN CERTIFICATE-----")) {
      cert = new X509Certificate(certificate);
    }
  } catch {
    // reported below
  }
  if (!cert) {
    return {
      field: "certificate",
      why: `not a PEM certificate (-----BEGIN CERTIFICATE-----): ${shown(certFile)}`,
    };
  }
  let privateKey: ReturnType<typeof createPrivateKey> | undefined;
  try {
    if (/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(key)) privateKey = createPrivateKey(key);
  } catch {
    // reported below
  }
  if (!privateKey) {
    return {
      field: "key",
      why: `not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----): ${shown(keyFile)}`,
    };
  }
  if (!cert.checkPrivateKey(privateKey)) {
    return { field: "key", why: `${shown(keyFile)} is not the key of ${shown(certFile)}` };
  }
  return undefined;
}

/**
 * Whether the client address `peer` lies in `pattern`: an exact address or a network
 * (`a.b.c.d/n`, `2001:db8::/48`); an IPv4-mapped `::ffff:a.b.c.d` counts as IPv4.
 */
export function addressMatches(pattern: string, peer: string): boolean {
  const network = parseNetwork(pattern);
  const address = parseIp(peer);
  return network !== undefined && address !== undefined && inNetwork(network, address);
}

/**
 * An account's `allowedSenders`: each an address as the mailbox is checked, no wildcard, not the
 * mailbox itself, none twice (ignoring case).
 */
function parseAllowedSenders(c: Checker, value: unknown, field: string, mailbox: string): string[] {
  if (!Array.isArray(value)) {
    c.fail(field, 'expected a list of addresses ["noreply@contoso.com", ...]');
  }
  const seen = new Set<string>([mailbox.toLowerCase()]);
  return value.map((entry, i) => {
    const f = `${field}[${i}]`;
    const sender = c.string(entry, f);
    if (sender.includes("*")) {
      c.fail(f, `'${shown(sender)}': wildcards are not supported; list each address`);
    }
    const problem = mailboxProblem(sender);
    if (problem) c.fail(f, `'${shown(sender)}' ${problem}`);
    if (sender.toLowerCase() === mailbox.toLowerCase()) {
      c.fail(f, `'${shown(sender)}' is the account's mailbox, which may always send; remove it`);
    }
    if (seen.has(sender.toLowerCase())) {
      c.fail(f, `'${shown(sender)}' appears twice (ignoring case)`);
    }
    seen.add(sender.toLowerCase());
    return sender;
  });
}

function parseUpstream(
  c: Checker,
  value: unknown,
  field: string,
  defaults: UpstreamConfig,
): UpstreamConfig {
  if (value === undefined) return defaults;
  const o = c.object(value, field, ["host", "port"]);
  const host = o.host === undefined ? defaults.host : c.string(o.host, `${field}.host`);
  if (!HOST.test(host) && !/^[0-9a-f:.]+$/i.test(host)) {
    c.fail(`${field}.host`, `expected a host name or IP address, got '${shown(host)}'`);
  }
  const port = o.port === undefined ? defaults.port : c.number(o.port, `${field}.port`, 1, 65535);
  return { host, port };
}
