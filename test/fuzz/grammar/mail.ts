/**
 * Grammar-aware server transcripts for the IMAP, POP3 and SMTP sessions: what Exchange and
 * Dovecot send (exchange-wire.md, test-bed.md), with every documented failure and the odd
 * corners of each protocol (literals, NIL delimiters, multi-line replies, challenges), in the
 * order the client asks. A transcript that follows the client's tags reaches the deep states
 * (LIST after login, the test message after AUTH) that random lines never reach.
 */

import type { Rng } from "../rng.ts";

/** A base64 JSON challenge as Dovecot sends it after failed XOAUTH2 credentials. */
export function challenge(rng: Rng): string {
  return rng.pick([
    btoa('{"status":"401","schemes":"bearer","scope":"https://outlook.office365.com/.default"}'),
    btoa('{"status":400}'),
    btoa("[1,2]"),
    btoa("not json"),
    "!!not base64",
    "",
  ]);
}

const IMAP_CAPS = [
  "IMAP4",
  "IMAP4rev1",
  "AUTH=PLAIN",
  "AUTH=XOAUTH2",
  "auth=xoauth2",
  "SASL-IR",
  "LITERAL+",
  "IDLE",
  "ID",
  "CHILDREN",
  "NAMESPACE",
  "AUTH=OAUTHBEARER",
];

function subset(rng: Rng, items: readonly string[]): string[] {
  return items.filter(() => rng.chance(0.6));
}

/** A folder name as IMAP may send it: atom, quoted string, literal or modified UTF-7. */
function imapFolder(rng: Rng): { text: string; literal?: string } {
  const plain = rng.pick(["INBOX", "Sent Items", "Gel&APY-schte Elemente", "&-", "a\\b", "&Jjo-"]);
  switch (rng.int(4)) {
    case 0:
      return { text: /^[\w&-]+$/.test(plain) ? plain : "INBOX" };
    case 1:
      return { text: `"${plain.replace(/["\\]/g, (c) => `\\${c}`)}"` };
    case 2: {
      const size = new TextEncoder().encode(plain).length + rng.pick([0, 0, 0, -1, 1, 5]);
      return { text: `{${Math.max(0, size)}}`, literal: plain };
    }
    default:
      return { text: rng.pick(["NIL", '""', "&AGEAYgBj-", "&ZeVnLIqe-"]) };
  }
}

function imapListLines(rng: Rng): string[] {
  const lines: string[] = [];
  const count = rng.small(5);
  for (let i = 0; i < count; i++) {
    const flags = rng.pick(["()", "(\\HasNoChildren)", "(\\Noselect \\HasChildren)", "(\\Sent)"]);
    const delimiter = rng.pick(['"/"', '"."', "NIL", '"\\\\"']);
    const folder = imapFolder(rng);
    lines.push(`* LIST ${flags} ${delimiter} ${folder.text}`);
    if (folder.literal !== undefined) lines.push(folder.literal);
  }
  return lines;
}

function imapUntagged(rng: Rng): string {
  return rng.pick([
    "* OK [ALERT] maintenance tonight",
    "* 3 EXISTS",
    "* CAPABILITY IMAP4rev1 AUTH=XOAUTH2",
    "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] still here",
    "* NO something odd",
    "* BAD whatever",
    "* BYE Connection is closed. 13",
    "* BYE Session invalidated - AccessTokenExpired",
    "* FLAGS (\\Seen)",
  ]);
}

/** A transcript for `runImap`, tags in the order the client uses them. */
export function imapTranscript(rng: Rng): string[] {
  const lines: string[] = [];
  let tag = 0;
  const next = () => `A${String(++tag).padStart(2, "0")}`;
  const sprinkle = () => {
    if (rng.chance(0.15)) lines.push(imapUntagged(rng));
  };
  const caps = subset(rng, IMAP_CAPS);
  const capsInGreeting = rng.chance(0.5);

  lines.push(
    rng.weighted([
      [20, capsInGreeting ? `* OK [CAPABILITY ${caps.join(" ")}] Dovecot ready.` : "* OK ready"],
      [1, "* BYE too many connections"],
      [1, "* PREAUTH already logged in"],
      [1, "+OK POP3 server ready"],
      [1, "220 smtp.example ESMTP"],
    ]),
  );
  if (!capsInGreeting) {
    const t = next();
    sprinkle();
    if (rng.chance(0.8)) lines.push(`* CAPABILITY ${caps.join(" ")}`);
    lines.push(
      rng.weighted([
        [6, `${t} OK CAPABILITY completed.`],
        [1, `${t} OK [CAPABILITY ${caps.join(" ")}] done`],
        [1, `${t} NO not now`],
        [1, `${t} BAD unknown command`],
      ]),
    );
  }

  const auth = next();
  const saslIr = caps.some((c) => c.toUpperCase() === "SASL-IR");
  sprinkle();
  if (!saslIr || rng.chance(0.1)) lines.push(rng.pick(["+", "+ ", "+ ready"]));
  const login = rng.weighted([[6, "ok"], [2, "no"], [1, "challenge"], [1, "bye"]]);
  if (login === "challenge") {
    lines.push(`+ ${challenge(rng)}`);
    if (rng.chance(0.2)) lines.push(`+ ${challenge(rng)}`);
    lines.push(`${auth} NO [AUTHENTICATIONFAILED] Authentication failed.`);
    return lines;
  }
  if (login === "bye") {
    lines.push("* BYE Session invalidated - AccessTokenExpired");
    return lines;
  }
  lines.push(
    login === "ok"
      ? rng.pick([
        `${auth} OK AUTHENTICATE completed.`,
        `${auth} OK [CAPABILITY IMAP4rev1] Logged in`,
      ])
      : rng.pick([`${auth} NO AUTHENTICATE failed.`, `${auth} BAD syntax`]),
  );
  if (login !== "ok") return lines;

  const list = next();
  sprinkle();
  lines.push(...imapListLines(rng));
  sprinkle();
  lines.push(
    rng.weighted([
      [8, `${list} OK LIST completed.`],
      [2, `${list} BAD User is authenticated but not connected.`],
      [1, `${list} NO LIST failed`],
      [1, `A99 OK wrong tag`],
    ]),
  );

  const logout = next();
  if (rng.chance(0.8)) lines.push("* BYE Microsoft Exchange Server IMAP4 server signing off.");
  if (rng.chance(0.8)) lines.push(`${logout} OK LOGOUT completed.`);
  return lines;
}

/** A transcript for `runPop3`. */
export function pop3Transcript(rng: Rng): string[] {
  const lines: string[] = [];
  lines.push(
    rng.weighted([
      [8, "+OK The Microsoft Exchange POP3 service is ready."],
      [1, "+OK"],
      [1, "-ERR busy"],
      [1, "* OK IMAP4 ready"],
    ]),
  );
  lines.push(rng.weighted([[8, rng.pick(["+", "+ "])], [1, "-ERR unknown command"], [1, "+OK"]]));
  const login = rng.weighted([[6, "ok"], [2, "err"], [2, "challenge"]]);
  if (login === "challenge") {
    lines.push(`+ ${challenge(rng)}`);
    lines.push(rng.pick(["-ERR [AUTH] Authentication failed.", "+OK strange", "+ again"]));
  } else {
    lines.push(
      login === "ok"
        ? "+OK User successfully authenticated."
        : "-ERR Authentication failure: unknown user name or bad password.",
    );
  }
  lines.push(
    rng.weighted([
      [6, `+OK ${rng.small(100)} ${rng.small(100000)}`],
      [1, "+OK 3 14523 extra words"],
      [1, `+OK ${"9".repeat(rng.range(15, 400))} 1`],
      [1, "-ERR mailbox locked"],
      [1, "+OK"],
      [1, "+OK -1 x"],
    ]),
  );
  if (rng.chance(0.8)) lines.push("+OK Microsoft Exchange Server POP3 server signing off.");
  return lines;
}

const SMTP_EHLO_KEYWORDS = [
  "SIZE 157286400",
  "PIPELINING",
  "8BITMIME",
  "STARTTLS",
  "AUTH LOGIN XOAUTH2",
  "AUTH=LOGIN XOAUTH2",
  "AUTH PLAIN",
  "ENHANCEDSTATUSCODES",
  "SMTPUTF8",
];

/** A multi-line reply: `code-text` lines, then `code text`. */
function multiline(code: number, texts: string[]): string[] {
  return texts.map((text, i) => `${code}${i === texts.length - 1 ? " " : "-"}${text}`);
}

function ehloReply(rng: Rng, afterTls: boolean): string[] {
  const keywords = subset(rng, SMTP_EHLO_KEYWORDS);
  if (afterTls && rng.chance(0.7)) keywords.push("AUTH LOGIN XOAUTH2");
  if (!afterTls && rng.chance(0.7)) keywords.push("STARTTLS");
  return rng.weighted([
    [9, multiline(250, ["smtp.example Hello [127.0.0.1]", ...keywords])],
    [1, ["502 5.5.2 Error: command not recognized"]],
    [1, ["421 4.3.2 Service not available"]],
  ]);
}

const SMTP_AUTH_FAILURES = [
  "535 5.7.3 Authentication unsuccessful [SN4PR0601CA0001.namprd06.prod.outlook.com]",
  "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
  "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.",
  "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
  "530 5.7.57 Client not authenticated to send mail",
  "535 5.7.8 Authentication failed.",
  "454 4.7.0 Temporary authentication failure",
  "421 4.7.0 closing",
];

/** A transcript for `runSmtp` over a plain (STARTTLS) or already secure connection. */
export function smtpTranscript(rng: Rng, secure: boolean, sendTestMessage: boolean): string[] {
  const lines: string[] = [];
  lines.push(
    ...rng.weighted([
      [8, ["220 smtp.office365.com Microsoft ESMTP MAIL Service ready"]],
      [1, multiline(220, ["smtp.example", "ESMTP ready"])],
      [1, ["421 4.3.2 Service not available"]],
      [1, ["554 5.7.1 go away"]],
      [1, ["* OK IMAP4 ready"]],
    ]),
  );
  lines.push(...ehloReply(rng, secure));
  if (!secure) {
    lines.push(
      rng.weighted([
        [8, "220 2.0.0 SMTP server ready"],
        [1, "454 4.7.0 TLS not available"],
        [1, "250 OK"],
      ]),
    );
    lines.push(...ehloReply(rng, true));
  }
  lines.push(
    rng.weighted([
      [8, rng.pick(["334 ", "334"])],
      [1, "504 5.7.4 Unrecognized authentication type"],
      [1, rng.pick(SMTP_AUTH_FAILURES)],
      [1, "250 OK"],
    ]),
  );
  const login = rng.weighted([[6, "ok"], [3, "fail"], [1, "challenge"]]);
  if (login === "challenge") {
    lines.push(`334 ${challenge(rng)}`);
    lines.push(rng.pick([...SMTP_AUTH_FAILURES, "235 2.7.0 odd"]));
  } else {
    lines.push(
      login === "ok" ? "235 2.7.0 Authentication successful" : rng.pick(SMTP_AUTH_FAILURES),
    );
  }
  if (sendTestMessage) {
    lines.push(
      rng.weighted([[8, "250 2.1.0 Sender OK"], [1, "530 5.7.57 Client not authenticated"]]),
    );
    lines.push(
      rng.weighted([
        [8, "250 2.1.5 Recipient OK"],
        [1, "251 forwarded"],
        [1, "550 5.7.60 SMTP; Client does not have permissions to send as this sender"],
      ]),
    );
    lines.push(rng.weighted([[8, "354 Start mail input; end with <CRLF>.<CRLF>"], [1, "250 OK"]]));
    lines.push(
      rng.weighted([
        [8, "250 2.0.0 OK <id@example> [Hostname=EXAMPLE]"],
        [1, "554 5.6.0 message rejected"],
      ]),
    );
  }
  if (rng.chance(0.8)) lines.push("221 2.0.0 Service closing transmission channel");
  return lines;
}

/** Protocol words for the mutator's dictionary. */
export const MAIL_TOKENS: readonly string[] = [
  "* ",
  "+ ",
  "+",
  "A01 ",
  "A02 ",
  "A03 ",
  "A04 ",
  "A05 ",
  "OK",
  "NO",
  "BAD",
  "BYE",
  "PREAUTH",
  "LIST",
  "CAPABILITY",
  "[CAPABILITY ",
  "AUTH=XOAUTH2",
  "SASL-IR",
  "{0}",
  "{1}",
  "{5}",
  "{3+}",
  "{1048577}",
  "{99999999999999999999}",
  "NIL",
  "()",
  "((",
  '"',
  "\\",
  "&",
  "&-",
  "&APY-",
  "&2D3eAQ-",
  "AccessTokenExpired",
  "User is authenticated but not connected",
  "+OK",
  "-ERR",
  "+OK 1 2",
  "220",
  "220-",
  "250",
  "250-",
  "334",
  "235",
  "421",
  "504",
  "530",
  "535",
  "5.7.57",
  "5.7.60",
  "5.7.139",
  "STARTTLS",
  "AUTH ",
  "AUTH=",
  "XOAUTH2",
  "SmtpClientAuthentication is disabled",
  "basic authentication is disabled",
];
