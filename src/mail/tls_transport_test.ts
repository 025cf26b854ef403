import assert from "node:assert/strict";
import { ConnectionError, InternalError } from "../errors.ts";
import { StartTlsTerminator } from "../../test/bed/exchange.ts";
import { makeServerPki } from "../../test/bed/pki.ts";
import {
  closedPort,
  makeCertForName,
  serveTcp,
  serveTls,
  type TestServer,
} from "../../test/mail/tls_server.ts";
import { LineBuffer, LineTooLongError } from "./lines.ts";
import {
  connectError,
  connectPlain,
  connectTls,
  scrub,
  type StartTlsTransport,
  type TlsOptions,
} from "./tls_transport.ts";
import type { LineTransport } from "./transport.ts";

// One PKI for the whole file; only the PEM texts are kept, the files go at once.
const pki = await makeServerPki();
const otherName = await makeCertForName(pki, "other.example");
await Deno.remove(pki.dir, { recursive: true });

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const TIMEOUT_MS = 300;
/** Timers and TLS on a busy machine: how late a timeout may fire and still count as bounded. */
const MARGIN_MS = 700;

function options(server: TestServer, extra: Partial<TlsOptions> = {}): TlsOptions {
  return {
    host: "127.0.0.1",
    port: server.port,
    caCerts: [pki.caPem],
    timeoutMs: 5000,
    ...extra,
  };
}

/** Server side: reads until CRLF and returns the bytes received, CRLF included. */
async function readClientLine(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(1024);
  let text = "";
  while (!text.endsWith("\r\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += decoder.decode(buf.subarray(0, n));
  }
  return text;
}

/** Server side: waits until the client closes the connection. */
async function untilClosed(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(1024);
  try {
    while ((await conn.read(buf)) !== null) {
      // discard
    }
  } catch {
    // closed under us by server.close()
  }
}

async function write(conn: Deno.Conn, data: string | Uint8Array): Promise<void> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  for (let sent = 0; sent < bytes.length;) sent += await conn.write(bytes.subarray(sent));
}

/** Runs `body`; always closes the transport and the server afterwards. */
async function withServer(server: TestServer, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } finally {
    await server.close();
  }
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  message?: RegExp,
): Promise<ConnectionError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ConnectionError, `not a ConnectionError: ${error}`);
  assert.equal(error.code, code, error.message);
  assert.equal(error.exitCode, 4);
  if (message) assert.match(error.message, message);
  return error;
}

Deno.test("connectTls() talks CRLF lines to a server whose CA is trusted", async () => {
  let received = "";
  const server = serveTls(pki, async (conn) => {
    await conn.handshake();
    await write(conn, "* OK hello\r\n");
    received = await readClientLine(conn);
    // Bare LF and bare CR are data; CRLF split over writes still ends a line.
    for (const chunk of ["a\nb\rc", "\r", "\nd\r\ne", "\r\n"]) {
      await write(conn, chunk);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // UTF-8 split across writes; invalid bytes become U+FFFD; NUL stays.
    const umlaut = encoder.encode("ö");
    await write(conn, Uint8Array.of(0x78, umlaut[0]));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await write(conn, Uint8Array.of(umlaut[1], 0xff, 0x00, 0x79, 13, 10));
    await write(conn, "* BYE last line before close\r\n");
    conn.close();
  });
  await withServer(server, async () => {
    const t = await connectTls(options(server));
    try {
      assert.equal(await t.readLine(), "* OK hello");
      await t.writeLine("A01 NOOP");
      assert.equal(await t.readLine(), "a\nb\rc");
      assert.equal(await t.readLine(), "d");
      assert.equal(await t.readLine(), "e");
      assert.equal(await t.readLine(), "xö\uFFFD\0y");
      assert.equal(await t.readLine(), "* BYE last line before close");
      await rejectsWith(t.readLine(), "CONNECTION_CLOSED", /closed the connection/);
      await rejectsWith(t.writeLine("A02 LOGOUT"), "CONNECTION_CLOSED");
    } finally {
      t.close();
      t.close(); // twice is fine
    }
    assert.equal(received, "A01 NOOP\r\n");
  });
});

Deno.test("connectTls() refuses to send a line containing CR or LF", async () => {
  const server = serveTls(pki, async (conn) => {
    await conn.handshake();
    await untilClosed(conn);
  });
  await withServer(server, async () => {
    const t = await connectTls(options(server));
    try {
      await assert.rejects(t.writeLine("A01 NOOP\r\nA02 LOGOUT"), InternalError);
      await assert.rejects(t.writeLine("bare\nLF"), InternalError);
    } finally {
      t.close();
    }
  });
});

Deno.test("connectTls() reports an untrusted certificate as TLS_UNTRUSTED", async () => {
  const server = serveTls(pki, (conn) => conn.handshake());
  await withServer(server, async () => {
    const error = await rejectsWith(
      connectTls(options(server, { caCerts: undefined })),
      "TLS_UNTRUSTED",
      /127\.0\.0\.1:\d+ is not trusted: .*UnknownIssuer/,
    );
    assert.ok(error.cause instanceof Deno.errors.InvalidData, "keeps Deno's error as cause");
  });
});

Deno.test("connectTls() reports a certificate for another name as TLS_HOSTNAME", async () => {
  const server = serveTls(otherName, (conn) => conn.handshake());
  await withServer(server, async () => {
    await rejectsWith(
      connectTls(options(server)),
      "TLS_HOSTNAME",
      /not valid for the name 127\.0\.0\.1/,
    );
  });
});

Deno.test("connectTls() reports a closed port as CONNECTION_REFUSED", async () => {
  const port = closedPort();
  const error = await rejectsWith(
    connectTls({ host: "127.0.0.1", port, timeoutMs: 5000 }),
    "CONNECTION_REFUSED",
    new RegExp(`127\\.0\\.0\\.1:${port}`),
  );
  assert.ok(error.cause instanceof Deno.errors.ConnectionRefused);
});

Deno.test("connectTls() reports a plain-text server as TLS_FAILED", async () => {
  const server = serveTcp(async (conn) => {
    await write(conn, "* OK IMAP4 ready, no TLS here\r\n");
    await untilClosed(conn);
  });
  await withServer(server, async () => {
    await rejectsWith(connectTls(options(server)), "TLS_FAILED", /TLS handshake with/);
  });
});

Deno.test("connectTls() gives up on a server that never completes TLS within timeoutMs", async () => {
  const server = serveTcp(untilClosed); // accepts TCP, never answers the ClientHello
  await withServer(server, async () => {
    const started = performance.now();
    await rejectsWith(
      connectTls(options(server, { timeoutMs: TIMEOUT_MS })),
      "TIMEOUT",
      /no answer from 127\.0\.0\.1:\d+ within 0\.3 s \(TLS handshake\)/,
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= TIMEOUT_MS - 20, `gave up too early: ${elapsed} ms`);
    assert.ok(elapsed < TIMEOUT_MS + MARGIN_MS, `gave up too late: ${elapsed} ms`);
  });
});

Deno.test("connectTls() abandons a TCP connect that hangs, within timeoutMs", async () => {
  // A listener that never accepts: once its backlog is full, Linux drops new
  // SYNs and connects hang, like a firewall that swallows packets.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const filler: Deno.Conn[] = [];
  try {
    // A connect that gives up after 250 ms twice in a row means the backlog is full (one slow
    // connect on a busy machine is not enough to say so).
    let stalls = 0;
    while (stalls < 2 && filler.length < 4000) {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 250);
      try {
        filler.push(await Deno.connect({ hostname: "127.0.0.1", port, signal: abort.signal }));
        stalls = 0;
      } catch {
        stalls++;
      } finally {
        clearTimeout(timer);
      }
    }
    const hangs = stalls >= 2;
    // Linux (where CI runs) always gets here; a system that never hangs must
    // not turn this test into one that cannot fail.
    assert.ok(hangs, "could not make a TCP connect hang: backlog never filled");

    const started = performance.now();
    await rejectsWith(
      connectTls({ host: "127.0.0.1", port, timeoutMs: TIMEOUT_MS }),
      "TIMEOUT",
      /within 0\.3 s \(TCP connect\)/,
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= TIMEOUT_MS - 20, `gave up too early: ${elapsed} ms`);
    assert.ok(elapsed < TIMEOUT_MS + MARGIN_MS, `gave up too late: ${elapsed} ms`);
  } finally {
    for (const conn of filler) conn.close();
    listener.close();
  }
});

Deno.test("readLine() gives up on a server that never greets within timeoutMs", async () => {
  const server = serveTls(pki, async (conn) => {
    await conn.handshake();
    await untilClosed(conn);
  });
  await withServer(server, async () => {
    const t = await connectTls(options(server, { timeoutMs: TIMEOUT_MS }));
    try {
      const started = performance.now();
      await rejectsWith(t.readLine(), "TIMEOUT", /within 0\.3 s \(waiting for a reply\)/);
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= TIMEOUT_MS - 20, `gave up too early: ${elapsed} ms`);
      assert.ok(elapsed < TIMEOUT_MS + MARGIN_MS, `gave up too late: ${elapsed} ms`);
      // The connection is gone afterwards; later calls say so at once.
      await rejectsWith(t.readLine(), "CONNECTION_CLOSED", /no answer within 0\.3 s/);
    } finally {
      t.close();
    }
  });
});

Deno.test("readLine() rejects lines longer than maxLineLength", async () => {
  const server = serveTls(pki, async (conn) => {
    await conn.handshake();
    await write(conn, `${"x".repeat(100)}\r\n`); // exactly the limit: fine
    await write(conn, `${"y".repeat(101)}\r\n`);
    await untilClosed(conn);
  });
  await withServer(server, async () => {
    const t = await connectTls(options(server, { maxLineLength: 100 }));
    try {
      assert.equal(await t.readLine(), "x".repeat(100));
      await rejectsWith(t.readLine(), "LINE_TOO_LONG", /longer than 100 bytes/);
    } finally {
      t.close();
    }
  });
});

Deno.test("readLine() stops buffering a line without CRLF at the limit, without waiting", async () => {
  const server = serveTls(pki, async (conn) => {
    await conn.handshake();
    await write(conn, "z".repeat(50_000)); // and never a CRLF
    await untilClosed(conn);
  });
  await withServer(server, async () => {
    const t = await connectTls(options(server, { maxLineLength: 1000, timeoutMs: 10_000 }));
    try {
      const started = performance.now();
      await rejectsWith(t.readLine(), "LINE_TOO_LONG");
      assert.ok(performance.now() - started < 2000, "did not wait for the timeout");
    } finally {
      t.close();
    }
  });
});

Deno.test("readLine() reports a connection closed mid-line as CONNECTION_CLOSED", async () => {
  const server = serveTls(pki, async (conn) => {
    await conn.handshake();
    await write(conn, "* OK half a li");
    conn.close();
  });
  await withServer(server, async () => {
    const t: LineTransport = await connectTls(options(server));
    try {
      await rejectsWith(t.readLine(), "CONNECTION_CLOSED", /14 bytes of an unfinished line/);
    } finally {
      t.close();
    }
  });
});

Deno.test("connectError() maps Deno's connect errors to codes", () => {
  const map = (error: Error, step = "TCP connect") =>
    connectError(error, step, "mail.example", "mail.example:993").code;
  assert.equal(
    map(new Error("failed to lookup address information: Name or service not known")),
    "DNS_FAILED",
  );
  assert.equal(
    map(new Error("failed to lookup address information: Temporary failure in name resolution")),
    "DNS_FAILED",
  );
  assert.equal(
    map(new Deno.errors.ConnectionRefused("Connection refused (os error 111)")),
    "CONNECTION_REFUSED",
  );
  const tls = (message: string) => map(new Deno.errors.InvalidData(message), "TLS handshake");
  assert.equal(tls("invalid peer certificate: UnknownIssuer"), "TLS_UNTRUSTED");
  assert.equal(
    tls("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))"),
    "TLS_UNTRUSTED",
  );
  assert.equal(tls("invalid peer certificate: NotValidForName"), "TLS_HOSTNAME");
  assert.equal(tls("invalid peer certificate: Expired"), "TLS_FAILED");
  assert.equal(
    map(new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)")),
    "CONNECTION_FAILED",
  );
  const error = connectError(new Error("boom"), "TCP connect", "h", "h:1");
  assert.ok(error.cause instanceof Error && error.cause.message === "boom");
});

Deno.test("LineBuffer.shift() splits only at CRLF, across any chunking", () => {
  const input = encoder.encode("one\r\ntwo\nstill two\r\r\nthree\r\n\r\nlast");
  // Every possible split point must give the same lines.
  for (let cut = 0; cut <= input.length; cut++) {
    const buffer = new LineBuffer(100);
    const lines: string[] = [];
    for (const part of [input.subarray(0, cut), input.subarray(cut)]) {
      buffer.push(part);
      for (let line = buffer.shift(); line !== null; line = buffer.shift()) lines.push(line);
    }
    assert.deepEqual(lines, ["one", "two\nstill two\r", "three", ""], `cut at ${cut}`);
    assert.equal(buffer.pending, 4);
  }
});

Deno.test("LineBuffer.shift() enforces the limit while buffering", () => {
  const buffer = new LineBuffer(5);
  buffer.push(encoder.encode("12345\r"));
  assert.equal(buffer.shift(), null, "5 bytes and a CR may still be a valid line");
  buffer.push(encoder.encode("\n123456"));
  assert.equal(buffer.shift(), "12345");
  assert.throws(() => buffer.shift(), LineTooLongError);

  const grown = new LineBuffer(100_000);
  const big = "b".repeat(70_000);
  grown.push(encoder.encode(big.slice(0, 30_000)));
  assert.equal(grown.shift(), null);
  grown.push(encoder.encode(`${big.slice(30_000)}\r\n`));
  assert.equal(grown.shift(), big, "grows past its initial size");
});

// ---------------------------------------------------------------- connectPlain + STARTTLS

/**
 * A plain server that greets, answers STARTTLS with `reply` (which may carry
 * extra bytes, as an attacker would inject them) and then, unless `upgrade`
 * is false, runs TLS with `tls` and answers one line over it.
 */
function serveStartTls(
  tls: { certPem: string; keyPem: string },
  reply: string,
  upgrade = true,
): { server: TestServer; secureLines: string[]; close(): Promise<void> } {
  const terminator = new StartTlsTerminator(tls);
  const secureLines: string[] = [];
  const server = serveTcp(async (conn) => {
    await write(conn, "220 ready\r\n");
    assert.equal(await readClientLine(conn), "STARTTLS\r\n");
    await write(conn, reply);
    if (!upgrade) return await untilClosed(conn);
    const { conn: secure, spliced } = await terminator.upgrade(conn);
    try {
      await secure.handshake();
      secureLines.push(await readClientLine(secure));
      await write(secure, "250 over TLS\r\n");
      await untilClosed(secure);
    } finally {
      secure.close();
      await spliced;
    }
  });
  return {
    server,
    secureLines,
    close: async () => {
      await server.close();
      await terminator.close();
    },
  };
}

async function plain(server: TestServer, timeoutMs = 5000): Promise<StartTlsTransport> {
  return await connectPlain({ host: "127.0.0.1", port: server.port, timeoutMs });
}

Deno.test("connectPlain() upgrades with startTls() and verifies the certificate", async () => {
  const bed = serveStartTls(pki, "220 2.0.0 SMTP server ready\r\n");
  try {
    const t = await plain(bed.server);
    try {
      assert.equal(t.secure, false);
      assert.equal(await t.readLine(), "220 ready");
      await t.writeLine("STARTTLS");
      assert.equal(await t.readLine(), "220 2.0.0 SMTP server ready");
      await t.startTls({ hostname: "127.0.0.1", caCerts: [pki.caPem] });
      assert.equal(t.secure, true);
      await t.writeLine("EHLO client.test");
      assert.equal(await t.readLine(), "250 over TLS");
      await assert.rejects(
        t.startTls({ hostname: "127.0.0.1", caCerts: [pki.caPem] }),
        (e) => e instanceof InternalError && e.code === "TLS_ALREADY_ACTIVE",
      );
    } finally {
      t.close();
    }
    assert.deepEqual(bed.secureLines, ["EHLO client.test\r\n"]);
  } finally {
    await bed.close();
  }
});

Deno.test("startTls() discards lines sent in clear after the STARTTLS reply", async () => {
  // One write, so the injected line arrives in the same read as the 220
  // (CVE-2011-0411): it must not be read later as if it came over TLS.
  const bed = serveStartTls(pki, "220 2.0.0 SMTP server ready\r\n250 injected in clear\r\n");
  try {
    const t = await plain(bed.server);
    try {
      await t.readLine();
      await t.writeLine("STARTTLS");
      assert.equal(await t.readLine(), "220 2.0.0 SMTP server ready");
      await t.startTls({ hostname: "127.0.0.1", caCerts: [pki.caPem] });
      await t.writeLine("EHLO client.test");
      assert.equal(await t.readLine(), "250 over TLS");
    } finally {
      t.close();
    }
  } finally {
    await bed.close();
  }
});

Deno.test("startTls() reports an untrusted certificate as TLS_UNTRUSTED and closes", async () => {
  const bed = serveStartTls(pki, "220 go\r\n");
  try {
    const t = await plain(bed.server);
    try {
      await t.readLine();
      await t.writeLine("STARTTLS");
      await t.readLine();
      const error = await rejectsWith(
        t.startTls({ hostname: "127.0.0.1" }),
        "TLS_UNTRUSTED",
        /127\.0\.0\.1:\d+ is not trusted: .*UnknownIssuer/,
      );
      assert.ok(error.cause instanceof Deno.errors.InvalidData, "keeps Deno's error as cause");
      assert.equal(t.secure, false);
      await rejectsWith(t.writeLine("EHLO client.test"), "CONNECTION_CLOSED");
    } finally {
      t.close();
    }
  } finally {
    await bed.close();
  }
});

Deno.test("startTls() reports a certificate for another name as TLS_HOSTNAME", async () => {
  const bed = serveStartTls(otherName, "220 go\r\n");
  try {
    const t = await plain(bed.server);
    try {
      await t.readLine();
      await t.writeLine("STARTTLS");
      await t.readLine();
      await rejectsWith(
        t.startTls({ hostname: "127.0.0.1", caCerts: [pki.caPem] }),
        "TLS_HOSTNAME",
        /not valid for the name 127\.0\.0\.1/,
      );
    } finally {
      t.close();
    }
  } finally {
    await bed.close();
  }
});

Deno.test("startTls() gives up on a server that never starts TLS, within timeoutMs", async () => {
  const bed = serveStartTls(pki, "220 go\r\n", false);
  try {
    const t = await plain(bed.server, TIMEOUT_MS);
    try {
      await t.readLine();
      await t.writeLine("STARTTLS");
      await t.readLine();
      const started = performance.now();
      await rejectsWith(
        t.startTls({ hostname: "127.0.0.1", caCerts: [pki.caPem] }),
        "TIMEOUT",
        /within 0\.3 s \(STARTTLS handshake\)/,
      );
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= TIMEOUT_MS - 20, `gave up too early: ${elapsed} ms`);
      assert.ok(elapsed < TIMEOUT_MS + MARGIN_MS, `gave up too late: ${elapsed} ms`);
      await rejectsWith(t.readLine(), "CONNECTION_CLOSED");
    } finally {
      t.close();
    }
  } finally {
    await bed.close();
  }
});

Deno.test("startTls() reports plain text instead of a TLS handshake as TLS_FAILED", async () => {
  const server = serveTcp(async (conn) => {
    await write(conn, "220 ready\r\n");
    await readClientLine(conn);
    await write(conn, "220 go\r\n");
    // Answer the ClientHello with text, as a server that did not really start TLS.
    await conn.read(new Uint8Array(4096));
    await write(conn, "500 5.3.3 Unrecognized command\r\n");
    await untilClosed(conn);
  });
  await withServer(server, async () => {
    const t = await plain(server);
    try {
      await t.readLine();
      await t.writeLine("STARTTLS");
      await t.readLine();
      await rejectsWith(
        t.startTls({ hostname: "127.0.0.1", caCerts: [pki.caPem] }),
        "TLS_FAILED",
        /TLS handshake after STARTTLS with 127\.0\.0\.1:\d+ failed/,
      );
    } finally {
      t.close();
    }
  });
});

Deno.test("connectPlain() reports a closed port and bad options", async () => {
  await rejectsWith(
    connectPlain({ host: "127.0.0.1", port: closedPort(), timeoutMs: 5000 }),
    "CONNECTION_REFUSED",
  );
  await assert.rejects(
    connectPlain({ host: "127.0.0.1", port: 25, timeoutMs: 0 }),
    (e) => e instanceof InternalError && e.code === "INVALID_OPTIONS",
  );
});

Deno.test("connectTls() transports are secure and refuse startTls()", async () => {
  const server = serveTls(pki, async (conn) => {
    await conn.handshake();
    await untilClosed(conn);
  });
  await withServer(server, async () => {
    const t = await connectTls(options(server)) as StartTlsTransport;
    try {
      assert.equal(t.secure, true);
      await assert.rejects(
        t.startTls({ hostname: "127.0.0.1" }),
        (e) => e instanceof InternalError && e.code === "TLS_ALREADY_ACTIVE",
      );
    } finally {
      t.close();
    }
  });
});

Deno.test("scrub() removes a credential also where a server cut it short", () => {
  const token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2ln";
  assert.equal(scrub(`NO bad ${token} here`, token, "<t>"), "NO bad <t> here");
  assert.equal(scrub(`NO ${token.slice(0, 50)}...`, token, "<t>"), "NO <t>...");
  assert.equal(scrub(`NO ${token.slice(0, 20)}`, token, "<t>"), `NO ${token.slice(0, 20)}`);
  assert.equal(scrub(`${token}${token}`, token, "<t>"), "<t><t>");
});
