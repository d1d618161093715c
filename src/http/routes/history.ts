/**
 * config.ini's history: commits newest first, one commit with its diff, the diff between any two
 * commits, and the rollback that restores a commit's content through the normal write path
 * (validated, audited, committed as a new revision, synced). Registered before the settings
 * routes: `/settings/history` is not a section.
 */
import { Router, type Request, type RequestHandler } from 'express';
import type { Actor } from '../../core/actor.js';
import { AppError } from '../../core/errors.js';
import { DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT, type HistoryQueries } from '../../history/history-queries.js';
import type { SettingsStore } from '../../settings/store.js';
import type { SyncDispatcher } from '../../sync/dispatcher.js';
import { addPath, parseIfMatch, requireJsonBody, ROUTING, sendJson, setWarnings, singleQueryValue } from '../route-helpers.js';
import { booleanQuery, sendWritten } from './sync.js';

export interface HistoryRoutesDeps {
  history: HistoryQueries;
  store: SettingsStore;
  sync: SyncDispatcher;
  jsonBody: RequestHandler;
  /** Told of every rollback that changed config.ini. */
  onRollback: () => void;
}

function limitQuery(req: Request): number {
  const raw = singleQueryValue(req, 'limit');
  if (raw === undefined) return DEFAULT_HISTORY_LIMIT;
  if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_HISTORY_LIMIT) {
    throw new AppError('INVALID_REQUEST', { details: `limit must be a whole number from 1 to ${MAX_HISTORY_LIMIT}` });
  }
  return Number(raw);
}

function requiredQuery(req: Request, name: string): string {
  const value = singleQueryValue(req, name);
  if (value === undefined || value === '') throw new AppError('INVALID_REQUEST', { details: `the ${name} query parameter is required` });
  return value;
}

export function createHistoryRoutes({ history, store, sync, jsonBody, onRollback }: HistoryRoutesDeps): Router {
  const router = Router(ROUTING);

  addPath(router, '/settings/history', {
    handlers: {
      listHistory: async (req, res) => {
        const limit = limitQuery(req);
        const before = singleQueryValue(req, 'before');
        sendJson(res, JSON.stringify(await history.list({ limit, ...(before ? { before } : {}) })));
      },
    },
  });

  addPath(router, '/settings/history/{commit}', {
    handlers: { getCommit: async (req, res) => sendJson(res, JSON.stringify(await history.show(req.params.commit as string))) },
  });

  addPath(router, '/settings/diff', {
    handlers: {
      getDiff: async (req, res) => {
        const from = requiredQuery(req, 'from');
        const to = singleQueryValue(req, 'to');
        sendJson(res, JSON.stringify(await history.diff(from, to === '' ? undefined : to)));
      },
    },
  });

  addPath(router, '/settings/rollback', {
    handlers: {
      rollback: [
        jsonBody,
        async (req, res) => {
          const wait = booleanQuery(req, 'wait');
          const body = requireJsonBody(req) as { commit?: unknown } | null;
          if (typeof body !== 'object' || body === null || Array.isArray(body) || typeof body.commit !== 'string' || Object.keys(body).length !== 1) {
            throw new AppError('INVALID_REQUEST', { details: 'The body must be {"commit": "<commit id>"}' });
          }
          const { commit, text } = await history.contentAt(body.commit);
          const actor = res.locals.actor as Actor;
          // From here the store audits the attempt, accepted or refused.
          res.locals.audited = true;
          const result = await store.restore({
            text,
            actor,
            source: 'rollback',
            rollbackOf: commit,
            ...(req.get('if-match') ? { ifMatch: parseIfMatch(req)! } : {}),
          });
          res.setHeader('ETag', result.snapshot.etag);
          setWarnings(res, result.warnings);
          if (result.written) onRollback();
          const changed = result.changes.filter((c) => c.changed).map((c) => `${c.section}.${c.key.toLowerCase()}`);
          const answer = { rolledBackTo: commit, revision: result.snapshot.revision, changed };
          await sendWritten({ res, sync, wait }, { answer, written: result.written, revision: result.snapshot.revision });
        },
      ],
    },
  });

  return router;
}
