import assert from "node:assert/strict";
import { mark, traceLines } from "./trace.ts";

Deno.test("traceLines() lists the marks in order with milliseconds since the start", () => {
  mark("one");
  mark("two");
  const lines = traceLines();
  const [one, two] = lines.slice(-2).map((l) => l.split(" "));
  assert.deepEqual([one[0], one[1], two[0], two[1]], ["TRACE", "one", "TRACE", "two"]);
  assert.ok(Number(one[2]) > 0 && Number(two[2]) >= Number(one[2]));
});
