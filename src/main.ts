/**
 * Entry point: the only place that prints a final error and calls Deno.exit.
 */
import { lazy } from "./lazy.ts";
import { type BridgeCommand, readCommandLine } from "./cli/parse.ts";
import { lookupParameter } from "./cli/bind.ts";
import { ExitCode, messageOf, toToolError, UsageError } from "./errors.ts";
import { processSink, type Sink, STREAMS_ENV } from "./output/sink.ts";
import { printable } from "./text.ts";
import { TOOL_NAME, VERSION } from "./version.ts";
import { type Lang, pickLanguage } from "./diagnose/language.ts";
import type { OutputFormat } from "./cli/options.ts";
import type { ToolError } from "./errors.ts";
import { mark, TRACE_ENV, traceLines } from "./trace.ts";

mark("main");

/** One line from standard input (the paste flow), without its line ending; null at its end. */
async function readLine(): Promise<string | null> {
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return text === "" ? null : text;
      text += value;
      const end = text.indexOf("\n");
      if (end >= 0) return text.slice(0, end).replace(/\r$/, "");
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * Whether standard output leads nowhere: the Deno runtime replaces a closed
 * stdout with /dev/null, so a script's `>&-` would silently lose the token.
 * Linux only (where /proc shows it); elsewhere false.
 */
function stdoutIsNull(): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    return Deno.readLinkSync("/proc/self/fd/1") === "/dev/null";
  } catch {
    return false;
  }
}

/** Best effort: did the user ask for JSON? (for errors raised while parsing). */
function wantsJson(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const [name, value] = argv[i].replace(/^-/, "").split(":", 2);
    try {
      if (lookupParameter(name).name !== "OutputFormat") continue;
    } catch {
      continue;
    }
    return (value ?? argv[i + 1] ?? "").toLowerCase() === "json";
  }
  return false;
}

/**
 * Reports a failure outside a run; the reporter and its texts load only then (a cached token
 * is printed without them).
 */
async function reportFailure(error: ToolError, format: OutputFormat, lang: Lang): Promise<number> {
  const failure = await lazy<typeof import("./app/failure.ts")>("app/failure.ts");
  failure.reportFailure(error, { format, lang, sink: sinkOption });
  return error.exitCode;
}

/** Where output goes: stdout and stderr, or tagged lines for the PowerShell script. */
const sink = processSink((name) => Deno.env.get(name));
/** Given to reporters only when it is not the console (they detect the terminal themselves). */
const sinkOption = Deno.env.get(STREAMS_ENV) === "1" ? sink : undefined;

export async function main(argv: readonly string[]): Promise<number> {
  let command;
  try {
    command = await readCommandLine(argv, (name) => Deno.env.get(name));
    mark("parsed");
  } catch (thrown) {
    // Bad parameters: reported like any other failure, before anything else happens.
    const lang = pickLanguage(undefined, (name) => Deno.env.get(name));
    return await reportFailure(toToolError(thrown), wantsJson(argv) ? "Json" : "Text", lang);
  }
  if (command.kind === "help") {
    // Help is text for people: loaded only when asked for.
    const { helpText } = await lazy<typeof import("./cli/help.ts")>("cli/help.ts");
    sink.out(helpText());
    return ExitCode.ok;
  }
  if (command.kind === "version") {
    sink.out(`${TOOL_NAME} ${VERSION}\n`);
    return ExitCode.ok;
  }
  if (command.kind === "bridge" || command.kind === "bridgePasswordHash") {
    return await bridgeCommand(command);
  }
  const { options } = command;
  const lang = pickLanguage(options.language, (name) => Deno.env.get(name));
  const tokenOnly = options.outputFormat === "Token" || options.outputFormat === "Sasl";
  if (tokenOnly && stdoutIsNull()) {
    const error = new UsageError(
      `-OutputFormat ${options.outputFormat}: standard output is closed (or /dev/null), so ` +
        "the result would be lost; redirect it to a file or a program",
      { code: "NO_OUTPUT" },
    );
    return await reportFailure(error, options.outputFormat, lang);
  }
  if (tokenOnly) {
    // A password command's usual case: a cached token, printed without loading the run.
    const cached = await lazy<typeof import("./app/cached_token.ts")>("app/cached_token.ts");
    const value = await cached.cachedOutput(options, (name) => Deno.env.get(name));
    mark("cache-checked");
    if (value !== undefined) return printValue(sink, options.outputFormat, value);
  }
  const [{ run }, { Reporter }] = await Promise.all([
    lazy<typeof import("./app/run.ts")>("app/run.ts"),
    lazy<typeof import("./output/console.ts")>("output/console.ts"),
  ]);
  mark("loaded");
  const reporter = new Reporter({
    format: options.outputFormat,
    verbose: options.verbose,
    lang,
    sink: sinkOption,
  });
  const { report, token, sasl } = await run(options, reporter, {
    stdin: () => Deno.stdin.readable,
    readLine,
    interactive: Deno.stdin.isTerminal(),
    env: (name) => Deno.env.get(name),
    // Only an interactive sign-in opens a browser.
    openBrowser: async (url) =>
      (await lazy<typeof import("./platform/browser.ts")>("platform/browser.ts")).openBrowser(url),
  }, lang);
  try {
    reporter.finish(report, { token, sasl });
  } catch (thrown) {
    if (options.outputFormat === "Text") throw thrown;
    return notDelivered(sink, options.outputFormat, thrown);
  }
  return report.exitCode;
}

/** Prints a cached token or XOAUTH2 string, as the reporter prints them (Token, Sasl). */
function printValue(sink: Sink, format: OutputFormat, value: string): number {
  try {
    sink.out(`${value}\n`);
  } catch (thrown) {
    return notDelivered(sink, format, thrown);
  }
  return ExitCode.ok;
}

/** The reader went away (broken pipe): the result was not delivered, so the run failed. */
function notDelivered(sink: Sink, format: OutputFormat, thrown: unknown): number {
  const reason = messageOf(thrown);
  sink.err(
    `ERROR: -OutputFormat ${format}: cannot write to standard output ` +
      `(${printable(reason)}) [NO_OUTPUT]\n`,
    "error",
  );
  return ExitCode.usage;
}

/** When SIGTERM or Ctrl+C (SIGINT) arrives; what arrived. */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      try {
        Deno.addSignalListener(signal, () => resolve(signal));
      } catch {
        // SIGTERM cannot be watched on Windows; Ctrl+C (SIGINT) can
      }
    }
  });
}

async function bridgeCommand(command: BridgeCommand | { kind: "bridgePasswordHash" }) {
  const language = "language" in command ? command.language : undefined;
  const bridge = await lazy<typeof import("./bridge/run.ts")>("bridge/run.ts");
  try {
    if (command.kind === "bridgePasswordHash") {
      sink.out(`${await bridge.passwordHashCommand(Deno.stdin.readable, 60_000)}\n`);
      return ExitCode.ok;
    }
    const config = bridge.loadBridgeConfig(command.configPath);
    if (command.diagnose) {
      return await bridge.diagnoseBridge(config, (line) => sink.err(`${line}\n`));
    }
    return await bridge.runBridge(config, {
      log: (line) => sink.err(`${line}\n`),
      stopRequested: stopSignal(),
      verbose: command.verbose,
    });
  } catch (thrown) {
    const lang = pickLanguage(language, (name) => Deno.env.get(name));
    return await reportFailure(toToolError(thrown), "Text", lang);
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (thrown) {
    // A bug: say so briefly; the stack only with -Verbose.
    const error = toToolError(thrown);
    sink.err(`ERROR: internal error: ${printable(error.message)}\n`, "error");
    if (Deno.args.some((a) => /^-(verbose|vb)(:\$?true)?$/i.test(a)) && thrown instanceof Error) {
      sink.err(`${thrown.stack}\n`, "verbose");
    }
    code = ExitCode.internal;
  }
  mark("done");
  if (Deno.env.get(TRACE_ENV) === "1") sink.err(traceLines().join("\n") + "\n", "verbose");
  Deno.exit(code);
}
