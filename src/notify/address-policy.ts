/**
 * Which addresses a webhook delivery may connect to (the SSRF guard's judgement; no I/O here).
 *
 * Webhook URLs come from API users; the deliveries run inside confhub's container, next to the
 * services it configures and, in a cloud, next to the instance metadata service. By default public
 * and private LAN addresses are allowed (receivers on the LAN are the common case); loopback,
 * link-local, cloud metadata, unspecified, multicast and broadcast addresses are refused unless
 * system.ini `[notify] allow_hosts` lists them. The API user cannot change that list: it is the
 * operator's.
 */
import { AppError } from '../core/errors.js';
import {
  type Cidr,
  cidrContains,
  cidrLiteral,
  formatIp,
  type IpAddress,
  ipLiteral,
  makeCidr,
  normaliseIp,
  parseCidr,
  parseIp,
  sameAddress,
} from './ip-address.js';

export type AddressClass = 'public' | 'private' | 'loopback' | 'link-local' | 'metadata' | 'unspecified' | 'multicast' | 'broadcast';

/** One entry of `[notify] allow_hosts`. */
export type AllowEntry =
  | { readonly kind: 'address'; readonly address: IpAddress }
  | { readonly kind: 'cidr'; readonly cidr: Cidr }
  | { readonly kind: 'host'; readonly name: string };

const REFUSED_BY_DEFAULT: ReadonlySet<AddressClass> = new Set(['loopback', 'link-local', 'metadata', 'unspecified', 'multicast', 'broadcast']);

/**
 * Cloud instance metadata services: credentials of the machine's role are one GET away. They are
 * told apart from the link-local range they sit in so that the reason says what is at stake, and
 * so that allowing a range (169.254.0.0/16) does not open them: only the address itself does.
 */
const METADATA = [
  ipLiteral('169.254.169.254'), // AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean…
  ipLiteral('fd00:ec2::254'), // AWS over IPv6
  ipLiteral('fd20:ce::254'), // Google Cloud over IPv6
  ipLiteral('100.100.100.200'), // Alibaba Cloud
];

/** First match wins: metadata before the ranges it lies in. */
const CLASS_RANGES: readonly { readonly range: Cidr; readonly addressClass: AddressClass }[] = [
  { range: cidrLiteral('255.255.255.255/32'), addressClass: 'broadcast' },
  { range: cidrLiteral('0.0.0.0/8'), addressClass: 'unspecified' },
  { range: cidrLiteral('::/128'), addressClass: 'unspecified' },
  { range: cidrLiteral('127.0.0.0/8'), addressClass: 'loopback' },
  { range: cidrLiteral('::1/128'), addressClass: 'loopback' },
  { range: cidrLiteral('169.254.0.0/16'), addressClass: 'link-local' },
  { range: cidrLiteral('fe80::/10'), addressClass: 'link-local' },
  { range: cidrLiteral('224.0.0.0/4'), addressClass: 'multicast' },
  { range: cidrLiteral('ff00::/8'), addressClass: 'multicast' },
  { range: cidrLiteral('10.0.0.0/8'), addressClass: 'private' },
  { range: cidrLiteral('172.16.0.0/12'), addressClass: 'private' },
  { range: cidrLiteral('192.168.0.0/16'), addressClass: 'private' },
  // Carrier-grade NAT space: a LAN seen from a container host more often than not.
  { range: cidrLiteral('100.64.0.0/10'), addressClass: 'private' },
  { range: cidrLiteral('fc00::/7'), addressClass: 'private' },
  // Deprecated site-local: a LAN where it is still used.
  { range: cidrLiteral('fec0::/10'), addressClass: 'private' },
];

const CLASS_NAMES: Readonly<Record<AddressClass, string>> = {
  public: 'a public address',
  private: 'a private LAN address',
  loopback: 'a loopback address',
  'link-local': 'a link-local address',
  metadata: 'a cloud metadata service address',
  unspecified: 'the unspecified address (it reaches this machine)',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
};

/** The class of an address, judged on its normalised form (an IPv4-mapped address as its IPv4 address). */
export function classifyAddress(address: IpAddress): AddressClass {
  const judged = normaliseIp(address).address;
  if (METADATA.some((m) => sameAddress(m, judged))) return 'metadata';
  return CLASS_RANGES.find(({ range }) => cidrContains(range, judged))?.addressClass ?? 'public';
}

/** Host names compare without case and without the root's trailing dot. */
export function normaliseHostName(host: string): string {
  const unbracketed = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return unbracketed.toLowerCase().replace(/\.$/, '');
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

function isHostName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  // An all-numeric last label is an IPv4 address that did not parse (300.1.1.1), never a name.
  if (/^\d+$/.test(labels.at(-1) ?? '')) return false;
  return labels.every((label) => LABEL.test(label));
}

function parseAllowEntry(entry: string): AllowEntry {
  const text = entry.startsWith('[') && entry.endsWith(']') ? entry.slice(1, -1) : entry;
  const address = parseIp(text);
  if (address) return { kind: 'address', address: normaliseIp(address).address };
  const range = parseCidr(text);
  if (range) {
    // An IPv4-mapped range is the IPv4 range: addresses are judged in their IPv4 form.
    const mapped = range.base.family === 6 && range.prefix >= 96 ? normaliseIp(range.base) : undefined;
    if (mapped?.form === 'IPv4-mapped') return { kind: 'cidr', cidr: makeCidr(mapped.address, range.prefix - 96) };
    return { kind: 'cidr', cidr: range };
  }
  const name = normaliseHostName(entry);
  if (isHostName(name)) return { kind: 'host', name };
  throw new AppError('STARTUP_CONFIG_INVALID', {
    message: `[notify] allow_hosts: "${entry}" is not an address, a CIDR or a host name`,
  });
}

/**
 * `[notify] allow_hosts`: comma-separated addresses (`127.0.0.1`, `::1`), CIDRs (`127.0.0.0/8`,
 * `fe80::/10`) and host names (exact, without case). Empty entries are ignored. A bad entry
 * throws STARTUP_CONFIG_INVALID naming it: a typo must not silently leave a receiver blocked, or
 * worse, be read as something wider.
 */
export function parseAllowHosts(text: string): readonly AllowEntry[] {
  return Object.freeze(
    text
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '')
      .map(parseAllowEntry),
  );
}

export interface AddressCheckInput {
  /** The URL's host (a name, or the literal address; brackets allowed). */
  readonly host: string;
  /** The address the connection would go to (the literal, or one record the name resolved to). */
  readonly address: string;
}

export type AddressVerdict = { readonly allowed: true } | { readonly allowed: false; readonly addressClass: AddressClass | 'invalid'; readonly reason: string };

export interface AddressPolicy {
  check(input: AddressCheckInput): AddressVerdict;
}

export interface AddressPolicyOptions {
  /** Parsed `[notify] allow_hosts` (parseAllowHosts). */
  readonly allow: readonly AllowEntry[];
}

const ALLOWED: AddressVerdict = Object.freeze({ allowed: true });

export function createAddressPolicy({ allow }: AddressPolicyOptions): AddressPolicy {
  const hostNames = new Set(allow.flatMap((e) => (e.kind === 'host' ? [e.name] : [])));

  function listed(address: IpAddress, addressClass: AddressClass): boolean {
    return allow.some((entry) => {
      if (entry.kind === 'address') return sameAddress(entry.address, address);
      return entry.kind === 'cidr' && addressClass !== 'metadata' && cidrContains(entry.cidr, address);
    });
  }

  function refusal(input: AddressCheckInput, judged: IpAddress, addressClass: AddressClass): AddressVerdict {
    const shown = formatIp(judged);
    const raw = normaliseHostName(input.address);
    const isLiteral = parseIp(normaliseHostName(input.host)) !== undefined;
    const what = raw === shown ? shown : `${raw} (IPv4 ${shown})`;
    const subject = isLiteral ? `${what} is` : `${normaliseHostName(input.host)} resolves to ${what},`;
    const fix = isLiteral || addressClass === 'metadata' ? `list ${shown}` : `list ${shown} or the host name`;
    const wide = addressClass === 'metadata' ? ' (a range or a host name does not cover it: list the address itself)' : '';
    return {
      allowed: false,
      addressClass,
      reason: `${subject} ${CLASS_NAMES[addressClass]}; ${fix} in system.ini [notify] allow_hosts to allow it${wide}`,
    };
  }

  return {
    check(input) {
      const parsed = parseIp(normaliseHostName(input.address));
      if (!parsed) return { allowed: false, addressClass: 'invalid', reason: `"${input.address}" is not an IP address` };
      const judged = normaliseIp(parsed).address;
      const addressClass = classifyAddress(judged);
      if (!REFUSED_BY_DEFAULT.has(addressClass)) return ALLOWED;
      // A listed name opens what it resolves to, but never a metadata address: only that address listed does.
      if (addressClass !== 'metadata' && hostNames.has(normaliseHostName(input.host))) return ALLOWED;
      if (listed(judged, addressClass)) return ALLOWED;
      return refusal(input, judged, addressClass);
    },
  };
}
