/**
 * Modules a run loads only when it needs them, through a specifier Deno cannot see ahead.
 *
 * Why not a literal dynamic import: before the first line runs, `deno run` reads and checks
 * every module its static analysis finds, and `import()` of a literal path counts. A run that printed
 * a cached token walked the bridge, the mail sessions, the certificate readers and msal's glue
 * too (75 modules instead of 30: ~10 ms of a ~120 ms run, measured with `deno task bench`). A
 * specifier computed at run time is resolved when the import runs. Types are still checked:
 * callers name the module's type with `typeof import(...)`, a type-only reference that `deno run`
 * does not load.
 *
 * `deno compile` cannot see these modules either: scripts/compile.ts embeds every module listed
 * here (`--include`), and lazy_test.ts checks that each call names a listed module and the type of
 * that same module.
 */

/** Paths relative to src/. */
export const LAZY_MODULES = [
  "app/cached_token.ts",
  "app/failure.ts",
  "app/run.ts",
  "app/many.ts",
  "app/session.ts",
  "auth/certificate.ts",
  "auth/probe.ts",
  "auth/token.ts",
  "auth/user.ts",
  "bridge/run.ts",
  "bridge/user_credential.ts",
  "cli/help.ts",
  "output/console.ts",
  "platform/browser.ts",
] as const;

export type LazyModule = typeof LAZY_MODULES[number];

/** Loads `module` (a path relative to src/); `T` is `typeof import("<the same module>")`. */
export function lazy<T>(module: LazyModule): Promise<T> {
  return import(new URL(`./${module}`, import.meta.url).href) as Promise<T>;
}
