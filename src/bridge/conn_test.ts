import assert from "node:assert/strict";
import { createSecureContext } from "node:tls";
import { acceptTls, type BridgeConn } from "./conn.ts";
import { makeServerPki, type ServerPki } from "../../test/bed/pki.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Both ends of a fresh TCP connection on 127.0.0.1. */
async function tcpPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const [plain, raw] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port }),
    listener.accept(),
  ]);
  listener.close();
  return [plain, raw];
}

/** A client that starts TLS after a plain line, and the server's upgraded side of it. */
async function pair(pki: ServerPki, timeoutMs = 5000) {
  const [plain, raw] = await tcpPair();
  const context = createSecureContext({ cert: pki.certPem, key: pki.keyPem });
  const [client, server] = await Promise.all([
    Deno.startTls(plain, { hostname: "localhost", caCerts: [pki.caPem] }),
    acceptTls(raw, context, timeoutMs),
  ]);
  return { client, server };
}

async function readText(conn: BridgeConn | Deno.Conn): Promise<string | null> {
  const buffer = new Uint8Array(100);
  const n = await conn.read(buffer);
  return n === null ? null : decoder.decode(buffer.subarray(0, n));
}

Deno.test("acceptTls() upgrades a server connection: both ways, end of stream, close", async () => {
  const pki = await makeServerPki();
  try {
    const { client, server } = await pair(pki);
    await client.write(encoder.encode("hello over TLS\r\n"));
    assert.equal(await readText(server), "hello over TLS\r\n");
    assert.equal(await server.write(encoder.encode("+OK\r\n")), 5);
    assert.equal(await readText(client), "+OK\r\n");
    // A read larger than the buffer comes in pieces.
    await client.write(encoder.encode("0123456789"));
    const small = new Uint8Array(4);
    assert.equal(await server.read(small), 4);
    assert.equal(decoder.decode(small), "0123");
    assert.equal(await readText(server), "456789");
    client.close();
    assert.equal(await readText(server), null, "the client's close is the end of the stream");
    server.close();
    server.close(); // twice is fine
    await assert.rejects(server.write(encoder.encode("x")));
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});

Deno.test("acceptTls() close() fails a pending read and sends close_notify", async () => {
  const pki = await makeServerPki();
  try {
    const { client, server } = await pair(pki);
    const pending = readText(server);
    server.close();
    await assert.rejects(pending);
    assert.equal(await readText(client), null, "a clean TLS end for the client");
    client.close();
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});

/**
 * How the peer left `conn` within `ms`: "eof" (closed, after any bytes such as a TLS alert),
 * "reset", or "open" when it neither closed nor reset it in time (a socket left behind).
 */
async function peerClosed(conn: Deno.Conn, ms: number): Promise<"eof" | "reset" | "open"> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close(); // ends the pending read
  }, ms);
  try {
    const buffer = new Uint8Array(4096);
    while (true) {
      try {
        if ((await conn.read(buffer)) === null) return "eof";
      } catch {
        return timedOut ? "open" : "reset";
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("peerClosed() tells a closed connection from one left open", async () => {
  const [a, b] = await tcpPair();
  await b.write(encoder.encode("alert"));
  assert.equal(await peerClosed(a, 300), "open", "bytes, then no EOF: open");
  b.close();
  const [c, d] = await tcpPair();
  await d.write(encoder.encode("alert"));
  d.close();
  assert.equal(await peerClosed(c, 2000), "eof");
  c.close();
});

Deno.test("acceptTls() throws on a client that does not speak TLS, and on a silent one", async () => {
  const pki = await makeServerPki();
  const context = createSecureContext({ cert: pki.certPem, key: pki.keyPem });
  try {
    for (const send of ["USER scanner\r\n", ""]) {
      const [plain, raw] = await tcpPair();
      if (send) await plain.write(encoder.encode(send));
      await assert.rejects(acceptTls(raw, context, 300));
      // The TCP connection is closed too (no socket left behind): EOF after any alert bytes.
      const closed = await peerClosed(plain, 2000);
      assert.notEqual(closed, "open", `after ${JSON.stringify(send)}`);
      try {
        plain.close();
      } catch {
        // closed by peerClosed
      }
    }
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});
