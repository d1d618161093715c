import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/audit-log.js';
import { openDatabase } from '../../src/db/database.js';
import type { SettingsStore } from '../../src/settings/store.js';
import type { MainToWorker } from '../../src/sync/protocol.js';
import type { ReconcileResult } from '../../src/targets/outcome.js';
import { createEventLog } from '../../src/events/event-log.js';
import { createMetrics } from '../../src/metrics.js';
import { createSyncDispatcher } from '../../src/sync/dispatcher.js';
import { createRunLog } from '../../src/sync/run-log.js';
import { expectAppError } from '../support/wait.js';

function service(currentRevision: () => string) {
  const db = openDatabase({ path: ':memory:' });
  const sent: MainToWorker[] = [];
  let alive = true;
  const settings = { read: () => ({ revision: currentRevision() }) } as unknown as SettingsStore;
  const logger = pino({ level: 'silent' });
  const events = createEventLog({ db, logger });
  const sync = createSyncDispatcher({
    targets: [],
    runLog: createRunLog({ db, logger }),
    audit: createAuditLog({ db }),
    settings,
    events,
    metrics: createMetrics(),
    logger,
    worker: { send: (m) => sent.push(m), alive: () => alive, restarts: () => 0 },
  });
  return { sync, sent, events, kill: () => (alive = false) };
}

const result = (revision: string, outcome: ReconcileResult['outcome'] = 'applied'): ReconcileResult => ({
  revision,
  outcome,
  rollbackConfig: false,
  targets: [],
});
const run = (revision: string) => ({
  type: 'run' as const,
  source: 'change' as const,
  actor: { type: 'file' as const, id: 'file' },
  startedAt: 1,
  finishedAt: 2,
  result: result(revision),
});
const api = { type: 'api' as const, id: 'key:1' };

describe('sync dispatcher waiters', () => {
  it('when the worker skips a written revision because it is already applied, then the waiting write is answered as unchanged', async () => {
    const { sync } = service(() => 'r1');
    sync.announce({ revision: 'r1', actor: api, source: 'api' });
    const answer = sync.waitForRevision('r1', 5000);
    sync.onWorkerMessage({ type: 'skipped', revision: 'r1', reason: 'applied' });
    await expect(answer).resolves.toMatchObject({ kind: 'run', result: { outcome: 'unchanged' } });
  });

  it('when the worker skips a revision that failed before, then the waiting write hears it failed and how to retry', async () => {
    const { sync } = service(() => 'r1');
    sync.announce({ revision: 'r1', actor: api, source: 'api' });
    const answer = sync.waitForRevision('r1', 5000);
    sync.onWorkerMessage({ type: 'skipped', revision: 'r1', reason: 'failed' });
    await expect(answer).resolves.toMatchObject({ result: { outcome: 'failed', error: { details: expect.stringContaining('POST /api/v1/settings/reload') } } });
  });

  it('when a hand edit supersedes a written revision before it ran, then the write is answered by the run of the file as it is now', async () => {
    let current = 'r1';
    const { sync } = service(() => current);
    sync.announce({ revision: 'r1', actor: api, source: 'api' });
    const answer = sync.waitForRevision('r1', 5000);
    current = 'hand';
    sync.onWorkerMessage(run('older'));
    sync.onWorkerMessage(run('hand'));
    await expect(answer).resolves.toMatchObject({ result: { revision: 'hand' } });
  });

  it('when a later write of the same group is applied, then the earlier write is answered too (latest wins)', async () => {
    const { sync } = service(() => 'r2');
    sync.announce({ revision: 'r1', actor: api, source: 'api' });
    sync.announce({ revision: 'r2', actor: api, source: 'api' });
    const first = sync.waitForRevision('r1', 5000);
    const second = sync.waitForRevision('r2', 5000);
    sync.onWorkerMessage(run('r2'));
    await expect(first).resolves.toMatchObject({ result: { revision: 'r2' } });
    await expect(second).resolves.toMatchObject({ result: { revision: 'r2' } });
  });

  it('when one of two waits on the same revision times out, then the other is still answered', async () => {
    const { sync } = service(() => 'r1');
    sync.announce({ revision: 'r1', actor: api, source: 'api' });
    const short = sync.waitForRevision('r1', 20);
    const long = sync.waitForRevision('r1', 5000);
    await expectAppError(short, 'TIMEOUT');
    sync.onWorkerMessage(run('r1'));
    await expect(long).resolves.toMatchObject({ result: { revision: 'r1' } });
  });

  it('when the worker dies during a reconcile request, then the caller gets WORKER_UNAVAILABLE at once, not a timeout', async () => {
    const { sync, sent } = service(() => 'r1');
    const answer = sync.reconcile({ force: false, wait: true, timeoutMs: 60_000, actor: api });
    expect(sent[0]).toMatchObject({ type: 'reconcile', actor: api });
    sync.onWorkerExit();
    await expectAppError(answer, 'WORKER_UNAVAILABLE');
  });
});

describe('sync dispatcher source status', () => {
  it('when a secret does not open, then readiness says so; when config.ini returns to the revision in effect, it is ready again', () => {
    const { sync } = service(() => 'r1');
    sync.onWorkerMessage({ type: 'ready' });
    sync.onWorkerMessage(run('r1'));
    const unreadable: ReconcileResult = {
      ...result('bad', 'failed'),
      error: { code: 'SECRET_UNREADABLE', message: 'Secret unreadable', details: 'gitea.user_pwd cannot be decrypted' },
    };
    sync.onWorkerMessage({ ...run('bad'), result: unreadable });
    expect(sync.readiness()).toEqual({ ready: false, reasons: ['config.ini invalid: gitea.user_pwd cannot be decrypted'] });
    expect(sync.status().source.valid).toBe(false);
    sync.onWorkerMessage({ type: 'accepted', revision: 'r1' });
    sync.onWorkerMessage({ type: 'skipped', revision: 'r1', reason: 'applied' });
    expect(sync.readiness()).toEqual({ ready: true, reasons: [] });
  });

  it('when runs carry commits, then the last applied commit is the newest applied one that is not a retry', () => {
    const { sync } = service(() => 'r3');
    expect(sync.lastAppliedCommit()).toBeUndefined();
    sync.onWorkerMessage({ ...run('r1'), commit: 'c1' });
    sync.onWorkerMessage({ ...run('r2'), commit: 'c2' });
    sync.onWorkerMessage({ ...run('r3'), result: result('r3', 'failed'), commit: 'c3' });
    sync.onWorkerMessage({ ...run('r2'), source: 'retry', commit: 'c9' });
    expect(sync.lastAppliedCommit()).toBe('c2');
  });
});

describe('sync dispatcher events', () => {
  it('when the worker becomes ready, runs a revision, finds a file invalid and stops, then each lands in the event log in order, without values', () => {
    const { sync, events } = service(() => 'r1');
    sync.onWorkerMessage({ type: 'ready' });
    sync.onWorkerMessage(run('r1'));
    sync.onWorkerMessage({
      type: 'source_invalid',
      revision: 'r2',
      error: { code: 'CONFIG_INVALID', message: 'config.ini is invalid', details: 'line 3: no section' },
    });
    sync.onWorkerMessage({ ...run('r3'), result: result('r3', 'rolled_back') });
    sync.onWorkerExit();
    const { events: logged, reset } = events.read({ after: 0, limit: 100 });
    expect(reset).toBe(false);
    expect(logged.map((e) => e.type)).toEqual(['worker.state', 'applied', 'source_invalid', 'rolled_back', 'worker.state']);
    expect(logged.map((e) => e.id)).toEqual([1, 2, 3, 4, 5]);
    expect(logged[1]).toMatchObject({ data: { revision: 'r1', source: 'change', actor: { type: 'file', id: 'file' }, targets: [] } });
    expect(logged[4]).toMatchObject({ data: { state: 'stopped' } });
  });

  it('when a run changed nothing, then no event is published; a requested reload is published even then', () => {
    const { sync, events } = service(() => 'r1');
    sync.onWorkerMessage({ ...run('r1'), result: result('r1', 'unchanged') });
    expect(events.lastId()).toBe(0);
    sync.onWorkerMessage({ ...run('r1'), source: 'reload', result: result('r1', 'unchanged') });
    expect(events.read({ after: 0, limit: 10 }).events.map((e) => e.type)).toEqual(['applied']);
  });
});

describe('sync dispatcher source state', () => {
  const invalid = {
    type: 'source_invalid' as const,
    revision: 'bad',
    error: { code: 'CONFIG_INVALID' as const, message: 'config.ini is invalid', details: 'line 3: duplicate section [extra]', line: 3 },
  };

  it('when an older revision finishes on a slow lane after an invalid save, then the source stays invalid until a valid one is read', () => {
    const { sync } = service(() => 'bad');
    sync.onWorkerMessage({ type: 'ready' });
    sync.onWorkerMessage({ type: 'rendered', revision: 'r1' });
    sync.onWorkerMessage(invalid);
    sync.onWorkerMessage(run('r1'));
    expect(sync.status().source).toMatchObject({ valid: false, error: { line: 3 } });
    expect(sync.readiness().ready).toBe(false);
    // The fix is read (and goes down the lanes): ready again before any run of it ends.
    sync.onWorkerMessage({ type: 'accepted', revision: 'r2' });
    expect(sync.status().source.valid).toBe(true);
    expect(sync.readiness()).toEqual({ ready: true, reasons: [] });
  });

  it('when a skipped revision is reported after a newer save was found invalid (its commit was slow), then the source stays invalid', () => {
    const { sync } = service(() => 'bad');
    sync.onWorkerMessage({ type: 'ready' });
    sync.onWorkerMessage(run('r1'));
    sync.onWorkerMessage({ type: 'accepted', revision: 'r1' });
    sync.onWorkerMessage(invalid);
    sync.onWorkerMessage({ type: 'skipped', revision: 'r1', reason: 'applied', commit: 'c1' });
    expect(sync.status().source).toMatchObject({ valid: false, error: { line: 3 } });
    expect(sync.readiness().ready).toBe(false);
  });
});
