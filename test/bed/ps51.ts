/**
 * Windows PowerShell 5.1 compatibility, checked with pwsh's own parser: scripts that must run
 * unchanged on 5.1 (the shim, the certificate-store signer) may not use 7-only syntax.
 */
import assert from "node:assert/strict";

/**
 * Lists the PowerShell 7-only constructs in the file at `path` (and parse errors), one per line:
 * ternaries, `??`, `??=`, `?.`/`?[]`, `&&`/`||` chains, `clean` blocks, `ForEach-Object -Parallel`.
 */
const FIND_7_ONLY = String.raw`
$tokens = $null; $errors = $null
$ast = [System.Management.Automation.Language.Parser]::ParseFile($env:SCRIPT_PATH, [ref]$tokens, [ref]$errors)
foreach ($e in $errors) { 'parse error: ' + $e.Message }
$kinds = 'QuestionQuestion', 'QuestionQuestionEquals', 'QuestionDot', 'QuestionLBracket', 'AndAnd', 'OrOr'
foreach ($t in $tokens) { if ($kinds -contains [string]$t.Kind) { 'token ' + $t.Kind + ' at line ' + $t.Extent.StartLineNumber } }
$found = $ast.FindAll({
  param($n)
  ($n -is [System.Management.Automation.Language.TernaryExpressionAst]) -or
  ($n -is [System.Management.Automation.Language.PipelineChainAst]) -or
  ($n -is [System.Management.Automation.Language.MemberExpressionAst] -and $n.NullConditional) -or
  ($n -is [System.Management.Automation.Language.IndexExpressionAst] -and $n.NullConditional) -or
  ($n -is [System.Management.Automation.Language.NamedBlockAst] -and [string]$n.BlockKind -eq 'Clean') -or
  ($n -is [System.Management.Automation.Language.CommandAst] -and $n.GetCommandName() -match '^(ForEach-Object|%|foreach)$' -and
    @($n.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] -and 'parallel' -like ($_.ParameterName + '*') }).Count -gt 0)
}, $true)
foreach ($n in $found) { $n.GetType().Name + ' at line ' + $n.Extent.StartLineNumber + ': ' + $n.Extent.Text }
`;

export async function sevenOnly(pwsh: string, script: string): Promise<string[]> {
  const path = await Deno.makeTempFile({ suffix: ".ps1" });
  try {
    await Deno.writeTextFile(path, script);
    const out = await new Deno.Command(pwsh, {
      args: ["-NoProfile", "-NonInteractive", "-Command", FIND_7_ONLY],
      env: { SCRIPT_PATH: path },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(stderr, "");
    return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.trim()).filter((l) => l);
  } finally {
    await Deno.remove(path);
  }
}
