import assert from "node:assert/strict";
import type { SecretOptions } from "../cli/options.ts";
import { UsageError } from "../errors.ts";
import { readSecret } from "./secret.ts";

const SECRET = "Qx8~vR2.pL9_kT4-mN7wZ3yB6cD1fH5jS0aE";

function given(value: string): SecretOptions {
  return { secret: { from: "value", value }, timeoutSeconds: 5 } as unknown as SecretOptions;
}

function piped(text: string) {
  const options = { secret: { from: "stdin" }, timeoutSeconds: 5 } as unknown as SecretOptions;
  const env = { stdin: () => new Blob([text]).stream() };
  return { options, env };
}

const noStdin = { stdin: () => new Blob([]).stream() };

Deno.test("readSecret() removes whitespace pasted around the secret and says so", async () => {
  assert.deepEqual(await readSecret(given(SECRET), noStdin), { secret: SECRET, trimmed: false });
  assert.deepEqual(await readSecret(given(` ${SECRET}\t`), noStdin), {
    secret: SECRET,
    trimmed: true,
  });
  const { options, env } = piped(`${SECRET} \r\n`);
  assert.deepEqual(await readSecret(options, env), { secret: SECRET, trimmed: true });
  const clean = piped(`${SECRET}\n`);
  assert.deepEqual(await readSecret(clean.options, clean.env), { secret: SECRET, trimmed: false });
});

Deno.test("readSecret() refuses a secret in quotes, ASCII or typographic, without echoing it", async () => {
  for (
    const [value, shown] of [
      [`"${SECRET}"`, '" ... "'],
      [`'${SECRET}'`, "' ... '"],
      [` \u201c${SECRET}\u201d `, "U+201C ... U+201D"],
      [`\u201e${SECRET}\u201c`, "U+201E ... U+201C"],
      [`\u00ab${SECRET}\u00bb`, "U+00AB ... U+00BB"],
    ]
  ) {
    await assert.rejects(readSecret(given(value), noStdin), (e) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.code, "SECRET_QUOTED");
      assert.equal(e.exitCode, 2);
      assert.ok(e.message.startsWith("-clientsecret: the value is wrapped in quotes"), e.message);
      assert.ok(e.message.includes(shown), e.message);
      assert.ok(!e.message.includes(SECRET));
      return true;
    });
  }
  // A quote inside is not wrapping (the test bed's odd secret has some).
  const inside = `-S p "dq" 'sq' x\\`;
  assert.equal((await readSecret(given(inside), noStdin)).secret, inside);
});

Deno.test("readSecret() refuses a value that is only whitespace", async () => {
  await assert.rejects(
    readSecret(given("  \t "), noStdin),
    (e) =>
      e instanceof UsageError && e.code === "EMPTY_VALUE" && e.message.startsWith("-clientsecret:"),
  );
});
