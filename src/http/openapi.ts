/**
 * The OpenAPI document, generated from the same schemas that validate config.ini and
 * system.ini, so the two cannot drift apart.
 */
import { z } from 'zod';
import { ERROR_CODES } from '../errors.js';
import { sectionJsonSchema, type FileSchema } from '../settings/schema.js';

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ref('Error') } } });
const jsonResponse = (description: string, schema: unknown) => ({ description, headers: { ETag: { schema: { type: 'string' } } }, content: { 'application/json': { schema } } });

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
  const value = { type: 'object', additionalProperties: { oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'array', items: { type: 'string' } }] } };

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
        get: { summary: 'One section', parameters: [section], responses: { '200': jsonResponse('section', { type: 'object' }), ...common, '404': errorResponse('SECTION_NOT_FOUND') } },
        put: {
          summary: 'Update keys of one section: legacy ?key=&value=, or a JSON object (all-or-nothing)',
          parameters: [section, { name: 'key', in: 'query', schema: { type: 'string' } }, { name: 'value', in: 'query', schema: { type: 'string' } }, ifMatch],
          requestBody: { required: false, content: { 'application/json': { schema: value } } },
          responses: { '200': jsonResponse('section after the change', { type: 'object' }), ...writeErrors },
        },
      },
      '/settings/{section}/{key}': {
        get: { summary: 'One value', parameters: [section, key], responses: { '200': jsonResponse('{key: value}', { type: 'object' }), ...common, '400': errorResponse('KEY_NOT_FOUND'), '404': errorResponse('SECTION_NOT_FOUND') } },
      },
      '/settings/history': {
        get: {
          summary: 'Commits of config.ini, newest first: id, time, actor, source, summary, changed keys, sync outcome',
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
            { name: 'before', in: 'query', schema: { type: 'string' }, description: 'commit id: older commits only (the previous answer\'s next)' },
          ],
          responses: { '200': { description: '{commits, next}' }, ...common, '400': errorResponse('INVALID_REQUEST'), '404': errorResponse('COMMIT_NOT_FOUND') },
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
          responses: { '200': { description: '{from, to, diff, unified}' }, ...common, '400': errorResponse('INVALID_REQUEST'), '404': errorResponse('COMMIT_NOT_FOUND') },
        },
      },
      '/settings/rollback': {
        post: {
          summary: "Restore config.ini to a commit's content through the normal write path (validated, audited, committed anew, synced)",
          parameters: [ifMatch, { name: 'wait', in: 'query', schema: { type: 'boolean' }, description: 'answer once the sync worker applied it' }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['commit'], properties: { commit: { type: 'string' } }, additionalProperties: false } } } },
          responses: {
            '200': { description: '{rolledBackTo, revision, changed[, sync]}' },
            ...common,
            '400': errorResponse('VALIDATION_FAILED (the content fails today\'s validation), INVALID_REQUEST'),
            '404': errorResponse('COMMIT_NOT_FOUND'),
            '502': errorResponse('SYNC_FAILED (with ?wait=true)'),
          },
        },
      },
      '/system': { get: { summary: 'All sections of system.ini (read-only)', responses: { '200': jsonResponse('system settings', ref('System')), ...common, '405': errorResponse('SYSTEM_READ_ONLY') } } },
      '/system/{section}': { get: { summary: 'One section of system.ini', parameters: [section], responses: { '200': jsonResponse('section', { type: 'object' }), ...common, '404': errorResponse('SECTION_NOT_FOUND') } } },
      '/audit': {
        get: {
          summary: 'Audit log, newest first; values of secrets masked',
          parameters: [
            { name: 'section', in: 'query', schema: { type: 'string' } },
            { name: 'since', in: 'query', schema: { type: 'string' }, description: 'ISO 8601 or epoch ms' },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
            { name: 'before', in: 'query', schema: { type: 'integer' }, description: 'entries with a smaller id (the previous answer\'s next)' },
          ],
          responses: { '200': { description: '{entries, next}' }, ...common, '400': errorResponse('INVALID_REQUEST') },
        },
      },
      '/init/status': {
        get: { summary: 'How far this start got: phase, what the start did, per-target initialization, last error', responses: { '200': { description: '{phase, firstStart, startup, reasons, targets, lastError}' }, ...common } },
      },
      '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
    },
  };
}
