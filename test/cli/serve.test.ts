import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { WEBSOFT9_DEFAULT_API_KEY } from '../../src/bootstrap/first-boot-secrets.js';
import { parseIni } from '../../src/ini/document.js';

const run = promisify(execFile);
const CLI = ['--import', 'tsx', 'src/cli.ts'];
const shippedPath = new URL('../../config/config.ini', import.meta.url);
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'confhub-cli-'));
  dirs.push(dir);
  return dir;
}

interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
}

function start(env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, [...CLI, 'serve'], { env: { ...process.env, CONFHUB_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const match = /listening on (http:\/\/[^;]+);/.exec(out);
      if (match) resolve({ child, url: match[1]!, output: () => out });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`confhub exited with ${code}: ${out}`)));
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.on('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

/** Runs the CLI expecting it to fail; returns its exit code and stderr. */
async function failing(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string } | undefined> {
  return run(process.execPath, [...CLI, ...args], { env: { ...process.env, ...env } }).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
}

const apiKeyOf = (configPath: string): string => parseIni(readFileSync(configPath, 'utf8')).byName.get('api_key')!.byKey.get('key')!.value;

describe('confhub serve', () => {
  it('when started on an empty data directory, then it installs the defaults, fills secrets, listens and says how to get the key', async () => {
    const shippedBefore = readFileSync(shippedPath);
    const dataDir = join(tempDir(), 'data');
    const server = await start({ CONFHUB_DATA_DIR: dataDir });
    const configPath = join(dataDir, 'config', 'config.ini');
    expect(statSync(configPath).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'config', 'system.ini')).isFile()).toBe(true);
    expect(statSync(join(dataDir, 'confhub.db')).mode & 0o777).toBe(0o600);
    const key = apiKeyOf(configPath);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    const doc = parseIni(readFileSync(configPath, 'utf8'));
    for (const section of ['nginx_proxy_manager', 'gitea', 'portainer']) expect(doc.byName.get(section)!.byKey.get('user_pwd')!.value).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.output()).toContain('apikey');
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
    expect(await stop(again.child)).toBe(0);
  });

  it('when CONFHUB_API_KEY is set on first start, then it becomes the key; on a later start it is ignored with a warning', async () => {
    const dataDir = tempDir();
    const key = 'operator-chosen-key-0123456789abcdef';
    const first = await start({ CONFHUB_DATA_DIR: dataDir, CONFHUB_API_KEY: key });
    expect(apiKeyOf(join(dataDir, 'config', 'config.ini'))).toBe(key);
    await stop(first.child);
    const second = await start({ CONFHUB_DATA_DIR: dataDir, CONFHUB_API_KEY: `${key}-other` });
    expect(apiKeyOf(join(dataDir, 'config', 'config.ini'))).toBe(key);
    expect(second.output()).toContain('CONFHUB_API_KEY is ignored');
    expect(second.output()).not.toContain(key);
    await stop(second.child);
  });

  it('when the config directory already holds a config.ini with the Websoft9 default key, then the file is used as it is and only the key is replaced', async () => {
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
    const server = await start({ CONFHUB_DATA_DIR: join(tempDir(), 'd'), CONFHUB_CONFIG_DIR: configDir, CONFHUB_HOST: '127.0.0.1' });
    const text = readFileSync(join(configDir, 'config.ini'), 'utf8');
    const key = apiKeyOf(join(configDir, 'config.ini'));
    expect(key).not.toBe(WEBSOFT9_DEFAULT_API_KEY);
    expect(text).toBe(legacy.replace(WEBSOFT9_DEFAULT_API_KEY, key));
    expect((await fetch(`${server.url}/api/settings/api_key`, { headers: { 'x-api-key': WEBSOFT9_DEFAULT_API_KEY } })).status).toBe(401);
    await stop(server.child);
  });

  it.each([
    ['CONFHUB_PORT', 'eighty'],
    ['CONFHUB_RATE_LIMIT', '-1'],
    ['CONFHUB_LOG_LEVEL', 'loud'],
    ['CONFHUB_API_KEY', 'short'],
  ])('when %s is %s, then start-up fails naming the variable', async (name, value) => {
    const dataDir = tempDir();
    const failed = await failing(['serve'], { CONFHUB_DATA_DIR: dataDir, [name]: value });
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain(name);
  });

  it('when config.ini is broken at start-up, then start-up fails with the line number', async () => {
    const configDir = tempDir();
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, 'config.ini'), '[a]\nx = 1\n[a]\n');
    const failed = await failing(['serve'], { CONFHUB_DATA_DIR: tempDir(), CONFHUB_CONFIG_DIR: configDir, CONFHUB_PORT: '0' });
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain('line 3: duplicate section [a]');
  });

  it('when secrets must be filled in but config.ini holds an invalid value, then start-up fails naming the key', async () => {
    const configDir = tempDir();
    writeFileSync(join(configDir, 'config.ini'), '[api_key]\nkey =\n[cockpit]\nport = ninety\n');
    const failed = await failing(['serve'], { CONFHUB_DATA_DIR: tempDir(), CONFHUB_CONFIG_DIR: configDir, CONFHUB_PORT: '0' });
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain('config.ini is invalid: the API key and passwords cannot be filled in: cockpit.port must be an integer');
    expect(readFileSync(join(configDir, 'config.ini'), 'utf8')).toBe('[api_key]\nkey =\n[cockpit]\nport = ninety\n');
  });

  it('when an unknown command is given, then exit code 2 and the usage; --help prints it with 0', async () => {
    const help = await run(process.execPath, [...CLI, '--help']);
    expect(help.stdout).toContain('confhub apikey show');
    const bad = await failing(['frobnicate']);
    expect(bad?.code).toBe(2);
    expect(bad?.stderr).toContain('unknown command');
  });
});
