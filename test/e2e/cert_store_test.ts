/**
 * `-clientcertificate <thumbprint>` from the certificate store, with real PowerShell 7 and
 * .NET: fixtures go into a private HOME's CurrentUser\My with the real `X509Store.Add`, the
 * CLI runs as a child process, its signer is the real pwsh, and the fake Entra ID verifies
 * the assertion's signature against the registered certificate.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliResult, json, runCli } from "./cli.ts";
import { APP, MAILBOX, startTestBed } from "../bed/testbed.ts";
import { makeAppCertificate, makeEcCertificate } from "../bed/pki.ts";
import { decodeJwt } from "../bed/jwt.ts";
import { findPwsh, importIntoStore } from "../bed/dotnet_store.ts";

function base64urlOfHex(hex: string): string {
  const bytes = Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

function sha256Hex(pem: string): Promise<string> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return crypto.subtle.digest("SHA-256", der).then((d) =>
    Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("")
  );
}

const PWSH = findPwsh();
const needsPwsh = !PWSH && Deno.env.get("CI") !== "true";

Deno.test({
  name: `certificate store: thumbprints from .NET's CurrentUser\\My through the real pwsh signer${
    needsPwsh ? " (skipped: pwsh not found)" : ""
  }`,
  ignore: needsPwsh,
  fn: async (t) => {
    assert.ok(PWSH, "pwsh not found (scripts/test.sh installs it)");
    const bed = await startTestBed({ dovecot: true });
    const home = await Deno.makeTempDir({ prefix: "gia-store-home-" });
    try {
      const ec = (await makeEcCertificate(join(bed.dir, "ec"), "ec")).pfxFile;
      const password = bed.cert.password;
      const [app, unknown, ecThumb, noKey] = await importIntoStore(PWSH, home, [
        { path: bed.cert.pfxFile, password },
        { path: bed.unknownCert.pfxFile, password },
        { path: ec, password: "password" },
        // A .cer imported instead of the PFX: the certificate without its key.
        { path: (await makeAppCertificate(join(bed.dir, "nokey"), "nokey")).certFile },
      ]);
      assert.equal(app, bed.cert.sha1Thumbprint);
      const storeDir = join(home, ".dotnet", "corefx", "cryptography", "x509stores", "my");
      // An empty certificate folder: the store is where the thumbprint is found.
      const folder = await Deno.makeTempDir({ dir: bed.dir });
      const env = {
        HOME: home,
        GET_IMAPACCESSTOKEN_CERT_DIR: folder,
        GET_IMAPACCESSTOKEN_POWERSHELL: PWSH,
      };
      // pwsh takes a second or more to start on a busy machine: the test bed's 5 s limit is
      // replaced with a wider one (the hang test sets its own).
      const common = (...drop: string[]) => {
        const args = bed.common();
        for (const name of ["-TimeoutSeconds", ...drop]) {
          const at = args.indexOf(name);
          if (at >= 0) args.splice(at, 2);
        }
        return args;
      };
      const run = (thumbprint: string, extra: string[], more: Record<string, string> = {}) =>
        runCli([
          ...common(),
          ...(extra.includes("-TimeoutSeconds") ? [] : ["-TimeoutSeconds", "30"]),
          "-clientId",
          APP,
          "-clientcertificate",
          thumbprint,
          "-targetMailbox",
          MAILBOX,
          "-NoTokenCache",
          ...extra,
        ], { env: { ...env, ...more } });
      const lastAssertion = () => {
        const body = bed.entra.tokenRequests.at(-1)?.body ?? {};
        return decodeJwt(body.client_assertion ?? "");
      };
      const ex = bed.exchange;
      const noSecrets = (r: CliResult) => {
        assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY|signature/i);
      };

      await t.step(
        "IMAP: thumbprint in the store -> PS256 assertion -> login (exit 0)",
        async () => {
          const r = await run(app, [
            "-Protocol",
            "IMAP",
            "-Port",
            String(ex.imapPort),
            "-OutputFormat",
            "Json",
            "-Verbose",
          ]);
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.equal(json(r).ok, true);
          const jwt = lastAssertion();
          assert.equal(jwt.header.alg, "PS256");
          assert.equal(
            jwt.header["x5t#S256"],
            base64urlOfHex(await sha256Hex(bed.cert.certPem)),
          );
          assert.equal(jwt.payload.iss, APP);
          // -Verbose names the store, the subject and both thumbprints; never key material.
          assert.match(r.stderr, /from the certificate store CurrentUser\\My \(through .*pwsh\)/);
          assert.match(r.stderr, new RegExp(`SHA-1 ${app}, SHA-256 ${jwt.header["x5t#S256"]}`));
          assert.match(r.stderr, /CN=app-app/);
          noSecrets(r);
        },
      );

      await t.step("POP3 against Dovecot with the store certificate (exit 0)", async () => {
        const r = await run(app, ["-Protocol", "POP3", "-Port", String(bed.dovecot!.pop3sPort)]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stderr, /OK: POP3 login/);
        noSecrets(r);
      });

      await t.step(
        "the thumbprint as certmgr shows it (direction mark, spaces, lower case)",
        async () => {
          const pasted = `\u200e${app.toLowerCase().replace(/(..)(?!$)/g, "$1 ")}`;
          const r = await run(pasted, ["-Protocol", "IMAP", "-Port", String(ex.imapPort)]);
          assert.equal(r.code, 0, r.stdout + r.stderr);
        },
      );

      await t.step("a provider that refuses PSS: RS256 with x5t is accepted (exit 0)", async () => {
        const r = await run(
          app,
          ["-Protocol", "POP3", "-Port", String(ex.pop3Port), "-Verbose"],
          { GET_IMAPACCESSTOKEN_SIGNER_TEST: "refuse-pss" },
        );
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const jwt = lastAssertion();
        assert.equal(jwt.header.alg, "RS256");
        assert.equal(typeof jwt.header.x5t, "string");
        assert.equal(jwt.header["x5t#S256"], undefined);
        assert.match(r.stderr, /cannot sign with PSS \(Specified padding mode is not valid/);
      });

      await t.step("a thumbprint nowhere: exit 2 naming the store and the folder", async () => {
        const r = await run("00".repeat(20), ["-Protocol", "IMAP", "-Port", String(ex.imapPort)]);
        assert.equal(r.code, 2, r.stderr);
        const line = r.stderr.trim();
        assert.equal(line.split("\n").length, 1, line);
        assert.match(
          line,
          new RegExp(
            `^ERROR: -clientcertificate: no certificate with thumbprint 0{40} in the folder ` +
              `${folder} \\(it has no .*\\), nor in the certificate store CurrentUser\\\\My ` +
              `\\(import the certificate .*\\) \\[CERT_NOT_FOUND\\]$`,
          ),
        );
      });

      await t.step("no private key, EC key: exit 2, one line each", async () => {
        const none = await run(noKey, ["-Protocol", "IMAP", "-Port", String(ex.imapPort)]);
        assert.equal(none.code, 2, none.stderr);
        assert.match(
          none.stderr,
          /^ERROR: -clientcertificate: the certificate CN=app-nokey in CurrentUser\\My has no private key .* \[CERT_NO_KEY\]\n$/,
        );
        const ecKey = await run(ecThumb, ["-Protocol", "IMAP", "-Port", String(ex.imapPort)]);
        assert.equal(ecKey.code, 2, ecKey.stderr);
        assert.match(
          ecKey.stderr,
          /is not an RSA key \(ECC\); Entra ID certificate .* \[CERT_NOT_RSA\]/,
        );
      });

      await t.step(
        "a store certificate not registered with the app: exit 3, advice names both thumbprints",
        async () => {
          const r = await run(unknown, ["-Protocol", "IMAP", "-Port", String(ex.imapPort)]);
          assert.equal(r.code, 3, r.stderr);
          assert.match(r.stderr, /AADSTS700027/);
          const sha256 = base64urlOfHex(await sha256Hex(bed.unknownCert.certPem));
          assert.ok(r.stderr.includes(`thumbprint ${unknown} (SHA-1`), r.stderr);
          assert.ok(r.stderr.includes(`${sha256} (SHA-256 base64url`), r.stderr);
          const de = await run(unknown, [
            "-Protocol",
            "IMAP",
            "-Port",
            String(ex.imapPort),
            "-Language",
            "de",
          ]);
          assert.ok(de.stderr.includes(`Fingerabdruck ${unknown} (SHA-1`), de.stderr);
        },
      );

      await t.step(
        "no PowerShell: the variable is named; without one the store is skipped",
        async () => {
          const bad = await run(app, ["-Protocol", "IMAP", "-Port", String(ex.imapPort)], {
            GET_IMAPACCESSTOKEN_POWERSHELL: "/nonexistent/pwsh",
          });
          assert.equal(bad.code, 2);
          assert.match(
            bad.stderr,
            /GET_IMAPACCESSTOKEN_POWERSHELL names \/nonexistent\/pwsh.*\[POWERSHELL_NOT_FOUND\]/,
          );
          const none = await run(app, ["-Protocol", "IMAP", "-Port", String(ex.imapPort)], {
            GET_IMAPACCESSTOKEN_POWERSHELL: "",
            PATH: "/nonexistent",
          });
          assert.equal(none.code, 2, none.stderr);
          assert.match(
            none.stderr,
            /nor in the certificate store \(not searched: PowerShell 7 \(pwsh\) is not installed; GET_IMAPACCESSTOKEN_POWERSHELL names one\)/,
          );
        },
      );

      await t.step(
        "a signer that never answers is stopped at -TimeoutSeconds (exit 2)",
        async () => {
          const hang = join(bed.dir, "hang.sh");
          await Deno.writeTextFile(hang, "#!/bin/sh\nexec sleep 60\n");
          await Deno.chmod(hang, 0o755);
          const r = await run(
            app,
            ["-Protocol", "IMAP", "-Port", String(ex.imapPort), "-TimeoutSeconds", "1"],
            { GET_IMAPACCESSTOKEN_POWERSHELL: hang },
          );
          assert.equal(r.code, 2, r.stderr);
          assert.match(
            r.stderr,
            /did not finish searching the store within 1 s.*\[SIGNER_TIMEOUT\]/,
          );
          assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
        },
      );

      await t.step("PowerShell in ConstrainedLanguage mode is named (exit 2)", async () => {
        // A PowerShell whose session is locked down the way AppLocker/WDAC do it.
        const wrapper = join(bed.dir, "constrained.sh");
        await Deno.writeTextFile(
          wrapper,
          `#!/bin/sh\nfor a; do last="$a"; done\nGIAT_SCRIPT="$last" exec '${PWSH}' -NoProfile ` +
            `-NonInteractive -Command '$s = [Text.Encoding]::Unicode.GetString(` +
            `[Convert]::FromBase64String($env:GIAT_SCRIPT)); ` +
            `$ExecutionContext.SessionState.LanguageMode = "ConstrainedLanguage"; ` +
            `Invoke-Expression $s'\n`,
        );
        await Deno.chmod(wrapper, 0o755);
        const r = await run(app, ["-Protocol", "IMAP", "-Port", String(ex.imapPort)], {
          GET_IMAPACCESSTOKEN_POWERSHELL: wrapper,
        });
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /ConstrainedLanguage mode .*\[POWERSHELL_CONSTRAINED\]/);
      });

      await t.step(
        "the folder reads .NET's own store files (PFX without a password), no pwsh needed",
        async () => {
          const r = await run(
            app,
            ["-Protocol", "IMAP", "-Port", String(ex.imapPort), "-Verbose"],
            {
              GET_IMAPACCESSTOKEN_CERT_DIR: storeDir,
              GET_IMAPACCESSTOKEN_POWERSHELL: "/nonexistent/pwsh",
            },
          );
          assert.equal(r.code, 0, r.stderr);
          assert.ok(r.stderr.includes(`from ${storeDir}/${app}.pfx`), r.stderr);
        },
      );

      await t.step("a cached token never starts the signer", async () => {
        const cacheDir = await Deno.makeTempDir({ dir: bed.dir });
        const args = [
          "-Protocol",
          "IMAP",
          "-Port",
          String(ex.imapPort),
          "-TokenCachePath",
          cacheDir,
        ];
        const first = await runCli([
          ...common("-TokenCachePath"),
          "-clientId",
          APP,
          "-clientcertificate",
          app,
          "-targetMailbox",
          MAILBOX,
          ...args,
        ], { env });
        assert.equal(first.code, 0, first.stderr);
        const marker = join(bed.dir, "signer-started");
        const tripwire = join(bed.dir, "tripwire.sh");
        await Deno.writeTextFile(tripwire, `#!/bin/sh\ntouch '${marker}'\nexit 1\n`);
        await Deno.chmod(tripwire, 0o755);
        const requests = bed.entra.tokenRequests.length;
        const second = await runCli([
          ...common("-TokenCachePath"),
          "-clientId",
          APP,
          "-clientcertificate",
          app,
          "-targetMailbox",
          MAILBOX,
          ...args,
          "-OutputFormat",
          "Json",
        ], { env: { ...env, GET_IMAPACCESSTOKEN_POWERSHELL: tripwire } });
        assert.equal(second.code, 0, second.stderr);
        assert.equal(json(second).token.fromCache, true);
        assert.equal(bed.entra.tokenRequests.length, requests);
        await assert.rejects(Deno.stat(marker));
      });
    } finally {
      await Deno.remove(home, { recursive: true }).catch(() => {});
      await bed.close();
    }
  },
});
