/**
 * `deno task compile [target...] [--out DIR] [--download]`: single binaries in
 * `dist/<target>/Get-IMAPAccessToken[.exe]`, the PowerShell shim in
 * `dist/Get-IMAPAccessToken.ps1` with its helper `dist/Get-IMAPAccessToken.Shim.dll` (built with
 * the .NET SDK, scripts/build_shim.ts) and `dist/SHA256SUMS`.
 *
 * `deno compile` joins the program to Deno's runtime `denort`, one per target,
 * which it normally downloads from Deno's release host. Where that host cannot
 * be reached the runtime must be provided: `DENORT_BIN` (an unpacked denort,
 * for the one target it was built for) or the release zip pre-filled in
 * `$DENO_DIR/dl/release/v<version>/denort-<target>.zip`. The build checks this
 * before compiling anything and otherwise stops with one paragraph saying what
 * is missing; `--download` lets deno try the download instead.
 *
 * Everything but `main()` is pure and tested without network
 * (test/scripts/compile_test.ts).
 */
import { basename, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { LAZY_MODULES } from "../src/lazy.ts";
import { buildShim, haveDotnet, SHIM_DLL } from "./build_shim.ts";

export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;
export type Target = typeof TARGETS[number];

/**
 * Baked into the binary, nothing wider (no -A): network for Entra ID and the
 * mail server, read for certificates and CA files, write for the token cache,
 * env for settings and the cache location, run only to open a browser for
 * user sign-in. Checked by running the core flows from source with exactly
 * these (test/scripts/compile_test.ts): msal-node needs no --allow-sys.
 */
export const PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
] as const;

export const PROGRAM = "Get-IMAPAccessToken";
/** Data files the program reads from its own source tree (embedded with --include). */
export const SIGNER_SCRIPT = fileURLToPath(
  new URL("../src/auth/store_signer.ps1", import.meta.url),
);
/** The modules src/lazy.ts loads, as files: embedded with --include. */
export const LAZY_MODULE_PATHS = LAZY_MODULES.map((m) =>
  fileURLToPath(new URL(`../src/${m}`, import.meta.url))
);
export const SHIM = "Get-IMAPAccessToken.ps1";
export const SUMS = "SHA256SUMS";
export const RELEASE_HOST = "https://dl.deno.land";

export function binaryName(target: Target): string {
  return target.includes("windows") ? `${PROGRAM}.exe` : PROGRAM;
}

/** Path of a target's binary inside dist/, with forward slashes (as in SHA256SUMS). */
export function binaryPath(target: Target): string {
  return `${target}/${binaryName(target)}`;
}

export function isTarget(value: string): value is Target {
  return (TARGETS as readonly string[]).includes(value);
}

/** A mistake in the build's own command line: exit 2. */
export class CompileUsageError extends Error {
  override readonly name = "CompileUsageError";
}

export interface CompileRequest {
  targets: Target[];
  /** Output folder; default dist/ in the repository. */
  outDir?: string;
  /** Let deno compile download runtimes that are not provided. */
  download: boolean;
}

export function parseCompileArgs(args: readonly string[]): CompileRequest {
  const targets: Target[] = [];
  let outDir: string | undefined;
  let download = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--download") {
      download = true;
    } else if (arg === "--out" || arg.startsWith("--out=")) {
      outDir = arg === "--out" ? args[++i] : arg.slice("--out=".length);
      if (!outDir) throw new CompileUsageError("--out needs a folder.");
    } else if (isTarget(arg)) {
      if (!targets.includes(arg)) targets.push(arg);
    } else {
      throw new CompileUsageError(
        `unknown target or option '${arg}'. Targets: ${TARGETS.join(", ")}; ` +
          `options: --out DIR, --download.`,
      );
    }
  }
  return { targets: targets.length > 0 ? targets : [...TARGETS], outDir, download };
}

/** The `deno compile` command line for one target (without the deno executable). */
export function compileArgs(target: Target, output: string, entry: string): string[] {
  return [
    "compile",
    // The lockfile decides what is embedded: never update it during a release build.
    "--frozen",
    // Only npm packages main.ts reaches: without this the whole lockfile snapshot is embedded,
    // including the test-only playwright-core (13 MB) and type packages.
    "--exclude-unused-npm",
    ...PERMISSIONS,
    "--no-prompt",
    // The certificate store's signer script, read at run time beside its module.
    "--include",
    SIGNER_SCRIPT,
    // Modules loaded through src/lazy.ts: deno compile cannot see them from main.ts.
    ...LAZY_MODULE_PATHS.flatMap((path) => ["--include", path]),
    "--target",
    target,
    "--output",
    output,
    entry,
  ];
}

/** Where deno compile looks for a pre-downloaded runtime. */
export function runtimeZipPath(denoDir: string, version: string, target: Target): string {
  return join(denoDir, "dl", "release", `v${version}`, `denort-${target}.zip`);
}

export function runtimeUrl(version: string, target: Target): string {
  return `${RELEASE_HOST}/release/v${version}/denort-${target}.zip`;
}

/** What was found on this machine for the runtimes. */
export interface RuntimeProbe {
  /** Deno's version: runtimes must match it exactly. */
  version: string;
  denoDir: string;
  /** Value of DENORT_BIN, if set. */
  denortBin?: string;
  /** Whether the DENORT_BIN file exists. */
  denortBinExists?: boolean;
  /** The platform DENORT_BIN was built for, read from its header; null if unknown. */
  denortBinTarget?: Target | null;
  /** DENORT_BIN is the deno executable itself, which cannot serve as a runtime. */
  denortBinIsDeno?: boolean;
  /** Targets whose zip exists in the DENO_DIR cache. */
  cached: ReadonlySet<Target>;
}

export type RuntimeSource = "DENORT_BIN" | "DENO_DIR" | "download";

export interface RuntimePlan {
  sources: Map<Target, RuntimeSource>;
  missing: Target[];
}

/** Which runtime each requested target will be built with; DENORT_BIN wins over the cache. */
export function planRuntimes(
  targets: readonly Target[],
  probe: RuntimeProbe,
  download = false,
): RuntimePlan {
  const usableBin = probe.denortBin !== undefined && probe.denortBinExists === true &&
    !probe.denortBinIsDeno;
  const sources = new Map<Target, RuntimeSource>();
  const missing: Target[] = [];
  for (const target of targets) {
    // A DENORT_BIN of unknown format is trusted only for a single-target build.
    const binFits = usableBin &&
      (probe.denortBinTarget === target ||
        (probe.denortBinTarget === null && targets.length === 1));
    if (binFits) sources.set(target, "DENORT_BIN");
    else if (probe.cached.has(target)) sources.set(target, "DENO_DIR");
    else if (download) sources.set(target, "download");
    else missing.push(target);
  }
  return { sources, missing };
}

/**
 * One paragraph: which runtimes are missing, where they would be looked for, how to provide them.
 * `downloadFailed`: deno compile was allowed to download and could not.
 */
export function missingRuntimeMessage(
  missing: readonly Target[],
  probe: RuntimeProbe,
  downloadFailed = false,
): string {
  const parts: string[] = [
    `Cannot build ${missing.join(", ")}: deno compile needs Deno's runtime "denort" ` +
    `${probe.version} for each target, and ` +
    (downloadFailed
      ? "could not download it (error above)."
      : "none was provided (the task lets deno download it only with --download)."),
  ];
  if (probe.denortBin !== undefined) {
    if (probe.denortBinExists !== true) {
      parts.push(`DENORT_BIN is set to ${probe.denortBin}, which does not exist.`);
    } else if (probe.denortBinIsDeno) {
      parts.push(
        `DENORT_BIN is set to ${probe.denortBin}, the deno executable itself, which cannot ` +
          `serve as the runtime (the result would behave like plain deno).`,
      );
    } else if (probe.denortBinTarget) {
      parts.push(
        `DENORT_BIN (${probe.denortBin}) is a runtime for ${probe.denortBinTarget} only.`,
      );
    } else {
      parts.push(
        `DENORT_BIN (${probe.denortBin}) is not a recognised executable; it is used only ` +
          `when exactly one target is built.`,
      );
    }
  } else {
    parts.push("DENORT_BIN is not set.");
  }
  const zips = missing.map((t) => runtimeZipPath(probe.denoDir, probe.version, t));
  parts.push(`Not found: ${zips.join(", ")}.`);
  parts.push(
    `Provide each runtime either by downloading its zip ` +
      `(${RELEASE_HOST}/release/v${probe.version}/denort-<target>.zip) on a machine with internet access and copying it to that path (set DENO_DIR to use ` +
      `another cache folder), or by setting DENORT_BIN to an unpacked denort executable and ` +
      `building its target alone (e.g. DENORT_BIN=/path/to/denort deno task compile ` +
      `${missing[0]})` +
      (downloadFailed ? "." : "; or add --download to let deno compile fetch them itself."),
  );
  return parts.join(" ");
}

/** The deno compile target an executable was built for, from its first bytes; null if unknown. */
export function executableTarget(header: Uint8Array): Target | null {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const has = (n: number) => header.byteLength >= n;
  // ELF, 64-bit, little-endian: e_machine at 18.
  if (
    has(20) && header[0] === 0x7f && header[1] === 0x45 && header[2] === 0x4c &&
    header[3] === 0x46
  ) {
    if (header[4] !== 2 || header[5] !== 1) return null;
    const machine = view.getUint16(18, true);
    if (machine === 0x3e) return "x86_64-unknown-linux-gnu";
    if (machine === 0xb7) return "aarch64-unknown-linux-gnu";
    return null;
  }
  // Mach-O 64-bit, little-endian (MH_MAGIC_64): cputype at 4.
  if (has(8) && view.getUint32(0, true) === 0xfeedfacf) {
    const cpu = view.getUint32(4, true);
    if (cpu === 0x01000007) return "x86_64-apple-darwin";
    if (cpu === 0x0100000c) return "aarch64-apple-darwin";
    return null;
  }
  // PE: "MZ", e_lfanew at 0x3c points to "PE\0\0" followed by the machine type.
  if (has(0x40) && header[0] === 0x4d && header[1] === 0x5a) {
    const pe = view.getUint32(0x3c, true);
    if (!has(pe + 6) || view.getUint32(pe, true) !== 0x00004550) return null;
    return view.getUint16(pe + 4, true) === 0x8664 ? "x86_64-pc-windows-msvc" : null;
  }
  return null;
}

/**
 * Things in deno compile's "Embedded Files" listing that must not ship: tests,
 * build output, leftovers of node_modules folders, test-only or type-only npm
 * packages. Returns the offending names (empty when the bundle is clean).
 */
export function embeddedProblems(listing: string): string[] {
  const start = listing.indexOf("Embedded Files");
  if (start < 0) return [];
  const problems: string[] = [];
  // deno colours the listing; strip the colour codes and the tree drawing.
  // deno-lint-ignore no-control-regex
  const plain = listing.slice(start).replace(/\x1b\[[0-9;]*m/g, "");
  for (const line of plain.split("\n").slice(1)) {
    if (/^(Files|Metadata|Remote modules):/.test(line.trim())) break;
    const name = line.replace(/^[\s│├└─┬]+/, "").split(" (")[0].trim();
    if (
      /_test\.[cm]?[jt]sx?$/.test(name) || /^(test|dist|node_modules)(\/|$)/.test(name) ||
      /^(playwright-core|@types)(\/|$)/.test(name)
    ) {
      problems.push(name);
    }
  }
  return problems;
}

/** `sha256sum` format, which `sha256sum -c` and `shasum -a 256 -c` read. */
export function sha256sumsText(entries: readonly { path: string; sha256: string }[]): string {
  return [...entries]
    .sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
    .map((e) => `${e.sha256}  ${e.path}\n`)
    .join("");
}

// ---------------------------------------------------------------------------
// The build itself (I/O).

const ROOT = resolve(import.meta.dirname ?? ".", "..");
const ENTRY = join(ROOT, "src", "main.ts");
const SHIM_SOURCE = join(ROOT, "scripts", SHIM);

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readHeader(path: string): Promise<Uint8Array> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(4096);
  const n = await file.read(buffer);
  return buffer.subarray(0, n ?? 0);
}

async function realPath(path: string): Promise<string> {
  return await Deno.realPath(path).catch(() => path);
}

async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { denoDir: string };
  return info.denoDir;
}

async function probeRuntimes(): Promise<RuntimeProbe> {
  const version = Deno.version.deno;
  const dir = await denoDir();
  const cached = new Set<Target>();
  for (const target of TARGETS) {
    if (await exists(runtimeZipPath(dir, version, target))) cached.add(target);
  }
  const denortBin = Deno.env.get("DENORT_BIN") || undefined;
  const probe: RuntimeProbe = { version, denoDir: dir, cached, denortBin };
  if (denortBin !== undefined) {
    probe.denortBinExists = await exists(denortBin);
    if (probe.denortBinExists) {
      probe.denortBinIsDeno = await realPath(denortBin) === await realPath(Deno.execPath());
      probe.denortBinTarget = executableTarget(await readHeader(denortBin));
    }
  }
  return probe;
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** deno's output without its "Stack backtrace" section (the user needs the error, not Rust frames). */
function withoutBacktrace(text: string): string {
  const at = text.indexOf("Stack backtrace:");
  return (at < 0 ? text : text.slice(0, at)).trimEnd();
}

/** Environment for one deno compile run: DENORT_BIN only when it is this target's runtime. */
function compileEnv(source: RuntimeSource): { env: Record<string, string>; clearEnv: boolean } {
  const env = Deno.env.toObject();
  if (source !== "DENORT_BIN") delete env.DENORT_BIN;
  // Its listing goes to a log or CI output more often than to a terminal: no colour codes there.
  if (!Deno.stderr.isTerminal()) env.NO_COLOR = "1";
  return { env, clearEnv: true };
}

async function buildTarget(
  target: Target,
  source: RuntimeSource,
  outDir: string,
  showListing: boolean,
  probe: RuntimeProbe,
): Promise<{ ok: boolean; size?: number }> {
  const dir = join(outDir, target);
  // A failed build must not leave an older binary behind to be listed in SHA256SUMS.
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  const output = join(dir, binaryName(target));
  console.error(`Building ${target} (runtime from ${source}) ...`);
  const result = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(target, output, ENTRY),
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    ...compileEnv(source),
  }).output();
  const decoder = new TextDecoder();
  const text = decoder.decode(result.stdout) + decoder.decode(result.stderr);
  if (!result.success) {
    console.error(withoutBacktrace(text));
    if (source === "download" && /denort|base binary/i.test(text)) {
      console.error(`ERROR: ${missingRuntimeMessage([target], probe, true)}`);
    }
    console.error(`FAILED ${target} (deno compile exit ${result.code})`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    return { ok: false };
  }
  const problems = embeddedProblems(text);
  if (showListing || problems.length > 0) console.error(withoutBacktrace(text));
  if (problems.length > 0) {
    console.error(
      `FAILED ${target}: the binary embeds files that must not ship: ` +
        `${problems.join(", ")}.`,
    );
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    return { ok: false };
  }
  const { size } = await Deno.stat(output);
  const shown = output.startsWith(ROOT) ? relative(ROOT, output) : output;
  console.error(`built ${shown} (${megabytes(size)})`);
  return { ok: true, size };
}

/**
 * Copies the shim, builds its helper and writes SHA256SUMS over every binary, the shim and the
 * helper now in outDir.
 */
async function finishDist(outDir: string): Promise<void> {
  // An older helper and checksums must not stay behind when this build fails.
  for (const old of [SUMS, SHIM_DLL]) await Deno.remove(join(outDir, old)).catch(() => {});
  await Deno.copyFile(SHIM_SOURCE, join(outDir, SHIM));
  await buildShim(outDir);
  const entries: { path: string; sha256: string }[] = [];
  for (const path of [...TARGETS.map(binaryPath), SHIM, SHIM_DLL]) {
    const file = join(outDir, ...path.split("/"));
    if (await exists(file)) entries.push({ path, sha256: await sha256(file) });
  }
  await Deno.writeTextFile(join(outDir, SUMS), sha256sumsText(entries));
}

export async function main(args: readonly string[]): Promise<number> {
  let request: CompileRequest;
  try {
    request = parseCompileArgs(args);
  } catch (error) {
    if (!(error instanceof CompileUsageError)) throw error;
    console.error(`ERROR: ${error.message}`);
    return 2;
  }
  const outDir = resolve(request.outDir ?? join(ROOT, "dist"));
  const probe = await probeRuntimes();
  const plan = planRuntimes(request.targets, probe, request.download);
  if (plan.missing.length > 0) {
    console.error(`ERROR: ${missingRuntimeMessage(plan.missing, probe)}`);
    return 1;
  }
  if (!await haveDotnet()) {
    console.error(
      "ERROR: the .NET SDK (dotnet) is needed to build the PowerShell script's helper " +
        `(${SHIM_DLL}); install it or put it on PATH`,
    );
    return 1;
  }
  await Deno.mkdir(outDir, { recursive: true });
  const sizes: [Target, number][] = [];
  let failed = 0;
  for (const target of request.targets) {
    const { ok, size } = await buildTarget(
      target,
      plan.sources.get(target)!,
      outDir,
      sizes.length === 0,
      probe,
    );
    if (ok) sizes.push([target, size!]);
    else failed++;
  }
  try {
    await finishDist(outDir);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    console.error(`ERROR: the PowerShell script's helper: ${reason}`);
    return 1;
  }
  console.error(`\n${basename(outDir)}/ (${outDir}):`);
  for (const [target, size] of sizes) {
    console.error(`  ${binaryPath(target).padEnd(60)} ${megabytes(size).padStart(9)}`);
  }
  console.error(`  ${SHIM}\n  ${SHIM_DLL}\n  ${SUMS}`);
  if (failed > 0) console.error(`${failed} of ${request.targets.length} targets FAILED`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    // Unexpected (e.g. dist/ not writable): one line, no stack trace.
    console.error(`ERROR: ${error instanceof Error ? error.message : String(error)}`);
    code = 1;
  }
  Deno.exit(code);
}
