import assert from "node:assert/strict";
import { isTransient, retryAfterMs, retryDelayMs, scrubEchoes } from "./network.ts";

Deno.test("retry helpers: transient statuses and Retry-After in both forms", () => {
  for (const status of [429, 500, 502, 503, 504]) assert.equal(isTransient(status), true);
  for (const status of [200, 302, 400, 401, 404, 501, 505]) {
    assert.equal(isTransient(status), false);
  }
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(retryAfterMs("3", now), 3000);
  assert.equal(retryAfterMs(" 0 ", now), 0);
  assert.equal(retryAfterMs("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
  assert.equal(retryAfterMs("Wed, 31 Dec 2025 23:59:00 GMT", now), 0, "a date in the past");
  assert.equal(retryAfterMs("soon", now), undefined);
  assert.equal(retryAfterMs("-1", now), undefined);
  assert.equal(retryAfterMs(null, now), undefined);
  assert.deepEqual([1, 2, 3].map((n) => retryDelayMs(null, n, now)), [300, 600, 1200]);
  assert.equal(retryDelayMs("2", 3, now), 2000, "Retry-After wins over the backoff");
});

Deno.test("scrubEchoes() removes every spelling of the request's credentials", () => {
  const secret = 'S p "q" ~ü€ +/=&';
  const body = new URLSearchParams({
    client_id: "app",
    client_secret: secret,
    client_assertion: "eyJhbGciOiJQUzI1NiJ9.payload-part.signature-part",
    scope: "https://outlook.office365.com/.default",
  }).toString();
  const echoed = [
    body,
    secret,
    encodeURIComponent(secret),
    JSON.stringify({ said: secret }),
    "eyJhbGciOiJQUzI1NiJ9.payload-part.signature-part",
  ].join(" | ");
  const clean = scrubEchoes(echoed, body);
  for (const spelling of [secret, encodeURIComponent(secret), "signature-part"]) {
    assert.ok(!clean.includes(spelling), `${spelling} in ${clean}`);
  }
  assert.ok(clean.includes("client_id=app"), "what is not a credential stays");
  assert.equal(scrubEchoes("nothing sent", undefined), "nothing sent");
});
