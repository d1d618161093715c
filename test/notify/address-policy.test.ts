/**
 * The SSRF guard's judgement of addresses, `[notify] allow_hosts`, and the checks an endpoint URL
 * gets when a webhook is created.
 */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { type AddressVerdict, classifyAddress, createAddressPolicy, parseAllowHosts } from '../../src/notify/address-policy.js';
import { endpointUrlProblem } from '../../src/notify/guarded-post.js';
import { parseIp } from '../../src/notify/ip-address.js';

const strict = createAddressPolicy({ allow: [] });
const literal = (address: string): AddressVerdict => strict.check({ host: address, address });
const reasonOf = (verdict: AddressVerdict): string => (verdict.allowed ? '(allowed)' : verdict.reason);

describe('address classes', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.10', 'private'],
    ['100.64.0.1', 'private'],
    ['fd12:3456::1', 'private'],
    ['172.32.0.1', 'public'],
    ['8.8.8.8', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['fec0::1', 'private'],
    // IPv6 forms that carry an IPv4 address are judged as that address.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['::ffff:0:7f00:1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['::127.0.0.1', 'loopback'],
    ['2002:7f00:1::1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
  ])('when the address is %s, then it is %s', (text, expected) => {
    expect(classifyAddress(parseIp(text)!)).toBe(expected);
  });
});

describe('the default policy', () => {
  it.each(['8.8.8.8', '10.0.0.5', '192.168.1.20', '172.20.0.3', 'fd00::5', '2606:4700::1111'])(
    'when the address is %s (public or LAN), then it is allowed',
    (a) => {
      expect(literal(a).allowed).toBe(true);
    },
  );

  it('when the address is loopback, then it is refused with the class, the address and the fix', () => {
    expect(reasonOf(literal('127.0.0.1'))).toBe('127.0.0.1 is a loopback address; list 127.0.0.1 in system.ini [notify] allow_hosts to allow it');
  });

  it('when an IPv4-mapped address is refused, then the reason shows both forms and lists the IPv4 form', () => {
    expect(reasonOf(literal('::ffff:7f00:1'))).toBe(
      '::ffff:7f00:1 (IPv4 127.0.0.1) is a loopback address; list 127.0.0.1 in system.ini [notify] allow_hosts to allow it',
    );
  });

  it('when a name resolves to a refused address, then the reason names the host and offers listing either', () => {
    const verdict = strict.check({ host: 'Hooks.Example.Test.', address: '169.254.3.4' });
    expect(reasonOf(verdict)).toBe(
      'hooks.example.test resolves to 169.254.3.4, a link-local address; list 169.254.3.4 or the host name in system.ini [notify] allow_hosts to allow it',
    );
  });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['169.254.169.254', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['fe80::1', 'link-local'],
  ])('when the address is %s, then it is refused as %s', (address, addressClass) => {
    expect(literal(address)).toMatchObject({ allowed: false, addressClass });
  });

  it('when the address is not an address, then it is refused', () => {
    expect(strict.check({ host: 'x', address: 'not-an-ip' })).toMatchObject({ allowed: false, addressClass: 'invalid' });
  });
});

describe('[notify] allow_hosts', () => {
  it('when entries are addresses, CIDRs and names, then each is read (spaces and empty entries ignored)', () => {
    expect(parseAllowHosts(' 127.0.0.1, ::1 ,127.0.0.0/8, fe80::/10,, Hooks.Example.Test, [::1], localhost ').map((e) => e.kind)).toEqual([
      'address',
      'address',
      'cidr',
      'cidr',
      'host',
      'address',
      'host',
    ]);
    expect(parseAllowHosts('')).toEqual([]);
  });

  it.each(['300.1.1.1', '127.0.0.1/33', '::1/129', '1.2.3', 'exa mple.test', '127.0.0.1:8080', 'http://127.0.0.1', '-bad.example', 'a..b', '1::2::3'])(
    'when an entry is %j, then it is refused naming the entry',
    (entry) => {
      let error: unknown;
      try {
        parseAllowHosts(`127.0.0.1, ${entry}`);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('STARTUP_CONFIG_INVALID');
      expect((error as AppError).message).toBe(`[notify] allow_hosts: "${entry}" is not an address, a CIDR or a host name`);
    },
  );

  it('when an address is listed, then exactly that address is allowed', () => {
    const policy = createAddressPolicy({ allow: parseAllowHosts('127.0.0.2') });
    expect(policy.check({ host: '127.0.0.2', address: '127.0.0.2' }).allowed).toBe(true);
    expect(policy.check({ host: '::ffff:127.0.0.2', address: '::ffff:127.0.0.2' }).allowed).toBe(true);
    expect(policy.check({ host: '127.0.0.1', address: '127.0.0.1' }).allowed).toBe(false);
  });

  it('when a CIDR is listed, then the addresses in it are allowed and those outside are not', () => {
    const policy = createAddressPolicy({ allow: parseAllowHosts('127.0.0.0/8, fe80::/10, ::1/128') });
    for (const a of ['127.0.0.1', '127.9.9.9', 'fe80::1234', '::1', '::ffff:127.0.0.1']) expect(policy.check({ host: a, address: a }).allowed, a).toBe(true);
    for (const a of ['169.254.1.1', '0.0.0.0', '::']) expect(policy.check({ host: a, address: a }).allowed, a).toBe(false);
  });

  it('when a mapped IPv6 range is listed, then it means the IPv4 range', () => {
    const policy = createAddressPolicy({ allow: parseAllowHosts('::ffff:127.0.0.0/104') });
    expect(policy.check({ host: '127.1.2.3', address: '127.1.2.3' }).allowed).toBe(true);
    expect(policy.check({ host: '169.254.1.1', address: '169.254.1.1' }).allowed).toBe(false);
  });

  it('when a host name is listed, then every address it resolves to is allowed for that name only', () => {
    const policy = createAddressPolicy({ allow: parseAllowHosts('hooks.example.test') });
    expect(policy.check({ host: 'HOOKS.example.test.', address: '127.0.0.1' }).allowed).toBe(true);
    expect(policy.check({ host: 'other.example.test', address: '127.0.0.1' }).allowed).toBe(false);
  });

  it('when the link-local range is listed, then the metadata address in it stays refused until listed itself', () => {
    const range = createAddressPolicy({ allow: parseAllowHosts('169.254.0.0/16') });
    expect(range.check({ host: '169.254.1.1', address: '169.254.1.1' }).allowed).toBe(true);
    const verdict = range.check({ host: '169.254.169.254', address: '169.254.169.254' });
    expect(verdict).toMatchObject({ allowed: false, addressClass: 'metadata' });
    expect(reasonOf(verdict)).toContain('list the address itself');
    const exact = createAddressPolicy({ allow: parseAllowHosts('169.254.169.254') });
    expect(exact.check({ host: '169.254.169.254', address: '169.254.169.254' }).allowed).toBe(true);
  });
});

describe('endpoint URL problems (at webhook creation)', () => {
  it.each([
    ['not a url', 'not a URL'],
    ['ftp://example.com/hook', 'the scheme must be http or https, not ftp'],
    ['file:///etc/passwd', 'the scheme must be http or https, not file'],
    ['https://example.com/hook#frag', 'the URL has a fragment (#…), which is never sent'],
    ['https://example.com/hook#', 'the URL has a fragment (#…), which is never sent'],
    [`https://example.com/${'a'.repeat(2048)}`, 'the URL is longer than 2048 characters'],
    ['http://127.0.0.1:8080/hook', '127.0.0.1 is a loopback address; list 127.0.0.1 in system.ini [notify] allow_hosts to allow it'],
    ['http://[::ffff:169.254.169.254]/x', '::ffff:a9fe:a9fe (IPv4 169.254.169.254) is a cloud metadata service address'],
    ['http://0.0.0.0/x', '0.0.0.0 is the unspecified address'],
    ['http://2130706433/x', '127.0.0.1 is a loopback address'],
  ])('when the URL is %j, then the problem is said', (url, problem) => {
    expect(endpointUrlProblem(url, strict)).toContain(problem);
  });

  it.each(['https://hooks.example.com/x?token=1', 'http://10.0.0.5:9000/hook', 'http://user:pw@192.168.1.2/x', 'https://localhost/x'])(
    'when the URL is %j, then there is no problem (names are judged at delivery)',
    (url) => {
      expect(endpointUrlProblem(url, strict)).toBeUndefined();
    },
  );

  it('when a URL of exactly 2048 characters is given, then its length is fine', () => {
    const url = 'https://example.com/';
    expect(endpointUrlProblem(url + 'a'.repeat(2048 - url.length), strict)).toBeUndefined();
  });

  it('when the literal address is listed, then the URL is fine', () => {
    const policy = createAddressPolicy({ allow: parseAllowHosts('127.0.0.0/8') });
    expect(endpointUrlProblem('http://127.0.0.1:8080/hook', policy)).toBeUndefined();
  });

  it('when the URL carries credentials and a query, then the problem shows neither', () => {
    const problem = endpointUrlProblem('ftp://user:s3cret@example.com/x?token=abc', strict) ?? '';
    expect(problem).not.toContain('s3cret');
    expect(problem).not.toContain('abc');
  });
});
