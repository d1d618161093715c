/** `confhub validate`, `history` and `rollback` as an operator runs them, on a data directory a real start made. */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { readApiKey } from '../../src/settings/read-api-key.js';
import { killStartedProcesses, runCli, startProcess, stopProcess } from '../support/confhub-process.js';
import { freePort } from '../support/ports.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';

const execute = promisify(execFile);
const execFileSyncText = (file: string, args: string[]): string => execFileSync(file, args, { encoding: 'utf8' });
const tempDir = tempDirs('confhub-cmd-');
afterEach(() => killStartedProcesses());

const cli = runCli;

/** A data directory after a first start and two API changes (three commits). */
async function prepared(): Promise<{ env: Record<string, string>; configPath: string }> {
  const env = { CONFHUB_DATA_DIR: tempDir() };
  const server = await startProcess(env);
  const key = (await readApiKey(loadRuntimeConfig(env)))!;
  // Once the worker has committed the first start's revision (a write before that would supersede it).
  await eventually('ready', async () => (await fetch(`${server.url}/readyz`)).status === 200);
  for (const port of [9301, 9302]) {
    const res = await fetch(`${server.url}/api/v1/settings/cockpit?key=port&value=${port}&wait=true`, { method: 'PUT', headers: { 'x-api-key': key } });
    expect(res.status, await res.text()).toBe(200);
  }
  // A busy machine (two suites beside dockerd) may take its time over the commits.
  await eventually(
    'three commits',
    async () => {
      const res = await fetch(`${server.url}/api/v1/settings/history`, { headers: { 'x-api-key': key } });
      return ((await res.json()) as { commits: unknown[] }).commits.length === 3;
    },
    30_000,
  );
  expect(await stopProcess(server.child)).toBe(0);
  return { env, configPath: loadRuntimeConfig(env).configPath };
}

describe('confhub validate, history, rollback', () => {
  it('when config.ini and system.ini are valid, then validate exits 0; each kind of problem exits 1 naming it', async () => {
    const { env, configPath } = await prepared();
    expect(await cli(['validate'], env)).toMatchObject({ code: 0, stdout: 'config.ini and system.ini are valid\n' });
    const good = readFileSync(configPath, 'utf8');

    writeFileSync(configPath, good.replace('port = 9302', 'port = ninety'));
    expect(await cli(['validate'], env)).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('config.ini: cockpit.port must be an integer from 1 to 65535'),
    });

    writeFileSync(configPath, `${good}[cockpit]\nport = 1\n`);
    expect(await cli(['validate'], env)).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/config\.ini: config\.ini line \d+: duplicate section \[cockpit\]/),
    });

    const sealed = /user_pwd = (enc:v1:\S+)/.exec(good)![1]!;
    writeFileSync(configPath, good.replace(sealed, `${sealed.slice(0, -2)}${sealed.endsWith('AA') ? 'BB' : 'AA'}`));
    expect(await cli(['validate'], env)).toMatchObject({ code: 1, stderr: expect.stringContaining('cannot be decrypted') });

    // Env variables of a scope system.ini does not declare: valid, with a warning naming them.
    writeFileSync(configPath, `${good}[env:gone]\nX = 1\n`);
    expect(await cli(['validate'], env)).toMatchObject({
      code: 0,
      stdout: 'warning: config.ini: [env:gone]: gone is not global or a consumer declared in system.ini\nconfig.ini and system.ini are valid\n',
    });

    writeFileSync(configPath, good);
    const systemPath = join(env.CONFHUB_DATA_DIR!, 'config', 'system.ini');
    writeFileSync(systemPath, `${readFileSync(systemPath, 'utf8')}\n[target:bad]\nsections = cockpit\nformat = nope\noutput = x\n`);
    expect(await cli(['validate'], env)).toMatchObject({ code: 1, stderr: expect.stringContaining('target:bad') });
  });

  it('when history is asked, then the newest commits are listed with actor, source and outcome; rollback restores a commit byte for byte', async () => {
    const { env, configPath } = await prepared();
    const listed = await cli(['history', '--limit', '2'], env);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^[0-9a-f]{12} {2}\S+ {2}api:key:[0-9a-f]{12}\s+api\s+applied\s+cockpit\.port changed$/);
    const all = (await cli(['history'], env)).stdout.trim().split('\n');
    const first = all[all.length - 1]!.slice(0, 12);
    expect(all[all.length - 1]).toContain('first_boot');

    const { stdout: shown } = await execute('git', ['--git-dir', loadRuntimeConfig(env).historyDir, 'cat-file', 'blob', `${first}:config.ini`]);
    const restored = await cli(['rollback', first], env);
    expect(restored).toMatchObject({ code: 0, stdout: `config.ini restored to ${first}: cockpit.port changed\n` });
    expect(readFileSync(configPath, 'utf8')).toBe(shown);

    expect(await cli(['rollback', 'not-a-commit'], env)).toMatchObject({ code: 1, stderr: expect.stringContaining('4 to 40 hexadecimal') });
    expect(await cli(['rollback', 'deadbeefdead'], env)).toMatchObject({ code: 1, stderr: expect.stringContaining('does not exist in the history') });
    expect(await cli(['history', '--limit', 'lots'], env)).toMatchObject({ code: 2, stderr: expect.stringContaining('--limit must be') });
  });

  it("when config.ini changed while confhub was stopped, then plan shows each target's diff with secrets masked and writes nothing", async () => {
    const { env, configPath } = await prepared();
    const services = join(env.CONFHUB_DATA_DIR!, 'services');
    const snapshot = (): string => execFileSyncText('find', [services, '-type', 'f', '-printf', '%p %s %T@ %m\\n']);
    const before = snapshot();
    const oldPassword = JSON.parse(readFileSync(join(services, 'portainer', 'admin.json'), 'utf8')).Password as string;
    const text = readFileSync(configPath, 'utf8');
    writeFileSync(configPath, text.replace('port = 9302', 'port = 9310').replace(/^(\[portainer\][\s\S]*?user_pwd = ).*$/m, '$1Planned-Pass-9z'));
    const configBefore = readFileSync(configPath, 'utf8');
    const planned = await cli(['plan'], env);
    expect(planned.code).toBe(0);
    expect(planned.stdout).toMatch(/^== cockpit \(.*cockpit\.conf\): update$/m);
    expect(planned.stdout).toMatch(/^-.*9302/m);
    expect(planned.stdout).toMatch(/^\+.*9310/m);
    expect(planned.stdout).toMatch(/^== portainer \(.*admin\.json\): update$/m);
    expect(planned.stdout).toMatch(/^\+.*"Password": "\*{6}"/m);
    expect(planned.stdout).not.toContain('Planned-Pass-9z');
    expect(oldPassword).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(planned.stdout).not.toContain(oldPassword);
    expect(planned.stdout).toMatch(/^-.*"Password": "\*{6}"/m);
    expect(planned.stdout).toMatch(/^== gitea \(.*\): unchanged$/m);
    expect(snapshot()).toBe(before);
    expect(readFileSync(configPath, 'utf8')).toBe(configBefore);
  });

  it('when once runs on a changed config.ini, then the targets are written, the revision committed, unreachable services reported; beside a running confhub it refuses', async () => {
    const { env, configPath } = await prepared();
    writeFileSync(
      configPath,
      readFileSync(configPath, 'utf8').replace('port = 9302', 'port = 9320').replace('http://websoft9-git:3000/api/v1', 'http://git.example:3000/api/v1'),
    );
    const ran = await cli(['once'], env);
    expect(ran.code, ran.stdout + ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(/^revision [0-9a-f]{12} \(commit [0-9a-f]{12}\): applied$/m);
    expect(ran.stdout).toMatch(/^ {2}cockpit: in_sync$/m);
    expect(ran.stdout).toMatch(/^ {2}gitea: pending_reload \(SERVICE_UNREACHABLE: /m);
    expect(readFileSync(join(env.CONFHUB_DATA_DIR!, 'services', 'cockpit', 'cockpit.conf'), 'utf8')).toContain('9320');
    const top = (await cli(['history', '--limit', '1'], env)).stdout;
    // The commit once made carries its own outcome in the history; a file edited by hand is the file's.
    expect(top).toMatch(/file:file\s+startup\s+applied\s+gitea\.base_url, cockpit\.port changed/);

    const server = await startProcess(env);
    expect(await cli(['once'], env)).toMatchObject({ code: 1, stderr: expect.stringContaining('POST /api/v1/settings/reload instead') });
    expect(await stopProcess(server.child)).toBe(0);
  });

  it("when confhub starts again on files already in place, then each commit still shows its own outcome, not the later pass's unchanged", async () => {
    const { env } = await prepared();
    const server = await startProcess(env);
    const key = (await readApiKey(loadRuntimeConfig(env)))!;
    // The start's run finds every file in place: an `unchanged` row for the newest commit.
    await eventually('the start ran', async () => {
      const res = await fetch(`${server.url}/api/v1/sync/status`, { headers: { 'x-api-key': key } });
      return ((await res.json()) as { lastRun: unknown }).lastRun !== null;
    });
    expect(await stopProcess(server.child)).toBe(0);
    const lines = (await cli(['history'], env)).stdout.trim().split('\n');
    expect(lines.map((line) => line.split(/\s{2,}/)[4])).toEqual(['applied', 'applied', 'applied']);
  }, 60_000);

  it('when rollback runs beside a running confhub, then the history records the CLI as its author, not a hand edit', async () => {
    const { env } = await prepared();
    const server = await startProcess(env);
    const key = (await readApiKey(loadRuntimeConfig(env)))!;
    await eventually('ready', async () => (await fetch(`${server.url}/readyz`)).status === 200);
    type Item = { id: string; actor: { type: string; id: string }; source: string; sync: { outcome: string } | null };
    const newest = async (): Promise<Item> => {
      const res = await fetch(`${server.url}/api/v1/settings/history?limit=1`, { headers: { 'x-api-key': key } });
      return ((await res.json()) as { commits: Item[] }).commits[0]!;
    };
    const before = (await newest()).id;
    const all = (await cli(['history'], env)).stdout.trim().split('\n');
    const first = all[all.length - 1]!.slice(0, 12);
    expect(await cli(['rollback', first], env)).toMatchObject({ code: 0 });
    await eventually('the rollback is committed and applied', async () => {
      const top = await newest();
      return top.id !== before && top.sync?.outcome === 'applied';
    });
    expect(await newest()).toMatchObject({ actor: { type: 'system', id: 'cli' }, source: 'rollback' });
    expect(await stopProcess(server.child)).toBe(0);
  }, 60_000);

  it('when once fails health at a new address, then the files it puts back are checked at the address of the revision the targets last applied', async () => {
    const gets: string[] = [];
    const service = createServer((req, res) => {
      if (req.method === 'GET') gets.push(req.url ?? '');
      res.writeHead(req.method === 'POST' ? 204 : 200).end();
    });
    await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
    const port = (service.address() as AddressInfo).port;
    try {
      const env = { CONFHUB_DATA_DIR: tempDir() };
      const server = await startProcess(env);
      await eventually('ready', async () => (await fetch(`${server.url}/readyz`)).status === 200);
      expect(await stopProcess(server.child)).toBe(0);
      const config = loadRuntimeConfig(env);
      writeFileSync(
        config.systemPath,
        `[target:web]\nsections = web\nformat = json\noutput = services/web.json\nreload = http:POST:http://127.0.0.1:${port}/reload\nhealth = http:http://127.0.0.1:{{ web.port }}/health\ntimeout = 2\n`,
      );
      const serving = `${readFileSync(config.configPath, 'utf8')}\n[web]\nport = ${port}\n`;
      writeFileSync(config.configPath, serving);
      const applied = await cli(['once'], env);
      expect(applied.stdout, applied.stdout + applied.stderr).toMatch(/: applied$/m);
      gets.length = 0;
      writeFileSync(config.configPath, serving.replace(`port = ${port}`, `port = ${await freePort()}`));
      const failed = await cli(['once'], env);
      expect(failed).toMatchObject({
        code: 1,
        stdout: expect.stringMatching(/: rolled_back$/m),
        stderr: expect.stringMatching(/^confhub: once: revision [0-9a-f]{12} was rolled back at web: HEALTH_FAILED: [^\n]+\n$/),
      });
      expect(readFileSync(join(config.dataDir, 'services', 'web.json'), 'utf8')).toContain(String(port));
      // Nothing listens at the new port: only the check of the restored file at the old one reaches the service.
      expect(gets).toContain('/health');
    } finally {
      await new Promise<void>((resolve) => service.close(() => resolve()));
    }
  }, 60_000);

  it.each(['serve', 'apikey', 'masterkey', 'plan', 'once', 'validate', 'history', 'rollback'])(
    'when %s --help is asked, then its usage is printed and nothing runs',
    async (name) => {
      const dataDir = join(tempDir(), 'data');
      const help = await cli([name, '--help'], { CONFHUB_DATA_DIR: dataDir });
      expect(help).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^Usage: confhub \\[?${name}`)) });
      expect(existsSync(dataDir)).toBe(false);
    },
  );
});
