import { readFileSync } from 'node:fs';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WEBSOFT9_DEFAULT_API_KEY } from '../../src/bootstrap/first-boot-secrets.js';
import { parseIni } from '../../src/ini/document.js';
import { createHarness, type Harness } from '../support/harness.js';

let h: Harness;
const closers: Harness[] = [];

async function harness(options: Parameters<typeof createHarness>[0] = {}): Promise<Harness> {
  const created = await createHarness(options);
  closers.push(created);
  return created;
}

beforeEach(async () => {
  h = await harness();
});

afterEach(async () => {
  while (closers.length > 0) await closers.pop()!.close();
});

const get = (path: string) => request(h.app).get(path).set('x-api-key', h.apiKey);
const put = (path: string) => request(h.app).put(path).set('x-api-key', h.apiKey);
const patch = (path: string) => request(h.app).patch(path).set('x-api-key', h.apiKey);

function expectErrorShape(body: unknown, code: string): void {
  expect(body).toMatchObject({ code, message: expect.any(String), details: expect.any(String) });
}

function valueAt(text: string, section: string, key: string): string | undefined {
  return parseIni(text).byName.get(section)?.byKey.get(key)?.value;
}

describe('authentication', () => {
  it("when x-api-key is missing, then 401 API_KEY_MISSING with apphub's details text", async () => {
    for (const path of ['/api/v1/settings', '/api/settings']) {
      const res = await request(h.app).get(path);
      expect(res.status).toBe(401);
      expectErrorShape(res.body, 'API_KEY_MISSING');
      expect(res.body.details).toBe('No API Key provided');
    }
  });

  it("when x-api-key is wrong, then 401 API_KEY_INVALID with apphub's details text, on the legacy prefix too", async () => {
    for (const path of ['/api/v1/settings', '/api/settings']) {
      const res = await request(h.app)
        .get(path)
        .set('x-api-key', `${h.apiKey.slice(0, -1)}x`);
      expect(res.status).toBe(401);
      expectErrorShape(res.body, 'API_KEY_INVALID');
      expect(res.body.details).toBe('Invalid API Key');
    }
  });

  it('when a key of another length is presented, then it is refused like any wrong key', async () => {
    const res = await request(h.app).get('/api/v1/settings').set('x-api-key', 'short');
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('API_KEY_INVALID');
  });

  it('when a path differs only in case, then it is no route: 404 with the key, and no write is audited for it', async () => {
    for (const path of ['/API/V1/settings', '/api/V1/settings', '/api/v1/Settings', '/API/settings']) {
      const read = await get(path);
      expect(read.status).toBe(404);
      expectErrorShape(read.body, 'NOT_FOUND');
      expect((await put(`${path}/gitea?key=user_name&value=x`)).status).toBe(404);
    }
    // Outside /api nothing is authenticated: 404. Under /api the key is checked before the route
    // is looked for (no route is revealed to a caller without the key): 401, and, as no settings
    // resource was asked for, no audit row.
    expect((await request(h.app).put('/API/V1/settings/gitea?key=user_name&value=x').set('x-api-key', 'wrong')).status).toBe(404);
    expect((await request(h.app).put('/api/V1/settings/gitea?key=user_name&value=x').set('x-api-key', 'wrong')).status).toBe(401);
    const entries = (await get('/api/v1/audit?limit=50')).body.entries as Record<string, unknown>[];
    expect(entries.filter((e) => e.section === 'gitea' && e.key === 'user_name')).toEqual([]);
    expect((await get('/api/v1/settings')).status).toBe(200);
  });

  it('when /healthz is called without a key, then it answers 200', async () => {
    const res = await request(h.app).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('when the API key is changed through the API, then the old key stops working at once', async () => {
    const newKey = 'b'.repeat(20) + 'c'.repeat(20) + 'd'.repeat(24);
    const res = await put(`/api/v1/settings/api_key?key=key&value=${newKey}`);
    expect(res.status).toBe(200);
    expect((await request(h.app).get('/api/v1/settings').set('x-api-key', h.apiKey)).status).toBe(401);
    expect((await request(h.app).get('/api/v1/settings').set('x-api-key', newKey)).status).toBe(200);
  });

  it('when the publicly known Websoft9 key is set through the API, in any case, then 400 names the key and the old key keeps working', async () => {
    for (const key of [WEBSOFT9_DEFAULT_API_KEY, WEBSOFT9_DEFAULT_API_KEY.toUpperCase()]) {
      for (const path of [`/api/v1/settings/api_key?key=key&value=${key}`, `/api/settings/api_key?key=key&value=${key}`]) {
        const res = await put(path);
        expect(res.status).toBe(400);
        expectErrorShape(res.body, 'VALIDATION_FAILED');
        expect(res.body.details).toContain('api_key.key is the publicly known Websoft9 default key');
      }
    }
    expect((await get('/api/v1/settings')).status).toBe(200);
    expect((await request(h.app).get('/api/v1/settings').set('x-api-key', WEBSOFT9_DEFAULT_API_KEY)).status).toBe(401);
  });

  it('when a hand edit writes the public key (in capitals) or empties the key, then the last acceptable key keeps working and the public one never does', async () => {
    const withKey = (value: string): string => h.readConfig().replace(/^key = .*$/m, `key = ${value}`);
    const original = h.readConfig();
    for (const value of [WEBSOFT9_DEFAULT_API_KEY.toUpperCase(), '']) {
      h.writeConfig(withKey(value));
      expect((await get('/api/v1/settings')).status).toBe(200);
      expect((await request(h.app).get('/api/v1/settings').set('x-api-key', WEBSOFT9_DEFAULT_API_KEY)).status).toBe(401);
      expect((await request(h.app).get('/api/v1/settings').set('x-api-key', WEBSOFT9_DEFAULT_API_KEY.toUpperCase())).status).toBe(401);
      h.writeConfig(original);
    }
    // A key against the format rule, written by hand, still guards the API (the sync status says
    // config.ini is invalid): only a publicly known or empty key never does.
    h.writeConfig(withKey('short-hand-key'));
    expect((await request(h.app).get('/api/v1/settings').set('x-api-key', 'short-hand-key')).status).toBe(200);
    h.writeConfig(original);
    // An acceptable key written by hand takes effect at once, as before.
    const handKey = 'h'.repeat(40);
    h.writeConfig(withKey(handKey));
    expect((await request(h.app).get('/api/v1/settings').set('x-api-key', handKey)).status).toBe(200);
    expect((await get('/api/v1/settings')).status).toBe(401);
  });

  it('when health checks and scrapers ask, then their answers make no access line at info; API requests do', async () => {
    const quiet = await createHarness({ logLevel: 'info' });
    try {
      await request(quiet.app).get('/healthz');
      await request(quiet.app).get('/metrics');
      await request(quiet.app).get('/api/v1/settings').set('x-api-key', quiet.apiKey);
      const lines = quiet
        .logs()
        .split('\n')
        .filter((l) => l.includes('"msg":"request"'));
      expect(lines.map((l) => JSON.parse(l).path)).toEqual(['/api/v1/settings']);
    } finally {
      await quiet.close();
    }
    const verbose = await createHarness({ logLevel: 'debug' });
    try {
      await request(verbose.app).get('/healthz');
      expect(verbose.logs()).toContain('"path":"/healthz"');
    } finally {
      await verbose.close();
    }
  });

  it('when keys are presented, right or wrong, then neither ever appears in the logs', async () => {
    const wrong = 'f'.repeat(64);
    await request(h.app).get('/api/v1/settings').set('x-api-key', wrong);
    await get('/api/v1/settings');
    await put('/api/v1/settings/gitea?key=user_pwd&value=Zq8-very-secret-Pw');
    const logs = h.logs();
    expect(logs).toContain('"path":"/api/v1/settings"');
    expect(logs).not.toContain(h.apiKey);
    expect(logs).not.toContain(wrong);
    expect(logs).not.toContain('Zq8-very-secret-Pw');
  });
});

describe('reading settings', () => {
  it('when all settings are read, then values are typed by the schema and legacy /api answers the same', async () => {
    const v1 = await get('/api/v1/settings');
    expect(v1.status).toBe(200);
    expect(v1.body.nginx_proxy_manager.listen_port).toBe(9000);
    expect(v1.body.cockpit.port).toBe(9090);
    expect(v1.body.gitea.user_name).toBe('websoft9');
    expect(typeof v1.body.api_key.key).toBe('string');
    const legacy = await get('/api/settings');
    expect(legacy.body).toEqual(v1.body);
  });

  it('when one section or one key is read, then only it is returned', async () => {
    const section = await get('/api/v1/settings/cockpit');
    expect(section.body).toEqual({ port: 9090 });
    const key = await get('/api/v1/settings/gitea/USER_NAME');
    expect(key.body).toEqual({ user_name: 'websoft9' });
  });

  it('when the section does not exist, then 404 SECTION_NOT_FOUND with the legacy details text', async () => {
    const res = await get('/api/v1/settings/nope');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: 'SECTION_NOT_FOUND', details: 'Section:nope does not exist' });
  });

  it('when a name another router serves under /settings/ is requested, then that router answers, not a section of that name', async () => {
    const post = (path: string) => request(h.app).post(path).set('x-api-key', h.apiKey);
    expect((await post('/api/v1/settings/reload')).body.code).toBe('WORKER_UNAVAILABLE');
    expect((await get('/api/v1/settings/history?limit=1')).body).toEqual({ commits: [], next: null });
    expect((await get('/api/settings/history/abcd')).body.code).toBe('COMMIT_NOT_FOUND');
    expect((await get('/api/v1/settings/diff')).body).toMatchObject({ code: 'INVALID_REQUEST', details: 'the from query parameter is required' });
    expect((await post('/api/v1/settings/rollback')).body).toMatchObject({ code: 'INVALID_REQUEST', details: 'A JSON body is required' });
    expect((await get('/api/v1/settings/nope/x')).body.code).toBe('SECTION_NOT_FOUND');
  });

  it('when the key does not exist, then 400 KEY_NOT_FOUND', async () => {
    const res = await get('/api/v1/settings/gitea/nope');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'KEY_NOT_FOUND', details: 'Key:nope does not exist' });
  });

  it('when If-None-Match names the current ETag, then 304; after a change, 200 with a new ETag', async () => {
    const first = await get('/api/v1/settings/gitea');
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect((await get('/api/v1/settings/gitea').set('if-none-match', etag)).status).toBe(304);
    await put('/api/v1/settings/gitea?key=user_name&value=someone');
    const after = await get('/api/v1/settings/gitea').set('if-none-match', etag);
    expect(after.status).toBe(200);
    expect(after.headers.etag).not.toBe(etag);
  });

  it('when config.ini is edited by hand, then the next GET shows the edit', async () => {
    await get('/api/v1/settings/cockpit');
    h.writeConfig(h.readConfig().replace('port = 9090', 'port = 9091'));
    expect((await get('/api/v1/settings/cockpit')).body).toEqual({ port: 9091 });
  });
});

describe('legacy single-key update', () => {
  it('when PUT ?key=&value= is sent, then the section is returned and only that line of the file changes', async () => {
    const before = h.readConfig();
    const res = await put('/api/settings/gitea?key=user_name&value=admin2');
    expect(res.status).toBe(200);
    expect(res.body.user_name).toBe('admin2');
    const after = h.readConfig();
    const changed = after.split('\n').filter((line, i) => line !== before.split('\n')[i]);
    expect(changed).toEqual(['user_name = admin2']);
    expect(after.startsWith('# confhub user settings')).toBe(true);
  });

  it('when the key does not exist in the file or the schema, then 400 KEY_NOT_FOUND and the file is unchanged', async () => {
    const before = h.readConfig();
    const res = await put('/api/settings/gitea?key=colour&value=red');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'KEY_NOT_FOUND', details: 'Key:colour does not exist' });
    expect(h.readConfig()).toBe(before);
  });

  it('when the section does not exist, then 404 SECTION_NOT_FOUND', async () => {
    const res = await put('/api/settings/nope?key=a&value=b');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: 'SECTION_NOT_FOUND', details: 'Section:nope does not exist' });
  });

  it('when value is missing or key is given twice, then 400 INVALID_REQUEST', async () => {
    expect((await put('/api/settings/gitea?key=user_name')).body.code).toBe('INVALID_REQUEST');
    expect((await put('/api/settings/gitea?key=user_name&key=user_email&value=x')).body.code).toBe('INVALID_REQUEST');
  });

  it('when the value is already the stored one, then the file is not rewritten and the audit says unchanged', async () => {
    const { statSync } = await import('node:fs');
    const before = statSync(h.config.configPath);
    const res = await put('/api/settings/gitea?key=user_name&value=websoft9');
    expect(res.status).toBe(200);
    const after = statSync(h.config.configPath);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect((await get('/api/v1/audit?limit=1')).body.entries[0]).toMatchObject({ key: 'user_name', result: 'unchanged' });
  });

  it('when config.ini starts with a BOM and uses CRLF, then an API write keeps both byte for byte', async () => {
    h.writeConfig(`\uFEFF${h.readConfig().replace(/\n/g, '\r\n')}`);
    const before = h.readConfig();
    expect((await put('/api/settings/gitea?key=user_name&value=bom-kept')).status).toBe(200);
    const after = h.readConfig();
    expect(after.startsWith('\uFEFF#')).toBe(true);
    expect(after).toBe(before.replace('user_name = websoft9\r\n', 'user_name = bom-kept\r\n'));
  });

  it('when a declared key is missing from the file, then the update adds it to its section', async () => {
    h.writeConfig(h.readConfig().replace('ssl_key =\n', ''));
    const res = await put('/api/settings/nginx_proxy_manager?key=ssl_key&value=/etc/ssl/private/console.key');
    expect(res.status).toBe(200);
    expect(valueAt(h.readConfig(), 'nginx_proxy_manager', 'ssl_key')).toBe('/etc/ssl/private/console.key');
  });
});

describe('batch updates', () => {
  it('when PUT carries a JSON object, then all keys change together and numbers are accepted for ports', async () => {
    const res = await put('/api/v1/settings/nginx_proxy_manager').send({ listen_port: 9443, nike_name: 'boss' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ listen_port: 9443, nike_name: 'boss' });
    expect(valueAt(h.readConfig(), 'nginx_proxy_manager', 'listen_port')).toBe('9443');
  });

  it('when one key of a batch is invalid, then nothing is written and every failing field is listed', async () => {
    const before = h.readConfig();
    const res = await put('/api/v1/settings/nginx_proxy_manager').send({
      nike_name: 'fine',
      listen_port: 70000,
      base_url: 'ftp://x',
      user_name: 'not-an-email',
    });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    const fields = (res.body.errors as { field: string }[]).map((e) => e.field).sort();
    expect(fields).toEqual(['nginx_proxy_manager.base_url', 'nginx_proxy_manager.listen_port', 'nginx_proxy_manager.user_name']);
    expect(res.body.details).toContain('nginx_proxy_manager.listen_port');
    expect(h.readConfig()).toBe(before);
  });

  it('when PATCH spans sections, then it is all-or-nothing', async () => {
    const before = h.readConfig();
    const bad = await patch('/api/v1/settings').send({ gitea: { user_name: 'x1' }, cockpit: { port: 'abc' } });
    expect(bad.status).toBe(400);
    expect(h.readConfig()).toBe(before);
    const good = await patch('/api/v1/settings').send({ gitea: { user_name: 'x1' }, cockpit: { port: 9092 } });
    expect(good.status).toBe(200);
    expect(good.body.gitea.user_name).toBe('x1');
    expect(good.body.cockpit.port).toBe(9092);
  });

  it('when PATCH names an unknown section or key, then 404 / 400 and nothing changes', async () => {
    const before = h.readConfig();
    expect((await patch('/api/v1/settings').send({ gitea: { user_name: 'ok' }, nope: { a: 'b' } })).status).toBe(404);
    expect((await patch('/api/v1/settings').send({ gitea: { user_name: 'ok', nope: 'b' } })).status).toBe(400);
    expect(h.readConfig()).toBe(before);
  });

  it('when the body is not an object of objects, then 400 INVALID_REQUEST', async () => {
    expect((await patch('/api/v1/settings').send([1, 2])).body.code).toBe('INVALID_REQUEST');
    expect((await patch('/api/v1/settings').send({ gitea: 'x' })).body.code).toBe('INVALID_REQUEST');
    expect((await put('/api/v1/settings/gitea').send({})).body.code).toBe('INVALID_REQUEST');
    expect((await put('/api/v1/settings/gitea').send({ user_name: null })).body.code).toBe('VALIDATION_FAILED');
  });
});

describe('whole-config validation', () => {
  it('when two services would use the same port, then 400 names both keys', async () => {
    const res = await put('/api/v1/settings/cockpit?key=port&value=9000');
    expect(res.status).toBe(400);
    const conflict = (res.body.errors as { field: string; code: string }[]).filter((e) => e.code === 'PORT_CONFLICT');
    expect(conflict.map((e) => e.field).sort()).toEqual(['cockpit.port', 'nginx_proxy_manager.listen_port']);
    expect(res.body.details).toContain('cockpit.port');
    expect(res.body.details).toContain('nginx_proxy_manager.listen_port');
  });

  it.each([
    ['too short', 'Sh0rt-pw'],
    ['a common password', 'password1234'],
    ['equal to the user name', 'AdministratorX'],
    ['empty', ''],
  ])('when a password is %s, then 400 WEAK_PASSWORD naming the key and not showing the value', async (_label, value) => {
    await put('/api/v1/settings/portainer?key=user_name&value=administratorx');
    const res = await put(`/api/v1/settings/portainer?key=user_pwd&value=${encodeURIComponent(value)}`);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'portainer.user_pwd', code: 'WEAK_PASSWORD' })]);
    if (value) expect(JSON.stringify(res.body)).not.toContain(value);
  });

  it('when a strong password is set, then it is stored sealed and read back in plain text', async () => {
    const res = await put('/api/v1/settings/portainer?key=user_pwd&value=Kx9%23mP2%3Bq%60Lw7');
    expect(res.status).toBe(200);
    expect(valueAt(h.readConfig(), 'portainer', 'user_pwd')).toMatch(/^enc:v1:[0-9a-f]{8}:[A-Za-z0-9_-]+$/);
    expect(h.readConfig()).not.toContain('Kx9#mP2;q`Lw7');
    expect((await get('/api/v1/settings/portainer/user_pwd')).body).toEqual({ user_pwd: 'Kx9#mP2;q`Lw7' });
  });

  it('when the file already has an invalid value elsewhere, then a write is refused naming that key', async () => {
    h.writeConfig(h.readConfig().replace('port = 9090', 'port = abc'));
    const res = await put('/api/v1/settings/gitea?key=user_name&value=ok');
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'cockpit.port', code: 'INVALID_PORT' })]);
  });
});

describe('optimistic concurrency', () => {
  it('when If-Match is stale, then 412 and the file is unchanged; with the current ETag the write lands', async () => {
    const etag = (await get('/api/v1/settings/gitea')).headers.etag as string;
    await put('/api/v1/settings/gitea?key=user_name&value=first');
    const before = h.readConfig();
    const stale = await put('/api/v1/settings/gitea?key=user_name&value=second').set('if-match', etag);
    expect(stale.status).toBe(412);
    expect(stale.body.code).toBe('PRECONDITION_FAILED');
    expect(h.readConfig()).toBe(before);
    const current = (await get('/api/v1/settings/gitea')).headers.etag as string;
    const ok = await put('/api/v1/settings/gitea?key=user_name&value=second').set('if-match', current);
    expect(ok.status).toBe(200);
    expect((await put('/api/v1/settings/gitea?key=user_name&value=third').set('if-match', '*')).status).toBe(200);
    expect((await put('/api/v1/settings/gitea?key=user_name&value=fourth').set('if-match', `W/${current}`)).status).toBe(412);
  });

  it('when 50 PUTs to different keys run at once, then all of them land', async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
    const extra = `\n[extra]\n${keys.map((k) => `${k} = old`).join('\n')}\n`;
    h = await harness({ configText: readFileSync(new URL('../../config/config.ini', import.meta.url), 'utf8') + extra });
    const results = await Promise.all(keys.map((k, i) => put(`/api/v1/settings/extra?key=${k}&value=new-${i}`)));
    expect(results.map((r) => r.status)).toEqual(keys.map(() => 200));
    const doc = parseIni(h.readConfig());
    expect(keys.map((k) => doc.byName.get('extra')!.byKey.get(k)!.value)).toEqual(keys.map((_, i) => `new-${i}`));
  });

  it('when a hand edit lands between API writes, then it is kept', async () => {
    await put('/api/v1/settings/gitea?key=user_name&value=api-one');
    h.writeConfig(h.readConfig().replace('[cockpit]\n', '[cockpit]\n# edited by hand\n').replace('port = 9090', 'port = 9099'));
    await put('/api/v1/settings/portainer?key=user_name&value=api-two');
    const text = h.readConfig();
    expect(text).toContain('# edited by hand\nport = 9099');
    expect(valueAt(text, 'gitea', 'user_name')).toBe('api-one');
    expect(valueAt(text, 'portainer', 'user_name')).toBe('api-two');
  });
});

describe('system.ini is read-only', () => {
  it('when system settings are read, then they are returned', async () => {
    const res = await get('/api/v1/system');
    expect(res.status).toBe(200);
    expect(res.body.docker_library.path).toBe('/websoft9/library/apps');
    expect((await get('/api/system/app_media')).body).toEqual({ path: '/websoft9/media/json/' });
    expect((await get('/api/system/nope')).status).toBe(404);
  });

  it.each(['put', 'post', 'patch', 'delete'] as const)('when %s is sent to /system, then 405 SYSTEM_READ_ONLY and the file is unchanged', async (method) => {
    const before = readFileSync(h.config.systemPath, 'utf8');
    for (const path of ['/api/v1/system', '/api/v1/system/docker_library', '/api/system/docker_library/path']) {
      const res = await request(h.app)[method](path).set('x-api-key', h.apiKey).send({ path: '/x' });
      expect(res.status).toBe(405);
      expectErrorShape(res.body, 'SYSTEM_READ_ONLY');
    }
    expect(readFileSync(h.config.systemPath, 'utf8')).toBe(before);
  });
});

describe('request errors answer JSON', () => {
  it('when the route is unknown, then 404 NOT_FOUND JSON, inside and outside /api', async () => {
    for (const path of ['/api/v1/nope', '/nope', '/api/v1/settings/gitea/user_name/extra']) {
      const res = await get(path);
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/application\/json/);
      expectErrorShape(res.body, 'NOT_FOUND');
    }
  });

  it('when the method is not allowed, then 405 METHOD_NOT_ALLOWED JSON with Allow', async () => {
    const res = await request(h.app).delete('/api/v1/settings/gitea').set('x-api-key', h.apiKey);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD, PUT');
    expectErrorShape(res.body, 'METHOD_NOT_ALLOWED');
  });

  it('when the path is not valid percent-encoding, then 400 INVALID_REQUEST, not a server error', async () => {
    for (const res of [await get('/api/v1/settings/%E0%A4%A'), await put('/api/v1/settings/%E0%A4%A?key=a&value=b')]) {
      expect(res.status).toBe(400);
      expectErrorShape(res.body, 'INVALID_REQUEST');
    }
    expect(h.logs()).not.toContain('"level":50');
  });

  it('when the body is over the limit, then 413 and nothing changes', async () => {
    const before = h.readConfig();
    const res = await put('/api/v1/settings/gitea').send({ user_name: 'x'.repeat(70 * 1024) });
    expect(res.status).toBe(413);
    expectErrorShape(res.body, 'PAYLOAD_TOO_LARGE');
    expect(h.readConfig()).toBe(before);
  });

  it('when the JSON is malformed, then 400 MALFORMED_JSON', async () => {
    const res = await put('/api/v1/settings/gitea').set('content-type', 'application/json').send('{"user_name": ');
    expect(res.status).toBe(400);
    expectErrorShape(res.body, 'MALFORMED_JSON');
  });

  it('when a body write is not JSON, then 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const res = await put('/api/v1/settings/gitea').set('content-type', 'text/plain').send('user_name=x');
    expect(res.status).toBe(415);
    expectErrorShape(res.body, 'UNSUPPORTED_MEDIA_TYPE');
    const form = await patch('/api/v1/settings').type('form').send({ a: 'b' });
    expect(form.status).toBe(415);
  });
});

describe('names and values that could escape', () => {
  it.each([
    ['__proto__ as a key', '/api/v1/settings/gitea', '{"__proto__": {"polluted": "yes"}}'],
    ['constructor as a section', '/api/v1/settings/constructor', '{"a": "b"}'],
    ['a key with "="', '/api/v1/settings/gitea', '{"user_name = x": "y"}'],
    ['a key with a newline', '/api/v1/settings/gitea', '{"a\\nb": "y"}'],
    ['a section with brackets', '/api/v1/settings/%5Bgitea%5D', '{"a": "b"}'],
  ])('when %s is sent, then 400 INVALID_NAME and nothing changes', async (_label, path, body) => {
    const before = h.readConfig();
    const res = await put(path).set('content-type', 'application/json').send(body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_NAME');
    expect(h.readConfig()).toBe(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('when a PATCH uses a __proto__ section, then 400 INVALID_NAME', async () => {
    const res = await patch('/api/v1/settings').set('content-type', 'application/json').send('{"__proto__": {"key": "x"}}');
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_NAME');
  });

  const corpus: string[] = [
    'line1\n[gitea]\nuser_name = hacked',
    'x\nuser_pwd = stolen',
    'value\r\nkey2 = y',
    'nul\u0000byte',
    'bell\u0007',
    'sep\u2028arated',
    'para\u2029graph',
    'nel\u0085line',
    '  leading space',
    'trailing space ',
    'a\n# comment-like continuation',
    'a\n; comment-like continuation',
    'ends with newline\n',
    'x'.repeat(5000),
    'semi;colon#hash = equals [brackets] `ticks` "quotes" %(percent)s',
    'multi\nline\n\nwith gap',
    '[section]',
    '=',
    'ünïcödé ✓ 中文',
    '',
  ];

  /** Either the value reads back exactly (file and API), or 400 and the file is byte-identical; never another key changed. */
  async function expectExactOrRefused(send: () => Promise<request.Response>, section: string, key: string, value: string): Promise<number> {
    const before = h.readConfig();
    const beforeDoc = parseIni(before);
    const res = await send();
    const after = h.readConfig();
    const afterDoc = parseIni(after);
    if (res.status === 200) {
      expect(afterDoc.byName.get(section)!.byKey.get(key)!.value).toBe(value);
      expect((await get(`/api/v1/settings/${section}/${key}`)).body[key]).toBe(value);
    } else {
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(after).toBe(before);
    }
    expect(afterDoc.sections.map((s) => s.name)).toEqual(beforeDoc.sections.map((s) => s.name));
    for (const s of beforeDoc.sections) {
      expect(afterDoc.byName.get(s.name)!.entries.length).toBe(s.entries.length);
      for (const entry of s.entries) {
        if (s.name === section && entry.keyLower === key) continue;
        expect(afterDoc.byName.get(s.name)!.byKey.get(entry.keyLower)?.value).toBe(entry.value);
      }
    }
    return res.status;
  }

  const withFreeText = async (): Promise<void> => {
    h = await harness({ configText: `${readFileSync(new URL('../../config/config.ini', import.meta.url), 'utf8')}\n[extra]\nnote = plain\n` });
  };

  it.each(corpus.map((v) => [JSON.stringify(v).slice(0, 60), v]))(
    'when the value %s is sent to a free-text key, then it reads back exactly or is refused, and no other key changes',
    async (_label, value) => {
      await withFreeText();
      await expectExactOrRefused(() => put('/api/v1/settings/extra').send({ note: value }), 'extra', 'note', value);
    },
  );

  it('when the corpus goes to a declared single-line key, through JSON and the legacy query form, then only single-line values land', async () => {
    await withFreeText();
    const accepted: string[] = [];
    for (const value of corpus) {
      const viaJson = await expectExactOrRefused(
        () => put('/api/v1/settings/nginx_proxy_manager').send({ nike_name: value }),
        'nginx_proxy_manager',
        'nike_name',
        value,
      );
      const viaQuery = await expectExactOrRefused(
        () => put(`/api/settings/gitea?key=user_name&value=${encodeURIComponent(value)}`),
        'gitea',
        'user_name',
        value,
      );
      expect(viaQuery).toBe(viaJson);
      if (viaJson === 200) accepted.push(value);
    }
    expect(accepted.some((v) => v.includes('\n'))).toBe(false);
    expect(accepted).toContain('semi;colon#hash = equals [brackets] `ticks` "quotes" %(percent)s');
    expect(accepted).toContain('ünïcödé ✓ 中文');
  });

  it('when a multi-line value goes to a free-text key, then it is stored as continuation lines', async () => {
    await withFreeText();
    const res = await put('/api/v1/settings/extra').send({ note: 'line1\n[gitea]\nuser_name = hacked' });
    expect(res.status).toBe(200);
    expect(h.readConfig()).toContain('note = line1\n\t[gitea]\n\tuser_name = hacked\n');
  });
});

describe('a broken config.ini', () => {
  it('when config.ini has a syntax error, then reads and writes answer 503 CONFIG_INVALID with the line, and the old key still authenticates', async () => {
    await get('/api/v1/settings');
    const broken = `${h.readConfig()}\n[gitea]\nuser_name = duplicate\n`;
    h.writeConfig(broken);
    const read = await get('/api/v1/settings');
    expect(read.status).toBe(503);
    expect(read.body.code).toBe('CONFIG_INVALID');
    expect(read.body.details).toMatch(/line \d+: duplicate section \[gitea\]/);
    expect(read.body.line).toBeGreaterThan(1);
    const write = await put('/api/v1/settings/cockpit?key=port&value=9093');
    expect(write.status).toBe(503);
    expect(h.readConfig()).toBe(broken);
  });
});

describe('secrets at rest', () => {
  it('when a password is typed into config.ini in plain text, then it is used, the next write seals it, and the seal is audited masked', async () => {
    h.writeConfig(h.readConfig().replace(/^(\[gitea\][\s\S]*?user_pwd = ).*$/m, '$1Hand-Typed-Pass-1'));
    expect((await get('/api/v1/settings/gitea/user_pwd')).body).toEqual({ user_pwd: 'Hand-Typed-Pass-1' });
    expect((await put('/api/v1/settings/cockpit?key=port&value=9094')).status).toBe(200);
    expect(h.readConfig()).not.toContain('Hand-Typed-Pass-1');
    expect(valueAt(h.readConfig(), 'gitea', 'user_pwd')).toMatch(/^enc:v1:/);
    expect((await get('/api/v1/settings/gitea/user_pwd')).body).toEqual({ user_pwd: 'Hand-Typed-Pass-1' });
    const audit = await get('/api/v1/audit?section=gitea&limit=1');
    expect(audit.body.entries[0]).toMatchObject({
      action: 'settings.seal',
      key: 'user_pwd',
      actor: { type: 'system', id: 'seal' },
      oldValue: '******',
      newValue: '******',
    });
  });

  it('when a value starting with enc:v1: is written, then 400: the prefix is reserved', async () => {
    const res = await put('/api/v1/settings/gitea?key=user_name&value=enc:v1:00000000:AAAA');
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'gitea.user_name', code: 'VALUE_NOT_REPRESENTABLE' })]);
  });

  it('when a sealed value in config.ini was tampered with, then reads and other writes answer SECRET_UNREADABLE naming the key, and setting that value again repairs it', async () => {
    await get('/api/v1/settings');
    const sealed = valueAt(h.readConfig(), 'portainer', 'user_pwd')!;
    const flipped = `${sealed.slice(0, -2)}${sealed.endsWith('AA') ? 'BB' : 'AA'}`;
    const tampered = h.readConfig().replace(sealed, flipped);
    h.writeConfig(tampered);
    const read = await get('/api/v1/settings');
    expect(read.status).toBe(500);
    expect(read.body).toMatchObject({ code: 'SECRET_UNREADABLE', details: expect.stringContaining('portainer.user_pwd cannot be decrypted') });
    const write = await put('/api/v1/settings/cockpit?key=port&value=9095');
    expect(write.body.code).toBe('SECRET_UNREADABLE');
    expect(h.readConfig()).toBe(tampered);
    const repair = await put('/api/v1/settings/portainer?key=user_pwd&value=Repaired-Pass-77');
    expect(repair.status).toBe(200);
    expect((await get('/api/v1/settings/portainer/user_pwd')).body).toEqual({ user_pwd: 'Repaired-Pass-77' });
    expect((await put('/api/v1/settings/cockpit?key=port&value=9095')).status).toBe(200);
  });

  it('when a value does not open and another was typed in plain text, then a refused write writes nothing, seals nothing and reads stay refused', async () => {
    const sealed = valueAt(h.readConfig(), 'portainer', 'user_pwd')!;
    const broken = h
      .readConfig()
      .replace(sealed, `${sealed.slice(0, -2)}${sealed.endsWith('AA') ? 'BB' : 'AA'}`)
      .replace(/^(\[gitea\][\s\S]*?user_pwd = ).*$/m, '$1Hand-Typed-Pass-2');
    h.writeConfig(broken);
    expect((await put('/api/v1/settings/cockpit?key=port&value=9096')).body.code).toBe('SECRET_UNREADABLE');
    expect(h.readConfig()).toBe(broken);
    expect((await get('/api/v1/settings/gitea')).body.code).toBe('SECRET_UNREADABLE');
  });
});

describe('rate limits', () => {
  it('when a client goes over the per-minute limit, then 429 RATE_LIMITED with RateLimit headers', async () => {
    h = await harness({ rateLimitPerMinute: 3 });
    for (let i = 0; i < 3; i++) expect((await get('/api/v1/settings/cockpit')).status).toBe(200);
    const limited = await get('/api/v1/settings/cockpit');
    expect(limited.status).toBe(429);
    expectErrorShape(limited.body, 'RATE_LIMITED');
    expect(limited.headers.ratelimit).toBeDefined();
    expect(limited.headers['ratelimit-policy']).toBeDefined();
    expect((await request(h.app).get('/healthz')).status).toBe(200);
  });

  it('when authentication keeps failing, then the client is blocked even with the right key, while successes never count', async () => {
    h = await harness({ authFailuresPer15Min: 2 });
    for (let i = 0; i < 5; i++) expect((await get('/api/v1/settings/cockpit')).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await request(h.app).get('/api/v1/settings').set('x-api-key', 'wrong')).status).toBe(401);
    const blocked = await get('/api/v1/settings/cockpit');
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe('RATE_LIMITED');
  });
});

describe('audit log', () => {
  it('when writes are accepted and refused, then each is recorded with actor and masked secrets', async () => {
    const password = 'Tz7-known-Passw0rd';
    await put(`/api/v1/settings/gitea?key=user_pwd&value=${password}`).set('user-agent', 'audit-test').set('x-request-id', 'req-123');
    await put('/api/v1/settings/gitea?key=user_name&value=auditor');
    await put('/api/v1/settings/cockpit?key=port&value=9000');
    await request(h.app).put('/api/v1/settings/gitea?key=user_name&value=intruder').set('x-api-key', 'wrong');
    const res = await get('/api/v1/audit?limit=10');
    expect(res.status).toBe(200);
    const entries = res.body.entries as (Record<string, unknown> & { actor: { id: string } })[];
    const pwd = entries.find((e) => e.key === 'user_pwd')!;
    expect(pwd).toMatchObject({ section: 'gitea', oldValue: '******', newValue: '******', result: 'applied' });
    expect(pwd.actor).toMatchObject({ type: 'api', userAgent: 'audit-test', requestId: 'req-123', remoteAddress: expect.any(String) });
    expect(pwd.actor.id).toMatch(/^key:[0-9a-f]{12}$/);
    expect(entries.find((e) => e.key === 'user_name' && e.result === 'applied')).toMatchObject({ oldValue: 'websoft9', newValue: 'auditor' });
    expect(entries.find((e) => e.section === 'cockpit')).toMatchObject({ result: 'refused', errorCode: 'VALIDATION_FAILED' });
    expect(entries.find((e) => e.errorCode === 'API_KEY_INVALID')).toMatchObject({
      result: 'refused',
      actor: expect.objectContaining({ id: 'unauthenticated' }),
    });
    expect(JSON.stringify(res.body)).not.toContain(password);
    expect(JSON.stringify(res.body)).not.toContain(h.apiKey);
  });

  it('when a write is refused (a typo of a password key, an invalid value), then the audit row keeps no value at all', async () => {
    const typed = 'Zq8-typed-into-a-typo';
    expect((await put(`/api/v1/settings/gitea?key=user_pw&value=${typed}`)).status).toBe(400);
    expect((await put('/api/v1/settings/cockpit?key=port&value=not-a-port-42')).status).toBe(400);
    const entries = (await get('/api/v1/audit?limit=10')).body.entries as Record<string, unknown>[];
    const refused = entries.filter((e) => e.result === 'refused');
    expect(refused.map((e) => [e.section, e.key, e.oldValue, e.newValue])).toEqual([
      ['cockpit', 'port', null, null],
      ['gitea', 'user_pw', null, null],
    ]);
    expect(JSON.stringify(entries)).not.toContain(typed);
    expect(JSON.stringify(entries)).not.toContain('not-a-port-42');
  });

  it('when filtered by section, since and limit, then only matching entries come back, newest first, with a cursor', async () => {
    await put('/api/v1/settings/gitea?key=user_name&value=a1');
    await put('/api/v1/settings/gitea?key=user_name&value=a2');
    await put('/api/v1/settings/portainer?key=user_name&value=b1');
    const gitea = (await get('/api/v1/audit?section=gitea&limit=1')).body;
    expect(gitea.entries).toHaveLength(1);
    expect(gitea.entries[0]).toMatchObject({ section: 'gitea', newValue: 'a2' });
    const older = (await get(`/api/v1/audit?section=gitea&limit=1&before=${gitea.next}`)).body;
    expect(older.entries[0]).toMatchObject({ newValue: 'a1' });
    expect((await get(`/api/v1/audit?since=${Date.now() + 60_000}`)).body.entries).toEqual([]);
    expect((await get('/api/v1/audit?since=2000-01-01T00:00:00Z')).body.entries.length).toBeGreaterThanOrEqual(3);
  });

  it.each(['limit=0', 'limit=abc', 'limit=5000', 'since=yesterday', 'section=__proto__', 'limit=1&limit=2'])(
    'when the query has %s, then 400 INVALID_REQUEST',
    async (query) => {
      const res = await get(`/api/v1/audit?${query}`);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('INVALID_REQUEST');
    },
  );

  it('when known passwords were set, then neither the SQLite files nor the logs hold them', async () => {
    const passwords = ['Qm4-first-Secret', 'Rn5-second-Secret', 'Sp6-third-Secret'];
    await put(`/api/v1/settings/gitea?key=user_pwd&value=${passwords[0]}`);
    await patch('/api/v1/settings').send({ portainer: { user_pwd: passwords[1] }, nginx_proxy_manager: { user_pwd: passwords[2] } });
    await put('/api/v1/settings/gitea?key=user_pwd&value=short');
    const dbBytes = ['', '-wal'].map((suffix) => {
      try {
        return readFileSync(h.config.databasePath + suffix).toString('latin1');
      } catch {
        return '';
      }
    });
    for (const password of passwords) {
      for (const bytes of dbBytes) expect(bytes).not.toContain(password);
      expect(h.logs()).not.toContain(password);
    }
    expect(dbBytes.join('')).not.toContain(h.apiKey);
  });
});

describe('OpenAPI', () => {
  it('when openapi.json is fetched, then it is generated from the schemas', async () => {
    const res = await get('/api/v1/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    expect(res.body.paths['/settings/{section}'].put).toBeDefined();
    expect(res.body.components.schemas.Settings_nginx_proxy_manager.properties.listen_port).toMatchObject({ type: 'integer', minimum: 1, maximum: 65535 });
    expect(res.body.components.schemas.Error.properties.code.enum).toContain('SYSTEM_READ_ONLY');
  });
});
