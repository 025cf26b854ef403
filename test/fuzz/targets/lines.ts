/**
 * Fuzz targets for the line layer and the small IMAP value parsers:
 * - `lines`: `LineBuffer` must frame any bytes, split into chunks any way, exactly as a simple
 *   reference does (only CRLF ends a line; over-long lines fail with `LineTooLongError`, which
 *   the TLS transport turns into a ConnectionError), and `Wire.quote` never shows the secret;
 * - `values`: `parseValues`, `decodeModifiedUtf7` and `describeXoauth2Challenge` take any
 *   server text and never throw.
 */

import { decodeModifiedUtf7, parseValues } from "../../../src/mail/imap.ts";
import {
  describeXoauth2Challenge,
  LineBuffer,
  LineTooLongError,
  Wire,
} from "../../../src/mail/lines.ts";
import type { LineTransport } from "../../../src/mail/transport.ts";
import {
  challenge,
  imapTranscript,
  MAIL_TOKENS,
  pop3Transcript,
  smtpTranscript,
} from "../grammar/mail.ts";
import {
  concat,
  fromBase64,
  mutateBytes,
  mutateString,
  randomString,
  toBase64,
} from "../mutate.ts";
import type { Rng } from "../rng.ts";
import {
  check,
  defineTarget,
  Finding,
  isRecord,
  isStringArray,
  neverThrows,
  RESULT,
} from "../target.ts";
import { SASL } from "./sessions.ts";

/** Bytes as base64 chunks, in the order they arrive, and the line limit. */
export interface LinesInput {
  chunks: string[];
  max: number;
}

const LIMITS = [0, 1, 7, 64, 1024, 65536];
const CRLF = new Uint8Array([13, 10]);

/** What `LineBuffer` must produce: the lines before the first over-long one, and whether one was. */
function reference(bytes: Uint8Array, max: number): { lines: string[]; tooLong: boolean } {
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  const lines: string[] = [];
  let start = 0;
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] !== 13 || bytes[i + 1] !== 10) continue;
    if (i - start > max) return { lines, tooLong: true };
    lines.push(decoder.decode(bytes.subarray(start, i)));
    start = i + 2;
    i++;
  }
  // The unfinished rest; a CR at the very end may still become CRLF, so it does not count.
  const rest = bytes.length - start - (bytes[bytes.length - 1] === 13 ? 1 : 0);
  return { lines, tooLong: rest > max };
}

function frame(chunks: Uint8Array[], max: number): { lines: string[]; tooLong: boolean } {
  const buffer = new LineBuffer(max);
  const lines: string[] = [];
  try {
    for (const chunk of chunks) {
      buffer.push(chunk);
      for (let line = buffer.shift(); line !== null; line = buffer.shift()) lines.push(line);
    }
  } catch (error) {
    if (error instanceof LineTooLongError) return { lines, tooLong: true };
    throw new Finding(`LineBuffer threw ${error}`, { cause: error });
  }
  return { lines, tooLong: false };
}

function protocolBytes(rng: Rng): Uint8Array {
  const lines = rng.pick([
    imapTranscript,
    pop3Transcript,
    (r: Rng) => smtpTranscript(r, false, true),
  ])(
    rng,
  );
  const separator = rng.weighted([[6, "\r\n"], [1, "\n"], [1, "\r"], [1, "\n\r"]]);
  const text = lines.join(separator) + (rng.chance(0.7) ? separator : "");
  return new TextEncoder().encode(text);
}

/** Splits `bytes` at random places (empty chunks included). */
function split(rng: Rng, bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = rng.chance(0.3) ? rng.small(4) : rng.small(bytes.length - at + 1);
    chunks.push(bytes.slice(at, at + size));
    at += size;
  }
  return chunks;
}

export const linesTarget = defineTarget<LinesInput, undefined>({
  name: "lines",
  ciInputs: 12000,
  accepts: (value): value is LinesInput =>
    isRecord(value) && isStringArray(value.chunks) && typeof value.max === "number",
  generate(rng, _ctx, corpus) {
    let bytes = rng.weighted<() => Uint8Array>([
      [2, () => rng.bytes(rng.small(300))],
      [3, () => protocolBytes(rng)],
      [4, () => mutateBytes(rng, protocolBytes(rng))],
      [
        1,
        () =>
          corpus.length > 0
            ? mutateBytes(rng, concat(...rng.pick(corpus).chunks.map(fromBase64)))
            : protocolBytes(rng),
      ],
    ])();
    if (rng.chance(0.03)) bytes = concat(bytes, new Uint8Array(rng.small(70000)).fill(0x41), CRLF);
    return { chunks: split(rng, bytes).map(toBase64), max: rng.pick(LIMITS) };
  },
  run(input) {
    const chunks = input.chunks.map(fromBase64);
    const expected = reference(concat(...chunks), input.max);
    const actual = neverThrows("LineBuffer", () => frame(chunks, input.max));
    check(
      actual.tooLong === expected.tooLong,
      `LineBuffer ${actual.tooLong ? "reported" : "missed"} an over-long line`,
    );
    check(
      actual.lines.length === expected.lines.length &&
        actual.lines.every((line, i) => line === expected.lines[i]),
      `LineBuffer framed ${JSON.stringify(actual.lines).slice(0, 300)}, expected ${
        JSON.stringify(expected.lines).slice(0, 300)
      }`,
    );
    // How sessions quote server lines in errors: never the secret, never more than 500 chars.
    const wire = new Wire({} as LineTransport, { sasl: SASL });
    for (const line of actual.lines.slice(0, 3)) {
      const quoted = neverThrows("Wire.quote()", () => wire.quote(line + SASL + line));
      check(!quoted.includes(SASL), "Wire.quote() kept the SASL string");
      check(quoted.length <= 503, `Wire.quote() returned ${quoted.length} chars`);
    }
    return Promise.resolve(RESULT);
  },
});

/** Server text for the IMAP value parsers, with literals for `{n}` placeholders. */
export interface ValuesInput {
  text: string;
  literals: string[];
}

const VALUE_TOKENS = [...MAIL_TOKENS, "NIL", "(", ")", '"', "\\", "{", "}", "&", "-", ","];

function listText(rng: Rng): string {
  const line = imapTranscript(rng).find((l) => l.startsWith("* LIST ")) ??
    '* LIST (\\HasNoChildren) "/" INBOX';
  return line.slice(7);
}

export const valuesTarget = defineTarget<ValuesInput, undefined>({
  name: "values",
  ciInputs: 12000,
  accepts: (value): value is ValuesInput =>
    isRecord(value) && typeof value.text === "string" && isStringArray(value.literals),
  generate(rng, _ctx, corpus) {
    const base = rng.weighted<() => string>([
      [2, () => randomString(rng, 100)],
      [2, () => listText(rng)],
      [1, () => challenge(rng)],
      [1, () => rng.pick(["Gel&APY-schte", "&ZeVnLIqe-", "&2D3eAA-", "&-", "&AGE-&AGI-"])],
      [1, () => (corpus.length > 0 ? rng.pick(corpus).text : listText(rng))],
    ])();
    const text = rng.chance(0.7) ? mutateString(rng, base, VALUE_TOKENS, 64 * 1024) : base;
    const literals = Array.from({ length: rng.small(3) }, () => randomString(rng, 20));
    return { text, literals };
  },
  run(input) {
    const values = neverThrows("parseValues()", () => parseValues(input.text, input.literals));
    check(values === undefined || Array.isArray(values), "parseValues() returned a non-array");
    const decoded = neverThrows("decodeModifiedUtf7()", () => decodeModifiedUtf7(input.text));
    check(typeof decoded === "string", "decodeModifiedUtf7() returned a non-string");
    const described = neverThrows(
      "describeXoauth2Challenge()",
      () => describeXoauth2Challenge(input.text),
    );
    check(described === undefined || typeof described === "string", "odd challenge description");
    return Promise.resolve(RESULT);
  },
});
