/**
 * .NET's certificate store for tests: finding pwsh, and importing certificate files into
 * CurrentUser\My of a private HOME (on Linux a folder under ~/.dotnet) with the real
 * `X509Store.Add`, as an admin's `Import-PfxCertificate` or certmgr would on Windows.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

export function findPwsh(): string | undefined {
  const home = Deno.env.get("HOME");
  const dirs = [
    ...(Deno.env.get("PATH") ?? "").split(":"),
    home ? join(home, ".dotnet", "tools") : "",
  ];
  for (const dir of dirs) {
    try {
      if (dir && Deno.statSync(join(dir, "pwsh")).isFile) return join(dir, "pwsh");
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Imports certificate files into CurrentUser\My of `home` with .NET's X509Store.Add. */
export async function importIntoStore(
  pwsh: string,
  home: string,
  files: { path: string; password?: string }[],
): Promise<string[]> {
  const script = String.raw`
$flags = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::PersistKeySet
$store = [System.Security.Cryptography.X509Certificates.X509Store]::new('My', 'CurrentUser')
$store.Open('ReadWrite')
foreach ($item in ($env:IMPORT_FILES | ConvertFrom-Json)) {
  if ($item.password) {
    $cert = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($item.path, $item.password, $flags)
  } else {
    $cert = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($item.path)
  }
  $store.Add($cert)
  $cert.Thumbprint
}
$store.Close()`;
  const out = await new Deno.Command(pwsh, {
    args: ["-NoProfile", "-NonInteractive", "-Command", script],
    env: { HOME: home, IMPORT_FILES: JSON.stringify(files) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  assert.equal(out.code, 0, decoder.decode(out.stderr));
  return decoder.decode(out.stdout).trim().split(/\s+/);
}
