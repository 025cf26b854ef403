/**
 * The parameter table: one declarative entry per parameter, in the order of
 * the original script's `param()` block (which PowerShell uses to list
 * ambiguous candidates), followed by the new parameters. Binding, parameter-set
 * resolution and help text are all derived from this table.
 */

export type ParameterSetName =
  | "authorizationcode"
  | "devicecode"
  | "clientcredentialsSecret"
  | "clientcredentialsCertificate"
  | "bridge"
  | "bridgePasswordHash";

/** All sets, in the order help lists them. */
export const PARAMETER_SETS: readonly ParameterSetName[] = [
  "clientcredentialsSecret",
  "clientcredentialsCertificate",
  "authorizationcode",
  "devicecode",
  "bridge",
  "bridgePasswordHash",
];

/** The sets that sign in to Entra ID from the command line (the original script's sets). */
export const SIGN_IN_SETS = [
  "clientcredentialsSecret",
  "clientcredentialsCertificate",
  "authorizationcode",
  "devicecode",
] as const satisfies readonly ParameterSetName[];

/** The bridge's sets: everything else comes from its configuration file. */
export const BRIDGE_SETS = [
  "bridge",
  "bridgePasswordHash",
] as const satisfies readonly ParameterSetName[];

/**
 * What each bridge set takes besides its own parameter and PowerShell's common ones: anything
 * else is refused (the settings are in the configuration file). Help shows the same list.
 */
export const BRIDGE_ALSO: Record<typeof BRIDGE_SETS[number], readonly string[]> = {
  bridge: ["Diagnose", "Language"],
  bridgePasswordHash: ["Language"],
};

export type ParameterType = "string" | "int" | "number" | "switch" | "enum";

export interface ParameterSpec {
  /** Canonical name, spelled as in the original script. */
  name: string;
  type: ParameterType;
  /** Sets this parameter belongs to; `undefined` = every set. */
  sets?: readonly ParameterSetName[];
  /** Sets in which it is mandatory (a subset of `sets`, or of all sets). */
  mandatoryIn?: readonly ParameterSetName[] | "all";
  /** Parameters that satisfy this one's mandatory rule when given instead of it. */
  orInstead?: readonly string[];
  /** For `enum`: accepted values (case-insensitive) mapped to the canonical value. */
  values?: Readonly<Record<string, string>>;
  /** Empty strings allowed (PowerShell rejects them for mandatory strings). */
  allowEmpty?: boolean;
  /** Placeholder shown in help, e.g. `<GUID>`. */
  placeholder: string;
  /** One line for `--help`. */
  help: string;
  aliases?: readonly string[];
  /** Common parameters (PowerShell's `-ErrorAction`, ...) are accepted and ignored. */
  common?: boolean;
  /** Not shown in help (PowerShell's common parameters other than -Verbose). */
  hidden?: boolean;
}

const CLIENT_CREDENTIAL_SETS = ["clientcredentialsSecret", "clientcredentialsCertificate"] as const;
const USER_SETS = ["authorizationcode", "devicecode"] as const;

export const PARAMETERS: readonly ParameterSpec[] = [
  {
    name: "tenantID",
    type: "string",
    sets: SIGN_IN_SETS,
    mandatoryIn: SIGN_IN_SETS,
    placeholder: "<tenant>",
    help: "Directory (tenant) ID, a GUID, or the tenant's domain (contoso.onmicrosoft.com).",
  },
  {
    name: "clientId",
    type: "string",
    sets: SIGN_IN_SETS,
    mandatoryIn: SIGN_IN_SETS,
    placeholder: "<GUID>",
    help: "Application (client) ID of the app registration.",
  },
  {
    name: "redirectUri",
    type: "string",
    sets: ["authorizationcode"],
    mandatoryIn: ["authorizationcode"],
    placeholder: "<URI>",
    help: "Redirect URI registered for the app (interactive sign-in).",
  },
  {
    name: "LoginHint",
    type: "string",
    sets: USER_SETS,
    mandatoryIn: ["authorizationcode"],
    placeholder: "<user@domain>",
    help: "User principal name of the user who signs in.",
  },
  {
    name: "SharedMailbox",
    type: "string",
    sets: USER_SETS,
    placeholder: "<mailbox@domain>",
    help: "Shared mailbox the signed-in user has FullAccess to.",
  },
  {
    name: "clientsecret",
    type: "string",
    sets: ["clientcredentialsSecret"],
    mandatoryIn: ["clientcredentialsSecret"],
    placeholder: "<secret>",
    help: "Client secret VALUE (not its ID). '-' reads it from standard input.",
  },
  {
    name: "clientcertificate",
    type: "string",
    sets: ["clientcredentialsCertificate"],
    mandatoryIn: ["clientcredentialsCertificate"],
    placeholder: "<file|thumbprint>",
    help: "PEM or PFX/P12 file, or the SHA-1 thumbprint of a certificate in the " +
      "certificate store or the certificate folder.",
  },
  {
    name: "targetMailbox",
    type: "string",
    sets: CLIENT_CREDENTIAL_SETS,
    mandatoryIn: CLIENT_CREDENTIAL_SETS,
    orInstead: ["MailboxFile"],
    placeholder: "<mailbox@domain>[,...]",
    help:
      "Mailbox(es) the app opens, separated by , or ; (its service principal needs FullAccess).",
  },
  {
    name: "MailboxFile",
    type: "string",
    sets: CLIENT_CREDENTIAL_SETS,
    placeholder: "<file>",
    help:
      "File with one mailbox per line (# starts a comment; UTF-8 or UTF-16); one token for all.",
  },
  {
    name: "ThrottleLimit",
    type: "int",
    sets: CLIENT_CREDENTIAL_SETS,
    placeholder: "<n>",
    help: "Most mailboxes checked at once. Default 8.",
  },
  {
    name: "DeviceCode",
    type: "switch",
    sets: ["devicecode"],
    mandatoryIn: ["devicecode"],
    placeholder: "",
    help: "Sign in on another device with a code (for machines without a browser).",
  },
  {
    name: "Scopes",
    type: "string",
    sets: USER_SETS,
    placeholder: "<scope,...>",
    help:
      "Scopes for user sign-in, comma-separated. Default https://outlook.office365.com/.default.",
  },
  {
    name: "Protocol",
    type: "enum",
    values: { imap: "IMAP", pop3: "POP3", pop: "POP3", smtp: "SMTP" },
    placeholder: "IMAP|POP3|SMTP",
    help: "Service to test. Default: IMAP or POP3, whichever alone the token allows; else IMAP.",
  },
  {
    name: "Cloud",
    type: "enum",
    values: { global: "Global", usgov: "USGov", usgovdod: "USGovDoD", china: "China" },
    placeholder: "Global|USGov|USGovDoD|China",
    help: "Microsoft cloud: sets login and mail hosts. Default Global.",
  },
  {
    name: "SendTestMessageTo",
    type: "string",
    placeholder: "<address>",
    help: "SMTP only: send one short test message to this address.",
  },
  {
    name: "Proxy",
    type: "string",
    placeholder: "<http://[user:pass@]host:port>",
    help: "HTTP proxy for token requests and (with CONNECT) mail connections.",
  },
  {
    name: "Server",
    type: "string",
    placeholder: "<host>",
    help: "Mail server. Default outlook.office365.com (SMTP: smtp.office365.com).",
  },
  {
    name: "Port",
    type: "int",
    placeholder: "<1-65535>",
    help: "Mail server port. Default 993 (IMAP), 995 (POP3), 587 (SMTP).",
  },
  {
    name: "AuthorityHost",
    type: "string",
    placeholder: "<https URL>",
    help: "Entra ID login host. Default https://login.microsoftonline.com.",
  },
  {
    name: "CaFile",
    type: "string",
    placeholder: "<file>",
    help: "Extra trusted root CA certificates (PEM) for every TLS connection.",
  },
  {
    name: "OutputFormat",
    type: "enum",
    values: { text: "Text", json: "Json", token: "Token", sasl: "Sasl" },
    placeholder: "Text|Json|Token|Sasl",
    help: "Text (default), one JSON object, the access token only, or the XOAUTH2 string only.",
  },
  {
    name: "NoConnect",
    type: "switch",
    placeholder: "",
    help: "Get the token only; do not connect to the mail server.",
  },
  {
    name: "CertificatePassword",
    type: "string",
    sets: ["clientcredentialsCertificate"],
    allowEmpty: true,
    placeholder: "<password>",
    help: "Password of the PFX file or of an encrypted PEM key.",
  },
  {
    name: "CertificateKeyFile",
    type: "string",
    sets: ["clientcredentialsCertificate"],
    placeholder: "<file>",
    help: "Private key file (PEM) when the key is not in the certificate file.",
  },
  {
    name: "TimeoutSeconds",
    type: "number",
    placeholder: "<seconds>",
    help: "Limit for each network step. Default 30.",
  },
  {
    name: "TokenCachePath",
    type: "string",
    placeholder: "<folder>",
    help: "Folder of the token cache. Default: the user's cache folder.",
  },
  {
    name: "NoTokenCache",
    type: "switch",
    placeholder: "",
    help: "Neither read nor write the token cache.",
  },
  {
    name: "Diagnose",
    type: "switch",
    placeholder: "",
    help: "Run every check in order and print a checklist; stop at the first failure with advice.",
  },
  {
    name: "Language",
    type: "enum",
    values: { en: "en", de: "de" },
    placeholder: "en|de",
    help: "Language of advice and checklist. Default from LC_ALL/LC_MESSAGES/LANG, else English.",
  },
  {
    name: "Bridge",
    type: "string",
    sets: ["bridge"],
    mandatoryIn: ["bridge"],
    placeholder: "<config.json>",
    help: "Run the local POP3, IMAP and SMTP bridge for software without OAuth (see README).",
  },
  {
    name: "BridgePasswordHash",
    type: "switch",
    sets: ["bridgePasswordHash"],
    mandatoryIn: ["bridgePasswordHash"],
    placeholder: "",
    help: "Read a local bridge password from standard input; print its scrypt hash.",
  },
  {
    name: "Verbose",
    type: "switch",
    common: true,
    aliases: ["vb"],
    placeholder: "",
    help: "Show each step, command, the access token and the XOAUTH2 string (secrets!).",
  },
  // PowerShell's other common parameters: accepted (and ignored) so that
  // scripts written against the .ps1 keep working.
  ...([
    ["Debug", "switch", ["db"]],
    ["ErrorAction", "string", ["ea"]],
    ["WarningAction", "string", ["wa"]],
    ["InformationAction", "string", ["infa"]],
    ["ProgressAction", "string", ["proga"]],
    ["ErrorVariable", "string", ["ev"]],
    ["WarningVariable", "string", ["wv"]],
    ["InformationVariable", "string", ["iv"]],
    ["OutVariable", "string", ["ov"]],
    ["OutBuffer", "string", ["ob"]],
    ["PipelineVariable", "string", ["pv"]],
  ] as const).map(([name, type, aliases]): ParameterSpec => ({
    name,
    type,
    aliases,
    common: true,
    hidden: true,
    allowEmpty: true,
    placeholder: "<value>",
    help: "PowerShell common parameter (accepted, no effect).",
  })),
];

/** The sets a parameter may appear in. */
export function setsOf(spec: ParameterSpec): readonly ParameterSetName[] {
  return spec.sets ?? PARAMETER_SETS;
}

export function isMandatory(spec: ParameterSpec, set: ParameterSetName): boolean {
  return spec.mandatoryIn === "all" || (spec.mandatoryIn?.includes(set) ?? false);
}
