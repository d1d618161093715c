/**
 * /api/v1/env on a whole confhub: independent variables stored in config.ini's [env:<scope>]
 * sections (sealed when secret), mapped ones declared in system.ini, every refusal named with
 * nothing written, the legacy settings listing unchanged, and history and rollback carrying them.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';
import { connectSse } from '../support/sse-client.js';

let ch: Confhub;

beforeAll(async () => {
  ch = await startConfhub({
    systemIni: '[sync]\ndebounce_min_ms = 30\n\n[env:web]\nWEB_PORT = {{ cockpit.port }}\nWEB_ADMIN_PASSWORD = {{ gitea.user_pwd }}\n',
  });
  await eventually('ready', async () => (await fetch(`${ch.url}/readyz`)).status === 200);
});
afterAll(async () => {
  await ch?.close();
});

async function json(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown>; etag: string | null }> {
  const res = await ch.api(path, init);
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : JSON.parse(text), etag: res.headers.get('etag') };
}

const patch = (scope: string, body: unknown) => json(`/api/v1/env/${scope}`, { method: 'PATCH', body: JSON.stringify(body) });

function history(): string {
  const gitDir = ch.config.historyDir;
  return execFileSync('git', ['--git-dir', gitDir, 'log', '-p', '--all'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

describe('environment variables through the API', () => {
  it('when variables are set, read, changed and removed, then each answer says so and config.ini holds them in [env:<scope>]', async () => {
    const set = await patch('global', { TZ: 'Asia/Shanghai', GREETING: { value: 'hello world' } });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({
      changed: ['TZ', 'GREETING'],
      consumers: [{ consumer: 'web', targets: [] }],
    });
    expect(ch.readConfig()).toMatch(/\[env:global\]\nTZ = Asia\/Shanghai\nGREETING = hello world\n/);
    expect((await json('/api/v1/env/global')).body).toEqual({
      TZ: { value: 'Asia/Shanghai', secret: false, source: 'config.ini' },
      GREETING: { value: 'hello world', secret: false, source: 'config.ini' },
    });
    expect((await json('/api/v1/env/global/TZ')).body).toEqual({ value: 'Asia/Shanghai', secret: false, source: 'config.ini' });

    expect((await json('/api/v1/env/global/TZ', { method: 'PUT', body: JSON.stringify({ value: 'UTC' }) })).body).toMatchObject({ changed: ['TZ'] });
    expect((await patch('global', { GREETING: null, NOT_THERE: null })).body).toMatchObject({ changed: ['GREETING'] });
    expect((await json('/api/v1/env/global/TZ', { method: 'DELETE' })).body).toMatchObject({ changed: ['TZ'] });
    expect((await json('/api/v1/env/global')).body).toEqual({});
    expect((await json('/api/v1/env/global/TZ', { method: 'DELETE' })).body).toMatchObject({ code: 'ENV_VARIABLE_NOT_FOUND' });
    expect((await json('/api/v1/env/global/TZ')).status).toBe(404);
  });

  it('when values are multi-line, padded, hold quotes, # or json:, then they read back exactly', async () => {
    const values = {
      MULTI: 'line one\nline two\r\n  indented\n',
      PADDED: '  both ends  ',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: compose interpolation syntax, stored as literal text
      MARKUP: '# not a comment; "quoted" \'single\' $HOME ${X:-y} \\',
      LOOKS_ENCODED: 'json:"x"',
      TAB: 'a\tb',
      EMPTY: '',
      UNICODE: 'héllo 🌍 \u00a0nbsp \u0085nel',
    };
    expect((await patch('web', values)).status).toBe(200);
    const read = (await json('/api/v1/env/web')).body as Record<string, { value: string }>;
    for (const [name, value] of Object.entries(values)) expect(read[name]?.value, name).toBe(value);
    expect((await patch('web', Object.fromEntries(Object.keys(values).map((name) => [name, null])))).status).toBe(200);
  });

  it('when a variable is secret (by name or secret: true), then config.ini, the history, the audit log and the events never hold its value; reveal shows it and is audited', async () => {
    const password = 'Very-Secret-Value-81723';
    const token = 'another-secret-9912-zz';
    expect((await patch('global', { DB_PASSWORD: password, SMTP_HOST_X: { value: token, secret: true } })).status).toBe(200);
    expect((await json('/api/v1/env/global')).body).toMatchObject({
      DB_PASSWORD: { value: '******', secret: true },
      SMTP_HOST_X: { value: '******', secret: true },
    });
    const revealed = await json('/api/v1/env/global?reveal=true');
    expect(revealed.body).toMatchObject({ DB_PASSWORD: { value: password }, SMTP_HOST_X: { value: token } });
    expect((await json('/api/v1/env/global/SMTP_HOST_X?reveal=true')).body).toMatchObject({ value: token });
    expect(ch.readConfig()).toContain('[env:global:secret]');
    await eventually('committed', () => history().includes('SMTP_HOST_X'));
    const events = await connectSse(`${ch.url}/api/v1/settings/events`, { 'x-api-key': ch.apiKey, 'last-event-id': '0' });
    await events.next((frame) => frame.event === 'env.changed' && frame.data.includes('"global.SMTP_HOST_X"'));
    events.close();
    const eventText = JSON.stringify(events.frames);
    for (const place of [ch.readConfig(), history(), JSON.stringify((await json('/api/v1/audit?limit=50')).body), eventText]) {
      expect(place).not.toContain(password);
      expect(place).not.toContain(token);
    }
    const audit = (await json('/api/v1/audit?limit=50')).body as { entries: { action: string; section: string }[] };
    expect(audit.entries.filter((e) => e.action === 'env.reveal')).toHaveLength(2);

    // A secret stays secret when changed without saying so; a name that looks secret cannot be made plain.
    await patch('global', { SMTP_HOST_X: 'changed-value-4411' });
    expect((await json('/api/v1/env/global/SMTP_HOST_X')).body).toMatchObject({ value: '******', secret: true });
    expect((await patch('global', { DB_PASSWORD: { value: 'x', secret: false } })).body).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ field: 'global.DB_PASSWORD', code: 'ENV_SECRET_NAME' }],
    });
    // secret: false moves a variable that only was secret by choice back to plain text.
    await patch('global', { SMTP_HOST_X: { value: 'plain-now', secret: false } });
    expect((await json('/api/v1/env/global/SMTP_HOST_X')).body).toEqual({ value: 'plain-now', secret: false, source: 'config.ini' });
    expect(ch.readConfig()).toMatch(/\[env:global\][^[]*SMTP_HOST_X = plain-now/);
    // Made secret with the same value: no consumer gets anything new.
    await patch('global', { SAME_VALUE: 'x' });
    expect((await patch('global', { SAME_VALUE: { value: 'x', secret: true } })).body).toMatchObject({ changed: ['SAME_VALUE'], consumers: [] });
    await patch('global', { SMTP_HOST_X: null, DB_PASSWORD: null, SAME_VALUE: null });
  });

  it('when a consumer has mapped variables, then they follow their setting, are read-only and a secret setting makes them secret', async () => {
    expect((await json('/api/v1/env/web')).body).toMatchObject({
      WEB_PORT: { value: '9090', secret: false, source: 'mapped:cockpit.port' },
      WEB_ADMIN_PASSWORD: { value: '******', secret: true, source: 'mapped:gitea.user_pwd' },
    });
    await json('/api/v1/settings/cockpit?key=port&value=9191', { method: 'PUT' });
    expect((await json('/api/v1/env/web/WEB_PORT')).body).toMatchObject({ value: '9191' });
    const refused = await patch('web', { WEB_PORT: '1', OTHER: 'x' });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'ENV_MAPPED' });
    expect(refused.body.details).toContain('cockpit.port');
    expect((await json('/api/v1/env/web/WEB_PORT', { method: 'DELETE' })).body).toMatchObject({ code: 'ENV_MAPPED' });
    // An own variable of a mapped name (a hand edit, or a newer system.ini) runs, and the API removes it.
    const text = ch.readConfig();
    writeFileSync(
      ch.config.configPath,
      text.includes('[env:web]\n') ? text.replace('[env:web]\n', '[env:web]\nWEB_PORT = 1\n') : `${text}\n[env:web]\nWEB_PORT = 1\n`,
    );
    await eventually('the hand edit is applied', async () => (await json('/api/v1/env/web/WEB_PORT')).body.value === '1');
    expect((await json('/api/v1/env/web/WEB_PORT', { method: 'DELETE' })).body).toMatchObject({ changed: ['WEB_PORT'] });
    expect((await json('/api/v1/env/web/WEB_PORT')).body).toMatchObject({ source: 'mapped:cockpit.port' });
    expect((await json('/api/v1/env/web/OTHER')).status).toBe(404);
    // A global variable of the same name is allowed: the consumer's mapped one wins for it.
    expect((await patch('global', { WEB_PORT: '7' })).status).toBe(200);
    const exported = await ch.api('/api/v1/env/web/export');
    expect(await exported.text()).toContain('WEB_PORT="9191"');
    expect(await (await ch.api('/api/v1/env/web/export?format=json&reveal=true')).json()).toMatchObject({ WEB_PORT: '9191' });
    await patch('global', { WEB_PORT: null });
  });

  it('when names or values are bad, then each is named and config.ini is left byte for byte', async () => {
    await patch('global', { PATH: '/usr/bin' });
    const before = ch.readConfig();
    const cases: [unknown, number, string][] = [
      [{ '1BAD': 'x' }, 400, 'INVALID_NAME'],
      [{ 'A-B': 'x' }, 400, 'INVALID_NAME'],
      [{ [`A${'x'.repeat(256)}`]: 'x' }, 400, 'INVALID_NAME'],
      [{ Path: 'x' }, 400, 'VALIDATION_FAILED'],
      [{ FOO: 'a', foo: 'b' }, 400, 'INVALID_NAME'],
      [{ A: 'nul\u0000byte' }, 400, 'VALIDATION_FAILED'],
      [{ A: 5 }, 400, 'VALIDATION_FAILED'],
      [{ A: { value: 'x', secret: 'yes' } }, 400, 'VALIDATION_FAILED'],
      [{ A: { value: 'x', other: 1 } }, 400, 'VALIDATION_FAILED'],
      [{ A: 'x'.repeat(32 * 1024 + 1) }, 400, 'VALIDATION_FAILED'],
      [{}, 400, 'INVALID_REQUEST'],
      [['A'], 400, 'INVALID_REQUEST'],
    ];
    for (const [body, status, code] of cases) {
      const answer = await patch('global', body);
      expect([answer.status, answer.body.code], JSON.stringify(body).slice(0, 60)).toEqual([status, code]);
    }
    expect((await patch('nowhere', { A: '1' })).body).toMatchObject({ code: 'ENV_SCOPE_NOT_FOUND', details: expect.stringContaining('global, web') });
    expect((await patch('bad scope!', { A: '1' })).body).toMatchObject({ code: 'INVALID_NAME' });
    expect((await json('/api/v1/env/global/A', { method: 'PUT', body: '"just a string"' })).status).toBe(400);
    expect(ch.readConfig()).toBe(before);
    const refusals = (await json('/api/v1/audit?limit=100')).body as { entries: { action: string; result: string; section: string }[] };
    expect(refusals.entries.filter((e) => e.action === 'env.update' && e.result === 'refused').length).toBeGreaterThanOrEqual(cases.length);
    await patch('global', { PATH: null });
  });

  it('when writes race, name a variable two ways, come with a stale If-Match or name export, then each is judged against the file as the write finds it', async () => {
    // Two writers at once: the second is planned after the first, and refused.
    const both = await Promise.all([patch('global', { RACE: 'a' }), patch('global', { race: 'b' })]);
    expect(both.map((answer) => answer.status).sort()).toEqual([200, 400]);
    expect(both.find((answer) => answer.status === 400)!.body).toMatchObject({ errors: [{ code: 'ENV_NAME_CASE' }] });
    const deletes = await Promise.all([1, 2].map(() => json('/api/v1/env/global/RACE', { method: 'DELETE' })));
    expect(deletes.map((answer) => answer.status)).not.toContain(500);
    // A consumer's own name that differs only by case from a global one.
    await patch('global', { SHARED_NAME: 'g' });
    expect((await patch('web', { shared_name: 'w' })).body).toMatchObject({ errors: [{ field: 'web.shared_name', code: 'ENV_NAME_CASE' }] });
    // A write that changes nothing still honours If-Match.
    expect((await json('/api/v1/env/global', { method: 'PATCH', body: JSON.stringify({ NOT_HERE: null }), headers: { 'if-match': '"stale"' } })).status).toBe(
      412,
    );
    // A variable named export: GET is the export, PUT and DELETE manage the variable.
    expect((await json('/api/v1/env/global/export', { method: 'PUT', body: JSON.stringify({ value: 'x' }) })).body).toMatchObject({ changed: ['export'] });
    expect((await json('/api/v1/env/global')).body).toMatchObject({ export: { value: 'x' } });
    expect((await json('/api/v1/env/global/export', { method: 'DELETE' })).body).toMatchObject({ changed: ['export'] });
    await patch('global', { SHARED_NAME: null });
  });

  it('when a reveal fails, then nothing is audited as revealed; a revealed answer is not kept by caches', async () => {
    await patch('global', { REVEAL_TOKEN: 'reveal-me-123' });
    const count = async () =>
      ((await json('/api/v1/audit?limit=200')).body as { entries: { action: string }[] }).entries.filter((e) => e.action === 'env.reveal').length;
    const before = await count();
    expect((await json('/api/v1/env/global/NOPE?reveal=true')).status).toBe(404);
    expect(await count()).toBe(before);
    const revealed = await ch.api('/api/v1/env?reveal=true');
    expect(revealed.headers.get('cache-control')).toBe('no-store');
    const audit = ((await json('/api/v1/audit?limit=10')).body as { entries: { action: string; section: string }[] }).entries;
    expect(audit.filter((e) => e.action === 'env.reveal').map((e) => e.section)).toEqual(['env:web:secret', 'env:global:secret']);
    await patch('global', { REVEAL_TOKEN: null });
  });

  it('when a secret env variable changes, then the history diff of that commit masks it, and system.ini shows its declarations', async () => {
    const secret = 'History-Secret-Value-4242';
    await json('/api/v1/env/global?wait=true', { method: 'PATCH', body: JSON.stringify({ API_TOKEN: secret }) });
    const commits = (await json('/api/v1/settings/history?limit=1')).body as { commits: { id: string }[] };
    const shown = await json(`/api/v1/settings/history/${commits.commits[0]!.id}`);
    expect(shown.body).toMatchObject({ diff: { added: { 'env:global:secret.api_token': '******' } } });
    expect(JSON.stringify(shown.body)).not.toContain(secret);
    expect(JSON.stringify((await json(`/api/v1/settings/diff?from=${commits.commits[0]!.id}~1`)).body)).not.toContain(secret);
    expect((await json('/api/v1/system/env:web')).body).toMatchObject({ WEB_PORT: '{{ cockpit.port }}' });
    await patch('global', { API_TOKEN: null });
  });

  it('when a legacy client lists the settings, then it never meets an env section, and settings routes refuse them', async () => {
    await patch('global', { LEGACY_CHECK: '1' });
    const settings = (await json('/api/settings')).body;
    expect(Object.keys(settings).filter((name) => name.startsWith('env:'))).toEqual([]);
    expect((await json('/api/settings/env:global')).status).toBe(404);
    expect((await json('/api/settings/env:global/LEGACY_CHECK')).status).toBe(404);
    expect((await json('/api/settings/env:global?key=LEGACY_CHECK&value=2', { method: 'PUT' })).body).toMatchObject({
      code: 'INVALID_NAME',
      details: expect.stringContaining('/api/v1/env/global'),
    });
    expect((await json('/api/v1/settings', { method: 'PATCH', body: JSON.stringify({ 'env:global': { LEGACY_CHECK: '2' } }) })).status).toBe(400);
    expect((await json('/api/v1/env/global/LEGACY_CHECK')).body).toMatchObject({ value: '1' });
    await patch('global', { LEGACY_CHECK: null });
  });

  it('when an env change is rolled back, then the variable is restored; If-Match guards env writes like settings writes', async () => {
    await json('/api/v1/env/global?wait=true', { method: 'PATCH', body: JSON.stringify({ RELEASE: 'one' }) });
    const first = (await json('/api/v1/env/global?wait=true', { method: 'PATCH', body: JSON.stringify({ RELEASE: 'two' }) })).body as {
      sync: { commit: string };
    };
    const commits = (await json('/api/v1/settings/history?limit=2')).body as { commits: { id: string; changes: { key: string }[] }[] };
    expect(commits.commits[0]!.changes).toEqual([{ key: 'env:global.release', change: 'changed' }]);
    expect(first.sync.commit).toBe(commits.commits[0]!.id);
    expect((await json('/api/v1/settings/rollback?wait=true', { method: 'POST', body: JSON.stringify({ commit: commits.commits[1]!.id }) })).status).toBe(200);
    expect((await json('/api/v1/env/global/RELEASE')).body).toMatchObject({ value: 'one' });

    const { etag } = await json('/api/v1/env/global');
    expect((await json('/api/v1/env/global', { method: 'PATCH', body: JSON.stringify({ RELEASE: 'three' }), headers: { 'if-match': '"stale"' } })).status).toBe(
      412,
    );
    expect((await json('/api/v1/env/global', { method: 'PATCH', body: JSON.stringify({ RELEASE: 'three' }), headers: { 'if-match': etag! } })).status).toBe(
      200,
    );
    await patch('global', { RELEASE: null });
  });
});
