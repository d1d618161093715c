/**
 * IP addresses as bytes, CIDR ranges, and the IPv6 forms that carry an IPv4 address.
 *
 * The SSRF guard judges addresses by their bytes, never by their spelling: `::ffff:7f00:1`,
 * `::ffff:127.0.0.1` and `0:0:0:0:0:ffff:127.0.0.1` are one address, and a string comparison or a
 * prefix test on text would let one of them through. node:net only says whether a string is an
 * address; the bytes are read here.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface IpAddress {
  readonly family: 4 | 6;
  /** 4 bytes for IPv4, 16 for IPv6, network order. */
  readonly bytes: Uint8Array;
}

export interface Cidr {
  /** The range's first address (host bits cleared). */
  readonly base: IpAddress;
  /** Leading bits that must match: 0–32 for IPv4, 0–128 for IPv6. */
  readonly prefix: number;
}

function parseIPv4Bytes(text: string): number[] | undefined {
  if (!isIPv4(text)) return undefined;
  return text.split('.').map(Number);
}

function parseIPv6Bytes(text: string): number[] | undefined {
  let rest = text;
  // A dotted IPv4 may end an IPv6 address (::ffff:1.2.3.4): it stands for the last two groups.
  const lastColon = rest.lastIndexOf(':');
  if (rest.includes('.', lastColon)) {
    const v4 = parseIPv4Bytes(rest.slice(lastColon + 1));
    if (!v4) return undefined;
    const [a = 0, b = 0, c = 0, d = 0] = v4;
    rest = `${rest.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = rest.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string | undefined): number[] | undefined => {
    if (part === undefined || part === '') return [];
    const groups: number[] = [];
    for (const group of part.split(':')) {
      if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
      groups.push(Number.parseInt(group, 16));
    }
    return groups;
  };
  const head = groupsOf(halves[0]);
  const back = groupsOf(halves[1]);
  if (!head || !back) return undefined;
  const missing = 8 - head.length - back.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...back];
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/**
 * The address in `text` (an IPv6 zone such as `%eth0` is ignored: it picks an interface, not an
 * address), or undefined when it is not one. No brackets: a URL's `[::1]` is unwrapped by the caller.
 */
export function parseIp(text: string): IpAddress | undefined {
  const v4 = parseIPv4Bytes(text);
  if (v4) return { family: 4, bytes: Uint8Array.from(v4) };
  const unzoned = text.split('%')[0] ?? '';
  if (!isIPv6(text)) return undefined;
  const v6 = parseIPv6Bytes(unzoned);
  return v6 && v6.length === 16 ? { family: 6, bytes: Uint8Array.from(v6) } : undefined;
}

/** Dotted decimal for IPv4; RFC 5952 for IPv6 (lowercase, the longest run of zero groups as `::`). */
export function formatIp(address: IpAddress): string {
  const b = address.bytes;
  if (address.family === 4) return Array.from(b).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; ) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function bytesMatch(a: Uint8Array, b: Uint8Array, prefixBits: number): boolean {
  const whole = Math.floor(prefixBits / 8);
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const bits = prefixBits % 8;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((a[whole] ?? 0) & mask) === ((b[whole] ?? 0) & mask);
}

/** The range `base/prefix`, host bits of `base` cleared (`127.0.0.1/8` is `127.0.0.0/8`, as Python's strict=False). */
export function makeCidr(base: IpAddress, prefix: number): Cidr {
  const max = base.family === 4 ? 32 : 128;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new RangeError(`prefix ${prefix} is outside 0–${max}`);
  const bytes = Uint8Array.from(base.bytes);
  for (let bit = prefix; bit < max; bit++) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) & ~(0x80 >> (bit & 7));
  return { base: { family: base.family, bytes }, prefix };
}

/** `a.b.c.d/n` or `x:y::/n`; undefined when not one. */
export function parseCidr(text: string): Cidr | undefined {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!match) return undefined;
  const base = parseIp(match[1] ?? '');
  const prefix = Number(match[2]);
  if (!base || prefix > (base.family === 4 ? 32 : 128)) return undefined;
  return makeCidr(base, prefix);
}

export function cidrContains(cidr: Cidr, address: IpAddress): boolean {
  return cidr.base.family === address.family && bytesMatch(cidr.base.bytes, address.bytes, cidr.prefix);
}

export function sameAddress(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && bytesMatch(a.bytes, b.bytes, a.bytes.length * 8);
}

/**
 * IPv6 ranges whose packets reach an IPv4 address: the address is judged as that IPv4 address.
 * IPv4-mapped goes straight to IPv4 through the dual stack; the others reach it through a
 * translator or tunnel when the network has one, so they are judged as if it had.
 */
const EMBEDDED_IPV4: readonly { readonly form: string; readonly range: Cidr; readonly at: number; readonly excluding?: readonly IpAddress[] }[] = [
  { form: 'IPv4-mapped', range: cidrLiteral('::ffff:0:0/96'), at: 12 },
  // SIIT's IPv4-translated form (RFC 2765).
  { form: 'IPv4-translated', range: cidrLiteral('::ffff:0:0:0/96'), at: 12 },
  // NAT64's well-known prefix (RFC 6052).
  { form: 'NAT64', range: cidrLiteral('64:ff9b::/96'), at: 12 },
  // Deprecated IPv4-compatible form; :: and ::1 are the IPv6 unspecified and loopback addresses themselves.
  { form: 'IPv4-compatible', range: cidrLiteral('::/96'), at: 12, excluding: [ipLiteral('::'), ipLiteral('::1')] },
  // 6to4 (RFC 3056): the tunnel endpoint is the IPv4 address in bits 16–47.
  { form: '6to4', range: cidrLiteral('2002::/16'), at: 2 },
];

/** An address written in the code: a typo throws when the module loads. */
export function ipLiteral(text: string): IpAddress {
  const address = parseIp(text);
  if (!address) throw new Error(`not an address: ${text}`);
  return address;
}

/** A range written in the code: a typo throws when the module loads. */
export function cidrLiteral(text: string): Cidr {
  const range = parseCidr(text);
  if (!range) throw new Error(`not a CIDR: ${text}`);
  return range;
}

export interface NormalisedAddress {
  /** The address to judge: the embedded IPv4 address for the forms above, else the address itself. */
  readonly address: IpAddress;
  /** Which IPv6 form carried an IPv4 address, when one did. */
  readonly form?: string;
}

export function normaliseIp(address: IpAddress): NormalisedAddress {
  if (address.family === 4) return { address };
  for (const { form, range, at, excluding } of EMBEDDED_IPV4) {
    if (!cidrContains(range, address)) continue;
    if (excluding?.some((x) => sameAddress(x, address))) continue;
    return { address: { family: 4, bytes: address.bytes.slice(at, at + 4) }, form };
  }
  return { address };
}
