/**
 * Reading the files of -clientcertificate and -CertificateKeyFile: each once per run (a FIFO
 * or `<(...)` can be read only once, and the token cache's key and the certificate's load both
 * need the bytes), a regular file whole up to MAX_FILE_BYTES, a pipe or device through the
 * bounded reader within -TimeoutSeconds. Kept apart from certificate.ts, which pulls in
 * node:crypto, so that the token flow can read the files without it.
 */
import { messageOf, UsageError } from "../errors.ts";
import { FILE_HINTS, readFileBounded } from "../bounded_input.ts";

/** Certificate files are a few KB; anything much larger is not one, and forge is slow on it. */
export const MAX_FILE_BYTES = 1024 * 1024;

/** Reads a certificate or key file named by `param`; see fileReader(). */
export type FileReader = (path: string, param: string) => Promise<Uint8Array>;

/**
 * Reads each path once (later calls get the same bytes or error): a regular file whole, up
 * to MAX_FILE_BYTES; a FIFO, `<(...)` or device through the bounded reader, within
 * `timeoutMs`, so that a silent pipe ends as INPUT_TIMEOUT (exit 2) instead of hanging.
 */
export function fileReader(timeoutMs: number): FileReader {
  const seen = new Map<string, Promise<Uint8Array>>();
  return (path, param) => {
    let bytes = seen.get(path);
    if (!bytes) {
      bytes = readBytes(path, param, timeoutMs);
      seen.set(path, bytes);
    }
    return bytes;
  };
}

/** The file's information, undefined when it does not exist; other errors are usage errors. */
export async function statOrUndefined(
  path: string,
  param: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw new UsageError(`${param}: cannot read ${path}: ${messageOf(error)}`, {
      code: "CERT_UNREADABLE",
      cause: error,
    });
  }
}

async function readBytes(path: string, param: string, timeoutMs: number): Promise<Uint8Array> {
  const info = await statOrUndefined(path, param);
  if (!info) {
    throw new UsageError(`${param}: file not found: ${path}`, {
      code: "CERT_FILE_NOT_FOUND",
    });
  }
  if (info.isFifo || info.isCharDevice) {
    try {
      return await readFileBounded(path, {
        what: `${param}: ${path}`,
        maxBytes: MAX_FILE_BYTES,
        timeoutMs,
        ...FILE_HINTS,
      });
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(`${param}: cannot read ${path}: ${messageOf(error)}`, {
        code: "CERT_UNREADABLE",
        cause: error,
      });
    }
  }
  if (!info.isFile) {
    throw new UsageError(`${param}: ${path} is not a file`, { code: "CERT_BAD_VALUE" });
  }
  if (info.size > MAX_FILE_BYTES) {
    throw new UsageError(`${param}: ${path} is too large to be a certificate or key file`, {
      code: "CERT_UNREADABLE",
    });
  }
  try {
    return await Deno.readFile(path);
  } catch (error) {
    throw new UsageError(`${param}: cannot read ${path}: ${messageOf(error)}`, {
      code: "CERT_UNREADABLE",
      cause: error,
    });
  }
}
