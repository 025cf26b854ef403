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
import { caCertificates } from "../cli/ca_file.ts";
import { shown } from "../text.ts";
import { passwordHashProblem } from "./password.ts";

/** Protocols a listener may speak in this version. */
export type BridgeProtocol = "POP3" | "IMAP" | "SMTP";

export interface ListenerConfig {
  protocol: BridgeProtocol;
  /** Loopback only in this version. */
  address: string;
  /** 0 = any free port (the bridge logs the one it got). */
  port: number;
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
  };
  /** Delay before a failed local login is answered. */
  failureDelayMs: number;
}

/** Reads a file named in the configuration (secret file, CA file); throws with its message. */
export type ReadFile = (path: string) => string;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]$/i;
const HOST =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const LOCAL_NAME = /^[\x21-\x7e]{1,64}$/;

export const DEFAULT_TIMEOUTS = { upstreamSeconds: 30, idleSeconds: 600, shutdownSeconds: 10 };
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
  const listeners = top.listeners.map((l, i) => parseListener(c, l, `listeners[${i}]`));

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
    const account = c.object(value, field, ["mailbox", "passwordHash"]);
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
    accounts.set(name.toLowerCase(), { name, mailbox, passwordHash });
  }
  if (accounts.size === 0) c.fail("accounts", "expected at least one local account");

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
    },
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

function parseListener(c: Checker, value: unknown, field: string): ListenerConfig {
  const o = c.object(value, field, ["protocol", "address", "port"]);
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
  if (!isLoopback(address)) {
    c.fail(
      `${field}.address`,
      `${shown(address)} is not a loopback address; listening beyond this machine needs TLS, ` +
        "which this version of the bridge does not have yet (use 127.0.0.1 or ::1)",
    );
  }
  return {
    protocol: known[protocol],
    address,
    port: c.number(o.port, `${field}.port`, 0, 65535),
  };
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
