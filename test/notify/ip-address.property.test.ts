/**
 * Properties of the SSRF guard's address reading: every spelling of an IPv4-mapped address is
 * judged as its IPv4 address, IPv6 text reads back to the same bytes whatever its spelling, and
 * CIDR matching agrees with a bit-by-bit reference.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyAddress, createAddressPolicy, parseAllowHosts } from '../../src/notify/address-policy.js';
import { cidrContains, formatIp, type IpAddress, makeCidr, normaliseIp, parseIp } from '../../src/notify/ip-address.js';

const RUNS = 500;

const v4Bytes = fc.uint8Array({ minLength: 4, maxLength: 4 });
const v6Bytes = fc.uint8Array({ minLength: 16, maxLength: 16 });
/** Mostly the special ranges, so the refused classes are hit often, not once in 2^32. */
const interestingV4 = fc.oneof(
  v4Bytes,
  fc
    .tuple(fc.constantFrom(0, 10, 127, 169, 172, 192, 224, 255, 100), fc.uint8Array({ minLength: 3, maxLength: 3 }))
    .map(([a, rest]) => Uint8Array.from([a, ...rest])),
  fc.constantFrom(Uint8Array.from([169, 254, 169, 254]), Uint8Array.from([255, 255, 255, 255]), Uint8Array.from([100, 100, 100, 200])),
);

const hex4 = (a: number, b: number): string => ((a << 8) | b).toString(16);

/** Every way the same IPv4-mapped address can be written. */
function mappedSpellings(b: Uint8Array): string[] {
  const [a = 0, c = 0, d = 0, e = 0] = b;
  const dotted = `${a}.${c}.${d}.${e}`;
  const hi = hex4(a, c);
  const lo = hex4(d, e);
  return [
    `::ffff:${dotted}`,
    `::FFFF:${dotted}`,
    `::ffff:${hi}:${lo}`,
    `0:0:0:0:0:ffff:${dotted}`,
    `0000:0000:0000:0000:0000:ffff:${hi.padStart(4, '0')}:${lo.padStart(4, '0')}`.toUpperCase(),
    `0::ffff:${hi}:${lo}`,
  ];
}

/** The same 16 bytes written with random leading zeros, case and (for a zero run) `::`. */
function v6Spelling(bytes: Uint8Array, { pad, upper, compress }: { pad: boolean[]; upper: boolean; compress: boolean }): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) {
    const text = hex4(bytes[2 * i] ?? 0, bytes[2 * i + 1] ?? 0);
    groups.push(pad[i] ? text.padStart(4, '0') : text);
  }
  let text = groups.join(':');
  if (compress) {
    const zeroRun = /(^|:)(0{1,4}(:0{1,4})+)(:|$)/.exec(text);
    if (zeroRun) text = `${text.slice(0, zeroRun.index)}::${text.slice(zeroRun.index + zeroRun[0].length)}`;
  }
  return upper ? text.toUpperCase() : text;
}

/** Reference: the first `prefix` bits equal, compared as one big integer. */
function samePrefix(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  const bits = a.length * 8;
  const toBig = (x: Uint8Array): bigint => x.reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
  const shift = BigInt(bits - prefix);
  return toBig(a) >> shift === toBig(b) >> shift;
}

describe('IP addresses (properties)', () => {
  it('when an IPv4-mapped address is spelt any way, then it normalises to its IPv4 address and is judged as it', () => {
    const strict = createAddressPolicy({ allow: [] });
    fc.assert(
      fc.property(interestingV4, (b) => {
        const v4 = parseIp(Array.from(b).join('.'))!;
        for (const spelling of mappedSpellings(b)) {
          const parsed = parseIp(spelling);
          expect(parsed, spelling).toBeDefined();
          const normalised = normaliseIp(parsed!);
          expect(normalised.form).toBe('IPv4-mapped');
          expect(formatIp(normalised.address)).toBe(formatIp(v4));
          expect(classifyAddress(parsed!)).toBe(classifyAddress(v4));
          expect(strict.check({ host: spelling, address: spelling }).allowed).toBe(strict.check({ host: formatIp(v4), address: formatIp(v4) }).allowed);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('when an IPv4 address is listed, then each mapped spelling of it is allowed too (and nothing else is)', () => {
    fc.assert(
      fc.property(interestingV4, interestingV4, (listedBytes, otherBytes) => {
        const listed = Array.from(listedBytes).join('.');
        const policy = createAddressPolicy({ allow: parseAllowHosts(listed) });
        for (const spelling of mappedSpellings(listedBytes)) expect(policy.check({ host: spelling, address: spelling }).allowed).toBe(true);
        const other = Array.from(otherBytes).join('.');
        const otherV4 = parseIp(other)!;
        const refusedByDefault = !['public', 'private'].includes(classifyAddress(otherV4));
        if (other !== listed && refusedByDefault) {
          for (const spelling of mappedSpellings(otherBytes)) expect(policy.check({ host: spelling, address: spelling }).allowed).toBe(false);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('when IPv6 bytes are written with any padding, case or zero compression, then they read back to the same bytes', () => {
    fc.assert(
      fc.property(v6Bytes, fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), fc.boolean(), fc.boolean(), (bytes, pad, upper, compress) => {
        const text = v6Spelling(bytes, { pad, upper, compress });
        const parsed = parseIp(text);
        expect(parsed, text).toBeDefined();
        expect(Array.from(parsed!.bytes)).toEqual(Array.from(bytes));
      }),
      { numRuns: RUNS },
    );
  });

  it('when IPv6 bytes are formatted, then the text is the WHATWG URL canonical form and reads back', () => {
    // Sparse addresses (many zero groups) exercise the choice of the run that becomes `::`.
    const sparse = fc.array(fc.constantFrom(0, 0, 0, 1, 0xff), { minLength: 16, maxLength: 16 }).map((a) => Uint8Array.from(a));
    fc.assert(
      fc.property(fc.oneof(v6Bytes, sparse), (bytes) => {
        const address: IpAddress = { family: 6, bytes };
        const text = formatIp(address);
        expect(Array.from(parseIp(text)!.bytes)).toEqual(Array.from(bytes));
        const canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
        // WHATWG writes a mapped address in hex (::ffff:7f00:1) as formatIp does.
        expect(text).toBe(canonical);
      }),
      { numRuns: RUNS },
    );
  });

  it('when an address is matched against a CIDR, then the answer is the bit-by-bit comparison of the prefix', () => {
    const pair = (length: number) =>
      fc
        .tuple(fc.uint8Array({ minLength: length, maxLength: length }), fc.uint8Array({ minLength: length, maxLength: length }), fc.nat({ max: length * 8 }))
        // The second address differs from the first in a few low bits at most, so both answers come up.
        .map(([a, noise, flipFrom]) => ({ a, b: a.map((byte, i) => (i * 8 >= flipFrom ? byte ^ (noise[i] ?? 0) : byte)) }));
    const arb = fc.oneof(
      fc.tuple(pair(4), fc.nat({ max: 32 })).map(([p, prefix]) => ({ ...p, family: 4 as const, prefix })),
      fc.tuple(pair(16), fc.nat({ max: 128 })).map(([p, prefix]) => ({ ...p, family: 6 as const, prefix })),
    );
    let inside = 0;
    let outside = 0;
    fc.assert(
      fc.property(arb, ({ a, b, family, prefix }) => {
        const range = makeCidr({ family, bytes: a }, prefix);
        const expected = samePrefix(a, b, prefix);
        expect(cidrContains(range, { family, bytes: b })).toBe(expected);
        if (expected) inside++;
        else outside++;
        // The written form means the same range.
        const written = parseAllowHosts(`${formatIp({ family, bytes: a })}/${prefix}`)[0];
        expect(written?.kind).toBe('cidr');
        if (written?.kind === 'cidr' && !(family === 6 && prefix >= 96 && normaliseIp({ family, bytes: a }).form === 'IPv4-mapped')) {
          expect(cidrContains(written.cidr, { family, bytes: b })).toBe(expected);
        }
      }),
      { numRuns: RUNS * 2 },
    );
    expect(inside).toBeGreaterThan(RUNS / 10);
    expect(outside).toBeGreaterThan(RUNS / 10);
  });

  it('when a CIDR is matched against an address of the other family, then it never matches', () => {
    fc.assert(
      fc.property(v4Bytes, v6Bytes, fc.nat({ max: 32 }), (a, b, prefix) => {
        expect(cidrContains(makeCidr({ family: 4, bytes: a }, prefix), { family: 6, bytes: b })).toBe(false);
        expect(cidrContains(makeCidr({ family: 6, bytes: b }, prefix), { family: 4, bytes: a })).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });
});
