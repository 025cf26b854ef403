/**
 * The certificate store's signer: a PowerShell process running `store_signer.ps1`, which finds
 * a certificate by thumbprint in .NET's `X509Store` and signs with its private key there. The
 * key often cannot be exported (Windows' default for imported PFX files), so it never leaves
 * the store: the program builds the client assertion (`assertion.ts`) and sends only the bytes
 * to sign. On Windows that is Windows PowerShell 5.1 (always installed), elsewhere PowerShell 7
 * (`pwsh`), whose CurrentUser\My store is a folder under ~/.dotnet (Linux) or the keychain (macOS).
 *
 * One process per run, started only when a token must be requested, every answer awaited with
 * a deadline, and always ended by `close()`.
 */

import { posix, win32 } from "node:path";
import { messageOf, UsageError } from "../errors.ts";
import { base64, fromBase64 } from "../base64.ts";
import { CERT } from "./certificate_types.ts";

/** Environment variable naming the PowerShell to run (e.g. pwsh.exe instead of powershell.exe). */
export const POWERSHELL_ENV = "GET_IMAPACCESSTOKEN_POWERSHELL";

/** The stores searched, in order: the original's place first. LocalMachine exists on Windows only. */
export function storesFor(os: typeof Deno.build.os): string[] {
  return os === "windows" ? ["CurrentUser\\My", "LocalMachine\\My"] : ["CurrentUser\\My"];
}

/** Where pwsh is commonly installed when it is not on PATH (packages, snap, Homebrew, dotnet tool). */
const UNIX_PWSH_PLACES = [
  "/usr/bin/pwsh",
  "/usr/local/bin/pwsh",
  "/opt/microsoft/powershell/7/pwsh",
  "/snap/bin/pwsh",
  "/opt/homebrew/bin/pwsh",
  "/usr/local/microsoft/powershell/7/pwsh",
];

/**
 * The PowerShell to run for `os`: `GET_IMAPACCESSTOKEN_POWERSHELL` when set (a missing file is a
 * UsageError naming the variable); on Windows powershell.exe under %SystemRoot% by its absolute
 * path (never a powershell.exe that PATH or the current folder offers); elsewhere pwsh from PATH
 * or a usual place. Undefined when there is none.
 */
export function findPowerShell(
  os: typeof Deno.build.os,
  env: (name: string) => string | undefined,
  isFile: (path: string) => boolean,
): string | undefined {
  const override = env(POWERSHELL_ENV)?.trim();
  if (override) {
    if (isFile(override)) return override;
    throw new UsageError(
      `${CERT}: ${POWERSHELL_ENV} names ${override}, which is not a file (point it to ` +
        "powershell.exe or pwsh)",
      { code: "POWERSHELL_NOT_FOUND" },
    );
  }
  if (os === "windows") {
    const root = env("SystemRoot") || env("windir");
    if (!root) return undefined;
    const path = win32.join(root, "System32", "WindowsPowerShell", "v1.0", "powershell.exe");
    return isFile(path) ? path : undefined;
  }
  const onPath = (env("PATH") ?? "").split(":").filter((dir) => posix.isAbsolute(dir))
    .map((dir) => posix.join(dir, "pwsh"));
  const home = env("HOME");
  const tool = home ? [posix.join(home, ".dotnet", "tools", "pwsh")] : [];
  return [...onPath, ...UNIX_PWSH_PLACES, ...tool].find(isFile);
}

/** True when `path` is an existing file (symlinks followed). */
export function isFileSync(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** What `find` learned about the key of the certificate it found. */
export type KeyState =
  | { usable: true }
  | { usable: false; problem: "none" }
  | { usable: false; problem: "algorithm"; algorithm: string }
  | { usable: false; problem: "inaccessible"; code: string; account: string; reason: string };

export type FindResult =
  | { found: true; store: string; der: Uint8Array; key: KeyState }
  | { found: false; searched: string[] };

export type SignResult = { signature: Uint8Array } | { pssRefused: string };

/** How the signer process is started; tests replace nothing here but the environment. */
export interface SignerStart {
  powershell: string;
  /** Deadline for each answer, start-up included. */
  timeoutMs: number;
  /** The script text (default: store_signer.ps1 beside this module). */
  script?: string;
}

const SCRIPT_URL = new URL("./store_signer.ps1", import.meta.url);

/** The script as sent: comment lines and indentation cut, to keep the command line short. */
export async function signerScript(): Promise<string> {
  const text = await Deno.readTextFile(SCRIPT_URL);
  return text.split(/\r?\n/).map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#")).join("\n");
}

/** `-EncodedCommand` wants UTF-16LE in base64: no quoting rules, no script file, no execution policy. */
export function encodeCommand(script: string): string {
  const bytes = new Uint8Array(script.length * 2);
  for (let i = 0; i < script.length; i++) {
    const unit = script.charCodeAt(i);
    bytes[2 * i] = unit & 0xff;
    bytes[2 * i + 1] = unit >> 8;
  }
  return base64(bytes);
}

const MAX_STDERR = 8192;

export class StoreSigner {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #stderr = "";
  #stderrDone: Promise<void>;
  #powershell: string;
  #timeoutMs: number;
  #closed = false;

  private constructor(child: Deno.ChildProcess, powershell: string, timeoutMs: number) {
    this.#child = child;
    this.#powershell = powershell;
    this.#timeoutMs = timeoutMs;
    this.#writer = child.stdin.getWriter();
    this.#lines = answerLines(child.stdout)[Symbol.asyncIterator]();
    this.#stderrDone = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) {
        if (this.#stderr.length < MAX_STDERR) {
          this.#stderr += decoder.decode(chunk, { stream: true });
        }
      }
    })().catch(() => {});
  }

  /** Starts PowerShell with the signer script. Throws a UsageError when it cannot be started. */
  static async start(options: SignerStart): Promise<StoreSigner> {
    const script = options.script ?? await signerScript();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(options.powershell, {
        args: [
          "-NoLogo",
          "-NoProfile",
          "-NonInteractive",
          "-ExecutionPolicy",
          "Bypass",
          "-EncodedCommand",
          encodeCommand(script),
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      throw new UsageError(
        `${CERT}: cannot start PowerShell (${options.powershell}) to read the certificate ` +
          `store: ${messageOf(error)}; set ${POWERSHELL_ENV}`,
        { code: "POWERSHELL_NOT_FOUND", cause: error },
      );
    }
    return new StoreSigner(child, options.powershell, options.timeoutMs);
  }

  /** Looks `thumbprint` (upper-case hex) up in `stores`, in order. */
  async find(thumbprint: string, stores: string[]): Promise<FindResult> {
    const answer = await this.#ask(["find", thumbprint, stores.join(",")], "searching the store");
    if (answer[0] === "missing") {
      return { found: false, searched: (answer[1] ?? "").split("; ").filter((s) => s !== "") };
    }
    if (answer[0] !== "found" || answer.length < 4) throw this.#unexpected(answer);
    return {
      found: true,
      store: answer[1],
      der: fromBase64(answer[2]),
      key: keyState(answer[3]),
    };
  }

  /** Signs `data` with the key of the certificate `find` found. */
  async sign(alg: "PS256" | "RS256", data: Uint8Array): Promise<SignResult> {
    const answer = await this.#ask(["sign", alg, base64(data)], "signing");
    if (answer[0] === "pss-refused") return { pssRefused: answer[1] ?? "" };
    if (answer[0] !== "signature" || !answer[1]) throw this.#unexpected(answer);
    return { signature: fromBase64(answer[1]) };
  }

  /** Ends the process: end of input first (it exits by itself), then a kill if it lingers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 2000));
    const exited = await Promise.race([
      this.#writer.close().catch(() => {}).then(() => this.#child.status).then(() => true),
      grace,
    ]);
    clearTimeout(timer);
    if (!exited) this.#kill();
    await this.#child.status.catch(() => {});
    await this.#stderrDone;
    await this.#lines.return?.();
  }

  #kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }

  async #ask(request: string[], doing: string): Promise<string[]> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.#timeoutMs);
    });
    try {
      // The deadline covers the write too: a process that never reads must not hang us.
      const written = this.#writer.write(new TextEncoder().encode(request.join("\t") + "\n"))
        .catch(() => {
          // PowerShell is gone already; reading its answer below says why.
        });
      const next = await Promise.race([
        written.then(() => this.#lines.next()),
        deadline,
      ]);
      if (next === "timeout") {
        this.#kill();
        throw new UsageError(
          `${CERT}: PowerShell (${this.#powershell}) did not finish ${doing} within ` +
            `${this.#timeoutMs / 1000} s (a prompt nobody can answer, or a hung provider); ` +
            "it was stopped",
          { code: "SIGNER_TIMEOUT" },
        );
      }
      if (next.done) throw await this.#ended(doing);
      const answer = next.value.split("\t");
      if (answer[0] === "error") throw signerError(answer[1], answer.slice(2).join(" "));
      return answer;
    } finally {
      clearTimeout(timer);
    }
  }

  /** PowerShell ended without answering: its exit status and last error line say why. */
  async #ended(doing: string): Promise<UsageError> {
    const status = await this.#child.status;
    await this.#stderrDone;
    const last = lastErrorLine(this.#stderr);
    return new UsageError(
      `${CERT}: PowerShell (${this.#powershell}) ended while ${doing} (exit code ` +
        `${status.code}${last ? `: ${last.slice(0, 300)}` : ""})`,
      { code: "CERT_SIGN_FAILED" },
    );
  }

  #unexpected(answer: string[]): UsageError {
    return new UsageError(
      `${CERT}: the certificate store signer gave an unexpected answer (${answer[0]})`,
      { code: "CERT_SIGN_FAILED" },
    );
  }
}

/**
 * The last line of what PowerShell wrote to standard error. Windows PowerShell 5.1 without an
 * interactive host writes its errors as CLIXML (`#< CLIXML` then `<Objs ...>` with
 * `<S S="Error">` strings whose line ends are `_x000D__x000A_`): the text is taken from there.
 */
export function lastErrorLine(stderr: string): string | undefined {
  const lines = stderr.includes("#< CLIXML")
    ? [...stderr.matchAll(/<S S="Error">([\s\S]*?)<\/S>/g)].map((m) =>
      m[1].replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)))
        .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"')
        .replace(/&apos;/g, "'").replace(/&amp;/g, "&")
    ).join("").split(/\r?\n/)
    : stderr.split(/\r?\n/);
  return lines.map((l) => l.trim()).filter((l) => l !== "").pop();
}

/** The script's "GIAT"-prefixed answer lines, without the prefix; other output is dropped. */
async function* answerLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    let end: number;
    while ((end = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, end).replace(/\r$/, "");
      buffered = buffered.slice(end + 1);
      if (line.startsWith("GIAT\t")) yield line.slice(5);
    }
  }
}

function keyState(field: string): KeyState {
  if (field === "rsa") return { usable: true };
  if (field.startsWith("algorithm:")) {
    return { usable: false, problem: "algorithm", algorithm: field.slice(10) };
  }
  if (field.startsWith("inaccessible:")) {
    const [code, account, ...reason] = field.slice(13).split(":");
    return { usable: false, problem: "inaccessible", code, account, reason: reason.join(":") };
  }
  return { usable: false, problem: "none" };
}

function signerError(code: string | undefined, text: string): UsageError {
  switch (code) {
    case "POWERSHELL_CONSTRAINED":
      return new UsageError(
        `${CERT}: PowerShell runs in ${text || "ConstrainedLanguage"} mode here (AppLocker/WDAC ` +
          "policy), so it cannot read the certificate store; use a PFX/PEM file instead",
        { code: "POWERSHELL_CONSTRAINED" },
      );
    case "CERT_KEY_ACCESS": {
      // The script puts the account in front: "DOMAIN\user: Keyset does not exist".
      const [account, ...reason] = text.split(": ");
      return new UsageError(
        `${CERT}: the private key cannot be used by ${account} (${reason.join(": ")}); give ` +
          "that account read access to the key (certlm.msc > the certificate > All Tasks > " +
          "Manage Private Keys)",
        { code: "CERT_KEY_ACCESS" },
      );
    }
    case "CERT_SIGN_CANCELLED":
      return new UsageError(
        `${CERT}: signing with the certificate's key was cancelled or needs a prompt that cannot ` +
          `be shown here (${text})`,
        { code: "CERT_SIGN_CANCELLED" },
      );
    default:
      return new UsageError(`${CERT}: signing with the certificate's key failed: ${text}`, {
        code: "CERT_SIGN_FAILED",
      });
  }
}
