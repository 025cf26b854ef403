/**
 * What the IMAP and POP3 session unit tests share: a fake token with its
 * XOAUTH2 string, Dovecot's failure challenge, and running a session against
 * a `ScriptedTransport` that must succeed (`runScript`) or fail (`failScript`).
 */

import assert from "node:assert/strict";
import { AuthError, MailboxError, ToolError } from "../../src/errors.ts";
import type { LineTransport } from "../../src/mail/transport.ts";
import type { SessionOptions } from "../../src/mail/types.ts";
import { ScriptedTransport, type ScriptStep } from "./scripted_transport.ts";

export const TOKEN =
  "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2lnbmF0dXJl";
export const SASL = btoa(`user=shared@contoso.com\x01auth=Bearer ${TOKEN}\x01\x01`);

/** What Dovecot 2.3 sends after failed XOAUTH2 credentials (base64 JSON). */
export const DOVECOT_CHALLENGE = "+ " +
  btoa('{"status":"401","schemes":"bearer","scope":"https://outlook.office365.com/.default"}');

/** A session entry point such as `runImap` or `runPop3`. */
export type Session<R> = (transport: LineTransport, options: SessionOptions) => Promise<R>;

/** Runs `session` with `SASL` over `script` and checks that the script was followed. */
export async function runScript<R>(
  session: Session<R>,
  script: ScriptStep[],
  extra: Partial<SessionOptions> = {},
): Promise<{ result: R; transport: ScriptedTransport }> {
  const transport = new ScriptedTransport(script);
  const result = await session(transport, { sasl: SASL, ...extra });
  transport.assertDone();
  return { result, transport };
}

/** IMAP's LOGOUT or POP3's and SMTP's QUIT. */
export const GOODBYE = /^(\S+ LOGOUT|QUIT)$/;

/**
 * A server that refused the login or the mailbox but still talks gets a goodbye (so it frees
 * the session); after anything else (a broken connection, a protocol violation) it does not.
 */
export function assertGoodbye(error: unknown, transport: ScriptedTransport): void {
  const polite = error instanceof AuthError || error instanceof MailboxError;
  assert.equal(transport.goodbyes.length, polite ? 1 : 0, `goodbye after ${error}`);
}

/**
 * Runs `session` over a script that must fail; returns the error after checking the script was
 * followed and that the error is a `ToolError` with a code and without the SASL string or token.
 */
export async function failScript(
  session: Session<unknown>,
  script: ScriptStep[],
): Promise<ToolError> {
  const transport = new ScriptedTransport(script, { goodbye: GOODBYE });
  const error = await session(transport, { sasl: SASL }).then(
    () => assert.fail(`${session.name}() should have failed`),
    (e: unknown) => e,
  );
  transport.assertDone();
  assert.ok(error instanceof ToolError, `not a ToolError: ${error}`);
  assertGoodbye(error, transport);
  assert.ok(!error.message.includes(SASL), "error message contains the SASL string");
  assert.ok(!error.message.includes(TOKEN), "error message contains the token");
  assert.ok(error.code, "error without code");
  return error;
}
