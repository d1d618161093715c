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
import { typedValue } from '../../settings/typed-view.js';
import type { FileSchema } from '../../settings/schema.js';
import type { SyncDispatcher } from '../../sync/dispatcher.js';
import { booleanQuery, syncReport, WAIT_TIMEOUT_MS } from './sync.js';
import {
  addPath,
  hasBody,
  requestSnapshot,
  sectionNotFound,
  sendSection,
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
export function addSettingsRoutes(router: Router, { store, schema, jsonBody, sync, otherResources }: SettingsRoutesDeps): void {
  const passOtherResources: RequestHandler = (req, _res, next) => {
    next(otherResources.has(String(req.params.section)) ? 'route' : undefined);
  };

  /** Writes, then answers with `json(snapshot)`; with ?wait=true only once the worker is done with the revision. */
  const write = async ({ req, res }: { req: Request; res: Response }, changes: ChangeInput[], json: (snapshot: Snapshot) => string): Promise<void> => {
    const wait = booleanQuery(req, 'wait');
    const envSection = changes.find((change) => isEnvSection(change.section))?.section;
    if (envSection) {
      const scope = parseEnvSection(envSection)!.scope;
      throw new AppError('INVALID_NAME', { details: `Section:${envSection} holds environment variables; change them through /api/v1/env/${scope}` });
    }
    res.locals.audited = true;
    const actor = res.locals.actor as Actor;
    const result = await store.update({ changes, ifMatch: parseIfMatch(req), actor });
    res.setHeader('ETag', result.snapshot.etag);
    setWarnings(res, result.warnings);
    if (!wait) {
      sendJson(res, json(result.snapshot));
      return;
    }
    const settings = json(result.snapshot);
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
        if (notModified(req, res, snapshot.etag)) return;
        sendJson(res, snapshot.view.allJson(), snapshot.etag);
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
          await write({ req, res }, changes, (snapshot) => snapshot.view.allJson());
        },
      ],
    },
  });

  addPath(router, '/settings/{section}', {
    first: passOtherResources,
    handlers: {
      getSection: (req, res) => sendSection({ req, res }, requestSnapshot(res, store), req.params.section as string),
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
          await write({ req, res }, changes, (snapshot) => snapshot.view.sectionJson(section) ?? '{}');
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
        const section = snapshot.doc.byName.get(sectionName);
        if (!section || isEnvSection(sectionName)) throw sectionNotFound(sectionName);
        const entry = section.byKey.get(key.toLowerCase());
        if (!entry) throw new AppError('KEY_NOT_FOUND', { details: `Key:${key} does not exist` });
        if (notModified(req, res, snapshot.etag)) return;
        sendJson(res, JSON.stringify({ [entry.key]: typedValue(schema.get(sectionName), entry.key, entry.value) }), snapshot.etag);
      },
    },
  });
}
