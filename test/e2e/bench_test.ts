import assert from "node:assert/strict";

/** Runs `deno task bench` with `env` (small figures); asserts exit 0; returns its stdout. */
async function runBench(env: Record<string, string>): Promise<string> {
  const root = new URL("../../", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "bench"],
    cwd: root,
    env: { BENCH_RUNS: "1", BENCH_BRIDGE_BYTES: "1000000", ...env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
  return text;
}

Deno.test("deno task bench runs and reports the cached-token ratio (a)/(b)", async () => {
  const text = await runBench({ BENCH_MAILBOXES: "5", BENCH_BRIDGE_SESSIONS: "5" });
  for (
    const label of [
      "(a) -OutputFormat Token, cached token",
      "(b) empty deno run",
      "(c) fresh token + IMAP login",
    ]
  ) {
    assert.ok(text.includes(label), `bench prints ${label}`);
  }
  assert.match(text, /^\(a\)\/\(b\) = \d+\.\d\d \(target <= 1\.5\)$/m);
  assert.match(text, /^separate \/ one call = \d+\.\d \(target >= 10\)$/m);
  // pwsh is there in CI (scripts/test.sh installs it); elsewhere the section says it skipped.
  if (!text.includes("shim overhead: skipped (pwsh not found)")) {
    assert.match(text, /^shim overhead = -?\d+ ms \(target <= 150\); floor \(param\(\) block\)/m);
  }
});

Deno.test("deno task bench's bridge section runs and reports its three figures (BENCH_ONLY=bridge)", async () => {
  const text = await runBench({ BENCH_ONLY: "bridge", BENCH_BRIDGE_SESSIONS: "5" });
  if (text.includes("bridge: skipped (Dovecot not installed)")) return;
  assert.match(text, /^RETR 1\.0 MB through the bridge +\d+ ms$/m);
  assert.match(text, /^bridge \/ direct = \d+\.\d\d \(target <= 1\.2\)$/m);
  assert.match(text, /^added login latency = -?\d+\.\d ms \(target <= 10\); .*scrypt \d+\.\d ms/m);
  assert.match(
    text,
    /^bridge RSS idle \d+\.\d MiB, with 5 idle logged-in IMAP sessions \d+\.\d MiB: -?\d+ KiB per session$/m,
  );
  assert.doesNotMatch(text, /^\(a\)/m, "only the bridge's section");
});
