/**
 * Which proxy a connection goes through, and where that setting came from, for the token
 * request and the mail connection alike.
 *
 * Deno's fetch chooses the token request's proxy itself: -Proxy (given to it explicitly), else
 * the first usable of ALL_PROXY, all_proxy, HTTPS_PROXY, https_proxy; NO_PROXY (or no_proxy
 * when NO_PROXY is not set at all) exempts hosts from any of them, -Proxy included. This module
 * mirrors exactly that choice so that
 * - a failure names the proxy that was used (host:port, never its credentials) and its setting;
 * - a malformed variable is refused before any traffic (Deno would silently skip it);
 * - the mail connection follows the same NO_PROXY rules (it uses -Proxy only: the variables
 *   are for HTTPS, and a mail port through a web proxy is rarely allowed).
 *
 * NO_PROXY, as Deno reads it: entries separated by `,` and trimmed; an IP address or CIDR
 * range matches IP hosts; any other entry matches a host name that equals it or ends with it
 * after a dot (`example.com` and `.example.com` both match `mail.example.com`); `*` matches
 * every host name (not IP addresses). Names are compared as written (hosts are lower case).
 */
import { UsageError } from "../errors.ts";
import { shown } from "../text.ts";
import { classifyNetworkError } from "./classify.ts";

/** The variables Deno reads for an https URL, in the order it prefers them. */
export const PROXY_VARIABLES = ["ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"] as const;
export type ProxySource = "-Proxy" | typeof PROXY_VARIABLES[number];

/** One connection's proxy and the setting it came from. */
export interface ProxyRoute {
  url: URL;
  source: ProxySource;
}

/** The proxy settings of a run, read once. */
export interface ProxySettings {
  /** -Proxy (token request and, with CONNECT, the mail connection). */
  explicit?: URL;
  /** The first proxy variable set (the token request only); undefined with -Proxy. */
  environment?: ProxyRoute;
  noProxy: NoProxy;
}

const DEFAULT_PORTS: Record<string, string> = {
  "http:": "80",
  "https:": "443",
  "socks5:": "1080",
  "socks5h:": "1080",
};

/** The proxy's address without credentials, for messages. */
export function proxyLabel(url: URL): string {
  return `${url.hostname}:${url.port || DEFAULT_PORTS[url.protocol] || "80"}`;
}

/** `the proxy host:port (from HTTPS_PROXY)`: how messages name a proxy. */
export function describeProxy(route: ProxyRoute): string {
  return `the proxy ${proxyLabel(route.url)} (from ${route.source})`;
}

/** `cannot reach the proxy host:port (from X): connection refused`, from the error's text. */
export function unreachableMessage(route: ProxyRoute, errorText: string): string {
  const kind = classifyNetworkError(errorText);
  const reason = kind === "CONNECTION_REFUSED"
    ? "connection refused"
    : kind === "DNS_FAILED"
    ? "its host name does not resolve"
    : errorText.replace(/^.*\((?:Connect)\): /, "").slice(0, 200);
  return `cannot reach ${describeProxy(route)}: ${reason}`;
}

/** A variable's value in messages: its credentials are secrets and are never shown. */
function withoutCredentials(value: string): string {
  return shown(value.replace(/^([^/]*\/\/)?[^/]*@/, "$1<credentials>@"));
}

/**
 * A proxy variable's value as a URL, as Deno reads it (`host:port` means `http://host:port`),
 * or a UsageError naming the variable for a value Deno would silently skip or that names no
 * usable proxy.
 */
export function parseProxyVariable(name: string, value: string): URL {
  const fail = (why: string): never => {
    throw new UsageError(
      `${name} (environment variable): ${why}: '${withoutCredentials(value)}'; expected ` +
        "http://[user:password@]host:port.",
      { code: "BAD_URL" },
    );
  };
  // deno-lint-ignore no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(value)) fail("contains spaces or control characters");
  const schemed = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value);
  // Deno reads a value without a scheme only as plain [user:password@]host[:port].
  if (!schemed && /[/?#]/.test(value)) fail("not a proxy address (without http:// only host:port)");
  const full = schemed ? value : `http://${value}`;
  const authority = full.replace(/^[^:]+:\/\//, "").split(/[/?#]/)[0];
  if (authority.slice(authority.lastIndexOf("@") + 1).endsWith(":")) fail("no port after ':'");
  let url: URL;
  try {
    url = new URL(full);
  } catch {
    return fail("not a proxy address");
  }
  if (!(url.protocol in DEFAULT_PORTS)) {
    fail(`the scheme ${url.protocol.slice(0, -1)} is not supported (http, https, socks5)`);
  }
  if (!url.hostname) fail("no host");
  return url;
}

/**
 * Reads -Proxy's companions from the environment: the proxy variable Deno would use (checked,
 * unless -Proxy makes them irrelevant) and NO_PROXY.
 */
export function proxySettings(
  explicit: URL | undefined,
  env: (name: string) => string | undefined,
): ProxySettings {
  const noProxy = NoProxy.parse(env("NO_PROXY") ?? env("no_proxy") ?? "");
  if (explicit) return { explicit, noProxy };
  for (const name of PROXY_VARIABLES) {
    const value = env(name);
    if (value === undefined || value === "") continue;
    return { environment: { url: parseProxyVariable(name, value), source: name }, noProxy };
  }
  return { noProxy };
}

/** The token request's proxy for the authority's host, or undefined when it goes direct. */
export function tokenRoute(settings: ProxySettings, host: string): ProxyRoute | undefined {
  if (settings.noProxy.matches(host)) return undefined;
  if (settings.explicit) return { url: settings.explicit, source: "-Proxy" };
  return settings.environment;
}

/** The mail connection's proxy (-Proxy only) for the mail server, or undefined: direct. */
export function mailRoute(settings: ProxySettings, host: string): ProxyRoute | undefined {
  if (!settings.explicit || settings.noProxy.matches(host)) return undefined;
  return { url: settings.explicit, source: "-Proxy" };
}

/** An IP address as bytes (4 or 16), or undefined. */
function ipBytes(text: string): Uint8Array | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    return parts.every((n) => n <= 255) ? new Uint8Array(parts) : undefined;
  }
  if (!text.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  let host: string;
  try {
    host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  // The URL parser wrote it in canonical form: expand "::" and read 8 groups.
  const [head, tail] = host.includes("::") ? host.split("::") : [host, undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined
    ? left
    : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    bytes[2 * i] = n >> 8;
    bytes[2 * i + 1] = n & 0xff;
  });
  return bytes;
}

interface IpRange {
  bytes: Uint8Array;
  prefix: number;
}

function inRange(ip: Uint8Array, range: IpRange): boolean {
  if (ip.length !== range.bytes.length) return false;
  for (let bit = 0; bit < range.prefix; bit++) {
    const mask = 0x80 >> (bit % 8);
    if ((ip[bit >> 3] & mask) !== (range.bytes[bit >> 3] & mask)) return false;
  }
  return true;
}

/** NO_PROXY, read and matched the way Deno's fetch does (see the top of this file). */
export class NoProxy {
  readonly #ips: IpRange[];
  readonly #domains: string[];

  private constructor(ips: IpRange[], domains: string[]) {
    this.#ips = ips;
    this.#domains = domains;
  }

  static parse(text: string): NoProxy {
    const ips: IpRange[] = [];
    const domains: string[] = [];
    for (const part of text.split(",").map((p) => p.trim())) {
      if (part === "") continue;
      const cidr = /^([^/]+)\/(\d{1,3})$/.exec(part);
      const bytes = ipBytes(cidr ? cidr[1] : part);
      const prefix = cidr ? Number(cidr[2]) : bytes ? bytes.length * 8 : 0;
      if (bytes && prefix <= bytes.length * 8) ips.push({ bytes, prefix });
      else domains.push(part);
    }
    return new NoProxy(ips, domains);
  }

  /** Whether a host (name, IPv4, or IPv6 with or without brackets) goes direct. */
  matches(host: string): boolean {
    const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
    const ip = ipBytes(bare);
    if (ip) return this.#ips.some((range) => inRange(ip, range));
    const name = bare.toLowerCase();
    return this.#domains.some((d) =>
      d === name || (d.startsWith(".") && d.slice(1) === name) ||
      (name.endsWith(d) && (d.startsWith(".") || name[name.length - d.length - 1] === ".")) ||
      d === "*"
    );
  }
}
