/**
 * The outbox on its own: a real event log and webhook store on SQLite, a manual clock, and a post
 * the test answers by hand, for what the end-to-end suite cannot stage: events logged while no
 * outbox ran (a crash between the log and the queue), and every lane busy at once.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { createEventLog } from '../../src/events/event-log.js';
import { NOTIFY_DEFAULTS } from '../../src/notify/notify-config.js';
import { createOutbox, type PostOutcome, type Verdict } from '../../src/notify/outbox.js';
import { createWebhookStore } from '../../src/notify/webhook-store.js';
import { createKeyring, masterKey } from '../../src/secrets/secret-box.js';
import { createManualClock } from '../support/manual-clock.js';
import { eventually } from '../support/wait.js';

function setup({ concurrency, verdict = () => ({ ok: true }) }: { concurrency?: number; verdict?: () => Verdict } = {}) {
  const db = openDatabase({ path: ':memory:' });
  const logger = pino({ level: 'silent' });
  const clock = createManualClock();
  let reads = 0;
  const counting = { ...clock, now: () => (reads++, clock.now()) };
  const events = createEventLog({ db, logger, clock });
  const store = createWebhookStore({ db, keyring: createKeyring(masterKey(Buffer.alloc(32, 7))), urlProblem: () => undefined, maxWebhooks: 100 });
  const posted: { url: string; answer: (outcome: PostOutcome) => void }[] = [];
  const outbox = createOutbox({
    db,
    events,
    store,
    config: { ...NOTIFY_DEFAULTS, debounceMs: 0 },
    logger,
    clock: counting,
    post: ({ url }) => new Promise<PostOutcome>((answer) => posted.push({ url, answer })),
    format: { request: ({ url }) => ({ url, body: '{}', headers: {} }), judge: verdict },
    parseRetryAfter: () => undefined,
    ...(concurrency ? { concurrency } : {}),
  });
  const endpoint = (n: number): string =>
    store.create({ url: `http://hooks.example.test/${n}`, events: ['*'] }, { now: clock.now(), cursor: events.lastId() }).webhook.id;
  const publish = (): void => void events.publish('worker.state', { state: 'ready', restarts: 0 });
  return { db, clock, events, store, outbox, posted, endpoint, publish, reads: () => reads };
}

const ok: PostOutcome = { kind: 'answered', status: 204, headers: {}, body: '', durationMs: 1 };

describe('the webhook outbox', () => {
  it('when events were logged while no outbox ran (killed between the log and the queue), then starting it queues and sends them from each cursor, once', async () => {
    const t = setup();
    const id = t.endpoint(1);
    t.publish();
    t.publish();
    t.outbox.start();
    // One at a time to one endpoint, oldest first.
    await eventually('the first is posted', () => t.posted.length === 1);
    t.posted[0]!.answer(ok);
    await eventually('then the second', () => t.posted.length === 2);
    t.posted[1]!.answer(ok);
    await eventually('both are delivered', () => t.outbox.deliveries(id, { limit: 10 }).every((d) => d.state === 'delivered'));
    expect(t.outbox.deliveries(id, { limit: 10 }).map((d) => d.events.map((e) => e.id))).toEqual([[2], [1]]);
    await t.outbox.stop();
    // A new outbox on the same database (a restart) finds nothing left to send.
    t.outbox.start();
    await t.clock.settle();
    expect(t.posted).toHaveLength(2);
    await t.outbox.stop();
  });

  it('when every lane is busy (the concurrency limit), then the outbox waits for an attempt to end instead of polling, and then sends the rest', async () => {
    const t = setup({ concurrency: 2 });
    for (let n = 1; n <= 3; n++) t.endpoint(n);
    t.outbox.start();
    t.publish();
    await eventually('two attempts are on the wire', () => t.posted.length === 2);
    const before = t.reads();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Polling would read the clock on every turn of the loop: tens of thousands of times.
    expect(t.reads() - before).toBeLessThan(20);
    t.posted[0]!.answer(ok);
    await eventually('the third endpoint gets its turn', () => t.posted.length === 3);
    for (const post of t.posted.slice(1)) post.answer(ok);
    await t.outbox.stop();
  });

  it('when the outbox stops with an attempt on the wire, then that attempt is not recorded and its message is still waiting', async () => {
    const t = setup();
    const id = t.endpoint(1);
    t.outbox.start();
    t.publish();
    await eventually('the attempt is on the wire', () => t.posted.length === 1);
    const stopped = t.outbox.stop();
    t.posted[0]!.answer({ kind: 'failed', code: 'aborted', message: 'POST http://hooks.example.test/…: aborted', durationMs: 1 });
    await stopped;
    expect(t.outbox.deliveries(id, { limit: 10 })).toEqual([expect.objectContaining({ state: 'pending', attemptCount: 0, attempts: [] })]);
  });

  it('when an endpoint is turned off while its attempt is on the wire, then a failed answer is only recorded: the message stays failed and nothing is disabled', async () => {
    const t = setup({ verdict: () => ({ ok: false, retry: true, reason: 'HTTP 503' }) });
    const id = t.endpoint(1);
    t.outbox.start();
    t.publish();
    await eventually('the attempt is on the wire', () => t.posted.length === 1);
    t.store.update(id, { active: false }, { now: t.clock.now(), cursor: t.events.lastId() });
    t.posted[0]!.answer({ kind: 'answered', status: 503, headers: {}, body: '', durationMs: 1 });
    await eventually('the answer is recorded', () => t.outbox.deliveries(id, { limit: 1 })[0]!.attempts.length === 1);
    expect(t.outbox.deliveries(id, { limit: 1 })[0]).toMatchObject({ state: 'failed', lastError: 'the webhook was turned off' });
    expect(t.store.get(id)).toMatchObject({ active: false, disabledReason: null, consecutiveFailures: 0, failingSince: null });
    await t.outbox.stop();
  });

  it('when the URL changes while an attempt is on the wire, then its failure does not count against the new URL, and the message goes to it at once', async () => {
    const t = setup({ verdict: () => ({ ok: false, retry: true, reason: 'HTTP 503' }) });
    const id = t.endpoint(1);
    t.outbox.start();
    t.publish();
    await eventually('the attempt is on the wire', () => t.posted.length === 1);
    t.store.update(id, { url: 'http://hooks.example.test/fixed' }, { now: t.clock.now(), cursor: t.events.lastId() });
    t.posted[0]!.answer({ kind: 'answered', status: 503, headers: {}, body: '', durationMs: 1 });
    await eventually('it goes to the new URL', () => t.posted.length === 2);
    expect(t.posted[1]!.url).toBe('http://hooks.example.test/fixed');
    expect(t.store.get(id)).toMatchObject({ consecutiveFailures: 0, failingSince: null, nextAttemptAt: null });
    t.posted[1]!.answer(ok);
    await t.outbox.stop();
  });

  it('when failures are days apart (a refused message now and then), then they never add up to the retry window: the endpoint stays on', async () => {
    const t = setup({ verdict: () => ({ ok: false, retry: false, reason: 'HTTP 400' }) });
    const id = t.endpoint(1);
    t.outbox.start();
    for (let day = 0; day < 5; day++) {
      t.publish();
      await eventually(`attempt ${day + 1}`, () => t.posted.length === day + 1);
      t.posted[day]!.answer({ kind: 'answered', status: 400, headers: {}, body: '', durationMs: 1 });
      await eventually(`attempt ${day + 1} is recorded`, () => t.outbox.deliveries(id, { limit: 1 })[0]!.state === 'failed');
      await t.clock.advance(24 * 3600_000);
    }
    expect(t.store.get(id)).toMatchObject({ active: true, disabledReason: null, consecutiveFailures: 0 });
    await t.outbox.stop();
  });
});
