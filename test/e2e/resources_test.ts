/**
 * Resource limits against hostile servers:
 * - memory: the CLI (child process) against a mail server that sends a 1 MB
 *   line without CRLF, or a LIST reply that never ends, stays under a peak
 *   RSS ceiling and ends with exit 4. Peak RSS is the kernel's own figure:
 *   GNU time's maximum resident set size when /usr/bin/time is there, else
 *   VmHWM from /proc/<pid>/status, polled until the process ends;
 * - file descriptors: the run code, called in this process for failing runs
 *   (mail and token endpoint faults), leaves no descriptor open: the entries
 *   of /proc/self/fd are counted around each run.
 * Linux only (/proc).
 */
import assert from "node:assert/strict";
import { startTestBed, TENANT, type TestBed } from "../bed/testbed.ts";
import {
  type FaultCertificates,
  faultCertificates,
  type MailFault,
  startMailFault,
  startTokenFault,
  type TokenFault,
} from "../bed/faults.ts";
import { closedPort } from "../mail/tls_server.ts";
import { secretArgs } from "./cli.ts";
import { parseCommandLine } from "../../src/cli/parse.ts";
import { run } from "../../src/app/run.ts";
import { Reporter } from "../../src/output/console.ts";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
/** The ceiling the issue sets for a run against a hostile server. */
const PEAK_RSS_CEILING_MB = 150;
const linux = Deno.build.os === "linux";
/** Appended to a test's name when it is ignored: a skip says why. */
const notLinux = linux ? "" : " (skipped: not Linux, needs /proc)";

async function gnuTime(): Promise<boolean> {
  try {
    const out = await new Deno.Command("/usr/bin/time", {
      args: ["-f", "%M", "true"],
      stdout: "null",
      stderr: "piped",
    }).output();
    return out.success && /^\d+\s*$/.test(new TextDecoder().decode(out.stderr));
  } catch {
    return false;
  }
}

/** Runs the CLI and measures its peak RSS in MB. */
async function runMeasured(
  args: string[],
  useTime: boolean,
  dir: string,
): Promise<{ code: number; peakMb: number; stdout: string; stderr: string }> {
  const deno = [Deno.execPath(), "run", "--allow-all", "--quiet", MAIN, ...args];
  const report = `${dir}/time-${crypto.randomUUID()}.txt`;
  const [command, ...rest] = useTime ? ["/usr/bin/time", "-f", "%M", "-o", report, ...deno] : deno;
  const child = new Deno.Command(command, {
    args: rest,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let polledKb = 0;
  const poll = setInterval(() => {
    try {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      polledKb = Math.max(polledKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      // the process has ended
    }
  }, 5);
  const out = await child.output();
  clearInterval(poll);
  const kb = useTime
    ? Number((await Deno.readTextFile(report)).trim().split("\n").at(-1))
    : polledKb;
  const decoder = new TextDecoder();
  return {
    code: out.code,
    peakMb: kb / 1024,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

function cliArgs(bed: TestBed, port: number, timeout: number): string[] {
  return [
    "-tenantID",
    TENANT,
    ...secretArgs(),
    "-AuthorityHost",
    bed.entra.url,
    "-CaFile",
    bed.pki.caFile,
    "-Server",
    "127.0.0.1",
    "-Port",
    String(port),
    "-NoTokenCache",
    "-TimeoutSeconds",
    String(timeout),
    // JSON keeps the whole transcript until the end: the worst case for memory.
    "-OutputFormat",
    "Json",
  ];
}

Deno.test({
  name: "peak RSS stays under the ceiling against hostile mail servers (exit 4)" + notLinux,
  ignore: !linux,
  async fn(t) {
    const bed = await startTestBed();
    const tls = { certPem: bed.pki.certPem, keyPem: bed.pki.keyPem };
    const useTime = await gnuTime();
    const peaks: string[] = [];
    try {
      const cases: [string, MailFault | null, number, number][] = [
        // name, fault (null: a healthy server, for comparison), time limit, exit code
        ["healthy Exchange-like server (baseline)", null, 5, 0],
        ["1 MB line without CRLF", "long-line", 5, 4],
        ["endless LIST reply", "endless-list", 20, 4],
      ];
      for (const [name, fault, timeout, exit] of cases) {
        await t.step(name, async () => {
          const server = fault ? startMailFault(fault, tls) : null;
          try {
            const port = server?.port ?? bed.exchange.imapPort;
            const r = await runMeasured(cliArgs(bed, port, timeout), useTime, bed.dir);
            assert.equal(r.code, exit, r.stderr + r.stdout.slice(0, 2000));
            peaks.push(`${name}: ${r.peakMb.toFixed(1)} MB`);
            assert.ok(r.peakMb > 10, `implausible peak RSS ${r.peakMb} MB`);
            assert.ok(
              r.peakMb < PEAK_RSS_CEILING_MB,
              `peak RSS ${r.peakMb.toFixed(1)} MB >= ${PEAK_RSS_CEILING_MB} MB`,
            );
          } finally {
            await server?.close();
          }
        });
      }
    } finally {
      // The figures for the closing note.
      console.log(`peak RSS (${useTime ? "GNU time" : "VmHWM polled"}): ${peaks.join("; ")}`);
      await bed.close();
    }
  },
});

/** Open file descriptors of this process. */
function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** Waits (briefly) until the descriptor count is back to `count`; returns the last count. */
async function settle(count: number): Promise<number> {
  let now = openFds();
  for (let i = 0; i < 60 && now > count; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    now = openFds();
  }
  return now;
}

const quiet = { out() {}, err() {} };

/** One run of the tool's run code in this process, as main.ts does it. */
async function runInProcess(args: string[]): Promise<number> {
  const command = parseCommandLine(args);
  if (command.kind !== "run") throw new Error(`not a run: ${command.kind}`);
  const reporter = new Reporter({ format: "Json", verbose: false, sink: quiet, lang: "en" });
  const { report } = await run(command.options, reporter, {
    stdin: () => new Response("").body!,
    readLine: () => Promise.resolve(null),
    interactive: false,
    env: () => undefined,
    openBrowser: () => Promise.resolve(false),
  }, "en");
  return report.exitCode;
}

/**
 * The descriptor count is per process, and `deno test --parallel` runs other
 * test modules in the same process: so the count runs in a child `deno test`
 * of this file that runs only the probe below (FD_PROBE set), alone.
 */
const FD_PROBE = "GIA_FD_PROBE";
const PROBE_NAME = "fd probe: failed runs in this process leave no descriptor open";

const probing = Deno.env.get(FD_PROBE) !== undefined;

if (!probing) {
  Deno.test({
    name: "no file descriptor stays open after a failed run (counted in /proc/self/fd)" + notLinux,
    ignore: !linux,
    async fn() {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["test", "--allow-all", "--filter", PROBE_NAME, new URL(import.meta.url).pathname],
        env: { [FD_PROBE]: "1", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.ok(out.success, text);
      assert.match(text, /ok \| 1 passed \(\d+ steps\)/, text);
    },
  });
}

// Registered only in the child: elsewhere it would count the descriptors of other tests too.
if (probing) {
  Deno.test(PROBE_NAME, async (t) => {
    const bed = await startTestBed();
    let certs: FaultCertificates | undefined;
    try {
      certs = await faultCertificates(bed.pki, bed.dir);
      const trusted = certs.trusted;
      const base = (authorityHost: string, timeout = 2) => [
        "-tenantID",
        TENANT,
        ...secretArgs(),
        "-AuthorityHost",
        authorityHost,
        "-CaFile",
        bed.pki.caFile,
        "-Server",
        "127.0.0.1",
        "-NoTokenCache",
        "-TimeoutSeconds",
        String(timeout),
      ];
      const mailCases: [MailFault, number, number][] = [
        ["close-mid-authenticate", 2, 4],
        ["long-line", 2, 4],
        ["silent", 1, 4],
        ["wrong-tag", 2, 4],
        ["echo-credentials", 2, 5],
        ["endless-list", 10, 4],
      ];
      for (const [fault, timeout, exit] of mailCases) {
        await t.step(`mail server: ${fault} (exit ${exit})`, async () => {
          const server = startMailFault(fault, trusted);
          try {
            const before = openFds();
            const code = await runInProcess([
              ...base(bed.entra.url, timeout),
              "-Port",
              String(server.port),
            ]);
            assert.equal(code, exit);
            assert.equal(await settle(before), before, "descriptors left open");
          } finally {
            await server.close();
          }
        });
      }
      await t.step(
        "mail server: connection refused and untrusted certificate (exit 4)",
        async () => {
          const untrusted = startMailFault("ok", certs!.untrusted);
          try {
            const before = openFds();
            for (const port of [closedPort(), untrusted.port]) {
              const code = await runInProcess([...base(bed.entra.url), "-Port", String(port)]);
              assert.equal(code, 4);
            }
            assert.equal(await settle(before), before, "descriptors left open");
          } finally {
            await untrusted.close();
          }
        },
      );
      const tokenCases: [TokenFault, number][] = [
        ["stall-mid-body", 1],
        ["http-503", 2],
        ["tls-handshake-failure", 2],
        ["redirect-loop", 2],
      ];
      for (const [fault, timeout] of tokenCases) {
        await t.step(`token endpoint: ${fault} (exit 3)`, async () => {
          const server = startTokenFault(fault, trusted);
          try {
            const before = openFds();
            const code = await runInProcess([...base(server.url, timeout), "-NoConnect"]);
            assert.equal(code, 3);
            assert.equal(await settle(before), before, "descriptors left open");
          } finally {
            await server.close();
          }
        });
      }
    } finally {
      await bed.close();
    }
  });
}
