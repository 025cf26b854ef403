/**
 * Which language the program speaks. Apart from the texts (messages.ts) so that a run which
 * prints no text (a cached token) does not load them.
 */

export type Lang = "en" | "de";

/**
 * The language: -Language wins; then LC_ALL, LC_MESSAGES, LANG (POSIX order);
 * on Windows, where those are rarely set, the system locale Intl reports.
 */
export function pickLanguage(
  explicit: string | undefined,
  env: (name: string) => string | undefined,
  os: typeof Deno.build.os = Deno.build.os,
): Lang {
  if (explicit === "en" || explicit === "de") return explicit;
  for (const name of ["LC_ALL", "LC_MESSAGES", "LANG"]) {
    const value = env(name);
    if (value) return /^de([_.-]|$)/i.test(value) ? "de" : "en";
  }
  if (os === "windows") {
    return /^de\b/i.test(Intl.DateTimeFormat().resolvedOptions().locale) ? "de" : "en";
  }
  return "en";
}
