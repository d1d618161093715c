/**
 * The one error type of confhub. `code` is the stable contract (clients and tests match on it,
 * never on message text); the HTTP status for each code lives in http/errors.ts only.
 * Errors cross the worker boundary as plain {code, message, details} (see toPlainError).
 */
export const ERROR_CODES = [
  'API_KEY_MISSING',
  'API_KEY_INVALID',
  'RATE_LIMITED',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'SYSTEM_READ_ONLY',
  'SECTION_NOT_FOUND',
  'KEY_NOT_FOUND',
  'INVALID_NAME',
  'INVALID_REQUEST',
  'MALFORMED_JSON',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'VALIDATION_FAILED',
  'PRECONDITION_FAILED',
  'CONFIG_INVALID',
  'CONFIG_CONFLICT',
  'INI_SYNTAX',
  'STARTUP_CONFIG_INVALID',
  'TARGET_INVALID',
  'RENDER_FAILED',
  'CHECK_FAILED',
  'WRITE_FAILED',
  'RELOAD_FAILED',
  'HEALTH_FAILED',
  'SERVICE_UNREACHABLE',
  'SERVICE_NOT_FOUND',
  'TIMEOUT',
  'SYNC_FAILED',
  'SECRET_UNREADABLE',
  'COMMIT_NOT_FOUND',
  'HISTORY_FAILED',
  'INTERNAL_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** One failing field of a validation; every failing field is reported, not just the first. */
export interface FieldIssue {
  /** `section.key` */
  field: string;
  code: string;
  message: string;
}

export interface AppErrorOptions {
  /** Human-readable specifics; legacy apphub clients display this string. */
  details?: string;
  /** Extra structured fields merged into the error body (e.g. `errors`, `line`). */
  data?: Record<string, unknown>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: string;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = options.details ?? message;
    this.data = Object.freeze({ ...(options.data ?? {}) });
  }
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}

export interface PlainError {
  code: ErrorCode;
  message: string;
  details: string;
}

export function toPlainError(error: unknown): PlainError {
  if (isAppError(error)) return { code: error.code, message: error.message, details: error.details };
  return { code: 'INTERNAL_ERROR', message: 'Internal error', details: 'Internal error' };
}
