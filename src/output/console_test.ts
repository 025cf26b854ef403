import assert from "node:assert/strict";
import { printable, Reporter, type Sink } from "./console.ts";
import { taggedSink } from "./sink.ts";
import { Redactor } from "../redact.ts";
import type { Report } from "./report.ts";

function capture(): Sink & { stdout: string; stderr: string } {
  const s = {
    stdout: "",
    stderr: "",
    out(t: string) {
      s.stdout += t;
    },
    err(t: string) {
      s.stderr += t;
    },
  };
  return s;
}

function report(over: Partial<Report> = {}): Report {
  return {
    ok: true,
    exitCode: 0,
    version: "0",
    parameterSet: "clientcredentialsSecret",
    signIn: "clientCredentials",
    user: null,
    diagnostics: [],
    protocol: "IMAP",
    protocolChoice: null,
    server: "h:993",
    mailbox: "a@b.c",
    token: null,
    folders: ["INBOX"],
    transcript: [],
    warnings: [],
    error: null,
    ...over,
  };
}

Deno.test("Redactor.redact() replaces registered secrets, longest first", () => {
  const r = new Redactor();
  r.add("secret-value-1", "<s>");
  r.add("secret-value-12345", "<long>");
  r.add("short", "<never>");
  assert.equal(r.redact("x secret-value-12345 secret-value-1 short"), "x <long> <s> short");
});

Deno.test("printable() escapes control characters but keeps tabs", () => {
  assert.equal(printable("a\x1b[31mb\x00\tc\r"), "a\\x1b[31mb\\x00\tc\\x0d");
});

Deno.test("Reporter in Text format: progress on stderr, server lines on stdout, SASL hidden", () => {
  const sink = capture();
  const r = new Reporter({ format: "Text", verbose: false, sink });
  r.setSasl("c2FzbC1zdHJpbmctYmFzZTY0");
  r.progress("Connect.");
  r.line("S", "* OK ready");
  r.line("C", "A01 AUTHENTICATE XOAUTH2 c2FzbC1zdHJpbmctYmFzZTY0");
  r.finish(report(), {});
  assert.equal(sink.stdout, "* OK ready\n");
  assert.match(
    sink.stderr,
    /^Connect\.\nOK: IMAP login to h:993 as a@b\.c works \(1 folder\)\.\n$/,
  );
  assert.deepEqual(r.recorded().transcript[1], {
    dir: "C",
    line: "A01 AUTHENTICATE XOAUTH2 <XOAUTH2 string>",
  });
});

Deno.test("Reporter with -Verbose shows commands with the SASL string, never the client secret", () => {
  const sink = capture();
  const r = new Reporter({ format: "Text", verbose: true, sink });
  r.always.add("the-client-secret", "<client secret>");
  r.setSasl("c2FzbC1zdHJpbmctYmFzZTY0");
  r.line("C", "A01 AUTHENTICATE XOAUTH2 c2FzbC1zdHJpbmctYmFzZTY0");
  r.verboseLine("POST body client_secret=the-client-secret");
  assert.match(sink.stderr, /VERBOSE: Executing command -- A01 AUTHENTICATE XOAUTH2 c2FzbC1z/);
  assert.match(sink.stderr, /client_secret=<client secret>/);
});

Deno.test("Reporter in Token/Sasl format prints only the value, and nothing on failure", () => {
  for (const format of ["Token", "Sasl"] as const) {
    const sink = capture();
    const r = new Reporter({ format, verbose: false, sink });
    r.progress("not shown");
    r.finish(report({ server: null }), { token: "tok.en.value", sasl: "c2FzbA==" });
    assert.equal(sink.stdout, format === "Token" ? "tok.en.value\n" : "c2FzbA==\n");
    assert.equal(sink.stderr, "");
    const failed = capture();
    new Reporter({ format, verbose: false, sink: failed }).finish(
      report({
        ok: false,
        exitCode: 3,
        error: { kind: "token", message: "refused", code: "AADSTS1", hint: null, advice: null },
      }),
      {},
    );
    assert.equal(failed.stdout, "");
    assert.equal(failed.stderr, "ERROR: refused [AADSTS1]\n");
  }
});

Deno.test("Reporter in Json format prints one object with secrets redacted from the error", () => {
  const sink = capture();
  const r = new Reporter({ format: "Json", verbose: false, sink });
  r.credentials.add("eyJhbGciOi.token.sig", "<access token>");
  r.warning("certificate expires soon");
  r.finish(
    report({
      ok: false,
      exitCode: 5,
      warnings: r.recorded().warnings,
      error: {
        kind: "auth",
        message: "server echoed eyJhbGciOi.token.sig",
        code: null,
        hint: null,
        advice: null,
      },
    }),
    {},
  );
  const json = JSON.parse(sink.stdout);
  assert.equal(json.error.message, "server echoed <access token>");
  assert.deepEqual(json.warnings, ["certificate expires soon"]);
  assert.equal(sink.stdout.trim().split("\n").at(-1), "}");
});

Deno.test("Reporter prints each checklist finding as a line with its step", () => {
  const sink = capture();
  const r = new Reporter({ format: "Text", verbose: false, sink, utf8: false, lang: "en" });
  r.finish(
    report({
      checklist: [
        {
          id: "parameters",
          title: "Parameters well-formed",
          ok: true,
          detail: null,
          notes: [{ code: "CLIENT_SECRET_IS_ID", step: 1, text: "GUID given.", warning: true }],
        },
        {
          id: "claims",
          title: "Token has what is needed",
          ok: true,
          detail: null,
          notes: [{ code: null, step: 3, text: "oid is X.", warning: false }],
        },
      ],
    }),
    {},
  );
  assert.equal(
    sink.stdout,
    "[OK] Parameters well-formed\n" +
      "  ! step 1 (app registration): GUID given. [CLIENT_SECRET_IS_ID]\n" +
      "[OK] Token has what is needed\n" +
      "  i step 3 (Exchange service principal and mailbox permission): oid is X.\n",
  );
});

Deno.test("taggedSink() tags every line with its PowerShell stream, in order, on one channel", () => {
  let written = "";
  const sink = taggedSink((t) => written += t);
  const r = new Reporter({ format: "Text", verbose: true, sink });
  r.progress("Connect to h:993.");
  r.line("S", "* OK ready");
  r.line("C", "A01 LIST");
  r.warning("the certificate expires soon");
  r.waiting(true);
  r.waiting(false);
  r.finish(
    report({
      ok: false,
      exitCode: 5,
      error: {
        kind: "auth",
        message: "login refused",
        code: "IMAP_AUTH_FAILED",
        hint: null,
        advice: { step: 3, cause: "No permission.", fix: "Add-MailboxPermission ..." },
      },
    }),
    {},
  );
  assert.deepEqual(written.split("\n").slice(0, -1), [
    "I Connect to h:993.",
    "O * OK ready",
    "V Executing command -- A01 LIST",
    "W WARNING: the certificate expires soon",
    "E ERROR: login refused [IMAP_AUTH_FAILED]",
    "E HINT (step 3 (Exchange service principal and mailbox permission)): No permission.",
    "E FIX: Add-MailboxPermission ...",
  ]);
});
