/**
 * `deno task bench`: how fast the tool is where it matters (inside scripts and
 * mail fetchers). Every figure comes from this one run on this machine, and
 * each is also given as a ratio to a bare `deno run` of an empty script, so
 * results compare across machines.
 */
import { APP, MAILBOX, SECRET, startTestBed } from "../test/bed/testbed.ts";
import { startExchange } from "../test/bed/exchange.ts";

const main = new URL("../src/main.ts", import.meta.url).pathname;
const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 9);

async function timeOnce(args: string[]): Promise<number> {
  const started = performance.now();
  // Piped, not /dev/null: Token/Sasl output refuses to write where the result would be lost.
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "null" })
    .output();
  const ms = performance.now() - started;
  if (out.code > 2) throw new Error(`bench run failed: exit ${out.code}: ${args.join(" ")}`);
  return ms;
}

async function median(args: string[]): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await timeOnce(args));
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const bed = await startTestBed();
const empty = await Deno.makeTempFile({ suffix: ".ts" });
try {
  const run = (...args: string[]) => ["run", "--allow-all", "--quiet", main, ...args];
  const app = [
    ...bed.common(),
    "-clientId",
    APP,
    "-clientsecret",
    SECRET,
    "-targetMailbox",
    MAILBOX,
  ];
  const imap = ["-Port", String(bed.exchange.imapPort)];
  // Prime the cache for the cached runs.
  await timeOnce(run(...app, "-OutputFormat", "Token"));
  const cases: [string, string, string[]][] = [
    ["b", "empty deno run (baseline)", ["run", "--quiet", empty]],
    ["a", "-OutputFormat Token, cached token", run(...app, "-OutputFormat", "Token")],
    ["", "-OutputFormat Sasl, cached token", run(...app, "-OutputFormat", "Sasl")],
    ["c", "fresh token + IMAP login (no cache)", run(...app, ...imap, "-NoTokenCache")],
    ["", "cached token + IMAP login", run(...app, ...imap)],
    [
      "",
      "fresh token + POP3 login (no cache)",
      run(...app, "-Protocol", "POP3", "-Port", String(bed.exchange.pop3Port), "-NoTokenCache"),
    ],
    ["", "usage error (exit 2)", run("-tenantID", "x")],
    ["", "--help", run("--help")],
  ];
  const results = new Map<string, number>();
  console.log(`median wall time of ${RUNS} runs each; ratio = time / empty deno run`);
  let base = 0;
  for (const [key, name, args] of cases) {
    const ms = await median(args);
    if (key === "b") base = ms;
    if (key) results.set(key, ms);
    console.log(
      `${(key ? `(${key}) ` : "    ") + name.padEnd(40)} ${ms.toFixed(0).padStart(5)} ms  ${
        (ms / base).toFixed(2)
      }x`,
    );
  }
  const ratio = results.get("a")! / results.get("b")!;
  console.log(`(a)/(b) = ${ratio.toFixed(2)} (target <= 2.0)`);

  // Many mailboxes: one call with a list versus one call per mailbox (cached token).
  const count = Number(Deno.env.get("BENCH_MAILBOXES") ?? 200);
  const mailboxes = Array.from({ length: count }, (_, i) => `user${i}@contoso.com`);
  const many = await startExchange({
    tls: { certPem: bed.pki.certPem, keyPem: bed.pki.keyPem },
    tokenKey: { publicKeyPem: bed.entra.signingKey.publicKeyPem },
    mailboxPermissions: Object.fromEntries(mailboxes.map((m) => [m, [APP]])),
  });
  try {
    const manyArgs = [
      ...bed.common(),
      "-clientId",
      APP,
      "-clientsecret",
      SECRET,
      "-Port",
      String(many.imapPort),
    ];
    const file = `${bed.dir}/bench-mailboxes.txt`;
    await Deno.writeTextFile(file, mailboxes.join("\n"));
    const oneCall = await timeOnce(run(...manyArgs, "-MailboxFile", file));
    const started = performance.now();
    for (const mailbox of mailboxes) await timeOnce(run(...manyArgs, "-targetMailbox", mailbox));
    const separate = performance.now() - started;
    console.log(
      `${count} mailboxes, one call (-MailboxFile)       ${oneCall.toFixed(0).padStart(6)} ms`,
    );
    console.log(
      `${count} mailboxes, ${count} separate calls          ${separate.toFixed(0).padStart(6)} ms`,
    );
    console.log(`separate / one call = ${(separate / oneCall).toFixed(1)} (target >= 10)`);
  } finally {
    await many.close();
  }
} finally {
  await bed.close();
  await Deno.remove(empty);
}
