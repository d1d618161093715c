/**
 * The error catalogue and the one error type of confhub. `code` is the stable contract (clients
 * and tests match on it, never on message text); each code has its HTTP status, its default
 * message and the shape of its structured data here, and nowhere else. README's error table is
 * tied to this catalogue by a test.
 *
 * Errors cross the worker boundary as plain {code, message, details} (see toPlainError).
 */

/**
 * Where a client meets a code: `http` as a response's code, `target` inside a per-target result
 * (`targets[].error` of /sync/status, of a waited write, of /services), `startup` only when
 * confhub or a CLI command refuses to start.
 */
export type ErrorAudience = 'http' | 'target' | 'startup';

export interface CatalogueEntry {
  readonly status: number;
  /** The short message; legacy apphub clients show `details`, which says the specifics. */
  readonly message: string;
  readonly audience: ErrorAudience;
}

export const ERROR_CATALOGUE = Object.freeze({
  API_KEY_MISSING: { status: 401, message: 'Unauthorized', audience: 'http' },
  API_KEY_INVALID: { status: 401, message: 'Unauthorized', audience: 'http' },
  RATE_LIMITED: { status: 429, message: 'Too Many Requests', audience: 'http' },
  NOT_FOUND: { status: 404, message: 'Not Found', audience: 'http' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method Not Allowed', audience: 'http' },
  SYSTEM_READ_ONLY: { status: 405, message: 'Method Not Allowed', audience: 'http' },
  SECTION_NOT_FOUND: { status: 404, message: 'Invalid Request', audience: 'http' },
  ENVIRONMENT_NOT_FOUND: { status: 404, message: 'Not Found', audience: 'http' },
  TEMPLATE_NOT_FOUND: { status: 404, message: 'Not Found', audience: 'http' },
  KEY_NOT_FOUND: { status: 400, message: 'Invalid Request', audience: 'http' },
  INVALID_NAME: { status: 400, message: 'Invalid Request', audience: 'http' },
  INVALID_REQUEST: { status: 400, message: 'Invalid Request', audience: 'http' },
  MALFORMED_JSON: { status: 400, message: 'Invalid Request', audience: 'http' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'Payload Too Large', audience: 'http' },
  HEADERS_TOO_LARGE: { status: 431, message: 'Request Header Fields Too Large', audience: 'http' },
  REQUEST_TIMEOUT: { status: 408, message: 'Request Timeout', audience: 'http' },
  UPGRADE_REQUIRED: { status: 426, message: 'Upgrade Required', audience: 'http' },
  ORIGIN_NOT_ALLOWED: { status: 403, message: 'Forbidden', audience: 'http' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported Media Type', audience: 'http' },
  VALIDATION_FAILED: { status: 400, message: 'Invalid Request', audience: 'http' },
  PRECONDITION_FAILED: { status: 412, message: 'Precondition Failed', audience: 'http' },
  CONFIG_INVALID: { status: 503, message: 'config.ini is invalid', audience: 'http' },
  CONFIG_CONFLICT: { status: 409, message: 'Conflict', audience: 'http' },
  INSUFFICIENT_STORAGE: { status: 507, message: 'Insufficient Storage', audience: 'http' },
  INI_SYNTAX: { status: 400, message: 'INI syntax error', audience: 'target' },
  STARTUP_CONFIG_INVALID: { status: 500, message: 'confhub cannot start', audience: 'startup' },
  TARGET_INVALID: { status: 500, message: 'Invalid target declaration', audience: 'startup' },
  RENDER_FAILED: { status: 500, message: 'Render failed', audience: 'target' },
  CHECK_FAILED: { status: 500, message: 'Check failed', audience: 'target' },
  WRITE_FAILED: { status: 500, message: 'Write failed', audience: 'target' },
  RELOAD_FAILED: { status: 502, message: 'Reload failed', audience: 'target' },
  HEALTH_FAILED: { status: 502, message: 'Health check failed', audience: 'target' },
  SERVICE_UNREACHABLE: { status: 503, message: 'Service unreachable', audience: 'target' },
  WORKER_UNAVAILABLE: { status: 503, message: 'Service Unavailable', audience: 'http' },
  SERVICE_NOT_FOUND: { status: 404, message: 'Service not found', audience: 'http' },
  TIMEOUT: { status: 504, message: 'Gateway Timeout', audience: 'http' },
  SYNC_FAILED: { status: 502, message: 'Sync failed', audience: 'http' },
  SECRET_UNREADABLE: { status: 500, message: 'Secret unreadable', audience: 'http' },
  COMMIT_NOT_FOUND: { status: 404, message: 'Commit not found', audience: 'http' },
  ENV_SCOPE_NOT_FOUND: { status: 404, message: 'Environment scope not found', audience: 'http' },
  ENV_VARIABLE_NOT_FOUND: { status: 404, message: 'Environment variable not found', audience: 'http' },
  ENV_MAPPED: { status: 409, message: 'Conflict', audience: 'http' },
  WEBHOOK_NOT_FOUND: { status: 404, message: 'Webhook not found', audience: 'http' },
  DELIVERY_NOT_FOUND: { status: 404, message: 'Delivery not found', audience: 'http' },
  DELIVERY_IN_PROGRESS: { status: 409, message: 'Conflict', audience: 'http' },
  WEBHOOK_INACTIVE: { status: 409, message: 'Conflict', audience: 'http' },
  WEBHOOK_LIMIT_REACHED: { status: 409, message: 'Conflict', audience: 'http' },
  TARGET_NOT_FOUND: { status: 404, message: 'Target not found', audience: 'http' },
  TARGET_NOT_APPLIED: { status: 503, message: 'Service Unavailable', audience: 'http' },
  TOKEN_INVALID: { status: 401, message: 'Unauthorized', audience: 'http' },
  TOKEN_NOT_FOUND: { status: 404, message: 'Token not found', audience: 'http' },
  TOKEN_LIMIT_REACHED: { status: 409, message: 'Conflict', audience: 'http' },
  HISTORY_FAILED: { status: 500, message: 'History failed', audience: 'http' },
  TEMPLATE_INVALID: { status: 500, message: 'Invalid configuration template', audience: 'http' },
  INTERNAL_ERROR: { status: 500, message: 'Internal error', audience: 'http' },
} as const satisfies Record<string, CatalogueEntry>);

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export const ERROR_CODES: readonly ErrorCode[] = Object.freeze(Object.keys(ERROR_CATALOGUE) as ErrorCode[]);

/** One failing field of a validation; every failing field is reported, not just the first. */
export interface FieldIssue {
  /** `section.key` */
  field: string;
  code: string;
  message: string;
}

/**
 * Every structured field an error may carry. The fields are merged into the HTTP error body,
 * so none may hold a secret value.
 */
export interface ErrorDataFields {
  /** VALIDATION_FAILED, SECRET_UNREADABLE: every failing field. */
  readonly errors?: readonly FieldIssue[];
  /** INI_SYNTAX, CONFIG_INVALID, TEMPLATE_INVALID: 1-based line of the (first) problem. */
  readonly line?: number;
  /** SECRET_UNREADABLE: `section.key` of the value that does not open. */
  readonly field?: string;
  /** STARTUP_CONFIG_INVALID: another confhub holds the data directory. */
  readonly busy?: boolean;
  /** TEMPLATE_INVALID: the name of the template whose file is invalid. */
  readonly template?: string;
  /** SERVICE_NOT_FOUND: the name asked for. */
  readonly service?: string;
  /** SYNC_FAILED: the per-target results of the waited revision. */
  readonly sync?: Readonly<Record<string, unknown>>;
  // The service an operation reached (or could not): shown without credentials or query.
  readonly url?: string;
  readonly status?: number;
  readonly socket?: string;
  readonly container?: string;
  readonly label?: string;
  readonly matches?: number;
  readonly program?: string;
  readonly state?: string;
  readonly health?: string | null;
  readonly shuttingDown?: boolean;
  readonly exitCode?: number;
  readonly command?: string;
}

type ServiceData = Pick<
  ErrorDataFields,
  'url' | 'status' | 'socket' | 'container' | 'label' | 'matches' | 'program' | 'state' | 'health' | 'shuttingDown' | 'exitCode' | 'command'
>;

/** The data each code may carry; a code not named here carries none. */
interface ErrorDataMap {
  VALIDATION_FAILED: Pick<ErrorDataFields, 'errors'>;
  INI_SYNTAX: Pick<ErrorDataFields, 'line'>;
  CONFIG_INVALID: Pick<ErrorDataFields, 'line'>;
  TEMPLATE_INVALID: Pick<ErrorDataFields, 'line' | 'template'>;
  SECRET_UNREADABLE: Pick<ErrorDataFields, 'field' | 'errors'>;
  STARTUP_CONFIG_INVALID: Pick<ErrorDataFields, 'busy'>;
  SERVICE_NOT_FOUND: Pick<ErrorDataFields, 'service'>;
  SYNC_FAILED: Pick<ErrorDataFields, 'sync'>;
  SERVICE_UNREACHABLE: ServiceData;
  TIMEOUT: ServiceData;
  RELOAD_FAILED: ServiceData;
  HEALTH_FAILED: ServiceData;
  CHECK_FAILED: ServiceData;
}

export type ErrorData<C extends ErrorCode> = C extends keyof ErrorDataMap ? ErrorDataMap[C] : Record<never, never>;

export interface AppErrorOptions<C extends ErrorCode> {
  /** Default: the catalogue's message for the code. */
  message?: string;
  /** Human-readable specifics; legacy apphub clients display this string. Default: the message. */
  details?: string;
  data?: ErrorData<C>;
  cause?: unknown;
  /** What else went wrong, told beside the error (a `Warning` header), e.g. an audit row not written. */
  warnings?: readonly string[];
}

export class AppError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly details: string;
  readonly data: Readonly<ErrorDataFields>;
  readonly warnings: readonly string[];

  constructor(code: C, options: AppErrorOptions<C> = {}) {
    const message = options.message ?? ERROR_CATALOGUE[code].message;
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = options.details ?? message;
    this.data = Object.freeze({ ...(options.data ?? {}) });
    this.warnings = Object.freeze([...(options.warnings ?? [])]);
  }

  get status(): number {
    return ERROR_CATALOGUE[this.code].status;
  }
}

/** The same error with `warnings` added (the error itself when there are none). */
export function withWarnings<C extends ErrorCode>(error: AppError<C>, warnings: readonly string[]): AppError<C> {
  if (warnings.length === 0) return error;
  return new AppError(error.code, {
    message: error.message,
    details: error.details,
    data: error.data as ErrorData<C>,
    cause: error.cause,
    warnings: [...error.warnings, ...warnings],
  });
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
  return { code: 'INTERNAL_ERROR', message: ERROR_CATALOGUE.INTERNAL_ERROR.message, details: ERROR_CATALOGUE.INTERNAL_ERROR.message };
}
