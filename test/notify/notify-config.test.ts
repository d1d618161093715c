/**
 * `[notify]` of system.ini: the defaults when it is missing or says nothing, each key's
 * bounds, and a start refused with the section, the key and the problem named.
 */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { parseIni } from '../../src/ini/document.js';
import { NOTIFY_DEFAULTS, notifyConfigOf } from '../../src/notify/notify-config.js';

const config = (body: string) => notifyConfigOf(parseIni(`[sync]\noutput_roots = /data\n\n[notify]\n${body}`));

function failure(body: string): string {
  try {
    config(body);
  } catch (error) {
    if (error instanceof AppError && error.code === 'TARGET_INVALID') return error.message;
    throw error;
  }
  throw new Error(`expected [notify] ${JSON.stringify(body)} to be refused`);
}

describe('[notify] of system.ini', () => {
  it('when there is no [notify], then the issue defaults hold: 10 s per attempt, 72 h of retries, a 2 s burst window, 100 webhooks, no extra hosts', () => {
    const defaults = notifyConfigOf(parseIni('[sync]\noutput_roots = /data\n'));
    expect(defaults).toEqual({ allow: [], debounceMs: 2000, retryWindowMs: 72 * 3600_000, attemptTimeoutMs: 10_000, maxWebhooks: 100 });
    expect(defaults).toBe(NOTIFY_DEFAULTS);
    expect(Object.isFrozen(defaults)).toBe(true);
  });

  it('when [notify] is empty or a key is empty, then that key keeps its default', () => {
    expect(config('')).toEqual(NOTIFY_DEFAULTS);
    expect(config('debounce_ms =\nretry_hours =\ntimeout_ms =\nmax_webhooks =\nallow_hosts =\n')).toEqual(NOTIFY_DEFAULTS);
  });

  it('when every key is set, then each is read (hours as milliseconds, hosts parsed), and the result is frozen', () => {
    const read = config('allow_hosts = 127.0.0.1, 10.0.0.0/8, Hooks.Example.\ndebounce_ms = 0\nretry_hours = 1\ntimeout_ms = 100\nmax_webhooks = 1\n');
    expect(read).toEqual({
      allow: [
        { kind: 'address', address: expect.anything() },
        { kind: 'cidr', cidr: expect.anything() },
        { kind: 'host', name: 'hooks.example' },
      ],
      debounceMs: 0,
      retryWindowMs: 3600_000,
      attemptTimeoutMs: 100,
      maxWebhooks: 1,
    });
    expect(Object.isFrozen(read)).toBe(true);
    // Keys are read without case, as the rest of system.ini.
    expect(config('Debounce_MS = 250\n').debounceMs).toBe(250);
  });

  it.each([
    ['debounce_ms', 0, 600_000],
    ['retry_hours', 1, 336],
    ['timeout_ms', 100, 60_000],
    ['max_webhooks', 1, 10_000],
  ])('when %s is at its bounds (%i, %i), then it is taken; one past either is refused naming both', (key, min, max) => {
    expect(() => config(`${key} = ${min}\n`)).not.toThrow();
    expect(() => config(`${key} = ${max}\n`)).not.toThrow();
    if (min > 0) expect(failure(`${key} = ${min - 1}\n`)).toBe(`system.ini [notify] ${key}: must be from ${min} to ${max}, got ${min - 1}`);
    expect(failure(`${key} = ${max + 1}\n`)).toBe(`system.ini [notify] ${key}: must be from ${min} to ${max}, got ${max + 1}`);
  });

  it.each(['10s', '-1', '1.5', '1e3', '0x10', 'ten', '1234567890'])(
    'when a number is written as %j, then it is refused as not a whole number, quoting it',
    (text) => {
      expect(failure(`timeout_ms = ${text}\n`)).toBe(`system.ini [notify] timeout_ms: must be a whole number from 100 to 60000, got "${text}"`);
    },
  );

  it('when a bad value is long, then the message quotes only its start', () => {
    const long = 'x'.repeat(500);
    expect(failure(`debounce_ms = ${long}\n`)).toBe(`system.ini [notify] debounce_ms: must be a whole number from 0 to 600000, got "${'x'.repeat(40)}"`);
  });

  it('when a key is unknown (a typo, or a key of another section), then the start is refused naming it and the keys there are', () => {
    const expected = 'unknown key; expected one of allow_hosts, debounce_ms, retry_hours, timeout_ms, max_webhooks';
    expect(failure('timeout = 5000\n')).toBe(`system.ini [notify] timeout: ${expected}`);
    expect(failure('allowed_hosts = 127.0.0.1\n')).toBe(`system.ini [notify] allowed_hosts: ${expected}`);
    // A long key is named by its start: the message stays one readable line.
    expect(failure(`${'k'.repeat(100)} = 1\n`)).toBe(`system.ini [notify] ${'k'.repeat(64)}: ${expected}`);
  });

  it('when an allow_hosts entry is not an address, a CIDR or a host name, then it is refused naming the entry once', () => {
    expect(failure('allow_hosts = 127.0.0.1, not a host\n')).toBe('system.ini [notify] allow_hosts: "not a host" is not an address, a CIDR or a host name');
    expect(failure('allow_hosts = 300.1.1.1\n')).toMatch(/^system\.ini \[notify\] allow_hosts: "300\.1\.1\.1" is not/);
  });
});
