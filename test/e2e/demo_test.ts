import assert from "node:assert/strict";

Deno.test("deno task demo exits 0 and shows an IMAP and a POP3 login", async () => {
  const root = new URL("../../", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "demo"],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /\* OK The Microsoft Exchange IMAP4 service is ready/);
  assert.match(
    text,
    /OK: IMAP login to 127\.0\.0\.1:\d+ as box@contoso\.com works \(\d+ folders\)/,
  );
  assert.match(text, /\+OK User successfully authenticated\./);
  assert.match(text, /OK: POP3 login to 127\.0\.0\.1:\d+ as box@contoso\.com works \(3 messages/);
  assert.match(text, /Demo OK/);
  assert.ok(!text.includes("Qx8~vR2.pL9_kT4-mN7wZ3yB6cD1fH5jS0aE"), "demo never prints the secret");
});
