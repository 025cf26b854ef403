/**
 * PowerShell-style command lines for the argument binder: the parameters of each sign-in
 * method, spelled every way PowerShell accepts (any case, unique prefixes, aliases, en dash,
 * `-Name:value`, `-Switch:$false`) and some ways it does not, with values that are valid,
 * nearly valid, or hostile. Files are referred to as `{tmp}/name` and only ever point into the
 * fuzz folder (see `keepFilesInside`).
 */

import { lookupParameter } from "../../../src/cli/bind.ts";
import { PARAMETERS, type ParameterSpec } from "../../../src/cli/parameters.ts";
import type { Rng } from "../rng.ts";

/** Placeholder for the fuzz folder in file arguments. */
export const TMP = "{tmp}";

/** Files made by the target's setup, by name, with their content. */
export const CLI_FILES: Record<string, string | Uint8Array> = {
  "mailboxes.txt":
    "box1@contoso.com\n# a comment\nbox2@contoso.com # trailing\r\n\nBOX1@contoso.com\n",
  "mailboxes-bad.txt": "box1@contoso.com\nnot an address\n",
  "mailboxes-empty.txt": "# nothing here\n\n",
  "mailboxes-odd.txt": "\ufeffbox@contoso.com\n\u0000x@y.z\n\u202ebox@contoso.com\n",
  "ca.pem": "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n",
  "notpem.txt": "hello\n",
  "key.pem":
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
  "binary.bin": new Uint8Array([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x0a, 0x80]),
};

/** Parameters whose value `buildOptions` reads as a file. */
const FILE_PARAMETERS = new Set(["MailboxFile", "CaFile", "CertificateKeyFile"]);

const GUIDS = [
  "11111111-2222-3333-4444-555555555555",
  "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
  "11111111-2222-3333-4444-55555555555",
  "{11111111-2222-3333-4444-555555555555}",
  "11111111222233334444555555555555",
];
const TENANTS = [
  ...GUIDS,
  "contoso.onmicrosoft.com",
  "common",
  "organizations",
  "consumers",
  "a..b",
  "-",
];
const ADDRESSES = [
  "box@contoso.com",
  "Box@Contoso.COM",
  "jürgen@contoso.de",
  "box@contoso.com,other@contoso.com",
  "box@contoso.com,,",
  ",",
  "box",
  "@contoso.com",
  "box@",
  "CONTOSO\\box@contoso.com",
  "a b@c.d",
  "a\u0001b@c.d",
  "<box@contoso.com>",
];
const URLS = [
  "https://login.microsoftonline.com",
  "https://login.microsoftonline.com/",
  "https://127.0.0.1:8443",
  "https://[::1]:8443",
  "http://login.microsoftonline.com",
  "https://login.microsoftonline.com/tenant",
  "https://user:pw@login.example",
  "https://x?q=1",
  "https://",
  "not a url",
  "http://localhost",
  "http://localhost:8400/callback",
  "ms-appx-web://microsoft.aad.brokerplugin/x",
  "custom.scheme:/callback",
  "javascript:alert(1)",
  "http://proxy:3128",
  "http://user:secret@proxy:3128",
  "http://proxy:3128/path",
  "socks5://proxy:1080",
];
const HOSTS = [
  "outlook.office365.com",
  "127.0.0.1",
  "::1",
  "[::1]",
  "[::1",
  "host:993",
  "https://x",
  "a_b",
  "-",
  "xn--bcher-kva.example",
  "256.1.1.1",
];
const INTS = [
  "993",
  "+5",
  " 7 ",
  "0",
  "-1",
  "65535",
  "65536",
  "9999999999",
  "99999999999",
  "1e3",
  "0x10",
  "1.5",
  "٣",
];
const NUMBERS = [
  "30",
  "0.1",
  "1e3",
  "3600",
  "3600.0001",
  "NaN",
  "Infinity",
  "-5",
  " 2 ",
  "0x1f",
  "1e-400",
  "5e-324",
  ".",
];
const SCOPES = [
  "https://outlook.office.com/IMAP.AccessAsUser.All,offline_access",
  "https://outlook.office365.com/.default",
  " , ",
  "a\u0000b",
  "IMAP.AccessAsUser.All SMTP.Send",
];
const STRINGS = [
  "x",
  "-",
  "--",
  "-tenantID",
  "-?",
  "$true",
  "'quoted'",
  '"',
  " ",
  "\u2013x",
  "C:\\certs\\app.pfx",
  "A".repeat(300),
];

function value(rng: Rng, spec: ParameterSpec): string {
  if (rng.chance(0.02)) return "";
  if (FILE_PARAMETERS.has(spec.name)) {
    return rng.chance(0.8)
      ? `${TMP}/${rng.pick([...Object.keys(CLI_FILES), "folder", "missing.txt"])}`
      : rng.pick(STRINGS);
  }
  switch (spec.type) {
    case "int":
      return rng.pick(INTS);
    case "number":
      return rng.pick(NUMBERS);
    case "enum": {
      const word = rng.pick(Object.keys(spec.values ?? {}));
      return rng.chance(0.8)
        ? (rng.chance(0.5) ? word.toUpperCase() : word)
        : rng.pick(["imap4", "Global ", "fr", ""]);
    }
    default:
      break;
  }
  switch (spec.name) {
    // Tenant and client ID are checked first: mostly valid, or nothing behind them is reached.
    case "tenantID":
      return rng.chance(0.8) ? rng.pick([GUIDS[0], "contoso.onmicrosoft.com"]) : rng.pick(TENANTS);
    case "clientId":
      return rng.chance(0.8) ? GUIDS[1] : rng.pick(GUIDS);
    case "redirectUri":
    case "AuthorityHost":
    case "Proxy":
      return rng.pick(URLS);
    case "LoginHint":
    case "SharedMailbox":
    case "targetMailbox":
    case "SendTestMessageTo":
      return rng.pick(ADDRESSES);
    case "Server":
      return rng.pick(HOSTS);
    case "Scopes":
      return rng.pick(SCOPES);
    case "clientcertificate":
      return rng.pick([
        "app.pfx",
        "C:\\certs\\app.pem",
        "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678",
        "\u200eA1 B2",
      ]);
    default:
      return rng.pick(STRINGS);
  }
}

/** `-Name`, spelled as PowerShell users do (or nearly). */
function spelling(rng: Rng, spec: ParameterSpec): string {
  const dash = rng.weighted([[40, "-"], [1, "\u2013"], [1, "\u2014"], [1, "--"], [1, "/"]]);
  let name = spec.name;
  const style = rng.int(10);
  if (style === 1) name = name.toLowerCase();
  if (style === 2) name = name.toUpperCase();
  if (style === 3 && spec.aliases?.length) name = rng.pick(spec.aliases);
  if (style === 4) name = name.slice(0, rng.range(1, name.length));
  return dash + name;
}

/** The parameters each sign-in method needs, so that whole command lines bind often. */
const CORES = [
  ["tenantID", "clientId", "clientsecret", "targetMailbox"],
  ["tenantID", "clientId", "clientcertificate", "targetMailbox"],
  ["tenantID", "clientId", "clientsecret", "MailboxFile"],
  ["tenantID", "clientId", "redirectUri", "LoginHint"],
  ["tenantID", "clientId", "DeviceCode"],
  ["tenantID", "clientId"],
];

/** Parameters with their own checks in `buildOptions`, so extra ones are mostly these. */
const CHECKED = [
  "Server",
  "Port",
  "AuthorityHost",
  "Proxy",
  "TimeoutSeconds",
  "Scopes",
  "CaFile",
  "MailboxFile",
  "CertificateKeyFile",
  "Protocol",
  "SendTestMessageTo",
  "ThrottleLimit",
  "SharedMailbox",
  "LoginHint",
  "OutputFormat",
  "Verbose",
];

export function commandLine(rng: Rng): string[] {
  const names = [...rng.pick(CORES)];
  for (let extra = rng.small(5); extra > 0; extra--) {
    names.push(rng.chance(0.8) ? rng.pick(CHECKED) : rng.pick(PARAMETERS).name);
  }
  // Order does not matter to PowerShell; shuffle.
  for (let i = names.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [names[i], names[j]] = [names[j], names[i]];
  }
  const argv: string[] = [];
  for (const name of names) {
    const spec = PARAMETERS.find((p) => p.name === name)!;
    const flag = spelling(rng, spec);
    if (spec.type === "switch") {
      argv.push(
        rng.chance(0.8) ? flag : `${flag}:${rng.pick(["$true", "$false", "TRUE", "0", "yes", ""])}`,
      );
    } else if (rng.chance(0.2)) {
      argv.push(`${flag}:${value(rng, spec)}`);
    } else {
      argv.push(flag, value(rng, spec));
    }
  }
  if (rng.chance(0.02)) argv.push(rng.pick(["-?", "--help", "/?", "--version", "-h"]));
  if (rng.chance(0.03)) argv.unshift("--");
  return argv;
}

/** Words for the mutator: parameter names, PowerShell syntax, values. */
export const CLI_TOKENS: readonly string[] = [
  ...PARAMETERS.map((p) => `-${p.name}`),
  ":",
  ":$true",
  ":$false",
  "\u2013",
  "-",
  "--",
  "-?",
  "--version",
  ...TENANTS,
  ...ADDRESSES,
  ...URLS,
  ...INTS,
  ...NUMBERS,
];

/**
 * Makes sure every value the binder would give to a file parameter is `{tmp}/<plain name>`:
 * mutated command lines must not read files outside the fuzz folder. Walks argv exactly as
 * `bindArguments` does, up to the point where it would fail (nothing is read after that).
 */
export function keepFilesInside(argv: string[]): string[] {
  const out = [...argv];
  const safe = (v: string) => new RegExp(`^\\{tmp\\}/[A-Za-z0-9_][A-Za-z0-9._-]*$`).test(v);
  const start = out[0] === "--" ? 1 : 0;
  for (let i = start; i < out.length; i++) {
    const arg = out[i];
    if (!/^[-\u2013\u2014\u2015]/.test(arg) || arg.length < 2) return out;
    const body = arg.slice(1);
    const colon = body.indexOf(":");
    const name = colon >= 0 ? body.slice(0, colon) : body;
    let spec: ParameterSpec;
    try {
      spec = lookupParameter(name);
    } catch {
      return out;
    }
    if (spec.type === "switch") continue;
    const isFile = FILE_PARAMETERS.has(spec.name);
    if (colon >= 0) {
      if (isFile && !safe(body.slice(colon + 1))) out[i] = `${arg[0]}${name}:${TMP}/missing-${i}`;
    } else {
      if (i + 1 >= out.length) return out;
      if (isFile && !safe(out[i + 1])) out[i + 1] = `${TMP}/missing-${i}`;
      i++;
    }
  }
  return out;
}
