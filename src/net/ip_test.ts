import assert from "node:assert/strict";
import { inNetwork, parseIp, parseNetwork } from "./ip.ts";

Deno.test("parseIp() reads IPv4, IPv6 in every spelling, and IPv4-mapped IPv6 as IPv4", () => {
  assert.deepEqual(parseIp("192.0.2.1"), { version: 4, value: 0xc0000201n });
  assert.deepEqual(parseIp("::ffff:192.0.2.1"), parseIp("192.0.2.1"));
  assert.deepEqual(parseIp("2001:DB8:0:0:0:0:0:1"), parseIp("2001:db8::1"));
  assert.deepEqual(parseIp("[::1]"), { version: 6, value: 1n });
  assert.deepEqual(parseIp("fe80::1%eth0"), parseIp("fe80::1"));
  for (const bad of ["256.0.0.1", "1.2.3", "1::2::3", "1:2:3:4:5:6:7:8:9", "g::1", "host", ""]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

Deno.test("inNetwork() matches IPv4 and IPv6 prefixes and never across versions", () => {
  const net = (t: string) => {
    const n = parseNetwork(t);
    assert.ok(n, t);
    return n;
  };
  const ip = (t: string) => {
    const a = parseIp(t);
    assert.ok(a, t);
    return a;
  };
  assert.ok(inNetwork(net("192.168.1.0/24"), ip("192.168.1.77")));
  assert.ok(!inNetwork(net("192.168.1.0/24"), ip("192.168.2.1")));
  assert.ok(inNetwork(net("0.0.0.0/0"), ip("203.0.113.9")));
  assert.ok(inNetwork(net("2001:db8:1::/48"), ip("2001:db8:1:ffff::5")));
  assert.ok(!inNetwork(net("2001:db8:1::/48"), ip("2001:db8:2::5")));
  assert.ok(inNetwork(net("2001:db8::1"), ip("2001:0db8:0::1")));
  assert.ok(!inNetwork(net("::/0"), ip("192.0.2.1")));
  assert.ok(inNetwork(net("192.0.2.1"), ip("::ffff:192.0.2.1")));
  for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/8/1", "10.0.0.0/x"]) {
    assert.equal(parseNetwork(bad), undefined, bad);
  }
});
