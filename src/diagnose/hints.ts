/**
 * Error code -> one sentence of advice with the user's own values filled in.
 * A first table; the diagnostics issue extends it (setup step, German).
 */
export interface HintContext {
  mailbox?: string;
  clientId?: string;
  tenantId?: string;
  protocol?: "IMAP" | "POP3";
  server?: string;
}

type HintFn = (c: HintContext) => string;

const sp = "<service principal of the app>";

const HINTS: Record<string, HintFn> = {
  AADSTS7000215: () =>
    "Step 1: the client secret is wrong. Use the secret's VALUE (shown once when it was " +
    "created), not its Secret ID; create a new secret if the value is lost.",
  AADSTS7000222: () => "Step 1: the client secret has expired. Create a new one for the app.",
  AADSTS700016: (c) =>
    `Step 1: no app with client ID ${c.clientId} in tenant ${c.tenantId}. Check -clientId ` +
    "(Application (client) ID) and -tenantID (Directory (tenant) ID) on the app's Overview page.",
  AADSTS90002: (c) =>
    `Step 1: tenant '${c.tenantId}' does not exist. Use the Directory (tenant) ID from the ` +
    "app registration's Overview page.",
  AADSTS700027: () =>
    "Step 1: the certificate is not accepted. Upload this certificate (.cer/.pem, public part) " +
    "under Certificates & secrets of the app registration, and check the machine's clock.",
  AADSTS7000218: () =>
    "Step 1: the app requires a credential; give -clientsecret or -clientcertificate.",
  AADSTS1002012: () => "The scope must be https://outlook.office365.com/.default.",
  AADSTS70011: () => "The scope must be https://outlook.office365.com/.default.",
  AADSTS65001: () =>
    "Step 2: admin consent is missing. In the app registration, API permissions, " +
    "choose 'Grant admin consent'.",
  AADSTS500011: () =>
    "Step 2: Office 365 Exchange Online is not available in this tenant, or the scope is wrong.",
  IMAP_NOT_CONNECTED: (c) =>
    `Step 3: the app may log in but not open ${c.mailbox}. Give its service principal ` +
    `FullAccess: Add-MailboxPermission -Identity ${c.mailbox} -User ${sp} ` +
    "-AccessRights FullAccess; also check Set-CASMailbox -Identity " +
    `${c.mailbox} -ImapEnabled $true. Changes can take 30 minutes.`,
  IMAP_AUTH_FAILED: (c) =>
    `The server rejected the token for ${c.mailbox}. Check step 2 (IMAP.AccessAsApp with ` +
    "admin consent) and step 3 (New-ServicePrincipal with the Enterprise Application's object " +
    `ID, Add-MailboxPermission -Identity ${c.mailbox} -User ${sp} -AccessRights FullAccess).`,
  POP3_AUTH_FAILED: (c) =>
    `The server rejected the token for ${c.mailbox}. Check step 2 (POP.AccessAsApp with admin ` +
    "consent) and step 3 (New-ServicePrincipal with the Enterprise Application's object ID, " +
    `Add-MailboxPermission -Identity ${c.mailbox} -User ${sp} -AccessRights FullAccess), and ` +
    `Set-CASMailbox -Identity ${c.mailbox} -PopEnabled $true.`,
  POP3_STAT_FAILED: (c) =>
    `Logged in, but ${c.mailbox} cannot be read over POP3: Set-CASMailbox -Identity ` +
    `${c.mailbox} -PopEnabled $true, and check FullAccess for ${sp}.`,
  TOKEN_EXPIRED: () => "The token expired during the session; run again for a fresh one.",
  TLS_UNTRUSTED: () =>
    "The server's certificate is not trusted here. If a proxy or test server uses its own CA, " +
    "give that CA with -CaFile.",
  TLS_HOSTNAME: (c) =>
    `The certificate does not match the host name. Check -Server ${c.server ?? ""}`.trim() + ".",
  TIMEOUT: () =>
    "No answer in time: check firewall/proxy rules for this host and port, or raise -TimeoutSeconds.",
  CONNECTION_REFUSED: () => "Nothing listens there: check -Server and -Port.",
  DNS_FAILED: () => "The host name cannot be resolved: check -Server / -AuthorityHost and DNS.",
};

export function hintFor(code: string | undefined, context: HintContext): string | undefined {
  return code ? HINTS[code]?.(context) : undefined;
}
