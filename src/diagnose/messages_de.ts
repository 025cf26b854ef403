/** Deutsche Texte, mit denselben Schlüsseln wie messages_en.ts. */
import type { MessageKey, Text, Values } from "./messages.ts";

/** Der Dienstprinzipal für -User/-Trustee: die oid des Tokens, wenn bekannt. */
/** „Der Proxy host:port (aus HTTPS_PROXY)“, oder „Der Proxy“, wenn unbekannt. */
const derProxy = (v: Values) =>
  v.proxy ? `Der Proxy ${v.proxy} (aus ${v.proxySource ?? "-Proxy"})` : "Der Proxy";
/** Wo der Proxy eingestellt ist: `-Proxy` oder die Umgebungsvariable. */
const setting = (v: Values) =>
  !v.proxySource || v.proxySource === "-Proxy"
    ? "-Proxy"
    : `der Umgebungsvariablen ${v.proxySource}`;
/** Dasselbe im Nominativ: `-Proxy` oder „die Umgebungsvariable HTTPS_PROXY“. */
const settingNominative = (v: Values) =>
  !v.proxySource || v.proxySource === "-Proxy"
    ? "-Proxy"
    : `die Umgebungsvariable ${v.proxySource}`;
/** Wie die Proxy-URL dort angegeben wird: `-Proxy ` oder `HTTPS_PROXY=`. */
const assignment = (v: Values) =>
  !v.proxySource || v.proxySource === "-Proxy" ? "-Proxy " : `${v.proxySource}=`;
const sp = (v: Values) => v.servicePrincipalId ?? "<Dienstprinzipal>";
/** Der Wert für New-ServicePrincipal -ObjectId: die oid des Tokens, wenn bekannt. */
const spObjectId = (v: Values) =>
  v.servicePrincipalId ?? "<Objekt-ID aus Unternehmensanwendungen (nicht App-Registrierungen)>";
/** Die Rolle des anderen Protokolls, wenn das Token keines erlaubt und -Protocol fehlt. */
const orOther = (v: Values) =>
  v.otherRole
    ? ` (oder ${v.otherRole}, wenn die Mailsoftware POP3 verwendet: dann wird ohne -Protocol ` +
      "POP3 geprüft)"
    : "";
/** Woher die Objekt-ID stammt, wenn das Token sie nennt. */
const fromOid = (v: Values) =>
  v.servicePrincipalId
    ? ` Das Token nennt die Objekt-ID der Unternehmensanwendung: ${v.servicePrincipalId}.`
    : "";

export const de: Record<MessageKey, Text> = {
  "label.hint": () => "HINWEIS",
  "label.step": () => "Schritt",
  "label.fix": () => "LÖSUNG",
  "label.warning": () => "WARNUNG",
  "step.1": () => "Schritt 1 (App-Registrierung)",
  "step.2": () => "Schritt 2 (API-Berechtigung und Administratoreinwilligung)",
  "step.3": () => "Schritt 3 (Exchange-Dienstprinzipal und Postfachberechtigung)",
  "step.network": () => "Netzwerk",
  "step.client": () => "dieser Rechner oder die Anmeldung",

  "check.parameters": () => "Parameter gültig",
  "check.authority": (v) => `Entra ID erreichbar (${v.authorityHost})`,
  "check.token": () => "Zugriffstoken erhalten",
  "check.claims": () => "Token hat die nötige Zielgruppe, den Mandanten und die Berechtigung",
  "check.server": (v) =>
    `Mailserver erreichbar, Zertifikat vertrauenswürdig (${v.server}:${v.port})`,
  "check.login": (v) => `XOAUTH2-Anmeldung (${v.protocol})`,
  "check.mailbox": (v) => `Postfach nutzbar (${v.mailbox})`,
  "check.skipped": () => "nicht ausgeführt",
  "protocol.fromToken": (v) =>
    `Das Token erlaubt nur ${v.protocol} (${v.detail}): geprüft wird ${v.protocol} auf Port ` +
    `${v.port}; -Protocol wählt ein anderes.`,
  "note.servicePrincipal": (v) =>
    `Die Objekt-ID der Unternehmensanwendung (oid des Tokens) ist ${v.servicePrincipalId}: ` +
    "der Wert für New-ServicePrincipal -ObjectId und Add-MailboxPermission -User.",

  "AADSTS7000215.cause": () =>
    "Der geheime Clientschlüssel ist falsch: meist wurde die Geheimnis-ID statt des Werts kopiert.",
  "AADSTS7000215.fix": (v) =>
    `Entra Admin Center > App-Registrierungen > ${v.clientId} > Zertifikate & Geheimnisse: ` +
    "einen neuen geheimen Clientschlüssel anlegen und seinen Wert (wird nur einmal angezeigt) " +
    "bei -clientsecret angeben.",
  "AADSTS7000222.cause": () => "Der geheime Clientschlüssel ist abgelaufen.",
  "AADSTS7000222.fix": (v) =>
    `Entra Admin Center > App-Registrierungen > ${v.clientId} > Zertifikate & Geheimnisse: ` +
    "einen neuen geheimen Clientschlüssel anlegen und seinen Wert verwenden.",
  "AADSTS700016.cause": (v) =>
    `Im Mandanten ${v.tenantId} gibt es keine Anwendung mit der Client-ID ${v.clientId}. Meist ` +
    "wurde die Objekt-ID der App-Registrierung statt ihrer Anwendungs-ID (Client) angegeben.",
  "AADSTS700016.fix": () =>
    "Anwendungs-ID (Client) (nicht Objekt-ID) und Verzeichnis-ID (Mandant) von der " +
    "Übersichtsseite der App-Registrierung bei -clientId und -tenantID angeben.",
  "AADSTS90002.cause": (v) => `Den Mandanten '${v.tenantId}' gibt es nicht.`,
  "AADSTS90002.fix": () =>
    "Bei -tenantID die Verzeichnis-ID (Mandant) von der Übersichtsseite der App-Registrierung " +
    "oder die Domäne des Mandanten (contoso.onmicrosoft.com) angeben. Steht dort die " +
    "Anwendungs-ID (Client), sind -tenantID und -clientId vertauscht.",
  "AADSTS700027.cause": () =>
    "Entra ID akzeptiert das Zertifikat nicht: es ist nicht bei der App hochgeladen, der " +
    "Schlüssel gehört nicht dazu, oder die Uhr dieses Rechners geht falsch.",
  "AADSTS700027.fix": (v) =>
    `Entra Admin Center > App-Registrierungen > ${v.clientId} > Zertifikate & Geheimnisse > ` +
    "Zertifikate: den öffentlichen Teil des Zertifikats (.cer/.pem) hochladen; die Systemzeit " +
    "prüfen." +
    (v.certificate
      ? ` Das verwendete Zertifikat hat den Fingerabdruck ${v.certificate.sha1} (SHA-1, wie ` +
        `das Portal ihn anzeigt) und ${v.certificate.sha256} (SHA-256 base64url, wie in der ` +
        "Meldung von Entra)."
      : ""),
  "AADSTS7000218.cause": () =>
    "Die App verlangt Anmeldeinformationen (oder öffentliche Clientflows sind für die " +
    "Benutzeranmeldung ausgeschaltet).",
  "AADSTS7000218.fix": (v) =>
    "-clientsecret oder -clientcertificate angeben, oder für die Benutzeranmeldung unter " +
    `App-Registrierungen > ${v.clientId} > Authentifizierung 'Öffentliche Clientflows ` +
    "zulassen' auf Ja stellen.",
  "AADSTS700025.cause": () =>
    "Die App ist als öffentlicher Client registriert und darf daher keinen geheimen Schlüssel " +
    "senden.",
  "AADSTS700025.fix": () =>
    "Mit dieser App die Benutzeranmeldung (-redirectUri oder -DeviceCode) verwenden, oder für " +
    "-clientsecret eine vertrauliche App.",
  "AADSTS50011.cause": () => "Der Umleitungs-URI ist für die App nicht registriert.",
  "AADSTS50011.fix": (v) =>
    `App-Registrierungen > ${v.clientId} > Authentifizierung > Plattform hinzufügen > Mobile ` +
    "Anwendungen und Desktopanwendungen: den bei -redirectUri angegebenen URI eintragen " +
    "(http://localhost für die Anmeldung im Browser).",
  "AADSTS65001.cause": () => "Die Administratoreinwilligung für die Berechtigung fehlt.",
  "AADSTS65001.fix": (v) =>
    `App-Registrierungen > ${v.clientId} > API-Berechtigungen: die Berechtigung für Office 365 ` +
    "Exchange Online hinzufügen und 'Administratoreinwilligung erteilen' wählen.",
  "AADSTS500011.cause": () =>
    "Office 365 Exchange Online ist in diesem Mandanten unbekannt, oder der Bereich nennt eine " +
    "andere Ressource.",
  "AADSTS500011.fix": () =>
    "Prüfen, dass der Mandant Exchange Online hat und die Bereiche mit " +
    "https://outlook.office365.com/ beginnen.",
  "AADSTS1002012.cause": () => "Der Bereich (Scope) ist für diese Anmeldung ungültig.",
  "AADSTS1002012.fix": () =>
    "Die App-Anmeldung braucht https://outlook.office365.com/.default; -Scopes weglassen.",
  "AADSTS70011.cause": () => "Der Bereich (Scope) ist ungültig.",
  "AADSTS70011.fix": () =>
    "https://outlook.office365.com/.default oder den Bereich des Protokolls verwenden, z. B. " +
    "https://outlook.office.com/POP.AccessAsUser.All.",
  "AADSTS50076.cause": () => "Für diese Anmeldung ist eine mehrstufige Authentifizierung nötig.",
  "AADSTS50076.fix": () =>
    "Interaktiv anmelden (-redirectUri http://localhost oder -DeviceCode) und die MFA abschließen.",
  "AADSTS53003.cause": () => "Eine Richtlinie für bedingten Zugriff hat die Anmeldung blockiert.",
  "AADSTS53003.fix": () =>
    "Entra Admin Center > Schutz > Bedingter Zugriff: in den Anmeldeprotokollen die Richtlinie " +
    "finden und diese App oder diesen Standort ausnehmen oder zulassen.",
  "AADSTS70000.cause": () => "Die gespeicherte Anmeldung ist nicht mehr gültig.",
  "AADSTS70000.fix": () => "Erneut interaktiv anmelden (-redirectUri oder -DeviceCode).",
  "AADSTS700082.cause": () =>
    "Die gespeicherte Anmeldung ist nach langer Nichtbenutzung abgelaufen.",
  "AADSTS700082.fix": () => "Erneut interaktiv anmelden (-redirectUri oder -DeviceCode).",
  "AADSTS900144.cause": () => "Die Anfrage an Entra ID war unvollständig.",
  "AADSTS900144.fix": () => "Erneut anmelden; wenn es bleibt, den Ordner des Token-Caches löschen.",
  "AADSTS50173.cause": () =>
    "Die Anmeldung wurde widerrufen (Kennwortänderung oder Eingriff eines Administrators).",
  "AADSTS50173.fix": () => "Erneut interaktiv anmelden (-redirectUri oder -DeviceCode).",
  "AADSTS65004.cause": () => "Der Benutzer hat die Einwilligung abgelehnt.",
  "AADSTS65004.fix": (v) =>
    "Die Einwilligung annehmen, oder ein Administrator erteilt sie unter App-Registrierungen > " +
    `${v.clientId} > API-Berechtigungen.`,
  "AADSTS70020.cause": () => "Der Gerätecode ist abgelaufen, bevor die Anmeldung fertig war.",
  "AADSTS70020.fix": () => "Erneut starten und den neuen Code innerhalb von 15 Minuten eingeben.",
  "CLIENT_SECRET_IS_ID.cause": () =>
    "-clientsecret ist eine GUID: das ist so gut wie sicher die Geheimnis-ID, nicht der Wert " +
    "des geheimen Clientschlüssels; Entra ID wird sie ablehnen (AADSTS7000215).",
  "CLIENT_SECRET_IS_ID.fix": (v) =>
    `Entra Admin Center > App-Registrierungen > ${v.clientId} > Zertifikate & Geheimnisse > ` +
    "Geheime Clientschlüssel: die Spalte Wert angeben, nicht Geheimnis-ID. Der Wert wird nur " +
    "direkt nach dem Anlegen vollständig angezeigt; wurde er nicht notiert, einen neuen " +
    "geheimen Clientschlüssel anlegen.",
  "SECRET_TRIMMED.cause": () =>
    "Entra ID hat den geheimen Clientschlüssel abgelehnt, auch nachdem die mitkopierten " +
    "Leerzeichen entfernt wurden: der Wert selbst ist falsch (abgeschnitten, ein anderer) oder " +
    "abgelaufen.",
  "SECRET_TRIMMED.fix": (v) =>
    `Entra Admin Center > App-Registrierungen > ${v.clientId} > Zertifikate & Geheimnisse > ` +
    "Geheime Clientschlüssel: den Wert erneut kopieren, vollständig und nichts anderes (nicht " +
    "die Geheimnis-ID), oder einen neuen geheimen Clientschlüssel anlegen.",
  "SECRET_ID_GIVEN.cause": () =>
    "Entra ID hat den geheimen Clientschlüssel abgelehnt: bei -clientsecret stand die " +
    "Geheimnis-ID (eine GUID), nicht der Wert.",
  "SECRET_ID_GIVEN.fix": (v) =>
    `Entra Admin Center > App-Registrierungen > ${v.clientId} > Zertifikate & Geheimnisse > ` +
    "Geheime Clientschlüssel: in der Spalte Wert steht der Schlüssel (vollständig nur direkt " +
    "nach dem Anlegen). Wurde er nicht notiert, 'Neuer geheimer Clientschlüssel' wählen und " +
    "dessen Wert bei -clientsecret angeben.",
  "CLIENT_ID_IS_TENANT.cause": (v) =>
    `-clientId und -tenantID sind dieselbe GUID (${v.tenantId}): als Client-ID wurde die ` +
    "Verzeichnis-ID (Mandant) angegeben.",
  "CLIENT_ID_IS_TENANT.fix": () =>
    "Die Übersichtsseite der App-Registrierung zeigt beide: Anwendungs-ID (Client) gehört zu " +
    "-clientId, Verzeichnis-ID (Mandant) zu -tenantID.",
  "TENANT_ID_AS_CLIENT_ID.cause": (v) =>
    `Entra ID kennt keine App ${v.clientId}: das ist die ID des Mandanten selbst (-clientId ` +
    "gleich -tenantID), nicht die der App.",
  "TENANT_ID_AS_CLIENT_ID.fix": () =>
    "Die Anwendungs-ID (Client) von der Übersichtsseite der App-Registrierung bei -clientId " +
    "angeben; die Verzeichnis-ID (Mandant) bleibt bei -tenantID.",

  "ROLE_MISSING.cause": (v) =>
    `Das Token hat keine Rolle ${v.role}: die App darf ${v.protocol} noch nicht verwenden.`,
  "ROLE_MISSING.fix": (v) =>
    `App-Registrierungen > ${v.clientId} > API-Berechtigungen > Berechtigung hinzufügen > Von ` +
    "meiner Organisation verwendete APIs > Office 365 Exchange Online > " +
    `Anwendungsberechtigungen > ${v.role}${orOther(v)}, dann 'Administratoreinwilligung ` +
    "erteilen'.",
  "SCOPE_MISSING.cause": (v) => `Das Benutzertoken hat keine Berechtigung für ${v.protocol}.`,
  "SCOPE_MISSING.fix": (v) =>
    `App-Registrierungen > ${v.clientId} > API-Berechtigungen: die delegierte Berechtigung von ` +
    `Office 365 Exchange Online für ${v.protocol} (z. B. POP.AccessAsUser.All) hinzufügen und ` +
    "die Einwilligung erteilen.",
  "WRONG_AUDIENCE.cause": (v) =>
    `Das Token ist nicht für Exchange Online (Zielgruppe ${v.detail}).`,
  "WRONG_AUDIENCE.fix": () =>
    "https://outlook.office365.com/.default anfordern (-Scopes weglassen); Graph-Token " +
    "funktionieren nicht für IMAP/POP/SMTP.",
  "WRONG_TENANT.cause": (v) => `Das Token stammt aus einem anderen Mandanten (${v.detail}).`,
  "WRONG_TENANT.fix": (v) => `-tenantID ${v.tenantId} prüfen.`,
  "TOKEN_EXPIRED.cause": () => "Das Zugriffstoken ist abgelaufen.",
  "TOKEN_EXPIRED.fix": () => "Erneut starten für ein frisches Token; die Systemzeit prüfen.",
  "IMAP_AUTH_FAILED.cause": (v) =>
    `Das Token hat die richtige Berechtigung, aber Exchange lässt die App nicht in ${v.mailbox}. ` +
    "Meist wurde der Dienstprinzipal mit der Objekt-ID der App-Registrierung statt mit der " +
    `Objekt-ID der Unternehmensanwendung angelegt.${fromOid(v)}`,
  "IMAP_AUTH_FAILED.fix": (v) =>
    `In Exchange Online PowerShell: New-ServicePrincipal -AppId ${v.clientId} -ObjectId ` +
    `${spObjectId(v)} (einen falschen, den Get-ServicePrincipal zeigt, vorher entfernen); dann ` +
    `Add-MailboxPermission -Identity ${v.mailbox} -User ${sp(v)} -AccessRights FullAccess; ` +
    `Set-CASMailbox -Identity ${v.mailbox} -ImapEnabled $true.`,
  "POP3_AUTH_FAILED.cause": (v) =>
    `Das Token hat die richtige Berechtigung, aber Exchange lässt die App nicht in ${v.mailbox}: ` +
    "Dienstprinzipal fehlt oder wurde mit der Objekt-ID der App-Registrierung statt der " +
    `Unternehmensanwendung angelegt, FullAccess fehlt, oder POP3 ist für das Postfach aus.${
      fromOid(v)
    }`,
  "POP3_AUTH_FAILED.fix": (v) =>
    `New-ServicePrincipal -AppId ${v.clientId} -ObjectId ${spObjectId(v)}; ` +
    `Add-MailboxPermission -Identity ${v.mailbox} -User ${sp(v)} -AccessRights FullAccess; ` +
    `Set-CASMailbox -Identity ${v.mailbox} -PopEnabled $true.`,
  "AUTH_FAILED_ROLE_MISSING.cause": (v) =>
    `Die Anmeldung wurde abgewiesen, weil das Token keine Rolle ${v.role} hat.`,
  "AUTH_FAILED_ROLE_MISSING.fix": (v) =>
    `App-Registrierungen > ${v.clientId} > API-Berechtigungen > Office 365 Exchange Online > ` +
    `Anwendungsberechtigungen > ${v.role}${orOther(v)}, dann 'Administratoreinwilligung ` +
    "erteilen'.",
  "IMAP_NOT_CONNECTED.cause": (v) =>
    `Die App darf sich anmelden, kann ${v.mailbox} aber nicht öffnen: FullAccess fehlt oder ` +
    "IMAP ist für das Postfach aus.",
  "IMAP_NOT_CONNECTED.fix": (v) =>
    `Add-MailboxPermission -Identity ${v.mailbox} -User ${sp(v)} -AccessRights FullAccess; ` +
    `Set-CASMailbox -Identity ${v.mailbox} -ImapEnabled $true (Änderungen können 30 Minuten ` +
    "dauern).",
  "IMAP_LIST_FAILED.cause": (v) =>
    `Angemeldet, aber die Ordner von ${v.mailbox} lassen sich nicht auflisten.`,
  "IMAP_LIST_FAILED.fix": (v) =>
    `FullAccess prüfen: Get-MailboxPermission -Identity ${v.mailbox}; und ` +
    `Set-CASMailbox -Identity ${v.mailbox} -ImapEnabled $true.`,
  "POP3_STAT_FAILED.cause": (v) =>
    `Angemeldet, aber ${v.mailbox} lässt sich über POP3 nicht lesen.`,
  "POP3_STAT_FAILED.fix": (v) =>
    `Set-CASMailbox -Identity ${v.mailbox} -PopEnabled $true; FullAccess prüfen mit ` +
    `Get-MailboxPermission -Identity ${v.mailbox}.`,
  "POP3_XOAUTH2_UNSUPPORTED.cause": (v) => `${v.server} bietet XOAUTH2 für POP3 nicht an.`,
  "POP3_XOAUTH2_UNSUPPORTED.fix": () =>
    "outlook.office365.com (Standard für -Server) und Port 995 verwenden.",
  "IMAP_XOAUTH2_UNSUPPORTED.cause": (v) => `${v.server} bietet XOAUTH2 für IMAP nicht an.`,
  "IMAP_XOAUTH2_UNSUPPORTED.fix": () =>
    "outlook.office365.com (Standard für -Server) und Port 993 verwenden.",
  "IMAP_BAD_GREETING.cause": (v) => `${v.server}:${v.port} grüßt nicht wie ein IMAP-Server.`,
  "IMAP_BAD_GREETING.fix": () =>
    "-Server und -Port prüfen: IMAP von Exchange Online ist outlook.office365.com Port 993.",
  "POP3_BAD_GREETING.cause": (v) => `${v.server}:${v.port} grüßt nicht wie ein POP3-Server.`,
  "POP3_BAD_GREETING.fix": () =>
    "-Server und -Port prüfen: POP3 von Exchange Online ist outlook.office365.com Port 995.",
  "SMTP_BAD_GREETING.cause": (v) =>
    `${v.server}:${v.port} grüßt nicht wie ein SMTP-Einlieferungsserver.`,
  "SMTP_BAD_GREETING.fix": () =>
    "-Server und -Port prüfen: SMTP-Einlieferung von Exchange Online ist smtp.office365.com " +
    "Port 587.",
  "SMTP_XOAUTH2_UNSUPPORTED.cause": (v) =>
    `${v.server} bietet XOAUTH2 für SMTP nicht an; das Token wurde nicht gesendet.`,
  "SMTP_XOAUTH2_UNSUPPORTED.fix": () =>
    "smtp.office365.com Port 587 verwenden (Standard für -Protocol SMTP).",
  "TLS_FAILED.cause": (v) => `Mit ${v.server}:${v.port} kam keine TLS-Verbindung zustande.`,
  "TLS_FAILED.fix": () =>
    "Prüfen, dass der Port gleich TLS spricht (IMAP 993, POP3 995) oder STARTTLS anbietet " +
    "(SMTP 587); eine Firewall oder ein Proxy mit TLS-Inspektion kann stören.",
  "CONNECTION_CLOSED_LF.cause": () =>
    "Der Server hat die Verbindung geschlossen: Zeilen müssen mit CR LF enden.",
  "CONNECTION_CLOSED_LF.fix": () => "Bitte als Fehler des Werkzeugs melden.",
  "SMTP_AUTH_FAILED.cause": (v) =>
    `Das Token hat die richtige Berechtigung, aber Exchange verweigert SMTP für ${v.mailbox}: ` +
    "Dienstprinzipal fehlt oder wurde mit der Objekt-ID der App-Registrierung angelegt, oder " +
    "SMTP AUTH ist aus.",
  "SMTP_AUTH_FAILED.fix": (v) =>
    `Prüfen, dass das Token SMTP.SendAsApp (App) oder SMTP.Send (Benutzer) trägt; ` +
    `New-ServicePrincipal -AppId ${v.clientId} -ObjectId ${spObjectId(v)}; ` +
    `Set-CASMailbox -Identity ${v.mailbox} -SmtpClientAuthenticationDisabled $false.`,
  "SMTP_AUTH_DISABLED_TENANT.cause": () =>
    "SMTP AUTH ist für den ganzen Mandanten ausgeschaltet (5.7.139): das sperrt auch " +
    "OAuth-Anmeldungen.",
  "SMTP_AUTH_DISABLED_TENANT.fix": (v) =>
    "Set-TransportConfig -SmtpClientAuthenticationDisabled $false (ganzer Mandant) oder " +
    `Set-CASMailbox -Identity ${v.mailbox} -SmtpClientAuthenticationDisabled $false (nur ` +
    "dieses Postfach; hat Vorrang vor der Einstellung des Mandanten).",
  "SMTP_AUTH_DISABLED_MAILBOX.cause": (v) => `SMTP AUTH ist für ${v.mailbox} ausgeschaltet.`,
  "SMTP_AUTH_DISABLED_MAILBOX.fix": (v) =>
    `Set-CASMailbox -Identity ${v.mailbox} -SmtpClientAuthenticationDisabled $false.`,
  "SMTP_BASIC_AUTH_DISABLED.cause": () =>
    "Exchange meldet, die Standardauthentifizierung sei aus: die Anmeldung wurde nicht als OAuth " +
    "erkannt.",
  "SMTP_BASIC_AUTH_DISABLED.fix": (v) =>
    "Die Berechtigung SMTP.SendAsApp der App prüfen (Schritt 2) und Set-CASMailbox -Identity " +
    `${v.mailbox} -SmtpClientAuthenticationDisabled $false.`,
  "SMTP_NOT_AUTHENTICATED.cause": () => "Der Server meldet, der Client sei nicht angemeldet.",
  "SMTP_NOT_AUTHENTICATED.fix": (v) =>
    `SMTP AUTH für das Postfach prüfen: Set-CASMailbox -Identity ${v.mailbox} ` +
    "-SmtpClientAuthenticationDisabled $false.",
  "SMTP_SEND_FAILED.cause": (v) =>
    `Angemeldet, aber der Server hat die Nachricht von ${v.mailbox} abgelehnt.`,
  "SMTP_SEND_FAILED.fix": (v) =>
    `Add-RecipientPermission -Identity ${v.mailbox} -Trustee ${sp(v)} -AccessRights SendAs.`,
  "SMTP_BASIC_AUTH_RETIRED.cause": () =>
    "Exchange hat die Anmeldung für eine Standardauthentifizierung gehalten, die die " +
    "SMTP-Einlieferung nicht mehr annimmt (5.7.30; Standardauthentifizierung für SMTP AUTH " +
    "endet 2026): das Token wurde nicht als OAuth erkannt.",
  "SMTP_BASIC_AUTH_RETIRED.fix": (v) =>
    "Geräte, die mit Kennwort senden, müssen auf OAuth umstellen (XOAUTH2, wie dieses " +
    "Werkzeug sich anmeldet). Für diese Anmeldung: das Token braucht SMTP.SendAsApp (Schritt " +
    `2); New-ServicePrincipal -AppId ${v.clientId} -ObjectId ${spObjectId(v)}; ` +
    `Set-CASMailbox -Identity ${v.mailbox} -SmtpClientAuthenticationDisabled $false; ` +
    "Set-TransportConfig -SmtpClientAuthenticationDisabled $false.",
  "SMTP_SEND_AS_DENIED.cause": (v) =>
    `Angemeldet, aber Exchange lässt die App nicht als ${v.mailbox} senden (SendAsDenied).`,
  "SMTP_SEND_AS_DENIED.fix": (v) =>
    `Add-RecipientPermission -Identity ${v.mailbox} -Trustee ${sp(v)} -AccessRights SendAs ` +
    "(Änderungen können 30 Minuten dauern).",
  "SMTP_NO_STARTTLS.cause": (v) =>
    `${v.server} bietet kein STARTTLS an, daher wurde das Token nicht gesendet.`,
  "SMTP_NO_STARTTLS.fix": () =>
    "smtp.office365.com mit Port 587 verwenden (Standard bei -Protocol SMTP); auf einen Proxy " +
    "prüfen, der STARTTLS entfernt.",
  "DNS_FAILED.cause": (v) => `Der Name ${v.server} lässt sich nicht auflösen.`,
  "DNS_FAILED.fix": () =>
    "-Server / -AuthorityHost und die DNS-Einstellungen dieses Rechners prüfen.",
  "CONNECTION_REFUSED.cause": (v) => `Unter ${v.server}:${v.port} nimmt niemand Verbindungen an.`,
  "CONNECTION_REFUSED.fix": () =>
    "-Server und -Port (IMAP 993, POP3 995) sowie lokale Firewalls prüfen.",
  "TIMEOUT.cause": () => "Keine Antwort in der vorgegebenen Zeit.",
  "TIMEOUT.fix": () =>
    "Firewall- und Proxy-Regeln für diesen Host und Port prüfen oder -TimeoutSeconds erhöhen.",
  "TLS_UNTRUSTED.cause": () => "Dem Zertifikat des Servers wird auf diesem Rechner nicht vertraut.",
  "TLS_UNTRUSTED.fix": () =>
    "Wenn ein TLS-prüfender Proxy oder ein Testserver eine eigene CA verwendet, diese CA mit " +
    "-CaFile angeben.",
  "TLS_HOSTNAME.cause": (v) => `Das Zertifikat des Servers gilt nicht für ${v.server}.`,
  "TLS_HOSTNAME.fix": () =>
    "Den Hostnamen verwenden, für den das Zertifikat gilt (outlook.office365.com), keine " +
    "IP-Adresse.",
  "PROXY_REFUSED.cause": (v) =>
    `${derProxy(v)} hat die Verbindung zu ${v.server}:${v.port} abgelehnt.`,
  "PROXY_REFUSED.fix": (v) =>
    `Prüfen, ob ${settingNominative(v)} den richtigen Proxy nennt und ob er HTTPS (CONNECT) zu ` +
    `${v.server}:${v.port} durchlässt; ein direkt erreichbarer Host gehört in NO_PROXY.`,
  "PROXY_AUTH_FAILED.cause": (v) =>
    `${derProxy(v)} hat Benutzername oder Kennwort nicht akzeptiert.`,
  "PROXY_AUTH_FAILED.fix": (v) =>
    `Beides in der Proxy-URL angeben: ${assignment(v)}http://benutzer:kennwort@proxy:port ` +
    "(Sonderzeichen URL-kodieren).",
  "PROXY_UNREACHABLE.cause": (v) => `${derProxy(v)} ist nicht erreichbar.`,
  "PROXY_UNREACHABLE.fix": (v) =>
    `Host und Port in ${setting(v)} prüfen` +
    (v.proxySource && v.proxySource !== "-Proxy"
      ? " oder die Variable entfernen, wenn dieser Rechner keinen Proxy braucht"
      : "") +
    ".",
  "SIGN_IN_REQUIRED.cause": () =>
    "Keine gespeicherte Anmeldung, und hier kann sich niemand anmelden (kein Terminal oder " +
    "reine Token-Ausgabe).",
  "SIGN_IN_REQUIRED.fix": () =>
    "Denselben Befehl einmal in einem Terminal mit -OutputFormat Text ausführen, um sich " +
    "anzumelden.",
  "REFRESH_FAILED.cause": () => "Die gespeicherte Anmeldung lässt sich nicht erneuern.",
  "REFRESH_FAILED.fix": () =>
    "Denselben Befehl einmal in einem Terminal mit -OutputFormat Text ausführen, um sich neu " +
    "anzumelden.",
  "SMTP_IMPLICIT_TLS_PORT.cause": (v) =>
    `Port ${v.port} erwartet TLS ab dem ersten Byte (implizites TLS, z. B. 465), SMTP-Versand ` +
    "beginnt hier aber im Klartext und wechselt mit STARTTLS (Port 587).",
  "SMTP_IMPLICIT_TLS_PORT.fix": () =>
    "-Port 587 verwenden (oder -Port weglassen): Exchange Online nimmt SMTP AUTH auf 587 mit " +
    "STARTTLS an.",
  "ENTRA_UNAVAILABLE.cause": () =>
    "Entra ID hat bei jedem Versuch mit einem Serverfehler (HTTP 5xx) geantwortet: ein " +
    "vorübergehendes Problem bei Microsoft, nicht in Ihrer Einrichtung.",
  "ENTRA_UNAVAILABLE.fix": () =>
    "In einigen Minuten erneut versuchen. Bleibt der Fehler, den Dienststatus prüfen " +
    "(Microsoft 365 Admin Center > Integrität > Dienstintegrität, oder " +
    "https://status.cloud.microsoft) und dem Microsoft-Support die Trace ID und Correlation ID " +
    "nennen, wenn die Meldung sie enthält.",
};
