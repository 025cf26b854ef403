import assert from "node:assert/strict";
import { parseBridgeConfig } from "./config.ts";
import { hashPassword } from "./password.ts";
import { startBridge } from "./server.ts";
import { TokenSource } from "./token_source.ts";

const HASH =
  "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=";

function bridgeWith(settings: Record<string, unknown>, protocol = "POP3", passwordHash = HASH) {
  const config = parseBridgeConfig(
    JSON.stringify({
      tenantId: "contoso.onmicrosoft.com",
      clientId: "3f6d2b1e-8c47-4a59-b0e2-71d9c5a8f403",
      credential: { secretFile: "/etc/secret" },
      listeners: [{ protocol, port: 0 }],
      accounts: { scanner: { mailbox: "box@contoso.com", passwordHash } },
      ...settings,
    }),
    "bridge.json",
    () => "the-secret\n",
  );
  const logs: string[] = [];
  const tokens = new TokenSource({ fetch: () => Promise.reject(new Error("no token here")) });
  const bridge = startBridge(config, { tokens, log: (line) => logs.push(line) });
  return { bridge, logs, port: bridge.addresses[0].port };
}

/** Everything the server sends until it closes (or `ms` passed). */
async function readAll(conn: Deno.Conn, ms: number): Promise<string> {
  const buffer = new Uint8Array(4096);
  let text = "";
  const timer = setTimeout(() => conn.close(), ms);
  try {
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } catch {
    text += "(cut by the test)";
  } finally {
    clearTimeout(timer);
  }
  return text;
}

Deno.test("a session not logged in within timeouts.loginSeconds is closed, however chatty", async () => {
  const { bridge, logs, port } = bridgeWith({
    timeouts: { loginSeconds: 0.5, idleSeconds: 5 },
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const started = performance.now();
    // A byte every 100 ms: the idle limit (5 s) never fires.
    const drip = setInterval(() => conn.write(new Uint8Array([0x4e])).catch(() => {}), 100);
    const text = await readAll(conn, 4000);
    clearInterval(drip);
    const ms = performance.now() - started;
    assert.match(text, /^\+OK /);
    assert.ok(!text.includes("(cut by the test)"), "closed by the bridge");
    assert.ok(ms >= 400 && ms < 3000, `closed after ${Math.round(ms)} ms`);
  } finally {
    conn.close();
    await bridge.shutdown();
  }
  assert.match(logs.find((l) => l.includes("result=")) ?? "", /user=- .*result=login timeout /);
});

/**
 * On a bridge limited to two sessions by `settings`: two sessions run, a third connection gets
 * `refusal` and is closed, the log says so (`logged`), and once a session ends the next
 * connection is served again.
 */
async function checkSessionLimit(
  settings: Record<string, unknown>,
  protocol: string,
  refusal: string,
  logged: RegExp,
): Promise<void> {
  const { bridge, logs, port } = bridgeWith(settings, protocol);
  const open: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      open.push(c);
      await c.read(new Uint8Array(4096)); // the greeting: the session runs
    }
    assert.equal(bridge.active, 2);
    const third = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.equal(await readAll(third, 3000), refusal);
    third.close();
    assert.equal(bridge.active, 2);
    assert.ok(logs.some((l) => logged.test(l)), logs.join("\n"));
    // A session ended: the next connection is served again.
    open.shift()?.close();
    for (let i = 0; i < 50 && bridge.active > 1; i++) await new Promise((r) => setTimeout(r, 20));
    const again = await Deno.connect({ hostname: "127.0.0.1", port });
    open.push(again);
    const greeting = new Uint8Array(4096);
    const n = await again.read(greeting);
    const text = new TextDecoder().decode(greeting.subarray(0, n ?? 0));
    assert.ok(text !== "" && !text.includes("Too many"), text);
  } finally {
    for (const c of open) c.close();
    await bridge.shutdown();
  }
}

for (
  const [protocol, refusal] of [
    ["POP3", "-ERR [SYS/TEMP] Too many sessions, try again later.\r\n"],
    ["IMAP", "* BYE [UNAVAILABLE] Too many sessions, try again later.\r\n"],
    ["SMTP", "421 4.7.0 Too many sessions, try again later.\r\n"],
  ]
) {
  Deno.test(`${protocol}: a connection beyond maxSessions gets a temporary refusal and is closed`, async () => {
    await checkSessionLimit(
      { maxSessions: 2 },
      protocol,
      refusal,
      new RegExp(
        `^bridge: ${protocol} 127\\.0\\.0\\.1:\\d+ result=refused \\(2 sessions open: maxSessions\\)$`,
      ),
    );
  });
}

Deno.test("AUTH PLAIN for another authorization identity counts as a failed login, and slows the next", async () => {
  const { bridge, logs, port } = bridgeWith(
    { failureDelaySeconds: 0.4 },
    "SMTP",
    await hashPassword("right"),
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const buffer = new Uint8Array(4096);
  const ask = async (line: string, until: RegExp) => {
    await conn.write(new TextEncoder().encode(`${line}\r\n`));
    let text = "";
    while (!until.test(text)) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return text;
  };
  try {
    await conn.read(buffer); // greeting
    await ask("EHLO test", /^250 /m);
    const foreign = await ask(`AUTH PLAIN ${btoa("boss\0scanner\0right")}`, /^\d{3} /m);
    assert.match(foreign, /^535 /);
    // The next login from the address (right this time) waits the delay of one failure first.
    const started = performance.now();
    const next = await ask(`AUTH PLAIN ${btoa("\0scanner\0right")}`, /^\d{3} /m);
    const ms = performance.now() - started;
    assert.match(next, /^454 /, "right locally; no token here");
    assert.ok(ms >= 350, `answered after ${Math.round(ms)} ms`);
  } finally {
    conn.close();
    await bridge.shutdown();
  }
  assert.ok(
    logs.some((l) =>
      /failed login user='scanner' \(for another authorization identity\): 1 failure\(s\) from 127\.0\.0\.1 /
        .test(l)
    ),
    logs.join("\n"),
  );
});

Deno.test("a connection beyond maxSessionsPerAddress from one address gets the same refusal", async () => {
  await checkSessionLimit(
    { maxSessionsPerAddress: 2 },
    "POP3",
    "-ERR [SYS/TEMP] Too many sessions, try again later.\r\n",
    /^bridge: POP3 127\.0\.0\.1:\d+ result=refused \(2 sessions open from 127\.0\.0\.1: maxSessionsPerAddress\)$/,
  );
});
