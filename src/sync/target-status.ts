/** Per-target state for /sync/status, kept from the runs the worker reports. */
import type { PlainError } from '../core/errors.js';
import type { ReconcileResult, TargetState } from '../targets/outcome.js';
import { describeAction, type TargetSpec } from '../targets/target-spec.js';

export interface TargetStatus {
  target: string;
  output: string;
  format: string;
  reload: string;
  state: TargetState | 'unknown';
  appliedRevision: string | null;
  lastRevision: string | null;
  writeMode: string | null;
  reloaded: boolean | null;
  healthy: boolean | null;
  durationMs: number | null;
  lastRunAt: string | null;
  lastError: PlainError | null;
}

export function createTargetStatus(targets: readonly TargetSpec[]) {
  const status = new Map<string, TargetStatus>(
    targets.map((t) => [
      t.name,
      {
        target: t.name,
        output: t.output,
        format: t.format,
        reload: describeAction(t.reload),
        state: 'unknown',
        appliedRevision: null,
        lastRevision: null,
        writeMode: null,
        reloaded: null,
        healthy: null,
        durationMs: null,
        lastRunAt: null,
        lastError: null,
      },
    ]),
  );

  return {
    record(result: ReconcileResult, at: string): void {
      for (const outcome of result.targets) {
        const current = status.get(outcome.target);
        if (!current) continue;
        // A target this run left alone keeps an earlier pending reload (it is still being retried).
        const untouched = !outcome.changed && !outcome.reloaded && outcome.error === null;
        if (untouched && current.state === 'pending_reload') {
          current.lastRevision = result.revision;
          current.appliedRevision = result.revision;
          continue;
        }
        current.state = outcome.state;
        current.lastRevision = result.revision;
        if (outcome.state === 'in_sync' || outcome.state === 'pending_reload') current.appliedRevision = result.revision;
        current.writeMode = outcome.writeMode ?? current.writeMode;
        current.reloaded = outcome.reloaded;
        current.healthy = outcome.healthy;
        current.durationMs = outcome.durationMs;
        current.lastRunAt = at;
        current.lastError = outcome.error;
      }
    },

    list(): TargetStatus[] {
      return [...status.values()].map((s) => ({ ...s }));
    },
  };
}
