import assert from "node:assert/strict";
import { Checks } from "./checklist.ts";

Deno.test("Checks.note() lists findings under their check, with step and code", async () => {
  const checks = new Checks();
  checks.record("parameters", true);
  checks.note("parameters", { code: "CLIENT_SECRET_IS_ID", step: 1, text: "GUID", warning: true });
  await assert.rejects(checks.run("token", () => Promise.reject(new Error("refused"))));
  const list = checks.results("en", {});
  assert.deepEqual(list[0].notes, [
    { code: "CLIENT_SECRET_IS_ID", step: 1, text: "GUID", warning: true },
  ]);
  assert.equal(list[0].ok, true, "a warning does not fail its check");
  assert.ok(list.slice(1).every((c) => c.notes.length === 0));
});
