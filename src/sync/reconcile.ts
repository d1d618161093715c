/**
 * One reconcile: bring every target in line with one revision of config.ini.
 *
 *   render all (pure) → compare with disk → stage + check the changed ones → write them →
 *   reload each service once (targets sharing a reload action share it) → verify health →
 *   on failure restore the failing targets' files, reload and verify again, and apply the
 *   on_failure policy: `rollback` puts every target of the revision back (and asks for
 *   config.ini to be restored), `keep` leaves the other targets on the new revision.
 *
 * A service that cannot be reached (no Docker socket, supervisord down, container not created
 * yet) is not a failure of the revision: its files are written and its reload stays pending,
 * to be retried with backoff by the caller.
 */
import type { Logger } from 'pino';
import { AppError, toPlainError, type PlainError } from '../errors.js';
import type { IniDocument } from '../ini/document.js';
import type { RenderInput, RenderSection } from '../render/types.js';
import type { ReloadResult, ServiceActions } from '../reload/service-actions.js';
import type { TargetSpec } from './target-spec.js';
import { reloadKey } from './target-spec.js';
import { differs, readPrevious, restorePrevious, stageTarget, type PreviousFile, type StagedTarget, type UsedWriteMode } from './target-writer.js';

export type TargetState = 'in_sync' | 'pending_reload' | 'failed' | 'rolled_back';

export interface TargetOutcome {
  readonly target: string;
  readonly changed: boolean;
  readonly writeMode: UsedWriteMode | null;
  readonly reloaded: boolean;
  readonly healthy: boolean | null;
  readonly durationMs: number;
  readonly error: PlainError | null;
  readonly state: TargetState;
}

export type RevisionOutcome = 'applied' | 'unchanged' | 'failed' | 'rolled_back';

export interface ReconcileResult {
  readonly revision: string;
  readonly outcome: RevisionOutcome;
  readonly targets: readonly TargetOutcome[];
  /** A rollback-policy target failed: config.ini should go back to the last applied revision. */
  readonly rollbackConfig: boolean;
}

export interface ReconcileRequest {
  readonly revision: string;
  readonly doc: IniDocument;
  /** Reload (and verify) targets even when their files did not change. */
  readonly force: boolean;
  /** Only these targets (e.g. retrying pending reloads); default all. */
  readonly only?: readonly string[];
}

export interface ReconcilerDeps {
  targets: readonly TargetSpec[];
  actions: ServiceActions;
  render: (target: TargetSpec, input: RenderInput) => string;
  readTemplate: (path: string) => Promise<string>;
  logger: Logger;
  now?: () => number;
}

interface Work {
  spec: TargetSpec;
  content?: Buffer;
  previous?: PreviousFile;
  changed: boolean;
  staged?: StagedTarget;
  written?: UsedWriteMode;
  reloaded: boolean;
  healthy: boolean | null;
  error?: AppError;
  state?: TargetState;
  finishedAt?: number;
}

function asAppError(error: unknown): AppError {
  return error instanceof AppError ? error : new AppError('INTERNAL_ERROR', 'Internal error', { details: String((error as Error)?.message ?? error), cause: error });
}

function renderInput(doc: IniDocument, spec: TargetSpec, template: string | undefined): RenderInput {
  const sections: RenderSection[] = [];
  for (const name of spec.sections) {
    const section = doc.byName.get(name);
    if (section) sections.push({ name, values: new Map(section.entries.map((e) => [e.key, e.value])) });
  }
  return { sections, target: spec.name, ...(template !== undefined ? { template } : {}) };
}

export function createReconciler(deps: ReconcilerDeps) {
  const { actions, logger, now = Date.now } = deps;
  const log = logger.child({ module: 'reconcile' });

  async function reloadGroups(works: Work[], force: boolean): Promise<void> {
    const groups = new Map<string, Work[]>();
    for (const work of works) {
      if (work.error || work.spec.reload.kind === 'none') continue;
      if (!work.written && !(force && work.content)) continue;
      const key = reloadKey(work.spec.reload);
      groups.set(key, [...(groups.get(key) ?? []), work]);
    }
    for (const group of groups.values()) {
      const { reload } = group[0]!.spec;
      const timeoutMs = Math.max(...group.map((w) => w.spec.timeoutMs));
      let result: ReloadResult;
      try {
        result = await actions.reload(reload, { timeoutMs });
      } catch (error) {
        const appError = asAppError(error);
        for (const work of group) {
          work.error = appError;
          work.state = appError.code === 'SERVICE_UNREACHABLE' ? 'pending_reload' : 'failed';
        }
        log.warn({ action: actions.describe(reload), code: appError.code }, 'reload did not happen');
        continue;
      }
      for (const work of group) work.reloaded = result.reloaded;
      // One verification per service; the first target's health rule stands for the group.
      try {
        await actions.verify(reload, group[0]!.spec.health, result, { timeoutMs });
        for (const work of group) work.healthy = true;
      } catch (error) {
        const appError = asAppError(error);
        for (const work of group) {
          work.healthy = false;
          work.error = appError;
          work.state = 'failed';
        }
      }
    }
  }

  /** Restores files, then reloads and verifies the services once more; returns whether they came back. */
  async function restore(works: Work[]): Promise<void> {
    for (const work of works) {
      if (!work.written || !work.previous) continue;
      await restorePrevious(work.spec.output, work.previous, work.written);
    }
    const again = works.filter((w) => w.written).map((w): Work => ({ ...w, error: undefined, state: undefined, reloaded: false, healthy: null }));
    await reloadGroups(again, false);
    for (const [i, work] of works.filter((w) => w.written).entries()) {
      const after = again[i]!;
      if (after.error) log.error({ target: work.spec.name, code: after.error.code }, 'service did not come back after its files were restored');
    }
  }

  return {
    async reconcile(request: ReconcileRequest): Promise<ReconcileResult> {
      const started = now();
      const selected = request.only ? deps.targets.filter((t) => request.only!.includes(t.name)) : [...deps.targets];
      const works: Work[] = selected.map((spec) => ({ spec, changed: false, reloaded: false, healthy: null }));

      for (const work of works) {
        try {
          const template = work.spec.template ? await deps.readTemplate(work.spec.template) : undefined;
          work.content = Buffer.from(deps.render(work.spec, renderInput(request.doc, work.spec, template)), 'utf8');
          work.previous = await readPrevious(work.spec.output);
          work.changed = differs(work.previous, work.content, work.spec.mode);
        } catch (error) {
          work.error = asAppError(error);
          work.state = 'failed';
        }
      }
      for (const work of works) {
        if (work.error || !work.changed) continue;
        try {
          work.staged = await stageTarget({ path: work.spec.output, content: work.content!, mode: work.spec.mode, writeMode: work.spec.write });
          if (work.spec.check?.kind === 'exec') await actions.runCheck(work.spec.check, work.staged.checkPath, { timeoutMs: work.spec.timeoutMs });
        } catch (error) {
          work.error = asAppError(error);
          work.state = 'failed';
          await work.staged?.discard();
          work.staged = undefined;
        }
      }

      const rollbackFailure = (): boolean => works.some((w) => w.state === 'failed' && w.spec.onFailure === 'rollback');
      const finish = (outcome: RevisionOutcome, rollbackConfig: boolean): ReconcileResult => {
        const end = now();
        return {
          revision: request.revision,
          outcome,
          rollbackConfig,
          targets: works.map((w) => ({
            target: w.spec.name,
            changed: w.changed,
            writeMode: w.written ?? null,
            reloaded: w.reloaded,
            healthy: w.healthy,
            durationMs: end - started,
            error: w.error ? toPlainError(w.error) : null,
            state: w.state ?? 'in_sync',
          })),
        };
      };

      if (rollbackFailure()) {
        // Nothing has been written yet: drop the staged files and leave every service as it is.
        for (const work of works) await work.staged?.discard();
        for (const work of works) if (!work.state) work.state = 'rolled_back';
        return finish('rolled_back', true);
      }

      for (const work of works) {
        if (!work.staged) continue;
        try {
          if (work.spec.check?.kind === 'docker_exec') {
            // The service's own validator sees the file where the service reads it, so it runs
            // after the write and before the reload; a failure puts the old file back.
            work.written = await work.staged.commit();
            try {
              await actions.runCheck(work.spec.check, work.spec.output, { timeoutMs: work.spec.timeoutMs });
            } catch (error) {
              // A service that is not up yet cannot check its file; it reads it when it starts.
              if (asAppError(error).code !== 'SERVICE_UNREACHABLE') {
                await restorePrevious(work.spec.output, work.previous!, work.written);
                work.written = undefined;
                throw error;
              }
            }
          } else {
            work.written = await work.staged.commit();
          }
        } catch (error) {
          work.error = asAppError(error);
          work.state = 'failed';
        }
        if (work.state === 'failed' && work.spec.onFailure === 'rollback') {
          await restore(works);
          for (const w of works) if (!w.state) w.state = 'rolled_back';
          return finish('rolled_back', true);
        }
      }

      await reloadGroups(works, request.force);

      const failed = works.filter((w) => w.state === 'failed' && (w.written || w.reloaded));
      if (failed.length > 0) {
        await restore(failed);
        if (rollbackFailure()) {
          const others = works.filter((w) => !failed.includes(w) && w.written);
          await restore(others);
          for (const w of works) if (!w.state || w.state === 'in_sync') w.state = 'rolled_back';
          return finish('rolled_back', true);
        }
        return finish('failed', false);
      }
      if (works.some((w) => w.state === 'failed')) return finish(rollbackFailure() ? 'rolled_back' : 'failed', rollbackFailure());
      const anything = works.some((w) => w.written || w.reloaded);
      return finish(anything ? 'applied' : 'unchanged', false);
    },
  };
}
