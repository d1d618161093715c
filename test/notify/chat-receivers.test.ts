import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_ADAPTERS, CHAT_KINDS, type ChatKind, type DeliveryAnswer } from '../../src/notify/chat-formats.js';
import { signDingtalkUrl } from '../../src/notify/dingtalk.js';
import { signFeishuBody } from '../../src/notify/feishu.js';
import type { NotifyEvent } from '../../src/notify/notify-event.js';
import { type ChatReceiver, startChatReceiver } from '../support/chat-receivers.js';
import { expandingBurst, HOSTILE_FRAGMENTS, sampleEvents, worstCaseBurst } from './event-fixtures.js';

const receivers = new Map<ChatKind, ChatReceiver>();

beforeAll(async () => {
  for (const kind of CHAT_KINDS) receivers.set(kind, await startChatReceiver(kind));
});

afterAll(async () => {
  await Promise.all([...receivers.values()].map((receiver) => receiver.close()));
});

function receiver(kind: ChatKind): ChatReceiver {
  const found = receivers.get(kind);
  if (found === undefined) throw new Error(`no ${kind} receiver`);
  return found;
}

/** POST as the sender will, and read the answer the way the judge gets it (first 4 KB, Retry-After in ms). */
async function post(url: string, body: string, contentType: string): Promise<DeliveryAnswer> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body, redirect: 'manual' });
  const text = (await response.text()).slice(0, 4096);
  const retryAfter = Number(response.headers.get('retry-after'));
  return { status: response.status, body: text, ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}) };
}

async function deliver(kind: ChatKind, events: readonly NotifyEvent[], instance?: string): Promise<DeliveryAnswer> {
  const adapter = CHAT_ADAPTERS[kind];
  return post(receiver(kind).url, adapter.format(events, instance === undefined ? undefined : { instance }), adapter.contentType);
}

/** A body one step over the service's limit, in the service's own format. */
const OVER_LIMIT: Readonly<Record<ChatKind, () => string>> = {
  slack: () => JSON.stringify({ text: 'x', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'x'.repeat(3001) } }] }),
  discord: () => JSON.stringify({ content: 'x'.repeat(2001), allowed_mentions: { parse: [] } }),
  // 1366 three-byte characters: 4098 bytes, though only 1366 characters.
  wecom: () => JSON.stringify({ msgtype: 'markdown', markdown: { content: '名'.repeat(1366) } }),
  dingtalk: () => JSON.stringify({ msgtype: 'markdown', markdown: { title: 'confhub', text: 'x'.repeat(5001) } }),
  feishu: () => JSON.stringify({ msg_type: 'text', content: { text: '名'.repeat(6700) } }),
};

describe('chat receivers take what the formatters send', () => {
  for (const kind of CHAT_KINDS) {
    it(`${kind}: when every event type is posted alone and as a burst, then the receiver accepts and the judge says delivered`, async () => {
      const events = sampleEvents();
      for (const batch of [...events.map((event) => [event]), events]) {
        const answer = await deliver(kind, batch, 'prod-1');
        expect(answer.status, `${kind} ${batch[0]?.type}`).toBeLessThan(300);
        expect(CHAT_ADAPTERS[kind].judge(answer), `${kind} ${answer.body}`).toEqual({ ok: true });
      }
      const last = receiver(kind).requests.at(-1);
      expect(last?.headers['content-type']).toBe(CHAT_ADAPTERS[kind].contentType);
      expect(last?.refused).toBeUndefined();
    });

    it(`${kind}: when the worst-case burst is posted (200 events, 500 long unicode keys each, hostile instance name), then it is accepted`, async () => {
      const answer = await deliver(kind, worstCaseBurst(), HOSTILE_FRAGMENTS.join(''));
      expect(receiver(kind).requests.at(-1)?.refused, kind).toBeUndefined();
      expect(CHAT_ADAPTERS[kind].judge(answer), kind).toEqual({ ok: true });
    });

    it(`${kind}: when every name is made of the characters that grow most when escaped, then one event alone, a few and a burst of 200 are accepted`, async () => {
      const burst = expandingBurst(200);
      for (const events of [...burst.slice(0, 4).map((event) => [event]), burst.slice(0, 3), burst]) {
        const answer = await deliver(kind, events, expandingBurst(1)[0]!.type);
        expect(receiver(kind).requests.at(-1)?.refused, `${kind} ${events.length}`).toBeUndefined();
        expect(CHAT_ADAPTERS[kind].judge(answer), kind).toEqual({ ok: true });
      }
    });

    it(`${kind}: when a body one step over the limit is posted, then the receiver refuses it as the service does and the judge does not retry`, async () => {
      const answer = await post(receiver(kind).url, OVER_LIMIT[kind](), CHAT_ADAPTERS[kind].contentType);
      expect(receiver(kind).requests.at(-1)?.refused, kind).toBeDefined();
      const verdict = CHAT_ADAPTERS[kind].judge(answer);
      expect(verdict, kind).toMatchObject({ ok: false, retry: false });
    });
  }
});

describe('chat receivers answer errors on demand', () => {
  const cases: readonly { kind: ChatKind; answer: { status: number; body: string; headers?: Record<string, string> }; expected: object }[] = [
    { kind: 'slack', answer: { status: 429, body: '', headers: { 'retry-after': '7' } }, expected: { ok: false, retry: true, retryAfterMs: 7000 } },
    { kind: 'slack', answer: { status: 404, body: 'no_service' }, expected: { ok: false, retry: false, disable: true } },
    {
      kind: 'discord',
      answer: { status: 429, body: JSON.stringify({ retry_after: 1.5, global: false }) },
      expected: { ok: false, retry: true, retryAfterMs: 1500 },
    },
    { kind: 'discord', answer: { status: 404, body: JSON.stringify({ message: 'Unknown Webhook', code: 10015 }) }, expected: { ok: false, disable: true } },
    { kind: 'wecom', answer: { status: 200, body: JSON.stringify({ errcode: 45009, errmsg: 'api freq out of limit' }) }, expected: { ok: false, retry: true } },
    { kind: 'dingtalk', answer: { status: 200, body: JSON.stringify({ errcode: 130101, errmsg: 'send too fast' }) }, expected: { ok: false, retry: true } },
    { kind: 'feishu', answer: { status: 200, body: JSON.stringify({ code: 11232, msg: 'frequency limited' }) }, expected: { ok: false, retry: true } },
    { kind: 'feishu', answer: { status: 302, body: '', headers: { location: 'https://example.invalid/' } }, expected: { ok: false, retry: true } },
  ];

  for (const { kind, answer, expected } of cases) {
    it(`${kind}: when told to answer ${answer.status} ${answer.body.slice(0, 30)} twice, then two posts get it, are recorded, and the third is accepted`, async () => {
      const target = receiver(kind);
      const before = target.requests.length;
      target.failNext(2, answer);
      const events = sampleEvents().slice(0, 3);
      for (let attempt = 0; attempt < 2; attempt += 1) expect(CHAT_ADAPTERS[kind].judge(await deliver(kind, events))).toMatchObject(expected);
      expect(CHAT_ADAPTERS[kind].judge(await deliver(kind, events))).toEqual({ ok: true });
      expect(target.requests.length - before).toBe(3);
      expect(target.requests.at(-1)?.body).toBe(CHAT_ADAPTERS[kind].format(events));
    });
  }
});

describe('keyword and signature security settings', () => {
  it('dingtalk: when the robot only takes messages with the keyword "confhub", then every formatted message passes and others are refused', async () => {
    const guarded = await startChatReceiver('dingtalk', { keyword: 'confhub' });
    try {
      for (const event of sampleEvents()) {
        const answer = await post(guarded.url, CHAT_ADAPTERS.dingtalk.format([event]), CHAT_ADAPTERS.dingtalk.contentType);
        expect(CHAT_ADAPTERS.dingtalk.judge(answer)).toEqual({ ok: true });
      }
      const other = JSON.stringify({ msgtype: 'markdown', markdown: { title: 'alert', text: 'something happened' } });
      expect(CHAT_ADAPTERS.dingtalk.judge(await post(guarded.url, other, 'application/json'))).toMatchObject({
        ok: false,
        retry: false,
        reason: expect.stringContaining('310000'),
      });
    } finally {
      await guarded.close();
    }
  });

  it('dingtalk: when a URL is signed, then timestamp and sign are added as documented and the access token stays', () => {
    const secret = 'SECexample0123456789';
    const signed = new URL(signDingtalkUrl('https://oapi.dingtalk.com/robot/send?access_token=abc', { secret, timestampMs: 1_700_000_000_123 }));
    expect(signed.searchParams.get('access_token')).toBe('abc');
    expect(signed.searchParams.get('timestamp')).toBe('1700000000123');
    // HmacSHA256 keyed with the secret over "timestamp\nsecret", base64.
    const expected = createHmac('sha256', secret).update(`1700000000123\n${secret}`).digest('base64');
    expect(signed.searchParams.get('sign')).toBe(expected);
    expect(signed.search).not.toContain('+');
  });

  it('feishu: when a body is signed, then timestamp and sign are added as documented and the message is unchanged', () => {
    const body = CHAT_ADAPTERS.feishu.format(sampleEvents().slice(0, 1));
    const signed = JSON.parse(signFeishuBody(body, { secret: 'demo-secret', timestampSeconds: 1_700_000_000 })) as Record<string, unknown>;
    // HmacSHA256 keyed with "timestamp\nsecret" over an empty message, base64.
    const expected = createHmac('sha256', '1700000000\ndemo-secret').update('').digest('base64');
    expect(signed).toEqual({ timestamp: '1700000000', sign: expected, ...JSON.parse(body) });
  });
});
