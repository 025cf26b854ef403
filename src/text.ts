/** Small text helpers shared by the CLI and the output layer. */

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/g;

/**
 * Shows control characters as `\xNN` instead of sending them to a terminal
 * raw: server lines and echoed user input can carry escape sequences.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/**
 * Characters a terminal shows as nothing or as something else: format
 * characters (zero-width space, BOM, direction marks), unusual spaces, dashes
 * and quotes that look like ASCII ones. Pasted from web pages, Word or Outlook.
 */
const LOOK_ALIKE =
  /[\p{Cf}\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u2010-\u2015\u2212\ufe58\ufe63\uff0d\u2018-\u201f\u00ab\u00bb\u2039\u203a]/gu;

/** Longest echo of a user's value in a message; beyond it the value is cut. */
export const MAX_SHOWN = 80;

/**
 * A value the user gave, for quoting in a one-line message: control
 * characters as `\xNN`, invisible and look-alike characters as `<U+200B>`,
 * and cut after `max` characters (saying how long it was).
 */
export function shown(value: string, max = MAX_SHOWN): string {
  const chars = [...value];
  const head = chars.length > max ? chars.slice(0, max).join("") : value;
  const visible = printable(head).replace(
    LOOK_ALIKE,
    (c) => `<${codePoint(c)}>`,
  );
  return chars.length > max ? `${visible}… (${chars.length} characters)` : visible;
}

/** The first invisible or look-alike character in `value` as `U+200B`, or null. */
export function lookAlike(value: string): string | null {
  const m = value.match(new RegExp(LOOK_ALIKE.source, "u"));
  return m ? codePoint(m[0]) : null;
}

/** `U+200B` for a character. */
function codePoint(c: string): string {
  return `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}
