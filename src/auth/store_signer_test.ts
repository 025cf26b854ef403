import assert from "node:assert/strict";
import { findPwsh } from "../../test/bed/dotnet_store.ts";
import { sevenOnly } from "../../test/bed/ps51.ts";
import { UsageError } from "../errors.ts";
import {
  encodeCommand,
  findPowerShell,
  lastErrorLine,
  POWERSHELL_ENV,
  signerScript,
  storesFor,
} from "./store_signer.ts";

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("findPowerShell() takes Windows PowerShell by its absolute path under %SystemRoot%", () => {
  const files = new Set(["C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"]);
  const isFile = (p: string) => files.has(p);
  assert.equal(
    findPowerShell("windows", envOf({ SystemRoot: "C:\\Windows", PATH: "C:\\evil" }), isFile),
    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
  );
  assert.equal(
    findPowerShell("windows", envOf({ windir: "C:\\Windows" }), isFile),
    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
  );
  assert.equal(findPowerShell("windows", envOf({ SystemRoot: "D:\\Win" }), isFile), undefined);
  assert.equal(findPowerShell("windows", envOf({}), isFile), undefined);
});

Deno.test("findPowerShell() finds pwsh on PATH, then in the usual places", () => {
  const isFile = (p: string) =>
    ["/opt/ps/pwsh", "/usr/bin/pwsh", "/h/.dotnet/tools/pwsh"].includes(p);
  assert.equal(
    findPowerShell("linux", envOf({ PATH: "relative:/bin:/opt/ps", HOME: "/h" }), isFile),
    "/opt/ps/pwsh",
  );
  assert.equal(
    findPowerShell("darwin", envOf({ PATH: "/bin", HOME: "/h" }), isFile),
    "/usr/bin/pwsh",
  );
  assert.equal(
    findPowerShell("linux", envOf({ HOME: "/h" }), (p) => p === "/h/.dotnet/tools/pwsh"),
    "/h/.dotnet/tools/pwsh",
  );
  assert.equal(findPowerShell("linux", envOf({ PATH: "/bin" }), () => false), undefined);
});

Deno.test("findPowerShell() obeys the variable and names it when it points nowhere", () => {
  const isFile = (p: string) => p === "/x/pwsh";
  assert.equal(
    findPowerShell("windows", envOf({ [POWERSHELL_ENV]: " /x/pwsh " }), isFile),
    "/x/pwsh",
  );
  assert.throws(
    () => findPowerShell("linux", envOf({ [POWERSHELL_ENV]: "/missing/pwsh" }), isFile),
    (e) =>
      e instanceof UsageError && e.code === "POWERSHELL_NOT_FOUND" && e.exitCode === 2 &&
      e.message.includes(POWERSHELL_ENV) && e.message.includes("/missing/pwsh"),
  );
});

Deno.test("storesFor() searches LocalMachine only on Windows", () => {
  assert.deepEqual(storesFor("windows"), ["CurrentUser\\My", "LocalMachine\\My"]);
  assert.deepEqual(storesFor("linux"), ["CurrentUser\\My"]);
  assert.deepEqual(storesFor("darwin"), ["CurrentUser\\My"]);
});

Deno.test("encodeCommand() is base64 of UTF-16LE, as -EncodedCommand wants", () => {
  const script = "'Grüße' + [char]9 + \"€\"";
  const bytes = Uint8Array.from(atob(encodeCommand(script)), (c) => c.charCodeAt(0));
  assert.equal(new TextDecoder("utf-16le").decode(bytes), script);
});

Deno.test("signerScript() drops comments and indentation and stays far below the command-line limit", async () => {
  const script = await signerScript();
  assert.ok(!/^\s*#/m.test(script));
  assert.ok(!/^\s/m.test(script));
  assert.match(script, /X509Store/);
  // Windows command lines end at 32767 characters; the encoded script must leave room.
  assert.ok(encodeCommand(script).length < 16_000, String(encodeCommand(script).length));
});

// ---------------------------------------------------------------------------------------------
// The script must run unchanged on Windows PowerShell 5.1: pwsh's own parser finds every
// construct that 5.1 does not know (test/bed/ps51.ts).

const PWSH = findPwsh();
const pwshNeeded = !PWSH && Deno.env.get("CI") !== "true";

Deno.test({
  name: `store_signer.ps1 uses no PowerShell 7-only syntax (Windows PowerShell 5.1 runs it)${
    pwshNeeded ? " (skipped: pwsh not found)" : ""
  }`,
  ignore: pwshNeeded,
  fn: async () => {
    assert.ok(PWSH, "pwsh not found (scripts/test.sh installs it)");
    // The walker itself finds each construct, so an empty list below means something.
    const offending = await sevenOnly(
      PWSH,
      [
        "$a = $b ? 1 : 2",
        "$c = $d ?? 3",
        "$e ??= 4",
        "${f}?.Name",
        "${g}?[0]",
        "Get-Item x && Get-Item y",
        "1..3 | ForEach-Object -Parallel { $_ }",
        "function h { process { 1 } clean { 2 } }",
      ].join("\n"),
    );
    for (
      const kind of [
        "TernaryExpressionAst",
        "QuestionQuestion ",
        "QuestionQuestionEquals",
        "QuestionDot",
        "QuestionLBracket",
        "PipelineChainAst",
        "CommandAst",
        "NamedBlockAst",
      ]
    ) {
      assert.ok(offending.some((l) => l.includes(kind)), `${kind} not detected: ${offending}`);
    }

    const source = await Deno.readTextFile(new URL("./store_signer.ps1", import.meta.url));
    assert.deepEqual(await sevenOnly(PWSH, source), []);
    // What is sent (comments and indentation cut) must parse the same way.
    assert.deepEqual(await sevenOnly(PWSH, await signerScript()), []);
  },
});

Deno.test("lastErrorLine() reads plain stderr and Windows PowerShell's CLIXML errors", () => {
  assert.equal(lastErrorLine("first\r\nsecond line\r\n\r\n"), "second line");
  const clixml =
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">' +
    '<S S="Error">Unable to find type [System.Security.Cryptography.HashAlgorithmName]._x000D__x000A_</S>' +
    '<S S="Error">At line:1 char:1 &amp; more_x000D__x000A_</S></Objs>';
  assert.equal(lastErrorLine(clixml), "At line:1 char:1 & more");
  assert.equal(lastErrorLine(""), undefined);
});
