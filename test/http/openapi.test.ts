/**
 * The OpenAPI document against the server: every registered route has its operation and every
 * operation its route; every operation, called on a whole confhub, answers with a status the
 * document lists and a body its schema accepts; and the document passes the Redocly linter's
 * strict rules (redocly.yaml).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATIONS, type OperationId, type OperationSpec } from '../../src/http/operations.js';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';
import { createHarness } from '../support/harness.js';
import { connectWs } from '../support/ws-client.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const IDS = Object.keys(OPERATIONS) as OperationId[];
const REDOCLY = fileURLToPath(new URL('../../node_modules/@redocly/cli/bin/cli.js', import.meta.url));
const REDOCLY_CONFIG = fileURLToPath(new URL('../../redocly.yaml', import.meta.url));

interface FoundRoute {
  path: string;
  method: string;
  /** Registered on the app itself (at the root), not under the API router. */
  root: boolean;
}

interface StackLayer {
  rawPath?: unknown;
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: StackLayer[] };
}

/** Every method route Express holds, with the path it is mounted under. */
function registeredRoutes(app: Express): FoundRoute[] {
  const found: FoundRoute[] = [];
  const walk = (stack: StackLayer[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route) {
        for (const [method, on] of Object.entries(layer.route.methods)) {
          // `.all()` answers 405 for the methods a path does not take: not an operation.
          if (on && method !== '_all') found.push({ path: prefix + layer.route.path, method, root: prefix === '' });
        }
      } else if (layer.handle.stack) {
        walk(layer.handle.stack, prefix + (typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : ''));
      }
    }
  };
  walk((app as unknown as { router: { stack: StackLayer[] } }).router.stack, '');
  return found;
}

/** The operation's path as Express matches it, under each prefix it answers on. */
function servedPaths(op: OperationSpec): string[] {
  const path = op.path.replaceAll(/\{([^}]+)\}/g, ':$1');
  return op.public ? [path] : [`/api/v1${path}`, `/api${path}`];
}

describe('the route table', () => {
  it('when the app is built, then every route it registers is an operation of the document and every operation is registered', async () => {
    const h = await createHarness();
    try {
      const routes = registeredRoutes(h.app);
      const documented = new Set(IDS.flatMap((id) => servedPaths(OPERATIONS[id]).map((path) => `${OPERATIONS[id].method} ${path}`)));
      const registered = new Set(routes.map((r) => `${r.method} ${r.path}`));
      expect([...registered].filter((route) => !documented.has(route))).toEqual([]);
      expect([...documented].filter((route) => !registered.has(route))).toEqual([]);
    } finally {
      await h.close();
    }
  });
});

interface Answer {
  status: number;
  contentType: string;
  body: unknown;
  headers: Headers;
}

let hook: Server;
let hookFails = false;
let hookUrl: string;
let ch: Confhub;
let document: Record<string, unknown>;
let ajv: Ajv2020;
/** Statuses each operation answered in the calls below. */
const seen = new Map<OperationId, Set<number>>();

beforeAll(async () => {
  hook = createServer((_req, res) => {
    res.statusCode = hookFails ? 500 : 204;
    res.end();
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/reload`;
  ch = await startConfhub({
    systemIni: `[sync]\noutput_roots = @DIR@\ndebounce_min_ms = 30\n\n[env:web]\nWEB_PORT = {{ cockpit.port }}\n\n[target:app]\nsections = cockpit\nformat = ini\noutput = @DIR@/out/app.ini\nreload = http:POST:${hookUrl}\nhealth = none\n\n[notify]\nallow_hosts = 127.0.0.1\ndebounce_ms = 0\n`,
  });
  await eventually('ready', async () => (await fetch(`${ch.url}/readyz`)).status === 200, 30_000);
  document = (await (await ch.api('/api/v1/openapi.json')).json()) as Record<string, unknown>;
  ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ ...document, $id: 'openapi.json' });
});

afterAll(async () => {
  await ch?.close();
  await new Promise<void>((resolve) => hook.close(() => resolve()));
});

function pointer(...parts: string[]): string {
  return parts.map((part) => part.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
}

/** Holds the answer to the document: its status is listed, and its body fits that status's schema. */
function conform(id: OperationId, answer: Answer): void {
  const op: OperationSpec = OPERATIONS[id];
  const responses = ((document.paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>)[op.path]![
    op.method
  ]!.responses ?? {}) as Record<string, { content?: Record<string, unknown> }>;
  // `default`: the 101 of the WebSocket, which OpenAPI has no better place for.
  const response = responses[String(answer.status)] ?? responses.default;
  expect(response, `${id} answered ${answer.status}, which the document does not list (${JSON.stringify(answer.body)})`).toBeDefined();
  (seen.get(id) ?? seen.set(id, new Set()).get(id)!).add(answer.status);
  if (!response!.content) return;
  const mediaTypes = Object.keys(response!.content);
  const mediaType = mediaTypes.find((type) => type.split(';')[0] === answer.contentType.split(';')[0]);
  expect(mediaType, `${id} answered ${answer.contentType}, not one of ${mediaTypes.join(', ')}`).toBeDefined();
  if (!mediaType!.startsWith('application/json')) return;
  const validate = ajv.getSchema(`openapi.json#/${pointer('paths', op.path, op.method, 'responses', String(answer.status), 'content', mediaType!, 'schema')}`)!;
  expect(validate(answer.body) ? [] : validate.errors, `${id} ${answer.status}: ${JSON.stringify(answer.body).slice(0, 400)}`).toEqual([]);
}

interface Call {
  params?: Record<string, string>;
  query?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Sends no API key. */
  anonymous?: boolean;
}

/** Calls one operation of the table, as a client reading the document would, and holds the answer to it. */
async function call(id: OperationId, { params = {}, query = '', body, headers = {}, anonymous = false }: Call = {}): Promise<Answer> {
  const op: OperationSpec = OPERATIONS[id];
  const path = op.path.replaceAll(/\{([^}]+)\}/g, (_m, name: string) => encodeURIComponent(params[name]!));
  const res = await fetch(`${ch.url}${op.public ? '' : '/api/v1'}${path}${query ? `?${query}` : ''}`, {
    method: op.method.toUpperCase(),
    headers: {
      ...(anonymous ? {} : { 'x-api-key': ch.apiKey }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const contentType = res.headers.get('content-type') ?? '';
  const text = res.status === 304 ? '' : await res.text();
  const answer = { status: res.status, contentType, headers: res.headers, body: contentType.startsWith('application/json') ? JSON.parse(text) : text };
  conform(id, answer);
  return answer;
}

describe('every operation of the document, called on a whole confhub', () => {
  it('when each is called, successfully and with the errors a client meets, then each answer fits the document', async () => {
    const settings = await call('getSettings');
    expect(settings.status).toBe(200);
    expect((await call('getSettings', { headers: { 'if-none-match': settings.headers.get('etag')! } })).status).toBe(304);
    expect((await call('getSettings', { anonymous: true })).body).toMatchObject({ code: 'API_KEY_MISSING' });
    expect((await call('getSettings', { headers: { 'x-api-key': 'x'.repeat(32) } })).body).toMatchObject({ code: 'API_KEY_INVALID' });

    expect((await call('patchSettings', { body: { cockpit: { port: 9101 } } })).status).toBe(200);
    expect((await call('patchSettings', { body: { cockpit: { port: 9102 } }, query: 'wait=true' })).body).toMatchObject({ sync: { outcome: 'applied' } });
    expect((await call('patchSettings', { body: { cockpit: { port: 'x' } } })).body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await call('patchSettings', { body: '{"cockpit": ' })).body).toMatchObject({ code: 'MALFORMED_JSON' });
    expect((await call('patchSettings', { body: { nowhere: { port: 1 } } })).body).toMatchObject({ code: 'SECTION_NOT_FOUND' });
    expect((await call('patchSettings', { body: { cockpit: { nokey: 1 } } })).body).toMatchObject({ code: 'KEY_NOT_FOUND' });
    expect((await call('patchSettings', { body: { cockpit: { port: 1 } }, headers: { 'if-match': '"nope"' } })).status).toBe(412);
    expect((await call('patchSettings', { body: 'port=1', headers: { 'content-type': 'text/plain' } })).body).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });

    expect((await call('getSection', { params: { section: 'cockpit' } })).body).toMatchObject({ port: 9102 });
    expect((await call('getSection', { params: { section: 'nope' } })).body).toMatchObject({ code: 'SECTION_NOT_FOUND' });
    expect((await call('putSection', { params: { section: 'cockpit' }, query: 'key=port&value=9103' })).status).toBe(200);
    expect((await call('putSection', { params: { section: 'cockpit' }, body: { port: 9104 }, query: 'wait=true' })).status).toBe(200);
    expect((await call('putSection', { params: { section: 'bad name' }, query: 'key=a&value=b' })).body).toMatchObject({ code: 'INVALID_NAME' });
    expect((await call('putSection', { params: { section: 'cockpit' }, query: 'key=port' })).body).toMatchObject({ code: 'INVALID_REQUEST' });
    expect((await call('getKey', { params: { section: 'cockpit', key: 'port' } })).body).toEqual({ port: 9104 });
    expect((await call('getKey', { params: { section: 'cockpit', key: 'nope' } })).body).toMatchObject({ code: 'KEY_NOT_FOUND' });

    const history = (await call('listHistory', { query: 'limit=3' })).body as { commits: { id: string }[]; next: string };
    expect(history.commits).toHaveLength(3);
    expect((await call('listHistory', { query: `before=${history.commits[2]!.id}` })).status).toBe(200);
    expect((await call('listHistory', { query: 'limit=0' })).body).toMatchObject({ code: 'INVALID_REQUEST' });
    expect((await call('listHistory', { query: `before=${'e'.repeat(40)}` })).body).toMatchObject({ code: 'COMMIT_NOT_FOUND' });
    expect((await call('getCommit', { params: { commit: history.commits[0]!.id } })).status).toBe(200);
    expect((await call('getCommit', { params: { commit: 'e'.repeat(40) } })).status).toBe(404);
    expect((await call('getDiff', { query: `from=${history.commits[2]!.id}` })).status).toBe(200);
    expect((await call('getDiff', { query: '' })).body).toMatchObject({ code: 'INVALID_REQUEST' });
    expect((await call('rollback', { body: { commit: history.commits[1]!.id }, query: 'wait=true' })).body).toMatchObject({ sync: { outcome: 'applied' } });
    expect((await call('rollback', { body: { commit: 'e'.repeat(40) } })).body).toMatchObject({ code: 'COMMIT_NOT_FOUND' });
    expect((await call('rollback', { body: { commit: history.commits[1]!.id, more: 1 } })).body).toMatchObject({ code: 'INVALID_REQUEST' });

    // Environments: an overlay written, read, promoted and removed. The section's port is what the
    // rollback above restored (writes close together may share a commit).
    const port = (await ch.api('/api/v1/settings/cockpit/port').then((res) => res.json())) as { port: number };
    expect((await call('putSection', { params: { section: 'cockpit' }, body: { port: 9201 }, query: 'environment=staging' })).body).toEqual({ port: 9201 });
    expect((await call('getSettings', { query: 'environment=staging' })).body).toMatchObject({ cockpit: { port: 9201 } });
    expect((await call('getSettings', { query: 'explain=true' })).body).toMatchObject({
      cockpit: { port: { value: port.port, source: 'config.ini [cockpit]' } },
    });
    expect((await call('getSection', { params: { section: 'cockpit' }, query: 'explain=true&environment=staging' })).body).toMatchObject({
      port: { value: 9201, source: 'config.ini [cockpit@staging]' },
    });
    expect((await call('getSettings', { query: 'resolved=false' })).body).toMatchObject({ 'cockpit@staging': { port: 9201 } });
    expect((await call('getSettings', { query: 'environment=Bad' })).body).toMatchObject({ code: 'INVALID_NAME' });
    expect((await call('listEnvironments')).body).toEqual({ active: null, environments: [{ name: 'staging', sections: ['cockpit'], keys: 1 }] });
    expect((await call('promoteEnvironment', { body: { from: 'staging', to: 'prod' }, query: 'dry_run=true' })).body).toMatchObject({
      dryRun: true,
      valid: true,
      changes: [{ key: 'cockpit.port', before: null, after: '9201', change: 'added' }],
    });
    expect((await call('promoteEnvironment', { body: { from: 'staging', to: 'prod' }, query: 'wait=true' })).body).toMatchObject({ dryRun: false, sync: {} });
    expect((await call('promoteEnvironment', { body: { from: 'nowhere', to: 'prod' } })).body).toMatchObject({ code: 'ENVIRONMENT_NOT_FOUND' });
    expect((await call('promoteEnvironment', { body: { from: 'staging' } })).body).toMatchObject({ code: 'INVALID_REQUEST' });
    expect((await call('deleteOverride', { params: { section: 'cockpit', key: 'port' }, query: 'environment=prod' })).body).toEqual(port);
    expect((await call('deleteOverride', { params: { section: 'cockpit', key: 'port' }, query: 'environment=prod' })).body).toMatchObject({
      code: 'KEY_NOT_FOUND',
    });
    expect((await call('deleteOverride', { params: { section: 'cockpit', key: 'port' } })).body).toMatchObject({ code: 'INVALID_REQUEST' });

    // Templates: listed, shown, previewed and applied.
    expect((await call('listTemplates')).body).toMatchObject({ problems: [] });
    expect((await call('getTemplate', { params: { name: 'registry-mirror' } })).body).toMatchObject({ name: 'registry-mirror', origin: 'shipped' });
    expect((await call('getTemplate', { params: { name: 'nope' } })).body).toMatchObject({ code: 'TEMPLATE_NOT_FOUND' });
    const mirrors = { variables: { mirrors: ['https://mirror.example.com'] } };
    expect((await call('previewTemplate', { params: { name: 'registry-mirror' }, body: mirrors })).body).toMatchObject({ valid: true });
    expect((await call('previewTemplate', { params: { name: 'registry-mirror' }, body: { variables: [] } })).body).toMatchObject({ code: 'INVALID_REQUEST' });
    expect((await call('applyTemplate', { params: { name: 'registry-mirror' }, body: mirrors, query: 'wait=true' })).body).toMatchObject({ sync: {} });
    expect((await call('applyTemplate', { params: { name: 'registry-mirror' }, body: {} })).body).toMatchObject({ code: 'VALIDATION_FAILED' });

    expect((await call('getSyncStatus')).body).toMatchObject({ worker: { alive: true } });
    expect((await call('reload')).status).toBe(202);
    expect((await call('reload', { query: 'wait=true&force=true' })).body).toMatchObject({ outcome: 'applied' });
    expect((await call('reload', { query: 'force=maybe' })).body).toMatchObject({ code: 'INVALID_REQUEST' });
    expect((await call('getInitStatus')).body).toMatchObject({ phase: 'ready' });

    // Pull integration: the targets, a token, the bundle read with it, a check-in, the init script.
    expect((await call('listTargets')).body).toMatchObject({ targets: [{ name: 'app', bundle: { files: [{ path: 'app.ini', mode: '0600' }] } }] });
    expect((await call('getTarget', { params: { name: 'app' } })).body).toMatchObject({ name: 'app', partOf: null });
    expect((await call('getTarget', { params: { name: 'nope' } })).body).toMatchObject({ code: 'TARGET_NOT_FOUND' });
    const token = (await call('createTargetToken', { params: { name: 'app' }, body: { description: 'conformance' } })).body as { id: string; token: string };
    expect((await call('createTargetToken', { params: { name: 'app' }, body: { description: 1 } })).body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await call('createTargetToken', { params: { name: 'nope' } })).body).toMatchObject({ code: 'TARGET_NOT_FOUND' });
    expect((await call('listTargetTokens', { params: { name: 'app' } })).body).toMatchObject({ tokens: [{ id: token.id, description: 'conformance' }] });
    const bearer = { anonymous: true, headers: { authorization: `Bearer ${token.token}` } };
    const bundle = await call('getTargetBundle', { params: { name: 'app' }, ...bearer });
    expect(bundle.status).toBe(200);
    const bundleTag = bundle.headers.get('etag')!;
    expect((await call('getTargetBundle', { params: { name: 'app' }, headers: { 'if-none-match': bundleTag } })).status).toBe(304);
    expect((await call('getTargetBundle', { params: { name: 'app' }, anonymous: true, headers: { authorization: 'Bearer cht_0' } })).body).toMatchObject({
      code: 'TOKEN_INVALID',
    });
    expect((await call('getTargetBundle', { params: { name: 'nope' } })).body).toMatchObject({ code: 'TARGET_NOT_FOUND' });
    const checkin = { revision: bundleTag.slice(1, -1).split('+')[0], instance: 'app-1' };
    expect((await call('checkinTarget', { params: { name: 'app' }, body: checkin, ...bearer })).body).toMatchObject({ target: 'app', current: true });
    expect((await call('checkinTarget', { params: { name: 'app' }, body: { revision: 'not one' } })).body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await call('getSyncStatus')).body).toMatchObject({ targets: [{ target: 'app', instances: [{ instance: 'app-1', current: true }] }] });
    expect((await call('revokeTargetToken', { params: { name: 'app', id: token.id } })).body).toEqual({ revoked: token.id });
    expect((await call('revokeTargetToken', { params: { name: 'app', id: token.id } })).body).toMatchObject({ code: 'TOKEN_NOT_FOUND' });
    expect((await call('getInitScript', { anonymous: true })).body).toMatch(/^#!\/bin\/sh/);

    expect((await call('listServices')).status).toBe(200);
    expect((await call('testService', { params: { name: 'app' } })).body).toMatchObject({ name: 'app' });
    expect((await call('testService', { params: { name: 'nope' } })).body).toMatchObject({ code: 'SERVICE_NOT_FOUND' });
    expect((await call('testService', { params: { name: '-x' } })).body).toMatchObject({ code: 'INVALID_NAME' });

    expect((await call('patchEnvScope', { params: { scope: 'global' }, body: { TZ: 'UTC', API_TOKEN: 'x-1', GONE: null } })).body).toMatchObject({
      changed: ['TZ', 'API_TOKEN'],
    });
    expect((await call('patchEnvScope', { params: { scope: 'web' }, body: { TZ: 'Asia/Shanghai' }, query: 'wait=true' })).body).toMatchObject({
      sync: { outcome: 'unchanged' },
    });
    expect((await call('patchEnvScope', { params: { scope: 'web' }, body: { WEB_PORT: '1' } })).body).toMatchObject({ code: 'ENV_MAPPED' });
    expect((await call('patchEnvScope', { params: { scope: 'nope' }, body: { A: '1' } })).body).toMatchObject({ code: 'ENV_SCOPE_NOT_FOUND' });
    expect((await call('patchEnvScope', { params: { scope: 'global' }, body: { '1A': '1' } })).body).toMatchObject({ code: 'INVALID_NAME' });
    expect((await call('listEnv')).body).toMatchObject({ global: { API_TOKEN: { value: '******' } }, web: { WEB_PORT: { source: 'mapped:cockpit.port' } } });
    expect((await call('getEnvScope', { params: { scope: 'global' }, query: 'reveal=true' })).body).toMatchObject({ API_TOKEN: { value: 'x-1' } });
    expect((await call('exportEnv', { params: { scope: 'web' } })).body).toContain('TZ="Asia/Shanghai"');
    expect((await call('exportEnv', { params: { scope: 'web' }, query: 'format=json' })).body).toMatchObject({ TZ: 'Asia/Shanghai' });
    expect((await call('getEnvVariable', { params: { scope: 'web', name: 'WEB_PORT' } })).status).toBe(200);
    expect((await call('getEnvVariable', { params: { scope: 'web', name: 'NOPE' } })).body).toMatchObject({ code: 'ENV_VARIABLE_NOT_FOUND' });
    expect((await call('putEnvVariable', { params: { scope: 'global', name: 'TZ' }, body: { value: 'Europe/Paris' } })).status).toBe(200);
    expect((await call('deleteEnvVariable', { params: { scope: 'global', name: 'TZ' } })).status).toBe(200);
    expect((await call('deleteEnvVariable', { params: { scope: 'global', name: 'TZ' } })).status).toBe(404);

    expect((await call('getSystem')).status).toBe(200);
    expect((await call('getSystemSection', { params: { section: 'sync' } })).status).toBe(200);
    expect((await call('getSystemSection', { params: { section: 'nope' } })).status).toBe(404);
    expect(((await call('listAudit', { query: 'limit=5' })).body as { entries: unknown[] }).entries).toHaveLength(5);

    const webhook = (await call('createWebhook', { body: { url: hookUrl, events: ['settings.changed'], description: 'conformance' } })).body as { id: string };
    expect((await call('createWebhook', { body: { url: 'ftp://example.com' } })).body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await call('createWebhook', { body: '{"url": ' })).body).toMatchObject({ code: 'MALFORMED_JSON' });
    expect((await call('listWebhooks')).body).toMatchObject({ webhooks: [{ id: webhook.id }] });
    expect((await call('getWebhook', { params: { id: webhook.id } })).body).toMatchObject({ kind: 'standard' });
    expect((await call('getWebhook', { params: { id: 'wh_nope' } })).body).toMatchObject({ code: 'WEBHOOK_NOT_FOUND' });
    expect((await call('patchWebhook', { params: { id: webhook.id }, body: { description: 'changed' } })).body).toMatchObject({ description: 'changed' });
    expect((await call('patchWebhook', { params: { id: webhook.id }, body: { kind: 'teams' } })).body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await call('rotateWebhookSecret', { params: { id: webhook.id } })).body).toMatchObject({ secret: expect.stringMatching(/^whsec_/) });
    const tested = (await call('testWebhook', { params: { id: webhook.id } })).body as { id: number; state: string };
    expect(tested.state).toBe('delivered');
    expect((await call('listWebhookDeliveries', { params: { id: webhook.id }, query: 'limit=5' })).body).toMatchObject({ deliveries: [{ id: tested.id }] });
    expect((await call('redeliverWebhookDelivery', { params: { id: webhook.id, deliveryId: String(tested.id) } })).status).toBe(202);
    expect((await call('redeliverWebhookDelivery', { params: { id: webhook.id, deliveryId: '999999' } })).body).toMatchObject({ code: 'DELIVERY_NOT_FOUND' });
    expect((await call('deleteWebhook', { params: { id: webhook.id } })).body).toEqual({ deleted: webhook.id });
    expect((await call('deleteWebhook', { params: { id: webhook.id } })).status).toBe(404);
    expect((await call('listAudit', { query: 'since=yesterday' })).body).toMatchObject({ code: 'INVALID_REQUEST' });
    expect((await call('getOpenApi')).status).toBe(200);
    expect((await call('healthz')).status).toBe(200);
    expect((await call('readyz')).status).toBe(200);
    expect((await call('metrics')).body).toContain('confhub_sync_runs_total');

    // A reload that fails: the waited write answers 502 with the per-target results.
    hookFails = true;
    try {
      expect((await call('putSection', { params: { section: 'cockpit' }, body: { port: 9105 }, query: 'wait=true' })).body).toMatchObject({
        code: 'SYNC_FAILED',
        sync: { targets: [{ target: 'app' }] },
      });
    } finally {
      hookFails = false;
    }

    // config.ini broken by hand: reads of it answer 503 and /readyz says why.
    const good = ch.readConfig();
    writeFileSync(ch.config.configPath, `${good}\n[cockpit]\nport = 1\n`);
    await eventually('the broken file is seen', async () => (await fetch(`${ch.url}/readyz`)).status === 503);
    expect((await call('readyz')).body).toMatchObject({ status: 'not_ready' });
    expect((await call('getSettings')).body).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((await call('getSyncStatus')).body).toMatchObject({ source: { valid: false } });
    expect((await call('getInitStatus')).body).toMatchObject({ phase: 'degraded' });
    writeFileSync(ch.config.configPath, good);
    await eventually('the file is good again', async () => (await fetch(`${ch.url}/readyz`)).status === 200);

    // A sealed value altered by hand: reads of config.ini answer 500 SECRET_UNREADABLE.
    const sealed = /^(user_pwd = enc:v1:[0-9a-f]+:)(.)/m;
    expect(good).toMatch(sealed);
    writeFileSync(
      ch.config.configPath,
      good.replace(sealed, (_m, head: string, c: string) => `${head}${c === 'A' ? 'B' : 'A'}`),
    );
    await eventually('the altered value is seen', async () => (await fetch(`${ch.url}/readyz`)).status === 503);
    for (const id of ['getSettings', 'getSection', 'getKey'] as const) {
      expect((await call(id, { params: { section: 'gitea', key: 'user_pwd' } })).body).toMatchObject({ code: 'SECRET_UNREADABLE' });
    }
    writeFileSync(ch.config.configPath, good);
    await eventually('the file is good again', async () => (await fetch(`${ch.url}/readyz`)).status === 200, 30_000);

    // system.ini broken by hand: its reads answer 503.
    const system = readFileSync(ch.config.systemPath, 'utf8');
    writeFileSync(ch.config.systemPath, `${system}\n[sync]\n`);
    expect((await call('getSystem')).body).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((await call('getSystemSection', { params: { section: 'sync' } })).body).toMatchObject({ code: 'CONFIG_INVALID' });
    writeFileSync(ch.config.systemPath, system);

    // The event stream: its answer is an event stream, and it begins with the client's place in the log.
    const abort = new AbortController();
    const res = await fetch(`${ch.url}/api/v1/settings/events`, { headers: { 'x-api-key': ch.apiKey }, signal: abort.signal });
    const first = await res.body!.getReader().read();
    abort.abort();
    conform('streamEvents', { status: res.status, contentType: res.headers.get('content-type') ?? '', headers: res.headers, body: '' });
    expect(new TextDecoder().decode(first.value)).toMatch(/^retry: 3000\nid: \d+\n/);

    // The WebSocket: a GET without an upgrade answers 426; the upgrade, 101 naming confhub.v1.
    expect((await call('openWebSocket')).body).toMatchObject({ code: 'UPGRADE_REQUIRED' });
    const socket = connectWs(`${ch.url.replace(/^http/, 'ws')}/api/v1/ws`, { protocols: ['confhub.v1', `key.${ch.apiKey}`] });
    try {
      await socket.opened;
      expect(socket.acceptedProtocolHeader()).toBe('confhub.v1');
      conform('openWebSocket', { status: 101, contentType: '', headers: new Headers(), body: '' });
    } finally {
      socket.close();
    }

    const unanswered = IDS.filter((id) => ![...(seen.get(id) ?? [])].some((status) => (status >= 200 && status < 300) || status === 101));
    expect(unanswered, 'operations never called successfully').toEqual([]);
  });
});

describe('the linter', () => {
  it('when Redocly lints the served document with its strict rules, then it finds nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'confhub-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(document, null, 1));
      const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [REDOCLY, 'lint', '--config', REDOCLY_CONFIG, '--format', 'json', file],
          { env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' }, timeout: 60_000 },
          (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
        );
      });
      const report = JSON.parse(result.stdout) as { totals: Record<string, number>; problems: { ruleId: string; message: string }[] };
      expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
      expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
      expect(result.code, result.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
