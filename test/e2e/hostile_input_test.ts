/**
 * Hostile inputs and environments (issue 14): standard input that never ends,
 * files written by Windows PowerShell 5.1 (UTF-16 with a byte order mark), a
 * closed standard output. What the user sees: the exit code, the one line, and
 * whether Entra ID was asked at all.
 */
import assert from "node:assert/strict";
import { json, runCli, secretArgs, spawnCli } from "./cli.ts";
import { APP, MAILBOX, SECRET, startTestBed } from "../bed/testbed.ts";

function utf16le(text: string): Uint8Array {
  const bytes = new Uint8Array(2 + text.length * 2);
  bytes.set([0xff, 0xfe]);
  for (let i = 0; i < text.length; i++) {
    bytes[2 + 2 * i] = text.charCodeAt(i) & 0xff;
    bytes[3 + 2 * i] = text.charCodeAt(i) >> 8;
  }
  return bytes;
}

const tokenPosts = (requests: { method: string; path: string }[]) =>
  requests.filter((r) => r.method === "POST" && r.path.endsWith("/token")).length;

Deno.test("hostile input: stdin, files from Windows PowerShell 5.1, a closed stdout", async (t) => {
  const bed = await startTestBed();
  const posts = () => tokenPosts(bed.entra.requests);
  try {
    await t.step("an open, silent pipe on stdin ends at -TimeoutSeconds with exit 2", async () => {
      const before = posts();
      const cli = spawnCli([
        ...bed.common().map((a) => (a === "5" ? "1" : a)),
        "-NoTokenCache",
        ...secretArgs({ secret: "-" }),
        "-NoConnect",
      ]);
      // Standard input stays open and silent; the run must not wait for it forever.
      const r = await cli.done;
      await cli.closeStdin();
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /^ERROR: -clientsecret: standard input did not end within 1 s \(-TimeoutSeconds\).*\[INPUT_TIMEOUT\]\n$/,
      );
      assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
      assert.equal(posts(), before, "nothing sent");
    });

    await t.step("a secret piped as UTF-16 with a byte order mark is read correctly", async () => {
      // What `$secret | Out-File s.txt` then `< s.txt` hands over on Windows PowerShell 5.1.
      const r = await runCli(
        [...bed.common(), "-NoTokenCache", ...secretArgs({ secret: "-" }), "-NoConnect"],
        { stdin: utf16le(`${SECRET}\r\n`) },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(bed.entra.tokenRequests.at(-1)!.body.client_secret, SECRET);
    });

    await t.step("-MailboxFile written as UTF-16 with a byte order mark is read", async () => {
      const file = `${bed.dir}/mailboxes-utf16.txt`;
      await Deno.writeFile(file, utf16le(`# from Out-File\r\n${MAILBOX}\r\n`));
      const r = await runCli([
        ...bed.common(),
        "-NoTokenCache",
        ...secretArgs({ mailbox: null }),
        "-MailboxFile",
        file,
        "-NoConnect",
        "-OutputFormat",
        "Json",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(json(r).mailbox, MAILBOX);
    });

    await t.step("-CaFile written as UTF-16 with a byte order mark is read", async () => {
      const file = `${bed.dir}/ca-utf16.pem`;
      await Deno.writeFile(file, utf16le(await Deno.readTextFile(bed.pki.caFile)));
      const r = await runCli([
        ...bed.common().map((a) => (a === bed.pki.caFile ? file : a)),
        "-NoTokenCache",
        ...secretArgs(),
        "-Port",
        String(bed.exchange.imapPort),
      ]);
      assert.equal(r.code, 0, r.stderr);
    });

    await t.step(
      "certificate and key files written as UTF-16 with a byte order mark are read",
      async () => {
        // `Get-Content a.crt | Out-File` on Windows PowerShell 5.1: UTF-16 LE, BOM, CRLF.
        const ps51 = async (from: string, to: string) =>
          await Deno.writeFile(
            to,
            utf16le((await Deno.readTextFile(from)).replace(/\r?\n/g, "\r\n")),
          );
        const folder = `${bed.dir}/utf16-thumbprints`;
        await Deno.mkdir(folder);
        await ps51(bed.cert.certFile, `${bed.dir}/app-utf16.crt`);
        await ps51(bed.cert.keyFile, `${bed.dir}/app-utf16.key`);
        await ps51(bed.cert.combinedFile, `${bed.dir}/app-utf16.pem`);
        await ps51(bed.cert.certFile, `${folder}/app.crt`);
        await ps51(bed.cert.keyFile, `${folder}/app.key`);
        const cases: [string, string[], Record<string, string>][] = [
          ["-clientcertificate PEM (certificate and key)", [`${bed.dir}/app-utf16.pem`], {}],
          [
            "-clientcertificate PEM with -CertificateKeyFile",
            [`${bed.dir}/app-utf16.crt`, "-CertificateKeyFile", `${bed.dir}/app-utf16.key`],
            {},
          ],
          [
            "-clientcertificate <thumbprint> from the folder (.crt and .key)",
            [bed.cert.sha1Thumbprint],
            { GET_IMAPACCESSTOKEN_CERT_DIR: folder },
          ],
        ];
        for (const [name, certificate, env] of cases) {
          const before = posts();
          const r = await runCli([
            ...bed.common(),
            "-NoTokenCache",
            "-clientId",
            APP,
            "-clientcertificate",
            ...certificate,
            "-targetMailbox",
            MAILBOX,
            "-NoConnect",
            "-OutputFormat",
            "Json",
          ], { env });
          assert.equal(r.code, 0, `${name}: ${r.stdout}${r.stderr}`);
          assert.equal(json(r).parameterSet, "clientcredentialsCertificate");
          assert.equal(posts(), before + 1, name);
          // Signed with the certificate's key: Entra ID checked the assertion and issued a token.
          const request = bed.entra.tokenRequests.at(-1)!;
          assert.ok(request.body.client_assertion, name);
          assert.equal(request.status, 200, name);
        }
      },
    );

    await t.step({
      name: "a silent FIFO as a file argument ends at -TimeoutSeconds with exit 2, nothing sent" +
        (Deno.build.os === "windows" ? " (skipped: no mkfifo on Windows)" : ""),
      ignore: Deno.build.os === "windows",
      fn: async () => {
        const fifo = `${bed.dir}/silent.fifo`;
        await new Deno.Command("mkfifo", { args: [fifo] }).output();
        const pem = `${bed.dir}/app-combined.pem`;
        await Deno.copyFile(bed.cert.combinedFile, pem);
        const app = ["-clientId", APP, "-targetMailbox", MAILBOX];
        const cases: [string, string[]][] = [
          ["-MailboxFile", [...secretArgs({ mailbox: null }), "-MailboxFile", fifo]],
          ["-CaFile", [...secretArgs(), "-CaFile", fifo]],
          ["-clientcertificate", [...app, "-clientcertificate", fifo]],
          ["-CertificateKeyFile", [
            ...app,
            "-clientcertificate",
            bed.cert.certFile,
            "-CertificateKeyFile",
            fifo,
          ]],
        ];
        for (const [name, args] of cases) {
          const before = posts();
          const r = await runCli([
            ...bed.common().filter((a, i, all) =>
              !(name === "-CaFile" && (a === "-CaFile" || all[i - 1] === "-CaFile"))
            ).map((a) => (a === "5" ? "1" : a)),
            "-NoTokenCache",
            ...args,
            "-NoConnect",
          ], { killAfterMs: 20_000 });
          assert.equal(r.code, 2, `${name}: ${r.stderr}`);
          const error = r.stderr.split("\n").find((l) => l.startsWith("ERROR: "));
          assert.equal(
            error,
            `ERROR: ${name}: ${fifo} did not end within 1 s (-TimeoutSeconds); a pipe or FIFO ` +
              "must be closed by its writer [INPUT_TIMEOUT]",
            r.stderr,
          );
          assert.ok(r.ms < 10_000, `${name}: took ${r.ms} ms`);
          assert.equal(posts(), before, `${name}: nothing sent`);
        }

        // A writer that opens the FIFO and then says nothing: the same, after the open.
        const writer = Deno.open(fifo, { write: true });
        const r = await runCli([
          ...bed.common().map((a) => (a === "5" ? "1" : a)),
          "-NoTokenCache",
          ...secretArgs({ mailbox: null }),
          "-MailboxFile",
          fifo,
          "-NoConnect",
        ], { killAfterMs: 20_000 });
        (await writer).close();
        assert.equal(r.code, 2, r.stderr);
        assert.match(
          r.stderr,
          /^ERROR: -MailboxFile: .* did not end within 1 s .*\[INPUT_TIMEOUT\]$/m,
        );
      },
    });

    await t.step({
      name: "a FIFO that delivers its content works once: -MailboxFile, -clientcertificate" +
        (Deno.build.os === "windows" ? " (skipped: no mkfifo on Windows)" : ""),
      ignore: Deno.build.os === "windows",
      fn: async () => {
        // What `-clientcertificate <(vault read ...)` hands over: a pipe, readable once.
        for (
          const [name, content, args] of [
            ["-MailboxFile", new TextEncoder().encode(`${MAILBOX}\n`), [
              ...secretArgs({ mailbox: null }),
              "-MailboxFile",
            ]],
            ["-clientcertificate", await Deno.readFile(bed.cert.combinedFile), [
              "-clientId",
              APP,
              "-targetMailbox",
              MAILBOX,
              "-clientcertificate",
            ]],
          ] as const
        ) {
          const fifo = `${bed.dir}/content-${name.slice(1)}.fifo`;
          await new Deno.Command("mkfifo", { args: [fifo] }).output();
          const writing = Deno.writeFile(fifo, content);
          const before = posts();
          const r = await runCli([
            ...bed.common(),
            "-NoTokenCache",
            ...args,
            fifo,
            "-NoConnect",
            "-OutputFormat",
            "Json",
          ], { killAfterMs: 20_000 });
          await writing;
          assert.equal(r.code, 0, `${name}: ${r.stdout}${r.stderr}`);
          assert.equal(json(r).mailbox, MAILBOX);
          assert.equal(posts(), before + 1, name);
        }
      },
    });

    await t.step({
      name: "-OutputFormat Token with standard output closed fails, asking nothing" +
        (Deno.build.os === "linux" ? "" : " (skipped: /proc needed to see a closed stdout)"),
      ignore: Deno.build.os !== "linux",
      fn: async () => {
        const before = posts();
        const main = new URL("../../src/main.ts", import.meta.url).pathname;
        const out = await new Deno.Command("sh", {
          args: [
            "-c",
            'exec "$0" "$@" >&-',
            Deno.execPath(),
            "run",
            "--allow-all",
            "--quiet",
            main,
            ...bed.common(),
            ...secretArgs(),
            "-OutputFormat",
            "Token",
          ],
          stdin: "null",
          stderr: "piped",
          env: { NO_COLOR: "1" },
        }).output();
        const stderr = new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 2, stderr);
        assert.match(
          stderr,
          /^ERROR: -OutputFormat Token: standard output is closed .*\[NO_OUTPUT\]\n$/,
        );
        assert.equal(posts(), before, "no token requested for nobody");
      },
    });
  } finally {
    await bed.close();
  }
});
