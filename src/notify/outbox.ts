/**
 * The webhook outbox: a durable queue in SQLite between the event log and the endpoints.
 *
 * Each endpoint keeps a cursor into the log. Whenever the log grows (and at start) the events past
 * each cursor become deliveries and the cursor moves, in one transaction: a kill -9 at any point
 * loses nothing and a restart goes on from the cursors. A `standard` endpoint gets one message per
 * event (a Standard Webhooks receiver dedupes and orders by message); a chat endpoint gets one
 * message per burst: events within the debounce window join the delivery that is still collecting.
 *
 * Sending is serial per endpoint (oldest first) and concurrent across endpoints. A failure backs the
 * endpoint off as a whole (exponential, jittered, or as long as its Retry-After says), so a dead
 * receiver costs one attempt per backoff step, not one per queued message. A delivery is retried
 * for the retry window; an endpoint failing for the whole window, or answering 410 Gone, is
 * disabled and `webhook.disabled` published. Nothing here runs inside a request or the sync
 * worker: the API answers before any delivery is tried.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import type { EventLog } from '../events/event-log.js';
import type { NotifyConfig } from './notify-config.js';
import { msgIdOf } from './standard-webhooks.js';
import type { Webhook, WebhookKind, WebhookStore } from './webhook-store.js';

/** A thin event as deliveries carry it (the log's, or the synthetic `webhook.test`). */
export interface OutboxEvent {
  readonly id: number;
  readonly type: string;
  readonly at: number;
  readonly data: object;
}

/** What an attempt's answer means, as the endpoint's service judges success. */
export type Verdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly retry: boolean; readonly disable?: boolean; readonly reason: string; readonly retryAfterMs?: number };

/** An attempt's outcome on the wire (the guarded client's result). */
export type PostOutcome =
  | {
      readonly kind: 'answered';
      readonly status: number;
      readonly headers: { readonly retryAfter?: string };
      readonly body: string;
      readonly durationMs: number;
    }
  | { readonly kind: 'blocked'; readonly reason: string; readonly durationMs: number }
  | { readonly kind: 'failed'; readonly code: string; readonly message: string; readonly durationMs: number };

export interface DeliveryFormat {
  /** The body and headers of one message (signed for `standard`). */
  request(input: {
    readonly kind: WebhookKind;
    readonly url: string;
    readonly events: readonly OutboxEvent[];
    readonly messageId: string;
    /** When this attempt is made. */
    readonly nowMs: number;
    readonly secrets: readonly string[];
  }): { url: string; body: string; headers: Record<string, string> };
  judge(kind: WebhookKind, answer: { readonly status: number; readonly body: string; readonly retryAfterMs?: number }): Verdict;
}

export interface OutboxMetrics {
  delivery(input: { kind: WebhookKind; result: 'delivered' | 'retried' | 'failed' | 'blocked' }): void;
}

export interface OutboxDeps {
  db: Database;
  events: EventLog;
  store: WebhookStore;
  config: NotifyConfig;
  logger: Logger;
  post: (input: {
    url: string;
    shownUrl: string;
    headers: Record<string, string>;
    body: string;
    timeoutMs: number;
    signal: AbortSignal;
  }) => Promise<PostOutcome>;
  format: DeliveryFormat;
  parseRetryAfter: (value: string, nowMs: number) => number | undefined;
  clock?: Clock;
  random?: () => number;
  metrics?: OutboxMetrics;
  /** How many endpoints are sent to at once. */
  concurrency?: number;
}

/** Endpoints sent to at once: enough that a few hanging receivers (10 s each) do not hold the others back. */
const DEFAULT_CONCURRENCY = 64;
/** Events in one chat message at most; a longer burst starts the next message. */
export const MAX_EVENTS_PER_MESSAGE = 50;
const PAGE = 200;
const BACKOFF_BASE_MS = 5000;
const BACKOFF_MAX_MS = 6 * 3600_000;
/** Finished deliveries are kept this long for the delivery log, and at most KEEP_PER_WEBHOOK per endpoint. */
const KEEP_MS = 14 * 24 * 3600_000;
const KEEP_PER_WEBHOOK = 1000;
const PRUNE_EVERY_MS = 3600_000;
/** Attempts shown per delivery in the log (the newest). */
const ATTEMPTS_SHOWN = 20;
/** Timers cannot wait longer (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export type DeliveryState = 'collecting' | 'pending' | 'delivered' | 'failed';

export interface DeliveryAttempt {
  readonly at: string;
  readonly durationMs: number;
  readonly result: 'delivered' | 'failed' | 'blocked';
  readonly responseStatus: number | null;
  /** The first 4 KB of the answer. */
  readonly responseBody: string | null;
  readonly error: string | null;
  readonly nextAttemptAt: string | null;
}

export interface DeliveryView {
  readonly id: number;
  readonly webhook: string;
  readonly messageId: string;
  readonly state: DeliveryState;
  readonly events: readonly { readonly id: number; readonly type: string }[];
  readonly createdAt: string;
  readonly finishedAt: string | null;
  readonly attemptCount: number;
  readonly lastError: string | null;
  readonly redeliveryOf: number | null;
  readonly attempts: readonly DeliveryAttempt[];
}

interface DeliveryRow {
  id: number;
  webhook_id: string;
  message_id: string;
  events: string;
  state: DeliveryState;
  created_at: number;
  due_at: number;
  attempts: number;
  last_error: string | null;
  last_added_at: number;
  finished_at: number | null;
  redelivery_of: number | null;
  test: number;
}

interface AttemptRow {
  at: number;
  duration_ms: number;
  result: 'delivered' | 'failed' | 'blocked';
  response_status: number | null;
  response_body: string | null;
  error: string | null;
  next_attempt_at: number | null;
}

interface Cancellable extends TimerHandle {
  cancel(): void;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function createOutbox(deps: OutboxDeps) {
  const { db, events, store, config, format, clock = systemClock, random = Math.random, metrics, concurrency = DEFAULT_CONCURRENCY } = deps;
  const log = deps.logger.child({ module: 'webhooks' });
  const q = {
    cursors: db.prepare<[], { id: string; kind: WebhookKind; events: string; active: number; cursor: number }>(
      'SELECT id, kind, events, active, cursor FROM webhooks',
    ),
    setCursor: db.prepare<[number, string]>('UPDATE webhooks SET cursor = ? WHERE id = ?'),
    insertRow: db.prepare<{
      webhook: string;
      message: string;
      events: string;
      state: DeliveryState;
      now: number;
      due: number;
      of: number | null;
      test: number;
    }>(
      `INSERT INTO webhook_deliveries (webhook_id, message_id, events, state, created_at, last_added_at, due_at, redelivery_of, test)
       VALUES (@webhook, @message, @events, @state, @now, @now, @due, @of, @test)`,
    ),
    newestUnsent: db.prepare<[string], DeliveryRow>(
      `SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND test = 0 AND state IN ('collecting', 'pending') AND redelivery_of IS NULL
       ORDER BY due_at DESC, id DESC LIMIT 1`,
    ),
    setEvents: db.prepare<[string, number, number]>('UPDATE webhook_deliveries SET events = ?, last_added_at = ? WHERE id = ?'),
    /**
     * Per endpoint, and apart for its test pings: when its oldest unsent message may go. Each MIN is
     * one step into the partial index of unsent deliveries, however many wait or were delivered.
     */
    lanes: db.prepare<[], { webhook: string; active: number; backoff: number | null; normal: number | null; test: number | null }>(
      `SELECT w.id AS webhook, w.active AS active, w.next_attempt_at AS backoff,
         (SELECT MIN(due_at) FROM webhook_deliveries WHERE webhook_id = w.id AND test = 0 AND state IN ('collecting', 'pending')) AS normal,
         (SELECT MIN(due_at) FROM webhook_deliveries WHERE webhook_id = w.id AND test = 1 AND state IN ('collecting', 'pending')) AS test
       FROM webhooks w`,
    ),
    oldestDue: db.prepare<[string, number, number], DeliveryRow>(
      `SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND test = ? AND state IN ('collecting', 'pending') AND due_at <= ?
       ORDER BY due_at, id LIMIT 1`,
    ),
    delivery: db.prepare<[number], DeliveryRow>('SELECT * FROM webhook_deliveries WHERE id = ?'),
    deliveries: db.prepare<[string, number, number], DeliveryRow>('SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND id < ? ORDER BY id DESC LIMIT ?'),
    attempts: db.prepare<[number, number], AttemptRow>('SELECT * FROM webhook_attempts WHERE delivery_id = ? ORDER BY id DESC LIMIT ?'),
    recordAttempt: db.prepare<[number, number, number, string, number | null, string | null, string | null, number | null]>(
      `INSERT INTO webhook_attempts (delivery_id, at, duration_ms, result, response_status, response_body, error, next_attempt_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    finish: db.prepare<[DeliveryState, string | null, number, number]>(
      'UPDATE webhook_deliveries SET state = ?, last_error = ?, finished_at = ?, attempts = attempts + 1 WHERE id = ?',
    ),
    retryLater: db.prepare<[string, number]>("UPDATE webhook_deliveries SET state = 'pending', last_error = ?, attempts = attempts + 1 WHERE id = ?"),
    startSending: db.prepare<[number]>("UPDATE webhook_deliveries SET state = 'pending' WHERE id = ? AND state = 'collecting'"),
    healthy: db.prepare<[string]>(
      'UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL, last_failure_at = NULL, next_attempt_at = NULL WHERE id = ?',
    ),
    /**
     * A failure: it continues the endpoint's streak of failures unless the last one is older than
     * the longest backoff (then a new streak starts), so sparse failures never add up to a window.
     */
    failed: db.prepare<{ now: number; streakGap: number; id: string }>(
      `UPDATE webhooks SET failing_since = CASE WHEN failing_since IS NULL OR last_failure_at < @now - @streakGap THEN @now ELSE failing_since END,
         last_failure_at = @now WHERE id = @id`,
    ),
    backOff: db.prepare<[number, string]>('UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, next_attempt_at = ? WHERE id = ?'),
    current: db.prepare<[string], { active: number; url: string; failing_since: number | null; consecutive_failures: number }>(
      'SELECT active, url, failing_since, consecutive_failures FROM webhooks WHERE id = ?',
    ),
    disable: db.prepare<[string, number, string]>('UPDATE webhooks SET active = 0, disabled_reason = ?, next_attempt_at = NULL, updated_at = ? WHERE id = ?'),
    failAll: db.prepare<[string, number, string]>(
      "UPDATE webhook_deliveries SET state = 'failed', last_error = ?, finished_at = ? WHERE webhook_id = ? AND test = 0 AND state IN ('collecting', 'pending')",
    ),
    depth: db.prepare<[], { n: number; oldest: number | null }>(
      "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM webhook_deliveries WHERE state IN ('collecting', 'pending') AND test = 0",
    ),
    pruneOld: db.prepare<[number]>("DELETE FROM webhook_deliveries WHERE state IN ('delivered', 'failed') AND finished_at < ?"),
    pruneMany: db.prepare<[number]>(
      `DELETE FROM webhook_deliveries WHERE state IN ('delivered', 'failed') AND id IN (
         SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY webhook_id ORDER BY id DESC) AS n FROM webhook_deliveries) WHERE n > ?)`,
    ),
  };

  const inFlight = new Set<string>();
  /** Lanes resting after an unexpected failure, until when. */
  const held = new Map<string, number>();
  /** Deliveries on the wire: nothing is added to them. */
  const sending = new Set<number>();
  /** Ends the attempts in flight when confhub stops. */
  let aborting = new AbortController();
  /** Callers waiting for a delivery's next attempt (the test ping). */
  const waiting = new Map<number, (() => void)[]>();
  let timer: TimerHandle | Cancellable | undefined;
  let timerAt = Number.POSITIVE_INFINITY;
  let pruneTimer: TimerHandle | undefined;
  let running = false;
  const attemptsInFlight = new Set<Promise<void>>();
  let unsubscribe: (() => void) | undefined;

  const matches = (types: readonly string[], type: string): boolean => types.includes('*') || types.includes(type);
  let enqueueQueued = false;

  /** The log grew: enqueue once the publisher's work (an API answer, a run's record) is done. */
  function onEvent(): void {
    if (enqueueQueued) return;
    enqueueQueued = true;
    setImmediate(() => {
      enqueueQueued = false;
      if (running) enqueue();
    });
  }

  /** Turns the events past each endpoint's cursor into deliveries. */
  function enqueue(): void {
    const now = clock.now();
    for (const endpoint of q.cursors.all()) {
      let cursor = endpoint.cursor;
      const types = JSON.parse(endpoint.events) as string[];
      db.transaction(() => {
        for (;;) {
          const page = events.read({ after: cursor, limit: PAGE });
          if (page.reset) {
            log.warn(
              { webhook: endpoint.id, cursor, lastId: events.lastId() },
              'events this webhook had not seen were pruned from the log; it goes on from the newest',
            );
            cursor = events.lastId();
            break;
          }
          for (const event of page.events) {
            cursor = event.id;
            // Off (by a user or by confhub): what happens meanwhile is not sent later.
            if (endpoint.active !== 1 || !matches(types, event.type)) continue;
            // A disabled endpoint is told of by the others, not by itself.
            if (event.type === 'webhook.disabled' && (event.data as { webhook?: string }).webhook === endpoint.id) continue;
            add(endpoint, event, now);
          }
          if (page.events.length < PAGE) break;
        }
        if (cursor !== endpoint.cursor) q.setCursor.run(cursor, endpoint.id);
      })();
    }
    schedule();
  }

  function add(endpoint: { id: string; kind: WebhookKind }, event: OutboxEvent, now: number): void {
    const thin = JSON.stringify({ id: event.id, type: event.type, at: event.at, data: event.data });
    if (endpoint.kind === 'standard') {
      // One event per message; its id is kept by retries and redeliveries.
      q.insertRow.run({
        webhook: endpoint.id,
        message: msgIdOf({ endpoint: endpoint.id, event }),
        events: `[${thin}]`,
        state: 'pending',
        now,
        due: now,
        of: null,
        test: 0,
      });
      return;
    }
    // A chat message gathers what has not gone out yet: a burst within the window, and whatever
    // comes while the endpoint is backed off; never a message on the wire.
    const open = q.newestUnsent.get(endpoint.id);
    if (open && !sending.has(open.id) && (JSON.parse(open.events) as unknown[]).length < MAX_EVENTS_PER_MESSAGE) {
      q.setEvents.run(`${open.events.slice(0, -1)},${thin}]`, now, open.id);
      return;
    }
    q.insertRow.run({
      webhook: endpoint.id,
      message: messageId(),
      events: `[${thin}]`,
      state: config.debounceMs > 0 ? 'collecting' : 'pending',
      now,
      due: now + config.debounceMs,
      of: null,
      test: 0,
    });
  }

  function messageId(prefix = 'msg_'): string {
    return `${prefix}${randomBytes(12).toString('base64url')}`;
  }

  const laneOf = (webhook: string, test: boolean): string => (test ? `${webhook}#test` : webhook);

  /** Lanes with something to send and nothing in flight, with the time it may go. */
  function idleLanes(): { webhook: string; test: boolean; at: number }[] {
    const lanes: { webhook: string; test: boolean; at: number }[] = [];
    for (const row of q.lanes.all()) {
      // An endpoint that is off sends nothing but test messages; one backed off waits its time.
      if (row.normal !== null && row.active === 1) lanes.push({ webhook: row.webhook, test: false, at: Math.max(row.normal, row.backoff ?? 0) });
      if (row.test !== null) lanes.push({ webhook: row.webhook, test: true, at: row.test });
    }
    // Longest due first, so a few busy endpoints cannot keep the others waiting.
    return lanes
      .filter((lane) => !inFlight.has(laneOf(lane.webhook, lane.test)))
      .map((lane) => ({ ...lane, at: Math.max(lane.at, held.get(laneOf(lane.webhook, lane.test)) ?? 0) }))
      .sort((a, b) => a.at - b.at);
  }

  function schedule(): void {
    // At the limit, each attempt's end schedules again: waking now would find nothing to start.
    if (!running || inFlight.size >= concurrency) return;
    const at = Math.min(...idleLanes().map((lane) => lane.at));
    if (!Number.isFinite(at)) return;
    if (timer !== undefined && at >= timerAt) return;
    cancelTimer();
    timerAt = at;
    const wait = at - clock.now();
    // Due now: on the next turn of the loop, not on the clock (a test's clock moves only when told).
    timer = wait <= 0 ? immediately(tick) : clock.setTimeout(tick, Math.min(MAX_TIMER_MS, wait));
    timer.unref();
  }

  function immediately(callback: () => void): Cancellable {
    let cancelled = false;
    setImmediate(() => {
      if (!cancelled) callback();
    });
    const handle: Cancellable = {
      unref: () => handle,
      cancel: () => {
        cancelled = true;
      },
    };
    return handle;
  }

  function cancelTimer(): void {
    if (timer && 'cancel' in timer) timer.cancel();
    else clock.clearTimeout(timer);
    timer = undefined;
  }

  function tick(): void {
    timer = undefined;
    timerAt = Number.POSITIVE_INFINITY;
    if (!running) return;
    const now = clock.now();
    for (const lane of idleLanes()) {
      if (inFlight.size >= concurrency) break;
      if (lane.at > now) continue;
      // Serial per endpoint, oldest first; a test ping does not wait behind the queue.
      const row = q.oldestDue.get(lane.webhook, lane.test ? 1 : 0, now);
      if (!row) continue;
      const key = laneOf(lane.webhook, lane.test);
      inFlight.add(key);
      sending.add(row.id);
      const attempt = send(row)
        .catch((error: unknown) => {
          // The database failed under it (a full disk…): the lane rests before trying again.
          held.set(key, clock.now() + backoffMs(0));
          log.error({ err: error, webhook: row.webhook_id, delivery: row.id }, 'a webhook delivery attempt failed unexpectedly');
        })
        .finally(() => {
          inFlight.delete(key);
          sending.delete(row.id);
          attemptsInFlight.delete(attempt);
          for (const resolve of waiting.get(row.id) ?? []) resolve();
          waiting.delete(row.id);
          schedule();
        });
      attemptsInFlight.add(attempt);
    }
    schedule();
  }

  function backoffMs(failures: number): number {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(failures, 30));
    // Half fixed, half drawn: endpoints that failed together do not return together, and none retries at once.
    return Math.floor(ceiling / 2 + random() * (ceiling / 2));
  }

  function verdictOf(kind: WebhookKind, outcome: PostOutcome, now: number): Verdict & { blocked?: boolean } {
    if (outcome.kind === 'blocked') return { ok: false, retry: false, reason: outcome.reason, blocked: true };
    if (outcome.kind === 'failed') return { ok: false, retry: true, reason: `${outcome.code}: ${outcome.message}` };
    const retryAfterMs = outcome.headers.retryAfter !== undefined ? deps.parseRetryAfter(outcome.headers.retryAfter, now) : undefined;
    // 410 Gone means the receiver is gone for good, whatever the service.
    if (outcome.status === 410) return { ok: false, retry: false, disable: true, reason: 'the endpoint answered 410 Gone' };
    return format.judge(kind, { status: outcome.status, body: outcome.body, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
  }

  async function send(row: DeliveryRow): Promise<void> {
    // Deleted meanwhile: its deliveries went with it.
    if (!store.exists(row.webhook_id)) return;
    const webhook = store.get(row.webhook_id);
    const sentTo = q.current.get(webhook.id)!.url;
    const signal = aborting.signal;
    q.startSending.run(row.id);
    const startedAt = clock.now();
    let outcome: PostOutcome;
    try {
      const request = format.request({
        kind: webhook.kind,
        url: store.urlOf(webhook.id),
        events: JSON.parse(row.events) as OutboxEvent[],
        messageId: row.message_id,
        nowMs: startedAt,
        secrets: store.signingSecrets(webhook.id, startedAt),
      });
      outcome = await deps.post({
        url: request.url,
        shownUrl: webhook.urlShown,
        headers: request.headers,
        body: request.body,
        timeoutMs: config.attemptTimeoutMs,
        signal,
      });
    } catch (error) {
      // The request could not be made (a secret that no longer opens…): a failure like any other,
      // backed off, never a loop.
      log.error({ err: error, webhook: webhook.id, delivery: row.id }, 'a webhook delivery could not be prepared');
      outcome = { kind: 'failed', code: 'other', message: `the request could not be made: ${(error as { code?: string }).code ?? 'error'}`, durationMs: 0 };
    }
    // Cut short by a stop: not an answer; the message goes again after the restart. A real
    // answer that came as confhub stopped is recorded (the database closes after this).
    if (signal.aborted && outcome.kind === 'failed' && outcome.code === 'aborted') return;
    const now = clock.now();
    const verdict = verdictOf(webhook.kind, outcome, now);
    // Deleted while the attempt was on the wire: nothing is left to record it in.
    if (!store.exists(webhook.id)) return;
    let announce: (() => void) | undefined;
    db.transaction(() => {
      announce = record({ row, webhook, sentTo, outcome, verdict, times: { startedAt, now } });
    })();
    announce?.();
    if (!verdict.ok)
      log.warn(
        { webhook: webhook.id, url: webhook.urlShown, delivery: row.id, reason: verdict.reason, retry: verdict.retry && row.test === 0 },
        'a webhook delivery failed',
      );
  }

  interface RecordInput {
    readonly row: DeliveryRow;
    readonly webhook: Webhook;
    /** The sealed URL the attempt went to: another one now means the endpoint was changed meanwhile. */
    readonly sentTo: string;
    readonly outcome: PostOutcome;
    readonly verdict: Verdict & { readonly blocked?: boolean };
    readonly times: { readonly startedAt: number; readonly now: number };
  }

  /**
   * Records an attempt and its consequences, judged against the endpoint as it is now (it may have
   * been turned off, pointed elsewhere or found healthy while the attempt was on the wire);
   * answers how to announce `webhook.disabled` after the commit, when it was disabled.
   */
  function record({ row, webhook, sentTo, outcome, verdict, times: { startedAt, now } }: RecordInput): (() => void) | undefined {
    const status = outcome.kind === 'answered' ? outcome.status : null;
    const body = outcome.kind === 'answered' ? outcome.body : null;
    const test = row.test === 1;
    const result = verdict.ok ? 'delivered' : verdict.blocked ? 'blocked' : 'failed';
    const current = q.current.get(webhook.id)!;
    const stillPending = q.delivery.get(row.id)?.state === 'pending';
    if (verdict.ok) {
      q.recordAttempt.run(row.id, startedAt, outcome.durationMs, 'delivered', status, body, null, null);
      q.finish.run('delivered', null, now, row.id);
      // An endpoint that got a message (a test too) is back: its backoff is over.
      if (current.url === sentTo) q.healthy.run(webhook.id);
      metrics?.delivery({ kind: webhook.kind, result: 'delivered' });
      return undefined;
    }
    const reason = verdict.reason;
    // Turned off, or given a new URL, while this was on the wire: the attempt is history, and says
    // nothing of the endpoint as it is now.
    const stale = !stillPending || current.active !== 1 || current.url !== sentTo;
    if (test || stale) {
      q.recordAttempt.run(row.id, startedAt, outcome.durationMs, result, status, body, reason, null);
      if (stillPending && (test || !verdict.retry)) q.finish.run('failed', reason, now, row.id);
      else if (stillPending) q.retryLater.run(reason, row.id);
      return undefined;
    }
    q.failed.run({ now, streakGap: BACKOFF_MAX_MS, id: webhook.id });
    const since = q.current.get(webhook.id)!.failing_since ?? now;
    // Failing for the whole window, whether its answers could be retried or not: the endpoint is
    // gone in practice, and its messages with it.
    const persistent = now - since >= config.retryWindowMs;
    if (!verdict.retry || persistent) {
      q.recordAttempt.run(row.id, startedAt, outcome.durationMs, result, status, body, reason, null);
      q.finish.run('failed', reason, now, row.id);
      metrics?.delivery({ kind: webhook.kind, result: verdict.blocked ? 'blocked' : 'failed' });
      if (verdict.disable) return disable(webhook, reason, now);
      if (persistent) return disable(webhook, `failing for ${hours(config.retryWindowMs)} since ${new Date(since).toISOString()}; last error: ${reason}`, now);
      return undefined;
    }
    // Retry-After is a floor under the backoff, never a shortcut past it.
    const next = now + Math.min(config.retryWindowMs, Math.max(verdict.retryAfterMs ?? 0, backoffMs(current.consecutive_failures)));
    q.backOff.run(next, webhook.id);
    // A message whose newest event is as old as the window is given up; the endpoint's own failures are counted on.
    if (now - row.last_added_at >= config.retryWindowMs) {
      q.recordAttempt.run(row.id, startedAt, outcome.durationMs, result, status, body, reason, null);
      q.finish.run('failed', `${reason}; gave up after retrying for ${hours(config.retryWindowMs)}`, now, row.id);
      metrics?.delivery({ kind: webhook.kind, result: 'failed' });
      return undefined;
    }
    q.recordAttempt.run(row.id, startedAt, outcome.durationMs, result, status, body, reason, next);
    q.retryLater.run(reason, row.id);
    metrics?.delivery({ kind: webhook.kind, result: 'retried' });
    return undefined;
  }

  /** Inside the attempt's transaction: the endpoint is off and the event is logged, or neither; announced after the commit. */
  function disable(webhook: Webhook, reason: string, now: number): () => void {
    q.disable.run(reason, now, webhook.id);
    q.failAll.run(`the webhook was disabled: ${reason}`, now, webhook.id);
    const announce = events.stage('webhook.disabled', { webhook: webhook.id, url: webhook.urlShown, reason });
    return () => {
      log.warn({ webhook: webhook.id, url: webhook.urlShown, reason }, 'a webhook was disabled');
      announce();
    };
  }

  function prune(): void {
    try {
      q.pruneOld.run(clock.now() - KEEP_MS);
      q.pruneMany.run(KEEP_PER_WEBHOOK);
    } catch (error) {
      log.error({ err: error }, 'pruning the webhook delivery log failed');
    }
    pruneTimer = clock.setTimeout(prune, PRUNE_EVERY_MS);
    pruneTimer.unref();
  }

  function toView(row: DeliveryRow): DeliveryView {
    return {
      id: row.id,
      webhook: row.webhook_id,
      messageId: row.message_id,
      state: row.state,
      events: (JSON.parse(row.events) as OutboxEvent[]).map((e) => ({ id: e.id, type: e.type })),
      createdAt: iso(row.created_at)!,
      finishedAt: iso(row.finished_at),
      attemptCount: row.attempts,
      lastError: row.last_error,
      redeliveryOf: row.redelivery_of,
      attempts: q.attempts.all(row.id, ATTEMPTS_SHOWN).map((a) => ({
        at: iso(a.at)!,
        durationMs: a.duration_ms,
        result: a.result,
        responseStatus: a.response_status,
        responseBody: a.response_body,
        error: a.error,
        nextAttemptAt: iso(a.next_attempt_at),
      })),
    };
  }

  function deliveryOf(webhookId: string, deliveryId: number): DeliveryRow {
    const row = Number.isSafeInteger(deliveryId) ? q.delivery.get(deliveryId) : undefined;
    if (!row || row.webhook_id !== webhookId) throw new AppError('DELIVERY_NOT_FOUND', { details: `webhook ${webhookId} has no delivery ${deliveryId}` });
    return row;
  }

  function waitFor(id: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timeout = clock.setTimeout(resolve, timeoutMs);
      timeout.unref();
      waiting.set(id, [
        ...(waiting.get(id) ?? []),
        () => {
          clock.clearTimeout(timeout);
          resolve();
        },
      ]);
    });
  }

  return {
    /** Catches up from every cursor, then follows the log and sends. */
    start(): void {
      if (running) return;
      running = true;
      aborting = new AbortController();
      unsubscribe = events.subscribe(onEvent);
      enqueue();
      prune();
    },
    /** Stops taking new attempts; the ones in flight end within their timeout. */
    async stop(): Promise<void> {
      running = false;
      aborting.abort();
      unsubscribe?.();
      cancelTimer();
      clock.clearTimeout(pruneTimer);
      await Promise.allSettled([...attemptsInFlight]);
    },
    /** A new endpoint or a changed subscription: look at the log again. */
    changed(): void {
      if (running) enqueue();
    },
    deliveries(webhookId: string, { limit, before }: { limit: number; before?: number }): DeliveryView[] {
      store.get(webhookId);
      return q.deliveries.all(webhookId, before ?? Number.MAX_SAFE_INTEGER, limit).map(toView);
    },
    delivery(webhookId: string, deliveryId: number): DeliveryView {
      store.get(webhookId);
      return toView(deliveryOf(webhookId, deliveryId));
    },
    /** Sends a finished delivery again, as the same message (receivers dedupe by its id). */
    redeliver(webhookId: string, deliveryId: number): DeliveryView {
      const webhook = store.get(webhookId);
      const row = deliveryOf(webhookId, deliveryId);
      if (row.state === 'pending' || row.state === 'collecting')
        throw new AppError('DELIVERY_IN_PROGRESS', { details: `delivery ${deliveryId} is still being delivered; it can be sent again once it has finished` });
      if (!webhook.active)
        throw new AppError('WEBHOOK_INACTIVE', {
          details: `webhook ${webhookId} is turned off${webhook.disabledReason ? ` (${webhook.disabledReason})` : ''}; PATCH it with {"active": true} first`,
        });
      const now = clock.now();
      const id = Number(
        q.insertRow.run({ webhook: webhookId, message: row.message_id, events: row.events, state: 'pending', now, due: now, of: row.id, test: row.test })
          .lastInsertRowid,
      );
      schedule();
      return toView(q.delivery.get(id)!);
    },
    /** Sends a `webhook.test` message now, whatever the endpoint's backoff, and answers after its attempt (or the timeout). */
    async test(webhookId: string): Promise<DeliveryView> {
      store.get(webhookId);
      const now = clock.now();
      const event: OutboxEvent = { id: 0, type: 'webhook.test', at: now, data: { webhook: webhookId } };
      const id = Number(
        q.insertRow.run({
          webhook: webhookId,
          message: messageId('test_'),
          events: JSON.stringify([event]),
          state: 'pending',
          now,
          due: now,
          of: null,
          test: 1,
        }).lastInsertRowid,
      );
      const done = waitFor(id, config.attemptTimeoutMs + 5000);
      schedule();
      await done;
      return toView(deliveryOf(webhookId, id));
    },
    /** Undelivered messages (tests excepted) and the age of the oldest, for /metrics. */
    depth(): { pending: number; oldestAgeSeconds: number } {
      const { n, oldest } = q.depth.get()!;
      return { pending: n, oldestAgeSeconds: oldest === null ? 0 : Math.max(0, (clock.now() - oldest) / 1000) };
    },
  };
}

function hours(ms: number): string {
  return `${Math.round(ms / 3600_000)} h`;
}

export type Outbox = ReturnType<typeof createOutbox>;
