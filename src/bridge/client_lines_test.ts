import assert from "node:assert/strict";
import { ClientLines } from "./client_lines.ts";
import type { BridgeConn } from "./conn.ts";

/** A connection that hands out `chunks` one read each, then ends; records what was written. */
function fakeConn(chunks: string[]): BridgeConn & { written: string } {
  const encoder = new TextEncoder();
  const queue = chunks.map((c) => encoder.encode(c));
  const conn = {
    written: "",
    read(p: Uint8Array) {
      const next = queue.shift();
      if (next === undefined) return Promise.resolve(null);
      p.set(next);
      return Promise.resolve(next.length);
    },
    write(p: Uint8Array) {
      conn.written += new TextDecoder().decode(p);
      return Promise.resolve(p.length);
    },
    close() {},
  };
  return conn;
}

Deno.test("ClientLines() tells its observer each line read and each answer written, in order", async () => {
  const seen: string[] = [];
  const client = new ClientLines(fakeConn(["USER scanner\r\nPA", "SS secret\n"]), 1000);
  client.observer = {
    read: (line) => seen.push(`C ${line}`),
    wrote: (lines) => seen.push(`S ${lines.join("|")}`),
  };
  assert.equal(await client.readLine(), "USER scanner");
  assert.ok(await client.write("+OK", "more"));
  assert.equal(await client.readLine(), "PASS secret");
  assert.equal(await client.readLine(), null);
  assert.deepEqual(seen, ["C USER scanner", "S +OK|more", "C PASS secret"]);
});

Deno.test("ClientLines() without an observer reads and writes as before", async () => {
  const conn = fakeConn(["NOOP\r\n"]);
  const client = new ClientLines(conn, 1000);
  assert.equal(await client.readLine(), "NOOP");
  assert.ok(await client.write("+OK"));
  assert.equal(conn.written, "+OK\r\n");
  assert.equal(client.ended, undefined);
});
