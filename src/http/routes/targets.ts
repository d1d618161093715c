/**
 * Pull integration: the targets with their files, revision and state; per-target read-only tokens;
 * a target's bundle (its rendered files as a tar with a sha256 MANIFEST, ETag the revision);
 * check-ins of the service instances that installed one; and the init script services run in their
 * entrypoint. The bundle and the check-in take a target's token (`Authorization: Bearer`) as well
 * as the API key, so they are added before the key check (addPullRoutes); the rest need the key.
 */
import type { Request, RequestHandler, Response, Router } from 'express';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor } from '../../core/actor.js';
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import type { BundleSource } from '../../pull/bundle-source.js';
import type { Checkin, Checkins, CheckinInput } from '../../pull/checkins.js';
import type { TargetToken, TargetTokens } from '../../pull/target-tokens.js';
import type { SyncDispatcher } from '../../sync/dispatcher.js';
import type { TargetStatus } from '../../sync/target-status.js';
import type { TargetSpec } from '../../targets/target-spec.js';
import { bundlePath } from '../../pull/bundle-source.js';
import { addPath, hasBody, notModified, requireJsonBody, sendJson } from '../route-helpers.js';

export interface PullDeps {
  bundles: BundleSource;
  tokens: TargetTokens;
  checkins: Checkins;
  audit: AuditLog;
  clock: Clock;
  jsonBody: RequestHandler;
  /** The API key check the rest of the API uses (x-api-key; a missing or wrong key counts toward the failed-authentication limit). */
  apiKeyAuth: RequestHandler;
  /** init/confhub-init.sh as shipped. */
  initScript(): Promise<Buffer>;
}

export interface TargetRoutesDeps extends Pick<PullDeps, 'bundles' | 'tokens' | 'checkins' | 'audit' | 'clock' | 'jsonBody'> {
  targets: readonly TargetSpec[];
  sync: Pick<SyncDispatcher, 'status'>;
}

const BEARER = /^Bearer +([\x21-\x7e]+) *$/i;

/** A check-in as the API shows it: `current` when the instance has the revision its target's bundle is of now. */
export function instanceViews(checkins: readonly Checkin[], revisionNow: string | null): Record<string, unknown>[] {
  return checkins.map((c) => ({
    instance: c.instance,
    revision: c.revision,
    current: revisionNow !== null && c.revision === revisionNow,
    at: new Date(c.at).toISOString(),
    address: c.address,
  }));
}

function tokenView(token: TargetToken): Record<string, unknown> {
  return {
    id: token.id,
    description: token.description,
    createdAt: new Date(token.createdAt).toISOString(),
    lastUsedAt: token.lastUsedAt === null ? null : new Date(token.lastUsedAt).toISOString(),
  };
}

function audited(deps: Pick<PullDeps, 'audit' | 'clock'>, res: Response, row: { action: string; target: string; key: string | null; revision?: string }): void {
  res.locals.audited = true;
  deps.audit.record([
    {
      at: deps.clock.now(),
      actor: res.locals.actor as Actor,
      action: row.action,
      section: `target:${row.target}`,
      key: row.key,
      oldValue: null,
      newValue: null,
      result: 'applied',
      errorCode: null,
      revision: row.revision ?? null,
    },
  ]);
}

/** The API key, or a token of the target the path names. */
function keyOrToken(deps: PullDeps): RequestHandler {
  return (req, res, next) => {
    const bearer = req.get('x-api-key') === undefined ? BEARER.exec(req.get('authorization') ?? '') : null;
    if (!bearer) {
      deps.apiKeyAuth(req, res, next);
      return;
    }
    const verdict = deps.tokens.verify(req.params.name as string, bearer[1]!, deps.clock.now());
    if (!verdict.ok) {
      // Not counted toward the failed-authentication limit: 256 random bits are not guessed, and a
      // container restarting with a revoked token would lock out its whole address, the
      // administrator's key with it (host networking, a proxy). The per-minute limit still holds.
      res.setHeader('WWW-Authenticate', 'Bearer realm="confhub", error="invalid_token"');
      next(new AppError('TOKEN_INVALID', { details: 'the token is unknown, revoked, or for another target' }));
      return;
    }
    res.locals.actor = {
      type: 'api',
      id: `token:${verdict.id}`,
      remoteAddress: req.ip,
      userAgent: req.get('user-agent'),
      requestId: res.locals.requestId,
    } satisfies Actor;
    next();
  };
}

/** The routes a service container reaches with its token, and the init script; added before the key check. */
export function addPullRoutes(router: Router, deps: PullDeps): void {
  const auth = keyOrToken(deps);
  addPath(router, '/init.sh', {
    handlers: {
      getInitScript: async (_req, res) => {
        const script = await deps.initScript();
        res.setHeader('Content-Type', 'text/x-shellscript; charset=utf-8');
        res.setHeader('Content-Disposition', 'inline; filename="confhub-init.sh"');
        res.setHeader('Content-Length', script.length);
        res.end(script);
      },
    },
  });
  addPath(router, '/targets/{name}/bundle', {
    handlers: {
      getTargetBundle: [
        auth,
        async (req, res) => {
          const name = req.params.name as string;
          deps.bundles.targetsOf(name);
          // It holds the services' secrets: no cache between confhub and the service keeps it.
          res.setHeader('Cache-Control', 'no-store');
          // A service that has this revision is answered without the bundle being made.
          const now = deps.bundles.etagNow(name);
          if (now && notModified(req, res, now)) return;
          // HEAD answers what the bundle is without making it: no secret is opened for it.
          if (req.method === 'HEAD') {
            if (!now) await deps.bundles.bundle(name);
            res.setHeader('ETag', now!);
            res.setHeader('Content-Type', 'application/x-tar');
            res.end();
            return;
          }
          const bundle = await deps.bundles.bundle(name);
          const etag = bundle.etag;
          if (notModified(req, res, etag)) return;
          audited(deps, res, { action: 'target.bundle', target: name, key: null, revision: bundle.revision });
          res.setHeader('ETag', etag);
          res.setHeader('Content-Type', 'application/x-tar');
          res.setHeader('Content-Disposition', `attachment; filename="${name}.tar"`);
          res.setHeader('Content-Length', bundle.archive.length);
          res.end(bundle.archive);
        },
      ],
    },
  });
  addPath(router, '/targets/{name}/checkin', {
    handlers: {
      checkinTarget: [
        auth,
        deps.jsonBody,
        (req, res) => {
          const name = req.params.name as string;
          deps.bundles.targetsOf(name);
          const body = hasBody(req) ? requireJsonBody(req) : undefined;
          if (typeof body !== 'object' || body === null || Array.isArray(body)) {
            throw new AppError('INVALID_REQUEST', { details: 'the body must be a JSON object {"revision": "...", "instance": "..."}' });
          }
          const actor = res.locals.actor as Actor;
          const checkin = deps.checkins.record(name, body as CheckinInput, {
            address: req.ip ?? null,
            now: deps.clock.now(),
            // Without a name, the instance is the token (or the key) that checked in.
            fallbackInstance: actor.id.replace(/^token:/, 'token-').replace(/^key:/, 'key-'),
          });
          sendJson(res, JSON.stringify({ target: name, ...instanceViews([checkin], deps.bundles.revisionsNow().get(name) ?? null)[0] }));
        },
      ],
    },
  });
}

/** The targets and their tokens, behind the API key. */
export function addTargetRoutes(router: Router, deps: TargetRoutesDeps): void {
  const view = (
    spec: TargetSpec,
    now: { checkins: Map<string, Checkin[]>; states: Map<string, TargetStatus>; revisions: Map<string, string | null> },
  ): Record<string, unknown> => {
    const state = now.states.get(spec.name);
    const files = deps.bundles.targetsOf(spec.name).map((part) => ({
      target: part.name,
      path: bundlePath(spec, part),
      output: part.output,
      mode: part.mode.toString(8).padStart(4, '0'),
    }));
    const revisionNow = now.revisions.get(spec.name) ?? null;
    return {
      name: spec.name,
      format: spec.format,
      partOf: spec.partOf ?? null,
      state: state?.state ?? 'unknown',
      appliedRevision: state?.appliedRevision ?? null,
      lastError: state?.lastError ?? null,
      bundle: { revision: revisionNow, files },
      instances: instanceViews(now.checkins.get(spec.name) ?? [], revisionNow),
    };
  };
  const target = (req: Request): TargetSpec => deps.bundles.targetsOf(req.params.name as string)[0]!;
  /** One look at the state, the files and the check-ins for a whole answer. */
  const now = () => ({
    checkins: deps.checkins.byTarget(),
    states: new Map(deps.sync.status().targets.map((t) => [t.target, t])),
    revisions: deps.bundles.revisionsNow(),
  });

  addPath(router, '/targets', {
    handlers: {
      listTargets: (_req, res) => {
        const state = now();
        sendJson(res, JSON.stringify({ targets: deps.targets.map((spec) => view(spec, state)) }));
      },
    },
  });
  addPath(router, '/targets/{name}', {
    handlers: { getTarget: (req, res) => sendJson(res, JSON.stringify(view(target(req), now()))) },
  });
  addPath(router, '/targets/{name}/tokens', {
    handlers: {
      listTargetTokens: (req, res) => sendJson(res, JSON.stringify({ tokens: deps.tokens.list(target(req).name).map(tokenView) })),
      createTargetToken: [
        deps.jsonBody,
        (req, res) => {
          const spec = target(req);
          const body = hasBody(req) ? requireJsonBody(req) : {};
          if (typeof body !== 'object' || body === null || Array.isArray(body))
            throw new AppError('INVALID_REQUEST', { details: 'the body must be a JSON object' });
          const extra = Object.keys(body).filter((name) => name !== 'description');
          if (extra.length > 0) {
            const message = 'unknown field; expected description';
            throw new AppError('VALIDATION_FAILED', {
              details: message,
              data: { errors: [{ field: extra[0]!.slice(0, 64), code: 'UNKNOWN_FIELD', message }] },
            });
          }
          const { token, record } = deps.tokens.create(spec.name, { description: (body as { description?: unknown }).description, now: deps.clock.now() });
          audited(deps, res, { action: 'target.token.create', target: spec.name, key: record.id });
          res.status(201).location(`${req.baseUrl}/targets/${spec.name}/tokens/${record.id}`);
          res.setHeader('Cache-Control', 'no-store');
          sendJson(res, JSON.stringify({ ...tokenView(record), target: spec.name, token }));
        },
      ],
    },
  });
  addPath(router, '/targets/{name}/tokens/{id}', {
    handlers: {
      revokeTargetToken: (req, res) => {
        const spec = target(req);
        const id = req.params.id as string;
        deps.tokens.revoke(spec.name, id);
        audited(deps, res, { action: 'target.token.revoke', target: spec.name, key: id });
        sendJson(res, JSON.stringify({ revoked: id }));
      },
    },
  });
}
