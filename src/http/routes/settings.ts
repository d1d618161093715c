/**
 * /settings: config.ini. GETs are served from the store's snapshot (ETag = file revision,
 * If-None-Match → 304); writes go through the store (serialized, merged into the current file,
 * validated as a whole, written atomically, audited) and honour If-Match.
 */
import type { Request, RequestHandler, Response, Router } from 'express';
import type { Actor } from '../../core/actor.js';
import { AppError } from '../../core/errors.js';
import { isEnvSection, parseEnvSection } from '../../settings/env-sections.js';
import type { ChangeInput } from '../../settings/plan-changes.js';
import type { SettingsStore, Snapshot } from '../../settings/store.js';
import { createDocumentView, typedValue, type DocumentView } from '../../settings/typed-view.js';
import { explainJson } from '../../settings/explain-view.js';
import { baseSectionOf, environmentNameProblem, environmentsOf, overlayName } from '../../settings/overlays.js';
import { resolveDocument, type ResolveResult, type ResolveSettings } from '../../settings/resolve.js';
import { printable } from '../../core/names.js';
import type { FileSchema } from '../../settings/schema.js';
import type { SyncDispatcher } from '../../sync/dispatcher.js';
import { booleanQuery, syncReport, WAIT_TIMEOUT_MS } from './sync.js';
import {
  addPath,
  hasBody,
  requestSnapshot,
  sectionNotFound,
  notModified,
  parseIfMatch,
  requireJsonBody,
  sendJson,
  setWarnings,
  singleQueryValue,
} from '../route-helpers.js';

export interface SettingsRoutesDeps {
  store: SettingsStore;
  schema: FileSchema;
  /** How the store resolves values: a view in another environment resolves them the same way. */
  resolve: ResolveSettings;
  /** Answers writes made with ?wait=true once the worker applied them. */
  sync: SyncDispatcher;
  /** Body parser for the write routes. */
  jsonBody: RequestHandler;
  /**
   * Names under /settings/ that other routers serve (the event stream, history, reload). These
   * routes come first, because they take most of the requests, so they let those pass.
   */
  otherResources: ReadonlySet<string>;
}

/** `?environment=NAME`: an environment's overlays; undefined when not given. */
export function environmentQuery(req: Request): string | undefined {
  if (!req.url.includes('environment=')) return undefined;
  const environment = singleQueryValue(req, 'environment');
  if (environment === undefined) return undefined;
  const problem = environmentNameProblem(environment);
  if (problem) throw new AppError('INVALID_NAME', { details: `Environment "${printable(environment)}": ${problem}` });
  return environment;
}

/**
 * Views of a snapshot as another environment resolves it, kept for the newest snapshot only (a
 * GET of staging's values repeats, and a snapshot is replaced by each write).
 */
function createEnvironmentViews({ schema, resolve }: { schema: FileSchema; resolve: ResolveSettings }) {
  let kept: { snapshot: Snapshot; views: Map<string, { resolved: ResolveResult; view: DocumentView }> } | undefined;
  return (snapshot: Snapshot, environment: string): { resolved: ResolveResult; view: DocumentView } => {
    if (environment === resolve.environment) return { resolved: snapshot.resolved, view: snapshot.view };
    // An environment without overlays resolves as none does: one entry serves every such name.
    const known = environmentsOf(snapshot.doc).includes(environment) ? environment : undefined;
    if (known === resolve.environment) return { resolved: snapshot.resolved, view: snapshot.view };
    if (kept?.snapshot !== snapshot) kept = { snapshot, views: new Map() };
    let entry = kept.views.get(known ?? '');
    if (!entry) {
      const resolved = resolveDocument({ doc: snapshot.doc, schema, settings: { ...resolve, environment: known } });
      entry = { resolved, view: createDocumentView(resolved.doc, schema) };
      kept.views.set(known ?? '', entry);
    }
    return entry;
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objectEntries(value: Record<string, unknown>): [string, unknown][] {
  return Object.keys(value).map((key) => [key, value[key]]);
}

/**
 * Adds the routes to `router` itself rather than to a router of their own: a nested router adds
 * a dispatch of its own to every request that passes through it, which measurably slows GETs.
 */
export function addSettingsRoutes(router: Router, { store, schema, resolve, jsonBody, sync, otherResources }: SettingsRoutesDeps): void {
  /** The values as another environment resolves them (a GET or a write naming one). */
  const inEnvironment = createEnvironmentViews({ schema, resolve });

  /** The view a GET asks for: resolved (the default), as written (`resolved=false`) or explained; in an environment. */
  const viewOf = (req: Request, snapshot: Snapshot): ((section?: string) => string | undefined) => {
    // Most GETs carry no query: they skip parsing one.
    if (!req.url.includes('?')) return (section) => (section === undefined ? snapshot.view.allJson() : snapshot.view.sectionJson(section));
    const resolved = booleanQuery(req, 'resolved', true);
    const environment = environmentQuery(req);
    if (!resolved && environment !== undefined)
      throw new AppError('INVALID_REQUEST', { details: 'resolved=false shows the file as written, in no environment' });
    const values = environment === undefined ? snapshot.resolved : inEnvironment(snapshot, environment).resolved;
    if (booleanQuery(req, 'explain')) {
      if (!resolved) throw new AppError('INVALID_REQUEST', { details: 'explain shows resolved values; leave out resolved=false' });
      return (section) => explainJson({ resolved: values, schema, ...(section !== undefined ? { section } : {}) });
    }
    const view = !resolved ? snapshot.rawView : environment === undefined ? snapshot.view : inEnvironment(snapshot, environment).view;
    return (section) => (section === undefined ? view.allJson() : view.sectionJson(section));
  };

  const passOtherResources: RequestHandler = (req, _res, next) => {
    next(otherResources.has(String(req.params.section)) ? 'route' : undefined);
  };

  /**
   * Writes, then answers with `json(view)` of the values after the write (in the environment
   * written, when `?environment=` named one: the write then sets that environment's overlays);
   * with ?wait=true only once the worker is done with the revision.
   */
  const write = async ({ req, res }: { req: Request; res: Response }, changes: ChangeInput[], json: (view: DocumentView) => string): Promise<void> => {
    const wait = booleanQuery(req, 'wait');
    const envSection = changes.find((change) => isEnvSection(change.section))?.section;
    if (envSection) {
      const scope = parseEnvSection(envSection)!.scope;
      throw new AppError('INVALID_NAME', { details: `Section:${envSection} holds environment variables; change them through /api/v1/env/${scope}` });
    }
    const environment = environmentQuery(req);
    res.locals.audited = true;
    const actor = res.locals.actor as Actor;
    const targeted = environment === undefined ? changes : changes.map((change) => ({ ...change, section: overlayName(change.section, environment) }));
    const result = await store.update({ changes: targeted, ifMatch: parseIfMatch(req), actor });
    res.setHeader('ETag', result.snapshot.etag);
    setWarnings(res, result.warnings);
    const viewAfter = (): DocumentView => (environment === undefined ? result.snapshot.view : inEnvironment(result.snapshot, environment).view);
    if (!wait) {
      sendJson(res, json(viewAfter()));
      return;
    }
    const settings = json(viewAfter());
    if (!result.changes.some((c) => c.changed)) {
      sendJson(res, `{"settings":${settings},"sync":{"revision":"${result.snapshot.revision}","outcome":"unchanged","targets":[]}}`);
      return;
    }
    const report = syncReport(await sync.waitForRevision(result.snapshot.revision, WAIT_TIMEOUT_MS));
    if (report.error) throw report.error;
    sendJson(res, `{"settings":${settings},"sync":${JSON.stringify(report.body)}}`);
  };

  addPath(router, '/settings', {
    handlers: {
      getSettings: (req, res) => {
        const snapshot = requestSnapshot(res, store);
        const json = viewOf(req, snapshot)();
        if (notModified(req, res, snapshot.etag)) return;
        sendJson(res, json!, snapshot.etag);
      },
      patchSettings: [
        jsonBody,
        async (req, res) => {
          const body = requireJsonBody(req);
          if (!isPlainObject(body) || Object.keys(body).length === 0) {
            throw new AppError('INVALID_REQUEST', { details: 'The body must be a JSON object {section: {key: value}}' });
          }
          const changes: ChangeInput[] = [];
          for (const [section, values] of objectEntries(body)) {
            if (!isPlainObject(values) || Object.keys(values).length === 0) {
              throw new AppError('INVALID_REQUEST', { details: `Section:${section} must map to a non-empty object of key: value` });
            }
            for (const [key, value] of objectEntries(values)) changes.push({ section, key, value });
          }
          await write({ req, res }, changes, (view) => view.allJson());
        },
      ],
    },
  });

  addPath(router, '/settings/{section}', {
    first: passOtherResources,
    handlers: {
      getSection: (req, res) => {
        const snapshot = requestSnapshot(res, store);
        const section = req.params.section as string;
        const json = viewOf(req, snapshot)(section);
        if (json === undefined) throw sectionNotFound(section);
        if (notModified(req, res, snapshot.etag)) return;
        sendJson(res, json, snapshot.etag);
      },
      putSection: [
        jsonBody,
        async (req, res) => {
          const section = req.params.section as string;
          const key = singleQueryValue(req, 'key');
          let changes: ChangeInput[];
          if (key !== undefined) {
            // Legacy apphub form: PUT /settings/{section}?key=K&value=V
            if (hasBody(req)) {
              throw new AppError('INVALID_REQUEST', { details: 'Give either ?key=&value= or a JSON body, not both' });
            }
            const value = singleQueryValue(req, 'value');
            if (value === undefined) throw new AppError('INVALID_REQUEST', { details: 'The value query parameter is required with key' });
            changes = [{ section, key, value }];
          } else {
            const body = requireJsonBody(req);
            if (!isPlainObject(body) || Object.keys(body).length === 0) {
              throw new AppError('INVALID_REQUEST', { details: 'The body must be a non-empty JSON object {key: value}, or use ?key=&value=' });
            }
            changes = objectEntries(body).map(([k, value]) => ({ section, key: k, value }));
          }
          await write({ req, res }, changes, (view) => view.sectionJson(section) ?? '{}');
        },
      ],
    },
  });

  addPath(router, '/settings/{section}/{key}', {
    first: passOtherResources,
    handlers: {
      getKey: (req, res) => {
        const snapshot = requestSnapshot(res, store);
        const sectionName = req.params.section as string;
        const key = req.params.key as string;
        if (booleanQuery(req, 'explain')) throw new AppError('INVALID_REQUEST', { details: 'explain is given for /settings and /settings/{section}' });
        const environment = environmentQuery(req);
        const resolved = booleanQuery(req, 'resolved', true);
        if (!resolved && environment !== undefined)
          throw new AppError('INVALID_REQUEST', { details: 'resolved=false shows the file as written, in no environment' });
        const values = !resolved ? snapshot.doc : environment === undefined ? snapshot.resolved.doc : inEnvironment(snapshot, environment).resolved.doc;
        const section = values.byName.get(sectionName);
        if (!section || isEnvSection(sectionName)) throw sectionNotFound(sectionName);
        const entry = section.byKey.get(key.toLowerCase());
        if (!entry) throw new AppError('KEY_NOT_FOUND', { details: `Key:${key} does not exist` });
        if (notModified(req, res, snapshot.etag)) return;
        sendJson(res, JSON.stringify({ [entry.key]: typedValue(schema.get(baseSectionOf(sectionName)), entry.key, entry.value) }), snapshot.etag);
      },
      deleteOverride: async (req, res) => {
        const section = req.params.section as string;
        if (environmentQuery(req) === undefined) {
          throw new AppError('INVALID_REQUEST', { details: "Only an environment's override is removed: give ?environment=NAME" });
        }
        await write({ req, res }, [{ section, key: req.params.key as string, value: '', remove: true }], (view) => view.sectionJson(section) ?? '{}');
      },
    },
  });
}
