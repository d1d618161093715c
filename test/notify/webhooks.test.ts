/**
 * Webhooks end to end: a whole confhub (API, worker, event log, outbox) delivering to real HTTP
 * receivers on loopback (allowed in the test's system.ini), with the outbox on a manual clock so
 * retries, Retry-After and the retry window are driven, not waited for.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { Webhook as Verifier } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { HostLookup } from '../../src/notify/guarded-post.js';
import { startConfhub, eventually, type Confhub } from '../support/confhub.js';
import { createManualClock, type ManualClock } from '../support/manual-clock.js';
import { startChatReceiver, type ChatReceiver } from '../support/chat-receivers.js';

interface Received {
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

type Answer = { status: number; body?: string; headers?: Record<string, string> } | 'drop';

interface Receiver {
  readonly url: string;
  readonly received: Received[];
  /** Answers for the next requests, in order; then 200. */
  readonly answers: Answer[];
  close(): Promise<void>;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startReceiver(port = 0): Promise<Receiver> {
  const received: Received[] = [];
  const answers: Answer[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const answer = answers.shift() ?? { status: 200, body: 'ok' };
      if (answer === 'drop') {
        req.socket.destroy();
        return;
      }
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const receiver: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    answers,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  cleanups.push(() => receiver.close());
  return receiver;
}

const SYSTEM_INI = `[sync]
docker_socket = /nonexistent/docker.sock
supervisor_url = http://127.0.0.1:1/RPC2

[notify]
allow_hosts = 127.0.0.1
debounce_ms = 500
`;

interface Started {
  ch: Confhub;
  clock: ManualClock;
  json<T = Record<string, unknown>>(path: string, init?: RequestInit): Promise<{ status: number; body: T }>;
}

async function start(options: { lookup?: HostLookup } = {}): Promise<Started> {
  const clock = createManualClock({ startAt: Date.now() });
  const ch = await startConfhub({ systemIni: SYSTEM_INI, notify: { clock, ...(options.lookup ? { lookup: options.lookup } : {}) } });
  cleanups.push(() => ch.close());
  return {
    ch,
    clock,
    async json<T>(path: string, init: RequestInit = {}) {
      const res = await ch.api(path, init);
      return { status: res.status, body: (await res.json()) as T };
    },
  };
}

interface WebhookAnswer {
  id: string;
  secret: string;
  url: string;
  active: boolean;
  disabledReason: string | null;
}

interface DeliveryAnswer {
  id: number;
  attemptCount: number;
  lastError: string | null;
  messageId: string;
  state: string;
  attempts: {
    result: string;
    responseStatus: number | null;
    responseBody: string | null;
    error: string | null;
    durationMs: number;
    nextAttemptAt: string | null;
  }[];
  events: { id: number; type: string }[];
}

async function createWebhook(s: Started, body: Record<string, unknown>): Promise<WebhookAnswer> {
  const created = await s.json<WebhookAnswer>('/api/v1/webhooks', { method: 'POST', body: JSON.stringify(body) });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body;
}

async function deliveries(s: Started, id: string): Promise<DeliveryAnswer[]> {
  return (await s.json<{ deliveries: DeliveryAnswer[] }>(`/api/v1/webhooks/${id}/deliveries`)).body.deliveries;
}

const put = (s: Started, section: string, values: Record<string, string>) =>
  s.ch.api(`/api/v1/settings/${section}`, { method: 'PUT', body: JSON.stringify(values) }).then((res) => expect(res.status).toBe(200));

/** Moves the outbox's clock past its next timer and lets the attempt that sets off land. */
async function advance(s: Started, ms: number): Promise<void> {
  await s.clock.advance(ms);
}

describe('webhooks', () => {
  it('when an endpoint is made and a setting changes, then a Standard Webhooks message arrives that the standardwebhooks library verifies, naming keys, never values; the secret is shown once and sealed at rest', async () => {
    const s = await start();
    const receiver = await startReceiver();
    const webhook = await createWebhook(s, {
      url: `${receiver.url}?token=url-credential-123`,
      events: ['settings.changed', 'env.changed'],
      description: 'ops',
    });
    expect(webhook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(webhook.url).toBe(`${new URL(receiver.url).origin}/…`);
    const got = await s.json<WebhookAnswer>(`/api/v1/webhooks/${webhook.id}`);
    expect(JSON.stringify(got.body)).not.toContain(webhook.secret.slice(6));
    expect(JSON.stringify(got.body)).not.toContain('url-credential-123');

    const password = 'Wz8#long-enough-passphrase-91';
    await put(s, 'gitea', { user_pwd: password, user_name: 'erin' });
    await eventually('the message arrived', () => receiver.received.length === 1);
    const [message] = receiver.received;
    const verified = new Verifier(webhook.secret).verify(message!.body, {
      'webhook-id': String(message!.headers['webhook-id']),
      'webhook-timestamp': String(message!.headers['webhook-timestamp']),
      'webhook-signature': String(message!.headers['webhook-signature']),
    }) as { type: string; data: { keys: string[]; eventId: number } };
    expect(verified).toMatchObject({ type: 'settings.changed', data: { keys: ['gitea.user_pwd', 'gitea.user_name'] } });
    expect(message!.headers['webhook-id']).toBe(`evt_${webhook.id.slice(3)}_${verified.data.eventId}`);
    expect(message!.body).not.toContain(password);
    expect(message!.body).not.toContain('erin');
    // A secret variable: its name goes out, never its value.
    const token = 'env-secret-value-5150';
    expect((await s.ch.api('/api/v1/env/global', { method: 'PATCH', body: JSON.stringify({ API_TOKEN: token }) })).status).toBe(200);
    await eventually('the env message arrived', () => receiver.received.length === 2);
    expect(JSON.parse(receiver.received[1]!.body)).toMatchObject({ type: 'env.changed', data: { variables: ['global.API_TOKEN'] } });
    expect(receiver.received[1]!.body).not.toContain(token);
    // A tampered body does not verify.
    expect(() =>
      new Verifier(webhook.secret).verify(message!.body.replace('user_pwd', 'user_pwe'), {
        'webhook-id': String(message!.headers['webhook-id']),
        'webhook-timestamp': String(message!.headers['webhook-timestamp']),
        'webhook-signature': String(message!.headers['webhook-signature']),
      }),
    ).toThrow();

    // Sealed at rest: neither the URL's credential nor the secret is in the database file.
    const db = new Database(s.ch.config.databasePath, { readonly: true });
    try {
      const dump = JSON.stringify(db.prepare('SELECT * FROM webhooks').all());
      expect(dump).not.toContain('url-credential-123');
      expect(dump).not.toContain(webhook.secret.slice(6));
      expect(dump).toContain('enc:v1:');
    } finally {
      db.close();
    }
  }, 30_000);

  it('when the receiver fails (500, then a dropped connection), then the same message is retried with backoff until it is delivered, and the delivery log shows each attempt', async () => {
    const s = await start();
    const receiver = await startReceiver();
    receiver.answers.push({ status: 500, body: 'try later' }, 'drop');
    const webhook = await createWebhook(s, { url: receiver.url, events: ['settings.changed'] });
    await put(s, 'gitea', { user_name: 'frank' });
    await eventually('the first attempt failed', async () => (await deliveries(s, webhook.id))[0]?.attempts.length === 1);
    let [delivery] = await deliveries(s, webhook.id);
    expect(delivery).toMatchObject({ state: 'pending', attempts: [{ result: 'failed', responseStatus: 500, responseBody: 'try later' }] });
    const retryAt = Date.parse(delivery!.attempts[0]!.nextAttemptAt!);
    // Backoff: nothing before the next attempt's time.
    await advance(s, retryAt - s.clock.now() - 1);
    expect(receiver.received).toHaveLength(1);
    await advance(s, 1);
    await eventually('the second attempt failed', async () => (await deliveries(s, webhook.id))[0]?.attempts.length === 2);
    [delivery] = await deliveries(s, webhook.id);
    expect(delivery!.attempts[0]).toMatchObject({ result: 'failed', responseStatus: null, error: expect.stringMatching(/^reset/) });
    await advance(s, Date.parse(delivery!.attempts[0]!.nextAttemptAt!) - s.clock.now());
    await eventually('delivered', async () => (await deliveries(s, webhook.id))[0]?.state === 'delivered');
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(receiver.received).toHaveLength(3);
    const metrics = await (await fetch(`${s.ch.url}/metrics`)).text();
    expect(metrics).toMatch(/confhub_webhook_deliveries_total\{kind="standard",result="retried"\} 2/);
    expect(metrics).toMatch(/confhub_webhook_deliveries_total\{kind="standard",result="delivered"\} 1/);
    expect(metrics).toMatch(/confhub_webhook_queue_depth 0/);
  }, 30_000);

  it('when the receiver answers 429 with Retry-After, then the next attempt waits that long; 410 disables the endpoint and webhook.disabled reaches the others', async () => {
    const s = await start();
    const gone = await startReceiver();
    const watcher = await startReceiver();
    gone.answers.push({ status: 429, headers: { 'retry-after': '120' } }, { status: 410, body: 'gone' });
    const webhook = await createWebhook(s, { url: gone.url, events: ['settings.changed'] });
    const other = await createWebhook(s, { url: watcher.url, events: ['webhook.disabled'] });
    await put(s, 'gitea', { user_name: 'gina' });
    await eventually('the 429 came', async () => (await deliveries(s, webhook.id))[0]?.attempts.length === 1);
    await advance(s, 119_000);
    expect(gone.received).toHaveLength(1);
    await advance(s, 1000);
    await eventually('the webhook is disabled', async () => (await s.json<WebhookAnswer>(`/api/v1/webhooks/${webhook.id}`)).body.active === false);
    expect((await s.json<WebhookAnswer>(`/api/v1/webhooks/${webhook.id}`)).body.disabledReason).toMatch(/410/);
    await eventually('the other endpoint heard of it', () => watcher.received.length === 1);
    expect(JSON.parse(watcher.received[0]!.body)).toMatchObject({
      type: 'webhook.disabled',
      data: { webhook: webhook.id, url: `${new URL(gone.url).origin}/…` },
    });
    expect((await deliveries(s, other.id))[0]).toMatchObject({ state: 'delivered' });
    // Off: a later change is not sent to it.
    await put(s, 'gitea', { user_name: 'hank' });
    await advance(s, 10 * 60_000);
    expect(gone.received).toHaveLength(2);
  }, 30_000);

  it('when an endpoint keeps failing for the whole retry window, then it is disabled with the reason, its undelivered messages fail and webhook.disabled reaches the others', async () => {
    const s = await start();
    const receiver = await startReceiver();
    const watcher = await startReceiver();
    for (let i = 0; i < 200; i++) receiver.answers.push({ status: 503 });
    const webhook = await createWebhook(s, { url: receiver.url, events: ['settings.changed'] });
    await createWebhook(s, { url: watcher.url, events: ['webhook.disabled'] });
    await put(s, 'gitea', { user_name: 'ivy' });
    // From one attempt to the next, by the time each failure set; the window is 72 h.
    for (let attempt = 1; attempt < 60; attempt++) {
      await eventually(`attempt ${attempt} was made`, () => receiver.received.length >= attempt);
      await eventually(`attempt ${attempt} is recorded`, async () => (await deliveries(s, webhook.id))[0]?.attemptCount === attempt);
      const now = (await s.json<WebhookAnswer & { nextAttemptAt: string | null }>(`/api/v1/webhooks/${webhook.id}`)).body;
      if (!now.active) break;
      await advance(s, Date.parse(now.nextAttemptAt!) - s.clock.now());
    }
    const after = (await s.json<WebhookAnswer>(`/api/v1/webhooks/${webhook.id}`)).body;
    expect(after).toMatchObject({ active: false, disabledReason: expect.stringMatching(/^failing for 72 h since .*; last error: .*503/) });
    expect((await deliveries(s, webhook.id))[0]).toMatchObject({ state: 'failed' });
    await eventually('the other endpoint heard of it', () => watcher.received.length === 1);
    expect(JSON.parse(watcher.received[0]!.body)).toMatchObject({
      type: 'webhook.disabled',
      data: { webhook: webhook.id, url: `${new URL(receiver.url).origin}/…`, reason: after.disabledReason },
    });
    // Exponential: about twenty attempts over three days, not one per minute.
    expect(receiver.received.length).toBeGreaterThan(10);
    expect(receiver.received.length).toBeLessThan(40);
    // Turned on again, it follows from the newest event.
    expect((await s.json(`/api/v1/webhooks/${webhook.id}`, { method: 'PATCH', body: JSON.stringify({ active: true }) })).body).toMatchObject({
      active: true,
      disabledReason: null,
    });
  }, 120_000);

  it('when a delivery is redelivered, then the same message (same webhook-id) arrives again; a pending one or an unknown one is refused', async () => {
    const s = await start();
    const receiver = await startReceiver();
    const webhook = await createWebhook(s, { url: receiver.url, events: ['settings.changed'] });
    await put(s, 'gitea', { user_name: 'jack' });
    await eventually('delivered', async () => (await deliveries(s, webhook.id))[0]?.state === 'delivered');
    const [delivery] = await deliveries(s, webhook.id);
    const again = await s.json<DeliveryAnswer>(`/api/v1/webhooks/${webhook.id}/deliveries/${delivery!.id}/redeliver`, { method: 'POST' });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ messageId: delivery!.messageId, state: 'pending' });
    await eventually('redelivered', () => receiver.received.length === 2);
    expect(receiver.received[1]!.headers['webhook-id']).toBe(receiver.received[0]!.headers['webhook-id']);
    expect(receiver.received[1]!.body).toBe(receiver.received[0]!.body);
    const unknown = await s.json(`/api/v1/webhooks/${webhook.id}/deliveries/99999/redeliver`, { method: 'POST' });
    expect(unknown).toMatchObject({ status: 404, body: { code: 'DELIVERY_NOT_FOUND' } });
    receiver.answers.push({ status: 500 });
    await put(s, 'gitea', { user_name: 'kim' });
    await eventually('failed once', async () => (await deliveries(s, webhook.id))[0]?.attempts.length === 1);
    const pending = (await deliveries(s, webhook.id))[0]!;
    expect((await s.json(`/api/v1/webhooks/${webhook.id}/deliveries/${pending.id}/redeliver`, { method: 'POST' })).body).toMatchObject({
      code: 'DELIVERY_IN_PROGRESS',
    });
  }, 30_000);

  it('when a host name resolves to a blocked address at delivery time, then the attempt is refused before connecting, not retried, with the reason', async () => {
    const receiver = await startReceiver();
    const port = new URL(receiver.url).port;
    let answer = '127.0.0.1';
    const s = await start({ lookup: async () => [{ address: answer, family: 4 }] });
    const webhook = await createWebhook(s, { url: `http://hooks.example.test:${port}/hook`, events: ['settings.changed'] });
    await put(s, 'gitea', { user_name: 'lena' });
    await eventually('delivered through the allowed address', () => receiver.received.length === 1);
    answer = '169.254.169.254';
    await put(s, 'gitea', { user_name: 'mia' });
    await eventually('the second one is blocked', async () => (await deliveries(s, webhook.id))[0]?.state === 'failed');
    const [blocked] = await deliveries(s, webhook.id);
    expect(blocked!.attempts).toEqual([expect.objectContaining({ result: 'blocked', error: expect.stringMatching(/169\.254\.169\.254.*metadata/) })]);
    await advance(s, 3600_000);
    expect(receiver.received).toHaveLength(1);
    expect((await s.json<WebhookAnswer>(`/api/v1/webhooks/${webhook.id}`)).body.active).toBe(true);
  }, 30_000);

  it('when events come in a burst, then a chat endpoint gets one message for the burst within its limits, and a test message is sent at once', async () => {
    const s = await start();
    const slack = await startChatReceiver('slack');
    cleanups.push(() => slack.close());
    const webhook = await createWebhook(s, { url: slack.url, kind: 'slack', events: ['settings.changed'] });
    expect(webhook.url).toBe(`${new URL(slack.url).origin}/…`);
    for (const name of ['nia', 'otto', 'pam']) await put(s, 'gitea', { user_name: name });
    await s.clock.settle();
    expect(slack.requests).toHaveLength(0);
    await advance(s, 500);
    await eventually('one message for the burst', () => slack.requests.length === 1);
    await advance(s, 5000);
    expect(slack.requests).toHaveLength(1);
    expect(slack.requests[0]!.refused).toBeUndefined();
    expect((await deliveries(s, webhook.id))[0]).toMatchObject({
      state: 'delivered',
      events: [{ type: 'settings.changed' }, { type: 'settings.changed' }, { type: 'settings.changed' }],
    });
    const test = await s.json<DeliveryAnswer>(`/api/v1/webhooks/${webhook.id}/test`, { method: 'POST' });
    expect(test).toMatchObject({ status: 200, body: { state: 'delivered', events: [{ type: 'webhook.test' }] } });
  }, 30_000);

  it('when the secret is rotated, then both the new and the replaced secret sign for a day, and the answer shows the new one once', async () => {
    const s = await start();
    const receiver = await startReceiver();
    const webhook = await createWebhook(s, { url: receiver.url, events: ['*'] });
    const rotated = await s.json<{ secret: string; previousSecretValidUntil: string }>(`/api/v1/webhooks/${webhook.id}/rotate-secret`, { method: 'POST' });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(webhook.secret);
    expect(JSON.stringify((await s.json(`/api/v1/webhooks/${webhook.id}`)).body)).not.toContain(rotated.body.secret.slice(6));
    await s.json(`/api/v1/webhooks/${webhook.id}/test`, { method: 'POST' });
    const [message] = receiver.received;
    const headers = {
      'webhook-id': String(message!.headers['webhook-id']),
      'webhook-timestamp': String(message!.headers['webhook-timestamp']),
      'webhook-signature': String(message!.headers['webhook-signature']),
    };
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    for (const secret of [webhook.secret, rotated.body.secret]) expect(() => new Verifier(secret).verify(message!.body, headers)).not.toThrow();
    await advance(s, 24 * 3600_000 + 1);
    await s.json(`/api/v1/webhooks/${webhook.id}/test`, { method: 'POST' });
    expect(String(receiver.received[1]!.headers['webhook-signature']).split(' ')).toHaveLength(1);
  }, 30_000);

  it('when a DingTalk or a Feishu robot checks signatures, then every attempt carries a fresh signature made with its secret, which is never answered', async () => {
    const s = await start();
    const dingtalk = await startChatReceiver('dingtalk');
    const feishu = await startChatReceiver('feishu');
    cleanups.push(
      () => dingtalk.close(),
      () => feishu.close(),
    );
    const secret = 'SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd';
    const ding = await createWebhook(s, { url: `${dingtalk.url}?access_token=tok-1`, kind: 'dingtalk', secret });
    const fei = await createWebhook(s, { url: feishu.url, kind: 'feishu', secret: 'feishu-secret-1' });
    expect(ding).not.toHaveProperty('secret');
    expect(fei).not.toHaveProperty('secret');
    for (const id of [ding.id, fei.id]) await s.json(`/api/v1/webhooks/${id}/test`, { method: 'POST' });
    const query = new URL(dingtalk.requests[0]!.url, 'http://x').searchParams;
    expect(query.get('access_token')).toBe('tok-1');
    const timestamp = query.get('timestamp')!;
    // Signed at the attempt, on the outbox clock (which this test holds still).
    expect(Number(timestamp)).toBe(s.clock.now());
    expect(query.get('sign')).toBe(createHmac('sha256', secret).update(`${timestamp}\n${secret}`).digest('base64'));
    const body = JSON.parse(feishu.requests[0]!.body) as { timestamp: string; sign: string; msg_type: string };
    expect(body).toMatchObject({ msg_type: 'text', timestamp: expect.stringMatching(/^\d+$/) });
    expect(body.sign).toBe(createHmac('sha256', `${body.timestamp}\nfeishu-secret-1`).update('').digest('base64'));
    expect(JSON.stringify((await s.json(`/api/v1/webhooks/${ding.id}`)).body)).not.toContain('SEC0123');
    // A Slack endpoint has no secret; a kind is not changed in place; a robot's rotation needs the new secret.
    const slack = await s.json<{ details: string }>('/api/v1/webhooks', {
      method: 'POST',
      body: JSON.stringify({ url: 'https://hooks.example.com/x', kind: 'slack', secret: 'whatever-1' }),
    });
    expect(slack).toMatchObject({ status: 400, body: { details: expect.stringMatching(/secret: slack endpoints have no signing secret/) } });
    expect(
      (await s.json<{ details: string }>(`/api/v1/webhooks/${ding.id}`, { method: 'PATCH', body: JSON.stringify({ kind: 'feishu' }) })).body.details,
    ).toMatch(/kind: cannot change from dingtalk/);
    expect((await s.json<{ details: string }>(`/api/v1/webhooks/${ding.id}/rotate-secret`, { method: 'POST' })).body.details).toMatch(/secret: is required/);
    const rotated = await s.json(`/api/v1/webhooks/${ding.id}/rotate-secret`, { method: 'POST', body: JSON.stringify({ secret: `${secret}x` }) });
    expect(rotated).toMatchObject({ status: 200, body: { previousSecretValidUntil: null } });
    expect(rotated.body).not.toHaveProperty('secret');
  }, 30_000);

  it('when endpoints are bad, then each problem is named and nothing is stored', async () => {
    const s = await start();
    const bad: [Record<string, unknown>, RegExp][] = [
      [{}, /url: is required/],
      [{ url: 'ftp://example.com/x' }, /url: .*http/],
      [{ url: 'http://169.254.169.254/latest' }, /url: .*metadata/],
      [{ url: 'http://[::1]:9/x' }, /url: .*loopback/],
      [{ url: 'https://example.com/x', kind: 'teams' }, /kind: must be one of/],
      [{ url: 'https://example.com/x', events: ['settings.changd'] }, /events: unknown event type "settings.changd"/],
      [{ url: 'https://example.com/x', events: [] }, /events: must be a non-empty list/],
      [{ url: 'https://example.com/x', secret: 'whsec_short' }, /secret: must be whsec_/],
      [{ url: 'https://example.com/x', active: 'yes' }, /active: must be true or false/],
      [{ url: 'https://example.com/x', color: 'red' }, /color: unknown field/],
    ];
    for (const [body, details] of bad) {
      const answer = await s.json<{ code: string; details: string }>('/api/v1/webhooks', { method: 'POST', body: JSON.stringify(body) });
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.details).toMatch(details);
    }
    expect((await s.json('/api/v1/webhooks', { method: 'POST', body: '[1]' })).status).toBe(400);
    expect((await s.json<{ webhooks: unknown[] }>('/api/v1/webhooks')).body.webhooks).toEqual([]);
    expect((await s.json('/api/v1/webhooks/wh_nope')).body).toMatchObject({ code: 'WEBHOOK_NOT_FOUND' });
    expect((await s.json('/api/v1/webhooks/wh_nope', { method: 'DELETE' })).status).toBe(404);
  }, 30_000);

  it('when a receiver answers 503 with Retry-After: 0, then the backoff still holds; Retry-After longer than the backoff is honoured', async () => {
    const s = await start();
    const receiver = await startReceiver();
    receiver.answers.push({ status: 503, headers: { 'retry-after': '0' } });
    const webhook = await createWebhook(s, { url: receiver.url, events: ['settings.changed'] });
    await put(s, 'gitea', { user_name: 'rae' });
    await eventually('the 503 came', async () => (await deliveries(s, webhook.id))[0]?.attempts.length === 1);
    const [attempt] = (await deliveries(s, webhook.id))[0]!.attempts;
    expect(Date.parse(attempt!.nextAttemptAt!) - s.clock.now()).toBeGreaterThanOrEqual(2500);
    await s.clock.settle();
    expect(receiver.received).toHaveLength(1);
  }, 30_000);

  it('when a webhook is turned off with messages waiting, then they fail at once and nothing counts as undelivered; on again, it follows from the newest event', async () => {
    const s = await start();
    const receiver = await startReceiver();
    receiver.answers.push({ status: 500 });
    const webhook = await createWebhook(s, { url: receiver.url, events: ['settings.changed'] });
    await put(s, 'gitea', { user_name: 'sam' });
    await eventually('it failed once', async () => (await deliveries(s, webhook.id))[0]?.attempts.length === 1);
    expect(await (await fetch(`${s.ch.url}/metrics`)).text()).toMatch(/confhub_webhook_queue_depth 1/);
    await s.json(`/api/v1/webhooks/${webhook.id}`, { method: 'PATCH', body: JSON.stringify({ active: false }) });
    expect((await deliveries(s, webhook.id))[0]).toMatchObject({ state: 'failed', lastError: 'the webhook was turned off' });
    const metrics = await (await fetch(`${s.ch.url}/metrics`)).text();
    expect(metrics).toMatch(/confhub_webhook_queue_depth 0\n/);
    expect(metrics).toMatch(/confhub_webhook_oldest_undelivered_seconds 0\n/);
    await put(s, 'gitea', { user_name: 'tia' });
    await s.json(`/api/v1/webhooks/${webhook.id}`, { method: 'PATCH', body: JSON.stringify({ active: true }) });
    await put(s, 'gitea', { user_name: 'uma' });
    await eventually('the newest change arrived', () => receiver.received.length === 2);
    await advance(s, 3600_000);
    expect(receiver.received).toHaveLength(2);
    expect(JSON.parse(receiver.received[1]!.body)).toMatchObject({ type: 'settings.changed' });
  }, 30_000);

  it("when a webhook's URL cannot be opened any more, then its attempt fails and is backed off (no loop), and the list of webhooks still answers", async () => {
    const s = await start();
    const receiver = await startReceiver();
    const webhook = await createWebhook(s, { url: receiver.url, events: ['settings.changed'] });
    const db = new Database(s.ch.config.databasePath);
    try {
      db.prepare('UPDATE webhooks SET url = ? WHERE id = ?').run('enc:v1:0000000000000000:AAAA', webhook.id);
    } finally {
      db.close();
    }
    await put(s, 'gitea', { user_name: 'vic' });
    await eventually('the attempt failed', async () => (await deliveries(s, webhook.id))[0]?.attempts.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const [delivery] = await deliveries(s, webhook.id);
    expect(delivery).toMatchObject({ state: 'pending', attemptCount: 1, attempts: [{ result: 'failed', error: expect.stringMatching(/could not be made/) }] });
    expect(receiver.received).toHaveLength(0);
    expect((await s.json<{ webhooks: unknown[] }>('/api/v1/webhooks')).body.webhooks).toHaveLength(1);
  }, 30_000);

  it('when a chat endpoint cannot be reached or is refused, then its token (in the path) is in no error, reason or event', async () => {
    const s = await start();
    const watcher = await startReceiver();
    await createWebhook(s, { url: watcher.url, events: ['webhook.disabled'] });
    const token = 'T0KEN-in-the-path-4242';
    const closed = await startReceiver();
    await closed.close();
    const feishu = await createWebhook(s, {
      url: `${new URL(closed.url).origin}/open-apis/bot/v2/hook/${token}`,
      kind: 'feishu',
      events: ['settings.changed'],
    });
    const gone = await startReceiver();
    gone.answers.push({ status: 410 });
    const slack = await createWebhook(s, { url: `${gone.url}/services/${token}`, kind: 'slack', events: ['settings.changed'] });
    await put(s, 'gitea', { user_name: 'wes' });
    await advance(s, 2000);
    await eventually('the feishu attempt failed', async () => (await deliveries(s, feishu.id))[0]?.attempts.length === 1);
    await eventually('the slack endpoint is disabled', () => watcher.received.length === 1);
    const everything = JSON.stringify([
      await deliveries(s, feishu.id),
      await deliveries(s, slack.id),
      (await s.json('/api/v1/webhooks')).body,
      watcher.received.map((r) => r.body),
    ]);
    expect(everything).toContain('ECONNREFUSED');
    expect(everything).not.toContain(token);
  }, 30_000);

  it('when a URL has userinfo that is not valid percent-encoding, then it is refused with the reason and confhub keeps running', async () => {
    const s = await start();
    const answer = await s.json<{ details: string }>('/api/v1/webhooks', {
      method: 'POST',
      body: JSON.stringify({ url: 'https://a%zz:b@hooks.example.com/x' }),
    });
    expect(answer).toMatchObject({ status: 400, body: { details: expect.stringMatching(/user name or password is not valid percent-encoding/) } });
    expect((await fetch(`${s.ch.url}/healthz`)).status).toBe(200);
  }, 30_000);

  it('when an endpoint is deleted while its attempt is on the wire, then the answer is dropped and nothing fails', async () => {
    const s = await start();
    let release: (() => void) | undefined;
    const held = createServer((req, res) => {
      req.resume();
      release = () => res.end();
    });
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => (held.closeAllConnections(), held.close(() => resolve()))));
    const webhook = await createWebhook(s, { url: `http://127.0.0.1:${(held.address() as AddressInfo).port}/`, events: ['settings.changed'] });
    await put(s, 'gitea', { user_name: 'xan' });
    await eventually('the attempt is on the wire', () => release !== undefined);
    expect((await s.json(`/api/v1/webhooks/${webhook.id}`, { method: 'DELETE' })).status).toBe(200);
    release!();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await s.json<{ webhooks: unknown[] }>('/api/v1/webhooks')).body.webhooks).toEqual([]);
    expect((await fetch(`${s.ch.url}/healthz`)).status).toBe(200);
  }, 30_000);

  it('when a chat endpoint refuses every message for the whole retry window, then it is disabled though no answer could be retried', async () => {
    const s = await start();
    const slack = await startChatReceiver('slack');
    cleanups.push(() => slack.close());
    slack.failNext(100, { status: 400, body: 'invalid_payload' });
    const webhook = await createWebhook(s, { url: slack.url, kind: 'slack', events: ['settings.changed'] });
    // A message every 5 h, each refused: one streak of failures (never 6 h apart) for 72 h.
    for (let n = 0; n <= 15; n++) {
      await put(s, 'gitea', { user_name: `yan${n}` });
      await advance(s, 600);
      await eventually(`refused ${n + 1}`, () => slack.requests.length === n + 1);
      await s.clock.settle();
      if ((await s.json<WebhookAnswer>(`/api/v1/webhooks/${webhook.id}`)).body.active === false) break;
      await advance(s, 5 * 3600_000);
    }
    expect((await s.json<WebhookAnswer>(`/api/v1/webhooks/${webhook.id}`)).body.disabledReason).toMatch(/^failing for 72 h since .*invalid_payload/);
  }, 30_000);

  it('when webhooks are changed, tested or redelivered, then each is audited (refused ones too) with the endpoint and the fields, never a URL or a secret', async () => {
    const s = await start();
    const receiver = await startReceiver();
    const webhook = await createWebhook(s, { url: `${receiver.url}?token=audit-url-token`, events: ['settings.changed'] });
    await s.json(`/api/v1/webhooks/${webhook.id}`, { method: 'PATCH', body: JSON.stringify({ description: 'ops', active: true }) });
    await s.json(`/api/v1/webhooks/${webhook.id}/test`, { method: 'POST' });
    const [delivery] = await deliveries(s, webhook.id);
    await s.json(`/api/v1/webhooks/${webhook.id}/deliveries/${delivery!.id}/redeliver`, { method: 'POST' });
    expect((await s.json(`/api/v1/webhooks/${webhook.id}/deliveries/424242/redeliver`, { method: 'POST' })).status).toBe(404);
    expect((await s.json('/api/v1/webhooks', { method: 'POST', body: JSON.stringify({ url: 'ftp://x' }) })).status).toBe(400);
    const rotated = await s.json<{ secret: string }>(`/api/v1/webhooks/${webhook.id}/rotate-secret`, { method: 'POST' });
    const { entries } = (
      await s.json<{ entries: { action: string; section: string | null; key: string | null; result: string; errorCode: string | null }[] }>(
        '/api/v1/audit?limit=50',
      )
    ).body;
    const rows = entries.filter((e) => e.action.startsWith('webhook.')).reverse();
    const section = `webhook:${webhook.id}`;
    expect(rows.map((e) => [e.action, e.section, e.key, e.result, e.errorCode])).toEqual([
      ['webhook.create', section, null, 'applied', null],
      ['webhook.update', section, 'description', 'applied', null],
      ['webhook.update', section, 'active', 'applied', null],
      ['webhook.test', section, null, 'applied', null],
      ['webhook.redeliver', section, String(delivery!.id), 'applied', null],
      ['webhook.redeliver', section, '424242', 'refused', 'DELIVERY_NOT_FOUND'],
      ['webhook.create', null, null, 'refused', 'VALIDATION_FAILED'],
      ['webhook.rotate_secret', section, null, 'applied', null],
    ]);
    const dump = JSON.stringify(entries);
    for (const secret of ['audit-url-token', webhook.secret.slice(6), rotated.body.secret.slice(6)]) expect(dump).not.toContain(secret);
  }, 30_000);
});
