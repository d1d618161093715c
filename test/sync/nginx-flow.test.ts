/**
 * A real nginx under the suite's supervisord, configured by confhub through the whole path (API
 * write → worker → reconcile → check → write → HUP through supervisord → HTTP health):
 *
 * - `nginx.conf` is a `template` target checked on its staged file (`nginx -t -c {file}`), with
 *   its port in config.ini and a health URL at that port (`{{ web.port }}`);
 * - `conf.d/extra.conf` is an include, which `nginx -t` cannot check alone: `check_installed`
 *   checks the whole configuration once the new file is in place, before the HUP.
 *
 * nginx keeps running its old configuration when a HUP brings one it cannot apply (a port it
 * cannot bind), and its old workers answer for a moment after every HUP: only a health check
 * at the new address, held over a window, tells whether the new configuration runs.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';
import { findProgram, SKIP_SUPERVISORD, startSupervisord, type PrivateSupervisord } from '../support/engines.js';
import { freePort } from '../support/ports.js';

const NGINX = findProgram('nginx');
const skip = SKIP_SUPERVISORD ?? (NGINX === undefined ? 'nginx is not installed (Debian: apt-get install nginx); skipping the nginx sync tests' : undefined);
if (skip) console.warn(skip);

const NGINX_TEMPLATE = `worker_processes 1;
pid @NGX@/nginx.pid;
error_log @NGX@/error.log notice;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path @NGX@/tmp/body;
  proxy_temp_path @NGX@/tmp/proxy;
  fastcgi_temp_path @NGX@/tmp/fastcgi;
  uwsgi_temp_path @NGX@/tmp/uwsgi;
  scgi_temp_path @NGX@/tmp/scgi;
  server {
    listen 127.0.0.1:{{ web.port }};
    location = / { return 200 "{{ web.greeting }}\\n"; }
    include @NGX@/conf.d/*.conf;
  }
}
`;
const EXTRA_TEMPLATE = 'location = /extra { return 200 "{{ extra.text }}\\n"; }\n';

interface SyncBody {
  code?: string;
  details?: string;
  sync: {
    outcome: string;
    targets: { target: string; changed: boolean; reloaded: boolean; healthy: boolean | null; state: string; error: { code: string } | null }[];
  };
}

/** The body nginx serves at a URL, or the reason nothing answered. */
async function serves(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return `${res.status} ${await res.text()}`;
  } catch (error) {
    return `down: ${(error as { cause?: { code?: string } }).cause?.code ?? String(error)}`;
  }
}

describe.skipIf(skip !== undefined)('sync of a real nginx under supervisord', () => {
  let dir: string;
  let ngx: string;
  let supervisord: PrivateSupervisord;
  let ch: Confhub;
  let port1: number;
  let port2: number;

  const errorLog = (): string => readFileSync(join(ngx, 'error.log'), 'utf8');
  const hups = (): number =>
    errorLog()
      .split('\n')
      .filter((line) => line.includes('signal 1 (SIGHUP) received')).length;
  const put = async (section: string, key: string, value: string): Promise<{ status: number; body: SyncBody }> => {
    const res = await ch.api(`/api/v1/settings/${section}?key=${key}&value=${encodeURIComponent(value)}&wait=true`, { method: 'PUT' });
    return { status: res.status, body: (await res.json()) as SyncBody };
  };
  const target = (body: SyncBody, name: string) => body.sync.targets.find((t) => t.target === name);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'confhub-nginx-'));
    ngx = join(dir, 'nginx');
    for (const sub of ['conf.d', 'tmp']) mkdirSync(join(ngx, sub), { recursive: true });
    port1 = await freePort();
    port2 = await freePort();
    const nginxTemplate = NGINX_TEMPLATE.replaceAll('@NGX@', ngx);
    // nginx starts on the files confhub would render, so the first reconcile finds them current.
    writeFileSync(join(ngx, 'nginx.conf'), nginxTemplate.replace('{{ web.port }}', String(port1)).replace('{{ web.greeting }}', 'first'), { mode: 0o644 });
    writeFileSync(join(ngx, 'conf.d', 'extra.conf'), EXTRA_TEMPLATE.replace('{{ extra.text }}', 'extra one'), { mode: 0o644 });
    supervisord = await startSupervisord([
      {
        name: 'nginx',
        command: `${NGINX} -g "daemon off;" -e ${ngx}/error.log -c ${ngx}/nginx.conf`,
        options: { startsecs: 1, stopwaitsecs: 5 },
      },
    ]);
    await eventually('nginx serves its first configuration', async () => (await serves(`http://127.0.0.1:${port1}/`)) === '200 first\n', 15_000);
    const nginxTest = `${NGINX} -t -q -e ${ngx}/check.log`;
    ch = await startConfhub({
      configExtra: `\n[web]\nport = ${port1}\ngreeting = first\n\n[extra]\ntext = extra one\n`,
      files: { 'nginx.conf.tmpl': nginxTemplate, 'extra.conf.tmpl': EXTRA_TEMPLATE },
      systemIni: `[sync]
output_roots = ${dir}
supervisor_url = ${supervisord.url}
debounce_min_ms = 50

[target:nginx]
sections = web
format = template
template = nginx.conf.tmpl
output = ${ngx}/nginx.conf
mode = 0644
check = ${nginxTest} -c {file}
reload = supervisor:signal:HUP:nginx
health = http:http://127.0.0.1:{{ web.port }}/
health_window = 1
timeout = 6
on_failure = rollback

[target:nginx_extra]
sections = web, extra
format = template
template = extra.conf.tmpl
output = ${ngx}/conf.d/extra.conf
mode = 0644
check_installed = ${nginxTest} -c ${ngx}/nginx.conf
reload = supervisor:signal:HUP:nginx
health = http:http://127.0.0.1:{{ web.port }}/extra
health_window = 1
timeout = 6
on_failure = rollback
`,
    });
    await eventually('confhub is ready', async () => (await fetch(`${ch.url}/readyz`)).status === 200, 30_000);
  }, 120_000);

  afterAll(async () => {
    await ch?.close();
    await supervisord?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('when the content changes, then nginx is checked (nginx -t on the staged file), HUPed and verified, and serves the new content', async () => {
    const { status, body } = await put('web', 'greeting', 'second');
    expect(status).toBe(200);
    expect(body.sync.outcome).toBe('applied');
    expect(target(body, 'nginx')).toMatchObject({ changed: true, reloaded: true, healthy: true, state: 'in_sync' });
    expect(await serves(`http://127.0.0.1:${port1}/`)).toBe('200 second\n');
  }, 30_000);

  it('when the port changes, then nginx is verified at the new port (the health URL follows config.ini) and the old port is given up', async () => {
    const { status, body } = await put('web', 'port', String(port2));
    expect(status).toBe(200);
    expect(body.sync.outcome).toBe('applied');
    expect(target(body, 'nginx')).toMatchObject({ changed: true, reloaded: true, healthy: true, state: 'in_sync' });
    expect(await serves(`http://127.0.0.1:${port2}/`)).toBe('200 second\n');
    expect(await serves(`http://127.0.0.1:${port2}/extra`)).toBe('200 extra one\n');
    await eventually('the old port is closed', async () => (await serves(`http://127.0.0.1:${port1}/`)).startsWith('down'), 10_000);
  }, 30_000);

  it('when nginx cannot bind the new port, then health fails at that port over the window, the change is rolled back and nginx serves the old configuration at the old port', async () => {
    // Something else holds the port: it accepts connections and closes them without an answer.
    const holder: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const held = (holder.address() as { port: number }).port;
    try {
      const applied = ch.readConfig();
      const { status, body } = await put('web', 'port', String(held));
      expect(status).toBe(502);
      expect(body.code).toBe('SYNC_FAILED');
      expect(body.sync.outcome).toBe('rolled_back');
      expect(target(body, 'nginx')).toMatchObject({ reloaded: true, healthy: false, state: 'failed', error: { code: 'HEALTH_FAILED' } });
      expect(body.details).toContain(`GET http://127.0.0.1:${held}/: not 2xx for 1000 ms in a row within 6000 ms`);
      // nginx did try the new file: it could not bind and kept running the old configuration.
      expect(errorLog()).toMatch(new RegExp(`bind\\(\\) to 127\\.0\\.0\\.1:${held} failed`));
      expect(readFileSync(join(ngx, 'nginx.conf'), 'utf8')).toContain(`listen 127.0.0.1:${port2};`);
      expect(await serves(`http://127.0.0.1:${port2}/`)).toBe('200 second\n');
      await eventually('config.ini is rolled back', () => ch.readConfig() === applied, 10_000);
      const statusRes = (await (await ch.api('/api/v1/sync/status')).json()) as {
        targets: { target: string; state: string; lastError: { code: string } | null }[];
      };
      expect(statusRes.targets.find((t) => t.target === 'nginx')).toMatchObject({ state: 'failed', lastError: { code: 'HEALTH_FAILED' } });
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  }, 60_000);

  it('when an include file has a syntax error, then the check of the installed configuration rejects it, the old file is back and nginx was never reloaded with it', async () => {
    const before = readFileSync(join(ngx, 'conf.d', 'extra.conf'), 'utf8');
    const hupsBefore = hups();
    const { status, body } = await put('extra', 'text', 'broken"; }');
    expect(status).toBe(502);
    expect(body.sync.outcome).toBe('rolled_back');
    expect(target(body, 'nginx_extra')).toMatchObject({ reloaded: false, state: 'failed', error: { code: 'CHECK_FAILED' } });
    expect(body.details).toContain('nginx_extra: CHECK_FAILED');
    expect(body.details).toContain('conf.d/extra.conf');
    expect(readFileSync(join(ngx, 'conf.d', 'extra.conf'), 'utf8')).toBe(before);
    expect(await serves(`http://127.0.0.1:${port2}/extra`)).toBe('200 extra one\n');

    // A good include change afterwards is the next HUP nginx sees: the broken one sent none.
    await eventually('config.ini is rolled back', () => ch.readConfig().includes('text = extra one'), 10_000);
    const good = await put('extra', 'text', 'extra two');
    expect(good.status).toBe(200);
    expect(target(good.body, 'nginx_extra')).toMatchObject({ reloaded: true, healthy: true, state: 'in_sync' });
    expect(await serves(`http://127.0.0.1:${port2}/extra`)).toBe('200 extra two\n');
    expect(hups()).toBe(hupsBefore + 1);
  }, 60_000);
});
