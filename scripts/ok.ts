/**
 * `deno task ok [deno test arguments]`: what must pass before a commit. The format check, the
 * linter and the type check (`deno task check`), the PowerShell script's helper built
 * (`deno task shim`, when the .NET SDK is there), then the tests with the lockfile frozen.
 * Every step runs even when an earlier one fails, so that one run shows everything. Arguments
 * go to `deno test`: files or folders (default: all tests), `--filter`, ...
 *
 * Exit status: 0 when everything passed; otherwise 1 is added when the tests failed and 2 when
 * the format, lint or type check failed (scripts/test.sh counts the latter as one failure).
 */

import { buildShim, haveDotnet } from "./build_shim.ts";

const TESTS_FAILED = 1;
const CHECKS_FAILED = 2;

const CHECKS: [string, string[]][] = [
  ["fmt", ["fmt", "--check"]],
  ["lint", ["task", "lint"]],
  ["check", ["task", "check"]],
];

/** Runs `deno <args>` with this terminal; true when it exits 0. */
async function deno(args: string[]): Promise<boolean> {
  const child = new Deno.Command(Deno.execPath(), { args }).spawn();
  return (await child.status).success;
}

const failed: string[] = [];
for (const [name, args] of CHECKS) {
  if (!await deno(args)) failed.push(name);
}
// The PowerShell script's compiled helper, which its tests run (they are skipped without pwsh,
// except in CI, where scripts/test.sh installs the .NET SDK's PowerShell).
if (await haveDotnet()) {
  try {
    await buildShim();
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    failed.push("shim");
  }
} else if (Deno.env.get("CI") === "true") {
  console.error("ok: dotnet not found: cannot build the PowerShell script's helper");
  failed.push("shim");
}
if (failed.length > 0) console.error(`ok: ${failed.join(", ")} failed; running the tests anyway`);
const tests = await deno(["test", "--allow-all", "--frozen", "--parallel", ...Deno.args]);
if (failed.length > 0) console.error(`ok: ${failed.join(", ")} failed`);
Deno.exit((tests ? 0 : TESTS_FAILED) + (failed.length > 0 ? CHECKS_FAILED : 0));
