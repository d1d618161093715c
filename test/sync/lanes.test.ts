import { pino } from 'pino';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { parseIni } from '../../src/ini/document.js';
import { createTargetLanes, type LaneReport, laneNames } from '../../src/sync/lanes.js';
import type { ReconcileRequest } from '../../src/sync/reconcile.js';
import type { ReconcileResult, TargetOutcome } from '../../src/targets/outcome.js';
import type { ReloadAction } from '../../src/targets/target-spec.js';
import { createManualClock } from '../support/manual-clock.js';

const NONE: ReloadAction = { kind: 'none' };
const GIT: ReloadAction = { kind: 'docker_restart', container: { by: 'name', name: 'git' } };

const outcome = (target: string, state: TargetOutcome['state'] = 'in_sync'): TargetOutcome => ({
  target,
  changed: state !== 'pending_reload',
  writeMode: 'rename',
  reloaded: state === 'in_sync',
  healthy: null,
  durationMs: 1,
  error: state === 'in_sync' ? null : { code: state === 'pending_reload' ? 'SERVICE_UNREACHABLE' : 'HEALTH_FAILED', message: 'x', details: 'x' },
  state,
});

interface Call {
  request: ReconcileRequest;
  finish: (states?: Record<string, TargetOutcome['state']>) => void;
}

/** A reconciler whose runs finish only when the test says so. */
function held() {
  const calls: Call[] = [];
  return {
    calls,
    /** The runs of these targets, in call order (finished ones included). */
    open: (target: string) => calls.filter((c) => c.request.only?.includes(target)),
    reconciler: {
      reconcile(request: ReconcileRequest): Promise<ReconcileResult> {
        return new Promise((resolve) => {
          calls.push({
            request,
            finish: (states = {}) => {
              request.onWritten?.();
              const targets = (request.only ?? []).map((t) => outcome(t, states[t] ?? 'in_sync'));
              const failed = targets.some((t) => t.state === 'failed');
              resolve({ revision: request.revision, outcome: failed ? 'failed' : 'applied', rollbackConfig: false, targets });
            },
          });
        });
      },
    },
  };
}

const doc = parseIni('[a]\nx = 1\n');

function lanesFor(targets: { name: string; reload: ReloadAction }[]) {
  const clock = createManualClock();
  const script = held();
  const reports: LaneReport[] = [];
  const lanes = createTargetLanes({
    targets,
    reconciler: script.reconciler,
    clock,
    logger: pino({ level: 'silent' }),
    onReport: (r) => reports.push(r),
    retryBaseMs: 20,
    retryMaxMs: 50,
  });
  return { lanes, script, reports, clock };
}

const submit = (lanes: ReturnType<typeof createTargetLanes>, revision: string) => lanes.submit({ revision, doc, force: false, source: 'change' });
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('target lanes', () => {
  it('when targets share a reload action, then they share a lane; every other target has its own', () => {
    expect([
      ...laneNames([
        { name: 'json', reload: NONE },
        { name: 'ini', reload: GIT },
        { name: 'yaml', reload: NONE },
        { name: 'app', reload: GIT },
      ]).values(),
    ]).toEqual([['json'], ['ini', 'app'], ['yaml']]);
  });

  it('when reload actions differ but reach the same service, then their targets share its lane; only the reload decides', () => {
    const url = (text: string): ReloadAction => ({ kind: 'http', method: 'POST', url: text });
    const lanes = laneNames([
      { name: 'restart', reload: GIT },
      { name: 'hup', reload: { kind: 'docker_signal', signal: 'HUP', container: { by: 'name', name: 'git' } } },
      { name: 'exec', reload: { kind: 'docker_exec', container: { by: 'name', name: 'git' }, command: ['gitea', 'reload'] } },
      { name: 'by-label', reload: { kind: 'docker_restart', container: { by: 'label', label: 'com.docker.compose.service', value: 'git' } } },
      { name: 'label-hup', reload: { kind: 'docker_signal', signal: 'HUP', container: { by: 'label', label: 'com.docker.compose.service', value: 'git' } } },
      { name: 'nginx', reload: { kind: 'supervisor_restart', program: 'nginx' } },
      { name: 'nginx-hup', reload: { kind: 'supervisor_signal', signal: 'HUP', program: 'nginx:nginx' } },
      { name: 'web', reload: { kind: 'supervisor_signal', signal: 'HUP', program: 'web' } },
      { name: 'hook-a', reload: url('http://Hook.local:80/reload/a') },
      { name: 'hook-b', reload: url('http://hook.local/reload/b') },
      { name: 'hook-other', reload: url('http://hook.local:8080/reload') },
      { name: 'moved-a', reload: { kind: 'http', method: 'POST', url: 'http://127.0.0.1:{{ app.port }}/a', templated: true } },
      { name: 'moved-b', reload: { kind: 'http', method: 'POST', url: 'http://u:p@127.0.0.1:{{ app.port }}/b?x=1', templated: true } },
      { name: 'json', reload: NONE },
      { name: 'yaml', reload: NONE },
    ]);
    expect([...lanes]).toEqual([
      ['docker:git', ['restart', 'hup', 'exec']],
      ['docker:label=com.docker.compose.service=git', ['by-label', 'label-hup']],
      ['supervisor:nginx:nginx', ['nginx', 'nginx-hup']],
      ['supervisor:web:web', ['web']],
      ['http:http://hook.local', ['hook-a', 'hook-b']],
      ['http:http://hook.local:8080', ['hook-other']],
      ['http:http://127.0.0.1:{{ app.port }}', ['moved-a', 'moved-b']],
      ['target:json', ['json']],
      ['target:yaml', ['yaml']],
    ]);
  });

  it('when two targets reload one container by different actions, then one lane runs them one revision at a time, never side by side', async () => {
    const { lanes, script } = lanesFor([
      { name: 'ini', reload: GIT },
      { name: 'hup', reload: { kind: 'docker_signal', signal: 'HUP', container: { by: 'name', name: 'git' } } },
    ]);
    submit(lanes, 'r1');
    submit(lanes, 'r2');
    await flush();
    expect(script.calls.map((c) => [c.request.only, c.request.revision])).toEqual([[['ini', 'hup'], 'r1']]);
    script.calls[0]!.finish();
    await flush();
    expect(script.calls.map((c) => [c.request.only, c.request.revision])).toEqual([
      [['ini', 'hup'], 'r1'],
      [['ini', 'hup'], 'r2'],
    ]);
    script.calls[1]!.finish();
    await lanes.idle();
  });

  it("when one lane's service is slow, then another lane applies the revision and reports without waiting for it", async () => {
    const { lanes, script, reports } = lanesFor([
      { name: 'json', reload: NONE },
      { name: 'env', reload: GIT },
    ]);
    const ticket = submit(lanes, 'r1');
    let done = false;
    void ticket.done.then(() => {
      done = true;
    });
    script.open('json')[0]!.finish();
    await flush();
    expect(reports.map((r) => [r.lane, r.revision])).toEqual([['target:json', 'r1']]);
    expect(done).toBe(false);
    script.open('env')[0]!.finish();
    const result = await ticket.done;
    expect(result).toMatchObject({ revision: 'r1', outcome: 'applied' });
    expect(result.targets.map((t) => t.target)).toEqual(['json', 'env']);
  });

  it('when revisions arrive while a lane is busy, then the lane runs only the newest next, the ones it skipped are superseded, and outcomes complete in order', async () => {
    const { lanes, script } = lanesFor([
      { name: 'json', reload: NONE },
      { name: 'env', reload: GIT },
    ]);
    const finished: string[] = [];
    const tickets = ['r1', 'r2', 'r3'].map((r) => {
      const ticket = submit(lanes, r);
      void ticket.done.then(() => finished.push(r));
      return ticket;
    });
    // json ran r1 at once and takes each next revision as it comes; env is still on r1.
    script.open('json')[0]!.finish();
    await flush();
    expect(script.open('json').map((c) => c.request.revision)).toEqual(['r1', 'r3']);
    script.open('json')[1]!.finish();
    await flush();
    expect(finished).toEqual([]);
    script.open('env')[0]!.finish();
    await flush();
    // r2 ran nowhere: on both lanes it was waiting behind r1 when r3 took its place.
    expect(script.calls.map((c) => [c.request.only, c.request.revision])).toEqual([
      [['json'], 'r1'],
      [['env'], 'r1'],
      [['json'], 'r3'],
      [['env'], 'r3'],
    ]);
    expect(finished).toEqual(['r1', 'r2']);
    expect(await tickets[1]!.done).toMatchObject({ revision: 'r2', targets: [], superseded: ['json', 'env'] });
    script.open('env')[1]!.finish();
    expect(await tickets[2]!.done).toMatchObject({ revision: 'r3', outcome: 'applied' });
    expect(finished).toEqual(['r1', 'r2', 'r3']);
  });

  it("when a lane's service cannot be reached, then only that lane is retried, with backoff, and a newer revision takes the retry's place and forces the owed reload", async () => {
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    onTestFinished(() => random.mockRestore());
    const { lanes, script, reports, clock } = lanesFor([
      { name: 'json', reload: NONE },
      { name: 'env', reload: GIT },
    ]);
    submit(lanes, 'r1');
    script.open('json')[0]!.finish();
    script.open('env')[0]!.finish({ env: 'pending_reload' });
    await lanes.idle();
    expect(clock.pendingDue()).toEqual([clock.now() + 10]);
    await clock.advance(10);
    expect(script.calls.at(-1)!.request).toMatchObject({ revision: 'r1', only: ['env'], force: true });
    script.calls.at(-1)!.finish({ env: 'pending_reload' });
    await lanes.idle();
    expect(reports.map((r) => [r.lane, r.source])).toEqual([
      ['target:json', 'change'],
      ['docker:git', 'change'],
      ['docker:git', 'retry'],
    ]);
    // A newer revision runs before the next retry is due: it owes the reload, and it clears the retry.
    submit(lanes, 'r2');
    expect(script.open('env').at(-1)!.request).toMatchObject({ revision: 'r2', force: true });
    script.open('json').at(-1)!.finish();
    script.open('env').at(-1)!.finish();
    await lanes.idle();
    expect(clock.pendingDue()).toEqual([]);
  });

  it('when every lane finished writing, then the revision is written, before any reload ends', async () => {
    const { lanes, script } = lanesFor([
      { name: 'json', reload: NONE },
      { name: 'env', reload: GIT },
    ]);
    const ticket = submit(lanes, 'r1');
    let written = false;
    void ticket.written.then(() => {
      written = true;
    });
    script.open('json')[0]!.finish();
    await flush();
    expect(written).toBe(false);
    // The env lane's files are on disk; its reload still runs.
    script.open('env')[0]!.request.onWritten?.();
    await flush();
    expect(written).toBe(true);
    script.open('env')[0]!.finish();
    await ticket.done;
  });

  it('when the reconcile of one lane throws, then that lane reports a failure and the others are unaffected', async () => {
    const { lanes, script } = lanesFor([
      { name: 'json', reload: NONE },
      { name: 'env', reload: GIT },
    ]);
    const broken = script.reconciler.reconcile;
    script.reconciler.reconcile = (request) => (request.only?.includes('env') ? Promise.reject(new Error('disk on fire')) : broken(request));
    const ticket = submit(lanes, 'r1');
    script.open('json')[0]!.finish();
    const result = await ticket.done;
    expect(result.outcome).toBe('failed');
    expect(result.error).toMatchObject({ code: 'INTERNAL_ERROR' });
    expect(result.targets.map((t) => [t.target, t.state])).toEqual([['json', 'in_sync']]);
  });
});

describe('target lanes, the edges', () => {
  it('when a forced reload waiting on a lane is superseded by a plain change, then the change is run forced', async () => {
    const { lanes, script } = lanesFor([{ name: 'env', reload: GIT }]);
    submit(lanes, 'r1');
    lanes.submit({ revision: 'r1', doc, force: true, source: 'reload' });
    submit(lanes, 'r2');
    script.open('env')[0]!.finish();
    await flush();
    expect(script.open('env').at(-1)!.request).toMatchObject({ revision: 'r2', force: true });
    script.open('env').at(-1)!.finish();
    await lanes.idle();
  });

  it('when reporting a lane result throws, then the lane still runs what waits and becomes idle', async () => {
    const clock = createManualClock();
    const script = held();
    const lanes = createTargetLanes({
      targets: [{ name: 'env', reload: GIT }],
      reconciler: script.reconciler,
      clock,
      logger: pino({ level: 'silent' }),
      onReport: () => {
        throw new Error('the port is closed');
      },
      retryBaseMs: 20,
      retryMaxMs: 50,
    });
    const first = submit(lanes, 'r1');
    const second = submit(lanes, 'r2');
    script.open('env')[0]!.finish();
    await flush();
    script.open('env').at(-1)!.finish();
    await expect(first.done).resolves.toMatchObject({ revision: 'r1' });
    await expect(second.done).resolves.toMatchObject({ revision: 'r2' });
    await lanes.idle();
  });
});
