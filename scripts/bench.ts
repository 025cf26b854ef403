/**
 * `deno task bench`: how fast the tool is where it matters (inside scripts and
 * mail fetchers), as ratios measured in one run on this machine against a bare
 * `deno run` of an empty script, so the numbers compare across machines.
 */
import { APP, MAILBOX, SECRET, startTestBed } from "../test/bed/testbed.ts";

const main = new URL("../src/main.ts", import.meta.url).pathname;
const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 7);

async function timeOnce(args: string[]): Promise<number> {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "null" })
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
  const common = [
    ...bed.common(),
    "-clientId",
    APP,
    "-clientsecret",
    SECRET,
    "-targetMailbox",
    MAILBOX,
  ];
  const cases: [string, string[]][] = [
    ["empty deno run (baseline)", ["run", "--quiet", empty]],
    ["--help", run("--help")],
    ["usage error (exit 2)", run("-tenantID", "x")],
    ["token only (-OutputFormat Token)", run(...common, "-OutputFormat", "Token")],
    ["IMAP login + LIST", run(...common, "-Port", String(bed.exchange.imapPort))],
    [
      "POP3 login + STAT",
      run(...common, "-Protocol", "POP3", "-Port", String(bed.exchange.pop3Port)),
    ],
  ];
  const results: [string, number][] = [];
  for (const [name, args] of cases) results.push([name, await median(args)]);
  const base = results[0][1];
  console.log(`median of ${RUNS} runs each; ratio = time / empty deno run`);
  for (const [name, ms] of results) {
    console.log(`${name.padEnd(36)} ${(ms / base).toFixed(2)}x  (${ms.toFixed(0)} ms)`);
  }
} finally {
  await bed.close();
  await Deno.remove(empty);
}
