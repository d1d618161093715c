/**
 * GET /api/v1/services and POST /api/v1/services/{name}/test on a whole confhub (server.ts builds
 * the checks from system.ini [sync]), with a Docker socket and a supervisord socket that do not
 * exist and a service URL served on 127.0.0.1; and the app without service checks.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';
import { createHarness, type Harness } from '../support/harness.js';

const PASSWORD = 'Sv3c-pr0be-pw';
const TOKEN = 'tok-9f8e7d6c';

interface Check {
  kind: string;
  ok: boolean;
  url?: string;
  status?: number;
  state?: string;
  latencyMs: number;
  checkedAt: string;
  error?: { code: string; message: string };
}
interface Service {
  name: string;
  kind: string;
  ok: boolean | null;
  stale: boolean;
  checkedAt: string | null;
  checks: Check[];
}
interface ServiceList {
  services: Service[];
  checkedAt: string | null;
  refreshing: boolean;
}

/** A Docker target and a supervisord target, with [sync] sockets named `<prefix>-docker.sock` and `<prefix>-supervisor.sock` that do not exist. */
function systemIni(prefix: string): string {
  return [
    '[sync]',
    'output_roots = @DIR@',
    'debounce_min_ms = 30',
    `docker_socket = @DIR@/${prefix}-docker.sock`,
    `supervisor_url = unix://@DIR@/${prefix}-supervisor.sock`,
    '',
    '[target:gitea]',
    'sections = gitea',
    'format = env',
    'output = @DIR@/out/gitea.env',
    'reload = docker:restart:websoft9-git',
    '',
    '[target:console]',
    'sections = cockpit',
    'format = env',
    'output = @DIR@/out/console.env',
    'reload = supervisor:restart:console',
    '',
  ].join('\n');
}

describe('service connection tests over HTTP', () => {
  let ch: Confhub;
  let web: Server;
  let port: number;
  const seen: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    web = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(req.url?.startsWith('/api') ? 200 : 404).end('{}');
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    port = (web.address() as { port: number }).port;
    ch = await startConfhub({
      systemIni: systemIni('no'),
      configExtra: `\n[myapp]\nbase_url = http://probe:${PASSWORD}@127.0.0.1:${port}/api?token=${TOKEN}\n`,
    });
  });

  afterAll(async () => {
    await ch?.close();
    web.closeAllConnections();
    await new Promise<void>((resolve) => web.close(() => resolve()));
  });

  const list = async (path = '/api/v1/services'): Promise<ServiceList> => {
    const res = await ch.api(path);
    expect(res.status).toBe(200);
    return (await res.json()) as ServiceList;
  };

  it('when the services are first listed, then targets and config.ini URLs are there unchecked, and a background refresh fills them in without throwing on the missing engines', async () => {
    const first = await list();
    expect(first.checkedAt).toBeNull();
    expect(first.refreshing).toBe(true);
    const byName = new Map(first.services.map((s) => [s.name, s]));
    // Targets first, then the URLs of config.ini; the gitea section's base_url joins the gitea target.
    expect(first.services.map((s) => [s.name, s.kind])).toEqual([
      ['gitea', 'target'],
      ['console', 'target'],
      ['nginx_proxy_manager', 'url'],
      ['portainer', 'url'],
      ['myapp', 'url'],
    ]);
    expect(byName.get('myapp')).toEqual({ name: 'myapp', kind: 'url', ok: null, stale: true, checkedAt: null, checks: [] });

    let current = first;
    await eventually(
      'the background refresh is done',
      async () => {
        current = await list();
        return current.services.every((s) => !s.stale);
      },
      15_000,
    );
    const after = new Map(current.services.map((s) => [s.name, s]));
    expect(after.get('myapp')).toMatchObject({ ok: true, checks: [{ kind: 'http', url: `http://127.0.0.1:${port}/api`, status: 200, ok: true }] });
    const gitea = after.get('gitea')!;
    expect(gitea.checks.map((c) => c.kind)).toEqual(['container', 'http']);
    expect(gitea.checks[0]).toMatchObject({ ok: false, error: { code: 'SERVICE_UNREACHABLE' } });
    expect(after.get('console')!.checks).toMatchObject([{ kind: 'supervisor', ok: false, error: { code: 'SERVICE_UNREACHABLE' } }]);
    expect(gitea.ok).toBe(false);
    expect(current.checkedAt).not.toBeNull();
    // The server is still there after the failed probes.
    expect((await fetch(`${ch.url}/healthz`)).status).toBe(200);
  });

  it('when one service is tested, then the fresh result comes back, also under the legacy /api prefix, with credentials sent but never shown', async () => {
    const before = Date.now();
    const res = await ch.api('/api/services/myapp/test', { method: 'POST' });
    expect(res.status).toBe(200);
    const text = await res.text();
    const body = JSON.parse(text) as Service;
    expect(body).toMatchObject({ name: 'myapp', kind: 'url', ok: true, stale: false, checks: [{ status: 200 }] });
    // Fresh: checked during this request, not served from the cache.
    expect(Date.parse(body.checkedAt!)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(body.checkedAt!)).toBeLessThanOrEqual(Date.now());
    expect(seen.at(-1)!.authorization).toBe(`Basic ${Buffer.from(`probe:${PASSWORD}`).toString('base64')}`);
    const listed = JSON.stringify(await list('/api/services'));
    for (const shown of [text, listed]) {
      expect(shown).not.toContain(PASSWORD);
      expect(shown).not.toContain(TOKEN);
    }
  });

  it('when the name is unknown, malformed, the method wrong or the key missing, then 404 SERVICE_NOT_FOUND, 400 INVALID_NAME, 405 and 401', async () => {
    const unknown = await ch.api('/api/v1/services/nothing-here/test', { method: 'POST' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'SERVICE_NOT_FOUND', message: expect.any(String), details: expect.any(String) });
    for (const bad of ['__proto__', 'a%20b', '%2e%2e%2fetc', 'x'.repeat(65)]) {
      const res = await ch.api(`/api/v1/services/${bad}/test`, { method: 'POST' });
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('INVALID_NAME');
    }
    const wrongMethod = await ch.api('/api/v1/services/myapp/test');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect((await ch.api('/api/v1/services', { method: 'DELETE' })).status).toBe(405);
    const noKey = await fetch(`${ch.url}/api/v1/services`);
    expect(noKey.status).toBe(401);
    expect(((await noKey.json()) as { code: string }).code).toBe('API_KEY_MISSING');
    const noKeyTest = await fetch(`${ch.url}/api/v1/services/myapp/test`, { method: 'POST' });
    expect(noKeyTest.status).toBe(401);
  });
});

describe('an API-only process (no sync worker)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when the services are asked for, then the checks still answer; the OpenAPI document describes both routes', async () => {
    const listed = await request(h.app).get('/api/v1/services').set('x-api-key', h.apiKey);
    expect(listed.status).toBe(200);
    expect(Array.isArray(listed.body.services)).toBe(true);
    const unknown = await request(h.app).post('/api/v1/services/no-such-service/test').set('x-api-key', h.apiKey);
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('SERVICE_NOT_FOUND');
    const openapi = await request(h.app).get('/api/v1/openapi.json').set('x-api-key', h.apiKey);
    expect(openapi.body.paths['/services'].get.responses['200']).toBeDefined();
    expect(openapi.body.paths['/services/{name}/test'].post.responses['404'].description).toContain('SERVICE_NOT_FOUND');
    expect(openapi.body.components.schemas.Service.properties.checks.items).toEqual({ $ref: '#/components/schemas/ConnectionCheck' });
    expect(openapi.body.components.schemas.Error.properties.code.enum).toContain('SERVICE_NOT_FOUND');
  });

  it('when a reload or a waited write is asked for, then 503 WORKER_UNAVAILABLE and readiness names the worker', async () => {
    const reload = await request(h.app).post('/api/v1/settings/reload').set('x-api-key', h.apiKey);
    expect(reload.status).toBe(503);
    expect(reload.body.code).toBe('WORKER_UNAVAILABLE');
    const ready = await request(h.app).get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.reasons).toEqual(['sync worker not running']);
  });
});

describe('reloader endpoints from the environment', () => {
  it('when CONFHUB_DOCKER_SOCKET and CONFHUB_SUPERVISOR_URL are set, then both the checks and the sync worker use them instead of system.ini', async () => {
    const ch = await startConfhub({
      systemIni: systemIni('ini'),
      env: { CONFHUB_DOCKER_SOCKET: '@DIR@/env-docker.sock', CONFHUB_SUPERVISOR_URL: 'unix://@DIR@/env-supervisor.sock' },
    });
    try {
      const gitea = (await (await ch.api('/api/v1/services/gitea/test', { method: 'POST' })).json()) as Service;
      expect(gitea.checks[0]!.error!.message).toContain('env-docker.sock');
      const console = (await (await ch.api('/api/v1/services/console/test', { method: 'POST' })).json()) as Service;
      expect(console.checks[0]!.error!.message).toContain('env-supervisor.sock');
      // The worker's first reconcile could not reach either; its errors name the same sockets.
      const errors = async (): Promise<string> =>
        JSON.stringify(((await (await ch.api('/api/v1/sync/status')).json()) as { targets: { lastError: unknown }[] }).targets.map((t) => t.lastError));
      await eventually(
        'both targets report their reloader',
        async () => (await errors()).includes('env-docker.sock') && (await errors()).includes('env-supervisor.sock'),
        20_000,
      );
      expect(await errors()).not.toContain('ini-docker.sock');
      expect(await errors()).not.toContain('ini-supervisor.sock');
    } finally {
      await ch.close();
    }
  });
});
