import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { runGit, spawnGit, type GitRunOptions } from '../../src/history/git.js';
import { createHistoryReader, createHistoryWriter, type HistoryWriter } from '../../src/history/history-repo.js';
import { createHistoryPusher, parseHistoryConfig, type HistoryPushConfig, type HistoryPusher, type PushStatus } from '../../src/history/push.js';
import { createLogger } from '../../src/log.js';
import { revisionOf } from '../../src/settings/revision.js';
import { startGitHttpServer, type GitHttpServer } from '../support/git-http-server.js';
import { freePort } from '../support/ports.js';
import { createManualClock, type ManualClock } from '../support/manual-clock.js';
import { eventually } from '../support/wait.js';

const TOKEN = 'tok-3f9c1d2e7a5b4c6d';
const USER = 'confhub';
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  dir: string;
  git: GitRunOptions & { workTree: string };
  writer: HistoryWriter;
  /** GIT_PROJECT_ROOT of the served remotes; holds the bare `remote.git`. */
  root: string;
  bare: string;
  logs: () => string;
  logger: ReturnType<typeof createLogger>;
  commit: (text: string) => Promise<string>;
}

async function setup(): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'confhub-push-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const git = { gitDir: join(dir, 'data', 'history.git'), workTree: join(dir, 'data', 'config') };
  mkdirSync(git.workTree, { recursive: true });
  const chunks: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString('utf8'));
        callback();
      },
    }),
  });
  const writer = createHistoryWriter({ ...git, logger });
  await writer.open();
  const root = join(dir, 'remotes');
  const bare = join(root, 'remote.git');
  mkdirSync(root);
  await runGit({ gitDir: bare }, ['init', '--bare', '--quiet', '--initial-branch=main', '--template=']);
  await runGit({ gitDir: bare }, ['config', 'http.receivepack', 'true']);
  let n = 0;
  const commit = async (text: string) => {
    const id = await writer.commit({
      text,
      revision: revisionOf(text),
      actor: { type: 'api', id: 'k' },
      source: 'api',
      summary: `change ${++n}`,
      changes: [],
      at: Date.now(),
    });
    if (id === null) throw new Error('expected a commit');
    return id;
  };
  return { dir, git, writer, root, bare, logger, logs: () => chunks.join(''), commit };
}

async function serve(options: { root: string; token?: string; port?: number }): Promise<GitHttpServer> {
  const server = await startGitHttpServer({ root: options.root, user: USER, token: options.token ?? TOKEN, ...(options.port ? { port: options.port } : {}) });
  cleanups.push(() => server.close());
  return server;
}

async function remoteBranch(bare: string, branch = 'main'): Promise<string | null> {
  const exit = await spawnGit({ gitDir: bare }, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]);
  return exit.exitCode === 0 ? exit.stdout.toString('utf8').trim() : null;
}

interface PusherExtra {
  readToken?: () => string | undefined;
  retryBaseMs?: number;
  clock?: ManualClock;
  random?: () => number;
}

function pusherFor(s: Setup, config: HistoryPushConfig, extra: PusherExtra = {}) {
  const statuses: PushStatus[] = [];
  const pusher: HistoryPusher = createHistoryPusher({ git: s.git, config, logger: s.logger, onStatus: (status) => statuses.push(status), ...extra });
  cleanups.push(() => pusher.stop());
  return { pusher, statuses };
}

function config(remote: string, extra: Record<string, string> = {}, configDir = '/nonexistent/config'): HistoryPushConfig {
  return parseHistoryConfig(new Map(Object.entries({ remote, ...extra })), { configDir })!;
}

/** Every file under a directory, as bytes. */
function allFiles(dir: string): Array<{ path: string; bytes: Buffer }> {
  const out: Array<{ path: string; bytes: Buffer }> = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...allFiles(path));
    else out.push({ path, bytes: readFileSync(path) });
  }
  return out;
}

describe('history push over HTTP', () => {
  it('when a commit is scheduled, then the remote branch equals local HEAD and status says in_sync (token from token_file)', async () => {
    const s = await setup();
    const server = await serve({ root: s.root });
    const tokenFile = join(s.dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const { pusher, statuses } = pusherFor(s, config(`${server.url}/remote.git`, { token_file: tokenFile, branch: 'backup/confhub' }));
    const first = await s.commit('[a]\nb = 1\n');
    pusher.schedule();
    await eventually('the first commit is pushed', () => pusher.status().state === 'in_sync');
    expect(await remoteBranch(s.bare, 'backup/confhub')).toBe(first);
    const second = await s.commit('[a]\nb = 2\n');
    pusher.schedule();
    await eventually('the second commit is pushed', () => pusher.status().pushedCommit === second);
    expect(await remoteBranch(s.bare, 'backup/confhub')).toBe(second);
    expect(pusher.status()).toMatchObject({
      remote: `${server.url}/remote.git`,
      branch: 'backup/confhub',
      state: 'in_sync',
      lastError: null,
      consecutiveFailures: 0,
      nextAttemptAt: null,
    });
    expect(statuses.map((st) => st.state)).toContain('pushing');
    // The token travelled in the Authorization header.
    expect(server.requests.some((r) => r.authorization === `Basic ${Buffer.from(`${USER}:${TOKEN}`).toString('base64')}`)).toBe(true);
  });

  it('when commits are made during a push, then a follow-up push brings the remote to the newest one', async () => {
    const s = await setup();
    const server = await serve({ root: s.root });
    const { pusher } = pusherFor(s, config(`${server.url}/remote.git`), { readToken: () => TOKEN });
    await s.commit('[a]\nb = 1\n');
    pusher.schedule();
    await s.commit('[a]\nb = 2\n');
    pusher.schedule();
    const last = await s.commit('[a]\nb = 3\n');
    pusher.schedule();
    await eventually('the newest commit is pushed', () => pusher.status().pushedCommit === last && pusher.status().state === 'in_sync');
    expect(await remoteBranch(s.bare)).toBe(last);
  });

  it('when the token is wrong, then the state is failed with a clear error without the token, retries follow and local commits stay', async () => {
    const s = await setup();
    const server = await serve({ root: s.root });
    const wrong = 'wrong-token-8d7e6f5a4b3c';
    const clock = createManualClock();
    // The jitter draws the middle of its range: retries come after 10 ms, then 20 ms.
    const { pusher } = pusherFor(s, config(`${server.url}/remote.git`), { readToken: () => wrong, retryBaseMs: 20, clock, random: () => 0.5 });
    const first = await s.commit('[a]\nb = 1\n');
    pusher.schedule();
    await eventually('the first attempt failed', () => pusher.status().state === 'failed');
    expect(pusher.status()).toMatchObject({
      consecutiveFailures: 1,
      lastAttemptAt: new Date(clock.now()).toISOString(),
      nextAttemptAt: new Date(clock.now() + 10).toISOString(),
    });
    await clock.advance(9);
    // Still waiting: the retry has not started a millisecond early.
    expect(clock.pendingDue()).toEqual([clock.now() + 1]);
    expect(pusher.status()).toMatchObject({ state: 'failed', consecutiveFailures: 1 });
    await clock.advance(1);
    await eventually('the retry failed', () => pusher.status().consecutiveFailures === 2);
    expect(pusher.status().nextAttemptAt).toBe(new Date(clock.now() + 20).toISOString());
    const status = pusher.status();
    expect(status.state).toBe('failed');
    expect(status.lastError?.code).toBe('HISTORY_FAILED');
    expect(status.lastError?.details).toContain('refused the credentials (HTTP 401)');
    expect(status.nextAttemptAt).not.toBeNull();
    expect(status.lastAttemptAt).not.toBeNull();
    const shown = JSON.stringify(status) + s.logs();
    expect(shown).not.toContain(wrong);
    expect(shown).not.toContain(Buffer.from(`${USER}:${wrong}`).toString('base64'));
    expect(server.requests.every((r) => r.status === 401)).toBe(true);
    expect(await remoteBranch(s.bare)).toBeNull();
    // Local history untouched, and committing still works.
    expect(await createHistoryReader(s.git).head()).toBe(first);
    const second = await s.commit('[a]\nb = 2\n');
    expect((await createHistoryReader(s.git).list({ limit: 10 })).entries.map((e) => e.id)).toEqual([second, first]);
  });

  it('when the remote is down, then the state is failed, and once it listens on that port a retry brings it in_sync', async () => {
    const s = await setup();
    const port = await freePort();
    const clock = createManualClock();
    const { pusher } = pusherFor(s, config(`http://127.0.0.1:${port}/remote.git`), { readToken: () => TOKEN, retryBaseMs: 50, clock, random: () => 0.5 });
    const head = await s.commit('[a]\nb = 1\n');
    pusher.schedule();
    await eventually('the push failed', () => pusher.status().state === 'failed');
    expect(pusher.status().lastError?.details).toMatch(/Failed to connect|Couldn't connect|unable to access/);
    await serve({ root: s.root, port });
    await clock.advance(25);
    await eventually('the retry pushed', () => pusher.status().state === 'in_sync', 15_000);
    expect(pusher.status()).toMatchObject({ pushedCommit: head, consecutiveFailures: 0, lastError: null });
    expect(await remoteBranch(s.bare)).toBe(head);
  }, 30_000);

  it('when a token is used, then it appears nowhere in the git dir, its config or the logs', async () => {
    const s = await setup();
    const server = await serve({ root: s.root });
    process.env.CONFHUB_TEST_HISTORY_TOKEN = TOKEN;
    cleanups.push(() => {
      delete process.env.CONFHUB_TEST_HISTORY_TOKEN;
    });
    const { pusher } = pusherFor(s, config(`${server.url}/remote.git`, { token_env: 'CONFHUB_TEST_HISTORY_TOKEN' }));
    await s.commit('[a]\nb = 1\n');
    pusher.schedule();
    await eventually('pushed', () => pusher.status().state === 'in_sync');
    const forms = [TOKEN, Buffer.from(`${USER}:${TOKEN}`).toString('base64')];
    const config_ = readFileSync(join(s.git.gitDir, 'config'), 'utf8');
    expect(config_).not.toMatch(/extraheader|authorization/i);
    for (const { path, bytes } of allFiles(s.git.gitDir)) {
      for (const form of forms) expect(bytes.includes(form), `${path} holds the token`).toBe(false);
    }
    for (const form of forms) expect(s.logs()).not.toContain(form);
  });
});

describe('history push to a local bare repository', () => {
  it('when the remote is a file:// URL or an absolute path, then the commit is pushed there', async () => {
    const s = await setup();
    const head = await s.commit('[a]\nb = 1\n');
    for (const remote of [`file://${s.bare}`, s.bare]) {
      const branch = remote === s.bare ? 'by-path' : 'by-url';
      const { pusher } = pusherFor(s, config(remote, { branch }));
      pusher.schedule();
      await eventually(`pushed to ${remote}`, () => pusher.status().state === 'in_sync');
      expect(await remoteBranch(s.bare, branch)).toBe(head);
    }
  });

  it('when the remote branch has commits the local history lacks, then the push is refused, never forced', async () => {
    const s = await setup();
    // Someone else's history on the remote branch.
    const other = await setup();
    const foreign = await other.commit('[x]\ny = 1\n');
    await runGit(other.git, ['push', '--quiet', s.bare, `${foreign}:refs/heads/main`]);
    await s.commit('[a]\nb = 1\n');
    const { pusher } = pusherFor(s, config(s.bare), { retryBaseMs: 60_000 });
    pusher.schedule();
    await eventually('the push failed', () => pusher.status().state === 'failed');
    expect(pusher.status().lastError?.details).toContain('never force-pushes');
    expect(await remoteBranch(s.bare)).toBe(foreign);
  });

  it('when stop() is called during the retry wait, then no further attempt is made', async () => {
    const s = await setup();
    const port = await freePort();
    const clock = createManualClock();
    const { pusher, statuses } = pusherFor(s, config(`http://127.0.0.1:${port}/remote.git`), { readToken: () => TOKEN, retryBaseMs: 100, clock });
    await s.commit('[a]\nb = 1\n');
    pusher.schedule();
    await eventually('the push failed', () => pusher.status().state === 'failed');
    expect(clock.pendingDue()).toHaveLength(1);
    await pusher.stop();
    expect(clock.pendingDue()).toEqual([]);
    const seen = statuses.length;
    await clock.advance(10_000);
    pusher.schedule();
    await clock.settle();
    expect(statuses.length).toBe(seen);
    expect(pusher.status().consecutiveFailures).toBe(1);
  });

  it('when no [history] section exists, then the pusher is disabled and does nothing', async () => {
    const s = await setup();
    const pusher = createHistoryPusher({ git: s.git, config: undefined, logger: s.logger, onStatus: () => expect.fail('no status expected') });
    pusher.schedule();
    expect(pusher.status().state).toBe('disabled');
    await pusher.stop();
  });
});

describe('system.ini [history]', () => {
  const configDir = '/srv/data/config';
  const parse = (entries: Record<string, string>) => parseHistoryConfig(new Map(Object.entries(entries)), { configDir });

  function refusal(entries: Record<string, string>): AppError {
    try {
      parse(entries);
    } catch (error) {
      if (error instanceof AppError && error.code === 'TARGET_INVALID') return error;
      throw error;
    }
    throw new Error(`expected TARGET_INVALID for ${JSON.stringify(entries)}`);
  }

  it('when only remote is given, then the defaults apply', () => {
    expect(parse({ remote: 'https://git.example.com/ops/history.git' })).toEqual({
      remote: 'https://git.example.com/ops/history.git',
      url: 'https://git.example.com/ops/history.git',
      transport: 'http',
      branch: 'main',
      user: 'confhub',
      timeoutMs: 30_000,
      retryMaxMs: 300_000,
    });
    expect(parse({ remote: '/backup/history.git', timeout: '5', retry_max: '60', branch: 'hosts/web-1' })).toMatchObject({
      url: '/backup/history.git',
      transport: 'file',
      branch: 'hosts/web-1',
      timeoutMs: 5000,
      retryMaxMs: 60_000,
    });
    expect(parseHistoryConfig(undefined, { configDir })).toBeUndefined();
  });

  it('when the remote is a command transport, ssh, relative, or holds credentials, then it is refused naming [history] remote', () => {
    for (const remote of [
      'ext::sh -c x',
      'ext::sh',
      'fd::3',
      'ssh://git@host/x.git',
      'git@host:x.git',
      'git://host/x.git',
      'backups/history.git',
      './history.git',
      '../h.git',
      'file:///srv/../etc/x',
      'file://otherhost/x.git',
      `${configDir}/history.git`,
    ]) {
      const error = refusal({ remote });
      expect(error.details, remote).toMatch(/^system\.ini \[history\] remote: /);
    }
    const creds = refusal({ remote: 'https://user:pw-secret@host/x.git' });
    expect(creds.details).toContain('must not contain credentials');
    expect(creds.details).not.toContain('pw-secret');
    expect(refusal({ remote: 'https://token-only@host/x.git' }).details).not.toContain('token-only');
    expect(refusal({}).details).toBe('system.ini [history] remote: is required in a [history] section');
  });

  it('when keys are unknown, both token sources are set, or values are malformed, then each is refused naming the key', () => {
    const remote = 'https://host/x.git';
    expect(refusal({ remote, password: 'x' }).details).toMatch(/^system\.ini \[history\] password: unknown key/);
    expect(refusal({ remote, token_file: '/run/t', token_env: 'T' }).details).toMatch(
      /^system\.ini \[history\] token_env: set only one of token_file and token_env/,
    );
    expect(refusal({ remote, token_file: 'relative/t' }).details).toMatch(/^system\.ini \[history\] token_file: /);
    expect(refusal({ remote, token_env: 'lower_case' }).details).toMatch(/^system\.ini \[history\] token_env: /);
    expect(refusal({ remote, token_env: 'CONFHUB_MASTER_KEY' }).details).toMatch(/^system\.ini \[history\] token_env: /);
    expect(refusal({ remote, branch: '../main' }).details).toMatch(/^system\.ini \[history\] branch: /);
    expect(refusal({ remote, branch: 'a..b' }).details).toMatch(/^system\.ini \[history\] branch: /);
    expect(refusal({ remote, user: 'a:b' }).details).toMatch(/^system\.ini \[history\] user: /);
    expect(refusal({ remote, timeout: '0' }).details).toMatch(/^system\.ini \[history\] timeout: /);
    expect(refusal({ remote, retry_max: 'soon' }).details).toMatch(/^system\.ini \[history\] retry_max: /);
    expect(refusal({ remote: '/backup/h.git', token_file: '/run/t' }).details).toMatch(
      /^system\.ini \[history\] token_file: is only used with an http\(s\) remote/,
    );
  });
});
