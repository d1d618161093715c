/**
 * After a session of changes that set known passwords (through the API, by hand in plain text,
 * by a rollback) none of them is anywhere but config.ini's sealed values and the rendered service
 * files: not in any git object, the SQLite files, the logs of both threads, any history, diff,
 * audit or status response, nor the event stream.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { readApiKey } from '../../src/settings/read-api-key.js';
import { revisionOf } from '../../src/settings/revision.js';
import { killStartedProcesses, startProcess, stopProcess } from '../support/confhub-process.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';

const tempDir = tempDirs('confhub-leak-');
afterEach(() => killStartedProcesses());

const PASSWORDS = ['Gitea-Pass-7x1Q', 'Portainer-Pass-9k2W', 'Proxy-Pass-4m8E', 'HandTyped-Pass-5t6Y'];

describe('secrets at rest', () => {
  it('when a session sets known passwords, then none of them is in git, SQLite, logs, responses or events', async () => {
    const dir = tempDir();
    const dataDir = join(dir, 'data');
    mkdirSync(join(dataDir, 'config'), { recursive: true });
    // A check that prints the file it checks and fails: its output must reach nobody unmasked.
    writeFileSync(join(dir, 'leak.sh'), '#!/bin/sh\ncat "$1"\nexit 1\n');
    chmodSync(join(dir, 'leak.sh'), 0o755);
    writeFileSync(
      join(dataDir, 'config', 'system.ini'),
      `[sync]
output_roots = ${dir}
debounce_min_ms = 30
debounce_max_ms = 300
poll_interval_ms = 300

[target:app]
sections = gitea, portainer, nginx_proxy_manager
format = ini
output = ${dir}/out/app.ini
reload = none

[target:leaky]
sections = gitea
format = env
output = ${dir}/out/leaky.env
check = ${dir}/leak.sh
on_failure = keep
`,
    );
    const env = { CONFHUB_DATA_DIR: dataDir, CONFHUB_LOG_LEVEL: 'trace', CONFHUB_RATE_LIMIT: '0' };
    const server = await startProcess(env);
    const config = loadRuntimeConfig(env);
    const apiKey = (await readApiKey(config))!;
    const secrets = [...PASSWORDS, apiKey];
    const responses: string[] = [];
    const api = async (path: string, init: RequestInit = {}): Promise<unknown> => {
      const res = await fetch(`${server.url}${path}`, { ...init, headers: { 'x-api-key': apiKey, 'content-type': 'application/json' } });
      const text = await res.text();
      responses.push(text);
      return JSON.parse(text) as unknown;
    };
    const events = new AbortController();
    let stream = '';
    void fetch(`${server.url}/api/v1/settings/events`, { headers: { 'x-api-key': apiKey }, signal: events.signal })
      .then(async (res) => {
        for await (const chunk of res.body!) stream += Buffer.from(chunk).toString();
      })
      .catch(() => undefined);

    const committed = (): Promise<void> =>
      eventually('the revision on disk is committed', async () => {
        const top = ((await api('/api/v1/settings/history?limit=1')) as { commits: { revision: string }[] }).commits[0];
        return top?.revision === revisionOf(readFileSync(config.configPath, 'utf8'));
      });

    await committed();
    await api('/api/v1/settings/gitea?key=user_pwd&value=Gitea-Pass-7x1Q&wait=true', { method: 'PUT' });
    await api('/api/v1/settings?wait=true', {
      method: 'PATCH',
      body: JSON.stringify({ portainer: { user_pwd: 'Portainer-Pass-9k2W' }, nginx_proxy_manager: { user_pwd: 'Proxy-Pass-4m8E' } }),
    });
    await committed();
    const afterApi = ((await api('/api/v1/settings/history?limit=1')) as { commits: { id: string }[] }).commits[0]!.id;
    // Typed by hand in plain text: used, then sealed by confhub.
    const text = readFileSync(config.configPath, 'utf8');
    writeFileSync(config.configPath, text.replace(/^(\[gitea\][\s\S]*?user_pwd = ).*$/m, '$1HandTyped-Pass-5t6Y'));
    await eventually('the hand-typed password is sealed', () => !readFileSync(config.configPath, 'utf8').includes('HandTyped-Pass-5t6Y'));
    await committed();
    expect(((await api('/api/v1/settings/gitea/user_pwd')) as { user_pwd: string }).user_pwd).toBe('HandTyped-Pass-5t6Y');
    // The settings GETs are the one place that returns values in plain text, by design.
    responses.pop();
    await eventually('the rendered file has the hand-typed password', () => readFileSync(join(dir, 'out', 'app.ini'), 'utf8').includes('HandTyped-Pass-5t6Y'));
    await api('/api/v1/settings/rollback?wait=true', { method: 'POST', body: JSON.stringify({ commit: afterApi }) });
    await committed();

    // The passwords were really set and used: the settings GETs and the rendered file (0600) have them.
    const settings = JSON.stringify(await api('/api/v1/settings'));
    responses.pop();
    for (const password of PASSWORDS.slice(0, 3)) expect(settings).toContain(password);
    expect(readFileSync(join(dir, 'out', 'app.ini'), 'utf8')).toContain('Gitea-Pass-7x1Q');
    expect(statSync(join(dir, 'out', 'app.ini')).mode & 0o777).toBe(0o600);

    const commits = ((await api('/api/v1/settings/history?limit=200')) as { commits: { id: string }[] }).commits;
    expect(commits.length).toBeGreaterThanOrEqual(5);
    for (const commit of commits) await api(`/api/v1/settings/history/${commit.id}`);
    await api(`/api/v1/settings/diff?from=${commits[commits.length - 1]!.id}`);
    await api('/api/v1/audit?limit=500');
    await api('/api/v1/sync/status');
    events.abort();
    expect(stream).toContain('event: sync.failed');
    expect(await stopProcess(server.child)).toBe(0);

    const gitObjects = execFileSync('git', ['cat-file', '--batch-all-objects', '--batch'], {
      env: { PATH: process.env.PATH!, GIT_DIR: config.historyDir },
      maxBuffer: 64 * 1024 * 1024,
    }).toString('latin1');
    expect(gitObjects).toContain('enc:v1:');
    const sqlite = ['', '-wal', '-shm']
      .map((suffix) => `${config.databasePath}${suffix}`)
      .filter((path) => existsSync(path))
      .map((path) => readFileSync(path).toString('latin1'));
    const places: Record<string, string> = {
      'git objects': gitObjects,
      'SQLite files': sqlite.join('\n'),
      logs: server.output(),
      responses: responses.join('\n'),
      'event stream': stream,
      'config.ini': readFileSync(config.configPath, 'utf8'),
    };
    for (const [place, content] of Object.entries(places)) {
      for (const secret of secrets) expect(content.includes(secret), `${place} holds ${secret.slice(0, 6)}…`).toBe(false);
    }
  });
});
