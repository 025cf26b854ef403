/**
 * scripts/compile.ts: its pure parts without network, the script itself where no runtime can be
 * found, the baked-in permissions (the core flows run from source with exactly those), and — only
 * when a denort runtime is given in DENORT_BIN — a real linux x64 binary against the test bed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  binaryName,
  binaryPath,
  compileArgs,
  CompileUsageError,
  embeddedProblems,
  executableTarget,
  LAZY_MODULE_PATHS,
  missingRuntimeMessage,
  parseCompileArgs,
  PERMISSIONS,
  planRuntimes,
  type RuntimeProbe,
  runtimeZipPath,
  sha256sumsText,
  SIGNER_SCRIPT,
  type Target,
  TARGETS,
} from "../../scripts/compile.ts";
import { APP, APP_NO_ACCESS, MAILBOX, SECRET, startTestBed, type TestBed } from "../bed/testbed.ts";
import { secretArgs } from "../e2e/cli.ts";
import { findPwsh, importIntoStore } from "../bed/dotnet_store.ts";
import { LAZY_MODULES } from "../../src/lazy.ts";

const ROOT = join(import.meta.dirname!, "..", "..");
const COMPILE = join(ROOT, "scripts", "compile.ts");
const MAIN = join(ROOT, "src", "main.ts");

Deno.test("compile: the five release targets, .exe only on Windows", () => {
  assert.deepEqual([...TARGETS], [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
  ]);
  assert.equal(binaryName("x86_64-pc-windows-msvc"), "Get-IMAPAccessToken.exe");
  assert.equal(binaryName("aarch64-apple-darwin"), "Get-IMAPAccessToken");
  assert.equal(
    binaryPath("x86_64-unknown-linux-gnu"),
    "x86_64-unknown-linux-gnu/Get-IMAPAccessToken",
  );
});

Deno.test("compile: permissions are baked in, named one by one, never -A", async () => {
  assert.deepEqual(
    [...PERMISSIONS],
    ["--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-run"],
  );
  const args = compileArgs("aarch64-apple-darwin", "/out/bin", "/src/main.ts");
  assert.equal(args[0], "compile");
  for (const p of PERMISSIONS) assert.ok(args.includes(p), p);
  assert.ok(args.includes("--no-prompt"));
  // Only what main.ts reaches is embedded, and the lockfile is not rewritten by a release build.
  assert.ok(args.includes("--exclude-unused-npm"));
  assert.ok(args.includes("--frozen"));
  // The store's signer script travels inside the binary.
  assert.equal(args[args.indexOf("--include") + 1], SIGNER_SCRIPT);
  assert.ok(SIGNER_SCRIPT.endsWith("/src/auth/store_signer.ps1"));
  await Deno.stat(SIGNER_SCRIPT);
  // So do the modules src/lazy.ts loads (deno compile cannot see them from main.ts).
  const included = args.flatMap((a, i) => args[i - 1] === "--include" ? [a] : []);
  assert.equal(LAZY_MODULE_PATHS.length, LAZY_MODULES.length);
  for (const path of LAZY_MODULE_PATHS) {
    assert.ok(included.includes(path), path);
    await Deno.stat(path);
  }
  for (const wide of ["-A", "--allow-all", "--allow-sys", "--allow-ffi", "--allow-import"]) {
    assert.ok(!args.some((a) => a === wide || a.startsWith(`${wide}=`)), wide);
  }
  assert.deepEqual(args.slice(args.indexOf("--target"), args.indexOf("--target") + 2), [
    "--target",
    "aarch64-apple-darwin",
  ]);
  assert.deepEqual(args.slice(args.indexOf("--output"), args.indexOf("--output") + 2), [
    "--output",
    "/out/bin",
  ]);
  assert.equal(args.at(-1), "/src/main.ts");
});

Deno.test("compile: arguments pick targets, --out and --download", () => {
  assert.deepEqual(parseCompileArgs([]), {
    targets: [...TARGETS],
    outDir: undefined,
    download: false,
  });
  assert.deepEqual(
    parseCompileArgs(["x86_64-apple-darwin", "x86_64-unknown-linux-gnu", "x86_64-apple-darwin"]),
    {
      targets: ["x86_64-apple-darwin", "x86_64-unknown-linux-gnu"],
      outDir: undefined,
      download: false,
    },
  );
  assert.deepEqual(parseCompileArgs(["--out", "/tmp/x", "--download"]), {
    targets: [...TARGETS],
    outDir: "/tmp/x",
    download: true,
  });
  assert.equal(parseCompileArgs(["--out=/tmp/y"]).outDir, "/tmp/y");
  assert.throws(() => parseCompileArgs(["x86_64-linux"]), CompileUsageError);
  assert.throws(() => parseCompileArgs(["--out"]), CompileUsageError);
});

function probe(extra: Partial<RuntimeProbe> = {}): RuntimeProbe {
  return { version: "2.9.6", denoDir: "/home/u/.cache/deno", cached: new Set(), ...extra };
}

Deno.test("compile: each target's runtime comes from DENORT_BIN, DENO_DIR or nowhere", () => {
  const linux: Target = "x86_64-unknown-linux-gnu";
  const mac: Target = "aarch64-apple-darwin";
  // Nothing provided: everything is missing (no silent download attempt).
  assert.deepEqual(planRuntimes([linux, mac], probe()).missing, [linux, mac]);
  // --download leaves it to deno.
  assert.equal(planRuntimes([mac], probe(), true).sources.get(mac), "download");
  // A pre-filled cache.
  const cached = planRuntimes([linux, mac], probe({ cached: new Set([mac]) }));
  assert.deepEqual(cached.missing, [linux]);
  assert.equal(cached.sources.get(mac), "DENO_DIR");
  // DENORT_BIN serves the target it was built for, and only that one.
  const bin = probe({ denortBin: "/x/denort", denortBinExists: true, denortBinTarget: linux });
  const withBin = planRuntimes([linux, mac], bin);
  assert.equal(withBin.sources.get(linux), "DENORT_BIN");
  assert.deepEqual(withBin.missing, [mac]);
  // Of unknown format: trusted for a single-target build only.
  const unknown = probe({ denortBin: "/x/denort", denortBinExists: true, denortBinTarget: null });
  assert.equal(planRuntimes([mac], unknown).sources.get(mac), "DENORT_BIN");
  assert.deepEqual(planRuntimes([linux, mac], unknown).missing, [linux, mac]);
  // The deno executable itself, or a missing file, is no runtime.
  const deno = { ...bin, denortBinIsDeno: true };
  assert.deepEqual(planRuntimes([linux], deno).missing, [linux]);
  assert.deepEqual(planRuntimes([linux], { ...bin, denortBinExists: false }).missing, [linux]);
});

Deno.test("compile: the missing-runtime message says what is missing and how to provide it", () => {
  const missing: Target[] = ["x86_64-apple-darwin", "x86_64-pc-windows-msvc"];
  const text = missingRuntimeMessage(missing, probe());
  assert.ok(!text.includes("\n"), "one paragraph");
  for (const target of missing) {
    assert.ok(text.includes(target));
    assert.ok(text.includes(runtimeZipPath("/home/u/.cache/deno", "2.9.6", target)), target);
  }
  assert.match(text, /denort/);
  assert.match(text, /DENORT_BIN is not set/);
  assert.match(text, /DENO_DIR/);
  assert.match(text, /https:\/\/dl\.deno\.land\/release\/v2\.9\.6\/denort-<target>\.zip/);
  assert.match(text, /--download/);
  assert.equal(
    runtimeZipPath("/d", "2.9.6", "aarch64-apple-darwin"),
    join("/d", "dl", "release", "v2.9.6", "denort-aarch64-apple-darwin.zip"),
  );
  const self = missingRuntimeMessage(
    ["x86_64-unknown-linux-gnu"],
    probe({ denortBin: "/usr/bin/deno", denortBinExists: true, denortBinIsDeno: true }),
  );
  assert.match(self, /DENORT_BIN is set to \/usr\/bin\/deno, the deno executable itself/);
  const other = missingRuntimeMessage(
    ["x86_64-apple-darwin"],
    probe({
      denortBin: "/x/denort",
      denortBinExists: true,
      denortBinTarget: "x86_64-unknown-linux-gnu",
    }),
  );
  assert.match(other, /is a runtime for x86_64-unknown-linux-gnu only/);
  assert.match(
    missingRuntimeMessage(["x86_64-apple-darwin"], probe({ denortBin: "/nope" })),
    /DENORT_BIN is set to \/nope, which does not exist/,
  );
  // After a failed --download, the message does not suggest --download again.
  const failed = missingRuntimeMessage(["x86_64-apple-darwin"], probe(), true);
  assert.match(failed, /could not download it/);
  assert.doesNotMatch(failed, /--download/);
});

function header(bytes: [number, number][], size = 128): Uint8Array {
  const h = new Uint8Array(size);
  for (const [at, value] of bytes) h[at] = value;
  return h;
}

Deno.test("compile: the platform of a runtime is read from its executable header", () => {
  const elf = (machine: number) =>
    header([[0, 0x7f], [1, 0x45], [2, 0x4c], [3, 0x46], [4, 2], [5, 1], [18, machine]]);
  assert.equal(executableTarget(elf(0x3e)), "x86_64-unknown-linux-gnu");
  assert.equal(executableTarget(elf(0xb7)), "aarch64-unknown-linux-gnu");
  assert.equal(executableTarget(elf(0x28)), null, "32-bit ARM machine type");
  const macho = (cpu: number) =>
    header([[0, 0xcf], [1, 0xfa], [2, 0xed], [3, 0xfe], [4, cpu], [7, 0x01]]);
  assert.equal(executableTarget(macho(0x07)), "x86_64-apple-darwin");
  assert.equal(executableTarget(macho(0x0c)), "aarch64-apple-darwin");
  const pe = (lo: number, hi: number) =>
    header([[0, 0x4d], [1, 0x5a], [0x3c, 0x80], [0x80, 0x50], [0x81, 0x45], [0x84, lo], [
      0x85,
      hi,
    ]], 256);
  assert.equal(executableTarget(pe(0x64, 0x86)), "x86_64-pc-windows-msvc");
  assert.equal(executableTarget(pe(0x64, 0xaa)), null, "Windows on ARM: no such target");
  assert.equal(executableTarget(new TextEncoder().encode("#!/bin/sh\n")), null);
  assert.equal(executableTarget(new Uint8Array(0)), null);
  // The deno running this test is a real executable of a known platform.
  const own = new Uint8Array(4096);
  using file = Deno.openSync(Deno.execPath());
  file.readSync(own);
  if ((TARGETS as readonly string[]).includes(Deno.build.target)) {
    assert.equal(executableTarget(own), Deno.build.target);
  }
});

/** deno compile's listing for this project, as printed by Deno 2.9.6 (shortened). */
const CLEAN_LISTING = `Compile src/main.ts to dist/x86_64-unknown-linux-gnu/Get-IMAPAccessToken

Embedded Files

Get-IMAPAccessToken
├─┬ .deno_compile_node_modules (7.29MB - 7.01MB unique)
│ └─┬ localhost (7.29MB - 7.01MB unique)
│   ├─┬ @azure (5.35MB - 5.08MB unique)
│   │ ├── msal-common/* (2.89MB - 2.62MB unique)
│   │ └── msal-node/* (2.46MB - 2.46MB unique)
│   ├── node-forge/1.4.3/* (1.63MB - 1.63MB unique)
│   └── semver/7.8.6/* (118.66KB - 117.44KB unique)
└─┬ src (414.74KB)
  ├─┬ auth (171.49KB)
  │ ├── cache.ts (49.52KB)
  │ └── user.ts (20.17KB)
  ├── main.ts (8.77KB)
  └── version.ts (434B)

Files: 7.65MB
Metadata: 2.83KB
Remote modules: 12B
`;

Deno.test("compile: the embedded-files check passes this project and catches what must not ship", () => {
  assert.deepEqual(embeddedProblems(CLEAN_LISTING), []);
  // With colours, as deno prints them on a terminal.
  assert.deepEqual(embeddedProblems(CLEAN_LISTING.replaceAll("src (", "\x1b[0msrc (")), []);
  const bad = CLEAN_LISTING
    .replace("│   ├── node-forge", "│   ├── playwright-core/1.65.1/* (13.34MB)\n│   ├── node-forge")
    .replace("│   ├─┬ @azure", "│   ├─┬ @types (2.53MB)\n│   ├─┬ @azure")
    .replace("  ├── main.ts", "  ├── main_test.ts (1KB)\n  ├── main.ts")
    .replace("└─┬ src (414.74KB)", "├── test/e2e/* (1MB)\n├── dist/* (100MB)\n└─┬ src (414.74KB)");
  assert.deepEqual(embeddedProblems(bad).sort(), [
    "@types",
    "dist/*",
    "main_test.ts",
    "playwright-core/1.65.1/*",
    "test/e2e/*",
  ]);
});

Deno.test("compile: SHA256SUMS in sha256sum's format, sorted by path", () => {
  assert.equal(
    sha256sumsText([
      { path: "x86_64-unknown-linux-gnu/Get-IMAPAccessToken", sha256: "b".repeat(64) },
      { path: "Get-IMAPAccessToken.ps1", sha256: "a".repeat(64) },
    ]),
    `${"a".repeat(64)}  Get-IMAPAccessToken.ps1\n` +
      `${"b".repeat(64)}  x86_64-unknown-linux-gnu/Get-IMAPAccessToken\n`,
  );
});

async function runCompile(args: string[], env: Record<string, string>) {
  const environment = Deno.env.toObject();
  delete environment.DENORT_BIN;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", COMPILE, ...args],
    clearEnv: true,
    env: { ...environment, NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("compile: without a runtime the task stops with the message, no stack trace", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gia-compile-" });
  try {
    const denoDir = join(dir, "deno-dir");
    const out = join(dir, "dist");
    const r = await runCompile(["x86_64-apple-darwin", "--out", out], { DENO_DIR: denoDir });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, "");
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^ERROR: Cannot build x86_64-apple-darwin: /);
    assert.ok(
      lines[0].includes(runtimeZipPath(denoDir, Deno.version.deno, "x86_64-apple-darwin")),
      lines[0],
    );
    assert.doesNotMatch(r.stderr, /Stack backtrace|^\s+at /m);
    assert.equal(await Deno.stat(out).then(() => true, () => false), false, "nothing written");

    // DENORT_BIN pointing at deno itself is refused, by name.
    const self = await runCompile(["x86_64-unknown-linux-gnu", "--out", out], {
      DENO_DIR: denoDir,
      DENORT_BIN: Deno.execPath(),
    });
    assert.equal(self.code, 1);
    assert.match(self.stderr, /the deno executable itself/);

    const usage = await runCompile(["linux"], { DENO_DIR: denoDir });
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^ERROR: unknown target or option 'linux'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  command: string[],
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<Run> {
  const child = new Deno.Command(command[0], {
    args: [...command.slice(1), ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    // The shim must find the binary, not the command the pwsh tests use.
    env: { NO_COLOR: "1", GET_IMAP_ACCESS_TOKEN_COMMAND: "", ...env },
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The core success and failure cases, for any way of running the tool. */
async function coreCases(t: Deno.TestContext, bed: TestBed, command: string[]): Promise<void> {
  const secret = (clientId = APP) => [...bed.common(), ...secretArgs({ clientId })];
  const json = (r: Run) => {
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    }
  };
  const imap = ["-Protocol", "IMAP", "-Port", String(bed.exchange.imapPort)];
  const pop3 = ["-Protocol", "POP3", "-Port", String(bed.exchange.pop3Port)];

  await t.step("IMAP with a secret: exit 0, then the cached token is used", async () => {
    const first = await run(command, [...secret(), ...imap, "-OutputFormat", "Json"]);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(json(first).folders.includes("INBOX"));
    assert.equal(json(first).token.fromCache, false);
    // --allow-write: the cache was written; --allow-read: it is read back.
    const again = await run(command, [...secret(), ...imap, "-OutputFormat", "Json"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(json(again).token.fromCache, true);
  });

  await t.step("POP3 with a secret from stdin: exit 0", async () => {
    const args = [...secret(), ...pop3, "-NoTokenCache"];
    args[args.indexOf(SECRET)] = "-";
    const r = await run(command, args, {}, `${SECRET}\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\+OK 3 14523/m);
  });

  // --allow-run starts the store's signer (pwsh), --allow-read reads its script, which a
  // compiled binary carries inside (compileArgs' --include).
  const pwsh = findPwsh();
  await t.step({
    name: "certificate by thumbprint from the store, signed by pwsh: exit 0" +
      (pwsh ? "" : " (skipped: pwsh not found)"),
    ignore: !pwsh && Deno.env.get("CI") !== "true",
    async fn() {
      assert.ok(pwsh, "pwsh not found (scripts/test.sh installs it)");
      const home = await Deno.makeTempDir({ prefix: "gia-compile-home-" });
      try {
        const [thumbprint] = await importIntoStore(pwsh, home, [
          { path: bed.cert.pfxFile, password: bed.cert.password },
        ]);
        const r = await run(command, [
          ...bed.common().filter((a, i, all) =>
            a !== "-TimeoutSeconds" && all[i - 1] !== "-TimeoutSeconds"
          ),
          "-TimeoutSeconds",
          "30",
          "-clientId",
          APP,
          "-clientcertificate",
          thumbprint,
          "-targetMailbox",
          MAILBOX,
          ...imap,
          "-NoTokenCache",
        ], {
          HOME: home,
          GET_IMAPACCESSTOKEN_CERT_DIR: home,
          GET_IMAPACCESSTOKEN_POWERSHELL: pwsh,
        });
        assert.equal(r.code, 0, r.stderr);
      } finally {
        await Deno.remove(home, { recursive: true });
      }
    },
  });

  await t.step("certificate (PEM file): exit 0", async () => {
    const r = await run(command, [
      ...bed.common(),
      "-clientId",
      APP,
      "-clientcertificate",
      bed.cert.combinedFile,
      "-targetMailbox",
      MAILBOX,
      ...imap,
      "-NoTokenCache",
    ]);
    assert.equal(r.code, 0, r.stderr);
  });

  await t.step("wrong secret: exit 3; no mailbox access: exit 6; bad usage: exit 2", async () => {
    const args = [...secret(), ...imap, "-NoTokenCache"];
    args[args.indexOf(SECRET)] = "wrong";
    const wrong = await run(command, args);
    assert.equal(wrong.code, 3, wrong.stderr);
    assert.match(wrong.stderr, /AADSTS7000215/);
    const noAccess = await run(command, [...secret(APP_NO_ACCESS), ...imap, "-NoTokenCache"]);
    assert.equal(noAccess.code, 6, noAccess.stderr);
    const usage = await run(command, ["-tenantID", "t", "-client", "x"]);
    assert.equal(usage.code, 2, usage.stderr);
  });

  await t.step("--version: exit 0", async () => {
    const r = await run(command, ["--version"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Get-IMAPAccessToken/i);
  });
}

Deno.test("compile: the baked-in permissions suffice for the core flows (run from source)", async (t) => {
  const bed = await startTestBed();
  try {
    await coreCases(t, bed, [
      Deno.execPath(),
      "run",
      ...PERMISSIONS,
      "--no-prompt",
      "--quiet",
      MAIN,
    ]);
  } finally {
    await bed.close();
  }
});

const DENORT_BIN = Deno.env.get("DENORT_BIN");
const LINUX_X64 = Deno.build.target === "x86_64-unknown-linux-gnu";
const skipReason = !DENORT_BIN
  ? "DENORT_BIN not set"
  : !LINUX_X64
  ? `this machine is ${Deno.build.target}`
  : "";

Deno.test({
  name: "compile: a real linux x64 binary runs the core flows" +
    (skipReason ? ` (skipped: ${skipReason})` : ""),
  ignore: skipReason !== "",
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "gia-binary-" });
    const bed = await startTestBed();
    try {
      const out = join(dir, "dist");
      const build = await runCompile(["x86_64-unknown-linux-gnu", "--out", out], {
        DENORT_BIN: DENORT_BIN!,
      });
      assert.equal(build.code, 0, build.stderr);
      const binary = join(out, "x86_64-unknown-linux-gnu", "Get-IMAPAccessToken");
      const sums = await Deno.readTextFile(join(out, "SHA256SUMS"));
      assert.match(sums, /^[0-9a-f]{64} {2}x86_64-unknown-linux-gnu\/Get-IMAPAccessToken$/m);
      assert.match(sums, /^[0-9a-f]{64} {2}Get-IMAPAccessToken\.ps1$/m);
      assert.match(sums, /^[0-9a-f]{64} {2}Get-IMAPAccessToken\.Shim\.dll$/m);
      console.log(`binary size: ${((await Deno.stat(binary)).size / 1024 / 1024).toFixed(1)} MB`);
      await coreCases(t, bed, [binary]);
      const pwsh = findPwsh();
      await t.step({
        name: "the shim in dist/ finds and runs the binary beside it" +
          (pwsh ? "" : " (skipped: pwsh not found)"),
        ignore: !pwsh,
        async fn() {
          const r = await run([pwsh!, "-NoLogo", "-NoProfile", "-NonInteractive"], [
            "-File",
            join(out, "Get-IMAPAccessToken.ps1"),
            ...bed.common(),
            ...secretArgs(),
            "-Port",
            String(bed.exchange.imapPort),
          ], { POWERSHELL_UPDATECHECK: "Off", POWERSHELL_TELEMETRY_OPTOUT: "1" });
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout, /OK AUTHENTICATE completed/);
        },
      });
    } finally {
      await bed.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
