/**
 * Property: the URL, email and IPv4 checks of field-kinds.ts give the verdict zod 4's
 * `url({ protocol: /^https?$/ })`, `email()` and `ipv4()` gave before they replaced them (so that
 * the sync worker need not load zod), for arbitrary texts built from the pieces that matter.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FIELD_KINDS } from '../../src/settings/field-kinds.js';

const RUNS = 2000;

const zodUrl = z.url({ protocol: /^https?$/ });
const zodEmail = z.email();
const zodIpv4 = z.ipv4();

const text = (pieces: readonly string[]) => fc.array(fc.constantFrom(...pieces), { maxLength: 12 }).map((parts) => parts.join(''));

const URL_PIECES = [
  'http',
  'https',
  'HTTP',
  'ftp',
  'javascript',
  ':',
  '//',
  '/',
  'example.com',
  'a',
  '[::1]',
  '127.0.0.1',
  ':8080',
  ':99999',
  '?q=1',
  '#x',
  '@',
  'user:pw',
  ' ',
  '\t',
  '\n',
  '%',
  '%zz',
  '\\',
  '..',
  '-',
  '.',
  'ä',
];
const EMAIL_PIECES = ['a', 'Z', '0', '.', '..', '_', "'", '+', '-', '@', 'example', '.com', '.c', 'b.co', ' ', 'ä', '"', '(', ')'];
const IPV4_PIECES = ['0', '1', '9', '25', '255', '256', '300', '01', '.', '..', ' ', '-1', 'a', '1.2.3.4', '::1'];

const urlVerdict = (value: string): boolean => FIELD_KINDS.http_url.check(value) === undefined;
// The stored check also refused whitespace anywhere; zod trims.
const zodUrlVerdict = (value: string): boolean => zodUrl.safeParse(value).success && !/\s/.test(value);

describe('field kinds give the verdicts zod gave', () => {
  it('http_url and each url_list item', () => {
    fc.assert(
      fc.property(text(URL_PIECES), (value) => {
        expect(urlVerdict(value), JSON.stringify(value)).toBe(zodUrlVerdict(value));
        if (value !== '' && !value.includes(',')) {
          expect(FIELD_KINDS.url_list.check(value) === undefined, JSON.stringify(value)).toBe(zodUrl.safeParse(value.trim()).success);
        }
      }),
      { numRuns: RUNS },
    );
    for (const value of [
      'https://example.com/api',
      'http://127.0.0.1:8080',
      'HTTPS://A.EXAMPLE',
      'http:example.com',
      'https:/path',
      'javascript:alert(1)',
      ' https://a.b ',
    ]) {
      expect(urlVerdict(value), value).toBe(zodUrlVerdict(value));
    }
  });

  it('email', () => {
    fc.assert(
      fc.property(text(EMAIL_PIECES), (value) => {
        expect(FIELD_KINDS.email.check(value) === undefined, JSON.stringify(value)).toBe(zodEmail.safeParse(value).success);
      }),
      { numRuns: RUNS },
    );
  });

  it('ipv4', () => {
    fc.assert(
      fc.property(text(IPV4_PIECES), (value) => {
        expect(FIELD_KINDS.ipv4.check(value) === undefined, JSON.stringify(value)).toBe(zodIpv4.safeParse(value).success);
      }),
      { numRuns: RUNS },
    );
  });
});
