/** English texts. Keys: `<code>.cause` / `<code>.fix` for advice, `check.*` and `label.*` for the checklist. */
import type { Text, Values } from "./messages.ts";

/** The service principal for -User/-Trustee: the token's oid when known. */
/** "The proxy host:port (from HTTPS_PROXY)", or "The proxy" when not known. */
const theProxy = (v: Values) =>
  v.proxy ? `The proxy ${v.proxy} (from ${v.proxySource ?? "-Proxy"})` : "The proxy";
/** Where the proxy is set: `-Proxy`, or the environment variable. */
const setting = (v: Values) =>
  !v.proxySource || v.proxySource === "-Proxy"
    ? "-Proxy"
    : `the environment variable ${v.proxySource}`;
/** How to give the proxy URL there: `-Proxy ` or `HTTPS_PROXY=`. */
const assignment = (v: Values) =>
  !v.proxySource || v.proxySource === "-Proxy" ? "-Proxy " : `${v.proxySource}=`;
const sp = (v: Values) => v.servicePrincipalId ?? "<service principal>";
/** The value New-ServicePrincipal -ObjectId needs: the token's oid when known. */
const spObjectId = (v: Values) =>
  v.servicePrincipalId ?? "<Object ID from Enterprise applications (not App registrations)>";
/** The other protocol's role, when the token allows neither and -Protocol was not given. */
const orOther = (v: Values) =>
  v.otherRole
    ? ` (or ${v.otherRole} if the mail software uses POP3: it is then tested without -Protocol)`
    : "";
/** Where the object ID came from, when the token told it. */
const fromOid = (v: Values) =>
  v.servicePrincipalId
    ? ` The token names the Enterprise application's object ID: ${v.servicePrincipalId}.`
    : "";

export const en = {
  "label.hint": () => "HINT",
  "label.step": () => "step",
  "label.fix": () => "FIX",
  "label.warning": () => "WARNING",
  "step.1": () => "step 1 (app registration)",
  "step.2": () => "step 2 (API permission and admin consent)",
  "step.3": () => "step 3 (Exchange service principal and mailbox permission)",
  "step.network": () => "network",
  "step.client": () => "this computer or the sign-in",

  "check.parameters": () => "Parameters well-formed",
  "check.authority": (v) => `Entra ID reachable (${v.authorityHost})`,
  "check.token": () => "Access token obtained",
  "check.claims": () => "Token has the audience, tenant and permission needed",
  "check.server": (v) => `Mail server reachable, certificate trusted (${v.server}:${v.port})`,
  "check.login": (v) => `XOAUTH2 login (${v.protocol})`,
  "check.mailbox": (v) => `Mailbox usable (${v.mailbox})`,
  "check.skipped": () => "not run",
  "protocol.fromToken": (v) =>
    `The token allows only ${v.protocol} (${v.detail}): testing ${v.protocol} on port ` +
    `${v.port}; -Protocol chooses another.`,
  "note.servicePrincipal": (v) =>
    `The Enterprise application's object ID (the token's oid) is ${v.servicePrincipalId}: the ` +
    "value for New-ServicePrincipal -ObjectId and Add-MailboxPermission -User.",

  "AADSTS7000215.cause": () =>
    "The client secret is wrong: usually its Secret ID was copied instead of its value.",
  "AADSTS7000215.fix": (v) =>
    `Entra admin center > App registrations > ${v.clientId} > Certificates & secrets: create a ` +
    "new client secret and copy its Value (shown only once) into -clientsecret.",
  "AADSTS7000222.cause": () => "The client secret has expired.",
  "AADSTS7000222.fix": (v) =>
    `Entra admin center > App registrations > ${v.clientId} > Certificates & secrets: create a ` +
    "new client secret and use its Value.",
  "AADSTS700016.cause": (v) =>
    `There is no application with client ID ${v.clientId} in tenant ${v.tenantId}. Most often ` +
    "the app registration's Object ID was given instead of its Application (client) ID.",
  "AADSTS700016.fix": () =>
    "Copy Application (client) ID (not Object ID) and Directory (tenant) ID from the app " +
    "registration's Overview page into -clientId and -tenantID.",
  "AADSTS90002.cause": (v) => `The tenant '${v.tenantId}' does not exist.`,
  "AADSTS90002.fix": () =>
    "Use the Directory (tenant) ID from the app registration's Overview page, or the " +
    "tenant's domain (contoso.onmicrosoft.com), for -tenantID. If it holds the Application " +
    "(client) ID, -tenantID and -clientId are swapped.",
  "AADSTS700027.cause": () =>
    "Entra ID does not accept the certificate: it is not uploaded to the app, the key does not " +
    "belong to it, or this computer's clock is wrong.",
  "AADSTS700027.fix": (v) =>
    `Entra admin center > App registrations > ${v.clientId} > Certificates & secrets > ` +
    "Certificates: upload the certificate's public part (.cer/.pem); check the system clock." +
    (v.certificate
      ? ` The certificate used has the thumbprint ${v.certificate.sha1} (SHA-1, as the portal ` +
        `lists it) and ${v.certificate.sha256} (SHA-256 base64url, as Entra's message shows it).`
      : ""),
  "AADSTS7000218.cause": () =>
    "The app needs a credential (or public client flows are off for user sign-in).",
  "AADSTS7000218.fix": (v) =>
    "Give -clientsecret or -clientcertificate, or for user sign-in set App registrations > " +
    `${v.clientId} > Authentication > Allow public client flows to Yes.`,
  "AADSTS700025.cause": () =>
    "The app is registered as a public client, so it must not send a secret.",
  "AADSTS700025.fix": () =>
    "Use user sign-in (-redirectUri or -DeviceCode) with this app, or a confidential app " +
    "for -clientsecret.",
  "AADSTS50011.cause": () => "The redirect URI is not registered for the app.",
  "AADSTS50011.fix": (v) =>
    `App registrations > ${v.clientId} > Authentication > Add a platform > Mobile and desktop ` +
    "applications: add the redirect URI given with -redirectUri (http://localhost for the " +
    "browser sign-in).",
  "AADSTS65001.cause": () => "Admin consent for the permission is missing.",
  "AADSTS65001.fix": (v) =>
    `App registrations > ${v.clientId} > API permissions: add the Office 365 Exchange Online ` +
    "permission and choose 'Grant admin consent'.",
  "AADSTS500011.cause": () =>
    "Office 365 Exchange Online is not known in this tenant, or the scope names another resource.",
  "AADSTS500011.fix": () =>
    "Check that the tenant has Exchange Online and that scopes start with " +
    "https://outlook.office365.com/.",
  "AADSTS1002012.cause": () => "The scope is not valid for this sign-in.",
  "AADSTS1002012.fix": () =>
    "App sign-in needs https://outlook.office365.com/.default; leave -Scopes away.",
  "AADSTS70011.cause": () => "The scope is not valid.",
  "AADSTS70011.fix": () =>
    "Use https://outlook.office365.com/.default or the protocol's scope, e.g. " +
    "https://outlook.office.com/POP.AccessAsUser.All.",
  "AADSTS50076.cause": () => "Multi-factor authentication is required for this sign-in.",
  "AADSTS50076.fix": () =>
    "Sign in interactively (-redirectUri http://localhost or -DeviceCode) and complete MFA.",
  "AADSTS53003.cause": () => "A Conditional Access policy blocked the sign-in.",
  "AADSTS53003.fix": () =>
    "Entra admin center > Protection > Conditional Access: check the sign-in logs for the " +
    "policy and exclude or allow this app or location.",
  "AADSTS70000.cause": () => "The cached sign-in is no longer valid.",
  "AADSTS70000.fix": () => "Sign in again interactively (-redirectUri or -DeviceCode).",
  "AADSTS700082.cause": () => "The cached sign-in expired after a long time unused.",
  "AADSTS700082.fix": () => "Sign in again interactively (-redirectUri or -DeviceCode).",
  "AADSTS900144.cause": () => "The request to Entra ID was incomplete.",
  "AADSTS900144.fix": () => "Sign in again; if it persists, delete the token cache folder.",
  "AADSTS50173.cause": () => "The sign-in was revoked (password change or admin action).",
  "AADSTS50173.fix": () => "Sign in again interactively (-redirectUri or -DeviceCode).",
  "AADSTS65004.cause": () => "The user declined to consent.",
  "AADSTS65004.fix": (v) =>
    `Accept the consent prompt, or have an admin grant consent under App registrations > ` +
    `${v.clientId} > API permissions.`,
  "AADSTS70020.cause": () => "The device code expired before the sign-in was completed.",
  "AADSTS70020.fix": () => "Run again and enter the new code within 15 minutes.",
  "CLIENT_SECRET_IS_ID.cause": () =>
    "-clientsecret is a GUID: that is almost surely the secret's Secret ID, not its Value; " +
    "Entra ID will refuse it (AADSTS7000215).",
  "CLIENT_SECRET_IS_ID.fix": (v) =>
    `Entra admin center > App registrations > ${v.clientId} > Certificates & secrets > Client ` +
    "secrets: give the Value column, not Secret ID. The Value is shown in full only right " +
    "after the secret is created; if it was not noted, create a new client secret.",
  "SECRET_TRIMMED.cause": () =>
    "Entra ID refused the client secret even after the whitespace pasted around it was " +
    "removed: the Value itself is wrong (cut short, another secret's) or expired.",
  "SECRET_TRIMMED.fix": (v) =>
    `Entra admin center > App registrations > ${v.clientId} > Certificates & secrets > Client ` +
    "secrets: copy the Value again, all of it and nothing else (not the Secret ID), or " +
    "create a new client secret.",
  "SECRET_ID_GIVEN.cause": () =>
    "Entra ID refused the client secret: -clientsecret was the secret's Secret ID (a GUID), " +
    "not its Value.",
  "SECRET_ID_GIVEN.fix": (v) =>
    `Entra admin center > App registrations > ${v.clientId} > Certificates & secrets > Client ` +
    "secrets: the Value column holds the secret (shown in full only right after it was " +
    "created). If it was not noted, choose 'New client secret' and copy its Value into " +
    "-clientsecret.",
  "CLIENT_ID_IS_TENANT.cause": (v) =>
    `-clientId and -tenantID are the same GUID (${v.tenantId}): the Directory (tenant) ID was ` +
    "given as the client ID.",
  "CLIENT_ID_IS_TENANT.fix": () =>
    "The app registration's Overview page shows both: Application (client) ID goes into " +
    "-clientId, Directory (tenant) ID into -tenantID.",
  "TENANT_ID_AS_CLIENT_ID.cause": (v) =>
    `Entra ID knows no app ${v.clientId}: that is the tenant's own ID (-clientId equals ` +
    "-tenantID), not the app's.",
  "TENANT_ID_AS_CLIENT_ID.fix": () =>
    "Copy Application (client) ID from the app registration's Overview page into -clientId; " +
    "Directory (tenant) ID stays in -tenantID.",

  "ROLE_MISSING.cause": (v) =>
    `The token has no ${v.role} role: the app may not use ${v.protocol} yet.`,
  "ROLE_MISSING.fix": (v) =>
    `App registrations > ${v.clientId} > API permissions > Add a permission > APIs my ` +
    `organization uses > Office 365 Exchange Online > Application permissions > ${v.role}` +
    `${orOther(v)}, then 'Grant admin consent'.`,
  "SCOPE_MISSING.cause": (v) => `The user token has no permission for ${v.protocol}.`,
  "SCOPE_MISSING.fix": (v) =>
    `App registrations > ${v.clientId} > API permissions: add the delegated Office 365 ` +
    `Exchange Online permission for ${v.protocol} (e.g. POP.AccessAsUser.All) and grant consent.`,
  "WRONG_AUDIENCE.cause": (v) => `The token is not for Exchange Online (audience ${v.detail}).`,
  "WRONG_AUDIENCE.fix": () =>
    "Request https://outlook.office365.com/.default (leave -Scopes away); Graph tokens do not " +
    "work for IMAP/POP/SMTP.",
  "WRONG_TENANT.cause": (v) => `The token is from another tenant (${v.detail}).`,
  "WRONG_TENANT.fix": (v) => `Check -tenantID ${v.tenantId}.`,
  "TOKEN_EXPIRED.cause": () => "The access token expired.",
  "TOKEN_EXPIRED.fix": () => "Run again for a fresh token; check this computer's clock.",
  "IMAP_AUTH_FAILED.cause": (v) =>
    `The token has the right permission, but Exchange does not let the app into ${v.mailbox}. ` +
    "Most often the service principal was registered with the object ID of the App " +
    `registration instead of the Enterprise application's object ID.${fromOid(v)}`,
  "IMAP_AUTH_FAILED.fix": (v) =>
    `In Exchange Online PowerShell: New-ServicePrincipal -AppId ${v.clientId} -ObjectId ` +
    `${spObjectId(v)} (remove a wrong one found by Get-ServicePrincipal first); then ` +
    `Add-MailboxPermission -Identity ${v.mailbox} -User ${sp(v)} -AccessRights FullAccess; ` +
    `Set-CASMailbox -Identity ${v.mailbox} -ImapEnabled $true.`,
  "POP3_AUTH_FAILED.cause": (v) =>
    `The token has the right permission, but Exchange does not let the app into ${v.mailbox}: ` +
    "service principal missing or registered with the App registration's object ID instead of " +
    `the Enterprise application's, FullAccess missing, or POP3 off for the mailbox.${fromOid(v)}`,
  "POP3_AUTH_FAILED.fix": (v) =>
    `New-ServicePrincipal -AppId ${v.clientId} -ObjectId ${spObjectId(v)}; ` +
    `Add-MailboxPermission -Identity ${v.mailbox} -User ${sp(v)} -AccessRights FullAccess; ` +
    `Set-CASMailbox -Identity ${v.mailbox} -PopEnabled $true.`,
  "AUTH_FAILED_ROLE_MISSING.cause": (v) =>
    `The login was refused because the token has no ${v.role} role.`,
  "AUTH_FAILED_ROLE_MISSING.fix": (v) =>
    `App registrations > ${v.clientId} > API permissions > Office 365 Exchange Online > ` +
    `Application permissions > ${v.role}${orOther(v)}, then 'Grant admin consent'.`,
  "IMAP_NOT_CONNECTED.cause": (v) =>
    `The app may log in but cannot open ${v.mailbox}: FullAccess missing or IMAP off for it.`,
  "IMAP_NOT_CONNECTED.fix": (v) =>
    `Add-MailboxPermission -Identity ${v.mailbox} -User ${sp(v)} -AccessRights FullAccess; ` +
    `Set-CASMailbox -Identity ${v.mailbox} -ImapEnabled $true (changes can take 30 minutes).`,
  "IMAP_LIST_FAILED.cause": (v) => `Logged in, but listing the folders of ${v.mailbox} failed.`,
  "IMAP_LIST_FAILED.fix": (v) =>
    `Check FullAccess: Get-MailboxPermission -Identity ${v.mailbox}; and ` +
    `Set-CASMailbox -Identity ${v.mailbox} -ImapEnabled $true.`,
  "POP3_STAT_FAILED.cause": (v) => `Logged in, but ${v.mailbox} cannot be read over POP3.`,
  "POP3_STAT_FAILED.fix": (v) =>
    `Set-CASMailbox -Identity ${v.mailbox} -PopEnabled $true; check FullAccess with ` +
    `Get-MailboxPermission -Identity ${v.mailbox}.`,
  "POP3_XOAUTH2_UNSUPPORTED.cause": (v) => `${v.server} does not offer XOAUTH2 for POP3.`,
  "POP3_XOAUTH2_UNSUPPORTED.fix": () =>
    "Use outlook.office365.com (the default -Server) and port 995.",
  "IMAP_XOAUTH2_UNSUPPORTED.cause": (v) => `${v.server} does not offer XOAUTH2 for IMAP.`,
  "IMAP_XOAUTH2_UNSUPPORTED.fix": () =>
    "Use outlook.office365.com (the default -Server) and port 993.",
  "IMAP_BAD_GREETING.cause": (v) => `${v.server}:${v.port} does not greet like an IMAP server.`,
  "IMAP_BAD_GREETING.fix": () =>
    "Check -Server and -Port: Exchange Online's IMAP is outlook.office365.com port 993.",
  "POP3_BAD_GREETING.cause": (v) => `${v.server}:${v.port} does not greet like a POP3 server.`,
  "POP3_BAD_GREETING.fix": () =>
    "Check -Server and -Port: Exchange Online's POP3 is outlook.office365.com port 995.",
  "SMTP_BAD_GREETING.cause": (v) =>
    `${v.server}:${v.port} does not greet like an SMTP submission server.`,
  "SMTP_BAD_GREETING.fix": () =>
    "Check -Server and -Port: Exchange Online's SMTP submission is smtp.office365.com port 587.",
  "SMTP_XOAUTH2_UNSUPPORTED.cause": (v) =>
    `${v.server} does not offer XOAUTH2 for SMTP, so the token was not sent.`,
  "SMTP_XOAUTH2_UNSUPPORTED.fix": () =>
    "Use smtp.office365.com port 587 (the defaults for -Protocol SMTP).",
  "TLS_FAILED.cause": (v) => `No TLS connection could be made with ${v.server}:${v.port}.`,
  "TLS_FAILED.fix": () =>
    "Check that the port speaks TLS from the start (IMAP 993, POP3 995) or offers STARTTLS " +
    "(SMTP 587); a firewall or proxy that inspects TLS may interfere.",
  "CONNECTION_CLOSED_LF.cause": () =>
    "The server closed the connection: lines must end with CR LF.",
  "CONNECTION_CLOSED_LF.fix": () => "Report this as a bug of the tool.",
  "SMTP_AUTH_FAILED.cause": (v) =>
    `The token has the right permission, but Exchange refuses SMTP for ${v.mailbox}: service ` +
    "principal missing or registered with the App registration's object ID, or SMTP AUTH off.",
  "SMTP_AUTH_FAILED.fix": (v) =>
    `Check that the token carries SMTP.SendAsApp (app) or SMTP.Send (user); ` +
    `New-ServicePrincipal -AppId ${v.clientId} -ObjectId ${spObjectId(v)}; ` +
    `Set-CASMailbox -Identity ${v.mailbox} -SmtpClientAuthenticationDisabled $false.`,
  "SMTP_AUTH_DISABLED_TENANT.cause": () =>
    "SMTP AUTH is turned off for the whole tenant (5.7.139): it blocks OAuth logins too.",
  "SMTP_AUTH_DISABLED_TENANT.fix": (v) =>
    "Set-TransportConfig -SmtpClientAuthenticationDisabled $false (tenant-wide), or " +
    `Set-CASMailbox -Identity ${v.mailbox} -SmtpClientAuthenticationDisabled $false (this ` +
    "mailbox only; it overrides the tenant's setting).",
  "SMTP_AUTH_DISABLED_MAILBOX.cause": (v) => `SMTP AUTH is turned off for ${v.mailbox}.`,
  "SMTP_AUTH_DISABLED_MAILBOX.fix": (v) =>
    `Set-CASMailbox -Identity ${v.mailbox} -SmtpClientAuthenticationDisabled $false.`,
  "SMTP_BASIC_AUTH_DISABLED.cause": () =>
    "Exchange answered that basic authentication is disabled: it did not take the login as OAuth.",
  "SMTP_BASIC_AUTH_DISABLED.fix": (v) =>
    `Check the app's SMTP.SendAsApp permission (step 2) and Set-CASMailbox -Identity ${v.mailbox} ` +
    "-SmtpClientAuthenticationDisabled $false.",
  "SMTP_NOT_AUTHENTICATED.cause": () => "The server says the client is not authenticated.",
  "SMTP_NOT_AUTHENTICATED.fix": (v) =>
    `Check SMTP AUTH for the mailbox: Set-CASMailbox -Identity ${v.mailbox} ` +
    "-SmtpClientAuthenticationDisabled $false.",
  "SMTP_SEND_FAILED.cause": (v) =>
    `Logged in, but the server refused the message from ${v.mailbox}.`,
  "SMTP_SEND_FAILED.fix": (v) =>
    `Add-RecipientPermission -Identity ${v.mailbox} -Trustee ${sp(v)} -AccessRights SendAs.`,
  "SMTP_BASIC_AUTH_RETIRED.cause": () =>
    "Exchange took the login for Basic authentication, which SMTP client submission no longer " +
    "accepts (5.7.30; Basic auth for SMTP AUTH ends in 2026): the token was not accepted as OAuth.",
  "SMTP_BASIC_AUTH_RETIRED.fix": (v) =>
    "Devices that send with a password must move to OAuth (XOAUTH2, as this tool logs in). For " +
    `this login: the token needs SMTP.SendAsApp (step 2); New-ServicePrincipal -AppId ${v.clientId} ` +
    `-ObjectId ${spObjectId(v)}; Set-CASMailbox -Identity ${v.mailbox} ` +
    "-SmtpClientAuthenticationDisabled $false; Set-TransportConfig " +
    "-SmtpClientAuthenticationDisabled $false.",
  "SMTP_SEND_AS_DENIED.cause": (v) =>
    `Logged in, but Exchange does not let the app send as ${v.mailbox} (SendAsDenied).`,
  "SMTP_SEND_AS_DENIED.fix": (v) =>
    `Add-RecipientPermission -Identity ${v.mailbox} -Trustee ${sp(v)} -AccessRights SendAs ` +
    "(changes can take 30 minutes).",
  "SMTP_NO_STARTTLS.cause": (v) =>
    `${v.server} does not offer STARTTLS, so the token was not sent.`,
  "SMTP_NO_STARTTLS.fix": () =>
    "Use smtp.office365.com port 587 (the defaults for -Protocol SMTP); check for a proxy that " +
    "strips STARTTLS.",
  "DNS_FAILED.cause": (v) => `The name ${v.server} cannot be resolved.`,
  "DNS_FAILED.fix": () => "Check -Server / -AuthorityHost and this computer's DNS settings.",
  "CONNECTION_REFUSED.cause": (v) => `Nothing accepts connections at ${v.server}:${v.port}.`,
  "CONNECTION_REFUSED.fix": () =>
    "Check -Server and -Port (IMAP 993, POP3 995) and local firewalls.",
  "TIMEOUT.cause": () => "No answer in time.",
  "TIMEOUT.fix": () =>
    "Check firewall and proxy rules for this host and port, or raise -TimeoutSeconds.",
  "TLS_UNTRUSTED.cause": () => "The server's certificate is not trusted on this computer.",
  "TLS_UNTRUSTED.fix": () =>
    "If a TLS-inspecting proxy or a test server uses its own CA, give that CA with -CaFile.",
  "TLS_HOSTNAME.cause": (v) => `The server's certificate is not valid for ${v.server}.`,
  "TLS_HOSTNAME.fix": () =>
    "Use the host name the certificate is for (outlook.office365.com), not an IP address.",
  "PROXY_REFUSED.cause": (v) => `${theProxy(v)} refused the connection to ${v.server}:${v.port}.`,
  "PROXY_REFUSED.fix": (v) =>
    `Check that ${setting(v)} names the right proxy and that it lets HTTPS (CONNECT) through ` +
    `to ${v.server}:${v.port}; a host that is reached directly belongs in NO_PROXY.`,
  "PROXY_AUTH_FAILED.cause": (v) => `${theProxy(v)} did not accept the user name or password.`,
  "PROXY_AUTH_FAILED.fix": (v) =>
    `Give them in the proxy URL: ${assignment(v)}http://user:password@proxy:port (URL-encode ` +
    "special characters).",
  "PROXY_UNREACHABLE.cause": (v) => `${theProxy(v)} cannot be reached.`,
  "PROXY_UNREACHABLE.fix": (v) =>
    `Check the host and port in ${setting(v)}` +
    (v.proxySource && v.proxySource !== "-Proxy"
      ? ", or remove the variable if this computer needs no proxy"
      : "") +
    ".",
  "SIGN_IN_REQUIRED.cause": () =>
    "No cached sign-in, and nobody can sign in here (no terminal, or token-only output).",
  "SIGN_IN_REQUIRED.fix": () =>
    "Run the same command once in a terminal with -OutputFormat Text to sign in.",
  "REFRESH_FAILED.cause": () => "The cached sign-in cannot be renewed.",
  "REFRESH_FAILED.fix": () =>
    "Run the same command once in a terminal with -OutputFormat Text to sign in again.",
  "SMTP_IMPLICIT_TLS_PORT.cause": (v) =>
    `Port ${v.port} expects TLS from the first byte (implicit TLS, e.g. 465), but SMTP ` +
    "submission here starts in plain text and switches with STARTTLS (port 587).",
  "SMTP_IMPLICIT_TLS_PORT.fix": () =>
    "Use -Port 587 (or leave -Port out): Exchange Online takes SMTP AUTH on 587 with STARTTLS.",
  "ENTRA_UNAVAILABLE.cause": () =>
    "Entra ID answered with a server error (HTTP 5xx) on every attempt: a transient problem on " +
    "Microsoft's side, not in your setup.",
  "ENTRA_UNAVAILABLE.fix": () =>
    "Retry in a few minutes. If it persists, check the service health (Microsoft 365 admin " +
    "center > Health > Service health, or https://status.cloud.microsoft) and give Microsoft " +
    "support the Trace ID and Correlation ID, when the message names them.",
} satisfies Record<string, Text>;
