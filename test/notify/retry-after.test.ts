/** Retry-After as the receiver may write it: delta-seconds or one of RFC 9110's three date forms. */
import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../src/notify/guarded-post.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');

describe('parseRetryAfter', () => {
  it.each([
    ['120', 120_000],
    ['0', 0],
    [' 5 ', 5000],
    ['007', 7000],
  ])('when the value is delta-seconds %j, then it is %d ms', (value, ms) => {
    expect(parseRetryAfter(value, NOW)).toBe(ms);
  });

  it('when the value is negative, then it is 0', () => {
    expect(parseRetryAfter('-30', NOW)).toBe(0);
  });

  it('when the value is an IMF-fixdate ahead, then it is the time until then', () => {
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:01:30 GMT', NOW)).toBe(90_000);
  });

  it('when the value is an obsolete RFC 850 date, then its two-digit year is read in the right century', () => {
    expect(parseRetryAfter('Sunday, 01-Mar-26 12:00:10 GMT', NOW)).toBe(10_000);
    // More than 50 years ahead would be 2094: it is 1994, long past.
    expect(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(0);
  });

  it('when the value is an asctime date, then it is read as GMT', () => {
    expect(parseRetryAfter('Sun Mar  1 12:00:02 2026', NOW)).toBe(2000);
  });

  it('when the date is past, then it is 0', () => {
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(0);
  });

  it.each([
    undefined,
    '',
    'soon',
    '1.5',
    '1e3',
    '+5',
    'Sun, 31 Feb 2026 12:00:00 GMT',
    'Sun, 01 Mar 2026 25:00:00 GMT',
    '2026-03-01T12:01:00Z',
    'Sun, 01 Foo 2026 12:00:00 GMT',
  ])('when the value is %j, then it is unreadable (undefined)', (value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });
});
