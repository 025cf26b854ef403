import assert from "node:assert/strict";
import {
  decodeText,
  FILE_HINTS,
  readBounded,
  readBoundedText,
  readFileBounded,
  readFileBoundedSync,
} from "./bounded_input.ts";
import { UsageError } from "./errors.ts";

const what = "-clientsecret: standard input";

function utf16(text: string, endian: "le" | "be"): Uint8Array {
  const bytes = new Uint8Array(2 + text.length * 2);
  bytes.set(endian === "le" ? [0xff, 0xfe] : [0xfe, 0xff]);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const [a, b] = endian === "le" ? [c & 0xff, c >> 8] : [c >> 8, c & 0xff];
    bytes[2 + 2 * i] = a;
    bytes[3 + 2 * i] = b;
  }
  return bytes;
}

function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk);
      c.close();
    },
  });
}

function usageError(code: string, message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, message);
    assert.equal(e.message.includes("\n"), false, "one line");
    return true;
  };
}

Deno.test("readBounded() stops an endless stream at the cap and cancels it", async () => {
  let pulled = 0;
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled++;
      c.enqueue(new Uint8Array(16 * 1024).fill(0x41));
    },
    cancel() {
      cancelled = true;
    },
  });
  await assert.rejects(
    readBounded(endless, { what, maxBytes: 64 * 1024, timeoutMs: 5000 }),
    usageError("INPUT_TOO_LARGE", /^-clientsecret: standard input is larger than 64 KiB/),
  );
  assert.ok(pulled <= 6, `read ${pulled} chunks`);
  assert.ok(cancelled);
});

Deno.test("readBounded() gives up on a silent open stream at the deadline", async () => {
  let cancelled = false;
  const silent = new ReadableStream<Uint8Array>({
    cancel() {
      cancelled = true;
    },
  });
  const started = performance.now();
  await assert.rejects(
    readBounded(silent, { what, maxBytes: 1024, timeoutMs: 200 }),
    usageError("INPUT_TIMEOUT", /did not end within 0\.2 s \(-TimeoutSeconds\)/),
  );
  assert.ok(performance.now() - started < 2000);
  assert.ok(cancelled);
});

Deno.test("readBoundedText() joins chunks and decodes UTF-8 split inside a character", async () => {
  const bytes = new TextEncoder().encode("sécret€");
  const text = await readBoundedText(streamOf(bytes.subarray(0, 2), bytes.subarray(2)), {
    what,
    maxBytes: 100,
    timeoutMs: 1000,
  });
  assert.equal(text, "sécret€");
});

Deno.test("decodeText() reads UTF-16 LE/BE and UTF-8 with a byte order mark", () => {
  assert.equal(decodeText(utf16("Zq8~sécret\r\n", "le"), what), "Zq8~sécret\r\n");
  assert.equal(decodeText(utf16("Zq8~sécret", "be"), what), "Zq8~sécret");
  assert.equal(decodeText(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]), what), "a");
  assert.equal(decodeText(new Uint8Array([]), what), "");
});

Deno.test("decodeText() refuses NUL bytes and invalid encodings with one line", () => {
  // UTF-16 without its mark looks like text with NULs in between.
  assert.throws(
    () => decodeText(utf16("abc", "le").subarray(2), what),
    usageError("BAD_INPUT", /contains a NUL byte: binary data, or UTF-16 text without its/),
  );
  assert.throws(
    () => decodeText(new Uint8Array([0x61, 0xff, 0x62]), what),
    usageError("BAD_INPUT", /is not UTF-8 text/),
  );
  assert.throws(
    () => decodeText(new Uint8Array([0xff, 0xfe, 0x61]), what),
    usageError("BAD_INPUT", /is not UTF-16LE text/),
  );
  assert.throws(
    () => decodeText(utf16("a\0b", "le"), what),
    usageError("BAD_INPUT", /contains a NUL character/),
  );
});

Deno.test("readFileBoundedSync() caps a device that never ends and decodes UTF-16 files", async () => {
  if (Deno.build.os !== "windows") {
    assert.throws(
      () => readFileBoundedSync("/dev/zero", "-MailboxFile: /dev/zero", 128 * 1024),
      usageError("INPUT_TOO_LARGE", /^-MailboxFile: \/dev\/zero is larger than 128 KiB$/),
    );
  }
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeFile(path, utf16("box@contoso.com\r\n", "le"));
    assert.equal(readFileBoundedSync(path, "-MailboxFile", 1024), "box@contoso.com\r\n");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test({
  name: "readFileBounded() ends a silent FIFO at the deadline and reads one that delivers" +
    (Deno.build.os === "windows" ? " (skipped: no mkfifo on Windows)" : ""),
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    let n = 0;
    /** A new FIFO each time: an abandoned read may still hold the last one open. */
    const fifo = async () => {
      const path = `${dir}/in${n++}.fifo`;
      await new Deno.Command("mkfifo", { args: [path] }).output();
      return path;
    };
    const options = (path: string, timeoutMs: number) => ({
      what: `-MailboxFile: ${path}`,
      maxBytes: 1024,
      timeoutMs,
      ...FILE_HINTS,
    });
    try {
      // No writer at all: opening alone would wait forever.
      const nobody = await fifo();
      const started = Date.now();
      await assert.rejects(readFileBounded(nobody, options(nobody, 300)), (e) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.code, "INPUT_TIMEOUT");
        assert.equal(
          e.message,
          `-MailboxFile: ${nobody} did not end within 0.3 s (-TimeoutSeconds); a pipe or FIFO ` +
            "must be closed by its writer",
        );
        return true;
      });
      assert.ok(Date.now() - started < 2000);
      // Let the open still waiting in the background finish (it closes the file itself).
      (await Deno.open(nobody, { write: true })).close();

      // A writer that keeps it open and silent: the deadline counts from the start.
      const quiet = await fifo();
      const silent = Deno.open(quiet, { write: true });
      await assert.rejects(readFileBounded(quiet, options(quiet, 300)), /within 0\.3 s/);
      (await silent).close();

      // One that writes and closes: its bytes.
      const talks = await fifo();
      const writing = Deno.writeFile(talks, new TextEncoder().encode("box@contoso.com\n"));
      const bytes = await readFileBounded(talks, options(talks, 5000));
      await writing;
      assert.equal(new TextDecoder().decode(bytes), "box@contoso.com\n");

      // One that sends more than the cap: stopped there.
      const floods = await fifo();
      const flooding = Deno.open(floods, { write: true }).then(async (f) => {
        await f.write(new Uint8Array(4096)).catch(() => {});
        f.close();
      });
      await assert.rejects(readFileBounded(floods, options(floods, 5000)), /is larger than 1 KiB$/);
      await flooding;
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
