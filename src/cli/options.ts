/**
 * Turns bound parameters into validated, typed options with defaults. Every
 * check that can be made before touching the network is made here, so bad
 * input fails fast with exit 2 and no traffic. The only I/O is reading local
 * files named by parameters (existence and a first sanity check).
 */
import { UsageError } from "../errors.ts";
import { mailboxProblem } from "../sasl/xoauth2.ts";
import { printable } from "../text.ts";
import type { BoundValue } from "./bind.ts";
import type { ParameterSetName } from "./parameters.ts";
import { type Cloud, CLOUDS } from "./clouds.ts";

export type Protocol = "IMAP" | "POP3" | "SMTP";
export type OutputFormat = "Text" | "Json" | "Token" | "Sasl";

export const DEFAULT_SERVER = "outlook.office365.com";
export const DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com";
export const DEFAULT_PORTS: Record<Protocol, number> = { IMAP: 993, POP3: 995, SMTP: 587 };
export const DEFAULT_TIMEOUT_SECONDS = 30;

export interface Options {
  parameterSet: ParameterSetName;
  tenantId: string;
  clientId: string;
  /** Mailbox that goes into the XOAUTH2 `user=` (client credentials: the first -targetMailbox). */
  mailbox?: string;
  /** Every mailbox to check (client credentials: -targetMailbox list and -MailboxFile, deduplicated). */
  mailboxes: string[];
  throttleLimit: number;
  cloud: Cloud;
  /** Resource of the Exchange scope for the cloud. */
  resource: string;
  sendTestMessageTo?: string;
  /** -Proxy, validated; its credentials are secrets. */
  proxy?: URL;
  clientSecret?: string;
  /** True when the secret must be read from standard input (`-clientsecret -`). */
  clientSecretFromStdin: boolean;
  clientCertificate?: string;
  certificatePassword?: string;
  certificateKeyFile?: string;
  redirectUri?: string;
  loginHint?: string;
  sharedMailbox?: string;
  /** User sign-in scopes from -Scopes; undefined = the default `.default` scope. */
  scopes?: string[];
  /** Token cache folder (-TokenCachePath); undefined = the OS default. */
  tokenCachePath?: string;
  noTokenCache: boolean;
  /** -Diagnose: run every check and print the checklist. */
  diagnose: boolean;
  /** -Language; undefined = from the environment. */
  language?: "en" | "de";
  protocol: Protocol;
  server: string;
  port: number;
  /** Normalized `https://host[:port]`, no trailing slash. */
  authorityHost: string;
  caFile?: string;
  /** PEM text of -CaFile, read once here. */
  caCerts: string[];
  outputFormat: OutputFormat;
  noConnect: boolean;
  timeoutSeconds: number;
  verbose: boolean;
}

function str(values: ReadonlyMap<string, BoundValue>, name: string): string | undefined {
  const v = values.get(name);
  return v === undefined ? undefined : String(v);
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
      `-tenantID: '${t}' is not a tenant; app sign-in needs the Directory (tenant) ID ` +
        `or the tenant's domain.`,
      { code: "BAD_TENANT" },
    );
  }
  if (!GUID.test(t) && !DOMAIN.test(t) && !["common", "organizations"].includes(lower)) {
    throw new UsageError(
      `-tenantID: expected the Directory (tenant) ID (a GUID) or a domain like ` +
        `contoso.onmicrosoft.com, got '${t}'.`,
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
        `11111111-2222-3333-4444-555555555555, got '${t}'.`,
      { code: "BAD_CLIENT_ID" },
    );
  }
  return t;
}

function checkMailbox(name: string, address: string): string {
  const problem = mailboxProblem(address.trim());
  if (problem) {
    throw new UsageError(`-${name}: '${printable(address)}' ${problem}.`, { code: "BAD_MAILBOX" });
  }
  return address.trim();
}

function checkServer(host: string): string {
  const h = host.trim();
  const bare = h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
  if (HOST_LABELS.test(h) || IPV4.test(h) || (bare.includes(":") && /^[0-9a-f:.]+$/i.test(bare))) {
    return bare;
  }
  throw new UsageError(
    `-Server: expected a host name or IP address without scheme or port, got '${printable(h)}'.`,
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
    throw new UsageError(`-AuthorityHost: expected an https URL, got '${printable(raw)}'.`, {
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
      `-redirectUri: expected an absolute URI like http://localhost, got '${printable(raw)}'.`,
      { code: "BAD_URL" },
    );
  }
}

function checkScopes(raw: string): string[] {
  const scopes = raw.split(/[\s,]+/).filter((x) => x !== "");
  for (const scope of scopes) {
    if (!/^[\x21-\x7e]+$/.test(scope)) {
      throw new UsageError(`-Scopes: '${printable(scope)}' is not a valid scope.`, {
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
  return checkMailbox("SendTestMessageTo", address);
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

/** -targetMailbox (comma list) and -MailboxFile, checked, in order, each address once. */
function collectMailboxes(target: string | undefined, file: string | undefined): string[] {
  const raw: [string, string][] = [];
  for (const part of (target ?? "").split(",")) {
    if (part.trim() !== "" || target === "") raw.push(["targetMailbox", part]);
  }
  if (file !== undefined) {
    const text = readFileOrFail("MailboxFile", file);
    for (const line of text.split(/\r?\n/)) {
      const entry = line.replace(/#.*$/, "").trim();
      if (entry) raw.push(["MailboxFile", entry]);
    }
    if (!raw.some(([from]) => from === "MailboxFile")) {
      throw new UsageError(`-MailboxFile: no mailbox in ${file}`, { code: "BAD_FILE" });
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
  if (!(seconds > 0 && seconds <= 3600)) {
    throw new UsageError(`-TimeoutSeconds: expected a number of seconds from 0.1 to 3600.`, {
      code: "BAD_TIMEOUT",
    });
  }
  return seconds;
}

function readFileOrFail(name: string, path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "file not found"
      : error instanceof Deno.errors.IsADirectory
      ? "is a folder, not a file"
      : "cannot be read";
    throw new UsageError(`-${name}: ${reason}: ${path}`, { code: "BAD_FILE", cause: error });
  }
}

function checkCaFile(path: string): string[] {
  const text = readFileOrFail("CaFile", path);
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!pems) {
    throw new UsageError(`-CaFile: no PEM certificate (BEGIN CERTIFICATE) in ${path}`, {
      code: "BAD_FILE",
    });
  }
  return pems.map((p) => p + "\n");
}

function checkExists(name: string, path: string): string {
  try {
    const info = Deno.statSync(path);
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
  set: ParameterSetName,
): Options {
  const protocol = (str(values, "Protocol") ?? "IMAP") as Protocol;
  const cloud = (str(values, "Cloud") ?? "Global") as Cloud;
  const secret = str(values, "clientsecret");
  const target = str(values, "targetMailbox");
  const shared = str(values, "SharedMailbox");
  const loginHint = str(values, "LoginHint");
  const certificate = str(values, "clientcertificate")?.trim();
  const keyFile = str(values, "CertificateKeyFile");
  const caFile = str(values, "CaFile");
  const options: Options = {
    parameterSet: set,
    tenantId: checkTenant(str(values, "tenantID")!, set),
    clientId: checkClientId(str(values, "clientId")!),
    clientSecret: secret === "-" ? undefined : secret,
    clientSecretFromStdin: secret === "-",
    clientCertificate: certificate,
    certificatePassword: str(values, "CertificatePassword"),
    certificateKeyFile: keyFile === undefined
      ? undefined
      : checkExists("CertificateKeyFile", keyFile),
    redirectUri: values.has("redirectUri")
      ? checkRedirectUri(str(values, "redirectUri")!)
      : undefined,
    loginHint: loginHint === undefined ? undefined : checkMailbox("LoginHint", loginHint),
    sharedMailbox: shared === undefined ? undefined : checkMailbox("SharedMailbox", shared),
    mailbox: undefined,
    protocol,
    mailboxes: [],
    throttleLimit: values.has("ThrottleLimit")
      ? checkThrottle(values.get("ThrottleLimit") as number)
      : 8,
    cloud,
    resource: CLOUDS[cloud].resource,
    sendTestMessageTo: values.has("SendTestMessageTo")
      ? checkSendTo(protocol, str(values, "SendTestMessageTo")!)
      : undefined,
    proxy: values.has("Proxy") ? checkProxy(str(values, "Proxy")!) : undefined,
    server: values.has("Server")
      ? checkServer(str(values, "Server")!)
      : protocol === "SMTP"
      ? CLOUDS[cloud].smtpHost
      : CLOUDS[cloud].mailHost,
    port: values.has("Port") ? checkPort(values.get("Port") as number) : DEFAULT_PORTS[protocol],
    authorityHost: values.has("AuthorityHost")
      ? checkAuthorityHost(str(values, "AuthorityHost")!)
      : CLOUDS[cloud].authorityHost,
    caFile,
    caCerts: caFile === undefined ? [] : checkCaFile(caFile),
    outputFormat: (str(values, "OutputFormat") ?? "Text") as OutputFormat,
    noConnect: values.get("NoConnect") === true,
    scopes: values.has("Scopes") ? checkScopes(str(values, "Scopes")!) : undefined,
    tokenCachePath: str(values, "TokenCachePath"),
    noTokenCache: values.get("NoTokenCache") === true,
    diagnose: values.get("Diagnose") === true,
    language: str(values, "Language") as "en" | "de" | undefined,
    timeoutSeconds: values.has("TimeoutSeconds")
      ? checkTimeout(values.get("TimeoutSeconds") as number)
      : DEFAULT_TIMEOUT_SECONDS,
    verbose: values.get("Verbose") === true,
  };
  if (target !== undefined || values.has("MailboxFile")) {
    options.mailboxes = collectMailboxes(target, str(values, "MailboxFile"));
    options.mailbox = options.mailboxes[0];
  } else {
    options.mailbox = options.sharedMailbox ?? options.loginHint;
  }
  if (certificate !== undefined && certificate === "") {
    throw new UsageError(`-clientcertificate: must not be empty.`, { code: "EMPTY_VALUE" });
  }
  return options;
}
