/**
 * Where the program's text goes: standard output and error, or, for the PowerShell script,
 * tagged lines on standard output. Kept apart from the reporters (console.ts), which load the
 * translated texts: printing a cached token needs only this.
 */
const encoder = new TextEncoder();

/**
 * What a line on the console is, beyond stdout or stderr: the PowerShell script needs it to put
 * each line into the PowerShell stream the original used (see `taggedSink`).
 */
export type Channel = "info" | "warning" | "error" | "verbose" | "control";

/** Where text goes; tests capture it, production writes to the real streams. */
export interface Sink {
  /** The result: server lines, JSON, the token. */
  out(text: string): void;
  /** Everything else; `channel` says what it is (default "info"). */
  err(text: string, channel?: Channel): void;
}

export const consoleSink: Sink = {
  out: (text) => writeAll(Deno.stdout, text),
  err: (text) => writeAll(Deno.stderr, text),
};

/**
 * Set (to "1") by scripts/Get-IMAPAccessToken.ps1 for the program it runs: every line then goes
 * to stdout, tagged with the PowerShell stream it belongs to, so that the script can write it
 * there (success output, Write-Host, Write-Verbose) in order. Not meant for other callers.
 */
export const STREAMS_ENV = "GET_IMAPACCESSTOKEN_STREAMS";

/**
 * The tags, one letter and a space in front of every line: O output, I information (progress,
 * prompts, summaries), W warning, E error and its advice, V verbose (without "VERBOSE: ", which
 * PowerShell adds). Control output (the waiting indicator) is dropped.
 */
const TAGS: Record<Exclude<Channel, "control">, string> = {
  info: "I",
  warning: "W",
  error: "E",
  verbose: "V",
};

export function taggedSink(write: (text: string) => void = (t) => writeAll(Deno.stdout, t)): Sink {
  const tag = (letter: string, text: string) => {
    const lines = text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n");
    write(lines.map((line) => `${letter} ${line}\n`).join(""));
  };
  return {
    out: (text) => tag("O", text),
    err: (text, channel = "info") => {
      if (channel === "control") return;
      tag(TAGS[channel], channel === "verbose" ? text.replace(/^VERBOSE: /gm, "") : text);
    },
  };
}

/** The sink for this process: tagged lines for the PowerShell script, else stdout and stderr. */
export function processSink(env: (name: string) => string | undefined): Sink {
  return env(STREAMS_ENV) === "1" ? taggedSink() : consoleSink;
}

function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}
