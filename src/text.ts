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
