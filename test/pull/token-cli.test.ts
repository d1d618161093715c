/**
 * `confhub token` as an operator runs it beside a running confhub: a token made on the command
 * line reads its target's bundle at once, is listed by id only, and is refused once revoked.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { killStartedProcesses, runCli, startProcess } from '../support/confhub-process.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';

const tempDir = tempDirs('confhub-token-cli-');
afterEach(() => killStartedProcesses());

describe('confhub token', () => {
  it('when a token is made, listed and revoked beside a running confhub, then it reads its bundle, shows by id only, is audited and is refused once revoked', async () => {
    const env = { CONFHUB_DATA_DIR: tempDir() };
    expect((await runCli(['once'], env)).code).toBe(0);
    const server = await startProcess(env);
    await eventually('ready', async () => (await fetch(`${server.url}/readyz`)).status === 200, 30_000);
    const made = await runCli(['token', 'create', 'gitea', '--description', 'git container'], env);
    expect(made.code).toBe(0);
    const token = made.stdout.trim();
    expect(token).toMatch(/^cht_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$/);
    const id = token.slice(4, 20);
    expect(made.stderr).toContain(`token ${id} of target gitea made; it is shown only now`);
    const bundle = await fetch(`${server.url}/api/v1/targets/gitea/bundle`, { headers: { authorization: `Bearer ${token}` } });
    expect(bundle.status).toBe(200);
    const list = await runCli(['token', 'list', 'gitea'], env);
    expect(list.stdout).toMatch(new RegExp(`^${id}  \\S+  used \\S+  git container$`, 'm'));
    expect(list.stdout).not.toContain(token.slice(21));
    expect((await runCli(['token', 'revoke', 'gitea', id], env)).code).toBe(0);
    expect((await fetch(`${server.url}/api/v1/targets/gitea/bundle`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    const db = new Database(loadRuntimeConfig(env).databasePath, { readonly: true });
    try {
      expect(db.prepare("SELECT action, key, actor_id FROM audit_log WHERE action LIKE 'target.token.%' ORDER BY id").all()).toEqual([
        { action: 'target.token.create', key: id, actor_id: 'cli' },
        { action: 'target.token.revoke', key: id, actor_id: 'cli' },
      ]);
    } finally {
      db.close();
    }
  }, 60_000);

  it('when the target is not declared, the id is unknown or arguments are missing, then one line says so and nothing is made', async () => {
    const env = { CONFHUB_DATA_DIR: tempDir(), CONFHUB_LOG_LEVEL: 'silent' };
    expect((await runCli(['once'], env)).code).toBe(0);
    const unknown = await runCli(['token', 'create', 'nope'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no target "nope" is declared in system.ini');
    expect((await runCli(['token', 'revoke', 'gitea', 'ffffffffffffffff'], env)).stderr).toContain('no token "ffffffffffffffff" for this target');
    expect((await runCli(['token', 'revoke', 'gitea'], env)).stderr).toContain('token revoke takes the target and the token id');
    expect((await runCli(['token', 'list'], env)).stderr).toContain('token list takes the target');
    expect((await runCli(['token', 'list', 'gitea'], env)).stdout).toBe('');
  }, 60_000);
});
