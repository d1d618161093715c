/**
 * Where every error — thrown by a route, by the body parser or by nobody (404) — becomes the
 * body `{message, details, code}` with the status the catalogue (core/errors.ts) gives its code.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { AppError, isAppError } from '../core/errors.js';
import { setWarnings } from './route-helpers.js';

export function errorBody(error: AppError): Record<string, unknown> {
  return { ...error.data, message: error.message, details: error.details, code: error.code };
}

export function sendError(res: Response, error: AppError): void {
  res
    .status(error.status)
    .type('application/json')
    .send(JSON.stringify(errorBody(error)));
}

interface BodyParserError {
  type?: string;
  status?: number;
}

/** Errors raised by express.json() before any route runs. */
export function fromBodyParserError(error: unknown): AppError | undefined {
  const type = (error as BodyParserError | undefined)?.type;
  switch (type) {
    case 'entity.too.large':
      return new AppError('PAYLOAD_TOO_LARGE', { details: 'The request body is larger than the limit', cause: error });
    case 'entity.parse.failed':
      return new AppError('MALFORMED_JSON', { details: 'The request body is not valid JSON', cause: error });
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new AppError('UNSUPPORTED_MEDIA_TYPE', { details: 'The request body must be UTF-8 JSON', cause: error });
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
    case 'stream.not.readable':
      return new AppError('INVALID_REQUEST', { details: 'The request body could not be read', cause: error });
    default:
      return undefined;
  }
}

/** Other errors the framework raises with a 4xx status, e.g. a path that is not valid percent-encoding. */
function fromClientError(error: unknown): AppError | undefined {
  const status = (error as BodyParserError | undefined)?.status;
  if (typeof status !== 'number' || status < 400 || status > 499) return undefined;
  const details = error instanceof URIError ? 'The request path is not valid percent-encoding' : 'The request could not be understood';
  return new AppError('INVALID_REQUEST', { details, cause: error });
}

export function toAppError(error: unknown): AppError {
  if (isAppError(error)) return error;
  return fromBodyParserError(error) ?? fromClientError(error) ?? new AppError('INTERNAL_ERROR', { details: 'Internal error', cause: error });
}

export interface ErrorHandlerOptions {
  logger: Logger;
  /** Called for every error response, e.g. to audit refused writes. */
  onError?: (input: { error: AppError; req: Parameters<ErrorRequestHandler>[1]; res: Response }) => void;
}

export function createErrorHandler({ logger, onError }: ErrorHandlerOptions): ErrorRequestHandler {
  // biome-ignore lint/complexity/useMaxParams: Express tells an error handler by its four parameters.
  return (error, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const appError = toAppError(error);
    if (appError.code === 'INTERNAL_ERROR') logger.error({ err: error, path: req.path, method: req.method }, 'request failed');
    onError?.({ error: appError, req, res });
    setWarnings(res, appError.warnings);
    sendError(res, appError);
  };
}

/**
 * A request node:http's parser refuses (a malformed request line or header, headers over the
 * limit, a request that timed out) never reaches Express; Node would answer it with an empty
 * body. It gets the error shape every other answer has.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // A response already under way on this connection (an event stream) must not get an answer
  // written into its body: the connection just ends, as Node does.
  const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || error.code === 'ECONNRESET' || current?.headersSent) {
    socket.destroy();
    return;
  }
  const appError = clientErrorOf(error.code);
  const body = JSON.stringify(errorBody(appError));
  // Destroyed once written: a client that never closes its side keeps no connection open.
  socket.end(
    `HTTP/1.1 ${appError.status} ${STATUS_CODES[appError.status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

function clientErrorOf(code: string | undefined): AppError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new AppError('HEADERS_TOO_LARGE', { details: 'The request headers are larger than the limit' });
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new AppError('PAYLOAD_TOO_LARGE', { details: 'The chunk extensions of the request body are larger than the limit' });
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new AppError('REQUEST_TIMEOUT', { details: 'The request did not arrive in time' });
    default:
      return new AppError('INVALID_REQUEST', { details: 'The request is not valid HTTP' });
  }
}
