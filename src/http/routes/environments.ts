/**
 * /environments: the environments config.ini has overlays for, and promotion of one
 * environment's overlay values to another in one audited write (a dry run answers the diff and
 * whether the write would be accepted, writing nothing).
 */
import { Router } from 'express';
import type { Actor } from '../../core/actor.js';
import { AppError, isAppError, type FieldIssue } from '../../core/errors.js';
import { MASK } from '../../core/mask.js';
import { environmentNameProblem, environmentsOf, parseOverlay } from '../../settings/overlays.js';
import { planChanges } from '../../settings/plan-changes.js';
import { planPromotion } from '../../settings/promote.js';
import type { ResolveSettings } from '../../settings/resolve.js';
import { isSensitive, type FileSchema } from '../../settings/schema.js';
import type { SettingsStore } from '../../settings/store.js';
import type { SyncDispatcher } from '../../sync/dispatcher.js';
import { addPath, parseIfMatch, requestSnapshot, requireJsonBody, ROUTING, sendJson, setWarnings } from '../route-helpers.js';
import { booleanQuery, sendWritten } from './sync.js';
import type { RequestHandler } from 'express';

export interface EnvironmentRoutesDeps {
  readonly store: SettingsStore;
  readonly schema: FileSchema;
  readonly resolve: ResolveSettings;
  readonly sync: SyncDispatcher;
  readonly jsonBody: RequestHandler;
}

interface PromoteBody {
  readonly from: string;
  readonly to: string;
  readonly keys?: readonly string[];
}

function promoteBody(body: unknown): PromoteBody {
  const shape = 'The body must be {"from": "<environment>", "to": "<environment>", "keys": ["section.key", …]} (keys optional)';
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AppError('INVALID_REQUEST', { details: shape });
  const { from, to, keys, ...rest } = body as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || typeof from !== 'string' || typeof to !== 'string') throw new AppError('INVALID_REQUEST', { details: shape });
  if (keys !== undefined && (!Array.isArray(keys) || keys.length === 0 || keys.length > 1000 || !keys.every((key) => typeof key === 'string'))) {
    throw new AppError('INVALID_REQUEST', { details: 'keys must be a non-empty list of "section.key" names (at most 1000)' });
  }
  for (const name of [from, to]) {
    const problem = environmentNameProblem(name);
    if (problem) throw new AppError('INVALID_NAME', { details: `Environment "${name.slice(0, 40)}": ${problem}` });
  }
  return { from, to, ...(keys !== undefined ? { keys: keys as string[] } : {}) };
}

export function createEnvironmentRoutes({ store, schema, resolve, sync, jsonBody }: EnvironmentRoutesDeps): Router {
  const router = Router(ROUTING);
  const shown = (section: string, key: string, value: string | undefined): string | null =>
    value === undefined ? null : isSensitive(schema, section, key) ? MASK : value;

  addPath(router, '/environments', {
    handlers: {
      listEnvironments: (_req, res) => {
        const { doc } = requestSnapshot(res, store);
        const environments = environmentsOf(doc).map((name) => {
          const sections: string[] = [];
          let keys = 0;
          for (const section of doc.sections) {
            const overlay = parseOverlay(section.name);
            if (overlay?.environment !== name || section.entries.length === 0) continue;
            sections.push(overlay.base);
            keys += section.entries.length;
          }
          return { name, sections, keys };
        });
        sendJson(res, JSON.stringify({ active: resolve.environment ?? null, environments }));
      },
    },
  });

  addPath(router, '/environments/promote', {
    handlers: {
      promoteEnvironment: [
        jsonBody,
        async (req, res) => {
          const dryRun = booleanQuery(req, 'dry_run');
          const wait = booleanQuery(req, 'wait');
          const { from, to, keys } = promoteBody(requireJsonBody(req));
          const snapshot = requestSnapshot(res, store);
          const plan = planPromotion({ doc: snapshot.doc, from, to, ...(keys ? { keys } : {}) });
          const diff = plan.keys.map((key) => ({
            key: key.key,
            before: shown(key.section, key.name, key.before),
            after: shown(key.section, key.name, key.after),
            change: key.before === undefined ? 'added' : key.before === key.after ? 'unchanged' : 'changed',
          }));
          if (dryRun) {
            let errors: FieldIssue[] = [];
            try {
              planChanges({ doc: snapshot.doc, inputs: plan.changes, schema, resolve });
            } catch (error) {
              if (!isAppError(error) || error.code !== 'VALIDATION_FAILED') throw error;
              errors = (error.data.errors as FieldIssue[] | undefined) ?? [{ field: '', code: error.code, message: error.details }];
            }
            sendJson(res, JSON.stringify({ from, to, dryRun: true, valid: errors.length === 0, errors, changes: diff }));
            return;
          }
          res.locals.audited = true;
          const result = await store.update({
            // Planned again on the file as the write finds it: a change landed since the request was read.
            changes: plan.changes,
            plan: (doc) => planPromotion({ doc, from, to, ...(keys ? { keys } : {}) }).changes,
            ifMatch: parseIfMatch(req),
            actor: res.locals.actor as Actor,
            source: 'promote',
          });
          res.setHeader('ETag', result.snapshot.etag);
          setWarnings(res, result.warnings);
          const answer = { from, to, dryRun: false, revision: result.snapshot.revision, changes: diff };
          await sendWritten({ res, sync, wait }, { answer, written: result.written, revision: result.snapshot.revision });
        },
      ],
    },
  });
  return router;
}
