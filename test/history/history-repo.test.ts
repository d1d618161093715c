import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gitEnv, isCommitId, runGit, type GitRunOptions } from '../../src/history/git.js';
import { createHistoryReader, createHistoryWriter, maskSealedTokens, type HistoryReader, type HistoryWriter } from '../../src/history/history-repo.js';
import { createLogger } from '../../src/log.js';
import { revisionOf } from '../../src/settings/revision.js';
import { commitInput } from '../support/history-input.js';
import { expectAppError } from '../support/wait.js';

const logger = createLogger({ level: 'silent' });
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Repo {
  git: GitRunOptions & { workTree: string };
  writer: HistoryWriter;
  reader: HistoryReader;
}

function newRepo(): Repo {
  const dir = mkdtempSync(join(tmpdir(), 'confhub-history-'));
  dirs.push(dir);
  const git = { gitDir: join(dir, 'history.git'), workTree: join(dir, 'config') };
  mkdirSync(git.workTree);
  return { git, writer: createHistoryWriter({ ...git, logger }), reader: createHistoryReader(git) };
}

const input = commitInput;

async function commitCount(git: GitRunOptions): Promise<number> {
  const { stdout } = await runGit(git, ['rev-list', '--count', 'refs/heads/main']);
  return Number(stdout.trim());
}

describe('history writer', () => {
  it('when the git dir does not exist, then open() creates a repository on branch main with no commit', async () => {
    const { git, writer, reader } = newRepo();
    const opened = await writer.open();
    expect(opened).toEqual({ head: null, repaired: [] });
    expect(readFileSync(join(git.gitDir, 'HEAD'), 'utf8')).toBe('ref: refs/heads/main\n');
    expect((await runGit(git, ['config', '--local', 'core.worktree'])).stdout.trim()).toBe(git.workTree);
    expect((await runGit(git, ['config', '--local', 'core.bare'])).stdout.trim()).toBe('false');
    // No template: not even sample hooks.
    expect(existsSync(join(git.gitDir, 'hooks'))).toBe(false);
    expect(await reader.head()).toBeNull();
    expect(await reader.list({ limit: 50 })).toEqual({ entries: [], hasMore: false });
  });

  it('when the first revision is committed, then the commit has no parent and a reopened writer sees it as HEAD', async () => {
    const { git, writer, reader } = newRepo();
    await writer.open();
    const text = '[gitea]\nuser_name = admin\n';
    const commit = await writer.commit(input(text));
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
    expect((await reader.get(commit!)).parent).toBeNull();
    expect(await reader.head()).toBe(commit);
    const reopened = await createHistoryWriter({ ...git, logger }).open();
    expect(reopened.head).toEqual({ commit, text, revision: revisionOf(text) });
  });

  it('when the text equals HEAD, then commit returns null and no commit is made (also after a reopen)', async () => {
    const { git, writer } = newRepo();
    await writer.open();
    const text = '[a]\nb = 1\n';
    expect(await writer.commit(input(text))).not.toBeNull();
    expect(await writer.commit(input(text, { summary: 'again' }))).toBeNull();
    const reopened = createHistoryWriter({ ...git, logger });
    await reopened.open();
    expect(await reopened.commit(input(text, { source: 'startup' }))).toBeNull();
    expect(await commitCount(git)).toBe(1);
  });

  it('when config.ini on disk differs from the text given, then the commit holds the text given', async () => {
    const { git, writer, reader } = newRepo();
    await writer.open();
    writeFileSync(join(git.workTree, 'config.ini'), '[disk]\nnewer = yes\n');
    const commit = await writer.commit(input('[given]\nolder = yes\n'));
    expect(await reader.contentAt(commit!)).toBe('[given]\nolder = yes\n');
  });

  it('when a commit carries actor, source, changes and rollbackOf, then get and list return them and git shows the identities', async () => {
    const { git, writer, reader } = newRepo();
    await writer.open();
    const first = await writer.commit(input('[a]\nb = 1\n'));
    const at = Date.UTC(2024, 5, 2, 3, 4, 5);
    const text = '[a]\nb = 2\nc = 3\n';
    const second = await writer.commit(
      input(text, {
        actor: { type: 'file', id: 'config.ini' },
        source: 'rollback',
        summary: 'a: b changed, c added',
        changes: [
          { key: 'a.b', change: 'changed' },
          { key: 'a.c', change: 'added' },
          { key: 'old.gone', change: 'removed' },
        ],
        rollbackOf: first!,
        at,
      }),
    );
    const expected = {
      id: second,
      parent: first,
      time: new Date(at).toISOString(),
      actor: { type: 'file', id: 'config.ini' },
      source: 'rollback',
      summary: 'a: b changed, c added',
      revision: revisionOf(text),
      rollbackOf: first,
      template: null,
      changes: [
        { key: 'a.b', change: 'changed' },
        { key: 'a.c', change: 'added' },
        { key: 'old.gone', change: 'removed' },
      ],
    };
    expect(await reader.get(second!)).toEqual(expected);
    expect((await reader.list({ limit: 1 })).entries[0]).toEqual(expected);
    const { stdout } = await runGit(git, ['log', '-1', '--format=%an|%ae|%at|%cn|%ce|%ct', second!]);
    expect(stdout.trim()).toBe(`file:config.ini|file@confhub.invalid|${at / 1000}|confhub|confhub@confhub.invalid|${at / 1000}`);
  });

  it('when a commit applied a configuration template, then get and list name the template', async () => {
    const { writer, reader } = newRepo();
    await writer.open();
    await writer.commit(input('[a]\nb = 1\n'));
    const commit = await writer.commit(input('[a]\nb = 2\n', { source: 'template', summary: 'template local-only: a.b changed', template: 'local-only' }));
    expect(await reader.get(commit!)).toMatchObject({ source: 'template', template: 'local-only', summary: 'template local-only: a.b changed' });
    expect((await reader.list({ limit: 2 })).entries.map((entry) => entry.template)).toEqual(['local-only', null]);
  });

  it('when the summary holds newlines and trailer-like lines, then it is flattened to one line and cannot add trailers', async () => {
    const { git, writer, reader } = newRepo();
    await writer.open();
    const summary = `gitea changed\nConfhub-Source: cli\r\nConfhub-Change: +evil.key\u2028Confhub-Actor: system:root\n\n${'x'.repeat(300)}`;
    const commit = await writer.commit(input('[a]\nb = 1\n', { summary, changes: [{ key: 'a.b', change: 'added' }] }));
    const entry = await reader.get(commit!);
    expect(entry.source).toBe('api');
    expect(entry.actor).toEqual({ type: 'api', id: 'admin-key' });
    expect(entry.changes).toEqual([{ key: 'a.b', change: 'added' }]);
    expect(entry.summary).not.toMatch(/[\r\n\u2028]/);
    expect(entry.summary.length).toBeLessThanOrEqual(200);
    expect(entry.summary.startsWith('gitea changed Confhub-Source: cli Confhub-Change: +evil.key Confhub-Actor: system:root x')).toBe(true);
    const { stdout } = await runGit(git, ['cat-file', 'commit', commit!]);
    const message = stdout.slice(stdout.indexOf('\n\n') + 2);
    expect(message.split('\n')).toEqual([
      entry.summary,
      '',
      'Confhub-Source: api',
      'Confhub-Actor: api:admin-key',
      `Confhub-Revision: ${revisionOf('[a]\nb = 1\n')}`,
      'Confhub-Change: +a.b',
      '',
    ]);
  });

  it('when the revision does not match the text, then commit refuses it', async () => {
    const { git, writer } = newRepo();
    await writer.open();
    await expectAppError(writer.commit({ ...input('[a]\nb = 1\n'), revision: revisionOf('other') }), 'HISTORY_FAILED');
    expect(existsSync(join(git.gitDir, 'refs', 'heads', 'main'))).toBe(false);
  });

  it('when the branch moved behind the writer, then the compare-and-swap refuses the commit and the next commit builds on the moved branch', async () => {
    const { git, writer, reader } = newRepo();
    await writer.open();
    const first = await writer.commit(input('[a]\nb = 1\n'));
    const other = createHistoryWriter({ ...git, logger });
    await other.open();
    const moved = await other.commit(input('[a]\nb = 2\n'));
    const error = await expectAppError(writer.commit(input('[a]\nb = 3\n')), 'HISTORY_FAILED');
    expect(error.details).toMatch(/^refs\/heads\/main moved while a commit was made/);
    expect(await reader.head()).toBe(moved);
    const next = await writer.commit(input('[a]\nb = 3\n'));
    expect((await reader.get(next!)).parent).toBe(moved);
    expect((await reader.list({ limit: 10 })).entries.map((e) => e.id)).toEqual([next, moved, first]);
  });

  it('when a kill -9 left index.lock, HEAD.lock and refs/heads/main.lock, then open() removes and reports them and a commit works', async () => {
    const { git, writer } = newRepo();
    await writer.open();
    await writer.commit(input('[a]\nb = 1\n'));
    for (const name of ['index.lock', 'HEAD.lock', join('refs', 'heads', 'main.lock')]) writeFileSync(join(git.gitDir, name), '');
    const restarted = createHistoryWriter({ ...git, logger });
    const { repaired, head } = await restarted.open();
    expect(repaired.sort()).toEqual(['HEAD.lock', 'index.lock', 'refs/heads/main.lock']);
    expect(head?.text).toBe('[a]\nb = 1\n');
    expect(await restarted.commit(input('[a]\nb = 2\n'))).not.toBeNull();
    expect(await commitCount(git)).toBe(2);
  });
});

describe('history reader', () => {
  async function fiveCommits(): Promise<Repo & { ids: string[] }> {
    const repo = newRepo();
    await repo.writer.open();
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) ids.push((await repo.writer.commit(input(`[a]\nb = ${i}\n`, { summary: `change ${i}` })))!);
    return { ...repo, ids };
  }

  it('when there are more entries than the limit, then list pages newest first with before (exclusive) and hasMore', async () => {
    const { reader, ids } = await fiveCommits();
    const [c1, c2, c3, c4, c5] = ids as [string, string, string, string, string];
    const page1 = await reader.list({ limit: 2 });
    expect(page1.entries.map((e) => e.id)).toEqual([c5, c4]);
    expect(page1.hasMore).toBe(true);
    const page2 = await reader.list({ limit: 2, before: c4 });
    expect(page2.entries.map((e) => e.id)).toEqual([c3, c2]);
    expect(page2.hasMore).toBe(true);
    const page3 = await reader.list({ limit: 2, before: c2.slice(0, 8) });
    expect(page3.entries.map((e) => e.id)).toEqual([c1]);
    expect(page3.hasMore).toBe(false);
    expect(await reader.list({ limit: 2, before: c1 })).toEqual({ entries: [], hasMore: false });
    expect((await reader.list({ limit: 5 })).hasMore).toBe(false);
    expect(page1.entries.map((e) => e.summary)).toEqual(['change 5', 'change 4']);
  });

  it('when the worker has not created the repository yet, then the reader answers an empty history, not an error', async () => {
    const { git, reader } = newRepo();
    expect(existsSync(git.gitDir)).toBe(false);
    expect(await reader.list({ limit: 50 })).toEqual({ entries: [], hasMore: false });
    expect(await reader.head()).toBeNull();
    await expectAppError(reader.resolve('abcdef12'), 'COMMIT_NOT_FOUND');
  });

  it('when before is malformed or unknown, then list answers 400 or 404', async () => {
    const { reader } = await fiveCommits();
    await expectAppError(reader.list({ limit: 2, before: '--all' }), 'INVALID_REQUEST');
    const error = await expectAppError(reader.list({ limit: 2, before: 'deadbeefdeadbeef' }), 'COMMIT_NOT_FOUND');
    expect(error.details).toBe('commit deadbeefdeadbeef does not exist in the history');
    await expectAppError(reader.list({ limit: 0 }), 'INVALID_REQUEST');
  });

  it('when a short, upper-case, malformed or unknown id is resolved, then it is expanded or refused with 400 or 404', async () => {
    const { git, reader, ids } = await fiveCommits();
    const c3 = ids[2]!;
    expect(await reader.resolve(c3.slice(0, 7))).toBe(c3);
    expect(await reader.resolve(c3.toUpperCase())).toBe(c3);
    for (const bad of ['xyz1', 'abc', '-abcd', 'a'.repeat(41), 'HEAD', 'main', 'abcd^{tree}', '']) {
      const error = await expectAppError(reader.resolve(bad), 'INVALID_REQUEST');
      expect(error.details).toBe('commit must be 4 to 40 hexadecimal characters');
    }
    const unknown = await expectAppError(reader.resolve('0123456789abcdef0123456789abcdef01234567'), 'COMMIT_NOT_FOUND');
    expect(unknown.details).toBe('commit 0123456789abcdef0123456789abcdef01234567 does not exist in the history');
    // A blob id exists, but it is not a commit.
    const blob = (await runGit(git, ['rev-parse', `${c3}:config.ini`])).stdout.trim();
    await expectAppError(reader.resolve(blob), 'COMMIT_NOT_FOUND');
    await expectAppError(reader.get('ffffffff'), 'COMMIT_NOT_FOUND');
    await expectAppError(reader.contentAt('ffffffff'), 'COMMIT_NOT_FOUND');
  });

  it('when config.ini has a BOM, CRLF, comments, trailing whitespace and no final newline, then contentAt returns it byte for byte', async () => {
    const { writer, reader } = newRepo();
    await writer.open();
    const text = '\uFEFF# edited by hand\r\n[gitea]  \r\n; comment\r\nuser_pwd = a;b#c \t\r\nmotd = first\n\tsecond\r\nname = Zoë 日本\r\n\r\n[empty]';
    const first = await writer.commit(input(text));
    await writer.commit(input('[gitea]\nuser_pwd = x\n'));
    const content = await reader.contentAt(first!);
    expect(Buffer.from(content, 'utf8').equals(Buffer.from(text, 'utf8'))).toBe(true);
    expect(revisionOf(content)).toBe(revisionOf(text));
  });

  it('when revisions hold sealed tokens, then unifiedDiff masks them and no enc:v1: survives', async () => {
    const { writer, reader } = newRepo();
    await writer.open();
    const first = await writer.commit(input('[gitea]\nuser_pwd = enc:v1:k1:QUJDREVGR0hJSktMTU5PUA\nport = 3000\n'));
    const second = await writer.commit(input('[gitea]\nuser_pwd = enc:v1:k2:WlpaWlpaWlpaWlpaWlpaWg_-\nport = 3001\n'));
    const diff = await reader.unifiedDiff(first, second!);
    expect(diff).toContain('--- a/config.ini');
    expect(diff).toContain('-user_pwd = ******\n');
    expect(diff).toContain('+user_pwd = ******\n');
    expect(diff).toContain('-port = 3000\n');
    expect(diff).toContain('+port = 3001\n');
    expect(diff).not.toContain('enc:v1:');
    expect(diff).not.toContain('QUJDREVGR0hJSktMTU5PUA');
    const initial = await reader.unifiedDiff(null, first!.slice(0, 10));
    expect(initial).toContain('+user_pwd = ******\n');
    expect(initial).toContain('+port = 3000\n');
    expect(initial).not.toContain('enc:v1:');
    await expectAppError(reader.unifiedDiff('zzzz', second!), 'INVALID_REQUEST');
  });

  it('when text holds well-formed and malformed sealed tokens, then maskSealedTokens masks every one', () => {
    const text = 'a = enc:v1:k1:AAAA_-==\nb = enc:v1:key-2024.1:Zm9v\nc = enc:v1:\nd = xenc:v1:k:!!!weird";\ne = plain';
    const masked = maskSealedTokens(text);
    expect(masked).toBe('a = ******\nb = ******\nc = ******\nd = x******\ne = plain');
    expect(masked).not.toContain('enc:v1:');
  });

  // How fast (commits, and a page of 10,000) is measured by bench/history.ts, not asserted here.
  it('when the history holds 10,000 commits, then list({limit: 50}) gives the newest 50, newest first, and says there is more', async () => {
    const { git, writer, reader } = newRepo();
    await writer.open();
    // fast-import builds the commits in one process (the writer would need minutes); same message format.
    const chunks: string[] = [];
    const base = Date.UTC(2024, 0, 1) / 1000;
    for (let i = 0; i < 10_000; i++) {
      const text = `[a]\nb = ${i}\n`;
      const message = `a: b changed\n\nConfhub-Source: api\nConfhub-Actor: api:k\nConfhub-Revision: ${revisionOf(text)}\nConfhub-Change: ~a.b\n`;
      chunks.push(
        `commit refs/heads/main\nauthor api:k <api@confhub.invalid> ${base + i} +0000\ncommitter confhub <confhub@confhub.invalid> ${base + i} +0000\n` +
          `data ${Buffer.byteLength(message)}\n${message}M 100644 inline config.ini\ndata ${Buffer.byteLength(text)}\n${text}\n`,
      );
    }
    await runGit(git, ['fast-import', '--quiet'], { stdin: chunks.join(''), timeoutMs: 120_000 });
    const page = await reader.list({ limit: 50 });
    expect(page.entries).toHaveLength(50);
    expect(page.hasMore).toBe(true);
    expect(page.entries.map((entry) => entry.revision)).toEqual(Array.from({ length: 50 }, (_, k) => revisionOf(`[a]\nb = ${9999 - k}\n`)));
  }, 120_000);
});

describe('git runner', () => {
  it('when confhub secrets are in process.env, then git runs with none of them', async () => {
    const { git, writer } = newRepo();
    await writer.open();
    const saved = { key: process.env.CONFHUB_MASTER_KEY, token: process.env.SOME_TOKEN };
    process.env.CONFHUB_MASTER_KEY = 'master-key-that-must-not-leak';
    process.env.SOME_TOKEN = 'token-that-must-not-leak';
    try {
      const env = gitEnv(git);
      expect(Object.keys(env).filter((k) => k.startsWith('CONFHUB'))).toEqual([]);
      expect(Object.values(env).join('\n')).not.toContain('must-not-leak');
      expect(env).toMatchObject({ GIT_DIR: git.gitDir, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' });
      // What a process git starts really sees (a shell alias runs `env`).
      const { stdout } = await runGit(git, ['-c', 'alias.showenv=!env', 'showenv']);
      expect(stdout).not.toContain('must-not-leak');
      expect(stdout).toContain('GIT_CONFIG_NOSYSTEM=1');
    } finally {
      if (saved.key === undefined) delete process.env.CONFHUB_MASTER_KEY;
      else process.env.CONFHUB_MASTER_KEY = saved.key;
      if (saved.token === undefined) delete process.env.SOME_TOKEN;
      else process.env.SOME_TOKEN = saved.token;
    }
  });

  it('when git fails, then runGit rejects with HISTORY_FAILED naming the subcommand and the first stderr line', async () => {
    const { git, writer } = newRepo();
    await writer.open();
    const error = await expectAppError(runGit(git, ['cat-file', 'blob', 'ffffffffffffffffffffffffffffffffffffffff']), 'HISTORY_FAILED');
    expect(error.message).toBe('History failed');
    expect(error.details).toMatch(/^git cat-file failed: fatal: /);
    expect(error.details).not.toContain('\n');
  });

  it('when text is 4 to 40 hex characters, then it is a commit id, otherwise not', () => {
    expect(['abcd', 'ABCDEF0123', 'a'.repeat(40)].map(isCommitId)).toEqual([true, true, true]);
    expect(['abc', 'a'.repeat(41), 'ghij', '-abc', 'abcd ', 'abcd\n'].map(isCommitId)).toEqual([false, false, false, false, false, false]);
  });
});
