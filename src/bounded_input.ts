/**
 * Input that a person or a script hands over (standard input, files named by
 * parameters): bounded in size and time, decoded as UTF-8 or, with a byte
 * order mark, UTF-16 (what Windows PowerShell 5.1's `>` and `Out-File`
 * write). NUL bytes are refused: no secret, address or PEM text has one, and
 * they mean binary data or UTF-16 without its mark. Every problem is a
 * `UsageError` (exit 2) whose message starts with `what`, e.g.
 * `-clientsecret: standard input`.
 */
import { UsageError } from "./errors.ts";

/** Standard input for `-clientsecret -`: a secret is about 40 characters. */
export const MAX_STDIN_BYTES = 64 * 1024;

export interface BoundedReadOptions {
  /** Names the input in messages: `-clientsecret: standard input`. */
  what: string;
  maxBytes: number;
  /** Gives up when the input has not ended by then (an open, silent pipe). */
  timeoutMs: number;
  /** What to do about input that does not end; default: how to pipe a secret. */
  endHint?: string;
  /** Appended to the size message; default: "; it must hold only the value". */
  sizeHint?: string;
}

/** The hints for a file named by a parameter (a FIFO, `<(...)`, a device). */
export const FILE_HINTS = {
  endHint: "a pipe or FIFO must be closed by its writer",
  sizeHint: "",
} as const;

function timeoutError(options: BoundedReadOptions): UsageError {
  return new UsageError(
    `${options.what} did not end within ${options.timeoutMs / 1000} s (-TimeoutSeconds); ` +
      (options.endHint ?? "close it after the value, e.g. printf '%s' \"$SECRET\" | ..."),
    { code: "INPUT_TIMEOUT" },
  );
}

function sizeText(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

/**
 * All of `stream`, at most `maxBytes`, ended within `timeoutMs`; cancels the
 * stream when giving up, so an endless producer costs no memory.
 */
export async function readBounded(
  stream: ReadableStream<Uint8Array>,
  options: BoundedReadOptions,
  /** What is left of `options.timeoutMs` (which the message names). */
  remainingMs = options.timeoutMs,
): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), remainingMs);
  });
  try {
    while (true) {
      const next = await Promise.race([reader.read(), deadline]);
      if (next === "timeout") throw timeoutError(options);
      if (next.done) break;
      size += next.value.byteLength;
      if (size > options.maxBytes) {
        throw new UsageError(
          `${options.what} is larger than ${sizeText(options.maxBytes)}` +
            (options.sizeHint ?? "; it must hold only the value"),
          { code: "INPUT_TOO_LARGE" },
        );
      }
      chunks.push(next.value);
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return bytes;
}

/**
 * Text from bytes: UTF-8 (a UTF-8 mark is dropped) or UTF-16 LE/BE with its
 * mark. Refuses NUL bytes (outside a UTF-16 text) and invalid encoding.
 */
export function decodeText(bytes: Uint8Array, what: string): string {
  let encoding = "utf-8";
  let body = bytes;
  if (bytes[0] === 0xff && bytes[1] === 0xfe) encoding = "utf-16le";
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) encoding = "utf-16be";
  else if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) body = bytes.subarray(3);
  if (encoding !== "utf-8") body = bytes.subarray(2);
  if (encoding === "utf-8" && body.includes(0)) {
    throw new UsageError(
      `${what} contains a NUL byte: binary data, or UTF-16 text without its byte order mark`,
      { code: "BAD_INPUT" },
    );
  }
  let text: string;
  try {
    text = new TextDecoder(encoding, { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    throw new UsageError(`${what} is not ${encoding.toUpperCase()} text`, { code: "BAD_INPUT" });
  }
  if (text.includes("\0")) {
    throw new UsageError(`${what} contains a NUL character`, { code: "BAD_INPUT" });
  }
  return text;
}

/** `readBounded` then `decodeText`. */
export async function readBoundedText(
  stream: ReadableStream<Uint8Array>,
  options: BoundedReadOptions,
): Promise<string> {
  return decodeText(await readBounded(stream, options), options.what);
}

/**
 * A file's bytes, at most `maxBytes`, within `timeoutMs` from the start: opening included,
 * since opening a FIFO waits for its writer. For files that may be pipes (`<(...)`, mkfifo)
 * or devices; a silent one ends as INPUT_TIMEOUT, an endless one as INPUT_TOO_LARGE. File
 * system errors (not found, a folder, no permission) are thrown as they are.
 */
export async function readFileBounded(
  path: string,
  options: BoundedReadOptions,
): Promise<Uint8Array> {
  const started = Date.now();
  const opening = Deno.open(path, { read: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), options.timeoutMs);
  });
  let file: Deno.FsFile;
  try {
    const opened = await Promise.race([opening, deadline]);
    if (opened === "timeout") {
      // The open goes on in the background until a writer comes; close the file then.
      opening.then((f) => f.close(), () => {});
      throw timeoutError(options);
    }
    file = opened;
  } finally {
    clearTimeout(timer);
  }
  try {
    return await readBounded(
      file.readable,
      options,
      Math.max(1, options.timeoutMs - (Date.now() - started)),
    );
  } finally {
    // readBounded cancelled the stream, which closes the file; this is for the other paths.
    try {
      file.close();
    } catch { /* already closed */ }
  }
}

/**
 * A file named by a parameter, synchronously, at most `maxBytes`, decoded like
 * `decodeText`. Reads in chunks so that a device or an endless pipe
 * (`/dev/zero`) stops at the cap instead of filling memory.
 */
export function readFileBoundedSync(path: string, what: string, maxBytes: number): string {
  const file = Deno.openSync(path, { read: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const n = file.readSync(buffer);
      if (n === null) break;
      size += n;
      if (size > maxBytes) {
        throw new UsageError(`${what} is larger than ${sizeText(maxBytes)}`, {
          code: "INPUT_TOO_LARGE",
        });
      }
      chunks.push(buffer.slice(0, n));
    }
  } finally {
    file.close();
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return decodeText(bytes, what);
}
