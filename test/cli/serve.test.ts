import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDirs } from '../support/temp-dirs.js';
import { WEBSOFT9_DEFAULT_API_KEY } from '../../src/bootstrap/first-boot-secrets.js';
import { CLI, killStartedProcesses, startProcess, stopProcess } from '../support/confhub-process.js';
import { eventually } from '../support/wait.js';
import { parseIni, type IniDocument } from '../../src/ini/document.js';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { loadKeyring } from '../../src/secrets/master-key.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { toSnapshot } from '../../src/settings/store.js';

const run = promisify(execFile);
const shippedPath = new URL('../../config/config.ini', import.meta.url);
const tempDir = tempDirs('confhub-cli-');
afterEach(() => killStartedProcesses());

const start = startProcess;
const stop = (child: ChildProcess): Promise<number | null> => stopProcess(child);

/** Runs the CLI expecting it to fail; returns its exit code and stderr. */
async function failing(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string } | undefined> {
  return run(process.execPath, [...CLI, ...args], { env: { ...process.env, ...env } }).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
}

/** config.ini of a data directory with its sealed values opened. */
async function openedConfig(env: Record<string, string>): Promise<IniDocument> {
  const config = loadRuntimeConfig(env);
  const { keyring } = await loadKeyring({ ...config.masterKey, createFile: false });
  return toSnapshot({ text: readFileSync(config.configPath, 'utf8'), label: 'config.ini', schema: CONFIG_SCHEMA, keyring }).doc;
}

const apiKeyOf = async (env: Record<string, string>): Promise<string> => (await openedConfig(env)).byName.get('api_key')!.byKey.get('key')!.value;

describe('confhub serve', () => {
  it('when started on an empty data directory, then it installs the defaults, fills secrets, listens and says how to get the key', async () => {
    const shippedBefore = readFileSync(shippedPath);
    const dataDir = join(tempDir(), 'data');
    const server = await start({ CONFHUB_DATA_DIR: dataDir });
    const configPath = join(dataDir, 'config', 'config.ini');
    expect(statSync(configPath).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'config', 'system.ini')).isFile()).toBe(true);
    expect(statSync(join(dataDir, 'confhub.db')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
    const key = await apiKeyOf({ CONFHUB_DATA_DIR: dataDir });
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    const doc = await openedConfig({ CONFHUB_DATA_DIR: dataDir });
    const stored = parseIni(readFileSync(configPath, 'utf8'));
    for (const section of ['nginx_proxy_manager', 'gitea', 'portainer']) {
      expect(doc.byName.get(section)!.byKey.get('user_pwd')!.value).toMatch(/^[A-Za-z0-9]{20}$/);
      expect(stored.byName.get(section)!.byKey.get('user_pwd')!.value).toMatch(/^enc:v1:[0-9a-f]{8}:/);
    }
    expect(readFileSync(configPath, 'utf8')).not.toContain(key);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // The way to read the key is said exactly once, on the start that generated it.
    expect(server.output().split('Read it with').length - 1).toBe(1);
    expect(server.output()).not.toContain(key);
    const res = await fetch(`${server.url}/api/v1/settings/cockpit`, { headers: { 'x-api-key': key } });
    expect(await res.json()).toEqual({ port: 9090 });
    expect(await stop(server.child)).toBe(0);
    expect(readFileSync(shippedPath)).toEqual(shippedBefore);

    const shown = await run(process.execPath, [...CLI, 'apikey', 'show'], { env: { ...process.env, CONFHUB_DATA_DIR: dataDir } });
    expect(shown.stdout.trim()).toBe(key);

    const before = readFileSync(configPath, 'utf8');
    const again = await start({ CONFHUB_DATA_DIR: dataDir });
    expect(readFileSync(configPath, 'utf8')).toBe(before);
    expect(again.output()).not.toContain('apikey');
    expect(await stop(again.child)).toBe(0);
  });

  it('when SIGTERM arrives while an acknowledged write is still in its debounce, then it is applied before confhub exits 0', async () => {
    const dataDir = tempDir();
    mkdirSync(join(dataDir, 'config'));
    // A long quiet time: without the flush at shutdown the change would still be waiting.
    writeFileSync(
      join(dataDir, 'config', 'system.ini'),
      [
        '[sync]',
        'debounce_min_ms = 5000',
        'debounce_max_ms = 10000',
        '',
        '[target:cockpit]',
        'sections = cockpit',
        'format = ini',
        'output = out/cockpit.ini',
        'reload = none',
        '',
      ].join('\n'),
    );
    const env = { CONFHUB_DATA_DIR: dataDir, CONFHUB_API_KEY: 'shutdown-test-key-0123456789abcdef' };
    const server = await start(env);
    const output = join(dataDir, 'out', 'cockpit.ini');
    await eventually('the first reconcile wrote the target', () => existsSync(output), 20_000);
    const put = await fetch(`${server.url}/api/v1/settings/cockpit`, {
      method: 'PUT',
      headers: { 'x-api-key': env.CONFHUB_API_KEY, 'content-type': 'application/json' },
      body: '{"port": 9191}',
    });
    expect(put.status).toBe(200);
    expect(readFileSync(output, 'utf8')).not.toContain('9191');
    expect(await stop(server.child)).toBe(0);
    expect(readFileSync(output, 'utf8')).toContain('9191');
  });

  it('when CONFHUB_API_KEY is set on first start, then it becomes the key; on a later start it is ignored with a warning', async () => {
    const dataDir = tempDir();
    const key = 'operator-chosen-key-0123456789abcdef';
    const first = await start({ CONFHUB_DATA_DIR: dataDir, CONFHUB_API_KEY: key });
    expect(await apiKeyOf({ CONFHUB_DATA_DIR: dataDir })).toBe(key);
    await stop(first.child);
    const second = await start({ CONFHUB_DATA_DIR: dataDir, CONFHUB_API_KEY: `${key}-other` });
    expect(await apiKeyOf({ CONFHUB_DATA_DIR: dataDir })).toBe(key);
    expect(second.output()).toContain('CONFHUB_API_KEY is ignored');
    expect(second.output()).not.toContain(key);
    await stop(second.child);
  });

  it('when the config directory already holds a legacy config.ini with the Websoft9 default key, then the key is replaced, the secrets sealed, its other lines kept byte for byte, and the keys it lacks added', async () => {
    const configDir = tempDir();
    const legacy = [
      '; written by apphub',
      '[nginx_proxy_manager]',
      'base_url = http://websoft9-proxy:81/api',
      'user_name = admin@mydomain.com',
      'user_pwd = gtBi82ljgJLOBdIv',
      '',
      '[api_key]',
      `key = ${WEBSOFT9_DEFAULT_API_KEY}`,
      '',
    ].join('\r\n');
    writeFileSync(join(configDir, 'config.ini'), legacy);
    const env = { CONFHUB_DATA_DIR: join(tempDir(), 'd'), CONFHUB_CONFIG_DIR: configDir, CONFHUB_HOST: '127.0.0.1' };
    const server = await start(env);
    const text = readFileSync(join(configDir, 'config.ini'), 'utf8');
    const key = await apiKeyOf(env);
    expect(key).not.toBe(WEBSOFT9_DEFAULT_API_KEY);
    expect((await openedConfig(env)).byName.get('nginx_proxy_manager')!.byKey.get('user_pwd')!.value).toBe('gtBi82ljgJLOBdIv');
    const sealed = (line: string): string => line.replace(/= .*$/, '= <sealed>');
    // Every legacy line is still there, in order, byte for byte (CRLF kept), with new keys in between.
    const lines = text.split('\r\n').map((line) => (/^(user_pwd|key) = enc:v1:[0-9a-f]{8}:[A-Za-z0-9_-]+$/.test(line) ? sealed(line) : line));
    let at = 0;
    for (const line of legacy.split('\r\n').map((l) => (/^(user_pwd|key) = /.test(l) ? sealed(l) : l))) {
      const found = lines.indexOf(line, at);
      expect(found, `legacy line "${line}" kept in order`).toBeGreaterThanOrEqual(at);
      at = found + 1;
    }
    expect(text.startsWith('; written by apphub\r\n[nginx_proxy_manager]\r\n')).toBe(true);
    expect(text).not.toMatch(/[^\r]\n/);
    // The sections this legacy file lacks come from the template, with strong random passwords.
    const opened = await openedConfig(env);
    expect(opened.byName.get('cockpit')!.byKey.get('port')!.value).toBe('9090');
    expect(opened.byName.get('gitea')!.byKey.get('user_pwd')!.value).toMatch(/^[A-Za-z0-9]{20}$/);
    const res = await fetch(`${server.url}/api/settings/nginx_proxy_manager`, { headers: { 'x-api-key': key } });
    expect(((await res.json()) as { user_pwd: string }).user_pwd).toBe('gtBi82ljgJLOBdIv');
    expect((await fetch(`${server.url}/api/settings/api_key`, { headers: { 'x-api-key': WEBSOFT9_DEFAULT_API_KEY } })).status).toBe(401);
    await stop(server.child);
  });

  it.each([
    ['CONFHUB_PORT', 'eighty'],
    ['CONFHUB_RATE_LIMIT', '-1'],
    ['CONFHUB_LOG_LEVEL', 'loud'],
    ['CONFHUB_API_KEY', 'short'],
    ['CONFHUB_API_KEY', WEBSOFT9_DEFAULT_API_KEY.toUpperCase()],
  ])('when %s is %s, then start-up fails naming the variable', async (name, value) => {
    const dataDir = tempDir();
    const failed = await failing(['serve'], { CONFHUB_DATA_DIR: dataDir, [name]: value });
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain(name);
  });

  it('when a request is not valid HTTP or its headers are too large, then the answer is the usual JSON error shape, not an empty body', async () => {
    const dataDir = tempDir();
    const server = await start({ CONFHUB_DATA_DIR: dataDir });
    const { port } = new URL(server.url);
    /** Sends raw bytes and returns what the server answered before closing. */
    const raw = (request: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => socket.end(request));
        let answer = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          answer += chunk;
        });
        socket.on('end', () => resolve(answer));
        socket.on('error', reject);
      });
    const bodyOf = (answer: string): unknown => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    const garbage = await raw('NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(garbage).toContain('Content-Type: application/json; charset=utf-8');
    expect(bodyOf(garbage)).toEqual({ message: 'Invalid Request', details: 'The request is not valid HTTP', code: 'INVALID_REQUEST' });
    const huge = await raw(`GET /api/v1/settings HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    expect(bodyOf(huge)).toMatchObject({ code: 'HEADERS_TOO_LARGE' });
    // A client that sends garbage and never closes its side is not kept connected.
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      socket.on('close', () => resolve());
      socket.on('error', reject);
      socket.resume();
    });
    // Garbage sent behind an event stream on its connection ends the connection: no answer is
    // written into the stream's body.
    const config = loadRuntimeConfig({ CONFHUB_DATA_DIR: dataDir });
    const { keyring } = await loadKeyring({ ...config.masterKey, createFile: false });
    const opened = toSnapshot({ text: readFileSync(config.configPath, 'utf8'), label: 'config.ini', schema: CONFIG_SCHEMA, keyring });
    const apiKey = opened.doc.byName.get('api_key')?.byKey.get('key')?.value;
    const streamed = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(`GET /api/v1/settings/events HTTP/1.1\r\nHost: x\r\nx-api-key: ${apiKey}\r\n\r\n`));
      let answer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        const headEnded = !answer.includes('\r\n\r\n') && (answer + chunk).includes('\r\n\r\n');
        answer += chunk;
        if (headEnded) socket.write('NOT HTTP AT ALL\r\n\r\n');
      });
      socket.on('close', () => resolve(answer));
      socket.on('error', reject);
    });
    expect(streamed).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(streamed).toContain('text/event-stream');
    expect(streamed).not.toContain('HTTP/1.1 400');
    expect(streamed).not.toContain('INVALID_REQUEST');
    // The server still answers normal requests.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    await stop(server.child);
  });

  it('when config.ini is broken at start-up, then start-up fails with the line number', async () => {
    const configDir = tempDir();
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, 'config.ini'), '[a]\nx = 1\n[a]\n');
    const failed = await failing(['serve'], { CONFHUB_DATA_DIR: tempDir(), CONFHUB_CONFIG_DIR: configDir, CONFHUB_PORT: '0' });
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain('line 3: duplicate section [a]');
  });

  it('when the port is taken by another process, then serve exits 1 with one line naming the address and the fix, no stack', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const failed = await failing(['serve'], { CONFHUB_DATA_DIR: tempDir(), CONFHUB_PORT: String(port) });
      expect(failed?.code).toBe(1);
      expect(failed?.stderr).toBe(`confhub: cannot listen on 127.0.0.1:${port}: the address is in use by another process; set CONFHUB_PORT to a free port\n`);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
    // An address of no interface of this machine (TEST-NET-1).
    const elsewhere = await failing(['serve'], { CONFHUB_DATA_DIR: tempDir(), CONFHUB_HOST: '192.0.2.1', CONFHUB_PORT: '8080' });
    expect(elsewhere?.code).toBe(1);
    expect(elsewhere?.stderr).toMatch(/^confhub: cannot listen on 192\.0\.2\.1:8080: [^\n]*; set CONFHUB_HOST to one of its addresses[^\n]*\n$/);
  });

  it('when a confhub already serves the data directory, then a second one refuses to start; after the first is killed with -9, a start works', async () => {
    const env = { CONFHUB_DATA_DIR: tempDir() };
    const first = await start(env);
    const second = await failing(['serve'], { ...env, CONFHUB_PORT: '0' });
    expect(second?.code).toBe(1);
    expect(second?.stderr).toContain(`another confhub is running with the data directory ${env.CONFHUB_DATA_DIR}`);
    await stopProcess(first.child, 'SIGKILL');
    const third = await start(env);
    expect(await stop(third.child)).toBe(0);
  });

  it('when the master key file is missing, unreadable or of the wrong length, then start-up fails naming it and nothing is written', async () => {
    const dir = tempDir();
    const short = join(dir, 'short.key');
    writeFileSync(short, 'x'.repeat(31));
    for (const [file, problem] of [
      [short, 'must hold 32 bytes'],
      [join(dir, 'missing.key'), 'does not exist'],
      [dir, 'cannot be read'],
    ] as const) {
      const dataDir = join(tempDir(), 'data');
      const failed = await failing(['serve'], { CONFHUB_DATA_DIR: dataDir, CONFHUB_MASTER_KEY_FILE: file, CONFHUB_PORT: '0' });
      expect(failed?.code).toBe(1);
      expect(failed?.stderr).toContain(`the master key file ${file} ${problem}`);
      expect(existsSync(join(dataDir, 'config', 'config.ini')) && readFileSync(join(dataDir, 'config', 'config.ini'), 'utf8').includes('enc:v1:')).toBe(false);
    }
    const both = await failing(['serve'], {
      CONFHUB_DATA_DIR: tempDir(),
      CONFHUB_MASTER_KEY_FILE: short,
      CONFHUB_MASTER_KEY: 'a'.repeat(64),
      CONFHUB_PORT: '0',
    });
    expect(both?.stderr).toContain('CONFHUB_MASTER_KEY and CONFHUB_MASTER_KEY_FILE are both set');
  });

  it('when config.ini was sealed with another master key, then start-up fails naming the keys and the key ids, and changes nothing', async () => {
    const dataDir = tempDir();
    const first = await start({ CONFHUB_DATA_DIR: dataDir });
    expect(await stop(first.child)).toBe(0);
    const configPath = join(dataDir, 'config', 'config.ini');
    const before = readFileSync(configPath, 'utf8');
    writeFileSync(join(dataDir, 'master.key'), randomBytes(32));
    const failed = await failing(['serve'], { CONFHUB_DATA_DIR: dataDir, CONFHUB_PORT: '0' });
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(
      /config\.ini holds secrets the master key \(file .*master\.key\) cannot open: .*api_key\.key cannot be decrypted: it was sealed with master key [0-9a-f]{8}, but the master key is [0-9a-f]{8}/,
    );
    expect(readFileSync(configPath, 'utf8')).toBe(before);
  });

  it('when secrets must be filled in but config.ini holds an invalid value, then start-up fails naming the key', async () => {
    const configDir = tempDir();
    writeFileSync(join(configDir, 'config.ini'), '[api_key]\nkey =\n[cockpit]\nport = ninety\n');
    const failed = await failing(['serve'], { CONFHUB_DATA_DIR: tempDir(), CONFHUB_CONFIG_DIR: configDir, CONFHUB_PORT: '0' });
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain('the keys new in this version cannot be added to config.ini: cockpit.port must be an integer');
    expect(readFileSync(join(configDir, 'config.ini'), 'utf8')).toBe('[api_key]\nkey =\n[cockpit]\nport = ninety\n');
  });

  it('when an unknown command is given, then exit code 2 and one line naming it; --help prints the usage with 0, version and --version the version', async () => {
    const help = await run(process.execPath, [...CLI, '--help']);
    expect(help.stdout).toMatch(/^ {2}apikey show\|rotate {2,}print the API key/m);
    const bad = await failing(['frobnicate']);
    expect(bad?.code).toBe(2);
    expect(bad?.stderr).toBe('confhub: unknown command "frobnicate"; see confhub --help\n');
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    for (const args of [['version'], ['--version']]) expect((await run(process.execPath, [...CLI, ...args])).stdout).toBe(`confhub ${version}\n`);
  });

  it('when the API key is rotated from the command line while confhub runs, then the new key works at once and the old one is refused', async () => {
    const env = { CONFHUB_DATA_DIR: tempDir() };
    const server = await start(env);
    const old = await apiKeyOf(env);
    const rotated = await run(process.execPath, [...CLI, 'apikey', 'rotate'], { env: { ...process.env, ...env } });
    const key = rotated.stdout.trim();
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(key).not.toBe(old);
    expect(await apiKeyOf(env)).toBe(key);
    expect(readFileSync(loadRuntimeConfig(env).configPath, 'utf8')).not.toContain(key);
    expect((await fetch(`${server.url}/api/v1/settings/cockpit`, { headers: { 'x-api-key': key } })).status).toBe(200);
    expect((await fetch(`${server.url}/api/v1/settings/cockpit`, { headers: { 'x-api-key': old } })).status).toBe(401);
    await stop(server.child);
  });

  it('when the master key is rotated, then it refuses while confhub runs; stopped, it seals every value with the new key and older history still opens', async () => {
    const env = { CONFHUB_DATA_DIR: tempDir() };
    const config = loadRuntimeConfig(env);
    let server = await start(env);
    const before = await openedConfig(env);
    const history = async (): Promise<{ id: string; source: string }[]> =>
      (
        (await (await fetch(`${server.url}/api/v1/settings/history`, { headers: { 'x-api-key': await apiKeyOf(env) } })).json()) as {
          commits: { id: string; source: string }[];
        }
      ).commits;
    await eventually('the first revision is committed', async () => (await history()).length === 1);
    const oldId = (await loadKeyring({ ...config.masterKey, createFile: false })).keyring.current.id;
    const webhook = await fetch(`${server.url}/api/v1/webhooks`, {
      method: 'POST',
      headers: { 'x-api-key': await apiKeyOf(env), 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'https://hooks.example.com/in?token=t-123', events: ['webhook.disabled'] }),
    });
    expect(webhook.status).toBe(201);
    const webhookId = ((await webhook.json()) as { id: string }).id;
    const refused = await failing(['masterkey', 'rotate'], env);
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toContain(`confhub is running with the data directory ${config.dataDir}`);
    expect(await stop(server.child)).toBe(0);

    const rotated = await run(process.execPath, [...CLI, 'masterkey', 'rotate'], { env: { ...process.env, ...env } });
    const newId = (await loadKeyring({ ...config.masterKey, createFile: false })).keyring.current.id;
    expect(rotated.stdout).toContain(`${oldId} -> ${newId}`);
    expect(newId).not.toBe(oldId);
    const text = readFileSync(config.configPath, 'utf8');
    expect(text).not.toContain(`enc:v1:${oldId}:`);
    expect(text.match(new RegExp(`enc:v1:${newId}:`, 'g'))).toHaveLength(4);
    // The webhook's URL and secret are sealed again too.
    const db = new Database(config.databasePath, { readonly: true });
    const sealedWebhook = JSON.stringify(db.prepare('SELECT url, secret FROM webhooks').all());
    db.close();
    expect(sealedWebhook).not.toContain(`enc:v1:${oldId}:`);
    expect(sealedWebhook.match(new RegExp(`enc:v1:${newId}:`, 'g'))).toHaveLength(2);
    expect(statSync(`${config.masterKey.file}.retired`).mode & 0o777).toBe(0o600);
    const after = await openedConfig(env);
    for (const section of ['api_key', 'gitea', 'portainer', 'nginx_proxy_manager']) {
      expect([...after.byName.get(section)!.byKey.values()].map((e) => e.value)).toEqual([...before.byName.get(section)!.byKey.values()].map((e) => e.value));
    }

    server = await start(env);
    const key = await apiKeyOf(env);
    // The revision sealed under the new key is committed; the first one, sealed under the old key, still opens.
    await eventually('the re-sealed revision is committed', async () => (await history()).length === 2);
    const [resealed, first] = await history();
    expect((await (await fetch(`${server.url}/api/v1/webhooks/${webhookId}`, { headers: { 'x-api-key': key } })).json()) as unknown).toMatchObject({
      url: 'https://hooks.example.com/…',
    });
    expect(resealed!.source).toBe('startup');
    const shown = (await (await fetch(`${server.url}/api/v1/settings/history/${resealed!.id}`, { headers: { 'x-api-key': key } })).json()) as {
      summary: string;
      diff: unknown;
    };
    expect(shown).toMatchObject({ summary: 'no value changed (comments, layout or sealing only)', diff: { added: {}, removed: {}, changed: {} } });
    const rollback = await fetch(`${server.url}/api/v1/settings/rollback?wait=true`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({ commit: first!.id }),
    });
    expect(rollback.status, await rollback.clone().text()).toBe(200);
    expect(readFileSync(config.configPath, 'utf8')).not.toContain(`enc:v1:${oldId}:`);
    expect(await apiKeyOf(env)).toBe(key);
    expect(await stop(server.child)).toBe(0);
  });
});
