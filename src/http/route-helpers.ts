/** Small request/response helpers shared by the routers. */
import type { Request, RequestHandler, Response, Router } from 'express';
import { AppError } from '../core/errors.js';
import { expressPath, methodsOf, OPERATIONS, type OperationId, type OperationSpec } from './operations.js';
import type { ReadOnlyIniStore, Snapshot } from '../settings/store.js';

/**
 * What `res.type('application/json').send(json)` sends, without Express parsing the content type
 * again and checking freshness on every answer (the routes answer 304 themselves).
 */
export function sendJson(res: Response, json: string, etag?: string): void {
  if (etag) res.setHeader('ETag', etag);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
}

/**
 * Tells what went wrong beside an answer, e.g. an audit row that could not be written: one
 * `Warning` header per warning (`199`, miscellaneous), on success and error answers alike.
 */
export function setWarnings(res: Response, warnings: readonly string[]): void {
  if (warnings.length === 0) return;
  res.setHeader(
    'Warning',
    warnings.map((warning) => `199 confhub "${warning.replaceAll('"', "'")}"`),
  );
}

/** Answers 304 when If-None-Match names the current ETag. */
export function notModified(req: Request, res: Response, etag: string): boolean {
  const header = req.get('if-none-match');
  if (!header) return false;
  const tags = header.split(',').map((t) => t.trim().replace(/^W\//, ''));
  if (!tags.includes(etag) && !tags.includes('*')) return false;
  res.setHeader('ETag', etag);
  res.status(304).end();
  return true;
}

/** If-Match values; strong comparison, so weak tags never match. */
export function parseIfMatch(req: Request): string[] | undefined {
  const header = req.get('if-match');
  if (header === undefined) return undefined;
  return header
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

export function singleQueryValue(req: Request, name: string): string | undefined {
  const value = (req.query as Record<string, unknown>)[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new AppError('INVALID_REQUEST', { details: `The ${name} query parameter must be given once` });
  return value;
}

/**
 * The parsed JSON body of a write. express.json() only parses JSON media types, so a body of
 * another type arrives unparsed: that is the 415 case.
 */
export function hasBody(req: Request): boolean {
  const length = req.get('content-length');
  return length !== undefined ? length !== '0' : req.get('transfer-encoding') !== undefined;
}

export function requireJsonBody(req: Request): unknown {
  if (!hasBody(req)) throw new AppError('INVALID_REQUEST', { details: 'A JSON body is required' });
  if (!req.is(['application/json', 'application/*+json'])) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', { details: 'The request body must be application/json' });
  }
  return req.body;
}

export function methodNotAllowed(allow: string): RequestHandler {
  return (req, res, next) => {
    res.setHeader('Allow', allow);
    next(new AppError('METHOD_NOT_ALLOWED', { details: `${req.method} is not allowed here; allowed: ${allow}` }));
  };
}

export interface PathRoutes {
  /** The handlers of each operation of the path, as the route table (operations.ts) names them. */
  readonly handlers: Partial<Record<OperationId, RequestHandler | readonly RequestHandler[]>>;
  /** Runs before the handlers of every method, e.g. to pass a name another router serves. */
  readonly first?: RequestHandler;
  /** Answers the methods the table has no operation for; default 405 METHOD_NOT_ALLOWED naming those it has. */
  readonly otherMethods?: RequestHandler;
}

/**
 * Registers the operations of one path of the route table: the method and path come from the
 * table, never from the caller, so a route cannot be added that the OpenAPI document lacks.
 */
export function addPath(router: Pick<Router, 'route'>, path: string, { handlers, first, otherMethods }: PathRoutes): void {
  const route = router.route(expressPath(path));
  if (first) route.all(first);
  for (const id of Object.keys(handlers) as OperationId[]) {
    const op: OperationSpec = OPERATIONS[id];
    if (op.path !== path) throw new Error(`operation ${id} is ${op.method.toUpperCase()} ${op.path}, not of ${path}`);
    const given = handlers[id]!;
    route[op.method](...(Array.isArray(given) ? given : [given as RequestHandler]));
  }
  route.all(otherMethods ?? methodNotAllowed(methodsOf(path).join(', ')));
}

export function sectionNotFound(section: string): AppError {
  return new AppError('SECTION_NOT_FOUND', { details: `Section:${section} does not exist` });
}

/** One section of a snapshot, or 304 when If-None-Match names its revision; SECTION_NOT_FOUND when it has none. */
export function sendSection({ req, res }: { req: Request; res: Response }, snapshot: Snapshot, section: string): void {
  const json = snapshot.view.sectionJson(section);
  if (json === undefined) throw sectionNotFound(section);
  if (notModified(req, res, snapshot.etag)) return;
  sendJson(res, json, snapshot.etag);
}

/**
 * config.ini is read once per request (from the store's cache unless it may have changed), when
 * authentication needs the key that lives in it; routes reuse that snapshot. A read that fails
 * is kept for the route to answer.
 */
export function loadSnapshot(res: Response, store: ReadOnlyIniStore): Snapshot | undefined {
  try {
    res.locals.snapshot = store.read();
  } catch (error) {
    res.locals.snapshotError = error;
  }
  return res.locals.snapshot as Snapshot | undefined;
}

/** The request's snapshot, or the error reading it (CONFIG_INVALID) for the route to answer. */
export function requestSnapshot(res: Response, store: ReadOnlyIniStore): Snapshot {
  if (res.locals.snapshotError) throw res.locals.snapshotError;
  return (res.locals.snapshot as Snapshot | undefined) ?? store.read();
}

/**
 * Paths match exactly, case included: the refused-write audit and the rate limits see the path
 * as routed, and /API/V1/settings is no other name of /api/v1/settings (it answers 404).
 */
export const ROUTING = { caseSensitive: true, strict: false } as const;
