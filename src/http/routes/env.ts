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
import { environmentOf, scopeVariables, variablesAt, type Environment, type EnvVariable } from '../../env/environment.js';
import { envWriteValue, envWriteValues, planEnvWrite, requireScope, type EnvWriteValue } from '../../env/env-writes.js';
import type { IniDocument } from '../../ini/document.js';
import { renderDotenv } from '../../render/dotenv.js';
import { printable } from '../../core/names.js';
import { supervisorEnvValueProblem } from '../../render/supervisor-env.js';
import { envSectionName, GLOBAL_SCOPE, parseEnvSection } from '../../settings/env-sections.js';
import type { FileSchema } from '../../settings/schema.js';
import type { SettingsStore, Snapshot } from '../../settings/store.js';
import type { EnvDeclarations } from '../../targets/env-spec.js';
import { describeAction, type TargetSpec } from '../../targets/target-spec.js';
import type { SyncDispatcher } from '../../sync/dispatcher.js';
import { addPath, notModified, parseIfMatch, requestSnapshot, requireJsonBody, ROUTING, sendJson, setWarnings, singleQueryValue } from '../route-helpers.js';
import { booleanQuery, sendWritten } from './sync.js';

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

function sameEnvironment(a: Environment, b: Environment): boolean {
  return a.variables.size === b.variables.size && [...b.variables].every(([name, variable]) => a.variables.get(name)?.value === variable.value);
}

function notSet(scope: string, name: string): AppError {
  return new AppError('ENV_VARIABLE_NOT_FOUND', { details: `Variable ${printable(name)} is not set in scope ${scope}` });
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

  /**
   * Secret values in plain text: audited once the answer is ready and before it leaves (a refused
   * request reveals nothing), naming each scope revealed; never kept by a cache.
   */
  const audited = ({ res, scopes: revealed, name = null }: { res: Response; scopes: readonly string[]; name?: string | null }): void => {
    res.setHeader('Cache-Control', 'no-store');
    audit.record(
      revealed.map((scope) => ({
        at: Date.now(),
        actor: res.locals.actor as Actor,
        action: 'env.reveal',
        section: envSectionName(scope, { secret: true }),
        key: name,
        oldValue: null,
        newValue: null,
        result: 'applied' as const,
        errorCode: null,
        revision: null,
      })),
    );
  };

  /** Targets that deliver a consumer's environment. */
  const deliveries = (consumer: string) => targets.filter((t) => t.env === consumer);
  /** The consumers a change of these scopes' variables reaches (`global` only when a target delivers it). */
  const reached = (doc: IniDocument, changed: readonly { scope: string; name: string }[]) =>
    [...(targets.some((t) => t.env === GLOBAL_SCOPE) ? [GLOBAL_SCOPE] : []), ...declarations.consumers].filter((consumer) =>
      changed.some(({ scope, name }) => {
        if (scope === consumer) return true;
        if (scope !== GLOBAL_SCOPE) return false;
        // A global variable the consumer defines itself (mapped or its own) does not reach it.
        const now = environmentOf({ doc, schema, declarations, consumer }).variables.get(name);
        return now === undefined || now.scope === GLOBAL_SCOPE;
      }),
    );

  /** Why a value cannot reach a consumer of the scope, naming the target; undefined when it can. */
  const deliveryProblem = (scope: string, value: string): string | undefined => {
    const consumers = scope === GLOBAL_SCOPE ? [GLOBAL_SCOPE, ...declarations.consumers] : [scope];
    for (const target of consumers.flatMap(deliveries)) {
      const problem = target.format === 'supervisor_env' ? supervisorEnvValueProblem(value) : undefined;
      if (problem) return `${problem} (target ${target.name} gives it to a supervisord program)`;
    }
    return undefined;
  };

  const write = async ({ req, res, scope }: { req: Request; res: Response; scope: string }, variables: ReadonlyMap<string, EnvWriteValue>): Promise<void> => {
    const wait = booleanQuery(req, 'wait');
    const planFor = (doc: IniDocument) => planEnvWrite({ doc, declarations, scope, variables, deliveryProblem });
    // Refused at once when it is wrong against the file as read; planned again in the store's
    // queue, against the file as the write finds it (another write may have come first).
    const read = requestSnapshot(res, store);
    const changes = planFor(read.doc);
    // What the consumers get is compared resolved: a mapped variable holds the values services get.
    const before = read.resolved.doc;
    res.locals.audited = true;
    const result = await store.update({ changes, plan: planFor, ifMatch: parseIfMatch(req), actor: res.locals.actor as Actor, allowNew: true });
    res.setHeader('ETag', result.snapshot.etag);
    setWarnings(res, result.warnings);
    const applied = result.changes.filter((c) => c.changed).map((c) => ({ scope: parseEnvSection(c.section)!.scope, name: c.key }));
    const answer = {
      revision: result.snapshot.revision,
      changed: [...new Set(applied.map((c) => c.name))],
      // Reached by a changed key, and given other values than before (a variable that only became
      // secret, or an own one removed that equals the global one, changes nothing a consumer gets).
      consumers: reached(result.snapshot.resolved.doc, applied)
        .filter(
          (consumer) =>
            !sameEnvironment(
              environmentOf({ doc: before, schema, declarations, consumer }),
              environmentOf({ doc: result.snapshot.resolved.doc, schema, declarations, consumer }),
            ),
        )
        .map((consumer) => ({
          consumer,
          targets: deliveries(consumer).map((t) => ({ target: t.name, output: t.output, reload: describeAction(t.reload) })),
        })),
    };
    await sendWritten({ res, sync, wait }, { answer, written: result.written, revision: result.snapshot.revision });
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
        const reveal = booleanQuery(req, 'reveal');
        if (!reveal && notModified(req, res, snapshot.etag)) return;
        const out: Record<string, unknown> = Object.create(null);
        for (const scope of scopes) out[scope] = scopeJson(at(snapshot.resolved.doc, scope), reveal);
        if (reveal) audited({ res, scopes });
        sendJson(res, JSON.stringify(out), snapshot.etag);
      },
    },
  });

  addPath(router, '/env/{scope}', {
    handlers: {
      getEnvScope: (req, res) => {
        const scope = scopeOf(req);
        const reveal = booleanQuery(req, 'reveal');
        const snapshot = reveal ? requestSnapshot(res, store) : cached(req, res);
        if (!snapshot) return;
        const json = JSON.stringify(scopeJson(at(snapshot.resolved.doc, scope), reveal));
        if (reveal) audited({ res, scopes: [scope] });
        sendJson(res, json, snapshot.etag);
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
    // PUT and DELETE of a variable named export go on to /env/{scope}/{name}.
    otherMethods: (_req, _res, next) => next('route'),
    handlers: {
      exportEnv: (req, res) => {
        const scope = scopeOf(req);
        const format = singleQueryValue(req, 'format') ?? 'dotenv';
        if (format !== 'dotenv' && format !== 'json') throw new AppError('INVALID_REQUEST', { details: 'format must be dotenv or json' });
        const reveal = booleanQuery(req, 'reveal');
        const snapshot = requestSnapshot(res, store);
        const environment = environmentOf({ doc: snapshot.resolved.doc, schema, declarations, consumer: scope });
        if (environment.problems.length > 0) throw new AppError('CONFIG_INVALID', { details: environment.problems.join('; ') });
        const vars = [...environment.variables].map(([name, variable]) => ({ name, value: variable.secret && !reveal ? MASK : variable.value }));
        const text = format === 'json' ? JSON.stringify(Object.fromEntries(vars.map((v) => [v.name, v.value]))) : renderDotenv(vars);
        if (reveal) audited({ res, scopes: [scope] });
        res.setHeader('ETag', snapshot.etag);
        if (format === 'json') {
          sendJson(res, text);
          return;
        }
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end(text);
      },
    },
  });

  addPath(router, '/env/{scope}/{name}', {
    handlers: {
      getEnvVariable: (req, res) => {
        const scope = scopeOf(req);
        const name = req.params.name as string;
        const reveal = booleanQuery(req, 'reveal');
        const snapshot = requestSnapshot(res, store);
        const variable = at(snapshot.resolved.doc, scope).variables.get(name);
        if (!variable) throw notSet(scope, name);
        if (!reveal && notModified(req, res, snapshot.etag)) return;
        const json = JSON.stringify(shown(variable, reveal));
        if (reveal) audited({ res, scopes: [scope], name });
        sendJson(res, json, snapshot.etag);
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
        // An own variable goes, even one a mapped variable now shares its name with.
        const own = scopeVariables(requestSnapshot(res, store).doc, scope).get(name);
        const mapped = declarations.mapped.get(scope)?.find((v) => v.name === name);
        if (!own && mapped)
          throw new AppError('ENV_MAPPED', { details: `${name} is mapped from ${mapped.placeholders.join(', ')}; change that setting instead` });
        if (!own) throw notSet(scope, name);
        await write({ req, res, scope }, new Map([[name, null]]));
      },
    },
  });

  return router;
}
