/**
 * The OpenAPI document, generated from the same schemas that validate config.ini and
 * system.ini, so the two cannot drift apart.
 */
import { z } from 'zod';
import { ERROR_CODES } from '../core/errors.js';
import type { FieldKind } from '../settings/field-kinds.js';
import type { FileSchema, SectionSpec } from '../settings/schema.js';

const httpUrl = z.url({ protocol: /^https?$/ });
const list = z.string().describe('comma-separated list');

/** Each kind's value as the API returns it (field-kinds.ts says which texts are valid). */
const KIND_SCHEMAS: Readonly<Record<FieldKind, z.ZodType>> = {
  text: z.string(),
  secret: z.string(),
  port: z.number().int().min(1).max(65535),
  http_url: httpUrl,
  email: z.email(),
  boolean: z.boolean(),
  abs_path: z.string(),
  ipv4: z.ipv4(),
  hostname: z.string(),
  url_list: list,
  name_list: list,
  api_key: z.string(),
};

/** JSON Schema of one section as the API returns it. */
function sectionJsonSchema(spec: SectionSpec): z.ZodType {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, fieldSpec] of spec.fields) {
    const base = KIND_SCHEMAS[fieldSpec.kind];
    shape[key] = (fieldSpec.allowEmpty ? z.union([base, z.literal('')]) : base).describe(fieldSpec.description).optional();
  }
  return z.object(shape).catchall(z.string()).describe(spec.description);
}

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ref('Error') } } });
const jsonResponse = (description: string, schema: unknown) => ({
  description,
  headers: { ETag: { schema: { type: 'string' } } },
  content: { 'application/json': { schema } },
});

export interface OpenApiInput {
  version: string;
  configSchema: FileSchema;
  systemSchema: FileSchema;
}

export function buildOpenApi({ version, configSchema, systemSchema }: OpenApiInput): Record<string, unknown> {
  const schemas: Record<string, unknown> = {
    Error: {
      type: 'object',
      required: ['message', 'details', 'code'],
      properties: {
        message: { type: 'string' },
        details: { type: 'string', description: 'Specifics; legacy apphub clients display this' },
        code: { type: 'string', enum: [...ERROR_CODES] },
        errors: {
          type: 'array',
          description: 'Every failing field (VALIDATION_FAILED)',
          items: { type: 'object', properties: { field: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } } },
        },
      },
    },
  };
  const settingsProps: Record<string, unknown> = {};
  for (const [name, spec] of configSchema) {
    schemas[`Settings_${name}`] = jsonSchema(sectionJsonSchema(spec));
    settingsProps[name] = ref(`Settings_${name}`);
  }
  schemas.Settings = { type: 'object', properties: settingsProps, additionalProperties: { type: 'object', additionalProperties: { type: 'string' } } };
  const systemProps: Record<string, unknown> = {};
  for (const [name, spec] of systemSchema) {
    schemas[`System_${name}`] = jsonSchema(sectionJsonSchema(spec));
    systemProps[name] = ref(`System_${name}`);
  }
  schemas.System = { type: 'object', properties: systemProps, additionalProperties: { type: 'object' } };

  const checkBase = {
    ok: { type: 'boolean' },
    latencyMs: { type: 'integer', minimum: 0 },
    checkedAt: { type: 'string', format: 'date-time' },
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', enum: [...ERROR_CODES] }, message: { type: 'string', description: 'Never contains credentials or query strings' } },
    },
  };
  schemas.ConnectionCheck = {
    oneOf: [
      {
        type: 'object',
        required: ['kind', 'container', 'ok', 'latencyMs', 'checkedAt'],
        properties: {
          kind: { const: 'container' },
          container: { type: 'string', description: 'As system.ini names it: NAME or label=KEY[=VALUE]' },
          state: { type: 'string', description: "Docker's State.Status (running, exited, …) or absent; missing when Docker did not answer" },
          health: { type: 'string', enum: ['healthy', 'unhealthy', 'starting', 'none'] },
          ...checkBase,
        },
      },
      {
        type: 'object',
        required: ['kind', 'program', 'ok', 'latencyMs', 'checkedAt'],
        properties: {
          kind: { const: 'supervisor' },
          program: { type: 'string' },
          state: { type: 'string', description: 'supervisord state name (RUNNING, STOPPED, FATAL, …); missing when supervisord did not answer' },
          ...checkBase,
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
          ...checkBase,
        },
      },
    ],
  };
  schemas.Service = {
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
  };

  const common = {
    '401': errorResponse('API_KEY_MISSING or API_KEY_INVALID'),
    '429': errorResponse('RATE_LIMITED'),
  };
  const writeErrors = {
    ...common,
    '400': errorResponse('VALIDATION_FAILED, KEY_NOT_FOUND, INVALID_NAME, INVALID_REQUEST, MALFORMED_JSON'),
    '404': errorResponse('SECTION_NOT_FOUND'),
    '412': errorResponse('PRECONDITION_FAILED: If-Match does not name the current revision'),
    '413': errorResponse('PAYLOAD_TOO_LARGE'),
    '415': errorResponse('UNSUPPORTED_MEDIA_TYPE'),
  };
  const section = { name: 'section', in: 'path', required: true, schema: { type: 'string' } };
  const key = { name: 'key', in: 'path', required: true, schema: { type: 'string' } };
  const ifMatch = { name: 'If-Match', in: 'header', required: false, schema: { type: 'string' } };
  const value = {
    type: 'object',
    additionalProperties: {
      oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'array', items: { type: 'string' } }],
      description:
        'A string for every key; a port also takes a JSON integer, a boolean key true or false, a list key an array of strings. Anything else is VALIDATION_FAILED with an INVALID_TYPE error naming the key.',
    },
  };

  return {
    openapi: '3.1.0',
    info: { title: 'confhub', version, description: 'Every /api/v1 path also answers under the legacy /api prefix.' },
    servers: [{ url: '/api/v1' }],
    security: [{ apiKey: [] }],
    components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } }, schemas },
    paths: {
      '/settings': {
        get: { summary: 'All sections of config.ini', responses: { '200': jsonResponse('settings', ref('Settings')), ...common } },
        patch: {
          summary: 'Batch update across sections, all-or-nothing',
          parameters: [ifMatch],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', additionalProperties: value } } } },
          responses: { '200': jsonResponse('settings after the change', ref('Settings')), ...writeErrors },
        },
      },
      '/settings/{section}': {
        get: {
          summary: 'One section',
          parameters: [section],
          responses: { '200': jsonResponse('section', { type: 'object' }), ...common, '404': errorResponse('SECTION_NOT_FOUND') },
        },
        put: {
          summary: 'Update keys of one section: legacy ?key=&value=, or a JSON object (all-or-nothing)',
          parameters: [section, { name: 'key', in: 'query', schema: { type: 'string' } }, { name: 'value', in: 'query', schema: { type: 'string' } }, ifMatch],
          requestBody: { required: false, content: { 'application/json': { schema: value } } },
          responses: { '200': jsonResponse('section after the change', { type: 'object' }), ...writeErrors },
        },
      },
      '/settings/{section}/{key}': {
        get: {
          summary: 'One value',
          parameters: [section, key],
          responses: {
            '200': jsonResponse('{key: value}', { type: 'object' }),
            ...common,
            '400': errorResponse('KEY_NOT_FOUND'),
            '404': errorResponse('SECTION_NOT_FOUND'),
          },
        },
      },
      '/settings/history': {
        get: {
          summary: 'Commits of config.ini, newest first: id, time, actor, source, summary, changed keys, sync outcome',
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
            { name: 'before', in: 'query', schema: { type: 'string' }, description: "commit id: older commits only (the previous answer's next)" },
          ],
          responses: {
            '200': { description: '{commits, next}' },
            ...common,
            '400': errorResponse('INVALID_REQUEST'),
            '404': errorResponse('COMMIT_NOT_FOUND'),
          },
        },
      },
      '/settings/history/{commit}': {
        get: {
          summary: 'One commit with its structured diff {added, removed, changed} and unified diff (secrets masked)',
          parameters: [{ name: 'commit', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-fA-F]{4,40}$' } }],
          responses: { '200': { description: 'commit' }, ...common, '400': errorResponse('INVALID_REQUEST'), '404': errorResponse('COMMIT_NOT_FOUND') },
        },
      },
      '/settings/diff': {
        get: {
          summary: 'Diff between two commits (to defaults to the newest), secrets masked',
          parameters: [
            { name: 'from', in: 'query', required: true, schema: { type: 'string' } },
            { name: 'to', in: 'query', schema: { type: 'string' } },
          ],
          responses: {
            '200': { description: '{from, to, diff, unified}' },
            ...common,
            '400': errorResponse('INVALID_REQUEST'),
            '404': errorResponse('COMMIT_NOT_FOUND'),
          },
        },
      },
      '/settings/rollback': {
        post: {
          summary: "Restore config.ini to a commit's content through the normal write path (validated, audited, committed anew, synced)",
          parameters: [ifMatch, { name: 'wait', in: 'query', schema: { type: 'boolean' }, description: 'answer once the sync worker applied it' }],
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: { type: 'object', required: ['commit'], properties: { commit: { type: 'string' } }, additionalProperties: false } },
            },
          },
          responses: {
            '200': { description: '{rolledBackTo, revision, changed[, sync]}' },
            ...common,
            '400': errorResponse("VALIDATION_FAILED (the content fails today's validation), INVALID_REQUEST"),
            '404': errorResponse('COMMIT_NOT_FOUND'),
            '502': errorResponse('SYNC_FAILED (with ?wait=true)'),
          },
        },
      },
      '/system': {
        get: {
          summary: 'All sections of system.ini (read-only)',
          responses: { '200': jsonResponse('system settings', ref('System')), ...common, '405': errorResponse('SYSTEM_READ_ONLY') },
        },
      },
      '/system/{section}': {
        get: {
          summary: 'One section of system.ini',
          parameters: [section],
          responses: { '200': jsonResponse('section', { type: 'object' }), ...common, '404': errorResponse('SECTION_NOT_FOUND') },
        },
      },
      '/audit': {
        get: {
          summary: 'Audit log, newest first; values of secrets masked',
          parameters: [
            { name: 'section', in: 'query', schema: { type: 'string' } },
            { name: 'since', in: 'query', schema: { type: 'string' }, description: 'ISO 8601 or epoch ms' },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
            { name: 'before', in: 'query', schema: { type: 'integer' }, description: "entries with a smaller id (the previous answer's next)" },
          ],
          responses: { '200': { description: '{entries, next}' }, ...common, '400': errorResponse('INVALID_REQUEST') },
        },
      },
      '/init/status': {
        get: {
          summary: 'How far this start got: phase, what the start did, per-target initialization, last error',
          responses: { '200': { description: '{phase, firstStart, startup, reasons, targets, lastError}' }, ...common },
        },
      },
      '/services': {
        get: {
          summary: 'Sync targets and config.ini service URLs with their last connection test results, at once; stale results are refreshed in the background',
          responses: {
            '200': {
              description: '{services, checkedAt (the oldest result; null while any service was never checked), refreshing}',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['services', 'checkedAt', 'refreshing'],
                    properties: {
                      services: { type: 'array', items: ref('Service') },
                      checkedAt: { type: ['string', 'null'], format: 'date-time' },
                      refreshing: { type: 'boolean' },
                    },
                  },
                },
              },
            },
            ...common,
          },
        },
      },
      '/services/{name}/test': {
        post: {
          summary: 'Test the connections of one service now (each probe bounded by its timeout); a failed check is a result with ok: false',
          parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$' } }],
          responses: {
            '200': { description: 'the fresh result', content: { 'application/json': { schema: ref('Service') } } },
            ...common,
            '400': errorResponse('INVALID_NAME'),
            '404': errorResponse('SERVICE_NOT_FOUND'),
          },
        },
      },
      '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
    },
  };
}
