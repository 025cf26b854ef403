/**
 * Fuzz targets for token and SASL handling:
 * - `claims`: `decodeClaims` takes any string and returns null or a plain object;
 *   `summarizeClaims` and `checkClaims` take whatever that object holds and never throw;
 * - `xoauth2`: `mailboxProblem` and `parseXoauth2` never throw, `buildXoauth2` returns a string
 *   that decodes back to its user and token or refuses with a typed error.
 */

import { decodeClaims, summarizeClaims } from "../../../src/diagnose/claims.ts";
import { checkClaims, type Protocol } from "../../../src/diagnose/claims_check.ts";
import { TokenError, UsageError } from "../../../src/errors.ts";
import { buildXoauth2, mailboxProblem, parseXoauth2 } from "../../../src/sasl/xoauth2.ts";
import { jwtLike } from "../grammar/jwt.ts";
import { mutateString, randomString, toBase64 } from "../mutate.ts";
import type { Rng } from "../rng.ts";
import {
  check,
  defineTarget,
  expectTyped,
  isRecord,
  neverThrows,
  type Outcome,
  RESULT,
} from "../target.ts";

export interface ClaimsInput {
  token: string;
  protocol: Protocol;
  kind: "app" | "user";
  tenantId: string;
  requestedDefault: boolean;
}

const PROTOCOLS: Protocol[] = ["IMAP", "POP3", "SMTP"];
const FINDINGS = [
  "WRONG_AUDIENCE",
  "WRONG_TENANT",
  "ROLE_MISSING",
  "SCOPE_MISSING",
  "TOKEN_EXPIRED",
];
/** Fixed "now" so that expiry findings are reproducible. */
const NOW = 1_750_000_000;

const TOKEN_TOKENS = [".", "..", "=", "-", "_", "+", "/", "eyJ", " ", "\u00ff", "\ud800"];

export const claimsTarget = defineTarget<ClaimsInput, undefined>({
  name: "claims",
  ciInputs: 12000,
  accepts: (value): value is ClaimsInput =>
    isRecord(value) && typeof value.token === "string" && typeof value.tenantId === "string" &&
    PROTOCOLS.includes(value.protocol as Protocol) && ["app", "user"].includes(String(value.kind)),
  generate(rng, _ctx, corpus) {
    const token = rng.weighted<() => string>([
      [1, () => randomString(rng, 200)],
      [6, () => jwtLike(rng)],
      [2, () => mutateString(rng, jwtLike(rng), TOKEN_TOKENS, 16384)],
      [
        1,
        () =>
          corpus.length > 0
            ? mutateString(rng, rng.pick(corpus).token, TOKEN_TOKENS)
            : jwtLike(rng),
      ],
    ])();
    return {
      token,
      protocol: rng.pick(PROTOCOLS),
      kind: rng.chance(0.6) ? "app" : "user",
      tenantId: rng.pick(["11111111-2222-3333-4444-555555555555", "contoso.onmicrosoft.com", ""]),
      requestedDefault: rng.chance(0.5),
    };
  },
  run(input) {
    const claims = neverThrows("decodeClaims()", () => decodeClaims(input.token));
    check(claims === null || isRecord(claims), "decodeClaims() returned a non-object");
    if (claims) neverThrows("summarizeClaims()", () => JSON.stringify(summarizeClaims(claims)));
    const result = neverThrows("checkClaims()", () => checkClaims(claims, { ...input, now: NOW }));
    check(Array.isArray(result.findings), "checkClaims() returned no findings list");
    for (const finding of result.findings) {
      check(FINDINGS.includes(finding.code), `unknown finding ${finding.code}`);
      check(
        finding.detail === undefined || typeof finding.detail === "string",
        `finding detail is ${typeof finding.detail}`,
      );
    }
    check(
      result.permissionOk === undefined || typeof result.permissionOk === "boolean",
      "permissionOk is not a boolean",
    );
    return Promise.resolve(RESULT);
  },
});

export interface Xoauth2Input {
  user: string;
  token: string;
  /** A candidate XOAUTH2 string for `parseXoauth2`. */
  encoded: string;
}

const USER_TOKENS = [
  "@",
  "\x01",
  " ",
  "\\",
  "\r\n",
  "\x00",
  "\x7f",
  "ü",
  "\ud800",
  "\u00a0",
  "user=",
];

function address(rng: Rng): string {
  const base = rng.pick(["box@contoso.com", "jürgen@contoso.de", "a@b", "x@y.z"]);
  return rng.chance(0.5) ? base : mutateString(rng, base, USER_TOKENS, 300);
}

export const xoauth2Target = defineTarget<Xoauth2Input, undefined>({
  name: "xoauth2",
  ciInputs: 12000,
  minCodes: 2,
  accepts: (value): value is Xoauth2Input =>
    isRecord(value) && ["user", "token", "encoded"].every((k) => typeof value[k] === "string"),
  generate(rng) {
    const user = rng.chance(0.9) ? address(rng) : randomString(rng, 40);
    const token = rng.weighted<() => string>([
      [5, () => jwtLike(rng)],
      [2, () => mutateString(rng, jwtLike(rng), USER_TOKENS)],
      [1, () => randomString(rng, 60)],
      [1, () => rng.pick(["", " ", "a b", "\t"])],
    ])();
    const text = `user=box@contoso.com\x01auth=Bearer ${jwtLike(rng)}\x01\x01`;
    const valid = toBase64(new TextEncoder().encode(text));
    const encoded = rng.weighted<() => string>([
      [3, () => mutateString(rng, valid, ["=", "A", "\x01", "+", "/"])],
      [1, () => valid],
      [1, () => toBase64(rng.bytes(rng.small(80)))],
      [1, () => randomString(rng, 80)],
    ])();
    return { user, token, encoded };
  },
  run(input) {
    const problem = neverThrows("mailboxProblem()", () => mailboxProblem(input.user));
    check(
      problem === null || typeof problem === "string",
      "mailboxProblem() returned a non-string",
    );
    const parsed = neverThrows("parseXoauth2()", () => parseXoauth2(input.encoded));
    check(
      parsed === null || (typeof parsed.user === "string" && typeof parsed.token === "string"),
      "parseXoauth2() returned an odd value",
    );
    let outcome: Outcome;
    try {
      const sasl = buildXoauth2(input.user, input.token);
      check(problem === null, `built a string for a mailbox that ${problem}`);
      const back = parseXoauth2(sasl);
      check(
        back?.user === input.user && back.token === input.token,
        `the XOAUTH2 string decodes to ${JSON.stringify(back)}`,
      );
      outcome = RESULT;
    } catch (error) {
      outcome = expectTyped(error, [UsageError, TokenError]);
    }
    return Promise.resolve(outcome);
  },
});
