/**
 * Turns bound parameters into validated, typed options with defaults. Every
 * check that can be made before touching the network is made here, so bad
 * input fails fast with exit 2 and no traffic. The only I/O is reading local
 * files named by parameters (existence and a first sanity check).
 */
import { UsageError } from "../errors.ts";
import { mailboxProblem } from "../sasl/xoauth2.ts";
import { shown } from "../text.ts";
import { decodeText, FILE_HINTS, readFileBounded, readFileBoundedSync } from "../bounded_input.ts";
import { caCertificates } from "./ca_file.ts";
import type { BoundValue } from "./bind.ts";
import type { ParameterSetName, SIGN_IN_SETS } from "./parameters.ts";

/** The sets that sign in from the command line (the bridge's sets have no `Options`). */
export type SignInSetName = typeof SIGN_IN_SETS[number];
import { type Cloud, CLOUDS } from "../net/clouds.ts";
import { cacheFolderProblem } from "../auth/cache_location.ts";
import { mailRoute, type ProxyRoute, proxySettings, tokenRoute } from "../net/proxy_choice.ts";

export type Protocol = "IMAP" | "POP3" | "SMTP";
export type OutputFormat = "Text" | "Json" | "Token" | "Sasl";

export const DEFAULT_PORTS: Record<Protocol, number> = { IMAP: 993, POP3: 995, SMTP: 587 };
export const DEFAULT_TIMEOUT_SECONDS = 30;

/** Where and how a mail session connects: all it needs besides the mailbox and the SASL string. */
export interface MailTarget {
  protocol: Protocol;
  server: string;
  port: number;
  /** PEM text of -CaFile, added to the system roots. */
  caCerts: string[];
  timeoutSeconds: number;
  /** -Proxy unless NO_PROXY exempts the server: the mail connection is a CONNECT tunnel. */
  proxy?: ProxyRoute;
  /** SMTP only: send one test message to this address after the login. */
  sendTestMessageTo?: string;
}

/** What every sign-in method has. */
interface CommonOptions {
  tenantId: string;
  clientId: string;
  /**
   * Mailbox that goes into the XOAUTH2 `user=` when known before the token:
   * client credentials: the first -targetMailbox; user sign-in: -SharedMailbox,
   * else -LoginHint (else the signed-in user, known only after sign-in).
   */
  mailbox?: string;
  cloud: Cloud;
  /** Resource of the Exchange scope for the cloud. */
  resource: string;
  /** -Proxy, validated; its credentials are secrets. */
  proxy?: URL;
  /**
   * The token request's proxy as Deno's fetch will choose it (-Proxy, else ALL_PROXY,
   * all_proxy, HTTPS_PROXY, https_proxy; none when NO_PROXY exempts the authority), for
   * messages; its credentials are secrets too.
   */
  tokenProxy?: ProxyRoute;
  /** Token cache folder (-TokenCachePath); undefined = the OS default. */
  tokenCachePath?: string;
  noTokenCache: boolean;
  /** -Diagnose: run every check and print the checklist. */
  diagnose: boolean;
  /** -Language; undefined = from the environment. */
  language?: "en" | "de";
  /** Normalized `https://host[:port]`, no trailing slash. */
  authorityHost: string;
  /** PEM text of -CaFile, read once here. */
  caCerts: string[];
  outputFormat: OutputFormat;
  noConnect: boolean;
  timeoutSeconds: number;
  verbose: boolean;
  mail: MailTarget;
  /**
   * Whether -Protocol and -Port were given. Without -Protocol the token's permissions may
   * choose IMAP or POP3 (app/run.ts); absent = both given.
   */
  explicit?: { protocol: boolean; port: boolean };
}

/** Client credentials: the app signs in itself and may check many mailboxes with one token. */
interface AppCommon extends CommonOptions {
  mailbox: string;
  /** Every mailbox to check (-targetMailbox list and -MailboxFile, deduplicated); never empty. */
  mailboxes: string[];
  throttleLimit: number;
}

export interface SecretOptions extends AppCommon {
  parameterSet: "clientcredentialsSecret";
  /** The client secret, or `stdin` for `-clientsecret -` (read when the token is requested). */
  secret: { from: "value"; value: string } | { from: "stdin" };
}

export interface CertificateOptions extends AppCommon {
  parameterSet: "clientcredentialsCertificate";
  certificate: { value: string; password?: string; keyFile?: string };
}

/** User sign-in: delegated token of a person, for their own or a shared mailbox. */
interface UserCommon extends CommonOptions {
  loginHint?: string;
  sharedMailbox?: string;
  /** -Scopes; undefined = the default `.default` scope. */
  scopes?: string[];
}

export interface AuthorizationCodeOptions extends UserCommon {
  parameterSet: "authorizationcode";
  redirectUri: string;
  loginHint: string;
}

export interface DeviceCodeOptions extends UserCommon {
  parameterSet: "devicecode";
}

export type AppOptions = SecretOptions | CertificateOptions;
export type UserOptions = AuthorizationCodeOptions | DeviceCodeOptions;
/** Validated options, one shape per sign-in method (parameter set). */
export type Options = AppOptions | UserOptions;

/** User sign-in (authorizationcode, devicecode) rather than the app's own credentials. */
export function isUserSignIn(options: Options): options is UserOptions {
  return options.parameterSet === "authorizationcode" || options.parameterSet === "devicecode";
}

/** Whether this run logs in to the mail server (Token/Sasl output and -NoConnect only fetch). */
export function connects(options: Options): boolean {
  return !options.noConnect &&
    (options.outputFormat === "Text" || options.outputFormat === "Json");
}

/** The token's scopes: -Scopes, else the cloud's Exchange `.default` (as the original asks). */
export function scopesFor(options: Options): string[] {
  return (isUserSignIn(options) ? options.scopes : undefined) ?? [`${options.resource}/.default`];
}

function str(values: ReadonlyMap<string, BoundValue>, name: string): string | undefined {
  const v = values.get(name);
  return v === undefined ? undefined : String(v);
}

/** A parameter the resolved set makes mandatory (or that `values.has` just confirmed). */
function required(values: ReadonlyMap<string, BoundValue>, name: string): string {
  const v = str(values, name);
  if (v === undefined) {
    throw new UsageError(`missing mandatory parameter -${name}.`, { code: "MISSING_MANDATORY" });
  }
  return v;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]$/i;
const HOST_LABELS =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function checkTenant(tenant: string, set: ParameterSetName): string {
  const t = tenant.trim();
  const lower = t.toLowerCase();
  const userSet = set === "authorizationcode" || set === "devicecode";
  if (["common", "organizations", "consumers"].includes(lower) && !userSet) {
    throw new UsageError(
      `-tenantID: '${shown(t)}' is not a tenant; app sign-in needs the Directory (tenant) ID ` +
        `or the tenant's domain.`,
      { code: "BAD_TENANT" },
    );
  }
  if (!GUID.test(t) && !DOMAIN.test(t) && !["common", "organizations"].includes(lower)) {
    throw new UsageError(
      `-tenantID: expected the Directory (tenant) ID (a GUID) or a domain like ` +
        `contoso.onmicrosoft.com, got '${shown(t)}'.`,
      { code: "BAD_TENANT" },
    );
  }
  return t;
}

function checkClientId(id: string): string {
  const t = id.trim();
  if (!GUID.test(t)) {
    throw new UsageError(
      `-clientId: expected the Application (client) ID, a GUID like ` +
        `11111111-2222-3333-4444-555555555555, got '${shown(t)}'.`,
      { code: "BAD_CLIENT_ID" },
    );
  }
  return t;
}

/** `where` names the source: `-targetMailbox`, or `-MailboxFile: line 3`. */
function checkMailbox(where: string, address: string): string {
  const problem = mailboxProblem(address.trim());
  if (problem) {
    throw new UsageError(`${where}: '${shown(address)}' ${problem}.`, { code: "BAD_MAILBOX" });
  }
  return address.trim();
}

/** An IPv6 address as URL parsers take it (`:::` and other malformed ones are not). */
function isIpv6(text: string): boolean {
  if (!text.includes(":") || !/^[0-9a-f:.]+$/i.test(text)) return false;
  try {
    return new URL(`http://[${text}]/`).hostname !== "";
  } catch {
    return false;
  }
}

function checkServer(host: string): string {
  const h = host.trim();
  const withPort = /^(\[[^\]]*\]|[^:]+):(\d{1,5})$/.exec(h);
  if (withPort) {
    throw new UsageError(
      `-Server: '${shown(h)}' includes a port; give the host alone and the port as ` +
        `-Port ${withPort[2]}.`,
      { code: "BAD_SERVER" },
    );
  }
  const bare = h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
  if (HOST_LABELS.test(h) || IPV4.test(h) || isIpv6(bare)) return bare;
  throw new UsageError(
    `-Server: expected a host name or IP address without scheme or port, got '${shown(h)}'.`,
    { code: "BAD_SERVER" },
  );
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`-Port: expected 1-65535, got ${port}.`, { code: "BAD_PORT" });
  }
  return port;
}

function checkAuthorityHost(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new UsageError(`-AuthorityHost: expected an https URL, got '${shown(raw)}'.`, {
      code: "BAD_URL",
    });
  }
  if (url.protocol !== "https:") {
    throw new UsageError(
      `-AuthorityHost: must use https (Entra ID only answers over TLS), got '${url.protocol}'.`,
      { code: "BAD_URL" },
    );
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
    throw new UsageError(
      `-AuthorityHost: give the host only (e.g. https://login.microsoftonline.com); ` +
        `the tenant comes from -tenantID.`,
      { code: "BAD_URL" },
    );
  }
  if (url.username || url.password) {
    throw new UsageError(`-AuthorityHost: must not contain user name or password.`, {
      code: "BAD_URL",
    });
  }
  return `https://${url.host}`;
}

function checkRedirectUri(raw: string): string {
  try {
    const url = new URL(raw.trim());
    if (
      !["http:", "https:", "ms-appx-web:"].includes(url.protocol) && !url.protocol.includes(".")
    ) {
      throw new Error("scheme");
    }
    return raw.trim();
  } catch {
    throw new UsageError(
      `-redirectUri: expected an absolute URI like http://localhost, got '${shown(raw)}'.`,
      { code: "BAD_URL" },
    );
  }
}

function checkScopes(raw: string): string[] {
  const scopes = raw.split(/[\s,]+/).filter((x) => x !== "");
  for (const scope of scopes) {
    if (!/^[\x21-\x7e]+$/.test(scope)) {
      throw new UsageError(`-Scopes: '${shown(scope)}' is not a valid scope.`, {
        code: "BAD_SCOPE",
      });
    }
  }
  if (scopes.length === 0) {
    throw new UsageError("-Scopes: give at least one scope.", { code: "BAD_SCOPE" });
  }
  return scopes;
}

function checkThrottle(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new UsageError(`-ThrottleLimit: expected 1-256, got ${n}.`, { code: "BAD_NUMBER" });
  }
  return n;
}

function checkSendTo(protocol: Protocol, address: string): string {
  if (protocol !== "SMTP") {
    throw new UsageError("-SendTestMessageTo: only with -Protocol SMTP.", {
      code: "BAD_COMBINATION",
    });
  }
  return checkMailbox("-SendTestMessageTo", address);
}

function checkProxy(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new UsageError("-Proxy: expected http://[user:password@]host:port.", { code: "BAD_URL" });
  }
  if (url.protocol !== "http:" || !url.hostname || (url.pathname !== "/" && url.pathname !== "")) {
    throw new UsageError("-Proxy: expected http://[user:password@]host:port.", { code: "BAD_URL" });
  }
  return url;
}

/**
 * -targetMailbox and -MailboxFile, checked, in order, each address once; never empty.
 * Both take lists separated by `,` or `;` (Outlook's separator); file lines are named
 * by number in messages.
 */
function collectMailboxes(
  target: string | undefined,
  file: string | undefined,
  files?: FileTexts,
): string[] {
  const raw: [string, string][] = [];
  for (const part of (target ?? "").split(/[,;]/)) {
    if (part.trim() !== "" || target === "") raw.push(["-targetMailbox", part]);
  }
  if (file !== undefined) {
    const text = readFileOrFail("MailboxFile", file, files);
    let fromFile = 0;
    text.split(/\r?\n/).forEach((line, i) => {
      for (const part of line.replace(/#.*$/, "").split(/[,;]/)) {
        if (part.trim() === "") continue;
        raw.push([`-MailboxFile: line ${i + 1}`, part]);
        fromFile++;
      }
    });
    if (fromFile === 0) {
      throw new UsageError(`-MailboxFile: no mailbox in ${shown(file)}`, { code: "BAD_FILE" });
    }
  }
  const seen = new Set<string>();
  const out: string[] = [];
  for (const [from, address] of raw) {
    const checked = checkMailbox(from, address);
    if (!seen.has(checked.toLowerCase())) {
      seen.add(checked.toLowerCase());
      out.push(checked);
    }
  }
  return out;
}

function checkTimeout(seconds: number): number {
  if (!(seconds >= 0.1 && seconds <= 3600)) {
    throw new UsageError(`-TimeoutSeconds: expected a number of seconds from 0.1 to 3600.`, {
      code: "BAD_TIMEOUT",
    });
  }
  return seconds;
}

/** Files named by parameters hold a few addresses or certificates: more is a wrong file. */
const MAX_FILE_BYTES: Record<string, number> = { MailboxFile: 1024 * 1024, CaFile: 4096 * 1024 };

/** The parameters whose files buildOptions reads (others are read where they are used). */
const READ_FILES = ["CaFile", "MailboxFile"] as const;

/** Texts of the files named by READ_FILES, read beforehand by readFileArguments(). */
export type FileTexts = ReadonlyMap<string, string>;

/** A parameter's file could not be read: exit 2 naming the parameter (`-<name>`) and why. */
export function fileProblem(name: string, path: string, error: unknown): UsageError {
  if (error instanceof UsageError) return error;
  const reason = error instanceof Deno.errors.NotFound
    ? "file not found"
    : error instanceof Deno.errors.IsADirectory
    ? "is a folder, not a file"
    : "cannot be read";
  return new UsageError(`-${name}: ${reason}: ${path}`, { code: "BAD_FILE", cause: error });
}

/**
 * Reads -CaFile and -MailboxFile with the same bounds as standard input: at most their size
 * limit, within -TimeoutSeconds. A FIFO or `<(...)` that its writer never closes, or that has
 * no writer at all (opening waits for one), ends as INPUT_TIMEOUT instead of hanging the run.
 */
export async function readFileArguments(
  values: ReadonlyMap<string, BoundValue>,
): Promise<FileTexts> {
  const timeoutMs = 1000 *
    (values.has("TimeoutSeconds")
      ? checkTimeout(values.get("TimeoutSeconds") as number)
      : DEFAULT_TIMEOUT_SECONDS);
  const texts = new Map<string, string>();
  for (const name of READ_FILES) {
    const path = str(values, name);
    if (path === undefined) continue;
    const what = `-${name}: ${shown(path)}`;
    try {
      const info = Deno.statSync(path);
      if (info.isDirectory) throw new Deno.errors.IsADirectory(path);
      if (info.isFile) {
        // A plain file cannot stall: read at once (the asynchronous reader's thread hop and
        // timer cost a cached-token run a fifth of its time).
        texts.set(name, readFileBoundedSync(path, what, MAX_FILE_BYTES[name] ?? 1 << 20));
        continue;
      }
      // A pipe or device may never deliver or never end: bounded and within -TimeoutSeconds.
      const bytes = await readFileBounded(path, {
        what,
        maxBytes: MAX_FILE_BYTES[name],
        timeoutMs,
        ...FILE_HINTS,
      });
      texts.set(name, decodeText(bytes, what));
    } catch (error) {
      throw fileProblem(name, path, error);
    }
  }
  return texts;
}

function readFileOrFail(name: string, path: string, files?: FileTexts): string {
  const read = files?.get(name);
  if (read !== undefined) return read;
  try {
    // Without readFileArguments() (tests): a FIFO would block this synchronous read forever.
    const info = Deno.statSync(path);
    if (info.isFifo || info.isSocket) {
      throw new UsageError(`-${name}: ${path} is a pipe; it is read by readFileArguments()`, {
        code: "BAD_FILE",
      });
    }
    return readFileBoundedSync(path, `-${name}: ${shown(path)}`, MAX_FILE_BYTES[name] ?? 1 << 20);
  } catch (error) {
    throw fileProblem(name, path, error);
  }
}

function checkCaFile(path: string, files?: FileTexts): string[] {
  return caCertificates(readFileOrFail("CaFile", path, files), path);
}

/** -TokenCachePath: a new folder, or an existing one only its owner can open. */
function checkTokenCachePath(path: string): string {
  const problem = cacheFolderProblem(path);
  if (problem) {
    throw new UsageError(`-TokenCachePath: ${shown(path)} ${problem}.`, {
      code: "UNSAFE_CACHE_FOLDER",
    });
  }
  return path;
}

function checkExists(name: string, path: string): string {
  try {
    const info = Deno.statSync(path);
    // A FIFO or `<(...)` is read once, bounded and within -TimeoutSeconds, where it is used.
    if (info.isFifo || info.isCharDevice) return path;
    if (!info.isFile) throw new Deno.errors.IsADirectory(path);
  } catch (error) {
    readFileOrFail(name, path); // produces the right message (or succeeds for odd files)
    throw new UsageError(`-${name}: cannot be read: ${path}`, { code: "BAD_FILE", cause: error });
  }
  return path;
}

/** Builds options from bound values and the resolved set. */
export function buildOptions(
  values: ReadonlyMap<string, BoundValue>,
  set: SignInSetName,
  env: (name: string) => string | undefined = () => undefined,
  files?: FileTexts,
): Options {
  const protocol = (str(values, "Protocol") ?? "IMAP") as Protocol;
  const cloud = (str(values, "Cloud") ?? "Global") as Cloud;
  const caFile = str(values, "CaFile");
  const caCerts = caFile === undefined ? [] : checkCaFile(caFile, files);
  const timeoutSeconds = values.has("TimeoutSeconds")
    ? checkTimeout(values.get("TimeoutSeconds") as number)
    : DEFAULT_TIMEOUT_SECONDS;
  const proxy = values.has("Proxy") ? checkProxy(required(values, "Proxy")) : undefined;
  const proxies = proxySettings(proxy, env);
  const authorityHost = values.has("AuthorityHost")
    ? checkAuthorityHost(required(values, "AuthorityHost"))
    : CLOUDS[cloud].authorityHost;
  const server = values.has("Server")
    ? checkServer(required(values, "Server"))
    : protocol === "SMTP"
    ? CLOUDS[cloud].smtpHost
    : CLOUDS[cloud].mailHost;
  const common: CommonOptions = {
    tenantId: checkTenant(required(values, "tenantID"), set),
    clientId: checkClientId(required(values, "clientId")),
    cloud,
    resource: CLOUDS[cloud].resource,
    proxy,
    tokenProxy: tokenRoute(proxies, new URL(authorityHost).hostname),
    authorityHost,
    caCerts,
    outputFormat: (str(values, "OutputFormat") ?? "Text") as OutputFormat,
    noConnect: values.get("NoConnect") === true,
    tokenCachePath: values.has("TokenCachePath") && values.get("NoTokenCache") !== true
      ? checkTokenCachePath(required(values, "TokenCachePath"))
      : str(values, "TokenCachePath"),
    noTokenCache: values.get("NoTokenCache") === true,
    diagnose: values.get("Diagnose") === true,
    language: str(values, "Language") as "en" | "de" | undefined,
    timeoutSeconds,
    verbose: values.get("Verbose") === true,
    explicit: { protocol: values.has("Protocol"), port: values.has("Port") },
    mail: {
      protocol,
      server,
      port: values.has("Port") ? checkPort(values.get("Port") as number) : DEFAULT_PORTS[protocol],
      caCerts,
      timeoutSeconds,
      proxy: mailRoute(proxies, server),
      sendTestMessageTo: values.has("SendTestMessageTo")
        ? checkSendTo(protocol, required(values, "SendTestMessageTo"))
        : undefined,
    },
  };
  const tokenOnly = common.outputFormat === "Token" || common.outputFormat === "Sasl";
  if (tokenOnly && common.diagnose) {
    throw new UsageError(
      `-Diagnose: prints a checklist, which -OutputFormat ${common.outputFormat} has no room ` +
        "for; use -OutputFormat Text or Json.",
      { code: "BAD_COMBINATION" },
    );
  }
  switch (set) {
    case "clientcredentialsSecret":
    case "clientcredentialsCertificate": {
      const mailboxes = collectMailboxes(
        str(values, "targetMailbox"),
        str(values, "MailboxFile"),
        files,
      );
      if (common.outputFormat === "Sasl" && mailboxes.length > 1) {
        throw new UsageError(
          `-OutputFormat Sasl: prints the login string of one mailbox, but ${mailboxes.length} ` +
            "were given; give one -targetMailbox (-OutputFormat Token serves them all).",
          { code: "BAD_COMBINATION" },
        );
      }
      const app = {
        ...common,
        mailbox: mailboxes[0],
        mailboxes,
        throttleLimit: values.has("ThrottleLimit")
          ? checkThrottle(values.get("ThrottleLimit") as number)
          : 8,
      };
      if (set === "clientcredentialsSecret") {
        const secret = required(values, "clientsecret");
        return {
          ...app,
          parameterSet: set,
          secret: secret === "-" ? { from: "stdin" } : { from: "value", value: secret },
        };
      }
      const certificate = required(values, "clientcertificate").trim();
      if (certificate === "") {
        throw new UsageError(`-clientcertificate: must not be empty.`, { code: "EMPTY_VALUE" });
      }
      const keyFile = str(values, "CertificateKeyFile");
      return {
        ...app,
        parameterSet: set,
        certificate: {
          value: certificate,
          password: str(values, "CertificatePassword"),
          keyFile: keyFile === undefined ? undefined : checkExists("CertificateKeyFile", keyFile),
        },
      };
    }
    case "authorizationcode":
    case "devicecode": {
      const loginHint = str(values, "LoginHint");
      const shared = str(values, "SharedMailbox");
      const user = {
        ...common,
        loginHint: loginHint === undefined ? undefined : checkMailbox("-LoginHint", loginHint),
        sharedMailbox: shared === undefined ? undefined : checkMailbox("-SharedMailbox", shared),
        scopes: values.has("Scopes") ? checkScopes(required(values, "Scopes")) : undefined,
      };
      const mailbox = user.sharedMailbox ?? user.loginHint;
      if (set === "devicecode") return { ...user, mailbox, parameterSet: set };
      return {
        ...user,
        mailbox,
        parameterSet: set,
        redirectUri: checkRedirectUri(required(values, "redirectUri")),
        // Mandatory in this set: parameter_set.ts made sure it was given.
        loginHint: checkMailbox("-LoginHint", required(values, "LoginHint")),
      };
    }
  }
}
