/**
 * Environments through a whole confhub (main + worker, real git, real files): overlays
 * `[section@env]` chosen by CONFHUB_ENVIRONMENT in what the API shows, explains and the targets
 * get; writes, reads and removals of another environment's overlay; every environment kept valid;
 * /environments and promotion with its dry run; a bad environment name at start or by hand.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isAppError } from '../../src/core/errors.js';
import { parseIni } from '../../src/ini/document.js';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { revisionOf } from '../../src/settings/revision.js';
import { killStartedProcesses, runCli, startProcess } from '../support/confhub-process.js';
import { call, valueAt, lineAt, ready, changedKeys, auditEntries, type Reply, APP_TARGET_SYSTEM_INI, ref } from '../support/e2e-helpers.js';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';
import { tempDirs } from '../support/temp-dirs.js';

const SYSTEM_INI = APP_TARGET_SYSTEM_INI;

const STAGING_PASSWORD = 'Staging-Secret-Pass-42';

const OVERLAYS = `
[cockpit@staging]
port = 9191

[gitea@staging]
user_pwd = ${STAGING_PASSWORD}

[cockpit@prod]
port = 9292
`;

const send = (c: Confhub, method: string, path: string, body?: unknown) =>
  call(c, path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

const section = (reply: Reply, name: string): Record<string, unknown> => reply.body[name] as Record<string, unknown>;

/** Every section of config.ini's text with its keys and values (stored text). */
function sectionsOf(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const s of parseIni(text).sections) out[s.name] = Object.fromEntries(s.entries.map((e) => [e.key, e.value]));
  return out;
}

const output = (c: Confhub): string => {
  const path = join(c.dir, 'out', 'app.ini');
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
};

interface Commit {
  id: string;
  source: string;
  summary: string;
  revision: string;
  changes: { key: string; change: string }[];
}

async function commits(c: Confhub): Promise<Commit[]> {
  return (await call(c, '/api/v1/settings/history?limit=200')).body.commits as Commit[];
}

/** Until the worker has committed the revision now on disk; the newest commit. */
async function committed(c: Confhub): Promise<Commit> {
  let top: Commit | undefined;
  await eventually('the revision on disk is committed', async () => {
    top = (await commits(c))[0];
    return top?.revision === revisionOf(c.readConfig());
  });
  return top!;
}

describe('environment overlays when confhub runs in staging', () => {
  let ch: Confhub;
  beforeAll(async () => {
    ch = await startConfhub({ systemIni: SYSTEM_INI, configExtra: OVERLAYS, env: { CONFHUB_ENVIRONMENT: 'staging' } });
    await ready(ch);
  });
  afterAll(async () => {
    await ch?.close();
  });

  it("when staging has an overlay, then GET, explain and the rendered file show staging's value and prod's overlay is left out", async () => {
    expect((await call(ch, '/api/v1/settings/cockpit')).body).toEqual({ port: 9191 });
    expect((await call(ch, '/api/v1/settings/cockpit/port')).body).toEqual({ port: 9191 });
    const all = await call(ch, '/api/v1/settings');
    expect(section(all, 'cockpit')).toEqual({ port: 9191 });
    expect(section(all, 'gitea').user_pwd).toBe(STAGING_PASSWORD);
    // The resolved view is of the sections services know: no overlay of any environment.
    expect(Object.keys(all.body).filter((name) => name.includes('@'))).toEqual([]);
    // As written: every overlay, and the base value.
    const raw = await call(ch, '/api/v1/settings?resolved=false');
    expect(section(raw, 'cockpit')).toEqual({ port: 9090 });
    expect(section(raw, 'cockpit@staging')).toEqual({ port: 9191 });
    expect(section(raw, 'cockpit@prod')).toEqual({ port: 9292 });
    expect((await call(ch, '/api/v1/settings/cockpit@prod?resolved=false')).body).toEqual({ port: 9292 });

    const text = ch.readConfig();
    const explained = (await call(ch, '/api/v1/settings?explain=true')).body as Record<string, Record<string, Record<string, unknown>>>;
    expect(explained.cockpit!.port).toEqual({
      value: 9191,
      source: 'config.ini [cockpit@staging]',
      line: lineAt(text, 'cockpit@staging', 'port'),
      kind: 'port',
      secret: false,
      description: 'Cockpit web service port',
    });
    expect(explained.gitea!.user_pwd).toMatchObject({
      source: 'config.ini [gitea@staging]',
      line: lineAt(text, 'gitea@staging', 'user_pwd'),
      kind: 'secret',
      secret: true,
    });
    expect(explained.gitea!.user_name).toEqual({
      value: 'websoft9',
      source: 'config.ini [gitea]',
      line: lineAt(text, 'gitea', 'user_name'),
      kind: 'text',
      secret: false,
      description: 'Gitea administrator user name',
    });
    expect(Object.keys(explained).filter((name) => name.includes('@'))).toEqual([]);
    expect((await call(ch, '/api/v1/settings/cockpit?explain=true')).body).toEqual({ port: explained.cockpit!.port });

    await eventually('app.ini has staging values', () => /^port=9191$/m.test(output(ch)));
    expect(output(ch)).not.toMatch(/^port=9(090|292)$/m);
  });

  it('when GET names another environment, then its overlays apply instead; an environment without overlays gets the base values', async () => {
    expect((await call(ch, '/api/v1/settings/cockpit?environment=prod')).body).toEqual({ port: 9292 });
    expect(section(await call(ch, '/api/v1/settings?environment=prod'), 'cockpit')).toEqual({ port: 9292 });
    expect(section(await call(ch, '/api/v1/settings?environment=prod'), 'gitea').user_pwd).not.toBe(STAGING_PASSWORD);
    expect((await call(ch, '/api/v1/settings/cockpit?environment=nowhere')).body).toEqual({ port: 9090 });
    expect((await call(ch, '/api/v1/settings/cockpit?environment=staging')).body).toEqual({ port: 9191 });
    expect((await call(ch, '/api/v1/settings/cockpit?environment=prod&explain=true')).body).toMatchObject({
      port: { value: 9292, source: 'config.ini [cockpit@prod]' },
    });
    expect((await call(ch, '/api/v1/settings/cockpit?environment=Prod')).body).toMatchObject({ code: 'INVALID_NAME' });
    expect((await call(ch, '/api/v1/settings/cockpit?environment=prod&resolved=false')).body).toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('when one key is read in another environment, then it is that environment’s value', async () => {
    expect((await call(ch, '/api/v1/settings/cockpit/port?environment=prod')).body).toEqual({ port: 9292 });
  });

  it('when PUT and PATCH name an environment, then only its overlay gains the keys, the base is untouched, and the answer is the section as that environment resolves it', async () => {
    const before = sectionsOf(ch.readConfig());
    const put = await send(ch, 'PUT', '/api/v1/settings/gitea?environment=prod', { user_name: 'produser' });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body).toMatchObject({ user_name: 'produser', base_url: 'http://websoft9-git:3000/api/v1' });
    // prod has no password overlay: the base one.
    expect(put.body.user_pwd).not.toBe(STAGING_PASSWORD);
    const after = sectionsOf(ch.readConfig());
    expect(after['gitea@prod']).toEqual({ user_name: 'produser' });
    expect({ ...after, 'gitea@prod': undefined }).toEqual({ ...before, 'gitea@prod': undefined });
    // The active environment's view is unchanged.
    expect((await call(ch, '/api/v1/settings/gitea/user_name')).body).toEqual({ user_name: 'websoft9' });
    expect((await call(ch, '/api/v1/settings/gitea?environment=prod')).body.user_name).toBe('produser');

    const legacy = await send(ch, 'PUT', '/api/v1/settings/cockpit?key=port&value=9393&environment=prod');
    expect(legacy.status, JSON.stringify(legacy.body)).toBe(200);
    expect(legacy.body).toEqual({ port: 9393 });
    expect(valueAt(ch.readConfig(), 'cockpit@prod', 'port')).toBe('9393');
    expect(valueAt(ch.readConfig(), 'cockpit', 'port')).toBe('9090');

    const patch = await send(ch, 'PATCH', '/api/v1/settings?environment=prod', {
      cockpit: { port: 9494 },
      gitea: { user_email: 'prod@example.com', user_pwd: 'Prod-Secret-Pass-77' },
    });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    expect(section(patch, 'cockpit')).toEqual({ port: 9494 });
    expect(section(patch, 'gitea')).toMatchObject({ user_name: 'produser', user_email: 'prod@example.com', user_pwd: 'Prod-Secret-Pass-77' });
    expect(Object.keys(patch.body).filter((name) => name.includes('@'))).toEqual([]);
    // An overlay's key is secret exactly when its section's is: ssl_key is a path, kept in plain text.
    const keyPath = '/etc/ssl/private/prod-console.key';
    expect((await send(ch, 'PUT', '/api/v1/settings/nginx_proxy_manager?environment=prod', { ssl_key: keyPath })).status).toBe(200);
    expect(valueAt(ch.readConfig(), 'nginx_proxy_manager@prod', 'ssl_key')).toBe(keyPath);
    const text = ch.readConfig();
    expect(sectionsOf(text)['gitea@prod']).toMatchObject({ user_name: 'produser', user_email: 'prod@example.com' });
    // A secret of an overlay is sealed like its section's.
    expect(valueAt(text, 'gitea@prod', 'user_pwd')).toMatch(/^enc:v1:/);
    expect(text).not.toContain('Prod-Secret-Pass-77');
    expect(sectionsOf(text).gitea).toEqual(before.gitea);
    expect(sectionsOf(text).cockpit).toEqual({ port: '9090' });
    expect((await call(ch, '/api/v1/settings?environment=prod')).body).toMatchObject({ cockpit: { port: 9494 }, gitea: { user_email: 'prod@example.com' } });
    // Staging runs on: its file is not touched by prod's values.
    expect(output(ch)).toMatch(/^port=9191$/m);
  });

  it('when a write names the running environment, then the target follows, and the commit’s resolved diff names the key services get', async () => {
    // Earlier writes first: revisions saved within the debounce are committed together.
    await committed(ch);
    const put = await send(ch, 'PUT', '/api/v1/settings/cockpit?environment=staging&wait=true', { port: 9195 });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect((put.body.sync as { outcome: string }).outcome).toBe('applied');
    expect(output(ch)).toMatch(/^port=9195$/m);
    expect(valueAt(ch.readConfig(), 'cockpit', 'port')).toBe('9090');
    const commit = await committed(ch);
    expect(commit.changes).toEqual([{ key: 'cockpit@staging.port', change: 'changed' }]);
    const shown = (await call(ch, `/api/v1/settings/history/${commit.id}`)).body as {
      diff: { changed: Record<string, unknown> };
      resolved: { changed: Record<string, unknown> };
    };
    expect(shown.diff.changed).toEqual({ 'cockpit@staging.port': { old: '9191', new: '9195' } });
    expect(shown.resolved.changed).toEqual({ 'cockpit.port': { old: '9191', new: '9195' } });
    await send(ch, 'PUT', '/api/v1/settings/cockpit?environment=staging&wait=true', { port: 9191 });
  });

  it("when the running environment's override is removed, then the target gets the section's value, and putting it back restores it", async () => {
    const removed = await send(ch, 'DELETE', '/api/v1/settings/cockpit/port?environment=staging&wait=true');
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    expect(removed.body.settings).toEqual({ port: 9090 });
    expect(output(ch)).toMatch(/^port=9090$/m);
    expect((await call(ch, '/api/v1/settings/cockpit?explain=true')).body).toMatchObject({ port: { value: 9090, source: 'config.ini [cockpit]' } });
    expect((await send(ch, 'PUT', '/api/v1/settings/cockpit?environment=staging&wait=true', { port: 9191 })).status).toBe(200);
    expect(output(ch)).toMatch(/^port=9191$/m);
  });

  it("when the running environment's overlay changes by hand or through the API, then the settings.changed event names the key services get", async () => {
    const since = changedKeys(ch).length;
    writeFileSync(ch.config.configPath, ch.readConfig().replace(/^(\[cockpit@staging\]\nport = )9191$/m, '$19192'));
    await eventually('the hand edit is applied', () => /^port=9192$/m.test(output(ch)));
    await eventually('the hand edit is announced', () => changedKeys(ch).length > since);
    const byHand = changedKeys(ch).slice(since)[0]!.sort();

    const before = changedKeys(ch).length;
    expect((await send(ch, 'PUT', '/api/v1/settings/cockpit?environment=staging&wait=true', { port: 9191 })).status).toBe(200);
    await eventually('the API write is announced', () => changedKeys(ch).length > before);
    // Asserted once staging's value is back, so that the later tests find it as they expect.
    expect(byHand).toEqual(['cockpit.port', 'cockpit@staging.port']);
    expect(changedKeys(ch).slice(before)[0]!.sort()).toEqual(['cockpit.port', 'cockpit@staging.port']);
  });

  it("when an overlay is written, then the audit log can be read for the overlay's section", async () => {
    expect((await send(ch, 'PUT', '/api/v1/settings/cockpit?environment=prod', { port: 9292 })).status).toBe(200);
    expect((await auditEntries(ch)).find((row) => row.action === 'settings.update')).toMatchObject({ section: 'cockpit@prod', key: 'port' });
    const filtered = await call(ch, '/api/v1/audit?section=cockpit@prod');
    expect(filtered.status, JSON.stringify(filtered.body)).toBe(200);
    expect((filtered.body.entries as Record<string, unknown>[])[0]).toMatchObject({ section: 'cockpit@prod', key: 'port' });
  });

  it("when DELETE names an environment, then its override goes and the environment gets the section's value again; without one it is refused", async () => {
    expect((await send(ch, 'PUT', '/api/v1/settings/cockpit?environment=qa', { port: 9555 })).status).toBe(200);
    expect(valueAt(ch.readConfig(), 'cockpit@qa', 'port')).toBe('9555');
    const removed = await send(ch, 'DELETE', '/api/v1/settings/cockpit/port?environment=qa');
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    expect(removed.body).toEqual({ port: 9090 });
    expect(valueAt(ch.readConfig(), 'cockpit@qa', 'port')).toBeUndefined();
    expect(valueAt(ch.readConfig(), 'cockpit', 'port')).toBe('9090');
    expect((await call(ch, '/api/v1/settings/cockpit?environment=qa')).body).toEqual({ port: 9090 });

    const before = readFileSync(ch.config.configPath);
    expect(await send(ch, 'DELETE', '/api/v1/settings/cockpit/port')).toMatchObject({ status: 400, body: { code: 'INVALID_REQUEST' } });
    expect(await send(ch, 'DELETE', '/api/v1/settings/cockpit/port?environment=qa')).toMatchObject({ status: 400, body: { code: 'KEY_NOT_FOUND' } });
    expect(await send(ch, 'DELETE', '/api/v1/settings/cockpit/port?environment=Q%20A')).toMatchObject({ status: 400, body: { code: 'INVALID_NAME' } });
    expect(readFileSync(ch.config.configPath).equals(before)).toBe(true);
  });

  it('when the last override of an environment is removed, then that environment is no longer listed', async () => {
    expect((await send(ch, 'PUT', '/api/v1/settings/cockpit?environment=gone', { port: 9556 })).status).toBe(200);
    expect(((await call(ch, '/api/v1/environments')).body.environments as { name: string }[]).map((e) => e.name)).toContain('gone');
    expect((await send(ch, 'DELETE', '/api/v1/settings/cockpit/port?environment=gone')).status).toBe(200);
    expect(((await call(ch, '/api/v1/environments')).body.environments as { name: string }[]).map((e) => e.name)).not.toContain('gone');
  });

  it('when a write is valid where it is made but breaks another environment, then it is refused naming that environment, and nothing is written', async () => {
    await send(ch, 'PUT', '/api/v1/settings/cockpit?environment=prod&wait=true', { port: 9292 });
    const baseline = readFileSync(ch.config.configPath);
    // The base and staging are fine with 9292 for the proxy; prod's cockpit has it.
    const base = await send(ch, 'PUT', '/api/v1/settings/nginx_proxy_manager', { listen_port: 9292 });
    expect(base.status, JSON.stringify(base.body)).toBe(400);
    expect(base.body.code).toBe('VALIDATION_FAILED');
    expect(base.body.errors!.length).toBeGreaterThan(0);
    for (const error of base.body.errors!) {
      expect(error.code).toBe('PORT_CONFLICT');
      expect(error.message).toContain('in environment prod');
    }
    expect(base.body.errors!.map((e) => e.field).sort()).toEqual(['cockpit.port', 'nginx_proxy_manager.listen_port']);

    // A write for prod is checked in prod's terms.
    const prod = await send(ch, 'PUT', '/api/v1/settings/cockpit?environment=prod', { port: 9000 });
    expect(prod.status).toBe(400);
    expect(prod.body.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ code: 'PORT_CONFLICT', message: expect.stringContaining('in environment prod') })]),
    );
    const weak = await send(ch, 'PUT', '/api/v1/settings/portainer?environment=prod', { user_pwd: 'admin' });
    expect(weak.status).toBe(400);
    expect(weak.body.errors).toEqual([
      expect.objectContaining({ field: 'portainer.user_pwd', code: 'WEAK_PASSWORD', message: expect.stringContaining('in environment prod') }),
    ]);
    const badType = await send(ch, 'PUT', '/api/v1/settings/cockpit?environment=prod', { port: 'ninety' });
    expect(badType.status).toBe(400);
    expect(badType.body.errors).toEqual([expect.objectContaining({ code: 'INVALID_PORT' })]);
    expect(readFileSync(ch.config.configPath).equals(baseline)).toBe(true);
  });

  it('when /environments is read, then it lists each environment with overlays, its sections and key count, and the active one', async () => {
    const listed = (await call(ch, '/api/v1/environments')).body as { active: string; environments: { name: string; sections: string[]; keys: number }[] };
    expect(listed.active).toBe('staging');
    expect(listed.environments.find((e) => e.name === 'staging')).toEqual({ name: 'staging', sections: ['cockpit', 'gitea'], keys: 2 });
    expect(listed.environments.find((e) => e.name === 'prod')).toMatchObject({ name: 'prod', sections: expect.arrayContaining(['cockpit', 'gitea']) });
    const names = listed.environments.map((e) => e.name);
    expect(names).toEqual([...names].sort());
  });

  it('when a promotion is a dry run, then nothing is written (bytes, history, audit) and the diff is answered with secrets masked', async () => {
    await committed(ch);
    const bytes = readFileSync(ch.config.configPath);
    const history = (await commits(ch)).length;
    const audit = (await auditEntries(ch)).length;
    const dry = await send(ch, 'POST', '/api/v1/environments/promote?dry_run=true', { from: 'staging', to: 'prod' });
    expect(dry.status, JSON.stringify(dry.body)).toBe(200);
    expect(dry.body).toMatchObject({ from: 'staging', to: 'prod', dryRun: true, valid: true, errors: [] });
    expect(dry.body.changes).toEqual([
      { key: 'cockpit.port', before: '9292', after: '9191', change: 'changed' },
      { key: 'gitea.user_pwd', before: '******', after: '******', change: 'changed' },
    ]);
    expect(JSON.stringify(dry.body)).not.toContain(STAGING_PASSWORD);
    expect(JSON.stringify(dry.body)).not.toContain('Prod-Secret-Pass-77');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(readFileSync(ch.config.configPath).equals(bytes)).toBe(true);
    expect((await commits(ch)).length).toBe(history);
    expect((await auditEntries(ch)).length).toBe(audit);
  });

  it('when a promotion is made, then it writes once, is audited as settings.promote, commits once, and the target environment gets the values (secrets sealed)', async () => {
    await committed(ch);
    const history = (await commits(ch)).length;
    const done = await send(ch, 'POST', '/api/v1/environments/promote?wait=true', { from: 'staging', to: 'prod' });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body).toMatchObject({ from: 'staging', to: 'prod', dryRun: false, revision: revisionOf(ch.readConfig()) });
    expect(JSON.stringify(done.body)).not.toContain(STAGING_PASSWORD);
    const text = ch.readConfig();
    expect(valueAt(text, 'cockpit@prod', 'port')).toBe('9191');
    expect(valueAt(text, 'gitea@prod', 'user_pwd')).toMatch(/^enc:v1:/);
    expect(text).not.toContain(STAGING_PASSWORD);
    // Staging and the base are as they were.
    expect(valueAt(text, 'cockpit@staging', 'port')).toBe('9191');
    expect(valueAt(text, 'cockpit', 'port')).toBe('9090');
    expect((await call(ch, '/api/v1/settings/gitea?environment=prod')).body.user_pwd).toBe(STAGING_PASSWORD);
    expect((await call(ch, '/api/v1/settings/cockpit?environment=prod')).body).toEqual({ port: 9191 });

    const commit = await committed(ch);
    expect((await commits(ch)).length).toBe(history + 1);
    expect(commit).toMatchObject({ source: 'promote' });
    expect(commit.changes.map((c) => c.key).sort()).toEqual(['cockpit@prod.port', 'gitea@prod.user_pwd']);
    const rows = (await auditEntries(ch)).filter((row) => row.revision === done.body.revision);
    expect(rows.map((row) => [row.action, row.section, row.key, row.result]).sort()).toEqual([
      ['settings.promote', 'cockpit@prod', 'port', 'applied'],
      ['settings.promote', 'gitea@prod', 'user_pwd', 'applied'],
    ]);
    expect(rows.find((row) => row.key === 'user_pwd')).toMatchObject({ newValue: '******' });
    expect(JSON.stringify(await auditEntries(ch))).not.toContain(STAGING_PASSWORD);
  });

  it('when keys are given, then only those are promoted; a key the source does not set is refused', async () => {
    const done = await send(ch, 'POST', '/api/v1/environments/promote', { from: 'staging', to: 'dev', keys: ['cockpit.port'] });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.changes).toEqual([{ key: 'cockpit.port', before: null, after: '9191', change: 'added' }]);
    expect(sectionsOf(ch.readConfig())['cockpit@dev']).toEqual({ port: '9191' });
    expect(sectionsOf(ch.readConfig())['gitea@dev']).toBeUndefined();

    const bytes = readFileSync(ch.config.configPath);
    const missing = await send(ch, 'POST', '/api/v1/environments/promote', { from: 'staging', to: 'dev', keys: ['gitea.user_name'] });
    expect(missing).toMatchObject({ status: 400, body: { code: 'KEY_NOT_FOUND' } });
    expect(missing.body.details).toContain('gitea.user_name');
    expect(readFileSync(ch.config.configPath).equals(bytes)).toBe(true);
  });

  it('when a promotion would make the target environment invalid, then the dry run says so and the promotion is refused, naming the environment', async () => {
    // qa's proxy listens where staging's cockpit does.
    expect((await send(ch, 'PUT', '/api/v1/settings/nginx_proxy_manager?environment=qa', { listen_port: 9191 })).status).toBe(200);
    const bytes = readFileSync(ch.config.configPath);
    const dry = await send(ch, 'POST', '/api/v1/environments/promote?dry_run=true', { from: 'staging', to: 'qa', keys: ['cockpit.port'] });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ valid: false });
    expect(dry.body.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ code: 'PORT_CONFLICT', message: expect.stringContaining('in environment qa') })]),
    );
    const refused = await send(ch, 'POST', '/api/v1/environments/promote', { from: 'staging', to: 'qa', keys: ['cockpit.port'] });
    expect(refused).toMatchObject({ status: 400, body: { code: 'VALIDATION_FAILED' } });
    expect(refused.body.details).toContain('in environment qa');
    expect(readFileSync(ch.config.configPath).equals(bytes)).toBe(true);
    const rows = await auditEntries(ch);
    expect(rows[0]).toMatchObject({ action: 'settings.promote', result: 'refused', errorCode: 'VALIDATION_FAILED' });
  });

  it.each([
    ['an environment without overlays', { from: 'nowhere', to: 'prod' }, 404, 'ENVIRONMENT_NOT_FOUND'],
    ['the same environment twice', { from: 'staging', to: 'staging' }, 400, 'INVALID_REQUEST'],
    ['an upper-case name', { from: 'Staging', to: 'prod' }, 400, 'INVALID_NAME'],
    ['a name with a slash', { from: 'staging', to: '../prod' }, 400, 'INVALID_NAME'],
    ['an empty name', { from: 'staging', to: '' }, 400, 'INVALID_NAME'],
    ['a name too long', { from: 'staging', to: 'a'.repeat(33) }, 400, 'INVALID_NAME'],
    ['a body without to', { from: 'staging' }, 400, 'INVALID_REQUEST'],
    ['an unknown field', { from: 'staging', to: 'prod', force: true }, 400, 'INVALID_REQUEST'],
    ['an empty key list', { from: 'staging', to: 'prod', keys: [] }, 400, 'INVALID_REQUEST'],
  ])('when a promotion names %s, then it is refused and nothing is written', async (_name, body, status, code) => {
    const bytes = readFileSync(ch.config.configPath);
    for (const query of ['', '?dry_run=true']) {
      const refused = await send(ch, 'POST', `/api/v1/environments/promote${query}`, body);
      expect(refused, query).toMatchObject({ status, body: { code } });
    }
    expect(readFileSync(ch.config.configPath).equals(bytes)).toBe(true);
  });

  it('when a write names a bad environment, then 400 INVALID_NAME and nothing is written', async () => {
    const bytes = readFileSync(ch.config.configPath);
    for (const environment of ['Prod', 'pr od', '-prod', 'a'.repeat(33), 'prod@x']) {
      const refused = await send(ch, 'PUT', `/api/v1/settings/cockpit?environment=${encodeURIComponent(environment)}`, { port: 9300 });
      expect(refused, environment).toMatchObject({ status: 400, body: { code: 'INVALID_NAME' } });
    }
    expect(readFileSync(ch.config.configPath).equals(bytes)).toBe(true);
  });
});

describe('environment overlays when confhub runs in no environment', () => {
  let ch: Confhub;
  afterEach(async () => {
    await ch?.close();
  });

  it('when CONFHUB_ENVIRONMENT is not set, then no overlay applies: GET, explain, the rendered file and /environments say so', async () => {
    ch = await startConfhub({ systemIni: SYSTEM_INI, configExtra: OVERLAYS });
    await ready(ch);
    expect((await call(ch, '/api/v1/settings/cockpit')).body).toEqual({ port: 9090 });
    expect((await call(ch, '/api/v1/settings/gitea/user_pwd')).body.user_pwd).not.toBe(STAGING_PASSWORD);
    expect((await call(ch, '/api/v1/settings/cockpit?explain=true')).body).toEqual({
      port: {
        value: 9090,
        source: 'config.ini [cockpit]',
        line: lineAt(ch.readConfig(), 'cockpit', 'port'),
        kind: 'port',
        secret: false,
        description: 'Cockpit web service port',
      },
    });
    await eventually('app.ini has the base port', () => /^port=9090$/m.test(output(ch)));
    expect((await call(ch, '/api/v1/environments')).body).toMatchObject({ active: null, environments: [{ name: 'prod' }, { name: 'staging' }] });
    expect((await call(ch, '/api/v1/settings/cockpit?environment=staging')).body).toEqual({ port: 9191 });
  });
});

describe('the API key in an environment', () => {
  afterEach(() => killStartedProcesses());

  it("when the running environment's overlay sets the API key, then clients send that key, confhub apikey shows it and rotate replaces it there", async () => {
    const prodKey = `prod-${'k'.repeat(40)}`;
    const ch = await startConfhub({ systemIni: SYSTEM_INI, configExtra: `\n[api_key@prod]\nkey = ${prodKey}\n`, env: { CONFHUB_ENVIRONMENT: 'prod' } });
    try {
      await ready(ch);
      expect(ch.apiKey).toBe(prodKey);
      expect((await call(ch, '/api/v1/settings/cockpit')).status).toBe(200);
      const env = { CONFHUB_DATA_DIR: ch.config.dataDir, CONFHUB_ENVIRONMENT: 'prod' };
      expect((await runCli(['apikey', 'show'], env)).stdout.trim()).toBe(prodKey);
      const rotated = (await runCli(['apikey', 'rotate'], env)).stdout.trim();
      expect(rotated).not.toBe(prodKey);
      // Written where the running environment reads it: the overlay.
      expect((await runCli(['apikey', 'show'], env)).stdout.trim()).toBe(rotated);
      await eventually(
        'the new key works',
        async () => (await fetch(`${ch.url}/api/v1/settings/cockpit`, { headers: { 'x-api-key': rotated } })).status === 200,
      );
    } finally {
      await ch.close();
    }
  }, 90_000);
});

describe('references and environments together', () => {
  let ch: Confhub;
  afterEach(async () => {
    await ch?.close();
  });

  it("when a reference points at a key an overlay sets, then it resolves to the environment's value, in GET, explain and the rendered file", async () => {
    ch = await startConfhub({
      systemIni: `[confhub]\ninterpolation = extended\n\n${SYSTEM_INI}`,
      configExtra: `\n[site]\nhost = example.com\n\n[site@staging]\nhost = staging.example.com\n\n[gitea@prod]\nuser_name = ops-${ref('site:host')}\n`,
      env: { CONFHUB_ENVIRONMENT: 'staging' },
    });
    await ready(ch);
    const put = await send(ch, 'PUT', '/api/v1/settings/gitea?wait=true', { base_url: `https://git.${ref('site:host')}/api` });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect((await call(ch, '/api/v1/settings/gitea/base_url')).body).toEqual({ base_url: 'https://git.staging.example.com/api' });
    expect((await call(ch, '/api/v1/settings/gitea?environment=prod')).body).toMatchObject({
      base_url: 'https://git.example.com/api',
      user_name: 'ops-example.com',
    });
    const explained = (await call(ch, '/api/v1/settings?explain=true')).body as Record<string, Record<string, Record<string, unknown>>>;
    expect(explained.gitea!.base_url).toMatchObject({ value: 'https://git.staging.example.com/api', source: 'config.ini [gitea]', references: ['site.host'] });
    expect(explained.site!.host).toMatchObject({ value: 'staging.example.com', source: 'config.ini [site@staging]' });
    await eventually('app.ini has the staging URL', () => output(ch).includes('base_url=https://git.staging.example.com/api\n'));

    // An overlay is not referred to by name: the environment chooses the value.
    const bytes = readFileSync(ch.config.configPath);
    const refused = await send(ch, 'PUT', '/api/v1/settings/gitea', { base_url: `https://git.${ref('site@staging:host')}/api` });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([expect.objectContaining({ field: 'gitea.base_url', code: 'INVALID_REFERENCE' })]);
    // A reference that breaks only in another environment is refused naming it.
    const onlyProd = await send(ch, 'PUT', '/api/v1/settings/gitea?environment=prod', { user_email: `ops@${ref('site:nohost')}` });
    expect(onlyProd.status).toBe(400);
    expect(onlyProd.body.errors).toEqual([expect.objectContaining({ code: 'REFERENCE_NOT_FOUND', message: expect.stringContaining('in environment prod') })]);
    expect(readFileSync(ch.config.configPath).equals(bytes)).toBe(true);
  });
});

describe('bad environment names', () => {
  const tempDir = tempDirs('confhub-env-');
  let ch: Confhub | undefined;
  afterEach(async () => {
    killStartedProcesses();
    await ch?.close();
    ch = undefined;
  });

  it.each(['Staging', 'staging prod', '-x', 'a'.repeat(33), 'prod@x', '../etc'])(
    'when CONFHUB_ENVIRONMENT is %j, then loading the configuration fails naming the variable',
    (name) => {
      let error: unknown;
      try {
        loadRuntimeConfig({ CONFHUB_DATA_DIR: tempDir(), CONFHUB_ENVIRONMENT: name });
      } catch (caught) {
        error = caught;
      }
      expect(isAppError(error)).toBe(true);
      expect((error as Error).message).toContain('CONFHUB_ENVIRONMENT');
    },
  );

  it('when confhub is started with a bad CONFHUB_ENVIRONMENT, then it exits naming the variable', async () => {
    const failed = await startProcess({ CONFHUB_DATA_DIR: tempDir(), CONFHUB_ENVIRONMENT: 'Not Valid' }).then(
      () => undefined,
      (error: Error) => error,
    );
    expect(failed?.message).toMatch(/exited with [1-9]/);
    expect(failed?.message).toContain('CONFHUB_ENVIRONMENT');
  });

  it('when a hand edit adds an overlay with a bad environment name (or of an env section, or of an overlay), then the source is invalid naming it and its line; fixing it brings confhub back', async () => {
    ch = await startConfhub({ systemIni: SYSTEM_INI, env: { CONFHUB_ENVIRONMENT: 'staging' } });
    await ready(ch);
    const good = ch.readConfig();
    for (const [header, reason] of [
      ['[cockpit@Prod]', 'an environment name is'],
      ['[cockpit@staging@x]', 'one @'],
      ['[env:web@prod]', 'environment variables take no overlays'],
      ['[@prod]', 'names its section before the @'],
    ] as const) {
      const edited = `${good}\n${header}\nport = 9191\n`;
      writeFileSync(ch.config.configPath, edited);
      const headerLine = edited.split('\n').indexOf(header) + 1;
      const c = ch;
      await eventually(`${header} is reported`, async () => (await fetch(`${c.url}/readyz`)).status === 503);
      const status = (await call(ch, '/api/v1/sync/status')).body as { source: { valid: boolean; error: { details: string; line: number } } };
      expect(status.source.valid, header).toBe(false);
      expect(status.source.error.details, header).toContain(header);
      expect(status.source.error.details, header).toContain(reason);
      expect(status.source.error.line, header).toBe(headerLine);
      writeFileSync(ch.config.configPath, good);
      await eventually('ready again', async () => (await fetch(`${c.url}/readyz`)).status === 200);
    }
  });
});
