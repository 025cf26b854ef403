import assert from "node:assert/strict";
import { relay } from "./relay.ts";

/** Two connected loopback TCP connections: [the bridge's end, the peer's end]. */
async function pair(): Promise<[Deno.Conn, Deno.Conn]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const [accepted, connected] = await Promise.all([
      listener.accept(),
      Deno.connect({ hostname: "127.0.0.1", port }),
    ]);
    return [accepted, connected];
  } finally {
    listener.close();
  }
}

async function readAll(conn: Deno.Conn): Promise<string> {
  const chunks: string[] = [];
  const buffer = new Uint8Array(4096);
  const decoder = new TextDecoder();
  try {
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      chunks.push(decoder.decode(buffer.subarray(0, n)));
    }
  } catch {
    // reset: what arrived so far
  }
  return chunks.join("");
}

Deno.test("relay() ends a busy session at its limit with 'session limit' and closes both sides", async () => {
  const [clientSide, client] = await pair();
  const [serverSide, server] = await pair();
  const encoder = new TextEncoder();
  // The client keeps talking, so the idle limit never applies.
  let talking = true;
  const chatter = (async () => {
    while (talking) {
      try {
        await client.write(encoder.encode("NOOP\r\n"));
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const serverGot = readAll(server);
  const started = performance.now();
  const r = await relay(clientSide, serverSide, { idleMs: 60_000, limitMs: 300 });
  const ms = performance.now() - started;
  talking = false;
  assert.equal(r.end, "session limit");
  assert.ok(ms >= 250 && ms < 10_000, `ended after ${Math.round(ms)} ms`);
  assert.ok(r.up > 0, "bytes went up before the limit");
  assert.match(await serverGot, /^(NOOP\r\n)+/, "the server saw the client's bytes, then EOF");
  assert.equal(await readAll(client), "", "the client sees the connection closed");
  await chatter;
  client.close();
  server.close();
});
