/**
 * Variable substitution (`${section:key}`, `$$`) through a whole confhub (main + worker, real git,
 * real files): what the API shows resolved, as written and explained, what the targets get, what
 * the history and the audit log keep, every refusal with nothing written, hand edits, the opt-in
 * being off, and `confhub validate`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { revisionOf } from '../../src/settings/revision.js';
import { runCli } from '../support/confhub-process.js';
import { call, valueAt, lineAt, ready, changedKeys, auditEntries, APP_TARGET_SYSTEM_INI, ref } from '../support/e2e-helpers.js';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';

const SYNC = `${APP_TARGET_SYSTEM_INI}
[target:site]
sections = site
format = ini
output = @DIR@/out/site.ini
reload = none
`;

const EXTENDED = `[confhub]\ninterpolation = extended\n\n${SYNC}\n[env:web]\nWEB_URL = {{ gitea.base_url }}\n`;

const SITE = '\n[site]\nhost = example.com\nport = 9191\nmotto = hello\na = 1\nb = 2\n';

const BASE_URL_REF = `https://git.${ref('site:host')}/api/v1`;

const putJson = (c: Confhub, path: string, body: unknown) => call(c, path, { method: 'PUT', body: JSON.stringify(body) });
const patchJson = (c: Confhub, body: unknown) => call(c, '/api/v1/settings', { method: 'PATCH', body: JSON.stringify(body) });

const output = (c: Confhub, name: string): string => {
  const path = join(c.dir, 'out', name);
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
};

/** Until the worker has committed the revision now on disk; its commit id. */
async function committed(c: Confhub): Promise<string> {
  let id = '';
  await eventually('the revision on disk is committed', async () => {
    const top = ((await call(c, '/api/v1/settings/history?limit=1')).body.commits as { id: string; revision: string }[])[0];
    id = top?.id ?? '';
    return top?.revision === revisionOf(c.readConfig());
  });
  return id;
}

describe('variable substitution on a running confhub (interpolation = extended)', () => {
  let ch: Confhub;
  beforeAll(async () => {
    ch = await startConfhub({ systemIni: EXTENDED, configExtra: SITE });
    await ready(ch);
  });
  afterAll(async () => {
    await ch?.close();
  });

  it('when a reference is written through PUT, then GET resolves it, resolved=false shows it raw, explain names its source, line and references, and the target gets the resolved value', async () => {
    const put = await putJson(ch, '/api/v1/settings/gitea', { base_url: BASE_URL_REF });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    // The answer is the section as services get it.
    expect(put.body.base_url).toBe('https://git.example.com/api/v1');
    expect(valueAt(ch.readConfig(), 'gitea', 'base_url')).toBe(BASE_URL_REF);

    expect((await call(ch, '/api/v1/settings/gitea/base_url')).body).toEqual({ base_url: 'https://git.example.com/api/v1' });
    expect((await call(ch, '/api/v1/settings/gitea')).body.base_url).toBe('https://git.example.com/api/v1');
    expect(((await call(ch, '/api/v1/settings')).body.gitea as Record<string, unknown>).base_url).toBe('https://git.example.com/api/v1');
    expect((await call(ch, '/api/v1/settings/gitea?resolved=false')).body.base_url).toBe(BASE_URL_REF);
    expect((await call(ch, '/api/v1/settings/gitea/base_url?resolved=false')).body).toEqual({ base_url: BASE_URL_REF });
    expect(((await call(ch, '/api/v1/settings?resolved=false')).body.gitea as Record<string, unknown>).base_url).toBe(BASE_URL_REF);

    const line = lineAt(ch.readConfig(), 'gitea', 'base_url');
    const explained = (await call(ch, '/api/v1/settings?explain=true')).body as Record<string, Record<string, Record<string, unknown>>>;
    expect(explained.gitea!.base_url).toEqual({
      value: 'https://git.example.com/api/v1',
      source: 'config.ini [gitea]',
      line,
      raw: BASE_URL_REF,
      references: ['site.host'],
      kind: 'http_url',
      secret: false,
      description: 'Gitea API base URL',
    });
    // A plain value: its source and line, nothing raw.
    expect(explained.site!.host).toEqual({
      value: 'example.com',
      source: 'config.ini [site]',
      line: lineAt(ch.readConfig(), 'site', 'host'),
      kind: 'text',
      secret: false,
    });
    expect(explained.cockpit!.port).toMatchObject({ value: 9090, source: 'config.ini [cockpit]' });
    expect((await call(ch, '/api/v1/settings/gitea?explain=true')).body.base_url).toMatchObject({ raw: BASE_URL_REF, references: ['site.host'] });

    expect((await call(ch, '/api/v1/settings?explain=true&resolved=false')).body).toMatchObject({ code: 'INVALID_REQUEST' });
    expect((await call(ch, '/api/v1/settings/gitea/base_url?explain=true')).body).toMatchObject({ code: 'INVALID_REQUEST' });

    await eventually('the target holds the resolved value', () => output(ch, 'app.ini').includes('base_url=https://git.example.com/api/v1\n'));
    expect(output(ch, 'app.ini')).not.toContain(ref('').slice(0, 2));
  });

  it('when a reference is written through the legacy ?key=&value= form, then it is stored raw and read resolved', async () => {
    const raw = `http://${ref('site:host')}:3000/api`;
    const put = await call(ch, `/api/v1/settings/gitea?key=base_url&value=${encodeURIComponent(raw)}`, { method: 'PUT' });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.base_url).toBe('http://example.com:3000/api');
    expect(valueAt(ch.readConfig(), 'gitea', 'base_url')).toBe(raw);
    expect((await call(ch, '/api/settings/gitea/base_url')).body).toEqual({ base_url: 'http://example.com:3000/api' });
    expect((await call(ch, '/api/settings/gitea/base_url?resolved=false')).body).toEqual({ base_url: raw });
    await eventually('the target holds it', () => output(ch, 'app.ini').includes('base_url=http://example.com:3000/api\n'));
  });

  it('when the referred key changes, then the referring key’s target is rendered again, the commit’s diff names the written key and its resolved diff the referring one too, and the audit log keeps the raw value', async () => {
    await putJson(ch, '/api/v1/settings/site?wait=true', { host: 'example.com' });
    await putJson(ch, '/api/v1/settings/gitea?wait=true', { base_url: BASE_URL_REF });
    await eventually('rendered', () => output(ch, 'app.ini').includes('base_url=https://git.example.com/api/v1\n'));
    const written = await putJson(ch, '/api/v1/settings/site?wait=true', { host: 'other.example.org' });
    expect(written.status, JSON.stringify(written.body)).toBe(200);
    const sync = written.body.sync as { commit: string; outcome: string };
    expect(sync.outcome).toBe('applied');
    // app.ini holds no key of [site], yet its value came from there.
    await eventually('app.ini follows site.host', () => output(ch, 'app.ini').includes('base_url=https://git.other.example.org/api/v1\n'));
    expect(output(ch, 'site.ini')).toContain('host=other.example.org');
    expect((await call(ch, '/api/v1/settings/gitea/base_url')).body).toEqual({ base_url: 'https://git.other.example.org/api/v1' });

    const commit = sync.commit ?? (await committed(ch));
    const shown = (await call(ch, `/api/v1/settings/history/${commit}`)).body as {
      diff: { changed: Record<string, unknown> };
      resolved: { changed: Record<string, unknown> };
    };
    expect(shown.diff.changed).toEqual({ 'site.host': { old: 'example.com', new: 'other.example.org' } });
    expect(shown.resolved.changed).toEqual({
      'site.host': { old: 'example.com', new: 'other.example.org' },
      'gitea.base_url': { old: 'https://git.example.com/api/v1', new: 'https://git.other.example.org/api/v1' },
    });

    const rows = await auditEntries(ch, '&section=gitea');
    expect(rows.find((row) => row.key === 'base_url' && row.result === 'applied')).toMatchObject({ action: 'settings.update', newValue: BASE_URL_REF });
    await putJson(ch, '/api/v1/settings/site?wait=true', { host: 'example.com' });
  });

  it('when a mapped environment variable comes from a key holding a reference, then its export and GET show the resolved value', async () => {
    await putJson(ch, '/api/v1/settings/site?wait=true', { host: 'example.com' });
    expect((await putJson(ch, '/api/v1/settings/gitea?wait=true', { base_url: BASE_URL_REF })).status).toBe(200);
    const exported = (await call(ch, '/api/v1/env/web/export?format=json')).body;
    expect(exported.WEB_URL).toBe('https://git.example.com/api/v1');
    expect((await call(ch, '/api/v1/env/web')).body.WEB_URL).toMatchObject({ value: 'https://git.example.com/api/v1', source: 'mapped:gitea.base_url' });
    expect((await call(ch, '/api/v1/env/web/WEB_URL')).body).toMatchObject({ value: 'https://git.example.com/api/v1', source: 'mapped:gitea.base_url' });
  });

  it('when a consumer maps a key holding a reference, then an env write that changes nothing it gets reaches no consumer', async () => {
    const env = (body: unknown) => call(ch, '/api/v1/env/global', { method: 'PATCH', body: JSON.stringify(body) });
    // A variable that only becomes secret changes nothing a consumer gets: no consumer is reached,
    // whether the mapped key holds a plain value or a reference.
    for (const baseUrl of ['https://git.example.com/api/v1', BASE_URL_REF]) {
      expect((await putJson(ch, '/api/v1/settings/gitea?wait=true', { base_url: baseUrl })).status).toBe(200);
      expect((await env({ SAME_VALUE: 'x' })).status).toBe(200);
      const secretOnly = await env({ SAME_VALUE: { value: 'x', secret: true } });
      expect(secretOnly.body, baseUrl).toMatchObject({ changed: ['SAME_VALUE'], consumers: [] });
      await env({ SAME_VALUE: null });
    }
  });

  it('when the referred key changes by hand or through the API, then the settings.changed event names the referring key too', async () => {
    await putJson(ch, '/api/v1/settings/site?wait=true', { host: 'example.com' });
    await putJson(ch, '/api/v1/settings/gitea?wait=true', { base_url: BASE_URL_REF });
    const since = changedKeys(ch).length;
    // By hand: the worker announces it.
    writeFileSync(ch.config.configPath, ch.readConfig().replace(/^host = .*$/m, 'host = hand.example.net'));
    await eventually('the hand edit is announced', () =>
      changedKeys(ch)
        .slice(since)
        .some((keys) => keys.includes('site.host')),
    );
    expect(
      changedKeys(ch)
        .slice(since)
        .find((keys) => keys.includes('site.host'))!
        .sort(),
    ).toEqual(['gitea.base_url', 'site.host']);
    await eventually('the hand edit is applied', () => output(ch, 'app.ini').includes('git.hand.example.net'));

    // Through the API: the same revision content, announced by the store.
    const before = changedKeys(ch).length;
    expect((await putJson(ch, '/api/v1/settings/site?wait=true', { host: 'example.com' })).status).toBe(200);
    await eventually('the API write is announced', () =>
      changedKeys(ch)
        .slice(before)
        .some((keys) => keys.includes('site.host')),
    );
    expect(
      changedKeys(ch)
        .slice(before)
        .find((keys) => keys.includes('site.host'))!
        .sort(),
    ).toEqual(['gitea.base_url', 'site.host']);
  });

  it('when a value holds $$, then the target gets a literal $ and the raw view keeps $$', async () => {
    const put = await putJson(ch, '/api/v1/settings/site?wait=true', { motto: `costs 5$$ or ${ref('a')}$$` });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect((put.body.settings as Record<string, unknown>).motto).toBe('costs 5$ or 1$');
    expect((await call(ch, '/api/v1/settings/site/motto')).body).toEqual({ motto: 'costs 5$ or 1$' });
    expect((await call(ch, '/api/v1/settings/site/motto?resolved=false')).body).toEqual({ motto: `costs 5$$ or ${ref('a')}$$` });
    await eventually('site.ini has the literal $', () => output(ch, 'site.ini').includes('motto=costs 5$ or 1$\n'));
    expect(output(ch, 'site.ini')).not.toContain('$$');
    await putJson(ch, '/api/v1/settings/site?wait=true', { motto: 'hello' });
  });

  it.each([
    {
      name: 'a bare $ in a password',
      body: { portainer: { user_pwd: 'Pa$word-Strong-9174' } },
      field: 'portainer.user_pwd',
      code: 'INVALID_REFERENCE',
      message: /write \$\$ for a literal \$/,
    },
    {
      name: 'a bare $ at the end of a text',
      body: { site: { motto: 'five$' } },
      field: 'site.motto',
      code: 'INVALID_REFERENCE',
      message: /write \$\$ for a literal \$/,
    },
    {
      name: 'an unclosed reference',
      body: { site: { motto: `x ${ref('site:host').slice(0, -1)}` } },
      field: 'site.motto',
      code: 'INVALID_REFERENCE',
      message: /\$\$/,
    },
    {
      name: 'a reference to a missing key',
      body: { gitea: { base_url: `https://${ref('site:nohost')}/api` } },
      field: 'gitea.base_url',
      code: 'REFERENCE_NOT_FOUND',
      message: /site\.nohost/,
    },
    {
      name: 'a reference to a missing section',
      body: { gitea: { base_url: `https://${ref('nowhere:host')}/api` } },
      field: 'gitea.base_url',
      code: 'REFERENCE_NOT_FOUND',
      message: /nowhere\.host/,
    },
    {
      name: 'a non-secret key referring to a secret',
      body: { gitea: { base_url: ref('gitea:user_pwd') } },
      field: 'gitea.base_url',
      code: 'REFERENCE_TO_SECRET',
      message: /gitea\.user_pwd/,
    },
  ])('when $name is written, then 400 VALIDATION_FAILED names the key and its code, and nothing is written', async ({ body, field, code, message }) => {
    const before = readFileSync(ch.config.configPath);
    const refused = await patchJson(ch, body);
    expect(refused.status, JSON.stringify(refused.body)).toBe(400);
    expect(refused.body.code).toBe('VALIDATION_FAILED');
    expect(refused.body.errors).toEqual([expect.objectContaining({ field, code, message: expect.stringMatching(message) })]);
    expect(refused.body.details).toMatch(message);
    expect(readFileSync(ch.config.configPath).equals(before)).toBe(true);
    const [section, key] = field.split('.') as [string, string];
    expect((await auditEntries(ch, `&section=${section}`)).find((row) => row.key === key)).toMatchObject({ result: 'refused', errorCode: 'VALIDATION_FAILED' });
  });

  it('when the legacy form writes a bare $, then it is refused the same way, with the hint', async () => {
    const before = readFileSync(ch.config.configPath);
    const refused = await call(ch, `/api/settings/site?key=motto&value=${encodeURIComponent('pa$word')}`, { method: 'PUT' });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([expect.objectContaining({ field: 'site.motto', code: 'INVALID_REFERENCE' })]);
    expect(refused.body.details).toContain('write $$ for a literal $');
    expect(readFileSync(ch.config.configPath).equals(before)).toBe(true);
  });

  it('when two keys refer to each other, then REFERENCE_CYCLE names both and nothing is written', async () => {
    const before = readFileSync(ch.config.configPath);
    const refused = await patchJson(ch, { site: { a: ref('b'), b: ref('site:a') } });
    expect(refused.status, JSON.stringify(refused.body)).toBe(400);
    expect(refused.body.code).toBe('VALIDATION_FAILED');
    const errors = refused.body.errors!;
    expect(errors.map((e) => e.code)).toEqual(['REFERENCE_CYCLE', 'REFERENCE_CYCLE']);
    expect(errors.map((e) => e.field).sort()).toEqual(['site.a', 'site.b']);
    for (const error of errors) expect(error.message).toMatch(/site\.a.*site\.b|site\.b.*site\.a/);
    // A key referring to itself is a cycle too.
    const self = await patchJson(ch, { site: { a: `x${ref('a')}` } });
    expect(self.body.errors).toEqual([expect.objectContaining({ field: 'site.a', code: 'REFERENCE_CYCLE' })]);
    expect(readFileSync(ch.config.configPath).equals(before)).toBe(true);
  });

  it('when a referred key is changed so that a referring one breaks, then the write is refused naming the referring key', async () => {
    await putJson(ch, '/api/v1/settings/site?wait=true', { motto: `host is ${ref('host')}` });
    const before = readFileSync(ch.config.configPath);
    // The key written cannot be resolved, and so neither can the key that refers to it.
    const refused = await putJson(ch, '/api/v1/settings/site', { host: ref('nothing') });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ field: 'site.host', code: 'REFERENCE_NOT_FOUND' }),
        expect.objectContaining({ field: 'site.motto', code: 'INVALID_REFERENCE', message: expect.stringContaining('site.host') }),
      ]),
    );
    expect(readFileSync(ch.config.configPath).equals(before)).toBe(true);
    await putJson(ch, '/api/v1/settings/site?wait=true', { motto: 'hello' });
  });

  it('when a typed key holds a reference, then its resolved value is checked by its type and GET types it', async () => {
    const ok = await putJson(ch, '/api/v1/settings/cockpit?wait=true', { port: ref('site:port') });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect((ok.body.settings as Record<string, unknown>).port).toBe(9191);
    expect((await call(ch, '/api/v1/settings/cockpit/port')).body).toEqual({ port: 9191 });
    expect((await call(ch, '/api/v1/settings/cockpit')).body).toEqual({ port: 9191 });
    expect((await call(ch, '/api/v1/settings/cockpit?resolved=false')).body).toEqual({ port: ref('site:port') });
    await eventually('app.ini has the resolved port', () => /^port=9191$/m.test(output(ch, 'app.ini')));

    const before = readFileSync(ch.config.configPath);
    const notAPort = await putJson(ch, '/api/v1/settings/cockpit', { port: ref('site:motto') });
    expect(notAPort.status).toBe(400);
    expect(notAPort.body.errors).toEqual([expect.objectContaining({ field: 'cockpit.port', code: 'INVALID_PORT' })]);
    // Through the referred key: the port it would make is checked.
    const viaSite = await putJson(ch, '/api/v1/settings/site', { port: '70000' });
    expect(viaSite.status).toBe(400);
    expect(viaSite.body.errors).toEqual([expect.objectContaining({ field: 'cockpit.port', code: 'INVALID_PORT' })]);
    // And a port another service uses: a conflict on the resolved value.
    const conflict = await putJson(ch, '/api/v1/settings/site', { port: '9000' });
    expect(conflict.status).toBe(400);
    expect(conflict.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'cockpit.port', code: 'PORT_CONFLICT' })]));
    expect(readFileSync(ch.config.configPath).equals(before)).toBe(true);

    await putJson(ch, '/api/v1/settings/cockpit?wait=true', { port: 9090 });
  });

  it('when a secret refers to a secret, then it is sealed at rest, resolves to the other password, and history and audit never hold the password', async () => {
    const giteaPassword = (await call(ch, '/api/v1/settings/gitea/user_pwd')).body.user_pwd as string;
    expect(giteaPassword.length).toBeGreaterThan(8);
    const reference = ref('gitea:user_pwd');
    const put = await putJson(ch, '/api/v1/settings/portainer?wait=true', { user_pwd: reference });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(valueAt(ch.readConfig(), 'portainer', 'user_pwd')).toMatch(/^enc:v1:/);
    expect(ch.readConfig()).not.toContain(reference);
    expect((await call(ch, '/api/v1/settings/portainer/user_pwd')).body).toEqual({ user_pwd: giteaPassword });
    expect((await call(ch, '/api/v1/settings/portainer/user_pwd?resolved=false')).body).toEqual({ user_pwd: reference });

    const commit = await committed(ch);
    const shown = await call(ch, `/api/v1/settings/history/${commit}`);
    expect((shown.body.resolved as { changed: Record<string, unknown> }).changed['portainer.user_pwd']).toEqual({ old: '******', new: '******' });
    expect(JSON.stringify(shown.body)).not.toContain(giteaPassword);
    expect(JSON.stringify(await auditEntries(ch))).not.toContain(giteaPassword);
  });
});

describe('hand edits with references', () => {
  let ch: Confhub;
  afterEach(async () => {
    await ch?.close();
  });

  it('when a hand edit holds a bare $, then the source is invalid (readyz 503, status names the reason and line); fixing it brings it back', async () => {
    ch = await startConfhub({ systemIni: EXTENDED, configExtra: SITE });
    await ready(ch);
    await eventually('site.ini rendered', () => output(ch, 'site.ini').includes('motto=hello'));
    const good = ch.readConfig();
    writeFileSync(ch.config.configPath, good.replace('motto = hello', 'motto = pa$word'));
    const line = lineAt(ch.readConfig(), 'site', 'motto');
    await eventually('the invalid source is reported', async () => (await fetch(`${ch.url}/readyz`)).status === 503);
    const readyz = (await (await fetch(`${ch.url}/readyz`)).json()) as { reasons: string[] };
    expect(readyz.reasons.join()).toContain('config.ini invalid');
    const status = (await call(ch, '/api/v1/sync/status')).body as { source: { valid: boolean; error: { details: string; line: number } } };
    expect(status.source.valid).toBe(false);
    expect(status.source.error.details).toContain('site.motto');
    expect(status.source.error.details).toContain('write $$ for a literal $');
    expect(status.source.error.line).toBe(line);
    expect(output(ch, 'site.ini')).toContain('motto=hello');

    // A function replacement: a replacement string would read $$ as one $.
    writeFileSync(
      ch.config.configPath,
      good.replace('motto = hello', () => `motto = pa$$word ${ref('host')}`),
    );
    await eventually('ready again', async () => (await fetch(`${ch.url}/readyz`)).status === 200);
    await eventually('the fixed value is rendered', () => output(ch, 'site.ini').includes('motto=pa$word example.com\n'));
  });

  it.each([
    ['a missing key', `motto = ${ref('nothing')}`, /site\.nothing/],
    ['a cycle', `a = ${ref('b')}\nb = ${ref('a')}`, /refers back to itself/],
    ['a plain key referring to a secret', `motto = ${ref('gitea:user_pwd')}`, /secret gitea\.user_pwd/],
  ])('when a hand edit holds %s, then the source is invalid and says so', async (_name, edit, reason) => {
    ch = await startConfhub({ systemIni: EXTENDED, configExtra: '\n[site]\nmotto = hello\n' });
    await ready(ch);
    writeFileSync(ch.config.configPath, ch.readConfig().replace('motto = hello', edit));
    await eventually('the invalid source is reported', async () => (await fetch(`${ch.url}/readyz`)).status === 503);
    const status = (await call(ch, '/api/v1/sync/status')).body as { source: { error: { details: string; line: number } } };
    expect(status.source.error.details).toMatch(reason);
    expect(status.source.error.line).toBeGreaterThan(1);
  });
});

describe('interpolation off (the default)', () => {
  let ch: Confhub;
  afterEach(async () => {
    await ch?.close();
  });

  it('when interpolation is not turned on, then $ and references are literal everywhere: GET, raw view, explain and the rendered file', async () => {
    ch = await startConfhub({ systemIni: SYNC, configExtra: SITE });
    await ready(ch);
    expect((await putJson(ch, '/api/v1/settings/nginx_proxy_manager', { nike_name: 'a$b' })).status).toBe(200);
    const literal = `see ${ref('host')} and $$`;
    const put = await putJson(ch, '/api/v1/settings/site?wait=true', { motto: literal });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect((await call(ch, '/api/v1/settings/nginx_proxy_manager/nike_name')).body).toEqual({ nike_name: 'a$b' });
    expect((await call(ch, '/api/v1/settings/site/motto')).body).toEqual({ motto: literal });
    expect((await call(ch, '/api/v1/settings/site/motto?resolved=false')).body).toEqual({ motto: literal });
    const explained = (await call(ch, '/api/v1/settings/site?explain=true')).body as Record<string, Record<string, unknown>>;
    expect(explained.motto).toEqual({
      value: literal,
      source: 'config.ini [site]',
      line: lineAt(ch.readConfig(), 'site', 'motto'),
      kind: 'text',
      secret: false,
    });
    await eventually('site.ini has the literal text', () => output(ch, 'site.ini').includes(`motto=${literal}\n`));
    // A password with a $ is an ordinary password here.
    expect((await putJson(ch, '/api/v1/settings/portainer', { user_pwd: 'Pa$word-Strong-9174' })).status).toBe(200);
    expect((await call(ch, '/api/v1/settings/portainer/user_pwd')).body).toEqual({ user_pwd: 'Pa$word-Strong-9174' });
    // A port written as a reference is just not a port.
    const port = await putJson(ch, '/api/v1/settings/cockpit', { port: ref('site:port') });
    expect(port.status).toBe(400);
    expect(port.body.errors).toEqual([expect.objectContaining({ field: 'cockpit.port', code: 'INVALID_PORT' })]);
  });
});

describe('confhub validate', () => {
  let ch: Confhub;
  afterEach(async () => {
    await ch?.close();
  });

  it('when config.ini holds a broken reference, then validate exits 1 naming the key and the problem; a good reference is valid', async () => {
    ch = await startConfhub({ systemIni: EXTENDED, configExtra: SITE });
    await ready(ch);
    // validate reads the files only: it runs beside the server, as an operator would run it.
    const env = { CONFHUB_DATA_DIR: ch.config.dataDir };
    const good = ch.readConfig();
    writeFileSync(ch.config.configPath, good.replace('motto = hello', `motto = at ${ref('host')}`));
    expect(await runCli(['validate'], env)).toMatchObject({ code: 0, stdout: 'config.ini and system.ini are valid\n' });

    writeFileSync(ch.config.configPath, good.replace('motto = hello', `motto = at ${ref('nohost')}`));
    const missing = await runCli(['validate'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('site.motto');
    expect(missing.stderr).toContain('site.nohost');

    writeFileSync(ch.config.configPath, good.replace('motto = hello', 'motto = 5$'));
    const bare = await runCli(['validate'], env);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toContain('write $$ for a literal $');

    // A typed key is validated on its resolved value.
    writeFileSync(ch.config.configPath, good.replace('port = 9090', `port = ${ref('site:motto')}`));
    const port = await runCli(['validate'], env);
    expect(port.code).toBe(1);
    expect(port.stderr).toContain('cockpit.port must be an integer from 1 to 65535');
  });

  it('when confhub is stopped and the referred key is edited, then plan shows the referring key’s target changing to the resolved value, and once applies it', async () => {
    ch = await startConfhub({ systemIni: EXTENDED, configExtra: SITE });
    await ready(ch);
    expect((await putJson(ch, '/api/v1/settings/gitea?wait=true', { base_url: BASE_URL_REF })).status).toBe(200);
    await committed(ch);
    await ch.server.close();
    const env = { CONFHUB_DATA_DIR: ch.config.dataDir };
    writeFileSync(ch.config.configPath, ch.readConfig().replace('host = example.com', 'host = plan.example.net'));

    const plan = await runCli(['plan'], env);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/^== app \(.*app\.ini\): update$/m);
    expect(plan.stdout).toMatch(/^-base_url=https:\/\/git\.example\.com\/api\/v1$/m);
    expect(plan.stdout).toMatch(/^\+base_url=https:\/\/git\.plan\.example\.net\/api\/v1$/m);
    expect(plan.stdout).not.toContain(ref('').slice(0, 2));

    const once = await runCli(['once'], env);
    expect(once.code, once.stderr).toBe(0);
    expect(output(ch, 'app.ini')).toContain('base_url=https://git.plan.example.net/api/v1\n');
  });
});
