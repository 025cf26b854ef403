/**
 * `deno task shim [folder]`: builds the PowerShell script's helper (scripts/shim/Shim.cs) with the
 * .NET SDK into Get-IMAPAccessToken.Shim.dll, by default beside scripts/Get-IMAPAccessToken.ps1,
 * where a checkout and the tests use it. scripts/compile.ts puts it into dist/ for a release;
 * `deno task ok` builds it before the tests.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const SHIM_DLL = "Get-IMAPAccessToken.Shim.dll";

const SCRIPTS = dirname(fileURLToPath(import.meta.url));
const PROJECT = join(SCRIPTS, "shim", "Get-IMAPAccessToken.Shim.csproj");

/** Whether the .NET SDK's `dotnet` can be run. */
export async function haveDotnet(): Promise<boolean> {
  try {
    const out = await new Deno.Command("dotnet", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

/** Builds the helper into `folder`; returns the DLL's path. Throws with dotnet's output on failure. */
export async function buildShim(folder = SCRIPTS): Promise<string> {
  const out = await Deno.makeTempDir({ prefix: "gia-shim-" });
  const work = await Deno.makeTempDir({ prefix: "gia-shim-obj-" });
  try {
    const result = await new Deno.Command("dotnet", {
      args: [
        "build",
        PROJECT,
        "--configuration",
        "Release",
        "--nologo",
        "--verbosity",
        "quiet",
        "--output",
        out,
        // Intermediate files outside the source tree.
        `-p:BaseIntermediateOutputPath=${work}/`,
        `-p:MSBuildProjectExtensionsPath=${work}/`,
      ],
      env: { DOTNET_CLI_TELEMETRY_OPTOUT: "1", DOTNET_NOLOGO: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!result.success) {
      const text = new TextDecoder().decode(result.stdout) +
        new TextDecoder().decode(result.stderr);
      throw new Error(`dotnet build ${PROJECT} failed:\n${text}`);
    }
    const target = join(folder, SHIM_DLL);
    await Deno.copyFile(join(out, SHIM_DLL), target);
    return target;
  } finally {
    await Deno.remove(out, { recursive: true });
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) {
  if (!await haveDotnet()) {
    console.error("deno task shim: the .NET SDK (dotnet) is needed to build the script's helper");
    Deno.exit(1);
  }
  console.log(await buildShim(Deno.args[0]));
}
