/**
 * The route table: every operation the HTTP server answers, with what it takes and what it
 * answers, success and error alike. The routers register their handlers through it
 * (route-helpers.ts `addPath`), and the OpenAPI document is generated from it (openapi.ts), so a
 * route cannot exist without its entry, and the document cannot promise what the server does not
 * do; test/http/openapi.test.ts holds both to it.
 *
 * Schemas are JSON Schema 2020-12, as OpenAPI 3.1 takes them; `{$ref: '#/components/schemas/X'}`
 * names a schema of SCHEMAS below, or one openapi.ts generates from config.ini's schema.
 */
import { REVISION_SOURCES } from '../core/actor.js';
import { ERROR_CATALOGUE, ERROR_CODES, type ErrorCode } from '../core/errors.js';
import { DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT } from '../history/history-queries.js';
import { FIELD_KINDS } from '../settings/field-kinds.js';

export type JsonSchema = Readonly<Record<string, unknown>>;

export const MAX_AUDIT_LIMIT = 1000;
export const DEFAULT_AUDIT_LIMIT = 100;

export interface ParameterSpec {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header';
  readonly required?: boolean;
  readonly description: string;
  readonly schema: JsonSchema;
}

export interface ResponseSpec {
  readonly description: string;
  /** The body's schema; absent only for bodies that are not JSON (contentType says what). */
  readonly schema?: JsonSchema;
  /** Default application/json. */
  readonly contentType?: string;
  /** Further media types the answer may have instead (chosen by a query parameter), with their schemas. */
  readonly alternatives?: Readonly<Record<string, JsonSchema>>;
  /** The answer carries the file revision as ETag (If-None-Match → 304). */
  readonly etag?: boolean;
  /** The answer has no body (the 101 that opens a WebSocket). */
  readonly noBody?: boolean;
}

export type HttpMethod = 'get' | 'put' | 'patch' | 'post' | 'delete';

export interface OperationSpec {
  readonly method: HttpMethod;
  /** As OpenAPI writes it: `/settings/{section}`. */
  readonly path: string;
  readonly tag: keyof typeof TAGS;
  readonly summary: string;
  readonly description?: string;
  /** Served at the root, without the key or the rate limits (probes and scrapes); else under /api/v1 and /api. */
  readonly public?: boolean;
  /** Under /api/v1 but not the key alone: `none` (the init script), `key_or_token` (a target's token as well). */
  readonly access?: 'none' | 'key_or_token';
  readonly parameters?: readonly ParameterSpec[];
  readonly body?: { readonly required: boolean; readonly description: string; readonly schema: JsonSchema };
  /** Success answers, and answers that are not errors (a 503 of /readyz), by status. */
  readonly responses: Readonly<Record<string, ResponseSpec>>;
  /**
   * The error codes this operation answers with besides those every /api/v1 operation may give
   * (API_AUTH_ERRORS); their statuses come from the error catalogue.
   */
  readonly errors: readonly ErrorCode[];
}

export const TAGS = {
  settings: 'config.ini, the user settings: read and write',
  env: "Environment variables: independent ones stored in config.ini's [env:<scope>] sections, mapped ones declared in system.ini",
  history: "config.ini's history: every revision, diffs, rollback",
  sync: 'The sync worker: per-target state, a forced reconcile, the event stream',
  system: 'system.ini, the system settings: read-only',
  services: 'Connection tests of the services confhub configures',
  audit: 'The audit log',
  webhooks: 'Webhook endpoints (Standard Webhooks and chat services), their deliveries and redelivery',
  environments: 'Environments: overlays [section@env] of config.ini, chosen by CONFHUB_ENVIRONMENT, and promotion between them',
  templates: 'Configuration templates for common scenarios: partial config.ini files with declared variables, previewed and applied',
  targets:
    "Pull integration: the targets with their files and state, each target's bundle of rendered files, read-only tokens for service containers, and their check-ins",
  meta: 'Probes, metrics and this document',
} as const;

/** What node:http answers any request with before it is routed: headers over the limit, or too slow to arrive. */
const TRANSPORT_ERRORS: readonly ErrorCode[] = ['HEADERS_TOO_LARGE', 'REQUEST_TIMEOUT'];
/** What any operation under /api/v1 may answer: a missing or wrong key, the rate limit, a query that is not exact, a fault. */
export const API_AUTH_ERRORS: readonly ErrorCode[] = ['API_KEY_MISSING', 'API_KEY_INVALID', 'RATE_LIMITED', 'INVALID_REQUEST', 'INTERNAL_ERROR'];
/** What a request body can be refused for before a route reads it. */
const BODY_ERRORS: readonly ErrorCode[] = ['MALFORMED_JSON', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];
/** What `?wait=true` adds: the revision did not apply, or the worker did not answer in time. */
const WAIT_ERRORS: readonly ErrorCode[] = ['SYNC_FAILED', 'TIMEOUT', 'CONFIG_INVALID'];
/** What a write of config.ini can be refused for. */
const WRITE_ERRORS: readonly ErrorCode[] = [
  ...BODY_ERRORS,
  'VALIDATION_FAILED',
  'INVALID_NAME',
  'PRECONDITION_FAILED',
  'CONFIG_CONFLICT',
  'CONFIG_INVALID',
  'SECRET_UNREADABLE',
  'INSUFFICIENT_STORAGE',
  ...WAIT_ERRORS,
];

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: JsonSchema): JsonSchema => ({ oneOf: [schema, { type: 'null' }] });
const commitId = { type: 'string', pattern: '^[0-9a-f]{40}$' } as const;
const revision = { type: 'string', description: 'sha256 of config.ini as written, in hex' } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const count = { type: 'integer', minimum: 0 } as const;

/** What every connection check answers beside its own fields. */
const checkResult = { ok: { type: 'boolean' }, latencyMs: count, checkedAt: dateTime, error: ref('PlainError') } as const;

const targetInstanceProperties = {
  instance: { type: 'string' },
  revision: { type: 'string' },
  current: { type: 'boolean', description: "It has the revision the target's bundle is of now" },
  at: dateTime,
  address: { type: ['string', 'null'] },
} as const;
const targetTokenProperties = {
  id: { type: 'string' },
  description: { type: 'string' },
  createdAt: dateTime,
  lastUsedAt: { type: ['string', 'null'], format: 'date-time' },
} as const;

/** The schemas the operations name, besides the ones of config.ini's and system.ini's sections. */
const WEBHOOK = {
  type: 'object',
  required: [
    'id',
    'url',
    'kind',
    'events',
    'active',
    'description',
    'disabledReason',
    'failingSince',
    'consecutiveFailures',
    'nextAttemptAt',
    'previousSecretValidUntil',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: { type: 'string', pattern: '^wh_[A-Za-z0-9_-]{16}$' },
    url: { type: 'string', description: 'What may be shown of the URL: no userinfo or query; of a chat service only its origin' },
    kind: { type: 'string', enum: ['standard', 'slack', 'discord', 'wecom', 'dingtalk', 'feishu'] },
    events: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Event types, or ["*"] for all' },
    active: { type: 'boolean' },
    description: { type: 'string' },
    disabledReason: { type: ['string', 'null'], description: 'Why confhub turned it off (410 Gone, failing for the whole retry window)' },
    failingSince: { type: ['string', 'null'], format: 'date-time' },
    consecutiveFailures: { type: 'integer', minimum: 0 },
    nextAttemptAt: { type: ['string', 'null'], format: 'date-time', description: 'The endpoint is backed off until then' },
    previousSecretValidUntil: { type: ['string', 'null'], format: 'date-time', description: 'During a rotation, the replaced secret signs too until then' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
  additionalProperties: false,
} as const satisfies JsonSchema;

const TEMPLATE_FIELDS = ['name', 'origin', 'title', 'description', 'variables'];
const templateProperties: Record<string, JsonSchema> = {
  name: { type: 'string' },
  origin: { type: 'string', enum: ['shipped', 'custom'] },
  title: { type: 'string' },
  description: { type: 'string' },
  variables: { type: 'array', items: ref('TemplateVariable') },
};

export const SCHEMAS: Readonly<Record<string, JsonSchema>> = {
  Error: {
    type: 'object',
    required: ['message', 'details', 'code'],
    properties: {
      message: { type: 'string', description: 'The short message of the code' },
      details: { type: 'string', description: 'The specifics; legacy apphub clients show this' },
      code: { type: 'string', enum: [...ERROR_CODES], description: 'The stable contract: clients match on it, never on message text' },
      errors: { type: 'array', description: 'VALIDATION_FAILED, SECRET_UNREADABLE: every failing field', items: ref('FieldIssue') },
      line: { type: 'integer', minimum: 1, description: 'CONFIG_INVALID: the line of config.ini with the first problem' },
      field: { type: 'string', description: 'SECRET_UNREADABLE: section.key of the value that does not open' },
      service: { type: 'string', description: 'SERVICE_NOT_FOUND: the name asked for' },
      sync: { ...ref('SyncReport'), description: 'SYNC_FAILED: the per-target results of the revision' },
    },
  },
  FieldIssue: {
    type: 'object',
    required: ['field', 'code', 'message'],
    properties: { field: { type: 'string', description: 'section.key' }, code: { type: 'string' }, message: { type: 'string' } },
  },
  PlainError: {
    type: 'object',
    required: ['code', 'message', 'details'],
    properties: { code: { type: 'string', enum: [...ERROR_CODES] }, message: { type: 'string' }, details: { type: 'string' } },
  },
  Actor: {
    type: 'object',
    required: ['type', 'id'],
    properties: {
      type: { type: 'string', enum: ['api', 'system', 'file'] },
      id: { type: 'string', description: 'API key fingerprint for api, a component name for system, file for hand edits' },
    },
  },
  TemplateVariable: {
    type: 'object',
    required: ['name', 'type', 'required', 'secret', 'default', 'description'],
    properties: {
      name: { type: 'string' },
      type: { type: 'string', description: 'The value type, as config.ini keys have' },
      required: { type: 'boolean' },
      secret: { type: 'boolean' },
      default: { type: ['string', 'null'], description: 'Masked for a secret' },
      description: { type: 'string' },
    },
    additionalProperties: false,
  },
  Template: { type: 'object', required: TEMPLATE_FIELDS, properties: templateProperties, additionalProperties: false },
  TemplateWithSections: {
    type: 'object',
    required: [...TEMPLATE_FIELDS, 'sections'],
    properties: {
      ...templateProperties,
      sections: {
        type: 'object',
        additionalProperties: { type: 'object', additionalProperties: { type: 'string' } },
        description: 'Values with {{ variable }} placeholders',
      },
    },
    additionalProperties: false,
  },
  TemplateRequest: {
    type: 'object',
    properties: {
      variables: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'array'] } },
      environment: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' },
    },
    additionalProperties: false,
  },
  KeyChangePreview: {
    type: 'object',
    required: ['key', 'before', 'after', 'change'],
    properties: {
      key: { type: 'string', description: 'section.key as config.ini holds it' },
      before: { type: ['string', 'null'] },
      after: { type: 'string' },
      change: { type: 'string', enum: ['added', 'changed', 'unchanged'] },
    },
    additionalProperties: false,
  },
  ExplainedValue: {
    type: 'object',
    required: ['value', 'source', 'line', 'kind', 'secret'],
    properties: {
      value: { type: ['string', 'number', 'boolean'] },
      source: { type: 'string', description: 'config.ini [section] or config.ini [section@env]' },
      line: count,
      raw: { type: 'string', description: 'The value as written, when references made it' },
      references: { type: 'array', items: { type: 'string' }, description: 'section.key of each key it refers to' },
      kind: { type: 'string', enum: Object.keys(FIELD_KINDS), description: 'The value type the schema declares (text for a key it does not declare)' },
      secret: { type: 'boolean', description: 'A password, token or key: masked in history, audit and logs' },
      description: { type: 'string', description: 'What the schema says of a key it declares' },
    },
    additionalProperties: false,
  },
  ExplainedSection: { type: 'object', additionalProperties: ref('ExplainedValue') },
  ExplainedSettings: { type: 'object', additionalProperties: ref('ExplainedSection') },
  Section: {
    type: 'object',
    description:
      'The keys of one section, typed by the schema (ports are numbers, booleans true or false); sealed secrets answer opened, as legacy clients need them',
    additionalProperties: { type: ['string', 'number', 'boolean'] },
  },
  TargetResult: {
    type: 'object',
    required: ['target', 'state', 'changed', 'writeMode', 'reloaded', 'healthy', 'durationMs', 'error'],
    properties: {
      target: { type: 'string' },
      state: { type: 'string', enum: ['in_sync', 'pending_reload', 'pending_write', 'failed', 'rolled_back'] },
      changed: { type: 'boolean', description: 'Its files changed' },
      writeMode: { type: ['string', 'null'], enum: ['rename', 'inplace', null] },
      reloaded: { type: 'boolean' },
      healthy: { type: ['boolean', 'null'], description: 'null when it has no health check or was not reloaded' },
      durationMs: count,
      error: nullable(ref('PlainError')),
    },
  },
  SyncReport: {
    type: 'object',
    description: 'What the sync worker did with one revision',
    required: ['revision', 'outcome', 'targets'],
    properties: {
      revision,
      outcome: { type: 'string', enum: ['applied', 'unchanged', 'failed', 'rolled_back'] },
      commit: { type: ['string', 'null'], description: 'The history commit of the revision; null when it could not be committed' },
      targets: { type: 'array', items: ref('TargetResult') },
      superseded: { type: 'array', items: { type: 'string' }, description: 'Targets that went on to a newer revision before running this one' },
    },
  },
  TargetInstance: {
    type: 'object',
    description: 'A service instance that installed a bundle, as its last check-in said',
    required: ['instance', 'revision', 'current', 'at', 'address'],
    properties: targetInstanceProperties,
    additionalProperties: false,
  },
  Target: {
    type: 'object',
    required: ['name', 'format', 'partOf', 'state', 'appliedRevision', 'lastError', 'bundle', 'instances'],
    properties: {
      name: { type: 'string' },
      format: { type: 'string' },
      partOf: { type: ['string', 'null'], description: "The target whose bundle also carries this target's file" },
      state: { type: 'string', enum: ['unknown', 'in_sync', 'pending_reload', 'pending_write', 'failed', 'rolled_back'] },
      appliedRevision: { type: ['string', 'null'] },
      lastError: nullable(ref('PlainError')),
      bundle: {
        type: 'object',
        required: ['revision', 'files'],
        properties: {
          revision: { type: ['string', 'null'], description: 'The revision its bundle is of now (its ETag); null until every file applied one' },
          files: {
            type: 'array',
            items: {
              type: 'object',
              required: ['target', 'path', 'output', 'mode'],
              properties: {
                target: { type: 'string' },
                path: { type: 'string', description: "Relative to the target's output directory, as the MANIFEST names it" },
                output: { type: 'string' },
                mode: { type: 'string', pattern: '^[0-7]{4}$' },
              },
              additionalProperties: false,
            },
          },
        },
        additionalProperties: false,
      },
      instances: { type: 'array', items: ref('TargetInstance') },
    },
    additionalProperties: false,
  },
  TargetToken: {
    type: 'object',
    required: ['id', 'description', 'createdAt', 'lastUsedAt'],
    properties: targetTokenProperties,
    additionalProperties: false,
  },
  TargetStatus: {
    type: 'object',
    required: ['target', 'output', 'format', 'reload', 'state', 'appliedRevision', 'lastRevision', 'lastRunAt', 'lastError'],
    properties: {
      target: { type: 'string' },
      output: { type: 'string' },
      format: { type: 'string' },
      reload: { type: 'string', description: 'How its service is reloaded, without credentials' },
      state: { type: 'string', enum: ['unknown', 'in_sync', 'pending_reload', 'pending_write', 'failed', 'rolled_back'] },
      appliedRevision: { type: ['string', 'null'] },
      lastRevision: { type: ['string', 'null'] },
      writeMode: { type: ['string', 'null'] },
      reloaded: { type: ['boolean', 'null'] },
      healthy: { type: ['boolean', 'null'] },
      durationMs: { type: ['integer', 'null'], minimum: 0 },
      lastRunAt: { type: ['string', 'null'], format: 'date-time' },
      lastError: nullable(ref('PlainError')),
      instances: {
        type: 'array',
        items: ref('TargetInstance'),
        description: 'Service instances that pulled its bundle (GET /targets/{name}/bundle) and checked in',
      },
    },
  },
  SyncStatus: {
    type: 'object',
    required: ['worker', 'source', 'lastRun', 'history', 'configRollback', 'targets'],
    properties: {
      worker: {
        type: 'object',
        required: ['alive', 'ready', 'restarts'],
        properties: { alive: { type: 'boolean' }, ready: { type: 'boolean' }, restarts: count },
      },
      source: {
        type: 'object',
        description: 'Whether config.ini as it is on disk can be used',
        required: ['valid', 'error'],
        properties: {
          valid: { type: 'boolean' },
          error: nullable({ allOf: [ref('PlainError')], properties: { line: { type: 'integer', minimum: 1 } } }),
        },
      },
      lastRun: nullable({
        type: 'object',
        required: ['revision', 'outcome', 'at'],
        properties: { revision, outcome: { type: 'string' }, at: dateTime },
      }),
      history: nullable({
        type: 'object',
        required: ['head', 'commits', 'lastCommitAt', 'lastError', 'repaired', 'push'],
        properties: {
          head: { type: ['string', 'null'] },
          commits: count,
          lastCommitAt: { type: ['string', 'null'], format: 'date-time' },
          lastError: nullable(ref('PlainError')),
          repaired: { type: 'array', items: { type: 'string' }, description: 'Lock files a crash left, removed at start' },
          push: nullable({
            type: 'object',
            required: ['remote', 'branch', 'state', 'pushedCommit', 'lastError', 'consecutiveFailures'],
            properties: {
              remote: { type: 'string', description: 'Never holds credentials' },
              branch: { type: 'string' },
              state: { type: 'string' },
              pushedCommit: { type: ['string', 'null'] },
              lastError: nullable(ref('PlainError')),
              lastAttemptAt: { type: ['string', 'null'], format: 'date-time' },
              nextAttemptAt: { type: ['string', 'null'], format: 'date-time' },
              consecutiveFailures: count,
            },
          }),
        },
      }),
      configRollback: nullable({
        type: 'object',
        description: 'An automatic rollback of config.ini that failed, while config.ini still holds the revision that failed',
        required: ['state', 'failedRevision', 'toRevision', 'error', 'at'],
        properties: { state: { const: 'failed' }, failedRevision: revision, toRevision: revision, error: ref('PlainError'), at: dateTime },
      }),
      targets: { type: 'array', items: ref('TargetStatus') },
    },
  },
  KeyChange: {
    type: 'object',
    required: ['key', 'change'],
    properties: { key: { type: 'string', description: 'section.key' }, change: { type: 'string', enum: ['added', 'removed', 'changed'] } },
  },
  HistoryCommit: {
    type: 'object',
    required: ['id', 'parent', 'time', 'actor', 'source', 'summary', 'revision', 'rollbackOf', 'template', 'changes', 'sync'],
    properties: {
      id: commitId,
      parent: nullable(commitId),
      time: dateTime,
      actor: ref('Actor'),
      source: { type: 'string', description: `What made the revision: ${REVISION_SOURCES.join(', ')}` },
      summary: { type: 'string' },
      revision: { type: ['string', 'null'] },
      rollbackOf: nullable(commitId),
      template: { type: ['string', 'null'], description: 'The configuration template the revision applied' },
      changes: { type: 'array', items: ref('KeyChange') },
      sync: nullable({
        type: 'object',
        description: "The revision's own sync run; null when it has not run (yet)",
        required: ['outcome', 'at'],
        properties: { outcome: { type: 'string' }, at: dateTime },
      }),
    },
  },
  StructuredDiff: {
    type: 'object',
    description: 'Keys (section.key) added, removed and changed; values of secrets masked',
    required: ['added', 'removed', 'changed'],
    properties: {
      added: { type: 'object', additionalProperties: { type: 'string' } },
      removed: { type: 'object', additionalProperties: { type: 'string' } },
      changed: {
        type: 'object',
        additionalProperties: { type: 'object', required: ['old', 'new'], properties: { old: { type: 'string' }, new: { type: 'string' } } },
      },
    },
  },
  AuditEntry: {
    type: 'object',
    required: ['id', 'time', 'actor', 'action', 'section', 'key', 'oldValue', 'newValue', 'result', 'errorCode', 'revision'],
    properties: {
      id: { type: 'integer', minimum: 1 },
      time: dateTime,
      actor: {
        type: 'object',
        required: ['type', 'id', 'remoteAddress', 'userAgent', 'requestId'],
        properties: {
          type: { type: 'string', enum: ['api', 'system', 'file'] },
          id: { type: 'string' },
          remoteAddress: { type: ['string', 'null'] },
          userAgent: { type: ['string', 'null'] },
          requestId: { type: ['string', 'null'] },
        },
      },
      action: { type: 'string', description: 'settings.update, settings.rollback, settings.merge, …' },
      section: { type: ['string', 'null'] },
      key: { type: ['string', 'null'] },
      oldValue: { type: ['string', 'null'], description: 'Masked for secrets' },
      newValue: { type: ['string', 'null'], description: 'Masked for secrets' },
      result: { type: 'string' },
      errorCode: { type: ['string', 'null'] },
      revision: { type: ['string', 'null'] },
    },
  },
  EnvVariable: {
    type: 'object',
    required: ['value', 'secret', 'source'],
    properties: {
      value: { type: 'string', description: 'Masked (******) when secret, unless ?reveal=true' },
      secret: {
        type: 'boolean',
        description: 'Sealed at rest and masked: written with secret: true, a name that looks secret, or mapped from a secret setting',
      },
      source: { type: 'string', description: 'config.ini (set through this API or by hand) or mapped:<section>.<key> (declared in system.ini, read-only)' },
    },
    additionalProperties: false,
  },
  Webhook: WEBHOOK,
  WebhookCreated: {
    ...WEBHOOK,
    properties: {
      ...WEBHOOK.properties,
      secret: { type: 'string', pattern: '^whsec_', description: 'A standard endpoint’s signing secret: shown in this answer only' },
    },
  },
  WebhookInput: {
    type: 'object',
    properties: {
      url: { type: 'string', maxLength: 2048, description: 'http or https; checked again, on every resolved address, at each delivery' },
      kind: { type: 'string', enum: ['standard', 'slack', 'discord', 'wecom', 'dingtalk', 'feishu'], default: 'standard' },
      events: { type: 'array', items: { type: 'string' }, minItems: 1, default: ['*'] },
      active: { type: 'boolean', default: true },
      description: { type: 'string', maxLength: 500 },
      secret: {
        type: 'string',
        description:
          "On creation only. standard: whsec_ + base64 of 24 to 64 bytes, generated when absent; dingtalk, feishu: the robot's own signing secret, when its signature check is on",
      },
    },
    additionalProperties: false,
  },
  Delivery: {
    type: 'object',
    required: ['id', 'webhook', 'messageId', 'state', 'events', 'createdAt', 'finishedAt', 'attemptCount', 'lastError', 'redeliveryOf', 'attempts'],
    properties: {
      id: { type: 'integer', minimum: 1 },
      webhook: { type: 'string' },
      messageId: { type: 'string', description: 'The webhook-id header: the same for every attempt and redelivery of the message' },
      state: { type: 'string', enum: ['collecting', 'pending', 'delivered', 'failed'] },
      events: {
        type: 'array',
        items: {
          type: 'object',
          required: ['id', 'type'],
          properties: { id: { type: 'integer', minimum: 0 }, type: { type: 'string' } },
          additionalProperties: false,
        },
      },
      createdAt: { type: 'string', format: 'date-time' },
      finishedAt: { type: ['string', 'null'], format: 'date-time' },
      attemptCount: { type: 'integer', minimum: 0 },
      lastError: { type: ['string', 'null'] },
      redeliveryOf: { type: ['integer', 'null'] },
      attempts: {
        type: 'array',
        description: 'The newest attempts first (at most 20)',
        items: {
          type: 'object',
          required: ['at', 'durationMs', 'result', 'responseStatus', 'responseBody', 'error', 'nextAttemptAt'],
          properties: {
            at: { type: 'string', format: 'date-time' },
            durationMs: { type: 'integer', minimum: 0 },
            result: { type: 'string', enum: ['delivered', 'failed', 'blocked'] },
            responseStatus: { type: ['integer', 'null'] },
            responseBody: { type: ['string', 'null'], description: 'The first 4 KB of the answer' },
            error: { type: ['string', 'null'] },
            nextAttemptAt: { type: ['string', 'null'], format: 'date-time' },
          },
          additionalProperties: false,
        },
      },
    },
    additionalProperties: false,
  },
  EnvScope: { type: 'object', description: 'Variables by name', additionalProperties: ref('EnvVariable') },
  EnvWriteResult: {
    type: 'object',
    required: ['revision', 'changed', 'consumers'],
    properties: {
      revision,
      changed: { type: 'array', items: { type: 'string' }, description: 'Names of the variables the write changed' },
      consumers: {
        type: 'array',
        description: 'The consumers whose environment changed, and what each of their targets does with it',
        items: {
          type: 'object',
          required: ['consumer', 'targets'],
          properties: {
            consumer: { type: 'string' },
            targets: {
              type: 'array',
              items: {
                type: 'object',
                required: ['target', 'output', 'reload'],
                properties: {
                  target: { type: 'string' },
                  output: { type: 'string', description: 'The file written' },
                  reload: { type: 'string', description: 'What follows the write (container recreated, program updated, …), as system.ini declares it' },
                },
              },
            },
          },
        },
      },
      sync: { ...ref('SyncReport'), description: 'With ?wait=true' },
    },
    additionalProperties: false,
  },
  Readiness: {
    type: 'object',
    required: ['status', 'reasons'],
    properties: { status: { type: 'string', enum: ['ready', 'not_ready'] }, reasons: { type: 'array', items: { type: 'string' } } },
  },
  ConnectionCheck: {
    oneOf: [
      {
        type: 'object',
        required: ['kind', 'container', 'ok', 'latencyMs', 'checkedAt'],
        properties: {
          kind: { const: 'container' },
          container: { type: 'string', description: 'As system.ini names it: NAME or label=KEY[=VALUE]' },
          state: { type: 'string', description: "Docker's State.Status (running, exited, …); missing when Docker did not answer" },
          health: { type: 'string', enum: ['healthy', 'unhealthy', 'starting', 'none'] },
          ...checkResult,
        },
      },
      {
        type: 'object',
        required: ['kind', 'program', 'ok', 'latencyMs', 'checkedAt'],
        properties: {
          kind: { const: 'supervisor' },
          program: { type: 'string' },
          state: { type: 'string', description: 'supervisord state name (RUNNING, STOPPED, FATAL, …); missing when supervisord did not answer' },
          ...checkResult,
        },
      },
      {
        type: 'object',
        required: ['kind', 'url', 'source', 'ok', 'latencyMs', 'checkedAt'],
        properties: {
          kind: { const: 'http' },
          url: { type: 'string', description: 'Without userinfo, query or fragment' },
          source: { type: 'string', description: "health (a target's health URL, must answer 2xx) or section.key of config.ini (any answer below 500 is ok)" },
          status: { type: 'integer', description: 'HTTP status; missing when nothing answered' },
          ...checkResult,
        },
      },
    ],
  },
  Service: {
    type: 'object',
    required: ['name', 'kind', 'ok', 'stale', 'checkedAt', 'checks'],
    properties: {
      name: { type: 'string', description: 'Target name, or the config.ini section of a service URL' },
      kind: { type: 'string', enum: ['target', 'url'] },
      ok: { type: ['boolean', 'null'], description: 'Every check passed; null when never checked or nothing to check' },
      stale: { type: 'boolean', description: 'Never checked, declaration changed, or older than the cache age' },
      checkedAt: { type: ['string', 'null'], format: 'date-time' },
      checks: { type: 'array', items: ref('ConnectionCheck') },
    },
  },
};

const resolvedParameter: ParameterSpec = {
  name: 'resolved',
  in: 'query',
  description: 'false: the values as written in config.ini (references and overlays [section@env] raw); default the values services get',
  schema: { type: 'boolean', default: true },
};
const explainParameter: ParameterSpec = {
  name: 'explain',
  in: 'query',
  description: 'Each value with its provenance: the section of config.ini it came from, its line, the raw value and the keys it refers to',
  schema: { type: 'boolean', default: false },
};
const environmentParameter: ParameterSpec = {
  name: 'environment',
  in: 'query',
  description:
    'An environment: reads resolve its overlays [section@NAME]; writes set them (default: the running environment for reads, the base sections for writes)',
  schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' },
};
const templateName: ParameterSpec = { name: 'name', in: 'path', required: true, description: 'Template name', schema: { type: 'string' } };
const sectionParameter: ParameterSpec = { name: 'section', in: 'path', required: true, description: 'Section name', schema: { type: 'string' } };
const waitParameter: ParameterSpec = {
  name: 'wait',
  in: 'query',
  description: 'Answer once the sync worker applied the revision, with its per-target results (502 SYNC_FAILED when it did not apply)',
  schema: { type: 'boolean', default: false },
};
const ifMatchParameter: ParameterSpec = {
  name: 'If-Match',
  in: 'header',
  description: 'The ETag of the revision the change was made against (412 PRECONDITION_FAILED when config.ini changed since)',
  schema: { type: 'string' },
};
const scopeParameter: ParameterSpec = {
  name: 'scope',
  in: 'path',
  required: true,
  description: 'global, or a consumer declared in system.ini',
  schema: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,52}$' },
};
const envNameParameter: ParameterSpec = {
  name: 'name',
  in: 'path',
  required: true,
  description: 'Variable name',
  schema: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 256 },
};
const webhookIdParameter: ParameterSpec = { name: 'id', in: 'path', required: true, description: 'Webhook id', schema: { type: 'string', maxLength: 64 } };
const revealParameter: ParameterSpec = {
  name: 'reveal',
  in: 'query',
  description: 'Answer secret values in plain text (audited as env.reveal)',
  schema: { type: 'boolean', default: false },
};
const envWriteValue: JsonSchema = {
  oneOf: [
    { type: 'string' },
    { type: 'object', required: ['value'], properties: { value: { type: 'string' }, secret: { type: 'boolean' } }, additionalProperties: false },
  ],
  description: 'Any text without NUL (multi-line allowed, kept exactly); secret: true seals it at rest and masks it',
};
/** What an env write may be refused for, besides the store's refusals. */
const ENV_WRITE_ERRORS: readonly ErrorCode[] = [...WRITE_ERRORS, 'ENV_SCOPE_NOT_FOUND', 'ENV_MAPPED', 'KEY_NOT_FOUND'];
const commitish = { type: 'string', pattern: '^[0-9a-fA-F]{4,40}$' } as const;
/** A value as a write takes it. */
const writeValue: JsonSchema = {
  oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'array', items: { type: 'string' } }],
  description:
    'A string for every key; a port also takes a JSON integer, a boolean key true or false, a list key an array of strings. Anything else is VALIDATION_FAILED with an INVALID_TYPE error naming the key.',
};
const sectionValues: JsonSchema = { type: 'object', minProperties: 1, additionalProperties: writeValue };
const waited = (settings: JsonSchema): JsonSchema => ({
  oneOf: [
    settings,
    {
      type: 'object',
      description: 'With ?wait=true',
      required: ['settings', 'sync'],
      properties: { settings, sync: ref('SyncReport') },
      additionalProperties: false,
    },
  ],
});

const targetNameParameter: ParameterSpec = {
  name: 'name',
  in: 'path',
  required: true,
  description: 'A target of system.ini ([target:NAME])',
  schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' },
};

export const OPERATIONS = {
  getSettings: {
    method: 'get',
    path: '/settings',
    tag: 'settings',
    summary: 'All sections of config.ini',
    parameters: [resolvedParameter, explainParameter, environmentParameter],
    responses: { '200': { description: 'Every section', schema: { anyOf: [ref('Settings'), ref('ExplainedSettings')] }, etag: true } },
    errors: ['INVALID_NAME', 'CONFIG_INVALID', 'SECRET_UNREADABLE'],
  },
  patchSettings: {
    method: 'patch',
    path: '/settings',
    tag: 'settings',
    summary: 'Change keys across sections, all or nothing',
    parameters: [waitParameter, ifMatchParameter, environmentParameter],
    body: { required: true, description: '{section: {key: value}}', schema: { type: 'object', minProperties: 1, additionalProperties: sectionValues } },
    responses: { '200': { description: 'Every section after the change', schema: waited(ref('Settings')), etag: true } },
    errors: [...WRITE_ERRORS, 'SECTION_NOT_FOUND', 'KEY_NOT_FOUND'],
  },
  getSection: {
    method: 'get',
    path: '/settings/{section}',
    tag: 'settings',
    summary: 'One section of config.ini',
    parameters: [sectionParameter, resolvedParameter, explainParameter, environmentParameter],
    responses: { '200': { description: 'The section', schema: { anyOf: [ref('Section'), ref('ExplainedSection')] }, etag: true } },
    errors: ['SECTION_NOT_FOUND', 'INVALID_NAME', 'CONFIG_INVALID', 'SECRET_UNREADABLE'],
  },
  putSection: {
    method: 'put',
    path: '/settings/{section}',
    tag: 'settings',
    summary: 'Change keys of one section: legacy ?key=&value=, or a JSON object, all or nothing',
    parameters: [
      sectionParameter,
      { name: 'key', in: 'query', description: 'Legacy apphub form: the key to set (then no body)', schema: { type: 'string' } },
      { name: 'value', in: 'query', description: 'Legacy apphub form: its value', schema: { type: 'string' } },
      waitParameter,
      ifMatchParameter,
      environmentParameter,
    ],
    body: { required: false, description: '{key: value}; absent in the legacy form', schema: sectionValues },
    responses: { '200': { description: 'The section after the change', schema: waited(ref('Section')), etag: true } },
    errors: [...WRITE_ERRORS, 'SECTION_NOT_FOUND', 'KEY_NOT_FOUND'],
  },
  getKey: {
    method: 'get',
    path: '/settings/{section}/{key}',
    tag: 'settings',
    summary: 'One value of config.ini',
    parameters: [
      sectionParameter,
      { name: 'key', in: 'path', required: true, description: 'Key name (any case)', schema: { type: 'string' } },
      resolvedParameter,
      environmentParameter,
    ],
    responses: { '200': { description: '{key: value}', schema: { ...ref('Section'), minProperties: 1, maxProperties: 1 }, etag: true } },
    errors: ['SECTION_NOT_FOUND', 'KEY_NOT_FOUND', 'INVALID_NAME', 'CONFIG_INVALID', 'SECRET_UNREADABLE'],
  },
  deleteOverride: {
    method: 'delete',
    path: '/settings/{section}/{key}',
    tag: 'environments',
    summary: "Remove an environment's override of a key: the environment gets the section's value again",
    parameters: [
      sectionParameter,
      { name: 'key', in: 'path', required: true, description: 'Key name (any case)', schema: { type: 'string' } },
      { ...environmentParameter, required: true, description: 'The environment whose overlay [section@NAME] holds the key' },
      waitParameter,
      ifMatchParameter,
    ],
    responses: { '200': { description: 'The section in that environment after the change', schema: waited(ref('Section')), etag: true } },
    errors: [...WRITE_ERRORS, 'SECTION_NOT_FOUND', 'KEY_NOT_FOUND'],
  },
  listTemplates: {
    method: 'get',
    path: '/templates',
    tag: 'templates',
    summary: "The shipped templates and the administrator's own (config directory's templates/), and files that could not be read",
    responses: {
      '200': {
        description: 'The templates',
        schema: {
          type: 'object',
          required: ['templates', 'problems'],
          properties: {
            templates: { type: 'array', items: ref('Template') },
            problems: {
              type: 'array',
              items: {
                type: 'object',
                required: ['file', 'details'],
                properties: { file: { type: 'string' }, details: { type: 'string' } },
                additionalProperties: false,
              },
            },
          },
          additionalProperties: false,
        },
      },
    },
    errors: [],
  },
  getTemplate: {
    method: 'get',
    path: '/templates/{name}',
    tag: 'templates',
    summary: 'One template with its variables and the sections it sets',
    parameters: [templateName],
    responses: { '200': { description: 'The template', schema: ref('TemplateWithSections') } },
    errors: ['TEMPLATE_NOT_FOUND'],
  },
  previewTemplate: {
    method: 'post',
    path: '/templates/{name}/preview',
    tag: 'templates',
    summary: 'What applying the template would do, writing nothing: the keys, the config.ini diff, the values with provenance, the targets and services',
    parameters: [templateName],
    body: { required: false, description: 'The variables, and an environment whose overlays the template would set', schema: ref('TemplateRequest') },
    responses: {
      '200': {
        description: 'The preview (secrets masked)',
        schema: {
          type: 'object',
          required: ['template', 'environment', 'valid', 'unresolved', 'errors', 'changes', 'diff', 'settings', 'targets'],
          properties: {
            template: { type: 'string' },
            environment: { type: ['string', 'null'] },
            valid: { type: 'boolean', description: 'Applying it would be accepted' },
            unresolved: { type: 'array', items: { type: 'string' }, description: 'Required variables not given' },
            errors: { type: 'array', items: ref('FieldIssue'), description: 'Bad variables, then what validation of the whole file refuses' },
            changes: { type: 'array', items: ref('KeyChangePreview') },
            diff: { type: 'string', description: 'Unified diff of config.ini' },
            settings: { ...ref('ExplainedSettings'), description: 'The sections it sets, resolved, with provenance' },
            targets: {
              type: 'array',
              items: {
                type: 'object',
                required: ['target', 'change', 'service', 'diff'],
                properties: {
                  target: { type: 'string' },
                  change: { type: 'string', enum: ['create', 'update', 'mode', 'error'] },
                  service: { type: ['string', 'null'], description: 'What its reload reaches' },
                  diff: { type: 'string' },
                },
                additionalProperties: false,
              },
            },
          },
          additionalProperties: false,
        },
      },
    },
    errors: [...BODY_ERRORS, 'TEMPLATE_NOT_FOUND', 'TEMPLATE_INVALID', 'INVALID_NAME', 'CONFIG_INVALID', 'SECRET_UNREADABLE'],
  },
  applyTemplate: {
    method: 'post',
    path: '/templates/{name}/apply',
    tag: 'templates',
    summary: 'Apply the template in one write, all or nothing (audited as settings.template, committed with its name)',
    parameters: [templateName, waitParameter, ifMatchParameter],
    body: { required: false, description: 'The variables, and an environment whose overlays the template sets', schema: ref('TemplateRequest') },
    responses: {
      '200': {
        description: 'What it changed',
        etag: true,
        schema: {
          type: 'object',
          required: ['template', 'environment', 'revision', 'changes'],
          properties: {
            template: { type: 'string' },
            environment: { type: ['string', 'null'] },
            revision,
            changes: { type: 'array', items: ref('KeyChangePreview') },
            sync: { ...ref('SyncReport'), description: 'With ?wait=true' },
          },
          additionalProperties: false,
        },
      },
    },
    errors: [...WRITE_ERRORS, 'TEMPLATE_NOT_FOUND', 'TEMPLATE_INVALID', 'SECTION_NOT_FOUND', 'KEY_NOT_FOUND'],
  },
  listEnvironments: {
    method: 'get',
    path: '/environments',
    tag: 'environments',
    summary: 'The environments config.ini has overlays for, and the one confhub runs in',
    responses: {
      '200': {
        description: 'The environments',
        schema: {
          type: 'object',
          required: ['active', 'environments'],
          properties: {
            active: { type: ['string', 'null'], description: 'CONFHUB_ENVIRONMENT; null: no overlay applies' },
            environments: {
              type: 'array',
              items: {
                type: 'object',
                required: ['name', 'sections', 'keys'],
                properties: { name: { type: 'string' }, sections: { type: 'array', items: { type: 'string' } }, keys: count },
                additionalProperties: false,
              },
            },
          },
          additionalProperties: false,
        },
      },
    },
    errors: ['CONFIG_INVALID', 'SECRET_UNREADABLE'],
  },
  promoteEnvironment: {
    method: 'post',
    path: '/environments/promote',
    tag: 'environments',
    summary: "Copy one environment's overlay values into another's, in one audited write (or only show the diff with ?dry_run=true)",
    parameters: [
      {
        name: 'dry_run',
        in: 'query',
        description: 'Answer the diff and whether the write would be accepted; write nothing',
        schema: { type: 'boolean', default: false },
      },
      waitParameter,
      ifMatchParameter,
    ],
    body: {
      required: true,
      description: 'From which environment to which, and optionally which keys',
      schema: {
        type: 'object',
        required: ['from', 'to'],
        properties: {
          from: { type: 'string' },
          to: { type: 'string' },
          keys: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1000, description: 'section.key names; default every key of from' },
        },
        additionalProperties: false,
      },
    },
    responses: {
      '200': {
        description: 'The diff (secrets masked); the write when not a dry run',
        etag: true,
        schema: {
          type: 'object',
          required: ['from', 'to', 'dryRun', 'changes'],
          properties: {
            from: { type: 'string' },
            to: { type: 'string' },
            dryRun: { type: 'boolean' },
            valid: { type: 'boolean', description: 'Dry run: the write would be accepted' },
            errors: { type: 'array', items: ref('FieldIssue'), description: 'Dry run: why it would not' },
            revision,
            changes: {
              type: 'array',
              items: {
                type: 'object',
                required: ['key', 'before', 'after', 'change'],
                properties: {
                  key: { type: 'string' },
                  before: { type: ['string', 'null'] },
                  after: { type: ['string', 'null'] },
                  change: { type: 'string', enum: ['added', 'changed', 'unchanged'] },
                },
                additionalProperties: false,
              },
            },
            sync: { ...ref('SyncReport'), description: 'With ?wait=true' },
          },
          additionalProperties: false,
        },
      },
    },
    errors: [...WRITE_ERRORS, 'ENVIRONMENT_NOT_FOUND', 'KEY_NOT_FOUND'],
  },
  listWebhooks: {
    method: 'get',
    path: '/webhooks',
    tag: 'webhooks',
    summary: 'Every webhook endpoint',
    responses: {
      '200': {
        description: 'The endpoints',
        schema: { type: 'object', required: ['webhooks'], properties: { webhooks: { type: 'array', items: ref('Webhook') } } },
      },
    },
    errors: [],
  },
  createWebhook: {
    method: 'post',
    path: '/webhooks',
    tag: 'webhooks',
    summary: 'Add an endpoint; its signing secret is in this answer only',
    body: { required: true, description: 'url is required', schema: ref('WebhookInput') },
    responses: {
      '201': {
        description: 'The endpoint, with its signing secret (shown once)',
        schema: ref('WebhookCreated'),
      },
    },
    errors: [...BODY_ERRORS, 'VALIDATION_FAILED', 'WEBHOOK_LIMIT_REACHED'],
  },
  getWebhook: {
    method: 'get',
    path: '/webhooks/{id}',
    tag: 'webhooks',
    summary: 'One endpoint',
    parameters: [webhookIdParameter],
    responses: { '200': { description: 'The endpoint', schema: ref('Webhook') } },
    errors: ['WEBHOOK_NOT_FOUND'],
  },
  patchWebhook: {
    method: 'patch',
    path: '/webhooks/{id}',
    tag: 'webhooks',
    summary: 'Change an endpoint; active: true turns one confhub disabled on again, from the newest event',
    parameters: [webhookIdParameter],
    body: { required: true, description: 'The fields to change (not secret)', schema: ref('WebhookInput') },
    responses: { '200': { description: 'The endpoint', schema: ref('Webhook') } },
    errors: [...BODY_ERRORS, 'VALIDATION_FAILED', 'WEBHOOK_NOT_FOUND'],
  },
  deleteWebhook: {
    method: 'delete',
    path: '/webhooks/{id}',
    tag: 'webhooks',
    summary: 'Remove an endpoint with its deliveries',
    parameters: [webhookIdParameter],
    responses: {
      '200': {
        description: 'Removed',
        schema: { type: 'object', required: ['deleted'], properties: { deleted: { type: 'string' } }, additionalProperties: false },
      },
    },
    errors: ['WEBHOOK_NOT_FOUND'],
  },
  rotateWebhookSecret: {
    method: 'post',
    path: '/webhooks/{id}/rotate-secret',
    tag: 'webhooks',
    summary: "A standard endpoint's new signing secret (shown once; the replaced one signs beside it for 24 hours), or a DingTalk/Feishu robot's new secret",
    parameters: [webhookIdParameter],
    body: {
      required: false,
      description: '{"secret": "whsec_…"} to choose a standard endpoint\'s (generated when absent); a DingTalk or Feishu robot\'s new secret (required)',
      schema: { type: 'object', properties: { secret: { type: 'string' } }, additionalProperties: false },
    },
    responses: {
      '200': {
        description: 'The new secret',
        schema: {
          type: 'object',
          required: ['previousSecretValidUntil', 'webhook'],
          properties: {
            secret: { type: 'string', pattern: '^whsec_', description: "A standard endpoint's new secret (a robot's own secret is never shown)" },
            previousSecretValidUntil: { type: ['string', 'null'], format: 'date-time' },
            webhook: ref('Webhook'),
          },
          additionalProperties: false,
        },
      },
    },
    errors: [...BODY_ERRORS, 'VALIDATION_FAILED', 'WEBHOOK_NOT_FOUND'],
  },
  testWebhook: {
    method: 'post',
    path: '/webhooks/{id}/test',
    tag: 'webhooks',
    summary: 'Send a webhook.test message now (whatever the backoff, on or off) and answer with its attempt',
    parameters: [webhookIdParameter],
    responses: { '200': { description: 'The test delivery after its attempt', schema: ref('Delivery') } },
    errors: ['WEBHOOK_NOT_FOUND', 'DELIVERY_NOT_FOUND'],
  },
  listWebhookDeliveries: {
    method: 'get',
    path: '/webhooks/{id}/deliveries',
    tag: 'webhooks',
    summary: 'The delivery log of an endpoint, newest first, with each attempt',
    parameters: [
      webhookIdParameter,
      { name: 'limit', in: 'query', description: 'At most this many (default 50)', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
      { name: 'before', in: 'query', description: 'Deliveries with a smaller id (the `next` of the previous page)', schema: { type: 'integer', minimum: 1 } },
    ],
    responses: {
      '200': {
        description: 'A page of deliveries',
        schema: {
          type: 'object',
          required: ['deliveries', 'next'],
          properties: { deliveries: { type: 'array', items: ref('Delivery') }, next: { type: ['integer', 'null'] } },
          additionalProperties: false,
        },
      },
    },
    errors: ['WEBHOOK_NOT_FOUND'],
  },
  redeliverWebhookDelivery: {
    method: 'post',
    path: '/webhooks/{id}/deliveries/{deliveryId}/redeliver',
    tag: 'webhooks',
    summary: 'Send a finished delivery again, as the same message (same webhook-id)',
    parameters: [webhookIdParameter, { name: 'deliveryId', in: 'path', required: true, description: 'Delivery id', schema: { type: 'integer', minimum: 1 } }],
    responses: { '202': { description: 'The new delivery, queued', schema: ref('Delivery') } },
    errors: ['WEBHOOK_NOT_FOUND', 'DELIVERY_NOT_FOUND', 'DELIVERY_IN_PROGRESS', 'WEBHOOK_INACTIVE'],
  },
  listEnv: {
    method: 'get',
    path: '/env',
    tag: 'env',
    summary: 'The variables of every scope (global and each consumer), secrets masked',
    parameters: [revealParameter],
    responses: { '200': { description: 'Variables by scope', schema: { type: 'object', additionalProperties: ref('EnvScope') }, etag: true } },
    errors: ['CONFIG_INVALID', 'SECRET_UNREADABLE'],
  },
  getEnvScope: {
    method: 'get',
    path: '/env/{scope}',
    tag: 'env',
    summary: "A scope's variables: for a consumer its mapped and its own ones, for global the global ones",
    parameters: [scopeParameter, revealParameter],
    responses: { '200': { description: 'Variables by name', schema: ref('EnvScope'), etag: true } },
    errors: ['ENV_SCOPE_NOT_FOUND', 'INVALID_NAME', 'CONFIG_INVALID', 'SECRET_UNREADABLE'],
  },
  patchEnvScope: {
    method: 'patch',
    path: '/env/{scope}',
    tag: 'env',
    summary: 'Set, change or remove (null) variables of a scope, all or nothing',
    parameters: [scopeParameter, waitParameter, ifMatchParameter],
    body: {
      required: true,
      description: '{NAME: "value" | {"value": "...", "secret": true} | null}',
      schema: { type: 'object', minProperties: 1, additionalProperties: { oneOf: [envWriteValue, { type: 'null' }] } },
    },
    responses: { '200': { description: 'The revision, and what changes for whom', schema: ref('EnvWriteResult'), etag: true } },
    errors: ENV_WRITE_ERRORS,
  },
  exportEnv: {
    method: 'get',
    path: '/env/{scope}/export',
    tag: 'env',
    summary: 'What the scope receives (global ∪ mapped ∪ its own), as a compose .env file or JSON; secrets masked unless reveal',
    description: 'A variable named export is read through GET /env/{scope}; PUT and DELETE /env/{scope}/export set and remove it.',
    parameters: [
      scopeParameter,
      {
        name: 'format',
        in: 'query',
        description: 'dotenv (compose v2 reads back every value exactly) or json',
        schema: { type: 'string', enum: ['dotenv', 'json'], default: 'dotenv' },
      },
      revealParameter,
    ],
    responses: {
      '200': {
        description: 'The environment: format=dotenv NAME="value" lines, format=json {NAME: value}',
        contentType: 'text/plain; charset=utf-8',
        schema: { type: 'string' },
        alternatives: { 'application/json': { type: 'object', additionalProperties: { type: 'string' } } },
      },
    },
    errors: ['ENV_SCOPE_NOT_FOUND', 'INVALID_NAME', 'CONFIG_INVALID', 'SECRET_UNREADABLE'],
  },
  getEnvVariable: {
    method: 'get',
    path: '/env/{scope}/{name}',
    tag: 'env',
    summary: 'One variable of a scope',
    parameters: [scopeParameter, envNameParameter, revealParameter],
    responses: { '200': { description: 'The variable', schema: ref('EnvVariable'), etag: true } },
    errors: ['ENV_SCOPE_NOT_FOUND', 'ENV_VARIABLE_NOT_FOUND', 'INVALID_NAME', 'CONFIG_INVALID', 'SECRET_UNREADABLE'],
  },
  putEnvVariable: {
    method: 'put',
    path: '/env/{scope}/{name}',
    tag: 'env',
    summary: 'Set one variable',
    parameters: [scopeParameter, envNameParameter, waitParameter, ifMatchParameter],
    body: {
      required: true,
      description: '{"value": "...", "secret": true|false}',
      schema: { type: 'object', required: ['value'], properties: { value: { type: 'string' }, secret: { type: 'boolean' } }, additionalProperties: false },
    },
    responses: { '200': { description: 'The revision, and what changes for whom', schema: ref('EnvWriteResult'), etag: true } },
    errors: ENV_WRITE_ERRORS,
  },
  deleteEnvVariable: {
    method: 'delete',
    path: '/env/{scope}/{name}',
    tag: 'env',
    summary: 'Remove one variable',
    parameters: [scopeParameter, envNameParameter, waitParameter, ifMatchParameter],
    responses: { '200': { description: 'The revision, and what changes for whom', schema: ref('EnvWriteResult'), etag: true } },
    errors: [...ENV_WRITE_ERRORS, 'ENV_VARIABLE_NOT_FOUND'],
  },
  listHistory: {
    method: 'get',
    path: '/settings/history',
    tag: 'history',
    summary: 'Commits of config.ini, newest first, with who made them, the keys they changed and their sync outcome',
    parameters: [
      {
        name: 'limit',
        in: 'query',
        description: 'Commits per page',
        schema: { type: 'integer', minimum: 1, maximum: MAX_HISTORY_LIMIT, default: DEFAULT_HISTORY_LIMIT },
      },
      { name: 'before', in: 'query', description: "A commit id: older commits only (the previous page's next)", schema: commitish },
    ],
    responses: {
      '200': {
        description: 'A page of commits',
        schema: {
          type: 'object',
          required: ['commits', 'next'],
          properties: { commits: { type: 'array', items: ref('HistoryCommit') }, next: nullable(commitId) },
        },
      },
    },
    errors: ['COMMIT_NOT_FOUND', 'HISTORY_FAILED'],
  },
  getCommit: {
    method: 'get',
    path: '/settings/history/{commit}',
    tag: 'history',
    summary: 'One commit with its diff, key by key and unified (secrets masked)',
    parameters: [{ name: 'commit', in: 'path', required: true, description: 'A commit id or its prefix', schema: commitish }],
    responses: {
      '200': {
        description: 'The commit',
        schema: {
          allOf: [ref('HistoryCommit')],
          required: ['diff', 'resolved', 'unified'],
          properties: {
            diff: { ...ref('StructuredDiff'), description: 'The keys as written' },
            resolved: { ...ref('StructuredDiff'), description: 'The values services get: references replaced, the running environment applied' },
            unified: { type: 'string' },
          },
        },
      },
    },
    errors: ['COMMIT_NOT_FOUND', 'HISTORY_FAILED'],
  },
  getDiff: {
    method: 'get',
    path: '/settings/diff',
    tag: 'history',
    summary: 'The difference between two commits (to defaults to the newest), secrets masked',
    parameters: [
      { name: 'from', in: 'query', required: true, description: 'A commit id or its prefix', schema: commitish },
      { name: 'to', in: 'query', description: 'A commit id or its prefix; default the newest', schema: commitish },
    ],
    responses: {
      '200': {
        description: 'The diff',
        schema: {
          type: 'object',
          required: ['from', 'to', 'diff', 'resolved', 'unified'],
          properties: {
            from: nullable(commitId),
            to: commitId,
            diff: { ...ref('StructuredDiff'), description: 'The keys as written' },
            resolved: { ...ref('StructuredDiff'), description: 'The values services get: references replaced, the running environment applied' },
            unified: { type: 'string' },
          },
        },
      },
    },
    errors: ['COMMIT_NOT_FOUND', 'HISTORY_FAILED'],
  },
  rollback: {
    method: 'post',
    path: '/settings/rollback',
    tag: 'history',
    summary: "Restore config.ini to a commit's content through the normal write path (validated, audited, committed anew, synced)",
    parameters: [waitParameter, ifMatchParameter],
    body: {
      required: true,
      description: 'The commit to restore',
      schema: { type: 'object', required: ['commit'], properties: { commit: commitish }, additionalProperties: false },
    },
    responses: {
      '200': {
        description: 'What the rollback changed',
        etag: true,
        schema: {
          type: 'object',
          required: ['rolledBackTo', 'revision', 'changed'],
          properties: {
            rolledBackTo: commitId,
            revision,
            changed: { type: 'array', items: { type: 'string' }, description: 'section.key of every key the rollback changed' },
            sync: { ...ref('SyncReport'), description: 'With ?wait=true' },
          },
          additionalProperties: false,
        },
      },
    },
    errors: [...WRITE_ERRORS, 'COMMIT_NOT_FOUND', 'HISTORY_FAILED'],
  },
  streamEvents: {
    method: 'get',
    path: '/settings/events',
    tag: 'sync',
    summary: 'The event log as Server-Sent Events: changes, sync outcomes, invalid files, worker state',
    description:
      'Each event has `id:` (its id in the log), `event:` (its type) and `data:` (JSON: type, at and its fields, never a value). Reconnect with Last-Event-ID to resume; older than the log keeps, an `event: reset` says so. ' +
      'A first connection resumes with `?since=` (EventSource cannot set the header; the WebSocket rev is the same id); Last-Event-ID wins when both are given, as EventSource sends it on its reconnects.',
    parameters: [
      { name: 'Last-Event-ID', in: 'header', description: 'Resume after this event id', schema: { type: 'string', pattern: '^\\d{1,15}$' } },
      {
        name: 'since',
        in: 'query',
        description: 'Resume after this event id (a WebSocket rev) when Last-Event-ID is not sent; not an integer: 400 INVALID_REQUEST',
        schema: { type: 'integer', minimum: 0 },
      },
    ],
    responses: { '200': { description: 'An endless event stream', contentType: 'text/event-stream', schema: { type: 'string' } } },
    errors: [],
  },
  openWebSocket: {
    method: 'get',
    path: '/ws',
    tag: 'sync',
    summary: 'The event log over a WebSocket (subprotocol confhub.v1): a hello, each event, a heartbeat every 5 s, a reset when the client is too far behind',
    description:
      'A WebSocket upgrade (the README has the protocol and a reference client). Offer the subprotocols `confhub.v1` and `key.<API key>` (browsers cannot set headers; `x-api-key` works too); the answer names `confhub.v1` only. ' +
      'A missing or wrong key completes the handshake and closes with 4401; a bad `since` or another query parameter closes with 4400. Without `confhub.v1` the upgrade is refused with 400, from an Origin that is not allowed with 403, over a rate limit with 429. ' +
      'Server messages are JSON: `{type: "hello", rev, heartbeatMs}`, each event `{type, rev, at, data}` (rev is the id SSE sends as `id:`), `{type: "heartbeat", rev}`, `{type: "reset", rev}`, and `{"ConfigChanged": {tenant_id, change_type}}` after each settings.changed and env.changed. A GET without an upgrade answers 426.',
    parameters: [
      {
        name: 'since',
        in: 'query',
        description: 'Resume after this rev (event id, as SSE sends it): every later event the log still holds follows; older, or an id never issued, a reset',
        schema: { type: 'integer', minimum: 0 },
      },
      {
        name: 'Sec-WebSocket-Protocol',
        in: 'header',
        required: true,
        description: '`confhub.v1`, and the API key as `key.<key>` unless x-api-key is sent',
        schema: { type: 'string' },
      },
    ],
    responses: {
      default: { description: '101 Switching Protocols with Sec-WebSocket-Protocol: confhub.v1; the messages follow on the WebSocket', noBody: true },
    },
    errors: ['UPGRADE_REQUIRED', 'ORIGIN_NOT_ALLOWED'],
  },
  listTargets: {
    method: 'get',
    path: '/targets',
    tag: 'targets',
    summary: 'Every target with its bundle (files, revision), state and the instances that checked in',
    responses: {
      '200': {
        description: 'The targets',
        schema: { type: 'object', required: ['targets'], properties: { targets: { type: 'array', items: ref('Target') } }, additionalProperties: false },
      },
    },
    errors: [],
  },
  getTarget: {
    method: 'get',
    path: '/targets/{name}',
    tag: 'targets',
    summary: 'One target with its bundle, state and instances',
    parameters: [targetNameParameter],
    responses: { '200': { description: 'The target', schema: ref('Target') } },
    errors: ['TARGET_NOT_FOUND'],
  },
  getTargetBundle: {
    method: 'get',
    path: '/targets/{name}/bundle',
    tag: 'targets',
    access: 'key_or_token',
    summary: "The target's files exactly as the worker wrote them: a ustar archive (MANIFEST, REVISION, files/…)",
    description:
      "MANIFEST has one line per file: sha256, mode (four octal digits), path relative to the target's output directory. The ETag is <revision>+<digest of the files>; Cache-Control: no-store (the files hold secrets). The API key or a token of this target (Authorization: Bearer).",
    parameters: [targetNameParameter],
    responses: { '200': { description: 'The bundle', contentType: 'application/x-tar', schema: { type: 'string', format: 'binary' }, etag: true } },
    errors: ['TARGET_NOT_FOUND', 'TARGET_NOT_APPLIED', 'TOKEN_INVALID', 'RENDER_FAILED'],
  },
  checkinTarget: {
    method: 'post',
    path: '/targets/{name}/checkin',
    tag: 'targets',
    access: 'key_or_token',
    summary: 'Record the revision a service instance installed (its init script calls it)',
    parameters: [targetNameParameter],
    body: {
      required: true,
      description: 'revision: the REVISION of the bundle installed; instance: its name (default: the token or key)',
      schema: {
        type: 'object',
        required: ['revision'],
        properties: { revision: { type: 'string', pattern: '^[A-Za-z0-9._+-]{1,128}$' }, instance: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' } },
        additionalProperties: false,
      },
    },
    responses: {
      '200': {
        description: 'The check-in',
        schema: {
          type: 'object',
          required: ['target', 'instance', 'revision', 'current', 'at', 'address'],
          properties: { target: { type: 'string' }, ...targetInstanceProperties },
          additionalProperties: false,
        },
      },
    },
    errors: [...BODY_ERRORS, 'VALIDATION_FAILED', 'TARGET_NOT_FOUND', 'TOKEN_INVALID'],
  },
  listTargetTokens: {
    method: 'get',
    path: '/targets/{name}/tokens',
    tag: 'targets',
    summary: "The target's read-only tokens (never the tokens themselves)",
    parameters: [targetNameParameter],
    responses: {
      '200': {
        description: 'The tokens',
        schema: { type: 'object', required: ['tokens'], properties: { tokens: { type: 'array', items: ref('TargetToken') } }, additionalProperties: false },
      },
    },
    errors: ['TARGET_NOT_FOUND'],
  },
  createTargetToken: {
    method: 'post',
    path: '/targets/{name}/tokens',
    tag: 'targets',
    summary: 'A new read-only token of the target: its bundle and check-in only; shown in this answer only',
    parameters: [targetNameParameter],
    body: {
      required: false,
      description: 'description: what holds it (the service container, say)',
      schema: { type: 'object', properties: { description: { type: 'string', maxLength: 200 } }, additionalProperties: false },
    },
    responses: {
      '201': {
        description: 'The token (shown once)',
        schema: {
          type: 'object',
          required: ['id', 'description', 'createdAt', 'lastUsedAt', 'target', 'token'],
          properties: {
            ...targetTokenProperties,
            target: { type: 'string' },
            token: { type: 'string', pattern: '^cht_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$', description: 'Send it as Authorization: Bearer <token>' },
          },
          additionalProperties: false,
        },
      },
    },
    errors: [...BODY_ERRORS, 'VALIDATION_FAILED', 'TARGET_NOT_FOUND', 'TOKEN_LIMIT_REACHED'],
  },
  revokeTargetToken: {
    method: 'delete',
    path: '/targets/{name}/tokens/{id}',
    tag: 'targets',
    summary: 'Revoke a token: it is refused from now on',
    parameters: [targetNameParameter, { name: 'id', in: 'path', required: true, description: 'Token id', schema: { type: 'string' } }],
    responses: {
      '200': {
        description: 'Revoked',
        schema: { type: 'object', required: ['revoked'], properties: { revoked: { type: 'string' } }, additionalProperties: false },
      },
    },
    errors: ['TARGET_NOT_FOUND', 'TOKEN_NOT_FOUND'],
  },
  getInitScript: {
    method: 'get',
    path: '/init.sh',
    tag: 'targets',
    access: 'none',
    summary: 'confhub-init.sh, the entrypoint script of a service that pulls its files (POSIX sh, busybox-safe; no secret in it, no key needed)',
    responses: { '200': { description: 'The script', contentType: 'text/x-shellscript; charset=utf-8', schema: { type: 'string' } } },
    errors: [],
  },
  getSyncStatus: {
    method: 'get',
    path: '/sync/status',
    tag: 'sync',
    summary: 'The sync worker, whether config.ini can be used, the history, and each target: state, revisions, last error',
    responses: { '200': { description: 'The status', schema: ref('SyncStatus') } },
    errors: [],
  },
  reload: {
    method: 'post',
    path: '/settings/reload',
    tag: 'sync',
    summary: 'Render and apply config.ini now; with force, reload the services even when their files did not change',
    parameters: [
      { name: 'force', in: 'query', description: 'Reload every service, changed or not', schema: { type: 'boolean', default: false } },
      { ...waitParameter, description: 'Answer with the per-target results once the worker is done' },
    ],
    responses: {
      '200': { description: 'With ?wait=true: what the run did', schema: ref('SyncReport') },
      '202': {
        description: 'Accepted; the run goes on',
        schema: { type: 'object', required: ['accepted', 'requestId'], properties: { accepted: { const: true }, requestId: { type: 'string' } } },
      },
    },
    errors: [...WAIT_ERRORS, 'WORKER_UNAVAILABLE'],
  },
  getInitStatus: {
    method: 'get',
    path: '/init/status',
    tag: 'sync',
    summary: 'How far this start got: phase, what the start did, per-target initialization, last error',
    responses: {
      '200': {
        description: 'The start',
        schema: {
          type: 'object',
          required: ['phase', 'firstStart', 'startup', 'reasons', 'targets', 'lastError'],
          properties: {
            phase: { type: 'string', enum: ['initializing', 'waiting_for_services', 'ready', 'degraded'] },
            firstStart: { type: 'boolean' },
            startup: {
              type: 'object',
              required: ['installed', 'apiKeyGenerated', 'passwordsGenerated', 'masterKeyCreated', 'upgrade'],
              properties: {
                installed: { type: 'array', items: { type: 'string' }, description: 'Files installed from the shipped defaults' },
                apiKeyGenerated: { type: 'boolean' },
                passwordsGenerated: { type: 'array', items: { type: 'string' }, description: 'section.key of each generated secret' },
                masterKeyCreated: { type: 'boolean' },
                upgrade: {
                  type: 'object',
                  required: ['added', 'obsolete'],
                  properties: { added: { type: 'array', items: { type: 'string' } }, obsolete: { type: 'array', items: { type: 'string' } } },
                },
              },
            },
            reasons: { type: 'array', items: { type: 'string' }, description: 'Why it is not ready yet' },
            targets: {
              type: 'array',
              items: {
                type: 'object',
                required: ['target', 'state', 'lastError', 'instances'],
                properties: {
                  target: { type: 'string' },
                  state: { type: 'string', enum: ['pending', 'initialized', 'waiting_for_service', 'failed'] },
                  lastError: nullable(ref('PlainError')),
                  instances: { type: 'array', items: ref('TargetInstance'), description: 'Service instances that installed its bundle' },
                },
              },
            },
            lastError: nullable(ref('PlainError')),
          },
        },
      },
    },
    errors: [],
  },
  listServices: {
    method: 'get',
    path: '/services',
    tag: 'services',
    summary: 'Sync targets and config.ini service URLs with their last connection test results, at once; stale results are refreshed in the background',
    responses: {
      '200': {
        description: 'The services',
        schema: {
          type: 'object',
          required: ['services', 'checkedAt', 'refreshing'],
          properties: {
            services: { type: 'array', items: ref('Service') },
            checkedAt: { type: ['string', 'null'], format: 'date-time', description: 'The oldest result; null while any service was never checked' },
            refreshing: { type: 'boolean' },
          },
        },
      },
    },
    errors: [],
  },
  testService: {
    method: 'post',
    path: '/services/{name}/test',
    tag: 'services',
    summary: 'Test the connections of one service now, each probe bounded by its timeout; a failed check is a result with ok: false',
    parameters: [
      {
        name: 'name',
        in: 'path',
        required: true,
        description: 'A name from GET /services',
        schema: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$' },
      },
    ],
    responses: { '200': { description: 'The fresh result', schema: ref('Service') } },
    errors: ['INVALID_NAME', 'SERVICE_NOT_FOUND'],
  },
  getSystem: {
    method: 'get',
    path: '/system',
    tag: 'system',
    summary: 'All sections of system.ini; every other method answers 405 SYSTEM_READ_ONLY',
    responses: { '200': { description: 'Every section', schema: ref('System'), etag: true } },
    errors: ['CONFIG_INVALID'],
  },
  getSystemSection: {
    method: 'get',
    path: '/system/{section}',
    tag: 'system',
    summary: 'One section of system.ini',
    parameters: [sectionParameter],
    responses: { '200': { description: 'The section', schema: ref('Section'), etag: true } },
    errors: ['SECTION_NOT_FOUND', 'CONFIG_INVALID'],
  },
  listAudit: {
    method: 'get',
    path: '/audit',
    tag: 'audit',
    summary: 'The audit log, newest first; values of secrets masked',
    parameters: [
      { name: 'section', in: 'query', description: 'Entries of this section only', schema: { type: 'string' } },
      { name: 'since', in: 'query', description: 'Entries at or after this time: ISO 8601 or epoch ms', schema: { type: 'string' } },
      {
        name: 'limit',
        in: 'query',
        description: 'Entries per page',
        schema: { type: 'integer', minimum: 1, maximum: MAX_AUDIT_LIMIT, default: DEFAULT_AUDIT_LIMIT },
      },
      { name: 'before', in: 'query', description: "Entries with a smaller id (the previous page's next)", schema: { type: 'integer', minimum: 1 } },
    ],
    responses: {
      '200': {
        description: 'A page of entries',
        schema: {
          type: 'object',
          required: ['entries', 'next'],
          properties: { entries: { type: 'array', items: ref('AuditEntry') }, next: { type: ['integer', 'null'] } },
        },
      },
    },
    errors: [],
  },
  getOpenApi: {
    method: 'get',
    path: '/openapi.json',
    tag: 'meta',
    summary: 'This document',
    responses: {
      '200': {
        description: 'OpenAPI 3.1',
        schema: {
          type: 'object',
          required: ['openapi', 'info', 'paths'],
          properties: { openapi: { const: '3.1.0' }, info: { type: 'object' }, paths: { type: 'object' } },
        },
      },
    },
    errors: [],
  },
  healthz: {
    method: 'get',
    path: '/healthz',
    tag: 'meta',
    public: true,
    summary: 'Liveness: the process answers',
    responses: { '200': { description: 'Alive', schema: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } } } },
    errors: [],
  },
  readyz: {
    method: 'get',
    path: '/readyz',
    tag: 'meta',
    public: true,
    summary: 'Readiness: the sync worker runs, config.ini is valid and the first render is on disk (services may still be restarting)',
    responses: {
      '200': { description: 'Ready', schema: ref('Readiness') },
      '503': { description: 'Not ready, and why', schema: ref('Readiness') },
    },
    errors: [],
  },
  metrics: {
    method: 'get',
    path: '/metrics',
    tag: 'meta',
    public: true,
    summary: 'Prometheus metrics: requests, sync runs, propagation time, reloads, rollbacks, the process',
    responses: { '200': { description: 'Prometheus text format 0.0.4', contentType: 'text/plain; version=0.0.4', schema: { type: 'string' } } },
    errors: [],
  },
} as const satisfies Record<string, OperationSpec>;

export type OperationId = keyof typeof OPERATIONS;

/** Every error code the operation may answer with: its own, those of every /api/v1 operation, those of any request. */
export function operationErrors(id: OperationId): ErrorCode[] {
  const op: OperationSpec = OPERATIONS[id];
  const common = op.public ? [] : op.access === 'none' ? API_AUTH_ERRORS.filter((code) => !code.startsWith('API_KEY_')) : API_AUTH_ERRORS;
  return [...new Set([...common, ...op.errors, ...TRANSPORT_ERRORS])];
}

/** The error codes of an operation grouped by their HTTP status. */
export function errorsByStatus(id: OperationId): Map<number, ErrorCode[]> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of operationErrors(id)) {
    const status = ERROR_CATALOGUE[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return byStatus;
}

/** The methods the table has for a path, for the Allow header of a 405 (Express answers HEAD wherever GET is). */
export function methodsOf(path: string): string[] {
  const methods = Object.values(OPERATIONS as Record<string, OperationSpec>)
    .filter((op) => op.path === path)
    .map((op) => op.method.toUpperCase());
  return methods.flatMap((method) => (method === 'GET' ? ['GET', 'HEAD'] : [method]));
}

/** `/settings/{section}` as Express writes it: `/settings/:section`. */
export function expressPath(path: string): string {
  return path.replaceAll(/\{([^}]+)\}/g, ':$1');
}
