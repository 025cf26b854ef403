import assert from "node:assert/strict";
import { addressKey, checkSlowed, LoginLimiter } from "./login_limiter.ts";

function limiter(options: { maxAddresses?: number } = {}) {
  let now = 1_000_000;
  const l = new LoginLimiter({
    baseDelayMs: 1000,
    maxDelayMs: 8000,
    forgetMs: 60_000,
    now: () => now,
    ...options,
  });
  return { l, advance: (ms: number) => now += ms };
}

Deno.test("LoginLimiter doubles the delay with each failure from an address, up to the cap", () => {
  const { l } = limiter();
  const delays = [1, 2, 3, 4, 5, 6].map(() => l.failed("192.0.2.7"));
  assert.deepEqual(delays.map((f) => f.failures), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(delays.map((f) => f.delayMs), [1000, 2000, 4000, 8000, 8000, 8000]);
  assert.equal(l.delayOf(10_000), 8000, "no overflow however many failures");
});

Deno.test("LoginLimiter counts each address on its own; a success elsewhere resets nothing", () => {
  const { l } = limiter();
  l.failed("192.0.2.7");
  l.failed("192.0.2.7");
  // Another address: its own first failure, the base delay.
  assert.deepEqual(l.failed("2001:db8::1"), { failures: 1, delayMs: 1000 });
  // A good login is answered at once and not recorded: the guessing address stays slow.
  assert.deepEqual(l.failed("192.0.2.7"), { failures: 3, delayMs: 4000 });
  assert.equal(l.failuresOf("2001:db8::1"), 1);
  assert.equal(l.failuresOf("198.51.100.1"), 0);
});

Deno.test("LoginLimiter forgets an address after a quiet while, but not while it keeps failing", () => {
  const { l, advance } = limiter();
  l.failed("192.0.2.7");
  advance(59_000);
  assert.equal(l.failed("192.0.2.7").failures, 2, "within the window of the last failure");
  advance(59_000);
  assert.equal(l.failed("192.0.2.7").failures, 3, "the window starts at the last failure");
  advance(60_000);
  assert.equal(l.failuresOf("192.0.2.7"), 0);
  assert.deepEqual(l.failed("192.0.2.7"), { failures: 1, delayMs: 1000 });
});

Deno.test("LoginLimiter keeps at most maxAddresses, dropping forgotten then the oldest", () => {
  const { l, advance } = limiter({ maxAddresses: 3 });
  l.failed("10.0.0.1");
  advance(30_000);
  l.failed("10.0.0.2");
  l.failed("10.0.0.3");
  l.failed("10.0.0.3");
  advance(31_000); // 10.0.0.1 is forgotten now
  l.failed("10.0.0.4");
  assert.equal(l.size, 3);
  assert.equal(l.failuresOf("10.0.0.3"), 2);
  // Full and nothing forgotten: the address with the oldest last failure (10.0.0.2) goes.
  l.failed("10.0.0.5");
  assert.equal(l.size, 3);
  assert.equal(l.failuresOf("10.0.0.2"), 0);
  assert.equal(l.failuresOf("10.0.0.3"), 2);
  for (let i = 0; i < 1000; i++) l.failed(`10.1.${i >> 8}.${i & 255}`);
  assert.equal(l.size, 3, "bounded however many addresses try");
});

Deno.test("LoginLimiter with no base delay never waits", () => {
  const l = new LoginLimiter({ baseDelayMs: 0 });
  for (let i = 0; i < 5; i++) assert.equal(l.failed("127.0.0.1").delayMs, 0);
  assert.equal(l.failuresOf("127.0.0.1"), 5, "still counted, for the log");
});

Deno.test("addressKey() counts IPv4 addresses alone and IPv6 clients per /64", () => {
  assert.equal(addressKey("192.0.2.7"), "192.0.2.7");
  assert.equal(addressKey("2001:db8:0:1::7"), "2001:db8:0:1::/64");
  assert.equal(addressKey("2001:0DB8:0000:0001:aaaa:bbbb:cccc:dddd"), "2001:db8:0:1::/64");
  assert.equal(addressKey("[2001:db8::1]"), "2001:db8:0:0::/64");
  assert.equal(addressKey("::1"), "0:0:0:0::/64");
  assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
  assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(addressKey("not an address"), "not an address");
  // Every spelling of an address is one key (src/net/ip.ts parses them).
  assert.equal(addressKey("::FFFF:192.0.2.7"), "192.0.2.7");
  assert.equal(addressKey("[::ffff:192.0.2.7]"), "192.0.2.7");
  assert.equal(addressKey("::ffff:c000:207"), "192.0.2.7", "IPv4-mapped in hex is not one /64");
  assert.equal(addressKey("2001:db8:0:1:0:0:192.0.2.7"), "2001:db8:0:1::/64");
  assert.equal(addressKey("2001:db8::1:0:0:0:1"), "2001:db8:0:1::/64");
  assert.equal(addressKey("2001:db8:0:1::7::8"), "2001:db8:0:1::7::8", "not an address");
});

Deno.test("checkSlowed() waits for the address's failures before the check, whatever the outcome", async () => {
  let now = 0;
  const limiter = new LoginLimiter({ baseDelayMs: 1000, now: () => now });
  const events: string[] = [];
  const wait = (ms: number) => {
    events.push(`wait ${ms}`);
    now += ms;
    return Promise.resolve();
  };
  const check = (ok: boolean) => () => {
    events.push("check");
    return Promise.resolve(ok ? "account" : undefined);
  };
  // An address without recent failures: no wait at all.
  const first = await checkSlowed(limiter, "192.0.2.7", check(false), wait);
  assert.deepEqual(events, ["check"]);
  assert.deepEqual(first, {
    account: undefined,
    waitedMs: 0,
    failed: { failures: 1, delayMs: 1000 },
  });
  await checkSlowed(limiter, "192.0.2.7", check(false), wait);
  await checkSlowed(limiter, "192.0.2.7", check(false), wait);
  assert.equal(limiter.failuresOf("192.0.2.7"), 3);
  events.length = 0;
  // The right password after 3 recent failures still waits 4 x the base delay, before the check.
  const good = await checkSlowed(limiter, "192.0.2.7", check(true), wait);
  assert.deepEqual(events, ["wait 4000", "check"]);
  assert.deepEqual(good, { account: "account", waitedMs: 4000 });
  assert.equal(limiter.failuresOf("192.0.2.7"), 3, "a success clears nothing");
  // Another address is not slowed; an IPv6 client counts by its /64.
  events.length = 0;
  await checkSlowed(limiter, "192.0.2.8", check(true), wait);
  await checkSlowed(limiter, "2001:db8::1", check(false), wait);
  await checkSlowed(limiter, "2001:db8::2", check(true), wait);
  assert.deepEqual(events, ["check", "check", "wait 1000", "check"]);
  // Forgotten 15 minutes after the last failure.
  now += 15 * 60_000;
  events.length = 0;
  await checkSlowed(limiter, "192.0.2.7", check(true), wait);
  assert.deepEqual(events, ["check"]);
});
