/**
 * `deno task compile [target...]`: builds single binaries into dist/.
 * Needs Deno's `denort` runtime for each target: deno downloads it from its
 * release host, or takes it from DENORT_BIN (one target) or a pre-filled
 * $DENO_DIR/dl cache. On machines without access to that host the build
 * fails with deno's own message; nothing else in the project depends on it.
 */
const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

const requested = Deno.args.length > 0 ? Deno.args : TARGETS;
const root = new URL("..", import.meta.url).pathname;
await Deno.mkdir(`${root}dist`, { recursive: true });
let failed = 0;
for (const target of requested) {
  if (!TARGETS.includes(target)) {
    console.error(`unknown target ${target}; known: ${TARGETS.join(", ")}`);
    Deno.exit(2);
  }
  const exe = target.includes("windows") ? ".exe" : "";
  const output = `${root}dist/Get-IMAPAccessToken-${target}${exe}`;
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "--allow-all",
      "--no-prompt",
      "--target",
      target,
      "--output",
      output,
      `${root}src/main.ts`,
    ],
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  console.error(code === 0 ? `built ${output}` : `FAILED ${target} (exit ${code})`);
  if (code !== 0) failed++;
}
Deno.exit(failed === 0 ? 0 : 1);
