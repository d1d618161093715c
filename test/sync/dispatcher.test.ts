import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createAuditLog } from '../../src/audit/audit-log.js';
import { openDatabase } from '../../src/db/database.js';
import { revisionOf } from '../../src/settings/revision.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { createSettingsStore, type SettingsStore } from '../../src/settings/store.js';
import { createKeyring, masterKey, sealValue, type Keyring } from '../../src/secrets/secret-box.js';
import type { MainToWorker } from '../../src/sync/protocol.js';
import type { ReconcileResult, TargetOutcome } from '../../src/targets/outcome.js';
import { parseReload, type TargetSpec } from '../../src/targets/target-spec.js';
import { createEventLog } from '../../src/events/event-log.js';
import { createMetrics } from '../../src/metrics.js';
import { createAnnouncements } from '../../src/sync/announcements.js';
import { createSyncDispatcher } from '../../src/sync/dispatcher.js';
import { createRunLog } from '../../src/sync/run-log.js';
import { expectAppError } from '../support/wait.js';

function service(currentRevision: () => string, targets: readonly TargetSpec[] = []) {
  const db = openDatabase({ path: ':memory:' });
  const sent: MainToWorker[] = [];
  let alive = true;
  const settings = { read: () => ({ revision: currentRevision() }) } as unknown as SettingsStore;
  const logger = pino({ level: 'silent' });
  const events = createEventLog({ db, logger });
  const sync = createSyncDispatcher({
    targets,
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
    sync.landed('r1');
    const answer = sync.waitForRevision('r1', 5000);
    current = 'hand';
    sync.onWorkerMessage(run('older'));
    sync.onWorkerMessage(run('hand'));
    await expect(answer).resolves.toMatchObject({ result: { revision: 'hand' } });
  });

  it('when the run of the file as it is now is answered while a write is announced but not yet in place, then that write waits for its own run', async () => {
    let current = 'r1';
    const { sync } = service(() => current);
    sync.announce({ revision: 'r1', actor: api, source: 'api' });
    sync.landed('r1');
    // The next write is announced; its rename has not happened when r1's run is answered.
    sync.announce({ revision: 'r2', actor: api, source: 'api' });
    sync.onWorkerMessage(run('r1'));
    await expect(sync.waitForRevision('r1', 5000)).resolves.toMatchObject({ result: { revision: 'r1' } });
    const second = sync.waitForRevision('r2', 5000);
    current = 'r2';
    sync.landed('r2');
    sync.onWorkerMessage(run('r2'));
    await expect(second).resolves.toMatchObject({ result: { revision: 'r2' } });
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

  it('when the worker answers a write before the write starts to wait (a short debounce on a busy machine), then the wait reads that answer', async () => {
    const { sync } = service(() => 'r3');
    sync.announce({ revision: 'r1', actor: api, source: 'api' });
    sync.onWorkerMessage(run('r1'));
    await expect(sync.waitForRevision('r1', 5000)).resolves.toMatchObject({ result: { revision: 'r1' } });
    // One answered by a later write's run, and one superseded by the file as it is now.
    sync.announce({ revision: 'r2', actor: api, source: 'api' });
    sync.announce({ revision: 'r3', actor: api, source: 'api' });
    sync.onWorkerMessage(run('r3'));
    await expect(sync.waitForRevision('r2', 5000)).resolves.toMatchObject({ result: { revision: 'r3' } });
    await expect(sync.waitForRevision('r3', 5000)).resolves.toMatchObject({ result: { revision: 'r3' } });
    // The bytes of r1 written again wait for their own run.
    sync.announce({ revision: 'r1', actor: api, source: 'api' });
    const again = sync.waitForRevision('r1', 5000);
    sync.onWorkerMessage({ type: 'skipped', revision: 'r1', reason: 'applied' });
    await expect(again).resolves.toMatchObject({ result: { revision: 'r1', outcome: 'unchanged' } });
    // A revision no write announced still has nothing to wait for.
    await expectAppError(sync.waitForRevision('r9', 5000), 'INVALID_REQUEST');
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
    expect(logged.map((e) => e.type)).toEqual(['worker.state', 'sync.applied', 'source.invalid', 'sync.rolled_back', 'worker.state']);
    expect(logged.map((e) => e.id)).toEqual([1, 2, 3, 4, 5]);
    expect(logged[1]).toMatchObject({ data: { revision: 'r1', source: 'change', actor: { type: 'file', id: 'file' }, targets: [] } });
    expect(logged[4]).toMatchObject({ data: { state: 'stopped' } });
  });

  it('when a run reloads one service and another does not come back, then service.reloaded and service.unhealthy name each target; a target that failed to render is neither', () => {
    const spec = (name: string, reload: string) => ({ name, reload: parseReload(`target:${name}`, reload) }) as unknown as TargetSpec;
    const { sync, events } = service(
      () => 'r1',
      [spec('gitea', 'docker:restart:websoft9-git'), spec('proxy', 'supervisor:restart:nginx'), spec('tpl', 'none')],
    );
    const outcome = (target: string, fields: Partial<TargetOutcome>): TargetOutcome => ({
      target,
      changed: true,
      writeMode: 'rename',
      reloaded: false,
      healthy: null,
      durationMs: 5,
      error: null,
      state: 'in_sync',
      ...fields,
    });
    sync.onWorkerMessage({
      ...run('r1'),
      result: {
        ...result('r1', 'failed'),
        targets: [
          outcome('gitea', { reloaded: true, healthy: true }),
          outcome('proxy', {
            reloaded: true,
            healthy: false,
            state: 'failed',
            error: { code: 'HEALTH_FAILED', message: 'Health check failed', details: 'nginx exited' },
          }),
          outcome('tpl', { state: 'failed', error: { code: 'RENDER_FAILED', message: 'Render failed', details: 'missing key' } }),
        ],
      },
    });
    const logged = events.read({ after: 0, limit: 10 }).events;
    expect(logged.map((e) => [e.type, e.data])).toEqual([
      ['sync.failed', expect.objectContaining({ revision: 'r1' })],
      ['service.reloaded', { revision: 'r1', target: 'gitea', reload: 'docker restart websoft9-git' }],
      ['service.unhealthy', { revision: 'r1', target: 'proxy', code: 'HEALTH_FAILED', reason: 'nginx exited' }],
    ]);
    // sync.failed names each failed target with its code (the issue's `target, code`), and the ones that applied.
    expect(logged[0]!.data).toEqual({
      revision: 'r1',
      source: 'change',
      actor: { type: 'file', id: 'file' },
      targets: [
        expect.objectContaining({ target: 'gitea', state: 'in_sync', error: null }),
        expect.objectContaining({ target: 'proxy', state: 'failed', error: expect.objectContaining({ code: 'HEALTH_FAILED' }) }),
        expect.objectContaining({ target: 'tpl', state: 'failed', error: expect.objectContaining({ code: 'RENDER_FAILED' }) }),
      ],
    });
  });

  it('when config.ini is invalid at a line, then source.invalid carries the code, the reason and the line', () => {
    const { sync, events } = service(() => 'r1');
    sync.onWorkerMessage({
      type: 'source_invalid',
      revision: 'r2',
      error: { code: 'INI_SYNTAX', message: 'INI syntax error', details: 'line 7: a key outside any section', line: 7 },
    });
    expect(events.read({ after: 0, limit: 10 }).events.map((e) => [e.type, e.data])).toEqual([
      ['source.invalid', { revision: 'r2', code: 'INI_SYNTAX', reason: 'line 7: a key outside any section', line: 7 }],
    ]);
  });

  it('when a run changed nothing, then no event is published; a requested reload is published even then', () => {
    const { sync, events } = service(() => 'r1');
    sync.onWorkerMessage({ ...run('r1'), result: result('r1', 'unchanged') });
    expect(events.lastId()).toBe(0);
    sync.onWorkerMessage({ ...run('r1'), source: 'reload', result: result('r1', 'unchanged') });
    expect(events.read({ after: 0, limit: 10 }).events.map((e) => e.type)).toEqual(['sync.applied']);
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

describe('sync dispatcher automatic rollback', () => {
  const SECRET = 'Rollback-Secret-Pw-91';
  const applied = `[gitea]\nuser_pwd = ${SECRET}\n\n[cockpit]\nport = 9090\n`;
  const failed = `[gitea]\nuser_pwd = ${SECRET}\n\n[cockpit]\nport = 9091\n`;

  /** The dispatcher over a real settings store on a real config.ini; logs kept to be read. */
  function withStore(options: { fileName?: string; keyring?: Keyring } = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'confhub-dispatch-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, options.fileName ?? 'config.ini');
    writeFileSync(path, failed);
    const db = openDatabase({ path: ':memory:' });
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const audit = createAuditLog({ db });
    const settings = createSettingsStore({
      path,
      label: 'config.ini',
      schema: CONFIG_SCHEMA,
      audit,
      logger,
      ...(options.keyring ? { keyring: options.keyring } : {}),
    });
    const events = createEventLog({ db, logger });
    const sync = createSyncDispatcher({
      targets: [],
      runLog: createRunLog({ db, logger }),
      audit,
      settings,
      events,
      metrics: createMetrics(),
      logger,
      worker: { send: () => undefined, alive: () => true, restarts: () => 0 },
    });
    /** Asks main to roll config.ini back (from what the test says failed) and waits for the attempt to end. */
    const rollBack = async ({ text = applied, from = failed }: { text?: string; from?: string } = {}): Promise<void> => {
      sync.onWorkerMessage({ type: 'rollback_config', failedRevision: revisionOf(from), toRevision: revisionOf(applied), text });
      await settings.idle();
      await new Promise((resolve) => setImmediate(resolve));
    };
    return { sync, settings, events, audit, lines, path, rollBack };
  }

  it('when config.ini cannot be written back, then the failure is logged, published and shown in the sync status with the reason, without a secret, until config.ini changes', async () => {
    // root ignores file permissions: the file system refuses the write another way, by a temp file
    // name (config.ini's own plus a suffix) longer than a directory entry may be.
    const { sync, events, audit, lines, path, rollBack } = withStore({ fileName: `${'c'.repeat(240)}.ini` });
    await rollBack();
    expect(readFileSync(path, 'utf8')).toBe(failed);
    const error = { code: 'INTERNAL_ERROR', message: 'Internal error', details: 'config.ini could not be written (ENAMETOOLONG)' };
    expect(sync.status().configRollback).toEqual({
      state: 'failed',
      failedRevision: revisionOf(failed),
      toRevision: revisionOf(applied),
      error,
      at: expect.any(String),
    });
    expect(events.read({ after: 0, limit: 10 }).events).toEqual([
      expect.objectContaining({ type: 'sync.rollback_failed', data: { failedRevision: revisionOf(failed), toRevision: revisionOf(applied), error } }),
    ]);
    expect(lines.filter((l) => l.level >= 50).map((l) => l.msg)).toContain('config.ini could not be rolled back; it still holds the revision that failed');
    expect(audit.query({ limit: 10 })).toEqual([expect.objectContaining({ action: 'settings.rollback', result: 'refused', errorCode: 'INTERNAL_ERROR' })]);
    expect(JSON.stringify([sync.status(), events.read({ after: 0, limit: 10 }), lines])).not.toContain(SECRET);
    // A newer save replaces the failed revision: nothing is left to roll back.
    writeFileSync(path, applied.replace('9090', '9092'));
    expect(sync.status().configRollback).toBeNull();
  });

  it('when the revision to restore holds secrets no master key opens, then the rollback failure says so', async () => {
    const keyring = createKeyring(masterKey(randomBytes(32)));
    const lost = createKeyring(masterKey(randomBytes(32)));
    const { sync, settings, path, rollBack } = withStore({ keyring });
    writeFileSync(path, failed.replace(SECRET, sealValue(keyring, 'gitea.user_pwd', SECRET)));
    const sealedFailed = readFileSync(path, 'utf8');
    await rollBack({ from: sealedFailed, text: applied.replace(SECRET, sealValue(lost, 'gitea.user_pwd', SECRET)) });
    expect(readFileSync(path, 'utf8')).toBe(sealedFailed);
    expect(sync.status().configRollback).toMatchObject({
      failedRevision: revisionOf(sealedFailed),
      error: { code: 'VALIDATION_FAILED', details: expect.stringContaining('no master key opens') },
    });
    expect(JSON.stringify(sync.status())).not.toContain(SECRET);
    // The store is not left stuck: a later save lands, and the failed revision is no longer there.
    await settings.update({ changes: [{ section: 'cockpit', key: 'port', value: '9094' }], actor: { type: 'system', id: 'test' } });
    expect(readFileSync(path, 'utf8')).toContain('port = 9094');
    expect(sync.status().configRollback).toBeNull();
  });

  it('when config.ini was saved again before the rollback could restore it, then the newer save stays and no failure is reported', async () => {
    const { sync, events, path, rollBack } = withStore();
    const newer = applied.replace('9090', '9093');
    writeFileSync(path, newer);
    await rollBack();
    expect(readFileSync(path, 'utf8')).toBe(newer);
    expect(sync.status().configRollback).toBeNull();
    expect(events.lastId()).toBe(0);
  });

  it('when config.ini moved on after a failed rollback and the failed bytes come back later, then the old failure is not shown again', async () => {
    const { sync, path, rollBack } = withStore({ fileName: `${'c'.repeat(240)}.ini` });
    await rollBack();
    expect(sync.status().configRollback).toMatchObject({ failedRevision: revisionOf(failed) });
    const newer = applied.replace('9090', '9095');
    writeFileSync(path, newer);
    sync.onWorkerMessage({ type: 'accepted', revision: revisionOf(newer) });
    writeFileSync(path, failed);
    expect(sync.status().configRollback).toBeNull();
  });

  it('when a rollback that failed is followed by one that succeeds, then the sync status no longer reports a failure', async () => {
    const { sync, path, rollBack } = withStore();
    await rollBack({ text: '[cockpit]\nport = nine\n' });
    expect(sync.status().configRollback).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    await rollBack();
    expect(readFileSync(path, 'utf8')).toBe(applied);
    expect(sync.status().configRollback).toBeNull();
  });
});

describe('sync dispatcher, retries', () => {
  it('when a retry still finds the disk full, then it is neither audited nor published; the retry that writes the file is', () => {
    const db = openDatabase({ path: ':memory:' });
    const logger = pino({ level: 'silent' });
    const audit = createAuditLog({ db });
    const events = createEventLog({ db, logger });
    const sync = createSyncDispatcher({
      targets: [],
      runLog: createRunLog({ db, logger }),
      audit,
      settings: { read: () => ({ revision: 'r1' }) } as unknown as SettingsStore,
      events,
      metrics: createMetrics(),
      logger,
      worker: { send: () => undefined, alive: () => true, restarts: () => 0 },
    });
    const full = { code: 'INSUFFICIENT_STORAGE' as const, message: 'Insufficient Storage', details: 'the disk holding the output of target app is full' };
    const retry = (target: ReconcileResult['targets'][number]) => ({
      type: 'lane' as const,
      lane: 'target:app',
      source: 'retry' as const,
      startedAt: 1,
      finishedAt: 2,
      result: { revision: 'r1', outcome: target.error ? ('failed' as const) : ('applied' as const), rollbackConfig: false, targets: [target] },
    });
    const app = { target: 'app', changed: true, reloaded: false, healthy: null, durationMs: 1 };
    sync.onWorkerMessage(retry({ ...app, writeMode: null, error: full, state: 'pending_write' }));
    expect(audit.query({ limit: 10 })).toEqual([]);
    expect(events.lastId()).toBe(0);
    sync.onWorkerMessage(retry({ ...app, writeMode: 'rename', error: null, state: 'in_sync' }));
    expect(audit.query({ limit: 10 }).map((row) => row.action)).toEqual(['sync.applied']);
    expect(events.read({ after: 0, limit: 10 }).events.map((event) => event.type)).toEqual(['sync.applied']);
  });
});

describe('sync dispatcher, announced authors', () => {
  it('when the worker used the author of a revision, then its announcement on disk is forgotten; one it asks for is answered from disk', () => {
    const db = openDatabase({ path: ':memory:' });
    const logger = pino({ level: 'silent' });
    const announcements = createAnnouncements({ db, logger });
    const sent: MainToWorker[] = [];
    const sync = createSyncDispatcher({
      targets: [],
      announcements,
      runLog: createRunLog({ db, logger }),
      audit: createAuditLog({ db }),
      settings: { read: () => ({ revision: 'r2' }) } as unknown as SettingsStore,
      events: createEventLog({ db, logger }),
      metrics: createMetrics(),
      logger,
      worker: { send: (m) => sent.push(m), alive: () => true, restarts: () => 0 },
    });
    announcements.recordOwn({ revision: 'r1', actor: api, source: 'api' });
    announcements.recordOwn({ revision: 'r2', actor: api, source: 'api' });
    sync.onWorkerMessage({ type: 'author_used', revision: 'r1' });
    sync.onWorkerMessage({ type: 'author_needed', revision: 'r1' });
    sync.onWorkerMessage({ type: 'author_needed', revision: 'r2' });
    expect(sent).toEqual([
      { type: 'author', revision: 'r1', author: null },
      { type: 'author', revision: 'r2', author: { actor: api, source: 'api' } },
    ]);
  });
});
