/**
 * A placeholder that is a URL's whole host: `http://{{ web.host }}:{{ web.port }}/` or
 * `http://[{{ web.ip6 }}]/`. Every other placeholder is percent-encoded, which a host cannot
 * take for an IPv6 address (`::1` would become `%3A%3A1`), so a host value is read as a host:
 * a name or IPv4 address as it is, an IPv6 address in brackets (`::1` and `[::1]` alike, the
 * brackets added when the value has none). An IPv6 zone id (`fe80::1%eth0`) cannot be written in
 * a URL and is refused, like anything else that is no host; so a value can still never carry the
 * request to another host than itself, nor to another scheme, port or path.
 */
import type { ParsedTemplate } from '../render/placeholders.js';

export interface HostPlaceholder {
  /** Index in `parts` of the placeholder. */
  readonly index: number;
  /** The template writes the brackets around it: the value must be an IPv6 address. */
  readonly bracketed: boolean;
}

/** Stands for a placeholder while the template is looked at as text; no URL template holds it. */
const MARK = '\uE000';

/** An IPv6 address as the URL standard reads one between brackets (no zone id: URLs have none). */
function isIPv6(text: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return false;
  try {
    new URL(`http://[${text}]/`);
    return true;
  } catch {
    return false;
  }
}

/** The placeholder that is the whole host of the URL template, if one is. */
export function hostPlaceholder(parsed: ParsedTemplate): HostPlaceholder | undefined {
  if (parsed.parts.some((part) => 'text' in part && part.text.includes(MARK))) return undefined;
  const marked = parsed.parts.map((part) => ('text' in part ? part.text : MARK)).join('');
  const scheme = /^https?:\/\//i.exec(marked);
  if (!scheme) return undefined;
  const authority = /^[^/?#]*/.exec(marked.slice(scheme[0].length))![0];
  const hostStart = scheme[0].length + authority.lastIndexOf('@') + 1;
  const hostAndPort = marked.slice(hostStart, scheme[0].length + authority.length);
  const bracketed = hostAndPort.startsWith(`[${MARK}]`);
  const rest = hostAndPort.slice(bracketed ? 3 : 1);
  if (!(bracketed || hostAndPort.startsWith(MARK)) || !(rest === '' || rest.startsWith(':'))) return undefined;
  const ordinal = marked.slice(0, hostStart).split(MARK).length - 1;
  let seen = 0;
  for (const [index, part] of parsed.parts.entries()) {
    if (!('name' in part)) continue;
    if (seen === ordinal) return { index, bracketed };
    seen++;
  }
  return undefined;
}

/**
 * The text a host value takes in the URL; a problem (naming `field`, never the value) when it is
 * no host.
 */
export function hostText(value: string, { bracketed, field }: { bracketed: boolean; field: string }): { text: string } | { problem: string } {
  const inner = !bracketed && value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  if (isIPv6(inner)) return { text: bracketed ? inner : `[${inner}]` };
  if (isIPv6(inner.split('%')[0]!)) return { problem: `${field} is an IPv6 address with a zone id ("%…"), which a URL cannot hold` };
  if (bracketed || inner !== value) return { problem: `${field} (in [ ] as the host) is not an IPv6 address` };
  const text = encodeURIComponent(value);
  try {
    if (text !== '' && new URL(`http://${text}/`).hostname !== '') return { text };
  } catch {
    // Reported below.
  }
  return { problem: `${field} (the host) is not a host name, an IPv4 or an IPv6 address` };
}
