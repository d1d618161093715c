import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { NO_RESOLVE } from '../../src/settings/resolve.js';
import { WEBSOFT9_DEFAULT_API_KEY } from '../../src/bootstrap/first-boot-secrets.js';
import type { WorkerToMain } from '../../src/sync/protocol.js';
import type { ReconcileRequest } from '../../src/sync/reconcile.js';
import type { ReconcileResult, TargetOutcome } from '../../src/targets/outcome.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { createSyncLoop, type RevisionMeta, type SyncLoopDeps } from '../../src/sync/sync-loop.js';
import { createKeyring, masterKey, sealValue } from '../../src/secrets/secret-box.js';
import { revisionOf } from '../../src/settings/revision.js';
import { randomBytes } from 'node:crypto';
import { createWorkerHost } from '../../src/sync/worker-host.js';
import { DEFAULT_SYNC_SETTINGS } from '../../src/targets/target-spec.js';
import { NO_ENV_DECLARATIONS } from '../../src/targets/env-spec.js';
import { eventually } from '../support/confhub.js';
import { createManualClock } from '../support/manual-clock.js';

let dir: string;
let configPath: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'confhub-loop-'));
  configPath = join(dir, 'config.ini');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const outcome = (state: TargetOutcome['state']): TargetOutcome => ({
  target: 't',
  changed: state !== 'pending_reload',
  writeMode: null,
  reloaded: state === 'in_sync',
  healthy: null,
  durationMs: 1,
  error: state === 'in_sync' ? null : { code: state === 'pending_reload' ? 'SERVICE_UNREACHABLE' : 'HEALTH_FAILED', message: 'x', details: 'x' },
  state,
});

type Step = ReconcileResult['outcome'] | 'pending' | 'failed_pending' | 'throws';

/** A reconciler that answers from a script, one result per call, and records the requests. */
function scripted(results: Step[]) {
  const requests: ReconcileRequest[] = [];
  return {
    requests,
    reconciler: {
      async reconcile(request: ReconcileRequest): Promise<ReconcileResult> {
        requests.push(request);
        const next = results.shift() ?? 'applied';
        if (next === 'throws') throw new Error('disk on fire');
        if (next === 'failed_pending') return { revision: request.revision, outcome: 'failed', rollbackConfig: false, targets: [outcome('pending_reload')] };
        const state = next === 'pending' ? 'pending_reload' : next === 'applied' || next === 'unchanged' ? 'in_sync' : 'failed';
        return {
          revision: request.revision,
          outcome: next === 'pending' ? 'applied' : next,
          rollbackConfig: next === 'rolled_back',
          targets: [outcome(state)],
        };
      },
    },
  };
}

const ONE_TARGET: SyncLoopDeps['targets'] = [{ name: 't', reload: { kind: 'none' } }];

/** The loop, with each read followed until its revision ran on every lane (the tests look at what was posted then). */
function settling(syncLoop: ReturnType<typeof createSyncLoop>) {
  return {
    expect: syncLoop.expect,
    stop: () => syncLoop.stop(),
    async onChange(options?: { startup?: boolean; settled?: boolean }): Promise<void> {
      await syncLoop.onChange(options);
      await syncLoop.idle();
    },
    async reconcileNow(options: Parameters<typeof syncLoop.reconcileNow>[0]): Promise<void> {
      await syncLoop.reconcileNow(options);
      await syncLoop.idle();
    },
  };
}

function loop(results: Parameters<typeof scripted>[0], extra: Partial<SyncLoopDeps> = {}) {
  const messages: WorkerToMain[] = [];
  const script = scripted(results);
  const syncLoop = createSyncLoop({
    configPath,
    schema: CONFIG_SCHEMA,
    targets: ONE_TARGET,
    reconciler: script.reconciler,
    post: (m) => messages.push(m),
    logger: pino({ level: 'silent' }),
    retryBaseMs: 20,
    retryMaxMs: 50,
    ...extra,
  });
  return { syncLoop: settling(syncLoop), messages, requests: script.requests };
}

describe('sync loop', () => {
  it('when the watcher saw the file settle and the file agrees, then it is read once; otherwise it is read until two reads agree', async () => {
    writeFileSync(configPath, '[cockpit]\nport = 9090\n');
    const reads: string[] = [];
    let writeAfterFirstRead: string | undefined;
    const readConfig = async (path: string): Promise<Buffer> => {
      const bytes = await readFile(path);
      reads.push(bytes.toString('utf8'));
      // A writer still at work: the file changes right after the first read.
      if (writeAfterFirstRead !== undefined) {
        writeFileSync(configPath, writeAfterFirstRead);
        writeAfterFirstRead = undefined;
      }
      return bytes;
    };
    /** Written with this modification time (ms since the epoch). */
    const writeAt = (text: string, mtimeMs: number): void => {
      writeFileSync(configPath, text);
      utimesSync(configPath, new Date(mtimeMs), new Date(mtimeMs));
    };
    /** What one run read, and that it ran what it read last. */
    const runOnce = async (options: { settled: boolean }): Promise<string[]> => {
      reads.length = 0;
      await syncLoop.onChange(options);
      return [...reads];
    };
    const { syncLoop, requests } = loop([], { readConfig });
    await syncLoop.onChange({ startup: true });
    // At start nothing says the file is settled.
    expect(reads).toHaveLength(2);
    const text = (port: string): string => `[cockpit]\nport = ${port}\n`;
    /** About 1.9 s ago, and never on a whole second. */
    const past = (): number => Math.floor(Date.now() / 1000) * 1000 - 1877;

    // Settled, last changed 1.9 s ago by a clock finer than seconds: one read.
    writeAt(text('9091'), past());
    expect(await runOnce({ settled: true })).toEqual([text('9091')]);
    // The writer changed the file during the read (the watcher missed it: chokidar drops events).
    writeAt(text('9092'), past());
    writeAfterFirstRead = `${text('9093')}# done\n`;
    expect(await runOnce({ settled: true })).toEqual([text('9092'), `${text('9093')}# done\n`, `${text('9093')}# done\n`]);
    // The file says it changed a moment ago (here: in the future, so it is never old enough).
    writeAt(text('9094'), Date.now() + 60_000);
    expect(await runOnce({ settled: true })).toEqual([text('9094'), text('9094')]);
    // An mtime of whole seconds (FAT, some network mounts) cannot say the last milliseconds were quiet.
    writeAt(text('9095'), Math.floor(Date.now() / 1000) * 1000 - 5000);
    expect(await runOnce({ settled: true })).toEqual([text('9095'), text('9095')]);
    // Not settled (the poll, a flush, the maximum delay): read until two reads agree.
    writeAt(text('9096'), past());
    writeAfterFirstRead = text('9097');
    expect(await runOnce({ settled: false })).toEqual([text('9096'), text('9097'), text('9097')]);
    // The half-written files never ran: only what the writer finished did.
    expect(requests.map((r) => r.revision)).toEqual(
      [text('9090'), text('9091'), `${text('9093')}# done\n`, text('9094'), text('9095'), text('9097')].map((t) => revisionOf(t)),
    );
    await syncLoop.stop();
  });

  it('when a service cannot be reached, then its targets are retried on their own, with backoff, until they are in sync', async () => {
    writeFileSync(configPath, '[cockpit]\nport = 9090\n');
    const clock = createManualClock();
    // The jitter draws the middle of its range, [0, 20) ms for the first retry and [0, 40) ms for the second.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    onTestFinished(() => random.mockRestore());
    const { syncLoop, messages, requests } = loop(['pending', 'pending', 'applied'], { clock });
    await syncLoop.onChange({ startup: true });
    expect(requests).toHaveLength(1);
    expect(clock.pendingDue()).toEqual([clock.now() + 10]);
    await clock.advance(9);
    expect(requests).toHaveLength(1);
    await clock.advance(1);
    expect(requests).toHaveLength(2);
    expect(clock.pendingDue()).toEqual([clock.now() + 20]);
    await clock.advance(20);
    expect(requests).toHaveLength(3);
    expect(requests.slice(1).map((r) => [r.force, r.only])).toEqual([
      [true, ['t']],
      [true, ['t']],
    ]);
    // A retry is a lane result, not a run of its revision: the revision's outcome stays its own.
    expect(messages.filter((m) => m.type === 'run').map((m) => (m.type === 'run' ? m.source : ''))).toEqual(['startup']);
    expect(messages.filter((m) => m.type === 'lane').map((m) => (m.type === 'lane' ? m.source : ''))).toEqual(['startup', 'retry', 'retry']);
    // In sync: nothing is left to retry.
    expect(clock.pendingDue()).toEqual([]);
    await clock.advance(60_000);
    expect(requests).toHaveLength(3);
    await syncLoop.stop();
  });

  it('when a revision failed, then the same content is not run again, a new content is, and an explicit reconcile is', async () => {
    writeFileSync(configPath, '[cockpit]\nport = 9090\n');
    const { syncLoop, messages, requests } = loop(['applied', 'rolled_back', 'applied', 'applied']);
    await syncLoop.onChange({ startup: true });
    const good = '[cockpit]\nport = 9090\n';
    writeFileSync(configPath, '[cockpit]\nport = 9091\n');
    await syncLoop.onChange();
    expect(messages.find((m) => m.type === 'rollback_config')).toMatchObject({ text: good });
    await syncLoop.onChange();
    expect(requests.length).toBe(2);
    await syncLoop.reconcileNow({ requestId: 'req-1', force: false });
    expect(requests.length).toBe(3);
    writeFileSync(configPath, '[cockpit]\nport = 9092\n');
    await syncLoop.onChange();
    expect(requests.length).toBe(4);
    await syncLoop.stop();
  });

  it('when a rolled-back change is made again after config.ini went back, then it runs again', async () => {
    const good = '[cockpit]\nport = 9090\n';
    const bad = '[cockpit]\nport = 9091\n';
    writeFileSync(configPath, good);
    const { syncLoop, messages, requests } = loop(['applied', 'rolled_back', 'applied']);
    await syncLoop.onChange({ startup: true });
    writeFileSync(configPath, bad);
    await syncLoop.onChange();
    writeFileSync(configPath, good);
    await syncLoop.onChange();
    expect(messages.filter((m) => m.type === 'skipped')).toEqual([{ type: 'skipped', revision: requests[0]!.revision, reason: 'applied' }]);
    writeFileSync(configPath, bad);
    await syncLoop.onChange();
    expect(requests.map((r) => r.revision)).toEqual([requests[0]!.revision, requests[1]!.revision, requests[1]!.revision]);
    await syncLoop.stop();
  });

  it('when a revision failed under keep and config.ini returns to the last applied one, then it runs again (some targets hold the failed one)', async () => {
    const good = '[cockpit]\nport = 9090\n';
    writeFileSync(configPath, good);
    const { syncLoop, messages, requests } = loop(['applied', 'failed', 'applied']);
    await syncLoop.onChange({ startup: true });
    writeFileSync(configPath, '[cockpit]\nport = 9091\n');
    await syncLoop.onChange();
    writeFileSync(configPath, good);
    await syncLoop.onChange();
    expect(messages.filter((m) => m.type === 'skipped')).toEqual([]);
    expect(requests.map((r) => r.revision)).toEqual([requests[0]!.revision, requests[1]!.revision, requests[0]!.revision]);
    await syncLoop.stop();
  });

  it('when a reload stays pending after a revision failed under keep, then the retry uses that revision, not the last applied one', async () => {
    writeFileSync(configPath, '[cockpit]\nport = 9090\n');
    const clock = createManualClock();
    const { syncLoop, requests } = loop(['applied', 'failed_pending', 'applied'], { clock });
    await syncLoop.onChange({ startup: true });
    writeFileSync(configPath, '[cockpit]\nport = 9091\n');
    await syncLoop.onChange();
    expect(requests).toHaveLength(2);
    await clock.advance(20);
    expect(requests).toHaveLength(3);
    expect(requests[2]).toMatchObject({ revision: requests[1]!.revision, only: ['t'], force: true });
    await syncLoop.stop();
  });

  it('when the reconcile throws, then a failed run is reported and the loop keeps working', async () => {
    writeFileSync(configPath, '[cockpit]\nport = 9090\n');
    const { syncLoop, messages, requests } = loop(['throws', 'applied']);
    await syncLoop.onChange({ startup: true });
    const failed = messages.find((m) => m.type === 'run');
    expect(failed).toMatchObject({ result: { outcome: 'failed', targets: [], error: { code: 'INTERNAL_ERROR' } } });
    writeFileSync(configPath, '[cockpit]\nport = 9091\n');
    await syncLoop.onChange();
    expect(requests.length).toBe(2);
    await syncLoop.stop();
  });

  /** A sync loop of ONE_TARGET over `reconciler`, posting into `messages`. */
  const leakyLoop = (reconciler: { reconcile(request: ReconcileRequest): Promise<ReconcileResult> }, messages: WorkerToMain[]) =>
    settling(
      createSyncLoop({
        configPath,
        schema: CONFIG_SCHEMA,
        targets: ONE_TARGET,
        reconciler,
        post: (m) => messages.push(m),
        logger: pino({ level: 'silent' }),
      }),
    );

  it('when a target error quotes a secret of the file, then the posted result has it masked', async () => {
    writeFileSync(configPath, '[gitea]\nuser_pwd = Very-Secret-Pw-123\n');
    const messages: WorkerToMain[] = [];
    const leaky = {
      async reconcile(request: ReconcileRequest): Promise<ReconcileResult> {
        const error = { code: 'CHECK_FAILED' as const, message: 'Check failed', details: 'line 3: PASSWD = Very-Secret-Pw-123 is rejected' };
        return { revision: request.revision, outcome: 'failed', rollbackConfig: false, targets: [{ ...outcome('failed'), error }] };
      },
    };
    const syncLoop = leakyLoop(leaky, messages);
    await syncLoop.onChange({ startup: true });
    const posted = JSON.stringify(messages);
    expect(posted).not.toContain('Very-Secret-Pw-123');
    expect(posted).toContain('PASSWD = ****** is rejected');
    await syncLoop.stop();
  });

  it('when a target error quotes the secret of the revision applied before, then it is masked too (a check reads files this one did not rewrite)', async () => {
    writeFileSync(configPath, '[gitea]\nuser_pwd = Old-Secret-Pw-123\n');
    const messages: WorkerToMain[] = [];
    let calls = 0;
    const leaky = {
      async reconcile(request: ReconcileRequest): Promise<ReconcileResult> {
        if (calls++ === 0) return { revision: request.revision, outcome: 'applied', rollbackConfig: false, targets: [outcome('in_sync')] };
        const error = { code: 'CHECK_FAILED' as const, message: 'Check failed', details: 'include.conf: PASSWD = Old-Secret-Pw-123 does not match' };
        return { revision: request.revision, outcome: 'failed', rollbackConfig: false, targets: [{ ...outcome('failed'), error }] };
      },
    };
    const syncLoop = leakyLoop(leaky, messages);
    await syncLoop.onChange({ startup: true });
    writeFileSync(configPath, '[gitea]\nuser_pwd = New-Secret-Pw-456\n');
    await syncLoop.onChange();
    const posted = JSON.stringify(messages);
    expect(posted).toContain('PASSWD = ****** does not match');
    expect(posted).not.toContain('Old-Secret-Pw-123');
    await syncLoop.stop();
  });

  it('when config.ini is not valid UTF-8, then it is reported invalid like the API does', async () => {
    writeFileSync(configPath, Buffer.from([0x5b, 0x61, 0x5d, 0x0a, 0x6b, 0x20, 0x3d, 0x20, 0xff, 0x0a]));
    const { syncLoop, messages, requests } = loop([]);
    await syncLoop.onChange({ startup: true });
    expect(messages).toEqual([
      { type: 'source_invalid', revision: '', error: expect.objectContaining({ code: 'CONFIG_INVALID', details: 'config.ini is not valid UTF-8' }) },
    ]);
    expect(requests).toEqual([]);
    await syncLoop.stop();
  });

  it('when the file is invalid, then nothing is reconciled and it is reported once per content', async () => {
    writeFileSync(configPath, '[cockpit]\nport = nine\n');
    const { syncLoop, messages, requests } = loop([]);
    await syncLoop.onChange({ startup: true });
    await syncLoop.onChange();
    const invalid = messages.filter((m) => m.type === 'source_invalid');
    expect(invalid).toHaveLength(1);
    expect(invalid[0]).toMatchObject({ error: { code: 'CONFIG_INVALID', details: 'cockpit.port must be an integer from 1 to 65535' } });
    expect(requests).toEqual([]);
    writeFileSync(configPath, '[cockpit]\nport = 9090\n');
    await syncLoop.onChange();
    expect(requests.length).toBe(1);
    await syncLoop.stop();
  });

  it('when changes are announced by the API, then their runs carry that actor; others are the file', async () => {
    writeFileSync(configPath, '[cockpit]\nport = 9090\n');
    const { syncLoop, messages } = loop([]);
    const { revisionOf } = await import('../../src/settings/revision.js');
    syncLoop.expect(revisionOf('[cockpit]\nport = 9090\n'), { actor: { type: 'api', id: 'key:abc' }, source: 'api' });
    await syncLoop.onChange({ startup: true });
    writeFileSync(configPath, '[cockpit]\nport = 9091\n');
    await syncLoop.onChange();
    const actors = messages.flatMap((m) => (m.type === 'run' ? [m.actor.id] : []));
    expect(actors).toEqual(['key:abc', 'file']);
    await syncLoop.stop();
  });
});

describe('sync loop with lanes', () => {
  const TWO: SyncLoopDeps['targets'] = [
    { name: 'json', reload: { kind: 'none' } },
    { name: 'env', reload: { kind: 'supervisor_restart', program: 'env' } },
  ];

  /** Runs finish when the test says, with the outcome it says. */
  function heldLoop() {
    const messages: WorkerToMain[] = [];
    const open: { request: ReconcileRequest; finish: (o?: 'applied' | 'rolled_back') => void }[] = [];
    const syncLoop = createSyncLoop({
      configPath,
      schema: CONFIG_SCHEMA,
      targets: TWO,
      reconciler: {
        reconcile: (request) =>
          new Promise<ReconcileResult>((resolve) => {
            const entry = {
              request,
              finish: (o: 'applied' | 'rolled_back' = 'applied') => {
                open.splice(open.indexOf(entry), 1);
                const target = request.only![0]!;
                resolve({
                  revision: request.revision,
                  outcome: o,
                  rollbackConfig: o === 'rolled_back',
                  targets: [{ ...outcome(o === 'applied' ? 'in_sync' : 'failed'), target }],
                });
              },
            };
            open.push(entry);
          }),
      },
      post: (m) => messages.push(m),
      logger: pino({ level: 'silent' }),
    });
    const run = (target: string) => open.find((o) => o.request.only?.includes(target))!;
    return { syncLoop, messages, run };
  }

  it('when a save is invalid while a lane is busy, then it is reported at once', async () => {
    writeFileSync(configPath, '[cockpit]\nport = 9090\n');
    const { syncLoop, messages, run } = heldLoop();
    await syncLoop.onChange({ startup: true });
    run('json').finish();
    writeFileSync(configPath, '[cockpit\n');
    await syncLoop.onChange();
    expect(messages.filter((m) => m.type === 'source_invalid')).toHaveLength(1);
    run('env').finish();
    await syncLoop.stop();
  });

  it('when a lane fails a revision under rollback while an older one still runs elsewhere, then the rollback is asked as soon as that older one is done, not after the failing revision ends everywhere', async () => {
    const r0 = '[cockpit]\nport = 9090\n';
    const r1 = '[cockpit]\nport = 9091\n';
    const r2 = '[cockpit]\nport = 9092\n';
    writeFileSync(configPath, r0);
    const { syncLoop, messages, run } = heldLoop();
    await syncLoop.onChange({ startup: true });
    run('json').finish();
    run('env').finish();
    await syncLoop.idle();
    writeFileSync(configPath, r1);
    await syncLoop.onChange();
    run('json').finish();
    writeFileSync(configPath, r2);
    await syncLoop.onChange();
    // json fails r2 while env is still on r1: r1's outcome is not known, so neither is what to return to.
    run('json').finish('rolled_back');
    await new Promise((resolve) => setImmediate(resolve));
    expect(messages.filter((m) => m.type === 'rollback_config')).toEqual([]);
    run('env').finish();
    await new Promise((resolve) => setImmediate(resolve));
    // r1 is done everywhere: config.ini goes back to it while env has not even started r2.
    expect(run('env').request.revision).toBe(revisionOf(r2));
    await vi.waitFor(() => expect(messages.filter((m) => m.type === 'rollback_config')).toHaveLength(1));
    expect(messages.find((m) => m.type === 'rollback_config')).toMatchObject({ failedRevision: revisionOf(r2), toRevision: revisionOf(r1) });
    run('env').finish();
    await syncLoop.stop();
  });

  it('when the same bad content is saved again after its rollback, then it is rolled back again', async () => {
    const good = '[cockpit]\nport = 9090\n';
    const bad = '[cockpit]\nport = 9091\n';
    writeFileSync(configPath, good);
    const { syncLoop, messages, run } = heldLoop();
    await syncLoop.onChange({ startup: true });
    run('json').finish();
    run('env').finish();
    for (const text of [bad, good, bad]) {
      await syncLoop.idle();
      writeFileSync(configPath, text);
      await syncLoop.onChange();
      run('json').finish(text === bad ? 'rolled_back' : 'applied');
      run('env').finish();
    }
    await syncLoop.idle();
    expect(messages.filter((m) => m.type === 'rollback_config').map((m) => (m.type === 'rollback_config' ? m.failedRevision : ''))).toEqual([
      revisionOf(bad),
      revisionOf(bad),
    ]);
    await syncLoop.stop();
  });

  it('when a valid revision is read, then main is told at once (an invalid save before it is over), whatever still runs', async () => {
    writeFileSync(configPath, '[cockpit]\nport = 9090\n');
    const { syncLoop, messages, run } = heldLoop();
    await syncLoop.onChange({ startup: true });
    expect(messages.map((m) => m.type)).toContain('accepted');
    run('json').finish();
    run('env').finish();
    await syncLoop.stop();
  });

  it('when a hand edit writes the publicly known Websoft9 key, then the source is invalid with its line and the reason, and nothing runs', async () => {
    const { syncLoop, messages, requests } = loop([]);
    writeFileSync(configPath, '[cockpit]\nport = 9090\n');
    await syncLoop.onChange({ startup: true });
    writeFileSync(configPath, `[cockpit]\nport = 9090\n\n[api_key]\nkey = ${WEBSOFT9_DEFAULT_API_KEY.toUpperCase()}\n`);
    await syncLoop.onChange();
    expect(messages.find((m) => m.type === 'source_invalid')).toMatchObject({
      error: { code: 'CONFIG_INVALID', line: 5, details: expect.stringContaining('api_key.key is the publicly known Websoft9 default key') },
    });
    expect(requests).toHaveLength(1);
    await syncLoop.stop();
  });

  it('when an invalid save is undone while its revision still runs, then main is told the source is valid again', async () => {
    const good = '[cockpit]\nport = 9090\n';
    writeFileSync(configPath, good);
    const { syncLoop, messages, run } = heldLoop();
    await syncLoop.onChange({ startup: true });
    writeFileSync(configPath, '[cockpit]\nport = not a port\n');
    await syncLoop.onChange();
    writeFileSync(configPath, good);
    messages.length = 0;
    // The lanes still hold the first run (a slow restart): the same content read again is not run twice.
    await syncLoop.onChange();
    expect(messages).toEqual([{ type: 'accepted', revision: revisionOf(good) }]);
    run('json').finish();
    run('env').finish();
    await syncLoop.stop();
  });

  it('when a rollback-policy lane fails, then config.ini goes back to the newest revision every lane applied, not one a lane skipped', async () => {
    const r0 = '[cockpit]\nport = 9090\n';
    writeFileSync(configPath, r0);
    const { syncLoop, messages, run } = heldLoop();
    await syncLoop.onChange({ startup: true });
    run('json').finish();
    // env is still on r0 while r1 and r2 arrive: it skips r1.
    writeFileSync(configPath, '[cockpit]\nport = 9091\n');
    await syncLoop.onChange();
    run('json').finish();
    writeFileSync(configPath, '[cockpit]\nport = 9092\n');
    await syncLoop.onChange();
    run('json').finish();
    run('env').finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(run('env').request.revision).toBe(revisionOf('[cockpit]\nport = 9092\n'));
    run('env').finish('rolled_back');
    await syncLoop.idle();
    expect(messages.filter((m) => m.type === 'rollback_config')).toEqual([
      expect.objectContaining({ failedRevision: revisionOf('[cockpit]\nport = 9092\n'), toRevision: revisionOf(r0), text: r0 }),
    ]);
    const runs = messages.filter((m) => m.type === 'run').map((m) => (m.type === 'run' ? [m.result.outcome, m.result.superseded ?? []] : []));
    // r1 ran only on json (env went past it): its outcome says so.
    expect(runs).toEqual([
      ['applied', []],
      ['applied', ['env']],
      ['rolled_back', []],
    ]);
    await syncLoop.stop();
  });
});

describe('sync loop with sealed secrets and history', () => {
  const keyring = createKeyring(masterKey(randomBytes(32)));
  const sealed = (value: string): string => sealValue(keyring, 'gitea.user_pwd', value);

  function recording() {
    const commits: { revision: string; meta: RevisionMeta; password: string | undefined }[] = [];
    const record: SyncLoopDeps['record'] = async (revision, meta) => {
      commits.push({ revision: revision.revision, meta, password: revision.doc.byName.get('gitea')?.byKey.get('user_pwd')?.value });
      return `c${commits.length}`;
    };
    return { commits, record };
  }

  it('when a sealed value opens, then the renderers get the plaintext and the revision is committed with its announced author', async () => {
    const text = `[gitea]\nuser_pwd = ${sealed('Opened-Pass-1')}\n`;
    writeFileSync(configPath, text);
    const { commits, record } = recording();
    const { syncLoop, messages, requests } = loop([], { keyring, record });
    syncLoop.expect(revisionOf(text), { actor: { type: 'api', id: 'key:abc' }, source: 'api' });
    await syncLoop.onChange();
    expect(requests[0]!.doc.byName.get('gitea')!.byKey.get('user_pwd')!.value).toBe('Opened-Pass-1');
    expect(commits).toEqual([{ revision: revisionOf(text), meta: { actor: { type: 'api', id: 'key:abc' }, source: 'api' }, password: 'Opened-Pass-1' }]);
    expect(messages.find((m) => m.type === 'run')).toMatchObject({ commit: 'c1' });
    await syncLoop.stop();
  });

  it('when a revision announced in memory is committed, then main hears its announcement is used; at a start, the author of an unannounced revision is asked for', async () => {
    const api = { actor: { type: 'api' as const, id: 'key:abc' }, source: 'api' as const };
    const first = '[cockpit]\nport = 9090\n';
    writeFileSync(configPath, first);
    const asked: string[] = [];
    const { commits, record } = recording();
    const askAuthor = async (revision: string): Promise<RevisionMeta | undefined> => {
      asked.push(revision);
      return api;
    };
    // A start after a kill -9: the file holds a write confhub made just before, announced on disk only.
    const started = loop([], { keyring, record, askAuthor });
    await started.syncLoop.onChange({ startup: true });
    expect(asked).toEqual([revisionOf(first)]);
    expect(commits.map((c) => c.meta)).toEqual([api]);
    expect(started.messages.filter((m) => m.type === 'author_used')).toEqual([]);
    await started.syncLoop.stop();

    const second = '[cockpit]\nport = 9091\n';
    writeFileSync(configPath, second);
    const running = loop([], { keyring, record, askAuthor });
    running.syncLoop.expect(revisionOf(second), api);
    await running.syncLoop.onChange();
    expect(asked).toHaveLength(1);
    expect(commits.map((c) => c.meta)).toEqual([api, api]);
    expect(running.messages.filter((m) => m.type === 'author_used')).toEqual([{ type: 'author_used', revision: revisionOf(second) }]);
    await running.syncLoop.stop();
  });

  it('when a sealed value does not open, then the revision fails with SECRET_UNREADABLE naming the key, nothing is rendered or committed', async () => {
    const value = sealed('Opened-Pass-2');
    writeFileSync(configPath, `[gitea]\nuser_pwd = ${value.slice(0, -4)}AAAA\n`);
    const { commits, record } = recording();
    const { syncLoop, messages, requests } = loop([], { keyring, record });
    await syncLoop.onChange();
    await syncLoop.onChange();
    expect(requests).toHaveLength(0);
    expect(commits).toHaveLength(0);
    const runs = messages.filter((m) => m.type === 'run');
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ result: { outcome: 'failed', error: { code: 'SECRET_UNREADABLE', details: expect.stringContaining('gitea.user_pwd') } } });
    await syncLoop.stop();
  });

  it('when a password is typed in plain text, then main is asked once to seal it, and only the sealed revision is committed and applied', async () => {
    writeFileSync(configPath, '[gitea]\nuser_pwd = Typed-Pass-3\n');
    const { commits, record } = recording();
    const { syncLoop, messages, requests } = loop([], { keyring, record });
    await syncLoop.onChange();
    await syncLoop.onChange();
    expect(requests).toHaveLength(0);
    expect(commits).toHaveLength(0);
    expect(messages.filter((m) => m.type === 'seal_needed')).toHaveLength(1);
    expect(messages.filter((m) => m.type === 'run' || m.type === 'skipped')).toHaveLength(0);
    writeFileSync(configPath, `[gitea]\nuser_pwd = ${sealed('Typed-Pass-3')}\n`);
    await syncLoop.onChange();
    expect(requests[0]!.doc.byName.get('gitea')!.byKey.get('user_pwd')!.value).toBe('Typed-Pass-3');
    expect(commits).toHaveLength(1);
    expect(commits[0]).toMatchObject({ meta: { actor: { type: 'file', id: 'file' }, source: 'file' }, password: 'Typed-Pass-3' });
    await syncLoop.stop();
  });
});

describe('sync loop with a slow history', () => {
  it('when config.ini returns to the applied revision while its commit is slow, then a following invalid save is reported before the commit ends', async () => {
    const good = '[cockpit]\nport = 9090\n';
    writeFileSync(configPath, good);
    const messages: WorkerToMain[] = [];
    let calls = 0;
    let release!: () => void;
    let holding!: () => void;
    const held = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const syncLoop = createSyncLoop({
      configPath,
      schema: CONFIG_SCHEMA,
      targets: ONE_TARGET,
      reconciler: scripted([]).reconciler,
      post: (m) => messages.push(m),
      logger: pino({ level: 'silent' }),
      // The first commit is quick; the second waits until the test releases it.
      record: async () => {
        calls++;
        if (calls === 1) return 'c1';
        holding();
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return `c${calls}`;
      },
    });
    await syncLoop.onChange({ startup: true });
    await syncLoop.idle();
    // config.ini read again as it is (the same revision): its commit starts and is held.
    const reread = syncLoop.onChange();
    await held;
    writeFileSync(configPath, '[cockpit]\nport = nine\n');
    await syncLoop.onChange();
    const after = messages.slice(messages.findIndex((m) => m.type === 'run') + 1);
    expect(after.map((m) => m.type)).toEqual(['accepted', 'source_invalid']);
    release();
    await reread;
    await syncLoop.idle();
    expect(messages.slice(messages.findIndex((m) => m.type === 'run') + 1)).toEqual([
      { type: 'accepted', revision: revisionOf(good) },
      expect.objectContaining({ type: 'source_invalid' }),
      { type: 'skipped', revision: revisionOf(good), reason: 'applied', commit: 'c2' },
    ]);
    await syncLoop.stop();
  }, 10_000);
});

describe('sync loop with plain text secrets', () => {
  const keyring = createKeyring(masterKey(randomBytes(32)));

  it('when the same plain text is typed again after other revisions, then main is asked to seal it again', async () => {
    const { syncLoop, messages } = loop([], { keyring });
    writeFileSync(configPath, '[gitea]\nuser_pwd = Typed-Pass-4\n');
    await syncLoop.onChange();
    writeFileSync(configPath, `[gitea]\nuser_pwd = ${sealValue(keyring, 'gitea.user_pwd', 'Typed-Pass-4')}\n`);
    await syncLoop.onChange();
    writeFileSync(configPath, '[gitea]\nuser_pwd = Typed-Pass-4\n');
    await syncLoop.onChange();
    expect(messages.filter((m) => m.type === 'seal_needed')).toHaveLength(2);
    await syncLoop.stop();
  });

  it('when a reload is asked for while plain text waits to be sealed, then it is answered as not yet valid and nothing runs', async () => {
    const { syncLoop, messages, requests } = loop([], { keyring });
    writeFileSync(configPath, '[gitea]\nuser_pwd = Typed-Pass-5\n');
    await syncLoop.reconcileNow({ requestId: 'req-1', force: true });
    expect(requests).toHaveLength(0);
    expect(messages.find((m) => m.type === 'source_invalid')).toMatchObject({
      requestId: 'req-1',
      revision: '',
      error: { details: expect.stringContaining('being sealed') },
    });
    await syncLoop.stop();
  });
});

describe('worker host', () => {
  it('when the worker dies, then it is restarted with backoff and the restarts are counted', async () => {
    // No master key to open config.ini with: the worker fails at start every time.
    const exits: number[] = [];
    let starts = 0;
    const clock = createManualClock();
    const host = createWorkerHost({
      init: {
        configPath,
        dataDir: dir,
        configDir: dir,
        logLevel: 'silent',
        logFormat: 'json',
        masterKeys: [],
        historyDir: join(dir, 'history.git'),
        sync: { settings: DEFAULT_SYNC_SETTINGS, targets: [], paths: { outputRoots: [dir], templateRoots: [dir], own: [] }, env: NO_ENV_DECLARATIONS },
        resolve: NO_RESOLVE,
      },
      initAtStart: () => {
        starts++;
        return {};
      },
      logger: pino({ level: 'silent' }),
      onMessage: () => undefined,
      onExit: ({ restarts }) => exits.push(restarts),
      restartBaseMs: 20,
      restartMaxMs: 40,
      clock,
    });
    host.start();
    await eventually('the worker stopped', () => exits.length === 1, 20_000);
    // The first restart waits restart_base exactly (the floor under the jitter), and not a moment less.
    expect(clock.pendingDue()).toEqual([clock.now() + 20]);
    await clock.advance(19);
    expect(starts).toBe(1);
    await clock.advance(1);
    expect(starts).toBe(2);
    await eventually('the restarted worker stopped', () => exits.length === 2, 20_000);
    const [next] = clock.pendingDue();
    expect(next! - clock.now()).toBeGreaterThanOrEqual(20);
    expect(next! - clock.now()).toBeLessThan(40);
    expect(exits).toEqual([1, 2]);
    expect(host.restarts()).toBe(2);
    // A restart still waiting is cancelled by stop().
    await host.stop();
    expect(clock.pendingDue()).toEqual([]);
    await clock.advance(40);
    expect(starts).toBe(2);
  }, 30_000);
});
