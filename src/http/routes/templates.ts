/**
 * /templates: configuration templates for common scenarios (shipped under config/templates, the
 * administrator's own under the config directory's templates/), read from disk on each request so
 * a template edited there is used at once. A preview writes nothing; an apply is one write
 * through the store, all or nothing, audited as settings.template and committed with the
 * template's name.
 */
import { Router, type RequestHandler } from 'express';
import type { Actor } from '../../core/actor.js';
import { AppError, isAppError } from '../../core/errors.js';
import { maskText } from '../../core/mask.js';
import { printable } from '../../core/names.js';
import { environmentNameProblem } from '../../settings/overlays.js';
import { validationFailed } from '../../settings/plan-changes.js';
import type { ResolveSettings } from '../../settings/resolve.js';
import type { FileSchema } from '../../settings/schema.js';
import type { SettingsStore } from '../../settings/store.js';
import type { SyncDispatcher } from '../../sync/dispatcher.js';
import type { LoadTemplatesResult } from '../../templates/template-catalog.js';
import type { Template } from '../../templates/template-file.js';
import { findTemplate, planTemplate, previewTemplate, templateJson, type TemplatePreviewContext } from '../../templates/template-preview.js';
import { addPath, hasBody, parseIfMatch, requestSnapshot, requireJsonBody, ROUTING, sendJson, setWarnings } from '../route-helpers.js';
import { booleanQuery, sendWritten } from './sync.js';

export interface TemplateRoutesDeps {
  readonly store: SettingsStore;
  readonly schema: FileSchema;
  readonly resolve: ResolveSettings;
  readonly sync: SyncDispatcher;
  readonly jsonBody: RequestHandler;
  /** The shipped and custom templates as the disk holds them now. */
  readonly catalog: () => LoadTemplatesResult;
  readonly context: TemplatePreviewContext;
}

interface TemplateRequest {
  readonly variables: Readonly<Record<string, unknown>>;
  readonly environment?: string;
}

/** `{variables?, environment?}`; anything else is refused, naming the shape. */
function templateRequest(body: unknown): TemplateRequest {
  const shape = 'The body must be {"variables": {"name": value, …}, "environment": "<name>"} (both optional)';
  if (body === undefined || body === null) return { variables: {} };
  if (typeof body !== 'object' || Array.isArray(body)) throw new AppError('INVALID_REQUEST', { details: shape });
  const { variables = {}, environment, ...rest } = body as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || typeof variables !== 'object' || variables === null || Array.isArray(variables)) {
    throw new AppError('INVALID_REQUEST', { details: shape });
  }
  if (environment !== undefined) {
    if (typeof environment !== 'string') throw new AppError('INVALID_REQUEST', { details: shape });
    const problem = environmentNameProblem(environment);
    if (problem) throw new AppError('INVALID_NAME', { details: `Environment "${printable(environment)}": ${problem}` });
  }
  // Null prototype: variable names are input, never object members.
  const named: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(variables)) named[key] = (variables as Record<string, unknown>)[key];
  return { variables: named, ...(environment !== undefined ? { environment } : {}) };
}

/** A write refused after the preview's check (the file changed meanwhile): its messages masked like the preview's. */
function maskedError(error: unknown, secrets: readonly string[]): unknown {
  if (!isAppError(error) || error.code !== 'VALIDATION_FAILED' || secrets.length === 0) return error;
  const issues = (error.data.errors ?? []).map((issue) => ({ ...issue, message: maskText(issue.message, secrets) }));
  return validationFailed(issues);
}

export function createTemplateRoutes({ store, schema, resolve, sync, jsonBody, catalog, context }: TemplateRoutesDeps): Router {
  const router = Router(ROUTING);
  const named = (name: string): Template => findTemplate(catalog(), name);

  addPath(router, '/templates', {
    handlers: {
      listTemplates: (_req, res) => {
        const { templates, problems } = catalog();
        sendJson(
          res,
          JSON.stringify({
            templates: templates.map((template) => templateJson(template, { sections: false, schema })),
            // A broken file is named by its place among the templates, not by a path of this machine.
            problems: problems.map((problem) => ({ file: problem.file.split('/').slice(-2).join('/'), details: problem.details })),
          }),
        );
      },
    },
  });

  addPath(router, '/templates/{name}', {
    handlers: {
      getTemplate: (req, res) => sendJson(res, JSON.stringify(templateJson(named(req.params.name as string), { sections: true, schema }))),
    },
  });

  addPath(router, '/templates/{name}/preview', {
    handlers: {
      previewTemplate: [
        jsonBody,
        async (req, res) => {
          const template = named(req.params.name as string);
          const { variables, environment } = templateRequest(hasBody(req) ? requireJsonBody(req) : undefined);
          const { doc } = requestSnapshot(res, store);
          const preview = await previewTemplate({ template, variables, environment, doc, schema, resolve }, context);
          sendJson(res, JSON.stringify(preview));
        },
      ],
    },
  });

  addPath(router, '/templates/{name}/apply', {
    handlers: {
      applyTemplate: [
        jsonBody,
        async (req, res) => {
          const wait = booleanQuery(req, 'wait');
          const template = named(req.params.name as string);
          const { variables, environment } = templateRequest(hasBody(req) ? requireJsonBody(req) : undefined);
          const plan = planTemplate({ template, variables, environment, doc: requestSnapshot(res, store).doc, schema, resolve });
          // A bad or missing variable changes nothing: refused before the write.
          const missing = plan.unresolved.map((name) => ({ field: `variable.${name}`, code: 'REQUIRED', message: `variable.${name} is required` }));
          // Bad variables, and what the file's rules refuse, with a secret variable's value masked.
          const refused = [...missing, ...plan.errors];
          if (refused.length > 0) throw validationFailed(refused);
          res.locals.audited = true;
          const result = await store
            .update({
              changes: plan.changes,
              ifMatch: parseIfMatch(req),
              actor: res.locals.actor as Actor,
              source: 'template',
              template: template.name,
              masked: plan.secretKeys,
            })
            .catch((error: unknown) => {
              throw maskedError(error, plan.secretValues);
            });
          res.setHeader('ETag', result.snapshot.etag);
          setWarnings(res, result.warnings);
          const answer = { template: template.name, environment: environment ?? null, revision: result.snapshot.revision, changes: plan.keys };
          await sendWritten({ res, sync, wait }, { answer, written: result.written, revision: result.snapshot.revision });
        },
      ],
    },
  });
  return router;
}
