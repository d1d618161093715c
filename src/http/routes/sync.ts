/**
 * The sync side of the API: status per target, a forced reconcile, and the answer of a write made
 * with `?wait=true` once the worker is done with it.
 */
import { Router, type Request, type Response } from 'express';
import type { Actor } from '../../core/actor.js';
import { AppError } from '../../core/errors.js';
import type { RunAnswer, SyncDispatcher } from '../../sync/dispatcher.js';
import { addPath, ROUTING, sendJson, singleQueryValue } from '../route-helpers.js';

export const WAIT_TIMEOUT_MS = 120_000;

export function booleanQuery(req: Request, name: string, fallback = false): boolean {
  const raw = singleQueryValue(req, name);
  if (raw === undefined) return fallback;
  if (raw === 'false' || raw === '0') return false;
  if (raw === '' || raw === 'true' || raw === '1') return true;
  throw new AppError('INVALID_REQUEST', { details: `${name} must be true or false` });
}

/** The per-target results a waiting caller gets, and the error when the revision did not apply. */
export function syncReport(answer: RunAnswer): { body: Record<string, unknown>; error?: AppError } {
  if (answer.kind === 'source_invalid') {
    return { body: {}, error: new AppError('CONFIG_INVALID', { details: answer.error.details }) };
  }
  const { result } = answer;
  const targets = result.targets.map((t) => ({
    target: t.target,
    state: t.state,
    changed: t.changed,
    writeMode: t.writeMode,
    reloaded: t.reloaded,
    healthy: t.healthy,
    durationMs: t.durationMs,
    error: t.error,
  }));
  const body = {
    revision: result.revision,
    outcome: result.outcome,
    ...(answer.commit !== undefined ? { commit: answer.commit } : {}),
    targets,
    // Targets whose lane went on to a newer revision before running this one.
    ...(result.superseded && result.superseded.length > 0 ? { superseded: result.superseded } : {}),
  };
  if (result.outcome === 'failed' || result.outcome === 'rolled_back') {
    const reasons = [
      ...(result.error ? [result.error.details] : []),
      ...result.targets.filter((t) => t.error && t.state === 'failed').map((t) => `target ${t.target}: ${t.error!.code}: ${t.error!.details}`),
    ];
    const tail = result.outcome === 'rolled_back' ? '; the previous files were restored and config.ini is being restored to the last applied revision' : '';
    return { body, error: new AppError('SYNC_FAILED', { details: `${reasons.join('; ') || 'the revision was not applied'}${tail}`, data: { sync: body } }) };
  }
  return { body };
}

/**
 * Answers a write: at once, or with `?wait=true` once the sync worker is done with its revision,
 * `sync` added (SYNC_FAILED when it did not apply). A write that changed nothing has nothing to wait for.
 */
export async function sendWritten(
  { res, sync, wait }: { res: Response; sync: SyncDispatcher; wait: boolean },
  { answer, written, revision }: { answer: Record<string, unknown>; written: boolean; revision: string },
): Promise<void> {
  if (!wait) {
    sendJson(res, JSON.stringify(answer));
    return;
  }
  if (!written) {
    sendJson(res, JSON.stringify({ ...answer, sync: { revision, outcome: 'unchanged', targets: [] } }));
    return;
  }
  const report = syncReport(await sync.waitForRevision(revision, WAIT_TIMEOUT_MS));
  if (report.error) throw report.error;
  sendJson(res, JSON.stringify({ ...answer, sync: report.body }));
}

/** The service instances that checked in, by target (pull integration). */
export type InstancesByTarget = () => ReadonlyMap<string, readonly Record<string, unknown>[]>;

export function createSyncRoutes({ sync, instances }: { sync: SyncDispatcher; instances: InstancesByTarget }): Router {
  const router = Router(ROUTING);

  addPath(router, '/sync/status', {
    handlers: {
      getSyncStatus: (_req, res) => {
        const status = sync.status();
        const byTarget = instances();
        sendJson(res, JSON.stringify({ ...status, targets: status.targets.map((t) => ({ ...t, instances: byTarget.get(t.target) ?? [] })) }));
      },
    },
  });

  addPath(router, '/settings/reload', {
    handlers: {
      reload: async (req, res) => {
        const force = booleanQuery(req, 'force');
        const wait = booleanQuery(req, 'wait');
        const actor = res.locals.actor as Actor;
        const answer = await sync.reconcile({ force, wait, timeoutMs: WAIT_TIMEOUT_MS, actor: { type: actor.type, id: actor.id } });
        if (answer.kind === 'accepted') {
          res.status(202);
          sendJson(res, JSON.stringify({ accepted: true, requestId: answer.requestId }));
          return;
        }
        const report = syncReport(answer);
        if (report.error) throw report.error;
        sendJson(res, JSON.stringify(report.body));
      },
    },
  });

  return router;
}
