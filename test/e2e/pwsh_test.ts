/**
 * Real PowerShell 7 (pwsh) driving the shim scripts/Get-IMAPAccessToken.ps1 and the CLI, written
 * the way existing scripts call the original Get-IMAPAccessToken.ps1.
 *
 * The shim runs the CLI from source through GET_IMAP_ACCESS_TOKEN_COMMAND. Each pwsh process costs
 * about a second to start, so every test runs many cases in one PowerShell script: a case prints
 * one `CASE {json}` line on stdout (its name, output and $LASTEXITCODE) and a `<<<name>>>` marker
 * on stderr, so each case's stderr can be told apart.
 *
 * Without pwsh the tests are reported as ignored, by a name that says so; in CI (CI=true, where
 * scripts/test.sh installs pwsh) a missing pwsh fails them instead.
 */
import assert from "node:assert/strict";
import { sevenOnly } from "../bed/ps51.ts";
import { findPwsh } from "../bed/dotnet_store.ts";
import { basename, dirname, join } from "node:path";
import {
  APP,
  APP_NO_ACCESS,
  APP_ODD_SECRET,
  MAILBOX,
  ODD_SECRET,
  SECRET,
  startTestBed,
  TENANT,
} from "../bed/testbed.ts";
import { PARAMETER_SETS, PARAMETERS } from "../../src/cli/parameters.ts";
import { secretArgs } from "./cli.ts";
import { SHIM_DLL } from "../../scripts/build_shim.ts";

const ROOT = join(import.meta.dirname!, "..", "..");
const SCRIPTS = join(ROOT, "scripts");
const SHIM = join(SCRIPTS, "Get-IMAPAccessToken.ps1");
/** The script's compiled helper, built beside it by `deno task shim` (`deno task ok` does). */
const HELPER = join(SCRIPTS, SHIM_DLL);
const MAIN = join(ROOT, "src", "main.ts");
/** How the shim runs the CLI from source (paths quoted: they may contain spaces). */
const FROM_SOURCE = `'${Deno.execPath()}' run -A --quiet '${MAIN}'`;

const PWSH = findPwsh();

function pwshTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  if (PWSH || Deno.env.get("CI") === "true") {
    Deno.test(name, async (t) => {
      assert.ok(PWSH, "pwsh not found on PATH or in ~/.dotnet/tools (scripts/test.sh installs it)");
      await Deno.stat(HELPER).catch(() => {
        throw new Error(`${HELPER} is missing: build it with \`deno task shim\``);
      });
      await fn(t);
    });
  } else {
    Deno.test({ name: `${name} (skipped: pwsh not found)`, ignore: true, fn });
  }
}

/** A PowerShell single-quoted literal: only quote characters need doubling (all four kinds). */
function psq(value: string): string {
  return `'${value.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

interface PwshResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function runPwsh(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string; cwd?: string } = {},
): Promise<PwshResult> {
  const child = new Deno.Command(PWSH!, {
    args: ["-NoLogo", "-NoProfile", "-NonInteractive", ...args],
    cwd: options.cwd ?? SCRIPTS,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: {
      // Nothing may leave 127.0.0.1: no update check, no telemetry.
      POWERSHELL_UPDATECHECK: "Off",
      POWERSHELL_TELEMETRY_OPTOUT: "1",
      DOTNET_CLI_TELEMETRY_OPTOUT: "1",
      DOTNET_NOLOGO: "1",
      NO_COLOR: "1",
      GET_IMAP_ACCESS_TOKEN_COMMAND: FROM_SOURCE,
      ...options.env,
    },
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/**
 * Helpers every test script starts with. Invoke-Case sorts what a block produced by PowerShell
 * stream: success output, Write-Host records (information stream, tag PSHOST), verbose records;
 * what a native program wrote to stderr stays on pwsh's stderr.
 */
const PRELUDE = String.raw`
function Invoke-Case([string]$Name, [scriptblock]$Block) {
    [Console]::Error.WriteLine("<<<$Name>>>")
    $global:LASTEXITCODE = $null
    $result = [ordered]@{ case = $Name; out = @(); host = @(); verbose = @() }
    try {
        foreach ($record in @(& $Block *>&1)) {
            if ($record -is [System.Management.Automation.InformationRecord]) {
                $result.host += ($(if ($record.Tags -contains 'PSHOST') { '' } else { 'NOT-HOST ' }) + "$record")
            } elseif ($record -is [System.Management.Automation.VerboseRecord]) {
                $result.verbose += $record.Message
            } elseif ($record -is [System.Management.Automation.ErrorRecord]) {
                [Console]::Error.WriteLine("$record")
            } else {
                $result.out += "$record"
            }
        }
        $result.code = $global:LASTEXITCODE
    } catch {
        $result.code = $global:LASTEXITCODE
        $result.error = $_.Exception.GetType().Name + ': ' + $_.Exception.Message
    }
    [Console]::Out.WriteLine('CASE ' + (ConvertTo-Json $result -Compress -Depth 5))
}
`;

interface Case {
  /** Success output (what `$x = & ...` captures). */
  out: string[];
  /** Write-Host lines (information records tagged PSHOST). */
  host: string[];
  /** Verbose records (Write-Verbose). */
  verbose: string[];
  code: number | null;
  error?: string;
  /** What the case wrote to stderr (native programs called directly). */
  stderr: string;
}

/** Runs a script of Invoke-Case calls; returns the cases by name. */
async function runCases(
  body: string,
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ cases: Map<string, Case>; result: PwshResult }> {
  const dir = await Deno.makeTempDir({ prefix: "gia-pwsh-" });
  try {
    const file = join(dir, "cases.ps1");
    await Deno.writeTextFile(file, PRELUDE + body);
    const result = await runPwsh(["-File", file], options);
    const stderrByCase = new Map<string, string>();
    for (const part of result.stderr.split("<<<").slice(1)) {
      const end = part.indexOf(">>>");
      stderrByCase.set(part.slice(0, end), part.slice(end + 3));
    }
    const cases = new Map<string, Case>();
    for (const line of result.stdout.split("\n")) {
      if (!line.startsWith("CASE ")) continue;
      const c = JSON.parse(line.slice(5));
      cases.set(c.case, {
        ...c,
        out: c.out ?? [],
        host: c.host ?? [],
        verbose: c.verbose ?? [],
        stderr: stderrByCase.get(c.case) ?? "",
      });
    }
    return { cases, result };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function pick(cases: Map<string, Case>, name: string, result: PwshResult): Case {
  const c = cases.get(name);
  assert.ok(c, `case '${name}' did not run.\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  return c;
}

const ECHO_PROGRAM = `const wait = Deno.env.get("ECHO_WAIT");
const input = Deno.stdin.isTerminal() || wait
  ? null
  : await new Response(Deno.stdin.readable).text();
// A program that goes on after its first line (a sign-in that waits): its PID, then a minute.
if (wait) await Deno.writeTextFile(wait, String(Deno.pid));
console.log(JSON.stringify({ args: Deno.args, input, cwd: Deno.cwd() }));
if (wait) await new Promise((resolve) => setTimeout(resolve, 60_000));
Deno.exit(Number(Deno.env.get("ECHO_EXIT") ?? "0"));
`;

/** A program that prints its arguments and stdin as JSON, in a folder whose name has spaces. */
async function echoProgram(dir: string): Promise<string> {
  await Deno.mkdir(join(dir, "dir with space"), { recursive: true });
  const path = join(dir, "dir with space", "echo args.ts");
  await Deno.writeTextFile(path, ECHO_PROGRAM);
  return path;
}

function echoed(c: Case): { args: string[]; input: string | null; cwd: string } {
  assert.equal(c.error, undefined, c.error ?? "");
  assert.equal(c.out.length, 1, `one line of output expected: ${JSON.stringify(c)}`);
  return JSON.parse(c.out[0]);
}

/** Prints `META {json}`: the shim's parameters as PowerShell sees them. */
const META_SCRIPT = String.raw`
$cmd = Get-Command -Name ${psq(SHIM)}
$common = [System.Management.Automation.PSCmdlet]::CommonParameters +
    [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
$parameters = foreach ($p in $cmd.Parameters.Values) {
    if ($common -contains $p.Name) { continue }
    [ordered]@{
        name = $p.Name
        type = $p.ParameterType.Name
        sets = @($p.ParameterSets.Keys)
        mandatory = @($p.ParameterSets.GetEnumerator() | Where-Object { $_.Value.IsMandatory } |
            ForEach-Object { $_.Key })
        validateSet = @($p.Attributes | Where-Object { $_ -is [ValidateSet] } |
            ForEach-Object { $_.ValidValues })
        allowEmpty = [bool]@($p.Attributes | Where-Object { $_ -is [AllowEmptyString] }).Count
    }
}
'META ' + (ConvertTo-Json @{ sets = @($cmd.ParameterSets.Name); parameters = @($parameters) } -Compress -Depth 5)
`;

/** The shim's param() block against src/cli/parameters.ts: a new CLI parameter needs the shim too. */
function assertParamBlockMirrorsTable(result: PwshResult): void {
  const line = result.stdout.split("\n").find((l) => l.startsWith("META "));
  assert.ok(line, result.stdout + result.stderr);
  const meta = JSON.parse(line.slice(5)) as {
    sets: string[];
    parameters: {
      name: string;
      type: string;
      sets: string[];
      mandatory: string[];
      validateSet: string[];
      allowEmpty: boolean;
    }[];
  };
  assert.deepEqual([...meta.sets].sort(), [...PARAMETER_SETS].sort());
  const own = meta.parameters.filter((p) => p.name !== "InputObject");
  const table = PARAMETERS.filter((p) => !p.common);
  // Same names, same spelling, same order (PowerShell lists ambiguous candidates in this order).
  assert.deepEqual(own.map((p) => p.name), table.map((p) => p.name));
  const all = "__AllParameterSets";
  for (const spec of table) {
    const p = own.find((o) => o.name === spec.name)!;
    const where = `-${spec.name} in the shim`;
    const types = {
      switch: ["SwitchParameter"],
      int: ["Int32"],
      number: ["Double"],
      enum: ["String"],
      // Comma lists (-targetMailbox, -Scopes) are string[] so that `-Scopes a,b` works.
      string: ["String", "String[]"],
    }[spec.type];
    assert.ok(types.includes(p.type), `${where}: type ${p.type}, expected ${types.join(" or ")}`);
    assert.deepEqual([...p.sets].sort(), spec.sets ? [...spec.sets].sort() : [all], where);
    const mandatory = spec.mandatoryIn === "all" ? [all] : [...(spec.mandatoryIn ?? [])].sort();
    assert.deepEqual([...p.mandatory].sort(), mandatory, `${where}: mandatory sets`);
    if (spec.type === "enum") {
      assert.deepEqual(
        p.validateSet.map((v) => v.toLowerCase()).sort(),
        Object.keys(spec.values ?? {}).sort(),
        `${where}: ValidateSet`,
      );
    }
    assert.equal(p.allowEmpty, spec.allowEmpty === true, `${where}: AllowEmptyString`);
  }
}

pwshTest("shim: no PowerShell 7-only syntax (Windows PowerShell 5.1 runs it)", async () => {
  assert.ok(PWSH);
  assert.deepEqual(await sevenOnly(PWSH, await Deno.readTextFile(SHIM)), []);
});

pwshTest("shim: parameters, argument passing, stdin, exit codes (no network)", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "gia-echo-" });
  try {
    const echo = await echoProgram(dir);
    const command = `'${Deno.execPath()}' run -A --quiet '${echo}'`;
    // dist layout: the shim with a "binary" for this platform beside it (a script here).
    const dist = join(dir, "dist");
    await Deno.mkdir(join(dist, Deno.build.target), { recursive: true });
    await Deno.copyFile(SHIM, join(dist, "Get-IMAPAccessToken.ps1"));
    await Deno.copyFile(HELPER, join(dist, SHIM_DLL));
    // The script alone, without its helper.
    await Deno.mkdir(join(dir, "alone"));
    await Deno.copyFile(SHIM, join(dir, "alone", "Get-IMAPAccessToken.ps1"));
    const fakeBinary = join(dist, Deno.build.target, "Get-IMAPAccessToken");
    await Deno.writeTextFile(fakeBinary, `#!/bin/sh\nexec ${command} "$@"\n`);
    await Deno.chmod(fakeBinary, 0o755);
    const base = "-tenantID T -clientId C";
    const [odd, shim] = [psq(ODD_SECRET), psq(SHIM)];
    const { cases, result } = await runCases(
      META_SCRIPT + String.raw`
$shim = '.\Get-IMAPAccessToken.ps1'
Invoke-Case 'literal' { .\Get-IMAPAccessToken.ps1 ${base} -clientsecret ${odd} -targetMailbox M }
Invoke-Case 'variable' { $s = $env:GIA_ODD; & $shim ${base} -clientsecret $s -targetMailbox M }
Invoke-Case 'empty string' {
    .\Get-IMAPAccessToken.ps1 ${base} -clientcertificate c.pem -CertificatePassword '' -targetMailbox M
}
Invoke-Case 'switches' {
    .\Get-IMAPAccessToken.ps1 ${base} -DeviceCode -NoConnect:$false -NoTokenCache -Diagnose:$true
}
Invoke-Case 'verbose' { .\Get-IMAPAccessToken.ps1 ${base} -DeviceCode -Verbose -Debug -ErrorAction Continue }
Invoke-Case 'verbose false' { .\Get-IMAPAccessToken.ps1 ${base} -DeviceCode -Verbose:$false }
Invoke-Case 'verbose preference' {
    $VerbosePreference = 'Continue'
    .\Get-IMAPAccessToken.ps1 ${base} -DeviceCode
}
Invoke-Case 'lists' {
    .\Get-IMAPAccessToken.ps1 ${base} -clientsecret S -targetMailbox a@contoso.com,b@contoso.com
}
Invoke-Case 'scopes' { .\Get-IMAPAccessToken.ps1 ${base} -DeviceCode -Scopes https://x/IMAP,offline_access }
Invoke-Case 'numbers in a German culture' {
    $culture = [cultureinfo]::CurrentCulture
    [cultureinfo]::CurrentCulture = 'de-DE'
    try {
        .\Get-IMAPAccessToken.ps1 ${base} -clientsecret S -targetMailbox M -TimeoutSeconds 2.5 -Port '995' -ThrottleLimit 3
    } finally { [cultureinfo]::CurrentCulture = $culture }
}
Invoke-Case 'abbreviations' { .\Get-IMAPAccessToken.ps1 -ten T -clientI C -clients S -tar M -Prot pop -OutputF json }
Invoke-Case 'splatting' {
    $params = @{ tenantID = 'T'; clientId = 'C'; clientsecret = 'S'; targetMailbox = 'M'; Protocol = 'POP3'; NoConnect = $true }
    .\Get-IMAPAccessToken.ps1 @params
}
Invoke-Case 'looks like a parameter' { .\Get-IMAPAccessToken.ps1 ${base} -clientsecret '-Verbose' -targetMailbox M }
Invoke-Case 'pipeline' { 'line one', 'ü€日本😀' | .\Get-IMAPAccessToken.ps1 ${base} -clientsecret - -targetMailbox M }
Invoke-Case 'exit code' {
    $env:ECHO_EXIT = '7'
    try { .\Get-IMAPAccessToken.ps1 ${base} -clientsecret S -targetMailbox M } finally { $env:ECHO_EXIT = $null }
}
Invoke-Case 'ambiguous' { .\Get-IMAPAccessToken.ps1 -tenantID T -client C -targetMailbox M }
Invoke-Case 'command with arguments' {
    $saved = $env:GET_IMAP_ACCESS_TOKEN_COMMAND
    $env:GET_IMAP_ACCESS_TOKEN_COMMAND = "$saved --fixed ""two words"" ''"
    try { .\Get-IMAPAccessToken.ps1 ${base} -DeviceCode } finally { $env:GET_IMAP_ACCESS_TOKEN_COMMAND = $saved }
}
Invoke-Case 'unclosed quote' {
    $saved = $env:GET_IMAP_ACCESS_TOKEN_COMMAND
    $env:GET_IMAP_ACCESS_TOKEN_COMMAND = "'$saved"
    try { .\Get-IMAPAccessToken.ps1 ${base} -DeviceCode } finally { $env:GET_IMAP_ACCESS_TOKEN_COMMAND = $saved }
}
Invoke-Case 'no program' {
    $saved = $env:GET_IMAP_ACCESS_TOKEN_COMMAND
    $env:GET_IMAP_ACCESS_TOKEN_COMMAND = $null
    try { & ${shim} ${base} -DeviceCode } finally { $env:GET_IMAP_ACCESS_TOKEN_COMMAND = $saved }
}
Invoke-Case 'program beside the shim' {
    $saved = $env:GET_IMAP_ACCESS_TOKEN_COMMAND
    $env:GET_IMAP_ACCESS_TOKEN_COMMAND = $null
    $env:ECHO_EXIT = '4'
    try { & ${psq(join(dist, "Get-IMAPAccessToken.ps1"))} ${base} -DeviceCode -Protocol IMAP }
    finally { $env:GET_IMAP_ACCESS_TOKEN_COMMAND = $saved; $env:ECHO_EXIT = $null }
}
Invoke-Case 'command line quoting' {
    # The helper joins the arguments into one command line by Windows' rules, which .NET applies
    # on every platform: each value must arrive unchanged.
    $v = @($env:GIA_ODD, 'a b', 'q"uote', 'x\"y', '', 'trail\', 'sp trail\\', '\\server\share\', "tab${"`"}tx", '""')
    & $shim -tenantID:$v[0] -clientId:$v[1] -clientsecret:$v[2] -targetMailbox:$v[3] -Server:$v[4] -Proxy:$v[5] -CaFile:$v[6] -TokenCachePath:$v[7] -AuthorityHost:$v[8] -SendTestMessageTo:$v[9]
}
Invoke-Case 'current location' {
    Push-Location ${psq(dir)}
    try { & ${shim} ${base} -DeviceCode } finally { Pop-Location }
}
# Whether the program whose PID is in the file still runs, a few seconds at most after a stop.
function Test-Running([string]$PidFile) {
    $id = [int](Get-Content $PidFile)
    for ($i = 0; $i -lt 50; $i++) {
        if (-not (Get-Process -Id $id -ErrorAction SilentlyContinue)) { return $false }
        Start-Sleep -Milliseconds 100
    }
    return $true
}
Invoke-Case 'stopped by Select-Object' {
    $pidFile = ${psq(join(dir, "select.pid"))}
    $env:ECHO_WAIT = $pidFile
    try {
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $first = & $shim ${base} -DeviceCode | Select-Object -First 1
        'seconds ' + [int]$watch.Elapsed.TotalSeconds
        'running ' + (Test-Running $pidFile)
    } finally { $env:ECHO_WAIT = $null }
}
Invoke-Case 'stopped from another thread' {
    # Stop() on a running pipeline (Stop-Job, a host's cancel): the helper sees Stopping.
    $pidFile = ${psq(join(dir, "stop.pid"))}
    $env:ECHO_WAIT = $pidFile
    $ps = [powershell]::Create()
    try {
        [void]$ps.AddCommand(${shim}).AddParameter('tenantID', 'T').AddParameter('clientId', 'C').AddParameter('DeviceCode')
        $handle = $ps.BeginInvoke()
        for ($i = 0; $i -lt 200 -and -not (Test-Path $pidFile); $i++) { Start-Sleep -Milliseconds 100 }
        Start-Sleep -Milliseconds 500
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $ps.Stop()
        'seconds ' + [int]$watch.Elapsed.TotalSeconds
        'running ' + (Test-Running $pidFile)
    } finally { $env:ECHO_WAIT = $null; $ps.Dispose() }
}
Invoke-Case 'relative program path' {
    $saved = $env:GET_IMAP_ACCESS_TOKEN_COMMAND
    $env:GET_IMAP_ACCESS_TOKEN_COMMAND = ${psq(`./dist/${Deno.build.target}/Get-IMAPAccessToken`)}
    Push-Location ${psq(dir)}
    try { & ${shim} ${base} -DeviceCode }
    finally { Pop-Location; $env:GET_IMAP_ACCESS_TOKEN_COMMAND = $saved }
}
Invoke-Case 'program not on PATH' {
    $saved = $env:GET_IMAP_ACCESS_TOKEN_COMMAND
    $env:GET_IMAP_ACCESS_TOKEN_COMMAND = 'no-such-program-gia'
    try { & $shim ${base} -DeviceCode } finally { $env:GET_IMAP_ACCESS_TOKEN_COMMAND = $saved }
}
Invoke-Case 'no helper' {
    & ${psq(join(dir, "alone", "Get-IMAPAccessToken.ps1"))} ${base} -DeviceCode
}
`,
      { env: { GET_IMAP_ACCESS_TOKEN_COMMAND: command, GIA_ODD: ODD_SECRET } },
    );
    const c = (name: string) => pick(cases, name, result);
    const args = (name: string) => echoed(c(name)).args;
    const secretArgs = (secret: string) => [
      "-tenantID:T",
      "-clientId:C",
      `-clientsecret:${secret}`,
      "-targetMailbox:M",
    ];

    await t.step("the param() block mirrors the program's parameter table", () => {
      assertParamBlockMirrorsTable(result);
    });

    await t.step("values arrive exactly: quotes, $, backslashes, unicode, empty", () => {
      assert.deepEqual(args("literal"), secretArgs(ODD_SECRET));
      assert.equal(c("literal").code, 0);
      assert.deepEqual(args("variable"), secretArgs(ODD_SECRET));
      assert.ok(args("empty string").includes("-CertificatePassword:"), "empty string kept");
      // Passed as -Name:value, a value that looks like a parameter stays a value.
      assert.deepEqual(args("looks like a parameter"), secretArgs("-Verbose"));
      assert.ok(args("lists").includes("-targetMailbox:a@contoso.com,b@contoso.com"));
      assert.ok(args("scopes").includes("-Scopes:https://x/IMAP,offline_access"));
      assert.deepEqual(args("numbers in a German culture").slice(4).sort(), [
        "-Port:995",
        "-ThrottleLimit:3",
        "-TimeoutSeconds:2.5",
      ]);
      assert.deepEqual(
        args("abbreviations").sort(),
        [...secretArgs("S"), "-Protocol:pop", "-OutputFormat:json"].sort(),
      );
      assert.deepEqual(
        args("splatting").sort(),
        [...secretArgs("S"), "-Protocol:POP3", "-NoConnect"].sort(),
      );
    });

    await t.step("switches and -Verbose (only bound parameters are forwarded)", () => {
      assert.deepEqual(args("switches").slice(2).sort(), [
        "-DeviceCode",
        "-Diagnose",
        "-NoConnect:$false",
        "-NoTokenCache",
      ]);
      // Of the common parameters only -Verbose is forwarded; PowerShell handles the others.
      assert.deepEqual(args("verbose").slice(2), ["-DeviceCode", "-Verbose"]);
      assert.deepEqual(args("verbose false").slice(2), ["-DeviceCode", "-Verbose:$false"]);
      assert.deepEqual(args("verbose preference").slice(2), ["-DeviceCode", "-Verbose"]);
    });

    await t.step("pipeline input becomes stdin; the exit code becomes $LASTEXITCODE", () => {
      assert.equal(echoed(c("pipeline")).input, "line one\nü€日本😀\n");
      assert.equal(c("exit code").code, 7);
      assert.match(c("ambiguous").error ?? "", /ParameterBindingException.*ambiguous/s);
      assert.equal(c("ambiguous").code, null, "PowerShell's own error: the program never ran");
    });

    await t.step("which program: GET_IMAP_ACCESS_TOKEN_COMMAND or the binary beside", () => {
      assert.deepEqual(args("command with arguments").slice(0, 3), ["--fixed", "two words", ""]);
      assert.equal(c("unclosed quote").code, 1);
      assert.match(
        c("unclosed quote").host.join("\n"),
        /^ERROR: GET_IMAP_ACCESS_TOKEN_COMMAND has an unclosed/m,
      );
      assert.equal(c("no program").code, 1);
      assert.match(
        c("no program").host.join("\n"),
        new RegExp(
          `^ERROR: the Get-IMAPAccessToken program for ${Deno.build.target} was not found`,
          "m",
        ),
      );
      assert.deepEqual(args("program beside the shim"), [
        "-tenantID:T",
        "-clientId:C",
        "-DeviceCode",
        "-Protocol:IMAP",
      ]);
      assert.equal(c("program beside the shim").code, 4);
    });

    await t.step("every value arrives unchanged through the helper's command line", () => {
      const names = ["tenantID", "clientId", "clientsecret", "targetMailbox", "Server", "Proxy"];
      names.push("CaFile", "TokenCachePath", "AuthorityHost", "SendTestMessageTo");
      const values = [ODD_SECRET, "a b", 'q"uote', 'x\\"y', "", "trail\\", "sp trail\\\\"];
      values.push("\\\\server\\share\\", "tab\tx", '""');
      assert.deepEqual(args("command line quoting"), names.map((n, i) => `-${n}:${values[i]}`));
    });

    await t.step("the program runs in PowerShell's current location", async () => {
      assert.equal(echoed(c("current location")).cwd, await Deno.realPath(dir));
    });

    await t.step("a bare program name is found on PATH, not in the process's folder", async () => {
      // .NET's own lookup tries the process's current folder before PATH; & does not.
      const folder = join(dir, "decoy");
      await Deno.mkdir(folder);
      const decoy = join(folder, basename(Deno.execPath()));
      await Deno.writeTextFile(decoy, "#!/bin/sh\necho decoy\n");
      await Deno.chmod(decoy, 0o755);
      const bare = await runCases(
        String.raw`
Invoke-Case 'bare program name' {
    $env:GET_IMAP_ACCESS_TOKEN_COMMAND = ${
          psq(basename(Deno.execPath()))
        } + " run -A --quiet '${echo}'"
    $env:PATH = ${psq(dirname(Deno.execPath()))} + [System.IO.Path]::PathSeparator + $env:PATH
    & ${shim} ${base} -DeviceCode
}
`,
        { cwd: folder },
      );
      const found = echoed(pick(bare.cases, "bare program name", bare.result));
      assert.deepEqual(found.args.slice(0, 2), ["-tenantID:T", "-clientId:C"]);
    });

    await t.step("a caller that stops the pipeline stops the program", () => {
      for (const name of ["stopped by Select-Object", "stopped from another thread"]) {
        const stopped = c(name);
        assert.equal(stopped.error, undefined, stopped.error ?? "");
        const seconds = Number(/^seconds (\d+)$/m.exec(stopped.out.join("\n"))?.[1]);
        assert.ok(seconds < 20, `${name}: returned after ${seconds} s (the program waits 60 s)`);
        assert.ok(stopped.out.includes("running False"), `${name}: ${stopped.out.join(" | ")}`);
      }
    });

    await t.step("GET_IMAP_ACCESS_TOKEN_COMMAND: a relative path from the current location", () => {
      assert.deepEqual(args("relative program path").slice(0, 2), ["-tenantID:T", "-clientId:C"]);
      assert.equal(c("program not on PATH").code, 1);
      assert.match(
        c("program not on PATH").host.join("\n"),
        /^ERROR: GET_IMAP_ACCESS_TOKEN_COMMAND: no-such-program-gia was not found on PATH\.$/m,
      );
    });

    await t.step("without its helper the script says what is missing", () => {
      assert.equal(c("no helper").code, 1);
      assert.match(
        c("no helper").host.join("\n"),
        /^ERROR: \S+alone\/Get-IMAPAccessToken\.Shim\.dll was not found\. Copy Get-IMAPAccessToken\.Shim\.dll from the release next to this script\.$/m,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

pwshTest("pwsh scripts call the shim and the CLI against the test bed", async (t) => {
  const bed = await startTestBed();
  try {
    const imap = bed.exchange.imapPort;
    const pop3 = bed.exchange.pop3Port;
    // bed.common() without -tenantID, as a hashtable for splatting and as native arguments.
    const pairs: [string, string][] = [];
    const common = bed.common();
    for (let i = 0; i < common.length; i += 2) {
      if (common[i] !== "-tenantID") pairs.push([common[i].slice(1), common[i + 1]]);
    }
    const bedTable = pairs.map(([k, v]) => `${k} = ${psq(v)}`).join("; ");
    const bedNative = pairs.map(([k, v]) => `'-${k}', ${psq(v)}`).join(", ");
    const [odd, deno, main] = [psq(ODD_SECRET), psq(Deno.execPath()), psq(MAIN)];
    const { cases, result } = await runCases(
      String.raw`
$bed = @{ ${bedTable} }
$bedNative = @(${bedNative})
Invoke-Case 'original call with -Verbose' {
    .\Get-IMAPAccessToken.ps1 -tenantID "${TENANT}" -clientId "${APP}" -clientsecret "${SECRET}" -targetMailbox "${MAILBOX}" -Verbose @bed -Port ${imap}
}
Invoke-Case 'splatting' {
    $params = @{
        tenantID = '${TENANT}'
        clientId = '${APP}'
        clientsecret = '${SECRET}'
        targetMailbox = '${MAILBOX}'
        Protocol = 'POP3'
        Port = ${pop3}
    }
    .\Get-IMAPAccessToken.ps1 @params @bed
}
Invoke-Case 'abbreviated names' {
    .\Get-IMAPAccessToken.ps1 -ten '${TENANT}' -clientI '${APP}' -clients '${SECRET}' -tar '${MAILBOX}' -Prot POP -Por ${pop3} @bed
}
Invoke-Case '-Verbose:$false' {
    .\Get-IMAPAccessToken.ps1 -tenantID '${TENANT}' -clientId '${APP}' -clientsecret '${SECRET}' -targetMailbox '${MAILBOX}' -Verbose:$false -Port ${imap} @bed
}
Invoke-Case 'verbose preference' {
    $VerbosePreference = 'Continue'
    .\Get-IMAPAccessToken.ps1 -tenantID '${TENANT}' -clientId '${APP}' -clientsecret '${SECRET}' -targetMailbox '${MAILBOX}' -Port ${imap} @bed
}
Invoke-Case 'verbose preference, -Verbose:$false' {
    $VerbosePreference = 'Continue'
    .\Get-IMAPAccessToken.ps1 -tenantID '${TENANT}' -clientId '${APP}' -clientsecret '${SECRET}' -targetMailbox '${MAILBOX}' -Verbose:$false -Port ${imap} @bed
}
Invoke-Case '6>$null' {
    .\Get-IMAPAccessToken.ps1 -tenantID '${TENANT}' -clientId '${APP}' -clientsecret '${SECRET}' -targetMailbox '${MAILBOX}' -Port ${imap} @bed 6>$null
}
Invoke-Case 'InformationPreference Ignore' {
    $InformationPreference = 'Ignore'
    .\Get-IMAPAccessToken.ps1 -tenantID '${TENANT}' -clientId '${APP}' -clientsecret '${SECRET}' -targetMailbox '${MAILBOX}' -Port ${imap} @bed
}
Invoke-Case '6>&1' {
    $all = .\Get-IMAPAccessToken.ps1 -tenantID '${TENANT}' -clientId '${APP}' -clientsecret '${SECRET}' -targetMailbox '${MAILBOX}' -Port ${imap} @bed 6>&1
    $code = $LASTEXITCODE
    ConvertTo-Json @($all | ForEach-Object { "$_" }) -Compress
    $global:LASTEXITCODE = $code
}
Invoke-Case 'capture' {
    $lines = & .\Get-IMAPAccessToken.ps1 -tenantID '${TENANT}' -clientId '${APP}' -clientsecret '${SECRET}' -targetMailbox '${MAILBOX}' -Verbose -Port ${imap} @bed
    $code = $LASTEXITCODE
    ConvertTo-Json @($lines) -Compress
    $global:LASTEXITCODE = $code
}
Invoke-Case 'wrong secret, try/catch' {
    try {
        .\Get-IMAPAccessToken.ps1 -tenantID '${TENANT}' -clientId '${APP}' -clientsecret 'not-the-secret' -targetMailbox '${MAILBOX}' -Port ${imap} @bed
        if ($LASTEXITCODE -ne 0) { throw "Get-IMAPAccessToken failed with exit code $LASTEXITCODE" }
        'no error'
    } catch {
        "caught: $($_.Exception.Message)"
    }
}
Invoke-Case 'no mailbox access, native errors as exceptions' {
    $PSNativeCommandUseErrorActionPreference = $true
    $ErrorActionPreference = 'Stop'
    try {
        .\Get-IMAPAccessToken.ps1 -tenantID '${TENANT}' -clientId '${APP_NO_ACCESS}' -clientsecret '${SECRET}' -targetMailbox '${MAILBOX}' -Port ${imap} @bed
        'no error'
    } catch {
        "caught: $($_.Exception.GetType().Name) $($_.Exception.ExitCode)"
    }
}
Invoke-Case 'odd secret as a literal' {
    .\Get-IMAPAccessToken.ps1 -tenantID '${TENANT}' -clientId '${APP_ODD_SECRET}' -clientsecret ${odd} -targetMailbox '${MAILBOX}' -NoConnect @bed
}
Invoke-Case 'odd secret through the pipeline' {
    $env:GIA_ODD | .\Get-IMAPAccessToken.ps1 -tenantID '${TENANT}' -clientId '${APP_ODD_SECRET}' -clientsecret - -targetMailbox '${MAILBOX}' -NoConnect -NoTokenCache @bed
}
Invoke-Case 'CLI as a native command' {
    & ${deno} run -A --quiet ${main} -tenantID '${TENANT}' -clientId '${APP}' -clientsecret '${SECRET}' -targetMailbox '${MAILBOX}' -Protocol POP3 -Port ${pop3} -Verbose:$false @bedNative
}
Invoke-Case 'CLI as a native command, odd secret' {
    & ${deno} run -A --quiet ${main} -tenantID '${TENANT}' -clientId '${APP_ODD_SECRET}' -clientsecret $env:GIA_ODD -targetMailbox '${MAILBOX}' -NoConnect -NoTokenCache @bedNative
}
`,
      { env: { GIA_ODD: ODD_SECRET } },
    );
    const c = (name: string) => {
      const found = pick(cases, name, result);
      assert.equal(found.error, undefined, `${name}: ${found.error}\n${found.stderr}`);
      return found;
    };
    const serverLine = /^(\* |\+OK|-ERR|[A-Z]\d+ )/;

    await t.step(
      "the original's call with -Verbose: exit 0, server lines, Write-Host and verbose records",
      () => {
        const original = c("original call with -Verbose");
        assert.equal(original.code, 0, original.stderr);
        assert.ok(original.out.some((l) => /^\* OK The Microsoft Exchange IMAP4/.test(l)));
        assert.ok(original.out.some((l) => /^\* LIST .*INBOX/.test(l)));
        // -Verbose lines are verbose records (PowerShell adds "VERBOSE: " itself).
        assert.ok(original.verbose.some((l) => /^Executing command -- /.test(l)));
        assert.ok(original.verbose.every((l) => !l.startsWith("VERBOSE:")));
        // Progress and the result line are Write-Host lines, in order with the output.
        assert.ok(
          original.host.some((l) => /^Connect to 127\.0\.0\.1/.test(l)),
          original.host.join("\n"),
        );
        assert.match(
          original.host.at(-1) ?? "",
          /^OK: IMAP login to 127\.0\.0\.1:\d+ as box@contoso\.com/,
        );
        assert.ok(original.host.every((l) => !l.startsWith("NOT-HOST")));
        assert.equal(original.stderr.trim(), "");
      },
    );

    await t.step("splatting, abbreviated names, -Verbose:$false", () => {
      const splatted = c("splatting");
      assert.equal(splatted.code, 0, splatted.stderr);
      assert.ok(splatted.out.some((l) => /^\+OK 3 14523$/.test(l)), splatted.out.join("\n"));
      assert.equal(c("abbreviated names").code, 0, c("abbreviated names").stderr);
      assert.match(c("abbreviated names").host.join("\n"), /OK: POP3 login/);
      const quiet = c("-Verbose:$false");
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.deepEqual(quiet.verbose, []);
      // A caller that sets $VerbosePreference gets verbose records; -Verbose:$false wins over it.
      assert.ok(c("verbose preference").verbose.length > 0);
      assert.deepEqual(c("verbose preference, -Verbose:$false").verbose, []);
    });

    await t.step("$lines = & ... captures the server's lines only", () => {
      const capture = c("capture");
      assert.equal(capture.code, 0, capture.stderr);
      const lines = JSON.parse(capture.out[0]) as string[];
      assert.ok(lines.length >= 4, lines.join("\n"));
      for (const line of lines) assert.match(line, serverLine);
      // Progress and verbose text went to their own streams instead.
      assert.ok(capture.verbose.length > 0);
      assert.match(capture.host.join("\n"), /^OK: IMAP login/m);
    });

    await t.step(
      "progress is silenced with 6>$null or $InformationPreference, captured with 6>&1",
      () => {
        const silenced = c("6>$null");
        assert.equal(silenced.code, 0);
        assert.deepEqual(silenced.host, []);
        assert.ok(silenced.out.some((l) => /^\* LIST .*INBOX/.test(l)));
        assert.deepEqual(c("InformationPreference Ignore").host, []);
        assert.ok(c("InformationPreference Ignore").out.length > 0);
        const merged = JSON.parse(c("6>&1").out[0]) as string[];
        const ok = merged.findIndex((l) => /^OK: IMAP login/.test(l));
        const list = merged.findIndex((l) => /^\* LIST /.test(l));
        assert.ok(list >= 0 && ok > list, merged.join("\n"));
      },
    );

    await t.step("failures set $LASTEXITCODE; try/catch scripts can act on them", () => {
      const wrong = c("wrong secret, try/catch");
      assert.equal(wrong.code, 3);
      assert.deepEqual(wrong.out, ["caught: Get-IMAPAccessToken failed with exit code 3"]);
      assert.match(wrong.host.join("\n"), /^ERROR: .*AADSTS7000215/m);
      assert.match(wrong.host.join("\n"), /^HINT \(step 1/m);
      const noAccess = c("no mailbox access, native errors as exceptions");
      assert.equal(noAccess.code, 6);
      assert.match(noAccess.out.at(-1) ?? "", /^caught: NativeCommandExitException 6$/);
      assert.ok(noAccess.out.some((l) => /BAD User is authenticated but not connected/.test(l)));
    });

    await t.step("a secret with spaces, quotes, $ and non-ASCII characters arrives intact", () => {
      assert.equal(c("odd secret as a literal").code, 0, c("odd secret as a literal").stderr);
      const piped = c("odd secret through the pipeline");
      assert.equal(piped.code, 0, piped.stderr);
      const nativeOdd = c("CLI as a native command, odd secret");
      assert.equal(nativeOdd.code, 0, nativeOdd.stderr);
      const oddRequests = bed.entra.tokenRequests.filter((r) =>
        r.body.client_id === APP_ODD_SECRET
      );
      assert.ok(oddRequests.length >= 2);
      for (const r of oddRequests) assert.equal(r.body.client_secret, ODD_SECRET);
    });

    await t.step("the CLI called directly as a native command from pwsh", () => {
      const native = c("CLI as a native command");
      assert.equal(native.code, 0, native.stderr);
      assert.ok(native.out.some((l) => /^\+OK 3 14523$/.test(l)), native.out.join("\n"));
      assert.doesNotMatch(native.stderr, /VERBOSE:/);
    });

    await t.step(
      "pwsh -File (a scheduled task): stdin reaches the program, exit code, errors in the log",
      async () => {
        // The secret comes from pwsh's own standard input; the app has no access to the mailbox.
        const r = await runPwsh([
          "-File",
          SHIM,
          ...bed.common(),
          ...secretArgs({ clientId: APP_NO_ACCESS, secret: "-" }),
          "-Port",
          String(imap),
        ], { stdin: `${SECRET}\n` });
        assert.equal(r.code, 6, r.stderr);
        assert.match(r.stdout, /OK AUTHENTICATE completed/);
        assert.match(r.stdout, /BAD User is authenticated but not connected/);
        // As with the original, the log (pwsh's stdout) holds the error and its advice too.
        assert.match(r.stdout, /^ERROR: .*\[IMAP_NOT_CONNECTED\]$/m);
        assert.match(r.stdout, /^HINT \(step 3/m);
        assert.match(r.stdout, /^FIX: .*Add-MailboxPermission/m);
        assert.equal(r.stderr, "");
        // A wrong secret: exit 3, and Entra's refusal with its advice in the log, not on stderr.
        const wrong = await runPwsh([
          "-File",
          SHIM,
          ...bed.common(),
          ...secretArgs({ secret: "Wrong~Secret.Value_0123456789abcdefghij" }),
          "-Port",
          String(imap),
        ]);
        assert.equal(wrong.code, 3, wrong.stderr);
        assert.match(wrong.stdout, /^ERROR: .*AADSTS7000215/m);
        assert.match(wrong.stdout, /^HINT \(step 1/m);
        assert.match(wrong.stdout, /^FIX: /m);
        assert.equal(wrong.stderr, "");
      },
    );
  } finally {
    await bed.close();
  }
});
