/**
 * config.ini's history through the API of a whole confhub (main + worker, real git): who made
 * each revision, exact diffs, rollbacks that restore the bytes and are committed as new revisions.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { APP_TARGET_SYSTEM_INI } from '../support/e2e-helpers.js';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';
import { startGitHttpServer } from '../support/git-http-server.js';
import { freePort } from '../support/ports.js';

const SYSTEM_INI = APP_TARGET_SYSTEM_INI;

interface Commit {
  id: string;
  parent: string | null;
  actor: { type: string; id: string };
  source: string;
  summary: string;
  revision: string;
  rollbackOf: string | null;
  changes: { key: string; change: string }[];
  sync: { outcome: string; at: string } | null;
}

let ch: Confhub;
afterEach(async () => {
  await ch?.close();
});

async function json<T>(res: Response, status = 200): Promise<T> {
  const body = (await res.json()) as T;
  expect(res.status, JSON.stringify(body)).toBe(status);
  return body;
}

const history = async (c: Confhub, query = ''): Promise<{ commits: Commit[]; next: string | null }> => json(await c.api(`/api/v1/settings/history${query}`));

/** Until the newest commit is the revision now on disk (the worker commits asynchronously). */
async function committed(c: Confhub): Promise<Commit> {
  let top: Commit | undefined;
  const { revisionOf } = await import('../../src/settings/revision.js');
  await eventually('the revision on disk is committed', async () => {
    top = (await history(c, '?limit=1')).commits[0];
    return top?.revision === revisionOf(c.readConfig());
  });
  return top!;
}

const git = (c: Confhub, ...args: string[]): string =>
  execFileSync('git', args, {
    env: { PATH: process.env.PATH!, GIT_DIR: c.config.historyDir, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
    encoding: 'utf8',
  });

const output = (c: Confhub): string => {
  const path = join(c.dir, 'out', 'app.ini');
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
};

describe('history of config.ini', () => {
  it('when the API, a hand edit and a rollback change config.ini, then each is one commit with its actor, source, keys and sync outcome', async () => {
    ch = await startConfhub({ systemIni: SYSTEM_INI });
    const first = await committed(ch);
    // The first start filled in the API key and the passwords: that revision is the first commit, by first boot.
    expect(first).toMatchObject({ parent: null, actor: { type: 'system', id: 'first-boot' }, source: 'first_boot' });
    expect(first.summary).toMatch(/^first revision \(\d+ keys\)$/);

    const put = await json<{ sync: { commit: string; outcome: string } }>(
      await ch.api('/api/v1/settings/gitea?key=base_url&value=http://git.example:3000/api&wait=true', { method: 'PUT' }),
    );
    const apiCommit = await committed(ch);
    expect(put.sync).toMatchObject({ commit: apiCommit.id, outcome: 'applied' });
    expect(apiCommit).toMatchObject({
      parent: first.id,
      actor: { type: 'api', id: expect.stringMatching(/^key:[0-9a-f]{12}$/) },
      source: 'api',
      summary: 'gitea.base_url changed',
      changes: [{ key: 'gitea.base_url', change: 'changed' }],
      sync: { outcome: 'applied' },
    });

    writeFileSync(ch.config.configPath, ch.readConfig().replace('port = 9090', 'port = 9091').replace('[cockpit]', '# hand edited\n[cockpit]'));
    const handCommit = await committed(ch);
    expect(handCommit).toMatchObject({
      parent: apiCommit.id,
      actor: { type: 'file', id: 'file' },
      source: 'file',
      changes: [{ key: 'cockpit.port', change: 'changed' }],
    });
    await eventually('the hand edit is applied', () => output(ch).includes('9091'));

    const rollback = await json<{ rolledBackTo: string; changed: string[]; sync: { commit: string; outcome: string } }>(
      await ch.api('/api/v1/settings/rollback?wait=true', { method: 'POST', body: JSON.stringify({ commit: first.id.slice(0, 10) }) }),
    );
    expect(rollback).toMatchObject({ rolledBackTo: first.id, sync: { outcome: 'applied' } });
    expect(rollback.changed.sort()).toEqual(['cockpit.port', 'gitea.base_url']);
    const rollbackCommit = await committed(ch);
    expect(rollbackCommit).toMatchObject({ parent: handCommit.id, source: 'rollback', rollbackOf: first.id, actor: { type: 'api' }, id: rollback.sync.commit });
    expect(rollbackCommit.summary).toBe(`roll back to ${first.id.slice(0, 12)}: gitea.base_url, cockpit.port changed`);

    const listed = await history(ch);
    expect(listed.commits.map((c) => c.id)).toEqual([rollbackCommit.id, handCommit.id, apiCommit.id, first.id]);
    // Each commit shows its own run, even where two hold the same content.
    expect(listed.commits[0]!.sync).not.toBeNull();
    expect(listed.commits[3]!.sync!.at < listed.commits[0]!.sync!.at).toBe(true);
    expect(listed.next).toBeNull();
    const paged = await history(ch, `?limit=2&before=${handCommit.id}`);
    expect(paged.commits.map((c) => c.id)).toEqual([apiCommit.id, first.id]);
  });

  it('when a commit is shown or two commits compared, then the diff is exact, key by key and as text', async () => {
    ch = await startConfhub({ systemIni: SYSTEM_INI, configExtra: '\n[custom]\nold_setting = gone soon\n' });
    const base = await committed(ch);
    await json(await ch.api('/api/v1/settings', { method: 'PATCH', body: JSON.stringify({ gitea: { user_name: 'root', user_pwd: 'Fresh-Password-123' } }) }));
    const after = await committed(ch);
    writeFileSync(ch.config.configPath, ch.readConfig().replace('old_setting = gone soon\n', 'new_setting = here\n'));
    const last = await committed(ch);

    const shown = await json<{ id: string; diff: unknown; unified: string }>(await ch.api(`/api/v1/settings/history/${after.id}`));
    expect(shown.diff).toEqual({
      added: {},
      removed: {},
      changed: { 'gitea.user_name': { old: 'websoft9', new: 'root' }, 'gitea.user_pwd': { old: '******', new: '******' } },
    });
    expect(shown.unified).toMatch(/^-user_name = websoft9$/m);
    expect(shown.unified).toMatch(/^\+user_name = root$/m);
    expect(shown.unified).toMatch(/^-user_pwd = \*{6}$/m);
    expect(shown.unified).toMatch(/^\+user_pwd = \*{6}$/m);
    expect(shown.unified).not.toContain('enc:v1:');
    expect(shown.unified).not.toContain('Fresh-Password-123');

    const between = await json<{ from: string; to: string; diff: unknown }>(await ch.api(`/api/v1/settings/diff?from=${base.id}`));
    expect(between.to).toBe(last.id);
    expect(between.diff).toEqual({
      added: { 'custom.new_setting': 'here' },
      removed: { 'custom.old_setting': 'gone soon' },
      changed: { 'gitea.user_name': { old: 'websoft9', new: 'root' }, 'gitea.user_pwd': { old: '******', new: '******' } },
    });
    const back = await json<{ diff: unknown }>(await ch.api(`/api/v1/settings/diff?from=${last.id}&to=${after.id}`));
    expect(back.diff).toEqual({ added: { 'custom.old_setting': 'gone soon' }, removed: { 'custom.new_setting': 'here' }, changed: {} });
  });

  it('when rolling back to a commit three revisions back, then config.ini is that commit byte for byte, the target follows, and it is a new commit', async () => {
    ch = await startConfhub({ systemIni: SYSTEM_INI, configExtra: '\n; operator notes\n[custom]\nnote = v1\n' });
    writeFileSync(ch.config.configPath, ch.readConfig().replace('port = 9090', '; the console port\nport = 9100'));
    const target = await committed(ch);
    const bytes = readFileSync(ch.config.configPath);
    await eventually('the target has 9100', () => output(ch).includes('9100'));
    for (const [i, port] of [9101, 9102, 9103].entries()) {
      await json(await ch.api(`/api/v1/settings/cockpit?key=port&value=${port}&wait=true`, { method: 'PUT' }));
      if (i === 1) writeFileSync(ch.config.configPath, ch.readConfig().replace('; operator notes\n', ''));
    }
    const before = (await history(ch)).commits.length;
    const res = await json<{ sync: { outcome: string } }>(
      await ch.api('/api/v1/settings/rollback?wait=true', { method: 'POST', body: JSON.stringify({ commit: target.id }) }),
    );
    expect(res.sync.outcome).toBe('applied');
    expect(readFileSync(ch.config.configPath).equals(bytes)).toBe(true);
    expect(output(ch)).toMatch(/^port=9100$/m);
    const top = await committed(ch);
    expect(top).toMatchObject({ source: 'rollback', rollbackOf: target.id });
    expect((await history(ch)).commits.length).toBe(before + 1);
    expect(git(ch, 'cat-file', 'blob', `${top.id}:config.ini`)).toBe(bytes.toString('utf8'));
    const audit = await json<{ entries: { action: string; key: string }[] }>(await ch.api('/api/v1/audit?section=cockpit&limit=1'));
    expect(audit.entries[0]).toMatchObject({ action: 'settings.rollback', key: 'port' });
  });

  it('when nothing changes (same value, or the same bytes saved again), then no commit is made', async () => {
    ch = await startConfhub({ systemIni: SYSTEM_INI });
    const top = await committed(ch);
    await json(await ch.api('/api/v1/settings/cockpit?key=port&value=9090', { method: 'PUT' }));
    writeFileSync(ch.config.configPath, readFileSync(ch.config.configPath));
    await json(await ch.api('/api/v1/settings/reload?wait=true', { method: 'POST' }));
    expect((await history(ch)).commits.map((c) => c.id)).toEqual([top.id]);
    const same = await json<{ changed: string[]; sync: { outcome: string } }>(
      await ch.api('/api/v1/settings/rollback?wait=true', { method: 'POST', body: JSON.stringify({ commit: top.id }) }),
    );
    expect(same).toMatchObject({ changed: [], sync: { outcome: 'unchanged' } });
    expect((await history(ch)).commits).toHaveLength(1);
  });

  it.each([
    ['malformed', 'not-hex', 400, 'INVALID_REQUEST'],
    ['an option', '--all', 400, 'INVALID_REQUEST'],
    ['too short', 'abc', 400, 'INVALID_REQUEST'],
    ['unknown', 'deadbeefdeadbeef', 404, 'COMMIT_NOT_FOUND'],
  ])('when a commit id is %s (%s), then history, diff and rollback answer %i %s and change nothing', async (_label, id, status, code) => {
    ch = await startConfhub({ systemIni: SYSTEM_INI });
    await committed(ch);
    const before = ch.readConfig();
    for (const res of [
      await ch.api(`/api/v1/settings/history/${encodeURIComponent(id)}`),
      await ch.api(`/api/v1/settings/diff?from=${encodeURIComponent(id)}`),
      await ch.api(`/api/v1/settings/history?before=${encodeURIComponent(id)}`),
      await ch.api('/api/v1/settings/rollback', { method: 'POST', body: JSON.stringify({ commit: id }) }),
    ]) {
      const body = await json<{ code: string; message: string; details: string }>(res, status);
      expect(body).toMatchObject({ code, message: expect.any(String), details: expect.any(String) });
    }
    expect(ch.readConfig()).toBe(before);
  });

  it.each([
    ['no body', undefined],
    ['no commit', '{}'],
    ['a number', '{"commit": 12345}'],
    ['extra fields', '{"commit": "abcd", "force": true}'],
  ])('when the rollback body has %s, then 400', async (_label, body) => {
    ch = await startConfhub({ systemIni: SYSTEM_INI });
    const res = await ch.api('/api/v1/settings/rollback', { method: 'POST', ...(body ? { body } : {}) });
    expect((await json<{ code: string }>(res, 400)).code).toBe('INVALID_REQUEST');
  });

  it("when a commit holds content that fails today's validation, then the rollback answers 400 naming the keys and config.ini stays", async () => {
    ch = await startConfhub({ systemIni: SYSTEM_INI });
    const head = await committed(ch);
    // A revision committed under other rules (by an older confhub, say): made with git itself.
    const bad = ch.readConfig().replace('port = 9090', 'port = 99999');
    const blob = execFileSync('git', ['hash-object', '-w', '--stdin'], { input: bad, env: { PATH: process.env.PATH!, GIT_DIR: ch.config.historyDir } })
      .toString()
      .trim();
    const tree = execFileSync('git', ['mktree'], {
      input: `100644 blob ${blob}\tconfig.ini\n`,
      env: { PATH: process.env.PATH!, GIT_DIR: ch.config.historyDir },
    })
      .toString()
      .trim();
    const env = {
      PATH: process.env.PATH!,
      GIT_DIR: ch.config.historyDir,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    };
    const commit = execFileSync('git', ['commit-tree', tree, '-p', head.id, '-m', 'old rules'], { env }).toString().trim();
    const before = ch.readConfig();
    const res = await ch.api('/api/v1/settings/rollback', { method: 'POST', body: JSON.stringify({ commit }) });
    const body = await json<{ code: string; details: string; errors: { field: string }[] }>(res, 400);
    expect(body.code).toBe('VALIDATION_FAILED');
    expect(body.errors.map((e) => e.field)).toEqual(['cockpit.port']);
    expect(ch.readConfig()).toBe(before);
    const audit = await json<{ entries: { action: string; result: string }[] }>(await ch.api('/api/v1/audit?limit=1'));
    expect(audit.entries[0]).toMatchObject({ action: 'settings.rollback', result: 'refused' });
  });

  describe('push to a remote', () => {
    const remotes: string[] = [];
    afterEach(() => {
      for (const dir of remotes.splice(0)) rmSync(dir, { recursive: true, force: true });
    });

    interface PushStatus {
      state: string;
      pushedCommit: string | null;
      lastError: { details: string } | null;
      consecutiveFailures: number;
    }
    const pushStatus = async (c: Confhub): Promise<PushStatus> =>
      (await json<{ history: { push: PushStatus } }>(await c.api('/api/v1/sync/status'))).history.push;

    it('when system.ini declares a remote, then every commit is pushed to it and status says in_sync', async () => {
      const root = mkdtempSync(join(tmpdir(), 'confhub-remote-'));
      remotes.push(root);
      execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', join(root, 'config.git')]);
      const server = await startGitHttpServer({ root, user: 'confhub', token: 'remote-token-3xQ' });
      try {
        writeFileSync(join(root, 'token'), 'remote-token-3xQ\n');
        ch = await startConfhub({
          systemIni: `${SYSTEM_INI}\n[history]\nremote = ${server.url}/config.git\nbranch = settings\ntoken_file = ${join(root, 'token')}\n`,
        });
        await json(await ch.api('/api/v1/settings/cockpit?key=port&value=9200&wait=true', { method: 'PUT' }));
        const head = await committed(ch);
        await eventually('the commit is pushed', async () => (await pushStatus(ch)).pushedCommit === head.id);
        expect((await pushStatus(ch)).state).toBe('in_sync');
        expect(execFileSync('git', ['--git-dir', join(root, 'config.git'), 'rev-parse', 'refs/heads/settings'], { encoding: 'utf8' }).trim()).toBe(head.id);
        expect(readFileSync(join(ch.config.historyDir, 'config'), 'utf8')).not.toContain('remote-token-3xQ');
      } finally {
        await server.close();
      }
    });

    it('when the remote is down, then local commits and writes go on, status shows the failure, and the push lands once it is up', async () => {
      const root = mkdtempSync(join(tmpdir(), 'confhub-remote-'));
      remotes.push(root);
      execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', join(root, 'config.git')]);
      const port = await freePort();
      writeFileSync(join(root, 'token'), 'remote-token-8pL\n');
      ch = await startConfhub({
        systemIni: `${SYSTEM_INI}\n[history]\nremote = http://127.0.0.1:${port}/config.git\ntoken_file = ${join(root, 'token')}\nretry_max = 2\n`,
      });
      const first = await committed(ch);
      await eventually('the push failed', async () => (await pushStatus(ch)).state === 'failed');
      const failed = await pushStatus(ch);
      expect(failed.pushedCommit).toBeNull();
      expect(failed.lastError?.details).toMatch(/\S/);
      expect(failed.lastError?.details).not.toContain('remote-token-8pL');
      // A failing remote blocks nothing: the next write is applied and committed at once.
      expect(
        (await json<{ sync: { outcome: string } }>(await ch.api('/api/v1/settings/cockpit?key=port&value=9300&wait=true', { method: 'PUT' }))).sync.outcome,
      ).toBe('applied');
      const head = await committed(ch);
      expect(head.parent).toBe(first.id);
      const server = await startGitHttpServer({ root, user: 'confhub', token: 'remote-token-8pL', port });
      try {
        await eventually('the retry pushed', async () => (await pushStatus(ch)).pushedCommit === head.id, 15_000);
        expect((await pushStatus(ch)).state).toBe('in_sync');
      } finally {
        await server.close();
      }
    });
  });
});
