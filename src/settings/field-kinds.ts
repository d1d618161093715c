/**
 * The value types of config.ini/system.ini keys. Every value lives in the file as text; a kind
 * says which texts are valid, how the API returns them (ports as numbers) and which JSON inputs
 * it accepts. Validation always runs on the text that would be written. (Their JSON Schema for
 * the API's document is in http/openapi.ts: the sync worker validates too, and zod costs about
 * 3 MiB of heap in each thread that loads it.)
 */

export type FieldKind = 'text' | 'secret' | 'port' | 'http_url' | 'email' | 'boolean' | 'abs_path' | 'ipv4' | 'hostname' | 'url_list' | 'name_list' | 'api_key';

/** A refused input: `problem` follows the field's name; `code` is the issue's (default INVALID_TYPE). */
export type FromJson = { ok: true; text: string } | { ok: false; problem: string; code?: string };

export interface FieldKindDef {
  /** Problem with a stored (non-empty) text, or undefined when valid. */
  check(text: string): string | undefined;
  /** Stored text → API value; only called on texts that passed check. */
  toJson(text: string): unknown;
  fromJson(input: unknown): FromJson;
  /** Short code for issues, e.g. INVALID_PORT. */
  readonly issueCode: string;
}

/** The email and IPv4 patterns of zod 4, which validated these keys before: no stored value changes verdict. */
const EMAIL = /^(?:[A-Za-z0-9_'+-]+\.)*[A-Za-z0-9_'+-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$/;

/** What zod 4's `url({ protocol: /^https?$/ })` accepted: `http(s)://` first, then whatever the WHATWG parser takes. */
function isHttpUrl(text: string): boolean {
  const trimmed = text.trim();
  if (!/^https?:\/\//i.test(trimmed)) return false;
  try {
    return /^https?$/.test(new URL(trimmed).protocol.slice(0, -1));
  } catch {
    return false;
  }
}

const HOSTNAME = /^(\*\.)?(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const APP_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const API_KEY = /^[A-Za-z0-9._~-]{32,256}$/;
/**
 * Keys anyone can read: Websoft9's apphub shipped this one as its default, so every installation
 * that kept it can be opened by anyone. Compared without regard to case (hex reads the same).
 */
export const WEBSOFT9_DEFAULT_API_KEY = '9e66918137d882c6ebdc1eccb0866e25172c5f8fa2101458a8ce9b044e4c7e5e';
export const PUBLIC_API_KEYS: ReadonlySet<string> = new Set([WEBSOFT9_DEFAULT_API_KEY]);

/** A key may guard the API when it is set and not known to the public (the format is the field's own rule). */
export function isUsableApiKey(key: string | undefined): key is string {
  return key !== undefined && key !== '' && !PUBLIC_API_KEYS.has(key.toLowerCase());
}

/** Why a key is publicly known, or undefined (checked where a key is set, see validate.ts). */
export function publicApiKeyProblem(text: string): string | undefined {
  return PUBLIC_API_KEYS.has(text.toLowerCase()) ? 'is the publicly known Websoft9 default key; use another (confhub apikey rotate makes one)' : undefined;
}
const TRUE_TEXTS = new Set(['1', 'yes', 'true', 'on']);
const BOOLEAN_TEXTS = new Set([...TRUE_TEXTS, '0', 'no', 'false', 'off']);

/** What a JSON value is, for messages: "a number", "null", "an array"… */
function jsonType(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'an array';
  return typeof input === 'object' ? 'an object' : `a ${typeof input}`;
}

/**
 * A JSON value is taken as the file's text only when it is a string: `true` or `8080` sent for a
 * name or a password is a client's mistake (a password must not silently become "8080"), and the
 * API returns every such key as a string, so what a GET returns a PUT takes back. Only ports take
 * a JSON number and booleans a JSON boolean, as the API returns them.
 */
function stringFromJson(input: unknown): FromJson {
  return typeof input === 'string' ? { ok: true, text: input } : { ok: false, problem: `must be a string, not ${jsonType(input)}` };
}

function listFromJson(input: unknown): FromJson {
  if (Array.isArray(input)) {
    if (!input.every((item) => typeof item === 'string')) return { ok: false, problem: 'list items must be strings' };
    return { ok: true, text: input.map((item) => item.trim()).join(',') };
  }
  return typeof input === 'string'
    ? { ok: true, text: input }
    : { ok: false, problem: `must be a comma-separated string or an array of strings, not ${jsonType(input)}` };
}

const PORT_PROBLEM = 'must be an integer from 1 to 65535';

/**
 * A JSON integer, or its decimal digits as a string (the legacy query form sends text). "080" is
 * refused rather than stored as typed or repaired: services differ on whether it is 80 or octal.
 * What is left (1e3, NaN, -0, 70000 as text) the check refuses.
 */
function portFromJson(input: unknown): FromJson {
  if (typeof input === 'number') return Number.isInteger(input) ? { ok: true, text: String(input) } : { ok: false, problem: PORT_PROBLEM };
  if (typeof input !== 'string') return { ok: false, problem: `${PORT_PROBLEM}, not ${jsonType(input)}` };
  if (/^0\d/.test(input)) return { ok: false, problem: `${PORT_PROBLEM} written without leading zeros`, code: 'INVALID_PORT' };
  return { ok: true, text: input };
}

/** true/false, or the texts configparser reads as booleans (checked as stored text). */
function booleanFromJson(input: unknown): FromJson {
  if (typeof input === 'boolean') return { ok: true, text: String(input) };
  return typeof input === 'string' ? { ok: true, text: input } : { ok: false, problem: `must be true or false, not ${jsonType(input)}` };
}

function listItems(text: string): string[] {
  return text.split(',').map((item) => item.trim());
}

function stringKind(issueCode: string, check: (text: string) => string | undefined): FieldKindDef {
  return { check, toJson: (text) => text, fromJson: stringFromJson, issueCode };
}

function listKind(issueCode: string, itemProblem: (item: string) => string | undefined): FieldKindDef {
  return {
    check(text) {
      const items = listItems(text);
      if (items.some((item) => item === '')) return 'must not contain empty list items';
      for (const item of items) {
        const problem = itemProblem(item);
        if (problem) return `"${item}": ${problem}`;
      }
      return undefined;
    },
    toJson: (text) => text,
    fromJson: listFromJson,
    issueCode,
  };
}

export const FIELD_KINDS: Readonly<Record<FieldKind, FieldKindDef>> = Object.freeze({
  text: stringKind('INVALID_TEXT', () => undefined),
  secret: stringKind('INVALID_SECRET', () => undefined),
  port: {
    check: (text) => (/^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535 ? undefined : PORT_PROBLEM),
    toJson: Number,
    fromJson: portFromJson,
    issueCode: 'INVALID_PORT',
  },
  http_url: stringKind('INVALID_URL', (text) => (isHttpUrl(text) && !/\s/.test(text) ? undefined : 'must be an http:// or https:// URL')),
  email: stringKind('INVALID_EMAIL', (text) => (EMAIL.test(text) ? undefined : 'must be an email address')),
  boolean: {
    check: (text) => (BOOLEAN_TEXTS.has(text.toLowerCase()) ? undefined : 'must be true or false'),
    toJson: (text) => TRUE_TEXTS.has(text.toLowerCase()),
    fromJson: booleanFromJson,
    issueCode: 'INVALID_BOOLEAN',
  },
  abs_path: stringKind('INVALID_PATH', (text) => {
    if (!text.startsWith('/')) return 'must be an absolute path';
    if (text.split('/').includes('..')) return 'must not contain ".." segments';
    return undefined;
  }),
  ipv4: stringKind('INVALID_IPV4', (text) => (IPV4.test(text) ? undefined : 'must be an IPv4 address')),
  hostname: stringKind('INVALID_HOSTNAME', (text) => (HOSTNAME.test(text) ? undefined : 'must be a domain name such as example.com')),
  url_list: listKind('INVALID_LIST', (item) => (isHttpUrl(item) ? undefined : 'must be an http:// or https:// URL')),
  name_list: listKind('INVALID_LIST', (item) => (APP_NAME.test(item) ? undefined : 'must be a lowercase application name')),
  api_key: stringKind('INVALID_API_KEY', (text) => (API_KEY.test(text) ? undefined : 'must be 32 to 256 characters of letters, digits and . _ ~ -')),
});
