/**
 * `deno task bench`: how fast the tool is where it matters (inside scripts and
 * mail fetchers). Every figure comes from this one run on this machine, and
 * each is also given as a ratio to a bare `deno run` of an empty script, so
 * results compare across machines.
 */
import { APP, MAILBOX, SECRET, startTestBed, TENANT } from "../test/bed/testbed.ts";
import { startExchange } from "../test/bed/exchange.ts";
import { findPwsh, importIntoStore } from "../test/bed/dotnet_store.ts";
import type { TestBed } from "../test/bed/testbed.ts";
import { bridgeBench } from "./bench_bridge.ts";
import { buildShim } from "./build_shim.ts";

const main = new URL("../src/main.ts", import.meta.url).pathname;
const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 9);

function bridgeOptions() {
  const number = (name: string) => {
    const value = Deno.env.get(name);
    return value === undefined ? undefined : Number(value);
  };
  return {
    runs: RUNS,
    messageBytes: number("BENCH_BRIDGE_BYTES"),
    idleSessions: number("BENCH_BRIDGE_SESSIONS"),
  };
}

async function timeOnce(
  args: string[],
  env?: Record<string, string>,
  command = Deno.execPath(),
): Promise<number> {
  const started = performance.now();
  // Piped, not /dev/null: Token/Sasl output refuses to write where the result would be lost.
  const out = await new Deno.Command(command, { args, env, stdout: "piped", stderr: "null" })
    .output();
  const ms = performance.now() - started;
  if (out.code > 2 || (out.code === 2 && !expectUsageError(args))) {
    throw new Error(`bench run failed: exit ${out.code}: ${args.join(" ")}`);
  }
  return ms;
}

/** Only the usage-error case may end with exit 2; anything else measured a failure. */
function expectUsageError(args: string[]): boolean {
  return args.at(-2) === "-tenantID" && args.at(-1) === "x";
}

// BENCH_ONLY=bridge: only the bridge's figures (its test runs just these).
if (Deno.env.get("BENCH_ONLY") === "bridge") {
  const bed = await startTestBed();
  try {
    await bridgeBench(bed, bridgeOptions());
  } finally {
    await bed.close();
  }
  Deno.exit(0);
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
  // Prime the cache for the cached runs.
  await timeOnce(run(...app, "-OutputFormat", "Token"));
  // BENCH_ONLY=shim: only the PowerShell script's overhead.
  if (Deno.env.get("BENCH_ONLY") === "shim") await shimOverhead(app, run);
  else await everything(bed, app, run, empty);
} finally {
  await bed.close();
  await Deno.remove(empty);
}

async function everything(
  bed: TestBed,
  app: string[],
  run: (...args: string[]) => string[],
  empty: string,
) {
  const imap = ["-Port", String(bed.exchange.imapPort)];
  const pem = [
    ...app.slice(0, app.indexOf("-clientsecret")),
    "-clientcertificate",
    bed.cert.combinedFile,
    "-targetMailbox",
    MAILBOX,
    "-OutputFormat",
    "Token",
  ];
  await timeOnce(run(...pem)); // its own cache entry
  const cases: [string, string, string[]][] = [
    ["b", "empty deno run (baseline)", ["run", "--quiet", empty]],
    ["a", "-OutputFormat Token, cached token", run(...app, "-OutputFormat", "Token")],
    ["", "-OutputFormat Sasl, cached token", run(...app, "-OutputFormat", "Sasl")],
    [
      "",
      "Token, cached, -Protocol POP3",
      run(...app, "-Protocol", "POP3", "-OutputFormat", "Token"),
    ],
    ["", "Token, cached, PEM certificate", run(...pem)],
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
  // Interleaved (each round runs every case once), so a busy moment of the machine is shared
  // by all cases instead of skewing one of them.
  // Twice the runs of the other sections: these ratios are the targets, and a run of ~100 ms
  // moves by several ms with whatever else the machine does.
  const rounds = RUNS * 2 + 1;
  const times = cases.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    for (const [i, [, , args]] of cases.entries()) times[i].push(await timeOnce(args));
  }
  const mid = (list: number[]) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)];
  const results = new Map<string, number>();
  console.log(`median wall time of ${rounds} interleaved runs each; ratio = time / empty deno run`);
  const base = mid(times[0]);
  for (const [i, [key, name]] of cases.entries()) {
    const ms = mid(times[i]);
    if (key) results.set(key, ms);
    console.log(
      `${(key ? `(${key}) ` : "    ") + name.padEnd(40)} ${ms.toFixed(0).padStart(5)} ms  ${
        (ms / base).toFixed(2)
      }x`,
    );
  }
  const ratio = (results.get("a") ?? NaN) / (results.get("b") ?? NaN);
  console.log(`(a)/(b) = ${ratio.toFixed(2)} (target <= 1.5)`);

  await phaseBreakdown(bed, app, run);
  await versusCurl(bed, app, run);
  await shimOverhead(app, run);
  await storeVersusPem(bed, run);
  await bridgeBench(bed, bridgeOptions());

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
}

/**
 * A fresh certificate token (no cache, no mail login) with the key in a PEM file versus the
 * thumbprint in .NET's store, signed by the PowerShell signer: interleaved, so that both see
 * the same machine load. A bare `pwsh` start is the floor of the store's extra cost.
 */
async function storeVersusPem(bed: TestBed, run: (...args: string[]) => string[]) {
  const pwsh = findPwsh();
  if (!pwsh) {
    console.log("certificate store: skipped (pwsh not found)");
    return;
  }
  const home = await Deno.makeTempDir({ prefix: "gia-bench-home-" });
  try {
    const [thumbprint] = await importIntoStore(pwsh, home, [
      { path: bed.cert.pfxFile, password: bed.cert.password },
    ]);
    const common = bed.common();
    common.splice(common.indexOf("-TimeoutSeconds"), 2, "-TimeoutSeconds", "30");
    const token = (certificate: string) =>
      run(
        ...common,
        "-clientId",
        APP,
        "-clientcertificate",
        certificate,
        "-targetMailbox",
        MAILBOX,
        "-OutputFormat",
        "Token",
        "-NoTokenCache",
      );
    const env = {
      HOME: home,
      GET_IMAPACCESSTOKEN_CERT_DIR: home,
      GET_IMAPACCESSTOKEN_POWERSHELL: pwsh,
    };
    const times = { pem: [] as number[], store: [] as number[], pwsh: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      times.pem.push(await timeOnce(token(bed.cert.combinedFile)));
      times.store.push(await timeOnce(token(thumbprint), env));
      times.pwsh.push(
        await timeOnce(["-NoLogo", "-NoProfile", "-NonInteractive", "-Command", "exit"], env, pwsh),
      );
    }
    const mid = (list: number[]) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)];
    const [pem, store, bare] = [mid(times.pem), mid(times.store), mid(times.pwsh)];
    console.log(`fresh certificate token, PEM file              ${pem.toFixed(0).padStart(5)} ms`);
    console.log(
      `fresh certificate token, store (pwsh signer)   ${store.toFixed(0).padStart(5)} ms`,
    );
    console.log(`bare pwsh -NoProfile -Command exit             ${bare.toFixed(0).padStart(5)} ms`);
    console.log(
      `store / PEM = ${(store / pem).toFixed(2)}; store - PEM = ${(store - pem).toFixed(0)} ms ` +
        `(a pwsh start is ${bare.toFixed(0)} ms)`,
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

/**
 * What the PowerShell script adds: `pwsh -File Get-IMAPAccessToken.ps1 ...` against a bare pwsh
 * start plus the program run directly with the same arguments (a cached token, Token output).
 * The script finds the program as in a release: in the folder named after the platform beside
 * it (here a two-line wrapper that runs the program from source; the direct runs use the same
 * wrapper). Interleaved, median of at least 5 each; the target is at most 150 ms.
 *
 * In the same run, the floor under any such script: `pwsh -File` of an empty script and of the
 * shim's param() block alone (same arguments), the least a drop-in script costs; and, for
 * comparison, that block plus one call of the program (same arguments, written into the script)
 * through a one-block pipeline, the least a script needs to hand the program's lines to
 * PowerShell's streams itself (the shim leaves that to its compiled helper).
 */
async function shimOverhead(app: string[], run: (...args: string[]) => string[]) {
  const pwsh = findPwsh();
  if (!pwsh || Deno.build.os === "windows") {
    console.log("shim overhead: skipped (pwsh not found)");
    return;
  }
  const dist = await Deno.makeTempDir({ prefix: "gia-bench-dist-" });
  try {
    const shim = `${dist}/Get-IMAPAccessToken.ps1`;
    const source = await Deno.readTextFile(new URL("./Get-IMAPAccessToken.ps1", import.meta.url));
    await Deno.writeTextFile(shim, source);
    // The script's compiled helper, as in a release, built from the current source.
    await buildShim(dist);
    await Deno.mkdir(`${dist}/${Deno.build.target}`);
    const program = `${dist}/${Deno.build.target}/Get-IMAPAccessToken`;
    const words = [Deno.execPath(), ...run()].map((w) => `'${w}'`).join(" ");
    await Deno.writeTextFile(program, `#!/bin/sh\nexec ${words} "$@"\n`);
    await Deno.chmod(program, 0o755);
    const args = [...app, "-OutputFormat", "Token"];
    // The floor scripts: nothing; the param() block; the block and one pipeline.
    const from = source.indexOf("[CmdletBinding()]");
    const paramBlock = source.slice(from, source.indexOf("\n)\n", from) + 3);
    const psq = (w: string) => `'${w.replaceAll("'", "''")}'`;
    const empty = `${dist}/empty.ps1`;
    const params = `${dist}/params.ps1`;
    const floor = `${dist}/floor.ps1`;
    await Deno.writeTextFile(empty, "");
    await Deno.writeTextFile(params, paramBlock);
    await Deno.writeTextFile(
      floor,
      `${paramBlock}& ${psq(program)} ${args.map(psq).join(" ")} | & { process { $_ } }\n`,
    );
    // The shim must not be told to run something else.
    const env = { GET_IMAP_ACCESS_TOKEN_COMMAND: "" };
    const pwshArgs = ["-NoLogo", "-NoProfile", "-NonInteractive"];
    const cases: [string, () => Promise<number>][] = [
      [
        "pwsh -NoProfile -Command exit",
        () => timeOnce([...pwshArgs, "-Command", "exit"], undefined, pwsh),
      ],
      ["pwsh -File empty.ps1", () => timeOnce([...pwshArgs, "-File", empty], undefined, pwsh)],
      [
        "pwsh -File param() block only (same)",
        () => timeOnce([...pwshArgs, "-File", params, ...args], undefined, pwsh),
      ],
      [
        "pwsh -File param() block + one pipeline",
        () => timeOnce([...pwshArgs, "-File", floor, ...args], undefined, pwsh),
      ],
      ["program directly (cached token, Token)", () => timeOnce(args, undefined, program)],
      [
        "pwsh -File Get-IMAPAccessToken.ps1 (same)",
        () => timeOnce([...pwshArgs, "-File", shim, ...args], env, pwsh),
      ],
    ];
    const times: number[][] = cases.map(() => []);
    for (let i = 0; i < Math.max(RUNS, 5); i++) {
      for (const [j, [, once]] of cases.entries()) times[j].push(await once());
    }
    const mid = (list: number[]) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)];
    const [bare, , , , direct, script] = times.map(mid);
    for (const [j, [name]] of cases.entries()) {
      const ms = mid(times[j]);
      const over = j === 0 || j === 4
        ? ""
        : `  (${ms - bare >= 0 ? "+" : ""}${(ms - bare).toFixed(0)} ms over -Command exit)`;
      console.log(`${name.padEnd(46)} ${ms.toFixed(0).padStart(5)} ms${over}`);
    }
    console.log(
      `shim overhead = ${(script - bare - direct).toFixed(0)} ms (target <= 150); ` +
        `floor (param() block) = ${(mid(times[2]) - bare).toFixed(0)} ms, ` +
        `param() block + one pipeline = ${(mid(times[3]) - bare - direct).toFixed(0)} ms`,
    );
  } finally {
    await Deno.remove(dist, { recursive: true });
  }
}

/**
 * A fresh check against its floor: the same work done by two curl calls (one token POST, one
 * XOAUTH2 login that lists the folders, or for POP3 the messages), same servers, interleaved.
 * Targets: at most 2.0x for the secret, with IMAP and POP3, and for a PEM certificate.
 */
async function versusCurl(bed: TestBed, app: string[], run: (...args: string[]) => string[]) {
  const ca = bed.pki.caFile;
  const tokenUrl = `${bed.entra.url}/${TENANT}/oauth2/v2.0/token`;
  const form = `client_id=${APP}&client_secret=${encodeURIComponent(SECRET)}` +
    "&scope=https%3A%2F%2Foutlook.office365.com%2F.default&grant_type=client_credentials";
  const floor = (url: string) => [
    "-c",
    `T=$(curl -sS --cacert '${ca}' -d '${form}' '${tokenUrl}' | ` +
    `sed -E 's/.*"access_token":"([^"]+)".*/\\1/') && ` +
    `curl -sS --cacert '${ca}' --user '${MAILBOX}:' --oauth2-bearer "$T" '${url}'`,
  ];
  const ex = bed.exchange;
  const cert = [...app.slice(0, app.indexOf("-clientsecret")), "-clientcertificate"];
  const cases: [string, string[], string[]][] = [
    [
      "IMAP, secret",
      run(...app, "-Protocol", "IMAP", "-Port", String(ex.imapPort), "-NoTokenCache"),
      floor(`imaps://127.0.0.1:${ex.imapPort}/`),
    ],
    [
      "POP3, secret",
      run(...app, "-Protocol", "POP3", "-Port", String(ex.pop3Port), "-NoTokenCache"),
      floor(`pop3s://127.0.0.1:${ex.pop3Port}/`),
    ],
    [
      "IMAP, PEM certificate",
      run(
        ...cert,
        bed.cert.combinedFile,
        "-targetMailbox",
        MAILBOX,
        "-Protocol",
        "IMAP",
        "-Port",
        String(ex.imapPort),
        "-NoTokenCache",
      ),
      floor(`imaps://127.0.0.1:${ex.imapPort}/`),
    ],
  ];
  for (const [name, ours, curl] of cases) {
    const times = { ours: [] as number[], curl: [] as number[] };
    for (let i = 0; i < Math.max(RUNS, 7); i++) {
      times.ours.push(await timeOnce(ours));
      times.curl.push(await timeOnce(curl, undefined, "/bin/sh"));
    }
    const mid = (list: number[]) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)];
    const [tool, base] = [mid(times.ours), mid(times.curl)];
    console.log(
      `fresh ${name.padEnd(22)} ${tool.toFixed(0).padStart(5)} ms, curl floor ` +
        `${base.toFixed(0).padStart(4)} ms: ${(tool / base).toFixed(2)}x (target <= 2.0)`,
    );
  }
}

/**
 * Where the time goes: the opt-in trace (GET_IMAPACCESSTOKEN_TRACE=1) of a fresh IMAP check
 * and of a cached -OutputFormat Token run, medians per phase (ms since the process started;
 * "exit" is the wall time after the last mark).
 */
async function phaseBreakdown(bed: TestBed, app: string[], run: (...args: string[]) => string[]) {
  const traced = async (args: string[]) => {
    const started = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      env: { GET_IMAPACCESSTOKEN_TRACE: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const wall = performance.now() - started;
    const marks = new TextDecoder().decode(out.stderr).split("\n")
      .map((l) => /^TRACE (\S+) ([\d.]+)$/.exec(l)).filter((m) => m !== null)
      .map((m) => [m[1], Number(m[2])] as [string, number]);
    return { marks, wall };
  };
  const fresh = run(
    ...app,
    "-Protocol",
    "IMAP",
    "-Port",
    String(bed.exchange.imapPort),
    "-NoTokenCache",
  );
  const cached = run(...app, "-OutputFormat", "Token");
  for (const [name, args] of [["fresh IMAP check", fresh], ["cached Token", cached]] as const) {
    const runs: { marks: [string, number][]; wall: number }[] = [];
    for (let i = 0; i < Math.max(RUNS, 5); i++) runs.push(await traced(args));
    const names = runs[0].marks.map(([n]) => n);
    const mid = (list: number[]) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)];
    const at = names.map((n) => mid(runs.map((r) => r.marks.find(([m]) => m === n)?.[1] ?? NaN)));
    const wall = mid(runs.map((r) => r.wall));
    const parts = names.map((n, i) => `${n} ${at[i].toFixed(0)}`);
    console.log(`phases, ${name} (ms since start): ${parts.join(", ")}, exit ${wall.toFixed(0)}`);
  }
}
