/**
 * kill -9 during commits: the next start repairs the history repository (stale locks) and
 * commits the revision on disk that was not committed yet.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRuntimeConfig, type RuntimeConfig } from '../../src/runtime-config.js';
import { readApiKey } from '../../src/settings/read-api-key.js';
import { revisionOf } from '../../src/settings/revision.js';
import { killStartedProcesses, startProcess, stopProcess, type ConfhubProcess } from '../support/confhub-process.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';

const tempDir = tempDirs('confhub-crash-');
afterEach(() => killStartedProcesses());

function setUp(): { env: Record<string, string>; config: RuntimeConfig } {
  const dir = tempDir();
  const dataDir = join(dir, 'data');
  mkdirSync(join(dataDir, 'config'), { recursive: true });
  writeFileSync(join(dataDir, 'config', 'system.ini'), '[sync]\ndebounce_min_ms = 0\ndebounce_max_ms = 50\npoll_interval_ms = 200\n');
  const env = { CONFHUB_DATA_DIR: dataDir, CONFHUB_RATE_LIMIT: '0', CONFHUB_LOG_LEVEL: 'info' };
  return { env, config: loadRuntimeConfig(env) };
}

const git = (config: RuntimeConfig, ...args: string[]): string =>
  execFileSync('git', args, {
    env: { PATH: process.env.PATH!, GIT_DIR: config.historyDir, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
    encoding: 'utf8',
  });

interface Status {
  history: { head: string | null; repaired: string[] } | null;
}

async function status(server: ConfhubProcess, apiKey: string): Promise<Status> {
  return (await (await fetch(`${server.url}/api/v1/sync/status`, { headers: { 'x-api-key': apiKey } })).json()) as Status;
}

/** Until HEAD of the history holds exactly the bytes of config.ini. */
async function headIsFile(server: ConfhubProcess, config: RuntimeConfig, apiKey: string): Promise<string> {
  let head = '';
  await eventually('HEAD holds config.ini', async () => {
    head = (await status(server, apiKey)).history?.head ?? '';
    return head !== '' && revisionOf(git(config, 'cat-file', 'blob', `${head}:config.ini`)) === revisionOf(readFileSync(config.configPath, 'utf8'));
  });
  return head;
}

describe('crash repair of the history', () => {
  it('when confhub is killed with -9 while committing a stream of changes, then each next start repairs and commits the file on disk', async () => {
    const { env, config } = setUp();
    let server = await startProcess(env);
    const apiKey = (await readApiKey(config))!;
    await headIsFile(server, config, apiKey);
    for (const [round, killAfterMs] of [120, 260, 410].entries()) {
      let stop = false;
      const writes = (async () => {
        for (let i = 0; !stop; i++) {
          await fetch(`${server.url}/api/v1/settings/cockpit?key=port&value=${10_000 + round * 1000 + i}`, {
            method: 'PUT',
            headers: { 'x-api-key': apiKey },
          }).catch(() => undefined);
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, killAfterMs));
      await stopProcess(server.child, 'SIGKILL');
      stop = true;
      await writes;
      server = await startProcess(env);
      await headIsFile(server, config, apiKey);
      git(config, 'fsck', '--no-dangling', '--no-progress');
    }
    expect(Number(git(config, 'rev-list', '--count', 'refs/heads/main').trim())).toBeGreaterThan(3);
    expect(await stopProcess(server.child)).toBe(0);
  });

  it('when confhub is killed with -9 after an API write replaced config.ini and before the worker committed it, then the next start commits it with the API actor and source', async () => {
    const { env, config } = setUp();
    // The worker waits 20 s before it reads a change: the kill lands between the rename and its commit.
    writeFileSync(config.systemPath, '[sync]\ndebounce_min_ms = 20000\ndebounce_max_ms = 30000\npoll_interval_ms = 600000\n');
    let server = await startProcess(env);
    const apiKey = (await readApiKey(config))!;
    const before = await headIsFile(server, config, apiKey);
    const written = await fetch(`${server.url}/api/v1/settings/cockpit?key=port&value=9292`, { method: 'PUT', headers: { 'x-api-key': apiKey } });
    expect(written.status).toBe(200);
    await stopProcess(server.child, 'SIGKILL');
    expect(readFileSync(config.configPath, 'utf8')).toContain('port = 9292');
    expect(git(config, 'rev-parse', 'refs/heads/main').trim()).toBe(before);

    server = await startProcess(env);
    const head = await headIsFile(server, config, apiKey);
    expect(head).not.toBe(before);
    const [author, ...message] = git(config, 'log', '-1', '--format=%an%n%B', head).split('\n');
    expect(author).toMatch(/^api:key:[0-9a-f]{12}$/);
    expect(message.join('\n')).toMatch(/^cockpit\.port changed\n[\s\S]*Confhub-Source: api\n/);
    expect(await stopProcess(server.child)).toBe(0);
  });

  it('when a crash left index and ref locks and an uncommitted hand edit, then the start removes the locks, reports them and commits the edit', async () => {
    const { env, config } = setUp();
    let server = await startProcess(env);
    const apiKey = (await readApiKey(config))!;
    const before = await headIsFile(server, config, apiKey);
    expect(await stopProcess(server.child)).toBe(0);
    writeFileSync(join(config.historyDir, 'index.lock'), '');
    writeFileSync(join(config.historyDir, 'refs', 'heads', 'main.lock'), `${before}\n`);
    writeFileSync(config.configPath, readFileSync(config.configPath, 'utf8').replace('port = 9090', 'port = 9191'));

    server = await startProcess(env);
    const head = await headIsFile(server, config, apiKey);
    expect(head).not.toBe(before);
    expect((await status(server, apiKey)).history?.repaired.sort()).toEqual(['index.lock', 'refs/heads/main.lock']);
    expect(git(config, 'log', '-1', '--format=%an%n%B', head)).toMatch(/^file:file\ncockpit\.port changed\n[\s\S]*Confhub-Source: startup/);
    expect(await stopProcess(server.child)).toBe(0);
  });
});
