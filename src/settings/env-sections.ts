/**
 * Independent environment variables live in config.ini beside the settings, so they share its one
 * writer, revision, history, rollback, audit log, sealing and ETags: `[env:<scope>]` holds a
 * scope's variables, `[env:<scope>:secret]` those written as secret (every value of it is sealed at
 * rest and masked wherever values are shown, like the settings' passwords). A name that looks
 * secret is secret in either section.
 *
 * The INI dialect cannot hold every value (leading or trailing spaces, a carriage return, a line
 * starting with `#`…); such a value is stored as `json:` followed by its JSON string, so any text
 * without NUL reads back exactly. A value that starts with `json:` is stored that way too.
 */
import { unrepresentableReason } from '../ini/document.js';

export const ENV_SECTION_PREFIX = 'env:';
const SECRET_SUFFIX = ':secret';
export const GLOBAL_SCOPE = 'global';

/** Names a shell, Docker and supervisord all accept. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_ENV_NAME_LENGTH = 256;
export const MAX_ENV_VALUE_LENGTH = 32 * 1024;
/** Scopes are `global` or consumer names: the section name `env:<scope>:secret` stays within 64 characters. */
const SCOPE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,52}$/;
/** Parts of a name that say it holds a credential. */
const SECRET_LOOKING = /(PASS|PWD|SECRET|TOKEN|CREDENTIAL|PRIVATE)|(^|_)(API)?KEYS?(_|$)/i;
const ENCODED_PREFIX = 'json:';

export interface EnvSectionName {
  readonly scope: string;
  readonly secret: boolean;
}

export function isEnvSection(sectionName: string): boolean {
  return sectionName.startsWith(ENV_SECTION_PREFIX);
}

/** The scope and kind of an env section, or undefined for any other section. */
export function parseEnvSection(sectionName: string): EnvSectionName | undefined {
  if (!isEnvSection(sectionName)) return undefined;
  const rest = sectionName.slice(ENV_SECTION_PREFIX.length);
  const secret = rest.endsWith(SECRET_SUFFIX);
  return { scope: secret ? rest.slice(0, -SECRET_SUFFIX.length) : rest, secret };
}

export function envSectionName(scope: string, { secret }: { secret: boolean }): string {
  return `${ENV_SECTION_PREFIX}${scope}${secret ? SECRET_SUFFIX : ''}`;
}

export function envNameProblem(name: string): string | undefined {
  if (name.length > MAX_ENV_NAME_LENGTH) return `the name must be at most ${MAX_ENV_NAME_LENGTH} characters`;
  return ENV_NAME.test(name) ? undefined : 'the name must start with a letter or "_" and hold only letters, digits and "_"';
}

export function scopeNameProblem(scope: string): string | undefined {
  return SCOPE_NAME.test(scope) ? undefined : 'a scope is global or a consumer name: 1-53 letters, digits, "_", "." or "-"';
}

export function looksSecret(name: string): boolean {
  return SECRET_LOOKING.test(name);
}

/** Sensitivity of a key of an env section: every key of a secret section, and names that look secret. */
export function isSensitiveEnvKey(sectionName: string, key: string): boolean {
  return parseEnvSection(sectionName)?.secret === true || looksSecret(key);
}

/** Why no environment variable can hold this value, or undefined. */
export function envValueProblem(value: string): string | undefined {
  if (value.includes('\0')) return 'holds a NUL character, which no environment variable can';
  // for...of yields paired surrogates as one code point: what is left is half a pair.
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (code >= 0xd800 && code <= 0xdfff) return 'holds half of a UTF-16 surrogate pair, which UTF-8 cannot encode';
  }
  return undefined;
}

/** The value as config.ini stores it. */
export function encodeEnvValue(value: string): string {
  if (unrepresentableReason(value) === undefined && !value.startsWith(ENCODED_PREFIX)) return value;
  // JSON escapes C0 controls and line breaks; DEL, C1 controls and U+2028/9, which the file format refuses too, are escaped here.
  const json = JSON.stringify(value).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `${ENCODED_PREFIX}${json}`;
}

/** The value a stored text stands for; throws on a `json:` text that is not one JSON string. */
export function decodeEnvValue(stored: string): string {
  if (!stored.startsWith(ENCODED_PREFIX)) return stored;
  const parsed: unknown = JSON.parse(stored.slice(ENCODED_PREFIX.length));
  if (typeof parsed !== 'string') throw new Error('json: must be followed by one JSON string');
  return parsed;
}

export interface ChangedKeys {
  /** `section.key` of the settings outside `[env:…]`. */
  readonly settings: readonly string[];
  /** `scope.NAME` of the environment variables (a secret one under its scope's name too). */
  readonly variables: readonly string[];
  readonly scopes: readonly string[];
}

/** Splits a revision's changed keys (`section.key`) into settings and environment variables. */
export function splitChangedKeys(keys: readonly string[]): ChangedKeys {
  const settings: string[] = [];
  const variables = new Set<string>();
  const scopes = new Set<string>();
  for (const key of keys) {
    // Variable names hold no dot; scope names may.
    const dot = key.lastIndexOf('.');
    const env = dot > 0 ? parseEnvSection(key.slice(0, dot)) : undefined;
    if (!env) {
      settings.push(key);
      continue;
    }
    variables.add(`${env.scope}.${key.slice(dot + 1)}`);
    scopes.add(env.scope);
  }
  return { settings, variables: [...variables], scopes: [...scopes] };
}
