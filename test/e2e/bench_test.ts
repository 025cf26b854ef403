import assert from "node:assert/strict";

Deno.test("deno task bench runs and reports the cached-token ratio (a)/(b)", async () => {
  const root = new URL("../../", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "bench"],
    cwd: root,
    env: { BENCH_RUNS: "1", BENCH_MAILBOXES: "5", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
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
});
