/**
 * /api/v1/templates on a whole confhub: the shipped templates and an administrator's own, a
 * preview that writes nothing and shows the keys, the config.ini diff, the values with their
 * provenance and the targets it would change, and an apply that is one write, all or nothing,
 * audited and committed with the template's name.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MASK } from '../../src/core/mask.js';
import { revisionOf } from '../../src/settings/revision.js';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';

let ch: Confhub | undefined;
afterEach(async () => {
  await ch?.close();
  ch = undefined;
});

const SYSTEM_INI =
  '[sync]\ndebounce_min_ms = 30\noutput_roots = @DIR@\n\n[target:proxy]\nsections = domain, nginx_proxy_manager\nformat = ini\noutput = @DIR@/out/proxy.ini\nreload = none\nhealth = none\n\n[target:console]\nsections = console\nformat = ini\noutput = @DIR@/out/console.ini\nreload = none\nhealth = none\n';

const CUSTOM = `[template]
title = Console port
description = Moves the console to another port.

[variable:port]
type = port
required = true
description = The port

[variable:token]
type = secret
default = s3cret-default-Value
description = A secret default, never shown

[console]
port = {{ port }}

[nginx_proxy_manager]
user_pwd = {{ token }}
`;

async function start(files: Record<string, string> = {}): Promise<Confhub> {
  ch = await startConfhub({ systemIni: SYSTEM_INI, files });
  await eventually('ready', async () => (await fetch(`${ch!.url}/readyz`)).status === 200, 30_000);
  return ch;
}

async function json(c: Confhub, path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await c.api(path, init);
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const post = (c: Confhub, path: string, body: unknown) => json(c, path, { method: 'POST', body: JSON.stringify(body) });
const HTTPS = { domain: 'example.com', certificate: '/data/certs/example.com.crt', certificate_key: '/data/certs/example.com.key' };

async function historyTop(c: Confhub): Promise<Record<string, unknown> | undefined> {
  return ((await json(c, '/api/v1/settings/history?limit=1')).body.commits as Record<string, unknown>[])[0];
}

interface AuditRow {
  action: string;
  section: string;
  key: string;
  result: string;
}

function templateRows({ body }: { body: Record<string, unknown> }): AuditRow[] {
  return (body.entries as AuditRow[]).filter((row) => row.action === 'settings.template');
}

async function auditCount(c: Confhub): Promise<number> {
  return ((await json(c, '/api/v1/audit?limit=500')).body.entries as unknown[]).length;
}

describe('configuration templates through the API', () => {
  it('when listed, then the shipped ones and the administrator’s own show with their origin, a secret default masked, a broken file named', async () => {
    const c = await start({ 'templates/console-port.ini': CUSTOM, 'templates/broken.ini': '[template]\ntitle = x\n' });
    const { body } = await json(c, '/api/v1/templates');
    const templates = body.templates as { name: string; origin: string; variables: { name: string; default: string | null }[] }[];
    expect(templates.map((t) => [t.name, t.origin]).sort()).toEqual([
      ['console-port', 'custom'],
      ['local-only', 'shipped'],
      ['public-https', 'shipped'],
      ['registry-mirror', 'shipped'],
    ]);
    expect(templates.find((t) => t.name === 'console-port')!.variables.find((v) => v.name === 'token')!.default).toBe(MASK);
    expect(JSON.stringify(body)).not.toContain('s3cret-default-Value');
    expect(body.problems).toEqual([{ file: 'templates/broken.ini', details: expect.stringContaining('broken.ini') }]);
    expect(JSON.stringify(body.problems)).not.toContain(c.dir);
    const one = await json(c, '/api/v1/templates/public-https');
    expect(one.body).toMatchObject({ name: 'public-https', origin: 'shipped', sections: { domain: { wildcard_domain: '*.{{ domain }}' } } });
    expect((await json(c, '/api/v1/templates/nope')).body).toMatchObject({ code: 'TEMPLATE_NOT_FOUND' });
  }, 60_000);

  it('when previewed, then it shows the keys, the diff, the values with provenance and the targets it changes, and writes nothing', async () => {
    const c = await start();
    const before = readFileSync(c.config.configPath);
    // The start's revision is committed by the worker after /readyz: the preview is measured after it.
    await eventually('the start is committed', async () => (await historyTop(c))?.revision === revisionOf(before.toString('utf8')), 30_000);
    const commit = (await historyTop(c))!.id;
    const audits = await auditCount(c);
    const outputs = readFileSync(join(c.dir, 'out', 'proxy.ini'));
    const { status, body } = await post(c, '/api/v1/templates/public-https/preview', { variables: HTTPS });
    expect(status).toBe(200);
    expect(body).toMatchObject({ template: 'public-https', environment: null, valid: true, unresolved: [], errors: [] });
    expect(body.changes).toEqual(
      expect.arrayContaining([
        { key: 'domain.wildcard_domain', before: '', after: '*.example.com', change: 'changed' },
        { key: 'nginx_proxy_manager.listen_port', before: '9000', after: '443', change: 'changed' },
      ]),
    );
    expect(body.diff).toContain('+wildcard_domain = *.example.com');
    // The diff masks the proxy's password, which config.ini holds.
    expect(body.diff).toContain(`user_pwd = ${MASK}`);
    expect(body.settings).toMatchObject({
      domain: { wildcard_domain: { value: '*.example.com', source: 'config.ini [domain]' } },
      nginx_proxy_manager: { listen_port: { value: 443 }, user_pwd: { value: MASK } },
    });
    expect(body.targets).toEqual([
      expect.objectContaining({ target: 'proxy', change: 'update', service: null, diff: expect.stringContaining('*.example.com') }),
    ]);
    // Pure: the file, the history, the audit log and the rendered files are as they were.
    expect(readFileSync(c.config.configPath).equals(before)).toBe(true);
    expect((await historyTop(c))!.id).toBe(commit);
    expect(await auditCount(c)).toBe(audits);
    expect(readFileSync(join(c.dir, 'out', 'proxy.ini')).equals(outputs)).toBe(true);
  }, 60_000);

  it('when a variable is missing or bad, then the preview says which and an apply is refused with nothing written', async () => {
    const c = await start();
    const before = readFileSync(c.config.configPath);
    const missing = await post(c, '/api/v1/templates/public-https/preview', { variables: { domain: 'example.com' } });
    expect(missing.body).toMatchObject({ valid: false, unresolved: ['certificate', 'certificate_key'], targets: [], diff: '' });
    const bad = await post(c, '/api/v1/templates/public-https/preview', { variables: { ...HTTPS, domain: 'not a domain', nope: 1 } });
    expect((bad.body.errors as { field: string; code: string }[]).map((e) => [e.field, e.code]).sort()).toEqual([
      ['variable.domain', 'INVALID_HOSTNAME'],
      ['variable.nope', 'UNKNOWN_VARIABLE'],
    ]);
    const refused = await post(c, '/api/v1/templates/public-https/apply', { variables: { ...HTTPS, https_port: 70000 } });
    expect(refused).toMatchObject({ status: 400, body: { code: 'VALIDATION_FAILED' } });
    expect(refused.body.details).toContain('variable.https_port');
    const unresolved = await post(c, '/api/v1/templates/public-https/apply', { variables: { domain: 'example.com' } });
    expect(unresolved.body).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ field: 'variable.certificate', code: 'REQUIRED' }, { field: 'variable.certificate_key' }],
    });
    expect((await post(c, '/api/v1/templates/public-https/apply', { variables: HTTPS, more: 1 })).body).toMatchObject({ code: 'INVALID_REQUEST' });
    expect(readFileSync(c.config.configPath).equals(before)).toBe(true);
    const audit = templateRows(await json(c, '/api/v1/audit?limit=500'));
    expect(audit.map((row) => [row.result, row.section])).toEqual([
      ['refused', 'template:public-https'],
      ['refused', 'template:public-https'],
      ['refused', 'template:public-https'],
    ]);
  }, 60_000);

  it('when a secret variable lands in a key config.ini does not call secret, or replaces a password the services hold, then no answer shows either', async () => {
    const MIRROR = `[template]\ntitle = Private mirror\ndescription = A mirror behind credentials.\n\n[variable:mirror]\ntype = url_list\nsecret = true\nrequired = true\ndescription = The mirror URL with its credentials\n\n[docker_mirror]\nurl = {{ mirror }}\n`;
    const PASSWORD = `[template]\ntitle = Proxy password\ndescription = Sets the proxy password.\n\n[variable:pw]\ntype = secret\nrequired = true\ndescription = The password\n\n[nginx_proxy_manager]\nuser_pwd = {{ pw }}\n`;
    const c = await start({ 'templates/private-mirror.ini': MIRROR, 'templates/proxy-password.ini': PASSWORD });
    const url = 'https://user:HUNTER2TOKEN@mirror.example.com';
    const preview = await post(c, '/api/v1/templates/private-mirror/preview', { variables: { mirror: url } });
    expect(preview.body).toMatchObject({
      valid: true,
      changes: [{ key: 'docker_mirror.url', after: MASK }],
      settings: { docker_mirror: { url: { value: MASK } } },
    });
    expect(JSON.stringify(preview.body)).not.toContain('HUNTER2TOKEN');
    // A value the key's kind refuses is not quoted either.
    const refused = await post(c, '/api/v1/templates/private-mirror/preview', { variables: { mirror: 'HUNTER2TOKEN' } });
    expect(refused.body).toMatchObject({ valid: false });
    expect(JSON.stringify(refused.body)).not.toContain('HUNTER2TOKEN');
    // Refused for what the key's kind takes: the apply's error does not quote it either.
    const refusedApply = await post(c, '/api/v1/templates/private-mirror/apply', { variables: { mirror: 'HUNTER2TOKEN' } });
    expect(refusedApply.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(JSON.stringify(refusedApply.body)).not.toContain('HUNTER2TOKEN');
    const applied = await post(c, '/api/v1/templates/private-mirror/apply', { variables: { mirror: url } });
    expect(applied.status).toBe(200);
    expect(JSON.stringify(applied.body)).not.toContain('HUNTER2TOKEN');
    // The audit log masks it as a secret's value, though config.ini holds the key in plain text.
    expect(JSON.stringify((await json(c, '/api/v1/audit?limit=500')).body)).not.toContain('HUNTER2TOKEN');
    // The proxy's file holds today's password: the preview of a new one masks both.
    const today = /^user_pwd=(\S+)$/m.exec(readFileSync(join(c.dir, 'out', 'proxy.ini'), 'utf8'))![1]!;
    expect(today.length).toBeGreaterThan(8);
    const pw = await post(c, '/api/v1/templates/proxy-password/preview', { variables: { pw: 'N3w-Proxy-Passw0rd!x' } });
    expect(pw.body).toMatchObject({ valid: true, targets: [expect.objectContaining({ target: 'proxy' })] });
    expect(JSON.stringify(pw.body)).not.toContain(today);
    expect(JSON.stringify(pw.body)).not.toContain('N3w-Proxy-Passw0rd!x');
  }, 60_000);

  it('when a template file does not read, then using it answers TEMPLATE_INVALID naming the line', async () => {
    const c = await start({ 'templates/broken.ini': '[template]\ntitle = x\ndescription = y\n\n[console]\nport = {{ nope }}\n' });
    const { status, body } = await post(c, '/api/v1/templates/broken/preview', {});
    expect(status).toBe(500);
    expect(body).toMatchObject({ code: 'TEMPLATE_INVALID', details: expect.stringMatching(/broken\.ini line 6/) });
    expect((await json(c, '/api/v1/templates/broken')).body).toMatchObject({ code: 'TEMPLATE_INVALID' });
  }, 60_000);

  it('when the result of a template fails validation as a whole, then nothing of it is written (all or nothing)', async () => {
    const c = await start({ 'templates/console-port.ini': CUSTOM });
    const before = readFileSync(c.config.configPath);
    // Port 9090 is cockpit's: the console on it conflicts, though each value alone is valid.
    const preview = await post(c, '/api/v1/templates/console-port/preview', { variables: { port: 9090 } });
    expect(preview.body).toMatchObject({ valid: false, errors: expect.arrayContaining([expect.objectContaining({ code: 'PORT_CONFLICT' })]) });
    const applied = await post(c, '/api/v1/templates/console-port/apply', { variables: { port: 9090 } });
    expect(applied.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(readFileSync(c.config.configPath).equals(before)).toBe(true);
  }, 60_000);

  it('when applied, then one write sets every key, the targets get it, the audit log and the history name the template', async () => {
    const c = await start();
    const { status, body } = await post(c, '/api/v1/templates/public-https/apply?wait=true', { variables: HTTPS });
    expect(status).toBe(200);
    expect(body).toMatchObject({ template: 'public-https', environment: null, sync: { outcome: 'applied' } });
    expect(c.readConfig()).toContain('wildcard_domain = *.example.com');
    expect(c.readConfig()).toContain('ssl_cert = /data/certs/example.com.crt');
    expect(readFileSync(join(c.dir, 'out', 'proxy.ini'), 'utf8')).toContain('*.example.com');
    await eventually('the commit', async () => (await historyTop(c))?.source === 'template');
    const top = await historyTop(c);
    expect(top).toMatchObject({ source: 'template', template: 'public-https', summary: expect.stringMatching(/^template public-https: /) });
    const audit = templateRows(await json(c, '/api/v1/audit?limit=500'));
    expect(audit.map((row) => row.key).sort()).toEqual(['listen_port', 'ssl_cert', 'ssl_key', 'wildcard_domain']);
    expect(new Set(audit.map((row) => row.result))).toEqual(new Set(['applied']));
  }, 60_000);

  it('when applied to an environment, then only its overlays gain the keys and the base sections stay', async () => {
    const c = await start();
    const { body } = await post(c, '/api/v1/templates/registry-mirror/apply', {
      variables: { mirrors: ['https://mirror.example.com'] },
      environment: 'staging',
    });
    expect(body).toMatchObject({
      environment: 'staging',
      changes: [{ key: 'docker_mirror@staging.url', before: null, after: 'https://mirror.example.com', change: 'added' }],
    });
    expect(c.readConfig()).toMatch(/\[docker_mirror@staging\]\nurl = https:\/\/mirror\.example\.com\n/);
    expect(c.readConfig()).toMatch(/\[docker_mirror\]\nurl =\n/);
    expect((await json(c, '/api/v1/settings/docker_mirror?environment=staging')).body).toEqual({ url: 'https://mirror.example.com' });
    expect((await json(c, '/api/v1/settings/docker_mirror')).body).toEqual({ url: '' });
  }, 60_000);

  it('when each shipped template is applied to the shipped config.ini, then it is accepted', async () => {
    const c = await start();
    const variables: Record<string, Record<string, unknown>> = {
      'public-https': HTTPS,
      'local-only': {},
      'registry-mirror': { mirrors: ['https://mirror.example.com', 'https://other.example.com'] },
    };
    for (const [name, given] of Object.entries(variables)) {
      const preview = await post(c, `/api/v1/templates/${name}/preview`, { variables: given });
      expect(preview.body, name).toMatchObject({ valid: true, errors: [] });
      expect((await post(c, `/api/v1/templates/${name}/apply?wait=true`, { variables: given })).status, name).toBe(200);
    }
  }, 60_000);
});
