/**
 * createApp(deps) builds the Express app; only main listens. Every /api/v1 route also answers
 * under the legacy /api prefix. Order matters: request id → rate limits → authentication (which
 * tells the failed-authentication limit what it refused) → body parsing (bodies of
 * unauthenticated requests are never parsed) → routes → JSON 404 → error handler.
 */
import { createTemplateRoutes, type TemplateRoutesDeps } from './routes/templates.js';
import { createEnvironmentRoutes } from './routes/environments.js';
import type { ResolveSettings } from '../settings/resolve.js';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import type { Actor } from '../core/actor.js';
import { AppError } from '../core/errors.js';
import { CONFIG_SCHEMA, SYSTEM_SCHEMA } from '../settings/schema.js';
import type { ReadOnlyIniStore, SettingsStore } from '../settings/store.js';
import type { ApiAccess } from './api-access.js';
import { createApiKeyAuth } from './auth.js';
import { bodyChecker, exactQuery } from './exact-input.js';
import { createErrorHandler } from './errors.js';
import { createRequestContext } from './request-context.js';
import { addPath, loadSnapshot, ROUTING, sendJson } from './route-helpers.js';
import { createAuditRoutes } from './routes/audit.js';
import { createHistoryRoutes } from './routes/history.js';
import { createInitRoutes, type StartupReport } from './routes/init.js';
import type { HistoryQueries } from '../history/history-queries.js';
import type { Metrics } from '../metrics.js';
import { createServiceRoutes } from './routes/services.js';
import { addSettingsRoutes } from './routes/settings.js';
import { createSyncRoutes } from './routes/sync.js';
import { createSystemRoutes } from './routes/system.js';
import type { ConnectionChecks } from '../probes/connection-checks.js';
import type { SyncDispatcher } from '../sync/dispatcher.js';
import type { EventLog } from '../events/event-log.js';
import { createEventRoutes } from './routes/events.js';
import { createConnectedKeyCheck } from './websocket-gate.js';
import { createEnvRoutes } from './routes/env.js';
import type { EnvDeclarations } from '../targets/env-spec.js';
import type { TargetSpec } from '../targets/target-spec.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Outbox } from '../notify/outbox.js';
import type { WebhookStore } from '../notify/webhook-store.js';
import { createWebhookRoutes } from './routes/webhooks.js';
import { addPullRoutes, addTargetRoutes, instanceViews } from './routes/targets.js';
import type { BundleSource } from '../pull/bundle-source.js';
import type { TargetTokens } from '../pull/target-tokens.js';
import type { Checkins } from '../pull/checkins.js';

export interface AppDeps {
  settings: SettingsStore;
  /** How the store resolves config.ini's values (views of other environments resolve the same way). */
  resolve: ResolveSettings;
  /** Configuration templates: the catalogue as the disk holds it, and the targets a preview renders. */
  templates: Pick<TemplateRoutesDeps, 'catalog' | 'context'>;
  system: ReadOnlyIniStore;
  audit: AuditLog;
  logger: Logger;
  version: string;
  /** The key and the rate limits, shared with the WebSocket channel. */
  access: ApiAccess;
  bodyLimitBytes: number;
  trustProxy: boolean | number | string;
  /** The sync worker's main-thread side. */
  sync: SyncDispatcher;
  events: EventLog;
  history: HistoryQueries;
  metrics: Metrics;
  /** What this start did, for /init/status. */
  startup: StartupReport;
  /** Connection tests of the services. */
  services: ConnectionChecks;
  /** The consumers of environment variables and the targets that deliver them (system.ini). */
  env: { declarations: EnvDeclarations; targets: readonly TargetSpec[] };
  /** Webhook endpoints and their outbox. */
  notify: { store: WebhookStore; outbox: Outbox };
  /** Pull integration: every target, their bundles, tokens and check-ins, and the init script. */
  pull: { targets: readonly TargetSpec[]; bundles: BundleSource; tokens: TargetTokens; checkins: Checkins; initScript(): Promise<Buffer> };
  clock?: Clock;
}

const WRITE_METHODS = new Set(['PUT', 'PATCH', 'POST', 'DELETE']);
/** `/settings/{name}` paths served by the event, history and sync routers. */
const SETTINGS_RESOURCES_ELSEWHERE: ReadonlySet<string> = new Set(['events', 'history', 'diff', 'rollback', 'reload']);
const SETTINGS_PATH = /^\/api(?:\/v1)?\/settings(?:\/([^/]+))?(?:\/([^/]+))?\/?$/;
const ENV_PATH = /^\/api(?:\/v1)?\/env\/([^/]+)(?:\/([^/]+))?\/?$/;
const PROMOTE_PATH = /^\/api(?:\/v1)?\/environments\/promote\/?$/;
const TEMPLATE_APPLY_PATH = /^\/api(?:\/v1)?\/templates\/([^/]+)\/apply\/?$/;
const WEBHOOK_PATH = /^\/api(?:\/v1)?\/webhooks(?:\/([^/]+))?(?:\/(rotate-secret|test|deliveries\/([^/]+)\/redeliver))?\/?$/;
const TARGET_TOKEN_PATH = /^\/api(?:\/v1)?\/targets\/([^/]+)\/tokens(?:\/([^/]+))?\/?$/;
const WEBHOOK_ACTIONS: Readonly<Record<string, string>> = { 'rotate-secret': 'webhook.rotate_secret', test: 'webhook.test' };

/** The audit action of a webhook write, by method and path. */
function webhookAction(method: string, match: RegExpExecArray): string {
  if (match[2]) return WEBHOOK_ACTIONS[match[2]] ?? 'webhook.redeliver';
  if (!match[1]) return 'webhook.create';
  return method === 'DELETE' ? 'webhook.delete' : 'webhook.update';
}

function safeDecode(part: string | undefined): string | null {
  if (part === undefined) return null;
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // ETags are the file revision, set by the routes; Express's body hashes would be weaker and slower.
  app.set('etag', false);
  app.set('trust proxy', deps.trustProxy);
  app.set('case sensitive routing', ROUTING.caseSensitive);
  const { metrics } = deps;
  app.use(createRequestContext({ logger: deps.logger, onAnswered: (answered) => metrics.httpRequest(answered) }));
  // Like /healthz, without the key: scrapers reach it on the address confhub listens on.
  addPath(app, '/metrics', {
    handlers: {
      metrics: async (_req, res) => {
        res.type(metrics.contentType).send(await metrics.text());
      },
    },
  });
  addPath(app, '/healthz', { handlers: { healthz: (_req, res) => sendJson(res, '{"status":"ok"}') } });
  addPath(app, '/readyz', {
    handlers: {
      readyz: (_req, res) => {
        const readiness = deps.sync.readiness();
        res.status(readiness.ready ? 200 : 503);
        sendJson(res, JSON.stringify({ status: readiness.ready ? 'ready' : 'not_ready', reasons: readiness.reasons }));
      },
    },
  });

  const { limits } = deps.access;
  const currentKey = (res: Response): string | undefined => deps.access.configuredKey(loadSnapshot(res, deps.settings));
  // Built on its first request: zod, which builds it, holds about 3 MiB of heap once loaded.
  let openapi: Promise<string> | undefined;
  const openapiJson = (): Promise<string> =>
    (openapi ??= import('./openapi.js').then(({ buildOpenApi }) =>
      JSON.stringify(buildOpenApi({ version: deps.version, configSchema: CONFIG_SCHEMA, systemSchema: SYSTEM_SCHEMA })),
    ));
  // Parsed only on the routes that take a body, so GETs pay nothing for it.
  const exactBody = bodyChecker();
  const parseJson = express.json({ limit: deps.bodyLimitBytes, type: ['application/json', 'application/*+json'], strict: true, verify: exactBody.verify });
  const jsonBody: RequestHandler = (req, res, next) => parseJson(req, res, (error?: unknown) => (error ? next(error) : exactBody.refuse(req, res, next)));

  // Every router and route a request passes costs it time, so the settings routes, which take
  // most requests, come first, on this router itself, and let the other routers' /settings/
  // names pass.
  const clock = deps.clock ?? systemClock;
  const api = Router(ROUTING);
  if (limits.check) api.use(limits.check);
  const apiKeyAuth = createApiKeyAuth({ keys: deps.access.keys, currentKey, onRefused: limits.authenticationRefused });
  // A service container pulls its bundle with its target's token, not the key.
  addPullRoutes(api, { ...deps.pull, audit: deps.audit, clock, jsonBody, apiKeyAuth });
  api.use(apiKeyAuth);
  api.use(exactQuery);
  addSettingsRoutes(api, {
    store: deps.settings,
    schema: CONFIG_SCHEMA,
    resolve: deps.resolve,
    jsonBody,
    sync: deps.sync,
    otherResources: SETTINGS_RESOURCES_ELSEWHERE,
  });
  api.use(createEventRoutes({ events: deps.events, keyStillValid: createConnectedKeyCheck({ access: deps.access, settings: deps.settings }) }));
  api.use(
    createEnvRoutes({
      store: deps.settings,
      schema: CONFIG_SCHEMA,
      declarations: deps.env.declarations,
      targets: deps.env.targets,
      sync: deps.sync,
      audit: deps.audit,
      jsonBody,
    }),
  );
  api.use(createHistoryRoutes({ history: deps.history, store: deps.settings, sync: deps.sync, jsonBody, onRollback: () => metrics.rollbackRequested() }));
  const instances = (): ReadonlyMap<string, readonly Record<string, unknown>[]> => {
    const byTarget = deps.pull.checkins.byTarget();
    const revisions = deps.pull.bundles.revisionsNow();
    return new Map(deps.pull.targets.map((t) => [t.name, instanceViews(byTarget.get(t.name) ?? [], revisions.get(t.name) ?? null)]));
  };
  api.use(createSyncRoutes({ sync: deps.sync, instances }));
  api.use(createEnvironmentRoutes({ store: deps.settings, schema: CONFIG_SCHEMA, resolve: deps.resolve, sync: deps.sync, jsonBody }));
  api.use(createTemplateRoutes({ store: deps.settings, schema: CONFIG_SCHEMA, resolve: deps.resolve, sync: deps.sync, jsonBody, ...deps.templates }));
  api.use(createInitRoutes({ sync: deps.sync, startup: deps.startup, instances }));
  addTargetRoutes(api, { ...deps.pull, sync: deps.sync, audit: deps.audit, clock, jsonBody });
  api.use(createServiceRoutes({ services: deps.services }));
  api.use(createSystemRoutes({ store: deps.system }));
  api.use(createAuditRoutes({ audit: deps.audit }));
  api.use(
    createWebhookRoutes({
      store: deps.notify.store,
      outbox: deps.notify.outbox,
      events: deps.events,
      audit: deps.audit,
      clock,
      jsonBody,
    }),
  );
  addPath(api, '/openapi.json', { handlers: { getOpenApi: async (_req, res) => sendJson(res, await openapiJson()) } });
  app.use('/api/v1', api);
  app.use('/api', api);

  app.use((req, _res, next) => {
    next(new AppError('NOT_FOUND', { details: `No route for ${req.method} ${req.path}` }));
  });
  app.use(
    createErrorHandler({
      logger: deps.logger,
      onError: ({ error, req, res }) => auditRefusedWrite({ audit: deps.audit, logger: deps.logger }, { error, req, res }),
    }),
  );
  return app;
}

/** Write attempts refused before they reached the store (auth, body, names) are audited here. */
function auditRefusedWrite(
  { audit, logger }: { audit: AuditLog; logger: Logger },
  { error, req, res }: { error: AppError; req: Request; res: Response },
): void {
  if (!WRITE_METHODS.has(req.method) || res.locals.audited || error.code === 'RATE_LIMITED') return;
  const env = ENV_PATH.exec(req.path);
  const match = SETTINGS_PATH.exec(req.path);
  const webhook = WEBHOOK_PATH.exec(req.path);
  const promote = PROMOTE_PATH.test(req.path);
  const template = TEMPLATE_APPLY_PATH.exec(req.path);
  const token = TARGET_TOKEN_PATH.exec(req.path);
  if (!match && !env && !webhook && !promote && !template && !token) return;
  const actor: Actor = (res.locals.actor as Actor | undefined) ?? {
    type: 'api',
    id: 'unauthenticated',
    remoteAddress: req.ip,
    userAgent: req.get('user-agent'),
    requestId: res.locals.requestId as string,
  };
  const queryKey = typeof req.query?.key === 'string' ? req.query.key : null;
  const rollback = match?.[1] === 'rollback' && match[2] === undefined;
  try {
    if (token) {
      const action = req.method === 'DELETE' && token[2] ? 'target.token.revoke' : req.method === 'POST' && !token[2] ? 'target.token.create' : undefined;
      if (!action) return;
      const row = { oldValue: null, newValue: null, result: 'refused' as const, errorCode: error.code, revision: null };
      audit.record([{ at: Date.now(), actor, action, section: `target:${safeDecode(token[1])}`, key: safeDecode(token[2]), ...row }]);
      return;
    }
    audit.record([
      {
        at: Date.now(),
        actor,
        action: webhook
          ? webhookAction(req.method, webhook)
          : env
            ? 'env.update'
            : rollback
              ? 'settings.rollback'
              : promote
                ? 'settings.promote'
                : template
                  ? 'settings.template'
                  : 'settings.update',
        // A refused env write names its scope's section: `env:<scope>`; a webhook's, `webhook:<id>`.
        section: webhook
          ? webhook[1]
            ? `webhook:${safeDecode(webhook[1])}`
            : null
          : env
            ? `env:${safeDecode(env[1])}`
            : rollback || promote
              ? null
              : template
                ? `template:${safeDecode(template[1])}`
                : safeDecode(match![1]),
        // A redelivery names the delivery, as an accepted one does.
        key: webhook ? safeDecode(webhook[3]) : env ? safeDecode(env[2]) : rollback || promote || template ? null : (safeDecode(match![2]) ?? queryKey),
        oldValue: null,
        newValue: null,
        result: 'refused',
        errorCode: error.code,
        revision: null,
      },
    ]);
  } catch (cause) {
    logger.error({ err: cause }, 'recording a refused write in the audit log failed');
  }
}
