/**
 * Fuzz targets for the mail sessions (IMAP, POP3, SMTP): server replies, random, grammar-made
 * or mutated, played through `FuzzTransport`. Each session must end with a result or a typed
 * error with a code, never quote the SASL string, keep the transport rules, and (SMTP) never
 * send the token before TLS is up.
 */

import { AuthError, ConnectionError, MailboxError, UsageError } from "../../../src/errors.ts";
import { runImap } from "../../../src/mail/imap.ts";
import { runPop3 } from "../../../src/mail/pop3.ts";
import { runSmtp } from "../../../src/mail/smtp.ts";
import type { SessionOptions } from "../../../src/mail/types.ts";
import { type FuzzEnd, FuzzTransport } from "../fuzz_transport.ts";
import { imapTranscript, MAIL_TOKENS, pop3Transcript, smtpTranscript } from "../grammar/mail.ts";
import { mutateList, mutateString, randomString } from "../mutate.ts";
import type { Rng } from "../rng.ts";
import {
  check,
  defineTarget,
  type ErrorClass,
  expectTyped,
  isRecord,
  isStringArray,
  type Outcome,
  RESULT,
} from "../target.ts";

/** Server lines; then the connection ends as `end` says. SMTP also fuzzes its options. */
export interface SessionInput {
  lines: string[];
  end?: FuzzEnd;
  /** SMTP: the connection is TLS from the start (no STARTTLS). */
  secure?: boolean;
  /** SMTP: the STARTTLS handshake fails. */
  startTlsFails?: boolean;
  /** SMTP: the mailbox logging in (default a valid one). */
  mailbox?: string;
  /** SMTP: send the test message to this address. */
  sendTo?: string;
  /** SMTP: the EHLO name. */
  clientName?: string;
}

const TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2lnbmF0dXJl";
const MAILBOX = "shared@contoso.com";
export const SASL = btoa(`user=${MAILBOX}\x01auth=Bearer ${TOKEN}\x01\x01`);

/** The SASL string is in the dictionary: a server that echoes it tests the redaction. */
const TOKENS = [...MAIL_TOKENS, SASL, SASL.slice(0, 20)];

/** The transport's default line limit: longer lines never reach a session. */
const MAX_LINE = 64 * 1024;

const SESSION_ERRORS: readonly ErrorClass[] = [ConnectionError, AuthError, MailboxError];

function accepts(value: unknown): value is SessionInput {
  if (!isRecord(value) || !isStringArray(value.lines)) return false;
  return ["mailbox", "sendTo", "clientName"].every((key) =>
    value[key] === undefined || typeof value[key] === "string"
  );
}

function randomLine(rng: Rng): string {
  if (rng.chance(0.5)) return randomString(rng, 200);
  let line = "";
  for (let i = rng.small(4); i >= 0; i--) line += rng.pick(TOKENS);
  return line + randomString(rng, 20);
}

/** Random lines, a grammar transcript, or a mutation of one (or of a corpus entry). */
function generateLines(rng: Rng, grammar: () => string[], corpus: readonly SessionInput[]) {
  const mode = rng.weighted([[1, "random"], [3, "grammar"], [5, "mutated"], [1, "corpus"]]);
  if (mode === "random") return Array.from({ length: rng.small(20) }, () => randomLine(rng));
  if (mode === "grammar") return grammar();
  const base = mode === "corpus" && corpus.length > 0 ? rng.pick(corpus).lines : grammar();
  return mutateList(
    rng,
    base,
    () => randomLine(rng),
    (line) => mutateString(rng, line, TOKENS, MAX_LINE),
  );
}

function end(rng: Rng): FuzzEnd | undefined {
  return rng.chance(0.2) ? "timeout" : undefined;
}

/** The checks every session shares; `checkResult` adds the protocol's own. */
async function runSession(
  transport: FuzzTransport,
  session: () => Promise<unknown>,
  allowed: readonly ErrorClass[],
  checkResult: (result: unknown) => void,
): Promise<Outcome> {
  let outcome: Outcome;
  try {
    checkResult(await session());
    outcome = RESULT;
  } catch (error) {
    outcome = expectTyped(error, allowed);
    const { message, hint } = error as Error & { hint?: string };
    check(!message.includes(SASL), "the error message contains the SASL string");
    check(!hint?.includes(SASL), "the error hint contains the SASL string");
  }
  check(transport.violations.length === 0, `transport rule broken: ${transport.violations[0]}`);
  return outcome;
}

function options(): SessionOptions {
  // The callbacks run on every line, as in the tool; they must not change the outcome.
  return { sasl: SASL, onLine: () => {}, onProgress: () => {} };
}

export const imapTarget = defineTarget<SessionInput, undefined>({
  name: "imap",
  ciInputs: 22000,
  minCodes: 7,
  accepts,
  generate: (rng, _ctx, corpus) => ({
    lines: generateLines(rng, () => imapTranscript(rng), corpus),
    end: end(rng),
  }),
  run(input) {
    const transport = new FuzzTransport(input.lines, { end: input.end, secure: true });
    return runSession(transport, () => runImap(transport, options()), SESSION_ERRORS, (
      result,
    ) => {
      check(isRecord(result), "result is not an object");
      check(typeof result.greeting === "string", "greeting is not a string");
      check(isStringArray(result.capabilities), "capabilities are not strings");
      check(isStringArray(result.folders), "folders are not strings");
      // (A server may answer OK to AUTHENTICATE before asking for the credentials; that is
      // the server's call, so only LIST is required.)
      check(transport.sent.some((l) => / LIST /.test(l)), "success without LIST");
    });
  },
});

export const pop3Target = defineTarget<SessionInput, undefined>({
  name: "pop3",
  ciInputs: 14000,
  minCodes: 5,
  accepts,
  generate: (rng, _ctx, corpus) => ({
    lines: generateLines(rng, () => pop3Transcript(rng), corpus),
    end: end(rng),
  }),
  run(input) {
    const transport = new FuzzTransport(input.lines, { end: input.end, secure: true });
    return runSession(transport, () => runPop3(transport, options()), SESSION_ERRORS, (
      result,
    ) => {
      check(isRecord(result), "result is not an object");
      check(typeof result.greeting === "string", "greeting is not a string");
      for (const key of ["count", "octets"]) {
        const n = result[key];
        check(typeof n === "number" && n >= 0 && !Number.isNaN(n), `${key} is ${n}`);
      }
      check(transport.sent.includes(SASL), "success without sending the login");
      check(transport.sent.includes("STAT"), "success without STAT");
    });
  },
});

const VALID_RECIPIENT = "someone@fabrikam.com";

export const smtpTarget = defineTarget<SessionInput, undefined>({
  name: "smtp",
  ciInputs: 18000,
  minCodes: 12,
  accepts,
  generate(rng, _ctx, corpus) {
    const secure = rng.chance(0.25);
    const sendTo = rng.chance(0.4) ? VALID_RECIPIENT : undefined;
    const input: SessionInput = {
      lines: generateLines(rng, () => smtpTranscript(rng, secure, sendTo !== undefined), corpus),
      end: end(rng),
      secure,
      startTlsFails: rng.chance(0.05),
      sendTo,
    };
    // Now and then odd options: they must be refused before anything is sent.
    if (rng.chance(0.03)) input.mailbox = mutateString(rng, MAILBOX, ["<", ">", "\\", " "]);
    if (rng.chance(0.03)) input.sendTo = mutateString(rng, VALID_RECIPIENT, ["<", ">", "\r\n"]);
    if (rng.chance(0.03)) input.clientName = mutateString(rng, "client.example", ["[", "]", "_"]);
    return input;
  },
  run(input) {
    const transport = new FuzzTransport(input.lines, {
      end: input.end,
      secure: input.secure,
      startTlsFails: input.startTlsFails,
    });
    const optionsFuzzed = input.mailbox !== undefined || input.clientName !== undefined ||
      (input.sendTo !== undefined && input.sendTo !== VALID_RECIPIENT);
    const session = () =>
      runSmtp(transport, {
        ...options(),
        mailbox: input.mailbox ?? MAILBOX,
        clientName: input.clientName ?? "client.example",
        tls: { hostname: "smtp.example" },
        sendTestMessageTo: input.sendTo,
      });
    const allowed = optionsFuzzed ? [...SESSION_ERRORS, UsageError] : SESSION_ERRORS;
    return runSession(transport, session, allowed, (result) => {
      check(isRecord(result), "result is not an object");
      check(result.authenticated === true, "result is not authenticated");
      check(typeof result.greeting === "string", "greeting is not a string");
      check(isStringArray(result.capabilities), "capabilities are not strings");
      check(transport.sent.includes(SASL), "success without sending the login");
      if (input.sendTo !== undefined) check(typeof result.queued === "string", "no queue line");
    }).then((outcome) => {
      // The one rule SMTP exists for: the token never travels before TLS.
      check(!transport.sentInClear.includes(SASL), "sent the SASL string before TLS");
      check(
        !transport.sentInClear.some((l) => /^AUTH /i.test(l)),
        "started AUTH before TLS",
      );
      if (outcome.kind === "rejection" && outcome.code === "SMTP_BAD_ADDRESS") {
        check(transport.sent.length === 0, "refused its options after sending");
      }
      return outcome;
    });
  },
});
