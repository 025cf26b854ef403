/**
 * Fault injection, end to end: the CLI as a child process against a token
 * endpoint or mail server that misbehaves in one way each (test/bed/faults.ts).
 * Every fault must end quickly with the right exit code, code and message.
 *
 * The "Failure behaviour" table (README.md between `<!-- failures:start -->`
 * and `<!-- failures:end -->`, or docs/failures.md until it is merged there)
 * is the expectation: each row's exit code, code and message are checked
 * against the real run of the scenario with the same fault name, and every
 * scenario must have its row.
 */
import assert from "node:assert/strict";
import { type CliResult, runCli, secretArgs } from "./cli.ts";
import { SECRET, startTestBed, TENANT, type TestBed } from "../bed/testbed.ts";
import {
  ENTRA_5XX_IDS,
  ENTRA_5XX_TEXT,
  type FaultCertificates,
  faultCertificates,
  type MailFault,
  startMailFault,
  startTls10Server,
  startTokenFault,
  type TlsIdentity,
  type TokenFault,
} from "../bed/faults.ts";
import { closedPort } from "../mail/tls_server.ts";

/** -TimeoutSeconds of every scenario: small, so that timeouts are tested in seconds. */
const TIMEOUT_SECONDS = 2;
/** Start-up and shutdown of a CLI run on a busy CI machine, on top of the time limit. */
const SLACK_MS = 4000;

// deno-lint-ignore no-explicit-any
type Json = any;

interface Outcome {
  r: CliResult;
  /** The JSON output; null for a Text run. */
  json: Json;
  /** Requests (token endpoint) or sessions (mail server) the fault server saw. */
  seen: number;
}

interface Scenario {
  /** Exactly the text of the table's "fault" column. */
  fault: string;
  run(): Promise<Outcome>;
  /** Checks beyond exit code, code and message. */
  check?(outcome: Outcome): void;
}

function parse(r: CliResult): Json {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------------------------

interface Row {
  fault: string;
  exit: number;
  code: string | null;
  /** The documented message; `…` stands for any text. */
  message: string | null;
}

const ROOT = new URL("../../", import.meta.url);

/** The failure table: README.md's marked block if it has one, else docs/failures.md. */
async function readFailureTable(): Promise<{ source: string; rows: Row[] }> {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const block = /<!-- failures:start[^>]*-->([\s\S]*?)<!-- failures:end -->/;
  let source = "README.md";
  let table = block.exec(readme)?.[1];
  if (table === undefined) {
    source = "docs/failures.md";
    const doc = await Deno.readTextFile(new URL(source, ROOT));
    table = block.exec(doc)?.[1] ?? doc;
  }
  const rows: Row[] = [];
  for (const line of table.split("\n")) {
    if (!line.startsWith("|")) continue;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    if (cells.length < 4 || /^-+$/.test(cells[0].replace(/[: ]/g, "")) || cells[0] === "fault") {
      continue;
    }
    const literal = (cell: string) =>
      cell === "—" || cell === "" ? null : cell.replace(/^`|`$/g, "");
    rows.push({
      fault: cells[0],
      exit: Number(cells[1]),
      code: literal(cells[2]),
      message: literal(cells[3]),
    });
  }
  return { source, rows };
}

/** The documented message as a pattern: `…` matches anything, the rest literally. */
function messagePattern(message: string): RegExp {
  const parts = message.split("…").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join("[\\s\\S]*?")}$`);
}

// ---------------------------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------------------------

function scenarios(bed: TestBed, certs: FaultCertificates): Scenario[] {
  const base = (
    authorityHost: string,
    { timeout = TIMEOUT_SECONDS, format = "Json" }: { timeout?: number; format?: string } = {},
  ) => [
    "-tenantID",
    TENANT,
    ...secretArgs(),
    "-AuthorityHost",
    authorityHost,
    "-CaFile",
    bed.pki.caFile,
    "-NoTokenCache",
    "-TimeoutSeconds",
    String(timeout),
    "-OutputFormat",
    format,
  ];
  const cli = async (args: string[], seen: () => number): Promise<Outcome> => {
    const r = await runCli(args);
    const text = args.includes("Text");
    return { r, json: text ? null : parse(r), seen: seen() };
  };

  /** The token request against a token-endpoint fault (no mail connection). */
  const token = (fault: TokenFault, tls: TlsIdentity = certs.trusted) => async () => {
    const server = startTokenFault(fault, tls);
    try {
      return await cli([...base(server.url), "-NoConnect"], () => server.requests.length);
    } finally {
      await server.close();
    }
  };
  /** A full run: token from the fake Entra ID, then the mail-server fault. */
  const mail = (
    fault: MailFault,
    options: { tls?: TlsIdentity; protocol?: "IMAP" | "POP3"; timeout?: number; format?: string } =
      {},
  ) =>
  async () => {
    const protocol = options.protocol ?? "IMAP";
    const server = startMailFault(fault, options.tls ?? certs.trusted, protocol);
    try {
      return await cli(
        [
          ...base(bed.entra.url, options),
          "-Server",
          "127.0.0.1",
          "-Port",
          String(server.port),
          "-Protocol",
          protocol,
        ],
        () => server.sessions.length,
      );
    } finally {
      await server.close();
    }
  };
  const ended = (seconds: number) => (o: Outcome) =>
    assert.ok(o.r.ms < seconds * 1000 + SLACK_MS, `ended after ${Math.round(o.r.ms)} ms`);
  const attempts = (min: number, max: number) => (o: Outcome) =>
    assert.ok(o.seen >= min && o.seen <= max, `${o.seen} requests, expected ${min}..${max}`);
  const both = (...checks: ((o: Outcome) => void)[]) => (o: Outcome) => checks.forEach((c) => c(o));

  return [
    // Token endpoint.
    {
      fault: "Token endpoint: connection refused",
      run: () => cli([...base(`https://127.0.0.1:${closedPort()}`), "-NoConnect"], () => 0),
    },
    {
      fault: "Token endpoint: TLS handshake failure",
      run: token("tls-handshake-failure"),
    },
    {
      fault: "Token endpoint: untrusted certificate",
      run: token("ok", certs.untrusted),
      check: (o) => assert.equal(o.seen, 0, "no request over an untrusted connection"),
    },
    {
      fault: "Token endpoint: certificate for another host name",
      run: token("ok", certs.wrongName),
      check: (o) => assert.equal(o.seen, 0),
    },
    {
      fault: "Token endpoint: HTTP 500 with Entra's JSON error",
      run: token("http-500"),
      check: both(attempts(2, 4), ended(TIMEOUT_SECONDS)),
    },
    {
      fault:
        "Token endpoint: HTTP 500 from Entra in an outage (long text, Trace and Correlation ID)",
      run: token("http-500-entra"),
      check: both(attempts(2, 4), ended(TIMEOUT_SECONDS), (o) => {
        const e = o.json.error;
        // The whole AADSTS text (its parenthesis closed), the attempts and the support IDs.
        assert.ok(
          e.message.includes(`(AADSTS50000: ${ENTRA_5XX_TEXT}); gave up after `),
          e.message,
        );
        assert.ok(e.message.endsWith(
          `; Trace ID: ${ENTRA_5XX_IDS.trace}; Correlation ID: ${ENTRA_5XX_IDS.correlation}`,
        ));
        assert.equal(e.advice.step, "network");
        assert.match(e.advice.cause, /transient problem on Microsoft's side/);
        assert.match(e.advice.fix, /Retry in a few minutes.*service health/);
      }),
    },
    {
      fault: "Token endpoint: HTTP 502 (HTML from a gateway)",
      run: token("http-502"),
      check: both(attempts(2, 4), ended(TIMEOUT_SECONDS)),
    },
    {
      fault: "Token endpoint: HTTP 503 without Retry-After",
      run: token("http-503"),
      check: both(attempts(2, 4), ended(TIMEOUT_SECONDS)),
    },
    {
      fault: "Token endpoint: HTTP 503 with Retry-After: 1",
      run: token("http-503-retry-after"),
      check: both(attempts(2, 2), ended(TIMEOUT_SECONDS)),
    },
    {
      fault: "Token endpoint: HTTP 503 once, then a token",
      run: token("http-503-once"),
      check: (o) => {
        assert.equal(o.seen, 2);
        assert.ok(o.r.ms >= 1000, "waited as Retry-After: 1 said");
      },
    },
    {
      fault: "Token endpoint: HTTP 429 with Retry-After: 1",
      run: token("http-429-retry-after"),
      check: both(attempts(2, 2), ended(TIMEOUT_SECONDS)),
    },
    {
      fault: "Token endpoint: HTTP 429 with Retry-After as an HTTP date",
      run: token("http-429-retry-after-date"),
      check: both(attempts(2, 4), ended(TIMEOUT_SECONDS)),
    },
    {
      fault: "Token endpoint: HTTP 429 with Retry-After: 120 (beyond -TimeoutSeconds)",
      run: token("http-429-retry-after-long"),
      // Waiting is pointless when the wait alone exceeds the time limit: fail at once.
      check: both(attempts(1, 1), ended(0)),
    },
    {
      fault: "Token endpoint: body that is not JSON (HTTP 200, HTML)",
      run: token("not-json"),
      check: attempts(1, 1),
    },
    {
      fault: "Token endpoint: JSON without access_token",
      run: token("no-access-token"),
      check: attempts(1, 1),
    },
    {
      fault: "Token endpoint: response stalls mid-body",
      run: token("stall-mid-body"),
      check: both(attempts(1, 1), ended(TIMEOUT_SECONDS)),
    },
    {
      fault: "Token endpoint: redirect loop",
      run: token("redirect-loop"),
      // Not followed even once: a redirected POST would carry the secret elsewhere.
      check: attempts(1, 1),
    },
    {
      fault: "Token endpoint: error that quotes the request (client secret)",
      run: token("echo-request"),
      check: (o) => assert.ok(!(o.r.stdout + o.r.stderr).includes(SECRET)),
    },
    // Mail server.
    {
      fault: "Mail server: connection refused",
      run: async () => {
        const r = await runCli([
          ...base(bed.entra.url),
          "-Server",
          "127.0.0.1",
          "-Port",
          String(closedPort()),
        ]);
        return { r, json: parse(r), seen: 0 };
      },
    },
    {
      fault: "Mail server: untrusted certificate",
      run: mail("ok", { tls: certs.untrusted }),
      check: (o) => assert.equal(o.seen, 0, "no session over an untrusted connection"),
    },
    {
      fault: "Mail server: certificate for another host name",
      run: mail("ok", { tls: certs.wrongName }),
      check: (o) => assert.equal(o.seen, 0),
    },
    {
      fault: "Mail server: TLS 1.0 only",
      run: async () => {
        const server = await startTls10Server(bed.pki);
        try {
          const r = await runCli([
            ...base(bed.entra.url),
            "-Server",
            "127.0.0.1",
            "-Port",
            String(server.port),
          ]);
          return { r, json: parse(r), seen: 0 };
        } finally {
          await server.close();
        }
      },
    },
    {
      fault: "Mail server: greeting never sent",
      run: mail("silent"),
      check: ended(TIMEOUT_SECONDS),
    },
    {
      fault: "Mail server: connection closed right after the greeting",
      run: mail("close-after-greeting"),
    },
    {
      fault: "Mail server: connection closed in the middle of AUTHENTICATE",
      run: mail("close-mid-authenticate"),
    },
    {
      fault: "Mail server (POP3): connection closed in the middle of AUTH",
      run: mail("close-mid-authenticate", { protocol: "POP3" }),
    },
    {
      fault: "Mail server: 1 MB line without CRLF",
      run: mail("long-line"),
    },
    {
      fault: "Mail server: NUL bytes, invalid UTF-8 and an escape sequence in lines",
      run: mail("nul-invalid-utf8"),
      check: (o) => {
        const greeting = o.json.transcript[0].line as string;
        assert.ok(greeting.includes("\u0000"), "NUL kept in the transcript (JSON escapes it)");
        assert.ok(greeting.includes("\ufffd"), "invalid UTF-8 shown as U+FFFD");
        assert.ok(o.json.folders.some((f: string) => f.startsWith("Odd ")));
      },
    },
    {
      fault: "Mail server: NUL bytes, invalid UTF-8 and an escape sequence (Text output)",
      run: mail("nul-invalid-utf8", { format: "Text" }),
      check: (o) => {
        for (const raw of ["\u0000", "\u001b"]) {
          assert.ok(!(o.r.stdout + o.r.stderr).includes(raw), "no raw control byte printed");
        }
        assert.match(o.r.stdout, /\* OK \\x00\ufffd\ufffd\ufffd\(\\x1b\[2J ready/);
      },
    },
    {
      fault: "Mail server: reply with an unexpected tag",
      run: mail("wrong-tag"),
    },
    {
      fault: "Mail server: greeting trickled one byte per second (slowloris)",
      run: mail("slowloris"),
      check: ended(TIMEOUT_SECONDS),
    },
    {
      fault: "Mail server: LIST reply trickled one line every 0.1 s, never finished",
      run: mail("trickle-list"),
      // Each line arrives in time; the reply as a whole must not stretch the step.
      check: ended(2 * TIMEOUT_SECONDS),
    },
    {
      fault: "Mail server: endless LIST reply, as fast as it can",
      // A larger time limit, so that the size limit (not the clock) ends it on any machine.
      run: mail("endless-list", { timeout: 20 }),
      check: ended(20),
    },
    {
      fault: "Mail server: login refused with a reply that quotes the XOAUTH2 string and token",
      run: mail("echo-credentials"),
      check: (o) => {
        const token = bed.entra.issuedTokens.at(-1)!;
        assert.ok(!(o.r.stdout + o.r.stderr).includes(token.slice(0, 40)));
      },
    },
  ];
}

/** Runs `work` over `items`, at most `limit` at a time, keeping the order of results. */
async function pool<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>) {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]);
      }
    }),
  );
  return results;
}

Deno.test("every fault ends with the exit code, code and message of the failure table", async (t) => {
  const bed = await startTestBed();
  try {
    const certs = await faultCertificates(bed.pki, bed.dir);
    const list = scenarios(bed, certs);
    // Three at a time: the CLI runs are mostly waiting (timeouts, retries).
    const outcomes = await pool(list, 3, (s) => s.run());
    if (Deno.env.get("FAULTS_TABLE")) {
      // FAULTS_TABLE=1 prints what was observed, as table rows, for updating the documentation.
      for (const [i, s] of list.entries()) {
        const { r, json } = outcomes[i];
        const e = json?.error ?? null;
        const cell = (v: string | null | undefined) => v ? `\`${v}\`` : "—";
        console.log(`| ${s.fault} | ${r.code} | ${cell(e?.code)} | ${cell(e?.message)} |`);
      }
    }
    const { source, rows } = await readFailureTable();
    assert.ok(rows.length >= 20, `${source}: ${rows.length} rows`);
    assert.deepEqual(
      rows.map((r) => r.fault).sort(),
      list.map((s) => s.fault).sort(),
      `${source} must have exactly one row per fault scenario`,
    );
    for (const [i, scenario] of list.entries()) {
      await t.step(scenario.fault, () => {
        const outcome = outcomes[i];
        const { r, json } = outcome;
        const row = rows.find((x) => x.fault === scenario.fault)!;
        const context = `${r.stdout}\n${r.stderr}`;
        assert.equal(r.code, row.exit, context);
        // JSON: error.code and error.message; Text: the `ERROR: message [CODE]` line.
        const printed = /^ERROR: (.*?)(?: \[([A-Za-z0-9_]+)\])?$/m.exec(r.stderr);
        const error = json
          ? json.error
          : printed && { code: printed[2] ?? null, message: printed[1] };
        if (json) assert.equal(json.exitCode, row.exit);
        assert.equal(error?.code ?? null, row.code, context);
        if (row.message === null) {
          assert.equal(error ?? null, null, context);
        } else {
          assert.match(error.message, messagePattern(row.message));
        }
        scenario.check?.(outcome);
      });
    }
  } finally {
    await bed.close();
  }
});
