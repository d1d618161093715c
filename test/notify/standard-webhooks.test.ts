import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import type { NotifyEvent } from '../../src/notify/notify-event.js';
import { generateWebhookSecret, isWebhookSecret, msgIdOf, signStandard, standardPayload } from '../../src/notify/standard-webhooks.js';

const AT_SECONDS = 1_700_000_000;
const event: NotifyEvent = {
  id: 4711,
  type: 'settings.changed',
  at: Date.UTC(2023, 10, 14, 22, 13, 20, 344),
  data: { revision: 'abcdef1234567890', actor: { type: 'api', id: 'key:ab12cd34ef56' }, source: 'api', keys: ['gitea.user_pwd', 'nginx.名前 🚀'] },
};

function sign(secrets: string[], body = standardPayload(event), timestampSeconds = AT_SECONDS) {
  return signStandard({ msgId: msgIdOf({ endpoint: 'wh_abc', event }), timestampSeconds, body, secrets });
}

/** The reference library checks the timestamp against Date.now(): the clock is set, not waited on. */
function verifyAt(nowSeconds: number, secret: string, body: string, headers: Record<string, string>): unknown {
  vi.setSystemTime(nowSeconds * 1000);
  return new Webhook(secret).verify(body, headers);
}

describe('Standard Webhooks signing', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('when a secret is generated, then it is whsec_ + base64 of 32 random bytes, fresh each time', () => {
    const secret = generateWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
    expect(generateWebhookSecret()).not.toBe(secret);
    expect(isWebhookSecret(secret)).toBe(true);
    expect(generateWebhookSecret(() => new Uint8Array(32).fill(7))).toBe(`whsec_${Buffer.alloc(32, 7).toString('base64')}`);
  });

  it('when an event is the payload, then it follows the spec shape: type, ISO timestamp of the event, data with the event id', () => {
    const body = standardPayload(event);
    expect(Object.keys(JSON.parse(body))).toEqual(['type', 'timestamp', 'data']);
    expect(JSON.parse(body)).toEqual({
      type: 'settings.changed',
      timestamp: '2023-11-14T22:13:20.344Z',
      data: { ...event.data, eventId: 4711 },
    });
    expect(msgIdOf({ endpoint: 'wh_Ab-9_x', event })).toBe('evt_Ab-9_x_4711');
  });

  it('when signed with one secret, then the reference library verifies it and the headers are the spec headers', () => {
    const secret = generateWebhookSecret();
    const body = standardPayload(event);
    const headers = sign([secret]);
    expect(headers).toEqual({
      'webhook-id': 'evt_abc_4711',
      'webhook-timestamp': String(AT_SECONDS),
      'webhook-signature': expect.stringMatching(/^v1,[A-Za-z0-9+/]{43}=$/),
      'content-type': 'application/json',
    });
    expect(verifyAt(AT_SECONDS + 10, secret, body, { ...headers })).toEqual(JSON.parse(body));
  });

  it('when two secrets sign during a rotation, then either secret verifies alone and a third does not', () => {
    const current = generateWebhookSecret();
    const previous = generateWebhookSecret();
    const body = standardPayload(event);
    const headers = sign([current, previous]);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(verifyAt(AT_SECONDS, current, body, { ...headers })).toEqual(JSON.parse(body));
    expect(verifyAt(AT_SECONDS, previous, body, { ...headers })).toEqual(JSON.parse(body));
    expect(() => verifyAt(AT_SECONDS, generateWebhookSecret(), body, { ...headers })).toThrow(WebhookVerificationError);
  });

  it('when the body is changed by one byte, then verification fails', () => {
    const secret = generateWebhookSecret();
    const body = standardPayload(event);
    const headers = sign([secret]);
    const tampered = body.replace('user_pwd', 'user_pwe');
    expect(() => verifyAt(AT_SECONDS, secret, tampered, { ...headers })).toThrow('No matching signature found');
    // Re-serialised JSON (spaces) is a different body too: the bytes sent must be the bytes signed.
    expect(() => verifyAt(AT_SECONDS, secret, JSON.stringify(JSON.parse(body), null, 1), { ...headers })).toThrow(WebhookVerificationError);
  });

  it('when the attempt timestamp is outside the five-minute tolerance, then verification fails both ways', () => {
    const secret = generateWebhookSecret();
    const body = standardPayload(event);
    const headers = sign([secret]);
    expect(() => verifyAt(AT_SECONDS + 301, secret, body, { ...headers })).toThrow('Message timestamp too old');
    expect(() => verifyAt(AT_SECONDS - 301, secret, body, { ...headers })).toThrow('Message timestamp too new');
    expect(verifyAt(AT_SECONDS + 299, secret, body, { ...headers })).toEqual(JSON.parse(body));
  });

  it('when the signed id or timestamp is swapped for another attempt, then verification fails', () => {
    const secret = generateWebhookSecret();
    const body = standardPayload(event);
    const headers = sign([secret]);
    expect(() => verifyAt(AT_SECONDS, secret, body, { ...headers, 'webhook-id': 'evt_4712' })).toThrow(WebhookVerificationError);
    expect(() => verifyAt(AT_SECONDS, secret, body, { ...headers, 'webhook-timestamp': String(AT_SECONDS + 1) })).toThrow(WebhookVerificationError);
  });

  it('when the input is unsafe to sign, then it is refused with INTERNAL_ERROR and the secret is never in the error', () => {
    const secret = generateWebhookSecret();
    const attempt = (input: Partial<Parameters<typeof signStandard>[0]>) => () =>
      signStandard({ msgId: 'evt_1', timestampSeconds: AT_SECONDS, body: '{}', secrets: [secret], ...input });
    expect(attempt({ msgId: 'evt.1' })).toThrow(AppError);
    expect(attempt({ msgId: '' })).toThrow(AppError);
    expect(attempt({ timestampSeconds: 1.5 })).toThrow(AppError);
    expect(attempt({ secrets: [] })).toThrow(AppError);
    const short = `whsec_${Buffer.alloc(16, 1).toString('base64')}`;
    for (const bad of ['not-a-secret', 'whsec_***', short, secret.slice(6)]) {
      const error = (() => {
        try {
          attempt({ secrets: [secret, bad] })();
        } catch (caught) {
          return caught as AppError;
        }
        return undefined;
      })();
      expect(error?.code).toBe('INTERNAL_ERROR');
      expect(error?.details).toContain('#2');
      expect(JSON.stringify({ message: error?.message, details: error?.details })).not.toContain(bad);
      expect(isWebhookSecret(bad)).toBe(false);
    }
  });
});
