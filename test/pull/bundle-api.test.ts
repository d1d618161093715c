/**
 * A target's bundle on a whole confhub with its sync worker: the files are those the worker wrote
 * (bytes and modes), also while a reload restarts the service that pulls and after a template
 * changed on disk; the MANIFEST says them, the ETag holds the revision, and tokens read only their
 * own target's bundle.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Confhub, eventually, startConfhub } from '../support/confhub.js';

let ch: Confhub;
const revisionNow = () => createHash('sha256').update(ch.readConfig()).digest('hex');
const out = (name: string) => join(ch.dir, 'out', 'web', name);
const FILES = ['app.ini', 'conf/app.json', 'site.conf', '.env'];

beforeAll(async () => {
  ch = await startConfhub({
    systemIni: [
      '[sync]\noutput_roots = @DIR@\ndebounce_min_ms = 30',
      '[target:web]\nsections = cockpit, gitea\nformat = ini\noutput = @DIR@/out/web/app.ini\nmode = 0640\nreload = none\nhealth = none',
      '[target:web-json]\nsections = cockpit\nformat = json\noutput = @DIR@/out/web/conf/app.json\nreload = none\nhealth = none\npart_of = web',
      '[target:web-site]\nsections = cockpit\nformat = template\ntemplate = site.conf.tmpl\noutput = @DIR@/out/web/site.conf\nmode = 0644\nreload = none\nhealth = none\npart_of = web',
      '[target:web-env]\nenv = global\nformat = env\noutput = @DIR@/out/web/.env\nreload = none\nhealth = none\npart_of = web',
      '[target:other]\nsections = cockpit\nformat = ini\noutput = @DIR@/out/other/other.ini\nreload = none\nhealth = none',
    ].join('\n\n'),
    files: { 'site.conf.tmpl': 'listen {{ cockpit.port }};\n' },
  });
  await eventually('every target applied', async () => {
    const status = (await (await ch.api('/api/v1/sync/status')).json()) as { targets: { state: string }[] };
    return status.targets.every((t) => t.state === 'in_sync');
  });
});
afterAll(async () => ch?.close());

async function token(target: string): Promise<{ id: string; token: string }> {
  const res = await ch.api(`/api/v1/targets/${target}/tokens`, { method: 'POST', body: JSON.stringify({ description: `${target} container` }) });
  expect(res.status).toBe(201);
  expect(res.headers.get('cache-control')).toBe('no-store');
  return (await res.json()) as { id: string; token: string };
}

const bundle = (target: string, headers: Record<string, string>) => fetch(`${ch.url}/api/v1/targets/${target}/bundle`, { headers });

function extract(archive: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'confhub-bundle-'));
  writeFileSync(join(dir, 'b.tar'), archive);
  execFileSync('tar', ['-xf', join(dir, 'b.tar'), '-C', dir]);
  return dir;
}

describe('a target bundle', () => {
  it('when a token of the target reads its bundle, then the files are what the worker wrote, with their modes, as MANIFEST says, and the ETag is the revision', async () => {
    const { token: secret } = await token('web');
    const res = await bundle('web', { authorization: `Bearer ${secret}` });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('etag')).toMatch(new RegExp(`^"${revisionNow()}\\+[0-9a-f]{12}"$`));
    const dir = extract(Buffer.from(await res.arrayBuffer()));
    try {
      const manifest = readFileSync(join(dir, 'MANIFEST'), 'utf8').trimEnd().split('\n');
      expect(manifest.map((line) => line.split(' ').slice(2).join(' '))).toEqual(FILES);
      for (const [i, name] of FILES.entries()) {
        const onDisk = readFileSync(out(name));
        const inBundle = readFileSync(join(dir, 'files', name));
        expect(inBundle.equals(onDisk), name).toBe(true);
        const mode = (statSync(out(name)).mode & 0o7777).toString(8).padStart(4, '0');
        expect(manifest[i]).toBe(`${createHash('sha256').update(onDisk).digest('hex')} ${mode} ${name}`);
        expect(statSync(join(dir, 'files', name)).mode & 0o7777).toBe(statSync(out(name)).mode & 0o7777);
      }
      expect(readFileSync(join(dir, 'REVISION'), 'utf8')).toBe(`${revisionNow()}\n`);
      expect(readFileSync(join(dir, 'files', 'site.conf'), 'utf8')).toBe('listen 9090;\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const again = await bundle('web', { authorization: `Bearer ${secret}`, 'if-none-match': res.headers.get('etag')! });
    expect(again.status).toBe(304);
    expect(again.headers.get('cache-control')).toBe('no-store');
  });

  it('when config.ini changes and the worker applied it, then the bundle is of the new revision and the old ETag no longer matches', async () => {
    const before = await bundle('web', { 'x-api-key': ch.apiKey });
    const etag = before.headers.get('etag')!;
    expect((await ch.api('/api/v1/settings/cockpit?wait=true', { method: 'PUT', body: JSON.stringify({ port: 9444 }) })).status).toBe(200);
    const after = await bundle('web', { 'x-api-key': ch.apiKey, 'if-none-match': etag });
    expect(after.status).toBe(200);
    expect(after.headers.get('etag')).toMatch(new RegExp(`^"${revisionNow()}\\+[0-9a-f]{12}"$`));
    const dir = extract(Buffer.from(await after.arrayBuffer()));
    try {
      expect(readFileSync(join(dir, 'files', 'site.conf'), 'utf8')).toBe('listen 9444;\n');
      expect(readFileSync(join(dir, 'files', 'site.conf'))).toEqual(readFileSync(out('site.conf')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("when a token is of another target, revoked, or made up, then the bundle and the check-in are refused, and the key's own refusals stand", async () => {
    const web = await token('web');
    const other = await token('other');
    expect((await bundle('other', { authorization: `Bearer ${other.token}` })).status).toBe(200);
    for (const [target, headers] of [
      ['other', { authorization: `Bearer ${web.token}` }],
      ['web', { authorization: `Bearer ${other.token}` }],
      ['web', { authorization: `Bearer ${web.token.slice(0, -1)}${web.token.endsWith('A') ? 'B' : 'A'}` }],
      ['web', { authorization: 'Bearer cht_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
      ['nope', { authorization: `Bearer ${web.token}` }],
    ] as const) {
      const res = await bundle(target, headers);
      expect(res.status, `${target} ${headers.authorization}`).toBe(401);
      const body = (await res.json()) as { code: string; details: string };
      expect(body.code).toBe('TOKEN_INVALID');
      expect(JSON.stringify(body)).not.toContain(web.token.slice(21));
    }
    const checkin = (headers: Record<string, string>) =>
      fetch(`${ch.url}/api/v1/targets/web/checkin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ revision: revisionNow(), instance: 'web-1' }),
      });
    expect((await checkin({ authorization: `Bearer ${other.token}` })).status).toBe(401);
    expect((await checkin({ authorization: `Bearer ${web.token}` })).status).toBe(200);
    // Revoked: refused from the next request on.
    expect((await ch.api(`/api/v1/targets/web/tokens/${web.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await bundle('web', { authorization: `Bearer ${web.token}` })).status).toBe(401);
    expect((await checkin({ authorization: `Bearer ${web.token}` })).status).toBe(401);
    // No credential at all, or a wrong key: the API's own answers.
    expect(((await (await bundle('web', {})).json()) as { code: string }).code).toBe('API_KEY_MISSING');
    expect(((await (await bundle('web', { 'x-api-key': 'x'.repeat(40) })).json()) as { code: string }).code).toBe('API_KEY_INVALID');
    // A token is no key: the rest of the API refuses it.
    expect((await fetch(`${ch.url}/api/v1/settings`, { headers: { authorization: `Bearer ${other.token}` } })).status).toBe(401);
    expect((await fetch(`${ch.url}/api/v1/targets/other/tokens`, { headers: { authorization: `Bearer ${other.token}` } })).status).toBe(401);
  });

  it('when tokens are made, then the database keeps only digests, the list shows no token, and reads, makes and revocations are audited', async () => {
    const made = await token('other');
    const gone = await token('other');
    expect((await ch.api(`/api/v1/targets/other/tokens/${gone.id}`, { method: 'DELETE' })).status).toBe(200);
    // A HEAD sends no files: it is not a read of the secrets.
    const head = await fetch(`${ch.url}/api/v1/targets/other/bundle`, { method: 'HEAD', headers: { authorization: `Bearer ${made.token}` } });
    expect(head.status).toBe(200);
    const list = (await (await ch.api('/api/v1/targets/other/tokens')).json()) as { tokens: { id: string }[] };
    expect(JSON.stringify(list)).not.toContain(made.token.slice(21));
    expect(list.tokens.map((t) => t.id)).toContain(made.id);
    await bundle('other', { authorization: `Bearer ${made.token}` });
    const db = new Database(join(ch.config.dataDir, 'confhub.db'), { readonly: true });
    try {
      const dump = JSON.stringify(db.prepare('SELECT * FROM target_tokens').all());
      expect(dump).not.toContain(made.token.slice(21));
      const rows = db.prepare("SELECT action, section, key, actor_id FROM audit_log WHERE action LIKE 'target.%' ORDER BY id").all() as Record<
        string,
        string
      >[];
      expect(rows).toContainEqual({ action: 'target.token.create', section: 'target:other', key: made.id, actor_id: expect.stringMatching(/^key:/) });
      expect(rows.filter((row) => row.action === 'target.bundle' && row.actor_id === `token:${made.id}`)).toEqual([
        { action: 'target.bundle', section: 'target:other', key: null, actor_id: `token:${made.id}` },
      ]);
      expect(rows).toContainEqual({ action: 'target.token.revoke', section: 'target:other', key: gone.id, actor_id: expect.stringMatching(/^key:/) });
    } finally {
      db.close();
    }
    const refused = await ch.api('/api/v1/targets/other/tokens', { method: 'POST', body: JSON.stringify({ description: 'x'.repeat(201) }) });
    expect(((await refused.json()) as { code: string }).code).toBe('VALIDATION_FAILED');
  });

  it('when instances check in, then /targets, /sync/status and /init/status show each with whether it has the current revision', async () => {
    const web = await token('web');
    const checkin = (body: unknown) =>
      fetch(`${ch.url}/api/v1/targets/web/checkin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${web.token}` },
        body: JSON.stringify(body),
      });
    const now = revisionNow();
    expect(await (await checkin({ revision: now, instance: 'web-a' })).json()).toMatchObject({
      target: 'web',
      instance: 'web-a',
      revision: now,
      current: true,
    });
    expect(await (await checkin({ revision: 'f'.repeat(64), instance: 'web-b' })).json()).toMatchObject({ current: false });
    // No instance named: the token stands for it.
    expect(await (await checkin({ revision: now })).json()).toMatchObject({ instance: `token-${web.id}` });
    for (const body of [{ revision: 'a b' }, { revision: now, instance: 'a/b' }, { revision: now, extra: 1 }, {}]) {
      const res = await checkin(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('VALIDATION_FAILED');
    }
    const target = (await (await ch.api('/api/v1/targets/web')).json()) as { instances: { instance: string; current: boolean }[] };
    expect(target.instances).toEqual(
      expect.arrayContaining([expect.objectContaining({ instance: 'web-a', current: true }), expect.objectContaining({ instance: 'web-b', current: false })]),
    );
    const sync = (await (await ch.api('/api/v1/sync/status')).json()) as { targets: { target: string; instances: { instance: string }[] }[] };
    expect(sync.targets.find((t) => t.target === 'web')!.instances.map((i) => i.instance)).toEqual(expect.arrayContaining(['web-a', 'web-b']));
    expect(sync.targets.find((t) => t.target === 'other')!.instances).toEqual([]);
    const init = (await (await ch.api('/api/v1/init/status')).json()) as { targets: { target: string; instances: { instance: string }[] }[] };
    expect(init.targets.find((t) => t.target === 'web')!.instances.map((i) => i.instance)).toEqual(expect.arrayContaining(['web-a', 'web-b']));
    const list = (await (await ch.api('/api/v1/targets')).json()) as {
      targets: { name: string; partOf: string | null; bundle: { files: { path: string }[] } }[];
    };
    expect(list.targets.map((t) => [t.name, t.partOf])).toEqual([
      ['web', null],
      ['web-json', 'web'],
      ['web-site', 'web'],
      ['web-env', 'web'],
      ['other', null],
    ]);
    expect(list.targets[0]!.bundle.files.map((f) => f.path)).toEqual(FILES);
    expect(list.targets[1]!.bundle.files.map((f) => f.path)).toEqual(['app.json']);
  });

  it('when the init script is asked for, then it is served without a key, as the shipped file', async () => {
    const res = await fetch(`${ch.url}/api/v1/init.sh`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/x-shellscript/);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(readFileSync(new URL('../../init/confhub-init.sh', import.meta.url)));
  });
});

describe('refused tokens and the failed-authentication limit', () => {
  it('when a container keeps presenting a revoked token, then the address is not locked out; wrong keys still are', async () => {
    const limited = await startConfhub({
      systemIni:
        '[sync]\noutput_roots = @DIR@\n\n[target:web]\nsections = cockpit\nformat = ini\noutput = @DIR@/out/web/app.ini\nreload = none\nhealth = none\n',
      env: { CONFHUB_AUTH_FAILURE_LIMIT: '5' },
    });
    try {
      const bearer = { authorization: 'Bearer cht_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };
      for (let i = 0; i < 8; i++) {
        const res = await fetch(`${limited.url}/api/v1/targets/web/bundle`, { headers: bearer });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      }
      expect((await limited.api('/api/v1/settings')).status).toBe(200);
      for (let i = 0; i < 6; i++) await fetch(`${limited.url}/api/v1/targets/web/bundle`, { headers: { 'x-api-key': 'x'.repeat(40) } });
      expect((await limited.api('/api/v1/settings')).status).toBe(429);
    } finally {
      await limited.close();
    }
  });
});

describe('a bundle while the worker is at work', () => {
  let hooked: Confhub;
  let hook: Server;
  /** What the bundle held when the worker's reload reached the service (a service that pulls when restarted). */
  const seenAtReload: string[] = [];
  /** The next reload answers 500 (after pulling), as a service that fails to come up. */
  let failNext = false;

  beforeAll(async () => {
    hook = createServer((req, res) => {
      req.resume();
      void (async () => {
        const answer = await fetch(`${hooked.url}/api/v1/targets/hooked/bundle`, { headers: { 'x-api-key': hooked.apiKey } });
        if (answer.status !== 200) {
          seenAtReload.push(`answered ${answer.status}`);
          return;
        }
        const dir = extract(Buffer.from(await answer.arrayBuffer()));
        seenAtReload.push(readFileSync(join(dir, 'files', 'hooked.conf'), 'utf8'));
        rmSync(dir, { recursive: true, force: true });
      })().finally(() => {
        if (failNext) {
          failNext = false;
          res.statusCode = 500;
        }
        res.end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/reload`;
    hooked = await startConfhub({
      systemIni: [
        '[sync]\noutput_roots = @DIR@\ndebounce_min_ms = 30',
        `[target:hooked]\nsections = cockpit\nformat = template\ntemplate = hooked.tmpl\noutput = @DIR@/out/hooked/hooked.conf\nreload = http:POST:${hookUrl}\nhealth = none`,
      ].join('\n\n'),
      files: { 'hooked.tmpl': 'port {{ cockpit.port }}\n' },
    });
    await eventually('applied', async () => {
      const status = (await (await hooked.api('/api/v1/sync/status')).json()) as { targets: { state: string }[] };
      return status.targets.every((t) => t.state === 'in_sync');
    });
  });
  afterAll(async () => {
    await hooked?.close();
    await new Promise<void>((resolve) => hook.close(() => resolve()));
  });

  const onDisk = () => readFileSync(join(hooked.dir, 'out', 'hooked', 'hooked.conf'), 'utf8');
  const bundleOf = async (headers: Record<string, string> = {}) => {
    const res = await fetch(`${hooked.url}/api/v1/targets/hooked/bundle`, { headers: { 'x-api-key': hooked.apiKey, ...headers } });
    if (res.status !== 200) return { status: res.status, etag: res.headers.get('etag'), text: '' };
    const dir = extract(Buffer.from(await res.arrayBuffer()));
    const text = readFileSync(join(dir, 'files', 'hooked.conf'), 'utf8');
    rmSync(dir, { recursive: true, force: true });
    return { status: res.status, etag: res.headers.get('etag'), text };
  };

  it("when the worker's reload reaches the service, then a pull at that moment gets the new files, not the ones being replaced", async () => {
    expect((await hooked.api('/api/v1/settings/cockpit?wait=true', { method: 'PUT', body: JSON.stringify({ port: 9555 }) })).status).toBe(200);
    expect(seenAtReload.at(-1)).toBe('port 9555\n');
  });

  it('when the reload fails and the files are put back, then a pull during the reload of the put-back files gets those', async () => {
    failNext = true;
    const answer = await hooked.api('/api/v1/settings/cockpit?wait=true', { method: 'PUT', body: JSON.stringify({ port: 9666 }) });
    expect(answer.status).toBe(502);
    expect(seenAtReload.slice(-2)).toEqual(['port 9666\n', 'port 9555\n']);
    await eventually('config.ini is restored', async () => {
      const settings = (await (await hooked.api('/api/v1/settings/cockpit')).json()) as { port: number };
      return settings.port === 9555;
    });
    expect((await bundleOf()).text).toBe('port 9555\n');
  });

  it('when the template changes on disk, then the bundle keeps what the worker wrote until the worker renders it again, and its ETag changes with the files', async () => {
    const before = await bundleOf();
    expect(before.text).toBe(onDisk());
    writeFileSync(join(hooked.config.configDir, 'hooked.tmpl'), 'listen {{ cockpit.port }}\n');
    const still = await bundleOf({ 'if-none-match': before.etag! });
    expect(still.status).toBe(304);
    expect((await bundleOf()).text).toBe(onDisk());
    expect((await hooked.api('/api/v1/settings/reload?force=true&wait=true', { method: 'POST' })).status).toBe(200);
    const after = await bundleOf({ 'if-none-match': before.etag! });
    expect(after.status).toBe(200);
    expect(after.text).toBe('listen 9555\n');
    expect(after.text).toBe(onDisk());
    expect(after.etag).not.toBe(before.etag);
    // The revision is the same: only the digest part of the ETag moved.
    expect(after.etag!.split('+')[0]).toBe(before.etag!.split('+')[0]);
  });

  it('when confhub restarts, then the bundle is served again as soon as it is ready, with the same ETag', async () => {
    const before = await bundleOf();
    await hooked.server.close();
    hooked = await startConfhub({ systemIni: '', restartIn: hooked.dir });
    await eventually('ready', async () => (await fetch(`${hooked.url}/readyz`)).status === 200);
    const after = await bundleOf();
    expect(after.status).toBe(200);
    expect(after.etag).toBe(before.etag);
    expect(after.text).toBe(before.text);
  });
});
