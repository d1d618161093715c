/**
 * /env: environment variables. Independent ones are stored in config.ini's `[env:<scope>]`
 * sections through the settings store (one writer, revision, history, audit, sealing, ETag);
 * mapped ones are declared in system.ini and read-only here. Secret values are masked unless
 * `?reveal=true`, which is audited.
 */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor } from '../../core/actor.js';
import { AppError } from '../../core/errors.js';
import { MASK } from '../../core/mask.js';
import { environmentOf, variablesAt, type Environment, type EnvVariable } from '../../env/environment.js';
import { envWriteValue, envWriteValues, planEnvWrite, requireScope, type EnvWriteValue } from '../../env/env-writes.js';
import type { IniDocument } from '../../ini/document.js';
import { renderDotenv } from '../../render/dotenv.js';
import { envSectionName, GLOBAL_SCOPE } from '../../settings/env-sections.js';
import type { FileSchema } from '../../settings/schema.js';
import type { SettingsStore, Snapshot } from '../../settings/store.js';
import type { EnvDeclarations } from '../../targets/env-spec.js';
import { describeAction, type TargetSpec } from '../../targets/target-spec.js';
import type { SyncDispatcher } from '../../sync/dispatcher.js';
import { addPath, notModified, parseIfMatch, requestSnapshot, requireJsonBody, ROUTING, sendJson, setWarnings, singleQueryValue } from '../route-helpers.js';
import { booleanQuery, syncReport, WAIT_TIMEOUT_MS } from './sync.js';

export interface EnvRoutesDeps {
  store: SettingsStore;
  schema: FileSchema;
  declarations: EnvDeclarations;
  /** The targets, to tell a write's caller what each consumer's targets will do. */
  targets: readonly TargetSpec[];
  sync: SyncDispatcher;
  audit: AuditLog;
  jsonBody: RequestHandler;
}

function shown(variable: EnvVariable, reveal: boolean): { value: string; secret: boolean; source: string } {
  return { value: variable.secret && !reveal ? MASK : variable.value, secret: variable.secret, source: variable.source };
}

function scopeJson(environment: Environment, reveal: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [name, variable] of environment.variables) out[name] = shown(variable, reveal);
  return out;
}

export function createEnvRoutes(deps: EnvRoutesDeps): Router {
  const { store, schema, declarations, targets, sync, audit, jsonBody } = deps;
  const router = Router(ROUTING);
  const scopes = [GLOBAL_SCOPE, ...declarations.consumers];
  const at = (doc: IniDocument, scope: string) => variablesAt({ doc, schema, declarations, consumer: scope });

  /** A reveal is audited before the values leave: who saw the secrets of which scope. */
  const reveal = ({ req, res }: { req: Request; res: Response }, scope: string, name: string | null = null): boolean => {
    if (!booleanQuery(req, 'reveal')) return false;
    audit.record([
      {
        at: Date.now(),
        actor: res.locals.actor as Actor,
        action: 'env.reveal',
        section: envSectionName(scope, { secret: true }),
        key: name,
        oldValue: null,
        newValue: null,
        result: 'applied',
        errorCode: null,
        revision: null,
      },
    ]);
    return true;
  };

  /** What changed for whom: the consumers whose environment a write changed, and what their targets do with it. */
  const consumersChanged = (before: IniDocument, after: IniDocument) =>
    scopes
      .filter((consumer) => {
        const a = environmentOf({ doc: before, schema, declarations, consumer }).variables;
        const b = environmentOf({ doc: after, schema, declarations, consumer }).variables;
        return a.size !== b.size || [...b].some(([name, variable]) => a.get(name)?.value !== variable.value);
      })
      .map((consumer) => ({
        consumer,
        targets: targets.filter((t) => t.env === consumer).map((t) => ({ target: t.name, output: t.output, reload: describeAction(t.reload) })),
      }));

  const write = async ({ req, res, scope }: { req: Request; res: Response; scope: string }, variables: ReadonlyMap<string, EnvWriteValue>): Promise<void> => {
    const wait = booleanQuery(req, 'wait');
    const before = requestSnapshot(res, store);
    const changes = planEnvWrite({ doc: before.doc, declarations, scope, variables });
    res.locals.audited = true;
    const result =
      changes.length === 0
        ? { snapshot: before, changes: [], written: false, warnings: [] }
        : await store.update({ changes, ifMatch: parseIfMatch(req), actor: res.locals.actor as Actor, allowNew: true });
    res.setHeader('ETag', result.snapshot.etag);
    setWarnings(res, result.warnings);
    const changed = [...new Set(result.changes.filter((c) => c.changed).map((c) => c.key))];
    const answer = { revision: result.snapshot.revision, changed, consumers: consumersChanged(before.doc, result.snapshot.doc) };
    if (!wait) {
      sendJson(res, JSON.stringify(answer));
      return;
    }
    if (!result.written) {
      sendJson(res, JSON.stringify({ ...answer, sync: { revision: result.snapshot.revision, outcome: 'unchanged', targets: [] } }));
      return;
    }
    const report = syncReport(await sync.waitForRevision(result.snapshot.revision, WAIT_TIMEOUT_MS));
    if (report.error) throw report.error;
    sendJson(res, JSON.stringify({ ...answer, sync: report.body }));
  };

  const scopeOf = (req: Request): string => {
    const scope = req.params.scope as string;
    requireScope(declarations, scope);
    return scope;
  };

  const cached = (req: Request, res: Response): Snapshot | undefined => {
    const snapshot = requestSnapshot(res, store);
    return notModified(req, res, snapshot.etag) ? undefined : snapshot;
  };

  addPath(router, '/env', {
    handlers: {
      listEnv: (req, res) => {
        const snapshot = requestSnapshot(res, store);
        const revealed = booleanQuery(req, 'reveal') && reveal({ req, res }, GLOBAL_SCOPE);
        if (!revealed && notModified(req, res, snapshot.etag)) return;
        const out: Record<string, unknown> = Object.create(null);
        for (const scope of scopes) out[scope] = scopeJson(at(snapshot.doc, scope), revealed);
        sendJson(res, JSON.stringify(out), snapshot.etag);
      },
    },
  });

  addPath(router, '/env/{scope}', {
    handlers: {
      getEnvScope: (req, res) => {
        const scope = scopeOf(req);
        const revealed = reveal({ req, res }, scope);
        const snapshot = revealed ? requestSnapshot(res, store) : cached(req, res);
        if (!snapshot) return;
        sendJson(res, JSON.stringify(scopeJson(at(snapshot.doc, scope), revealed)), snapshot.etag);
      },
      patchEnvScope: [
        jsonBody,
        async (req, res) => {
          const scope = scopeOf(req);
          await write({ req, res, scope }, envWriteValues(requireJsonBody(req), scope));
        },
      ],
    },
  });

  addPath(router, '/env/{scope}/export', {
    handlers: {
      exportEnv: (req, res) => {
        const scope = scopeOf(req);
        const format = singleQueryValue(req, 'format') ?? 'dotenv';
        if (format !== 'dotenv' && format !== 'json') throw new AppError('INVALID_REQUEST', { details: 'format must be dotenv or json' });
        const revealed = reveal({ req, res }, scope);
        const snapshot = requestSnapshot(res, store);
        const environment = environmentOf({ doc: snapshot.doc, schema, declarations, consumer: scope });
        if (environment.problems.length > 0) throw new AppError('CONFIG_INVALID', { details: environment.problems.join('; ') });
        const vars = [...environment.variables].map(([name, variable]) => ({ name, value: variable.secret && !revealed ? MASK : variable.value }));
        res.setHeader('ETag', snapshot.etag);
        if (format === 'json') {
          sendJson(res, JSON.stringify(Object.fromEntries(vars.map((v) => [v.name, v.value]))));
          return;
        }
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end(renderDotenv(vars));
      },
    },
  });

  addPath(router, '/env/{scope}/{name}', {
    handlers: {
      getEnvVariable: (req, res) => {
        const scope = scopeOf(req);
        const name = req.params.name as string;
        const revealed = reveal({ req, res }, scope, name);
        const snapshot = requestSnapshot(res, store);
        const variable = at(snapshot.doc, scope).variables.get(name);
        if (!variable) throw new AppError('ENV_VARIABLE_NOT_FOUND', { details: `Variable ${name} is not set in scope ${scope}` });
        if (!revealed && notModified(req, res, snapshot.etag)) return;
        sendJson(res, JSON.stringify(shown(variable, revealed)), snapshot.etag);
      },
      putEnvVariable: [
        jsonBody,
        async (req, res) => {
          const scope = scopeOf(req);
          const given = envWriteValue(requireJsonBody(req));
          if (!given) throw new AppError('INVALID_REQUEST', { details: 'The body must be {"value": "...", "secret": true|false}' });
          await write({ req, res, scope }, new Map([[req.params.name as string, given]]));
        },
      ],
      deleteEnvVariable: async (req, res) => {
        const scope = scopeOf(req);
        const name = req.params.name as string;
        const snapshot = requestSnapshot(res, store);
        if (
          !at(snapshot.doc, scope).variables.has(name) ||
          variablesAt({ doc: snapshot.doc, schema, declarations, consumer: scope }).variables.get(name)?.source !== 'config.ini'
        ) {
          const mapped = declarations.mapped.get(scope)?.find((v) => v.name === name);
          if (mapped) throw new AppError('ENV_MAPPED', { details: `${name} is mapped from ${mapped.placeholders.join(', ')}; change that setting instead` });
          throw new AppError('ENV_VARIABLE_NOT_FOUND', { details: `Variable ${name} is not set in scope ${scope}` });
        }
        await write({ req, res, scope }, new Map([[name, null]]));
      },
    },
  });

  return router;
}
