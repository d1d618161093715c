/**
 * The history's commits are written without git (src/history/git-objects.ts); real git must read
 * them as its own: same object ids as git computes, `fsck --strict` clean, the reflog and packed
 * refs honoured, and git's lock respected.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runGit, type GitRunOptions } from '../../src/history/git.js';
import { OBJECT_TEMP_PREFIX, commitContent, gitObject, readRef, singleFileTree, updateRef, writeObject } from '../../src/history/git-objects.js';
import { commitMessage, createHistoryReader, createHistoryWriter } from '../../src/history/history-repo.js';
import { createLogger } from '../../src/log.js';
import { commitInput } from '../support/history-input.js';
import { expectAppError } from '../support/wait.js';

const logger = createLogger({ level: 'silent' });
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function newRepo(): GitRunOptions & { workTree: string } {
  const dir = mkdtempSync(join(tmpdir(), 'confhub-git-objects-'));
  dirs.push(dir);
  const git = { gitDir: join(dir, 'history.git'), workTree: join(dir, 'config') };
  mkdirSync(git.workTree);
  return git;
}

const input = commitInput;

const who = { name: 'confhub', email: 'confhub@confhub.invalid' };

describe('git objects written without git', () => {
  it('when a blob, tree and commit are written, then their ids are the ones git computes for the same content', async () => {
    const git = newRepo();
    await createHistoryWriter({ ...git, logger }).open();
    // Not ASCII, a CRLF and a final line without newline: bytes in, bytes out.
    const text = '[gitea]\r\nuser_name = Zoë\n# 設定\nlast = x';
    const blob = await writeObject(git.gitDir, 'blob', Buffer.from(text, 'utf8'));
    expect(blob).toBe((await runGit(git, ['hash-object', '--no-filters', '--stdin'], { stdin: text })).stdout.trim());
    const tree = await writeObject(git.gitDir, 'tree', singleFileTree('config.ini', blob));
    expect(tree).toBe((await runGit(git, ['mktree'], { stdin: `100644 blob ${blob}\tconfig.ini\n` })).stdout.trim());
    const message = commitMessage(input(text, { changes: [{ key: 'gitea.user_name', change: 'changed' }], rollbackOf: 'a'.repeat(40) }));
    const date = '@1714564800 +0000';
    const byGit = (
      await runGit(git, ['commit-tree', tree], {
        stdin: message,
        env: {
          GIT_AUTHOR_NAME: 'api:admin-key',
          GIT_AUTHOR_EMAIL: 'api@confhub.invalid',
          GIT_AUTHOR_DATE: date,
          GIT_COMMITTER_NAME: who.name,
          GIT_COMMITTER_EMAIL: who.email,
          GIT_COMMITTER_DATE: date,
        },
      })
    ).stdout.trim();
    const content = commitContent({
      tree,
      parent: null,
      author: { name: 'api:admin-key', email: 'api@confhub.invalid' },
      committer: who,
      seconds: 1714564800,
      message,
    });
    expect(gitObject('commit', content).id).toBe(byGit);
    expect(await writeObject(git.gitDir, 'commit', content)).toBe(byGit);
    expect((await runGit(git, ['cat-file', 'blob', blob])).stdout).toBe(text);
  });

  it('when the writer commits a series, then git fsck --strict is clean, git log and the reflog show every commit, and no temp file stays', async () => {
    const git = newRepo();
    const writer = createHistoryWriter({ ...git, logger });
    await writer.open();
    const commits: string[] = [];
    for (let i = 0; i < 5; i++) {
      const commit = await writer.commit(input(`[gitea]\nuser_name = admin${i}\n`, { at: Date.UTC(2024, 4, 1, 12, 0, i) }));
      commits.push(commit!);
    }
    await runGit(git, ['fsck', '--strict', '--no-dangling', '--no-progress']);
    expect((await runGit(git, ['rev-list', 'refs/heads/main'])).stdout.trim().split('\n')).toEqual([...commits].reverse());
    const reflog = (await runGit(git, ['reflog', 'show', '--format=%H %gs', 'refs/heads/main'])).stdout.trim().split('\n');
    expect(reflog).toEqual([...commits].reverse().map((c) => `${c} confhub: api`));
    const headLog = (await runGit(git, ['reflog', 'show', '--format=%H', 'HEAD'])).stdout.trim().split('\n');
    expect(headLog).toEqual([...commits].reverse());
    expect(await createHistoryReader(git).contentAt(commits[4]!)).toBe('[gitea]\nuser_name = admin4\n');
    expect(readdirSync(join(git.gitDir, 'objects')).filter((n) => n.startsWith(OBJECT_TEMP_PREFIX))).toEqual([]);
    // Loose objects are read-only, like git's own.
    const object = join(git.gitDir, 'objects', commits[0]!.slice(0, 2), commits[0]!.slice(2));
    expect(statSync(object).mode & 0o222).toBe(0);
    expect(existsSync(`${join(git.gitDir, 'refs', 'heads', 'main')}.lock`)).toBe(false);
  });

  it('when gc packed the branch and the objects, then the next commit reads its parent from packed-refs and fsck stays clean', async () => {
    const git = newRepo();
    const writer = createHistoryWriter({ ...git, logger });
    await writer.open();
    const first = await writer.commit(input('[a]\nb = 1\n'));
    await runGit(git, ['gc', '--quiet', '--prune=now']);
    expect(existsSync(join(git.gitDir, 'refs', 'heads', 'main'))).toBe(false);
    expect(await readRef(git.gitDir, 'refs/heads/main')).toBe(first);
    // A fresh writer (a restart) after the gc, writing the same content again as part of a new commit.
    const again = createHistoryWriter({ ...git, logger });
    await again.open();
    const second = await again.commit(input('[a]\nb = 2\n'));
    const third = await again.commit(input('[a]\nb = 1\n'));
    expect((await runGit(git, ['rev-list', 'refs/heads/main'])).stdout.trim().split('\n')).toEqual([third, second, first]);
    await runGit(git, ['fsck', '--strict', '--no-dangling', '--no-progress']);
  });

  it("when git holds the branch's lock, then the update is refused, the lock is left to git and the branch stays", async () => {
    const git = newRepo();
    const writer = createHistoryWriter({ ...git, logger });
    await writer.open();
    const first = await writer.commit(input('[a]\nb = 1\n'));
    const lock = join(git.gitDir, 'refs', 'heads', 'main.lock');
    writeFileSync(lock, '');
    const error = await expectAppError(
      updateRef(git.gitDir, { ref: 'refs/heads/main', to: 'f'.repeat(40), from: first, who, seconds: 0, reason: 'test' }),
      'HISTORY_FAILED',
    );
    expect(error.details).toMatch(/locked by another git/);
    expect(existsSync(lock)).toBe(true);
    expect(await readRef(git.gitDir, 'refs/heads/main')).toBe(first);
  });

  it('when the branch moved, then the update is refused and its lock removed', async () => {
    const git = newRepo();
    const writer = createHistoryWriter({ ...git, logger });
    await writer.open();
    const first = await writer.commit(input('[a]\nb = 1\n'));
    await expectAppError(updateRef(git.gitDir, { ref: 'refs/heads/main', to: 'f'.repeat(40), from: null, who, seconds: 0, reason: 'test' }), 'HISTORY_FAILED');
    expect(existsSync(join(git.gitDir, 'refs', 'heads', 'main.lock'))).toBe(false);
    expect(await readRef(git.gitDir, 'refs/heads/main')).toBe(first);
  });

  it('when a kill left a temp object file, then open() removes and reports it and commits work', async () => {
    const git = newRepo();
    await createHistoryWriter({ ...git, logger }).open();
    const temp = `${OBJECT_TEMP_PREFIX}123_abc_0`;
    writeFileSync(join(git.gitDir, 'objects', temp), 'half an object');
    const writer = createHistoryWriter({ ...git, logger });
    expect((await writer.open()).repaired).toEqual([join('objects', temp)]);
    expect(await writer.commit(input('[a]\nb = 1\n'))).toMatch(/^[0-9a-f]{40}$/);
    await runGit(git, ['fsck', '--strict', '--no-dangling', '--no-progress']);
  });

  it('when an object exists already, then it is kept and touched, so a gc does not take it for an old unreachable one', async () => {
    const git = newRepo();
    await createHistoryWriter({ ...git, logger }).open();
    const blob = await writeObject(git.gitDir, 'blob', Buffer.from('a = 1\n'));
    const path = join(git.gitDir, 'objects', blob.slice(0, 2), blob.slice(2));
    const longAgo = new Date(Date.UTC(2020, 0, 1));
    utimesSync(path, longAgo, longAgo);
    expect(await writeObject(git.gitDir, 'blob', Buffer.from('a = 1\n'))).toBe(blob);
    expect(statSync(path).mtimeMs).toBeGreaterThan(longAgo.getTime());
    expect(readdirSync(join(git.gitDir, 'objects')).filter((n) => n.startsWith(OBJECT_TEMP_PREFIX))).toEqual([]);
  });

  it('when the file system refuses a write, then the commit fails with HISTORY_FAILED naming the error code, nothing of the path, and the branch stays', async () => {
    const git = newRepo();
    const writer = createHistoryWriter({ ...git, logger });
    await writer.open();
    const first = await writer.commit(input('[a]\nb = 1\n'));
    // The branch's reflog directory is a file: appending the reflog line fails (ENOTDIR).
    rmSync(join(git.gitDir, 'logs'), { recursive: true, force: true });
    writeFileSync(join(git.gitDir, 'logs'), '');
    const error = await expectAppError(writer.commit(input('[a]\nb = 2\n')), 'HISTORY_FAILED');
    expect(error.details).toBe('writing a commit to the history failed (ENOTDIR)');
    expect(await readRef(git.gitDir, 'refs/heads/main')).toBe(first);
    expect(existsSync(join(git.gitDir, 'refs', 'heads', 'main.lock'))).toBe(false);
  });

  it('when an identity holds an angle bracket or a line break, then no commit is written', () => {
    for (const name of ['a<b', 'a>b', 'a\nb']) {
      expect(() => commitContent({ tree: 'a'.repeat(40), parent: null, author: { name, email: 'x@y' }, committer: who, seconds: 0, message: 'm\n' })).toThrow(
        expect.objectContaining({ code: 'HISTORY_FAILED', details: expect.stringMatching(/identity/) }),
      );
    }
  });
});
