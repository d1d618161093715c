/**
 * The `[notify]` section of system.ini: which addresses webhooks may reach besides the public and
 * private LAN ones, how long a burst is gathered into one chat message, how long a failing
 * delivery is retried, and the per-attempt timeout. Read once at start; a bad value stops the start
 * with the section and key named.
 */
import type { IniDocument } from '../ini/document.js';
import { invalid } from '../targets/declaration-error.js';
import { parseAllowHosts, type AllowEntry } from './address-policy.js';

export interface NotifyConfig {
  /** system.ini `allow_hosts`: addresses, CIDRs or host names webhooks may reach though the default policy refuses them. */
  readonly allow: readonly AllowEntry[];
  /** Events for one chat endpoint within this window go out as one message. */
  readonly debounceMs: number;
  /** A delivery is retried this long; an endpoint failing this long is disabled. */
  readonly retryWindowMs: number;
  readonly attemptTimeoutMs: number;
  /** At most this many endpoints (each one is a cursor into the log and a queue). */
  readonly maxWebhooks: number;
}

export const NOTIFY_DEFAULTS: NotifyConfig = Object.freeze({
  allow: [],
  debounceMs: 2000,
  retryWindowMs: 72 * 3600_000,
  attemptTimeoutMs: 10_000,
  maxWebhooks: 100,
});

const KEYS = ['allow_hosts', 'debounce_ms', 'retry_hours', 'timeout_ms', 'max_webhooks'] as const;

function whole(key: string, text: string, { min, max }: { min: number; max: number }): number {
  if (!/^\d{1,9}$/.test(text)) throw invalid('notify', key, `must be a whole number from ${min} to ${max}, got "${text.slice(0, 40)}"`);
  const value = Number(text);
  if (value < min || value > max) throw invalid('notify', key, `must be from ${min} to ${max}, got ${value}`);
  return value;
}

function allowHosts(text: string): readonly AllowEntry[] {
  try {
    return parseAllowHosts(text);
  } catch (error) {
    throw invalid('notify', 'allow_hosts', error instanceof Error ? error.message.replace(/^\[notify\] allow_hosts: /, '') : String(error));
  }
}

export function notifyConfigOf(systemIni: IniDocument): NotifyConfig {
  const section = systemIni.byName.get('notify');
  if (!section) return NOTIFY_DEFAULTS;
  const v = new Map<string, string>();
  for (const entry of section.entries) {
    if (!(KEYS as readonly string[]).includes(entry.keyLower))
      throw invalid('notify', entry.key.slice(0, 64), `unknown key; expected one of ${KEYS.join(', ')}`);
    v.set(entry.keyLower, entry.value.trim());
  }
  const number = (key: (typeof KEYS)[number], bounds: { min: number; max: number }, fallback: number): number =>
    v.get(key) ? whole(key, v.get(key)!, bounds) : fallback;
  return Object.freeze({
    allow: allowHosts(v.get('allow_hosts') ?? ''),
    debounceMs: number('debounce_ms', { min: 0, max: 600_000 }, NOTIFY_DEFAULTS.debounceMs),
    retryWindowMs: number('retry_hours', { min: 1, max: 24 * 14 }, 72) * 3600_000,
    attemptTimeoutMs: number('timeout_ms', { min: 100, max: 60_000 }, NOTIFY_DEFAULTS.attemptTimeoutMs),
    maxWebhooks: number('max_webhooks', { min: 1, max: 10_000 }, NOTIFY_DEFAULTS.maxWebhooks),
  });
}
