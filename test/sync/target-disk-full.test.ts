/**
 * A target whose disk is full: the file cannot be written (ENOSPC), which is no fault of the
 * revision. The target waits as `pending_write`, nothing is rolled back, and its lane tries again
 * with backoff on the injected clock until space returns, without a reload being asked for. The
 * disk is a real tmpfs filled up when this runs as root, simulated at the atomic writer otherwise
 * (see test/support/full-disk.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { parseIni } from '../../src/ini/document.js';
import type { ReloadActions } from '../../src/reload/reload-actions.js';
import { createTargetLanes, type LaneReport } from '../../src/sync/lanes.js';
import { createReconciler } from '../../src/sync/reconcile.js';
import type { TargetSpec } from '../../src/targets/target-spec.js';
import { fullDisk } from '../support/full-disk.js';
import { createManualClock } from '../support/manual-clock.js';
import { tempDirs } from '../support/temp-dirs.js';

vi.mock('../../src/fs/atomic-write.js', async (importOriginal) => {
  const { withSimulatedFullDisks } = await import('../support/full-disk.js');
  return withSimulatedFullDisks(await importOriginal<typeof import('../../src/fs/atomic-write.js')>());
});

const tempDir = tempDirs('confhub-target-full-');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function recordingActions() {
  const calls: string[] = [];
  const actions: ReloadActions = {
    describe: () => 'app',
    async reload() {
      calls.push('reload');
      return { reloaded: true };
    },
    async verify() {
      calls.push('verify');
    },
    async runCheck() {
      calls.push('check');
    },
  };
  return { actions, calls };
}

describe('a target on a full disk', () => {
  it('when its file cannot be written for lack of space, then it is pending_write, nothing is rolled back, and it is retried with backoff until space returns, without reloading its service meanwhile', async () => {
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    onTestFinished(() => random.mockRestore());
    const disk = fullDisk(join(tempDir(), 'volume'));
    cleanups.push(() => disk.close());
    const output = join(disk.dir, 'app', 'app.json');
    const spec: TargetSpec = {
      name: 'app',
      sections: ['app'],
      format: 'json',
      output,
      write: 'rename',
      mode: 0o600,
      reload: { kind: 'docker_restart', container: { by: 'name', name: 'app' } },
      health: { kind: 'auto' },
      timeoutMs: 1000,
      onFailure: 'rollback',
    };
    // Another file of the same service, on a disk with room: its lane is the same.
    const siblingDir = tempDir();
    const sibling: TargetSpec = { ...spec, name: 'sibling', output: join(siblingDir, 'sibling.json') };
    const { actions, calls } = recordingActions();
    const reconciler = createReconciler({
      targets: [spec, sibling],
      actions,
      render: (_target, input) => `${JSON.stringify(Object.fromEntries(input.sections[0]!.values))}\n`,
      readTemplate: async () => '',
      logger: pino({ level: 'silent' }),
      paths: { outputRoots: [disk.dir, siblingDir], own: [] },
    });
    const clock = createManualClock();
    const reports: LaneReport[] = [];
    const lanes = createTargetLanes({
      targets: [spec, sibling],
      reconciler,
      clock,
      logger: pino({ level: 'silent' }),
      onReport: (report) => reports.push(report),
      retryBaseMs: 1000,
      retryMaxMs: 60_000,
    });
    cleanups.push(() => lanes.stop());
    disk.fill();

    const ticket = lanes.submit({ revision: 'r1', doc: parseIni('[app]\nport = 8080\n'), force: false, source: 'change' });
    const result = await ticket.done;
    expect(result).toMatchObject({ outcome: 'failed', rollbackConfig: false });
    expect(result.targets).toEqual([
      expect.objectContaining({
        target: 'app',
        state: 'pending_write',
        writeMode: null,
        reloaded: false,
        error: expect.objectContaining({
          code: 'INSUFFICIENT_STORAGE',
          details: expect.stringMatching(/^the disk holding the output of target app is full \(ENOSPC/),
        }),
      }),
      expect.objectContaining({ target: 'sibling', state: 'in_sync', writeMode: 'rename', reloaded: true, error: null }),
    ]);
    expect(result.targets[0]!.error!.details).not.toContain(disk.dir);
    expect(existsSync(output)).toBe(false);
    // The sibling's file stays (nothing is rolled back) and its service was reloaded for it.
    expect(existsSync(sibling.output)).toBe(true);
    expect(calls).toEqual(['reload', 'verify']);
    await lanes.idle();

    // Still full: tried again after the backoff, and again later.
    const firstDue = clock.pendingDue();
    expect(firstDue).toHaveLength(1);
    const firstDelay = firstDue[0]! - clock.now();
    await clock.advance(firstDelay);
    await lanes.idle();
    expect(reports.map((r) => [r.source, r.result.targets.map((t) => t.state)])).toEqual([
      ['change', ['pending_write', 'in_sync']],
      ['retry', ['pending_write', 'in_sync']],
    ]);
    // A retry that could not write either leaves the service alone.
    expect(calls).toEqual(['reload', 'verify']);
    const secondDue = clock.pendingDue();
    expect(secondDue).toHaveLength(1);
    expect(secondDue[0]! - clock.now()).toBeGreaterThan(firstDelay);

    // Space returns: the next retry writes the file and reloads its service; no more retries.
    disk.free();
    await clock.advance(secondDue[0]! - clock.now());
    await lanes.idle();
    expect(reports.at(-1)!.source).toBe('retry');
    expect(reports.at(-1)!.result.targets[0]).toMatchObject({ state: 'in_sync', changed: true, reloaded: true, error: null });
    expect(JSON.parse(readFileSync(output, 'utf8'))).toEqual({ port: '8080' });
    expect(calls).toEqual(['reload', 'verify', 'reload', 'verify']);
    expect(clock.pendingDue()).toEqual([]);
  });
});
