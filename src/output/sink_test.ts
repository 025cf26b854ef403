import assert from "node:assert/strict";
import { processSink, taggedSink } from "./sink.ts";

Deno.test("taggedSink() tags each line of multi-line output (JSON) as output", () => {
  let written = "";
  taggedSink((t) => written += t).out('{\n  "ok": true\n}\n');
  assert.equal(written, 'O {\nO   "ok": true\nO }\n');
});

Deno.test("processSink() tags only when the PowerShell script asks for it", () => {
  assert.notEqual(
    processSink(() => undefined),
    processSink((n) => n === "GET_IMAPACCESSTOKEN_STREAMS" ? "1" : undefined),
  );
  const plain = processSink(() => undefined);
  assert.equal(plain, processSink((n) => n === "GET_IMAPACCESSTOKEN_STREAMS" ? "0" : undefined));
});
