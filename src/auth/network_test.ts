import assert from "node:assert/strict";
import {
  FetchNetworkClient,
  gaveUpReport,
  isTransient,
  MAX_SAID_CHARS,
  retryAfterMs,
  retryDelayMs,
  scrubEchoes,
} from "./network.ts";

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

Deno.test("gaveUpReport() keeps Entra's whole text, the attempts and the support IDs", () => {
  const trace = "7e3f1c2a-9b4d-4e8f-a1c6-5d2b8e9f0a13";
  const correlation = "c41d8a7e-2f6b-4c93-8e15-0b7a9d3f6e24";
  const text = "There was an error issuing a token or an issue with our sign-in service. " +
    "(The service is temporarily unavailable because the backend token store did not answer " +
    "in time; the request was not processed and may be repeated.) Please try again later.";
  const body = JSON.stringify({
    error: "server_error",
    error_description: `AADSTS50000: ${text}\r\nTrace ID: ${trace}\r\n` +
      `Correlation ID: ${correlation}\r\nTimestamp: 2026-12-05 07:40:11Z`,
  });
  const report = gaveUpReport({
    url: "https://login.microsoftonline.com/t/oauth2/v2.0/token",
    status: 500,
    statusText: "Internal Server Error",
    text: body,
    headers: new Headers(),
    attempts: 4,
    elapsedMs: 2140,
  });
  assert.equal(report.code, "AADSTS50000");
  assert.equal(
    report.message,
    "login.microsoftonline.com answered HTTP 500 Internal Server Error " +
      `(AADSTS50000: ${text}); gave up after 4 attempts in 2.1 s; ` +
      `Trace ID: ${trace}; Correlation ID: ${correlation}`,
  );
});

Deno.test("gaveUpReport() bounds a long answer, takes IDs from headers, refuses junk IDs", () => {
  const report = gaveUpReport({
    url: "https://login.microsoftonline.com/t/oauth2/v2.0/token",
    status: 503,
    statusText: "Service Unavailable",
    text: `<html><body>${"word ".repeat(1000)}</body></html>`,
    headers: new Headers({
      "x-ms-request-id": "0a1b2c3d-0000-4000-8000-123456789abc",
      "client-request-id": "not an id; rm -rf /",
      "retry-after": "1",
    }),
    attempts: 2,
    elapsedMs: 1000,
  });
  assert.equal(report.code, "HTTP_503");
  const said = /\((word[^)]*)\)/.exec(report.message)?.[1] ?? "";
  assert.ok(said.length <= MAX_SAID_CHARS + 2, `${said.length} characters`);
  assert.ok(said.endsWith(" …"), "a cut answer says so");
  assert.match(
    report.message,
    /; gave up after 2 attempts in 1\.0 s \(Retry-After: 1\); Trace ID: 0a1b2c3d-0000-4000-8000-123456789abc$/,
  );
  assert.ok(!report.message.includes("rm -rf"));
});

Deno.test("FetchNetworkClient does not start a retry whose answer would come after the deadline", async () => {
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    requests++;
    // A slow 503: the wait it asks for plus another attempt this slow ends after the deadline.
    await new Promise((r) => setTimeout(r, 700));
    return new Response('{"error":"temporarily_unavailable"}', {
      status: 503,
      headers: { "retry-after": "1", "content-type": "application/json" },
    });
  });
  const client = new FetchNetworkClient({ caCerts: [], timeoutMs: 2000 });
  try {
    const started = Date.now();
    const answer = await client.sendPostRequestAsync(
      `http://127.0.0.1:${server.addr.port}/token`,
      { body: "x=1" },
    );
    assert.equal(answer.status, 503);
    assert.equal(requests, 1, "no second attempt that could only time out");
    assert.equal(client.lastFailure, undefined, "an answer, not a timeout");
    assert.ok(Date.now() - started < 2000);
    assert.match(client.gaveUp?.message ?? "", /gave up after 1 attempt in /);
  } finally {
    client.close();
    await server.shutdown();
  }
});
