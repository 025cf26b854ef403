/** Help text, derived from the parameter table and grouped by parameter set like `Get-Help`. */
import { TOOL_NAME, VERSION } from "../version.ts";
import {
  BRIDGE_ALSO,
  isMandatory,
  PARAMETER_SETS,
  PARAMETERS,
  type ParameterSetName,
  type ParameterSpec,
  setsOf,
} from "./parameters.ts";

const SET_TITLES: Record<ParameterSetName, string> = {
  clientcredentialsSecret: "App sign-in with a client secret (clientcredentialsSecret)",
  clientcredentialsCertificate: "App sign-in with a certificate (clientcredentialsCertificate)",
  authorizationcode: "Interactive user sign-in in a browser (authorizationcode)",
  devicecode: "User sign-in with a code on another device (devicecode)",
  bridge: "Local POP3, IMAP and SMTP bridge for software without OAuth (bridge)",
  bridgePasswordHash: "Hash a local bridge password read from standard input (bridgePasswordHash)",
};

function usageToken(p: ParameterSpec, set: ParameterSetName): string {
  const body = p.type === "switch" ? `-${p.name}` : `-${p.name} ${p.placeholder}`;
  return isMandatory(p, set) ? body : `[${body}]`;
}

export function helpText(): string {
  const lines: string[] = [
    `${TOOL_NAME} ${VERSION} - get an OAuth2 token from Entra ID and prove an XOAUTH2 login`,
    `to Exchange Online (IMAP, POP3 or SMTP). Drop-in replacement for Get-IMAPAccessToken.ps1.`,
    "",
    "SYNTAX",
  ];
  for (const set of PARAMETER_SETS) {
    // The bridge's sets take only what parse.ts lets through; the rest is in the config file.
    const takes = (p: ParameterSpec) =>
      set === "bridge" || set === "bridgePasswordHash"
        ? isMandatory(p, set) || p.common === true || BRIDGE_ALSO[set].includes(p.name)
        : true;
    const tokens = PARAMETERS.filter((p) => !p.hidden && setsOf(p).includes(set) && takes(p))
      .map((p) => usageToken(p, set));
    lines.push(`  ${SET_TITLES[set]}:`);
    lines.push(`    ${TOOL_NAME} ${tokens.join(" ")}`);
    lines.push("");
  }
  lines.push("PARAMETERS");
  const width = Math.max(...PARAMETERS.filter((p) => !p.hidden).map((p) => p.name.length)) + 3;
  for (const p of PARAMETERS.filter((p) => !p.hidden)) {
    lines.push(`  ${`-${p.name}`.padEnd(width)}${p.help}`);
  }
  lines.push(
    "",
    "  Names are case-insensitive and may be shortened to any unambiguous prefix",
    "  (-tenant, -clientS). Values: -Name value or -Name:value. PowerShell's common",
    "  parameters (-ErrorAction, ...) are accepted and ignored.",
    "",
    "EXIT CODES",
    "  0 success   2 usage or bad input   3 token not obtained   4 connection/TLS/timeout",
    "  5 login rejected by the mail server   6 logged in, mailbox not accessible   1 bug",
    "",
    "EXAMPLES",
    `  ${TOOL_NAME} -tenantID contoso.onmicrosoft.com -clientId <GUID> -clientsecret - ` +
      `-targetMailbox box@contoso.com -Protocol POP3`,
    `  ${TOOL_NAME} -tenantID <GUID> -clientId <GUID> -clientcertificate ./app.pfx ` +
      `-CertificatePassword <pw> -targetMailbox box@contoso.com -OutputFormat Json`,
    `  ${TOOL_NAME} -tenantID <GUID> -clientId <GUID> -clientsecret <secret> ` +
      `-targetMailbox box@contoso.com -OutputFormat Sasl`,
    "",
    "  Thumbprint certificates are looked up in the certificate store (Windows: CurrentUser\\My,",
    "  then LocalMachine\\My, through Windows PowerShell; elsewhere .NET's store through pwsh) and",
    "  in the certificate folder: GET_IMAPACCESSTOKEN_CERT_DIR, or by default",
    "  ~/.config/get-imapaccesstoken/certs (Linux), ~/Library/Application Support/",
    "  get-imapaccesstoken/certs (macOS), %APPDATA%\\get-imapaccesstoken\\certs (Windows).",
  );
  return lines.join("\n") + "\n";
}
