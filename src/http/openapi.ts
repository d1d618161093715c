/**
 * The OpenAPI document, generated from the route table the server registers its routes from
 * (operations.ts) and from the schemas that validate config.ini and system.ini, so neither can
 * drift from what the server does.
 */
import { z } from 'zod';
import type { FieldKind } from '../settings/field-kinds.js';
import type { FileSchema, SectionSpec } from '../settings/schema.js';
import { errorsByStatus, OPERATIONS, type OperationId, type OperationSpec, type ParameterSpec, SCHEMAS, TAGS } from './operations.js';

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

const ifNoneMatch: ParameterSpec = {
  name: 'If-None-Match',
  in: 'header',
  description: 'An ETag from an earlier answer: 304 when config.ini is still that revision',
  schema: { type: 'string' },
};

export interface OpenApiInput {
  version: string;
  configSchema: FileSchema;
  systemSchema: FileSchema;
}

/** One operation of the table as OpenAPI writes it, its errors typed by code. */
function operationObject(id: OperationId): Record<string, unknown> {
  const op: OperationSpec = OPERATIONS[id];
  const cached = op.method === 'get' && Object.values(op.responses).some((r) => r.etag);
  const responses: Record<string, unknown> = {};
  for (const [status, response] of Object.entries(op.responses)) {
    if (response.noBody) {
      responses[status] = { description: response.description };
      continue;
    }
    responses[status] = {
      description: response.description,
      ...(response.etag ? { headers: { ETag: { description: 'The revision of the file', schema: { type: 'string' } } } } : {}),
      content: {
        [response.contentType ?? 'application/json']: { schema: response.schema ?? { type: 'string' } },
        ...Object.fromEntries(Object.entries(response.alternatives ?? {}).map(([type, schema]) => [type, { schema }])),
      },
    };
  }
  if (cached) responses['304'] = { description: 'Not Modified: If-None-Match names the current revision' };
  for (const [status, codes] of errorsByStatus(id)) {
    responses[String(status)] = {
      description: codes.join(' or '),
      content: { 'application/json': { schema: { allOf: [ref('Error')], properties: { code: { enum: codes } } } } },
    };
  }
  const parameters = [...(op.parameters ?? []), ...(cached ? [ifNoneMatch] : [])];
  return {
    operationId: id,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    ...(op.public || op.access === 'none' ? { security: [] } : op.access === 'key_or_token' ? { security: [{ apiKey: [] }, { targetToken: [] }] } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(op.body
      ? { requestBody: { required: op.body.required, description: op.body.description, content: { 'application/json': { schema: op.body.schema } } } }
      : {}),
    responses: Object.fromEntries(Object.entries(responses).sort(([a], [b]) => a.localeCompare(b))),
  };
}

export function buildOpenApi({ version, configSchema, systemSchema }: OpenApiInput): Record<string, unknown> {
  const schemas: Record<string, unknown> = { ...SCHEMAS };
  const settingsProps: Record<string, unknown> = {};
  for (const [name, spec] of configSchema) {
    schemas[`Settings_${name}`] = jsonSchema(sectionJsonSchema(spec));
    settingsProps[name] = ref(`Settings_${name}`);
  }
  schemas.Settings = {
    type: 'object',
    description: 'Every section of config.ini; sections the schema does not know hold strings',
    properties: settingsProps,
    additionalProperties: ref('Section'),
  };
  const systemProps: Record<string, unknown> = {};
  for (const [name, spec] of systemSchema) {
    schemas[`System_${name}`] = jsonSchema(sectionJsonSchema(spec));
    systemProps[name] = ref(`System_${name}`);
  }
  schemas.System = { type: 'object', description: 'Every section of system.ini', properties: systemProps, additionalProperties: ref('Section') };

  const paths: Record<string, Record<string, unknown>> = {};
  for (const id of Object.keys(OPERATIONS) as OperationId[]) {
    const op: OperationSpec = OPERATIONS[id];
    // Probes and scrapes answer at the root, not under /api/v1.
    paths[op.path] ??= op.public ? { servers: [{ url: '/' }] } : {};
    paths[op.path]![op.method] = operationObject(id);
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'confhub',
      version,
      description:
        'Every /api/v1 path also answers under the legacy /api prefix. Every error answer is {message, details, code}: clients match on code. ' +
        'A path with no route answers 404 NOT_FOUND (under /api only once the key is accepted: 401 comes first), and a method a path does not take 405 METHOD_NOT_ALLOWED (SYSTEM_READ_ONLY under /system) with an Allow header.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/api/v1' }],
    security: [{ apiKey: [] }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
        targetToken: { type: 'http', scheme: 'bearer', description: "A target's read-only token (cht_…): its bundle and check-in only" },
      },
      schemas,
    },
    paths,
  };
}
