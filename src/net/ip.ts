/**
 * IP addresses and networks as numbers, so that `2001:db8::1`, `2001:0DB8:0:0::1` and an
 * IPv4-mapped `::ffff:192.0.2.1` compare as the addresses they are, not as text.
 */

export interface IpAddress {
  version: 4 | 6;
  value: bigint;
}

export interface IpNetwork extends IpAddress {
  /** Prefix length: 32 (IPv4) or 128 (IPv6) for a single address. */
  bits: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipv4Value(text: string): bigint | undefined {
  const m = IPV4.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return parts.reduce((sum, p) => (sum << 8n) + BigInt(p), 0n);
}

function ipv6Value(text: string): bigint | undefined {
  let host = text.toLowerCase();
  // A trailing IPv4 part (`::ffff:192.0.2.1`) is two groups.
  const v4 = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(host);
  if (v4) {
    const low = ipv4Value(v4[2]);
    if (low === undefined) return undefined;
    host = `${v4[1]}${(low >> 16n).toString(16)}:${(low & 0xffffn).toString(16)}`;
  }
  const halves = host.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string) => part === "" ? [] : part.split(":");
  const left = groupsOf(halves[0]);
  const right = halves.length === 2 ? groupsOf(halves[1]) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...left, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...right];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.reduce((sum, g) => (sum << 16n) + BigInt(parseInt(g, 16)), 0n);
}

/** An address, IPv4-mapped IPv6 as IPv4; undefined when `text` is not one. */
export function parseIp(text: string): IpAddress | undefined {
  const host = text.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const v4 = ipv4Value(host);
  if (v4 !== undefined) return { version: 4, value: v4 };
  const v6 = host.includes(":") ? ipv6Value(host) : undefined;
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn) return { version: 4, value: v6 & 0xffffffffn };
  return { version: 6, value: v6 };
}

/** `address` or `address/bits`; undefined when not one (or the prefix is out of range). */
export function parseNetwork(text: string): IpNetwork | undefined {
  const [host, bits, extra] = text.split("/");
  if (extra !== undefined) return undefined;
  const ip = parseIp(host);
  if (!ip) return undefined;
  const max = ip.version === 4 ? 32 : 128;
  if (bits === undefined) return { ...ip, bits: max };
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return undefined;
  return { ...ip, bits: Number(bits) };
}

/** Whether `address` lies in `network`. */
export function inNetwork(network: IpNetwork, address: IpAddress): boolean {
  if (network.version !== address.version) return false;
  const shift = BigInt((network.version === 4 ? 32 : 128) - network.bits);
  return network.value >> shift === address.value >> shift;
}
