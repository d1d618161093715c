/** An unreachable service is announced once, summed up at a decaying rate, and its recovery once. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { parseIni } from '../../src/ini/document.js';
import { createLogger } from '../../src/log.js';
import type { ReloadActions } from '../../src/reload/reload-actions.js';
import { createReconciler } from '../../src/sync/reconcile.js';
import type { TargetSpec } from '../../src/targets/target-spec.js';
import { tempDirs } from '../support/temp-dirs.js';

const tempDir = tempDirs('confhub-outage-');

describe('an unreachable service in the log', () => {
  it('when its reloads fail for an hour and then work, then the log has one warning, a few summaries, and one recovery line at info', async () => {
    const dir = tempDir();
    let clock = 0;
    let down = true;
    const lines: { level: number; msg: string; attempts?: number }[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        callback();
      },
    });
    const actions: ReloadActions = {
      describe: () => 'docker restart app',
      async reload() {
        if (down) throw new AppError('SERVICE_UNREACHABLE', { details: 'the Docker engine is not there' });
        return { reloaded: true };
      },
      async verify() {},
      async runCheck() {},
    };
    const spec: TargetSpec = {
      name: 'app',
      sections: ['app'],
      format: 'json',
      output: `${dir}/app.json`,
      write: 'rename',
      mode: 0o600,
      reload: { kind: 'docker_restart', container: { by: 'name', name: 'app' } },
      health: { kind: 'none' },
      timeoutMs: 1000,
      onFailure: 'rollback',
    };
    const reconciler = createReconciler({
      targets: [spec],
      actions,
      render: (_target, input) => `${JSON.stringify(Object.fromEntries(input.sections[0]!.values))}\n`,
      readTemplate: async () => '',
      logger: createLogger({ level: 'info', destination }),
      paths: { outputRoots: [dir], own: [] },
      now: () => clock,
    });
    // A retry a minute, as the lanes' backoff settles, for an hour.
    for (let minute = 0; minute <= 60; minute++) {
      clock = minute * 60_000;
      await reconciler.reconcile({ revision: `r${minute}`, doc: parseIni(`[app]\nport = ${8000 + minute}\n`), force: true });
    }
    down = false;
    clock = 61 * 60_000;
    await reconciler.reconcile({ revision: 'r61', doc: parseIni('[app]\nport = 9000\n'), force: true });
    const about = lines.filter((l) => /service|reload/.test(l.msg));
    expect(about.filter((l) => l.level === 40)).toHaveLength(1);
    // Summaries at 1, 3, 7, 15, 31 minutes after the first, then the hour passes at that rate.
    expect(about.filter((l) => l.msg.startsWith('the service is still unreachable')).map((l) => l.attempts)).toEqual([2, 4, 8, 16, 32]);
    expect(about.filter((l) => l.msg === 'the service can be reached again')).toEqual([expect.objectContaining({ level: 30, attempts: 61 })]);
    expect(about).toHaveLength(1 + 5 + 1);
  });
});
