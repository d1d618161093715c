/**
 * Every distinct revision of config.ini, committed to a git repository whose git dir is
 * `<dataDir>/history.git` and whose work tree is the config directory (only config.ini tracked).
 * The sync worker is the only writer (createHistoryWriter); the main thread only reads
 * (createHistoryReader). Who changed what travels in trailers of the commit message:
 *
 *   gitea: user_pwd changed
 *
 *   Confhub-Source: api
 *   Confhub-Actor: api:admin-key
 *   Confhub-Revision: <sha256 of config.ini>
 *   Confhub-Rollback-Of: <commit>            (rollbacks only)
 *   Confhub-Change: ~gitea.user_pwd          (+ added, - removed, ~ changed)
 *
 * Values never appear in messages; sensitive values in config.ini are already sealed as
 * `enc:v1:<kid>:<b64url>` tokens, and every diff returned for display masks those too.
 */
import { performance } from 'node:perf_hooks';
import { mkdir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import type { Logger } from 'pino';
import { AppError, isAppError } from '../core/errors.js';
import { revisionOf } from '../settings/revision.js';
import { ACTOR_TYPES, REVISION_SOURCES, type ActorRef, type ActorType, type RevisionSource } from '../core/actor.js';
import { MASK } from '../core/mask.js';
import { EMPTY_TREE, gitFailure, isCommitId, runGit, spawnGit, type GitRunOptions } from './git.js';
import { commitContent, removeObjectTemps, singleFileTree, updateRef, writeObject } from './git-objects.js';

export type KeyChangeKind = 'added' | 'removed' | 'changed';

export interface KeyChange {
  /** `section.key` */
  key: string;
  change: KeyChangeKind;
}

export interface HeadState {
  commit: string;
  text: string;
  /** sha256 hex of the text's UTF-8 bytes. */
  revision: string;
}

export interface HistoryCommitInput {
  text: string;
  revision: string;
  actor: ActorRef;
  source: RevisionSource;
  /** One line; newlines are flattened, the line cut at 200 characters. */
  summary: string;
  changes: readonly KeyChange[];
  rollbackOf?: string;
  /** The configuration template applied. */
  template?: string;
  /** Epoch ms; becomes the author and committer date. */
  at: number;
}

export interface HistoryOpenResult {
  head: HeadState | null;
  /** Stale lock files removed, relative to the git dir. */
  repaired: string[];
}

export interface HistoryWriter {
  open(): Promise<HistoryOpenResult>;
  /** The new commit id, or null when the text equals HEAD's (nothing is committed). */
  commit(input: HistoryCommitInput): Promise<string | null>;
  /** Every `gcEvery` commits, `git gc --auto` so thousands of commits do not stay loose objects. */
  gcIfNeeded(): Promise<void>;
  /** Resolves when no git of this writer runs (a gc may take minutes): awaited on shutdown. */
  idle(): Promise<void>;
}

export interface HistoryWriterDeps {
  gitDir: string;
  workTree: string;
  logger: Logger;
  /** Monotonic milliseconds, for the duration of a commit. */
  now?: () => number;
  gcEvery?: number;
  /**
   * Lock files younger than this are left alone by open(). 0 at process start (no git of this
   * process can be running); after a worker restart, git processes of the old worker may still be.
   */
  staleLockAgeMs?: number;
}

export interface HistoryEntry {
  /** Full 40-hex commit id. */
  id: string;
  parent: string | null;
  /** ISO 8601 (UTC) commit time. */
  time: string;
  actor: ActorRef;
  source: RevisionSource | string;
  summary: string;
  revision: string | null;
  rollbackOf: string | null;
  /** The configuration template the revision applied. */
  template: string | null;
  changes: KeyChange[];
}

export interface HistoryListInput {
  limit: number;
  /** A commit id: only entries older than this one (exclusive). */
  before?: string;
}

export interface HistoryListResult {
  entries: HistoryEntry[];
  hasMore: boolean;
}

export interface HistoryReader {
  list(input: HistoryListInput): Promise<HistoryListResult>;
  /** The full id of a (short) commit id; 400 when malformed, 404 when unknown or ambiguous. */
  resolve(commitish: string): Promise<string>;
  get(commit: string): Promise<HistoryEntry>;
  /** config.ini's exact text at that commit. */
  contentAt(commit: string): Promise<string>;
  /** Unified diff of config.ini (from null: the empty file), sealed tokens masked. */
  unifiedDiff(from: string | null, to: string): Promise<string>;
  head(): Promise<string | null>;
}

export interface HistoryReaderDeps {
  gitDir: string;
  workTree: string;
}

export const HISTORY_BRANCH = 'refs/heads/main';
export const HISTORY_FILE = 'config.ini';
export const MAX_LIST_LIMIT = 1000;
const MAX_SUMMARY = 200;
const DEFAULT_GC_EVERY = 500;
const GC_TIMEOUT_MS = 10 * 60_000;
const SOURCES: ReadonlySet<string> = new Set<string>(REVISION_SOURCES);
const CHANGE_SIGN: Readonly<Record<KeyChangeKind, string>> = { added: '+', removed: '-', changed: '~' };
const SIGN_CHANGE: Readonly<Record<string, KeyChangeKind>> = { '+': 'added', '-': 'removed', '~': 'changed' };

/** Settings the writer keeps in the repo's own config (checked on every open). */
function repoConfig(workTree: string): Array<[string, string]> {
  return [
    ['core.bare', 'false'],
    ['core.worktree', workTree],
    // Objects and refs reach the disk before update-ref returns (git >= 2.36; older git ignores it).
    ['core.fsync', 'committed'],
    // Bytes in, bytes out: CRLF and BOM are part of the revision.
    ['core.autocrlf', 'false'],
    ['user.useConfigOnly', 'false'],
    // gc in the foreground: a detached gc would outlive the call and hold gc.pid and locks.
    ['gc.autoDetach', 'false'],
  ];
}

/** Lock files a kill -9 can leave; git refuses to work while they exist. */
const LOCK_FILES = ['index.lock', 'HEAD.lock', 'config.lock', 'packed-refs.lock', 'objects/info/commit-graph.lock'];

// --- sealed tokens -----------------------------------------------------------------------------

/**
 * A token and whatever follows it up to the next whitespace: an INI value ends at the line end,
 * and a malformed token (another kid or alphabet) is masked all the same.
 */
const SEALED_TOKEN = /enc:v1:\S*/g;

/** Replaces every `enc:v1:<kid>:<b64url>` token with `******`; no `enc:v1:` survives. */
export function maskSealedTokens(text: string): string {
  return text.replace(SEALED_TOKEN, MASK);
}

// --- commit messages ---------------------------------------------------------------------------

/** One line: control characters and line separators become spaces, runs of spaces collapse. */
function oneLine(text: string, max: number): string {
  const flat = text
    .replace(/[\p{Cc}\p{Zl}\p{Zp}]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const chars = Array.from(flat);
  return chars.length > max ? chars.slice(0, max).join('').trimEnd() : flat;
}

/** For trailer values and git identities: one line, no spaces, no angle brackets. */
function token(text: string, max = 200): string {
  return oneLine(text, max).replace(/[\s<>]/g, '_');
}

function actorText(actor: ActorRef): string {
  return `${actor.type}:${token(actor.id) || 'unknown'}`;
}

export function commitMessage(input: HistoryCommitInput): string {
  const summary = oneLine(input.summary, MAX_SUMMARY) || `config.ini changed (${input.source})`;
  const trailers = [`Confhub-Source: ${token(input.source)}`, `Confhub-Actor: ${actorText(input.actor)}`, `Confhub-Revision: ${input.revision}`];
  if (input.rollbackOf !== undefined) trailers.push(`Confhub-Rollback-Of: ${input.rollbackOf.toLowerCase()}`);
  if (input.template !== undefined) trailers.push(`Confhub-Template: ${token(input.template)}`);
  for (const change of input.changes) trailers.push(`Confhub-Change: ${CHANGE_SIGN[change.change]}${token(change.key)}`);
  return `${summary}\n\n${trailers.join('\n')}\n`;
}

function parseActor(text: string | undefined, authorName: string): ActorRef {
  const raw = text ?? authorName;
  const colon = raw.indexOf(':');
  const type = colon > 0 ? raw.slice(0, colon) : '';
  if (ACTOR_TYPES.has(type)) return { type: type as ActorType, id: raw.slice(colon + 1) };
  return { type: 'system', id: raw || 'unknown' };
}

/** Fields of one commit in `git log -z` output; NUL cannot occur inside a commit message. */
const LOG_FORMAT = '--format=%H%x00%P%x00%ct%x00%an%x00%s%x00%b';
const LOG_FIELDS = 6;

function parseLog(stdout: string): HistoryEntry[] {
  const fields = stdout.split('\0');
  const entries: HistoryEntry[] = [];
  for (let i = 0; i + LOG_FIELDS <= fields.length; i += LOG_FIELDS) {
    const [id, parents, seconds, authorName, subject, body] = fields.slice(i, i + LOG_FIELDS) as [string, string, string, string, string, string];
    // Trailers are the last paragraph of the body.
    const paragraphs = body.trim().split(/\n\s*\n/);
    const trailerLines = (paragraphs[paragraphs.length - 1] ?? '').split('\n');
    const trailers = new Map<string, string>();
    const changes: KeyChange[] = [];
    for (const line of trailerLines) {
      const match = /^(Confhub-[A-Za-z-]+): ?(.*)$/.exec(line.trim());
      if (!match) continue;
      const [, name, value = ''] = match;
      if (name === 'Confhub-Change') {
        const change = SIGN_CHANGE[value.charAt(0)];
        if (change && value.length > 1) changes.push({ key: value.slice(1), change });
      } else if (!trailers.has(name!)) {
        trailers.set(name!, value);
      }
    }
    const revision = trailers.get('Confhub-Revision');
    const rollbackOf = trailers.get('Confhub-Rollback-Of');
    entries.push({
      id,
      parent: parents.split(' ').find((p) => p !== '') ?? null,
      time: new Date(Number(seconds) * 1000).toISOString(),
      actor: parseActor(trailers.get('Confhub-Actor'), authorName),
      source: trailers.get('Confhub-Source') ?? 'unknown',
      summary: maskSealedTokens(subject),
      revision: revision && /^[0-9a-f]{64}$/.test(revision) ? revision : null,
      rollbackOf: rollbackOf && isCommitId(rollbackOf) ? rollbackOf : null,
      template: trailers.get('Confhub-Template') || null,
      changes,
    });
  }
  return entries;
}

// --- shared helpers ----------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeStrict(bytes: Uint8Array, commit: string): string {
  try {
    return utf8.decode(bytes);
  } catch (cause) {
    throw new AppError('HISTORY_FAILED', { details: `config.ini at commit ${commit} is not valid UTF-8`, cause });
  }
}

/** The main thread may read before the worker created the repository: no repository, no history. */
async function repositoryMissing(git: GitRunOptions): Promise<boolean> {
  return !(await exists(join(git.gitDir, 'HEAD')));
}

async function headCommit(git: GitRunOptions): Promise<string | null> {
  const args = ['rev-parse', '--verify', '--quiet', '--end-of-options', `${HISTORY_BRANCH}^{commit}`];
  const exit = await spawnGit(git, args);
  if (exit.exitCode === 0) return exit.stdout.toString('utf8').trim();
  if (exit.exitCode === 1 || (exit.exitCode === 128 && ((await repositoryMissing(git)) || /not a git repository/.test(exit.stderr)))) return null;
  throw gitFailure(args, exit);
}

async function blobAt(git: GitRunOptions, commit: string): Promise<string> {
  const args = ['cat-file', 'blob', `${commit}:${HISTORY_FILE}`];
  const exit = await spawnGit(git, args);
  if (exit.exitCode !== 0) throw gitFailure(args, exit);
  return decodeStrict(exit.stdout, commit);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
}

async function lockFilesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const found: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await lockFilesUnder(path)));
    else if (entry.name.endsWith('.lock')) found.push(path);
  }
  return found;
}

/** Removes the lock files a killed git leaves; the caller guarantees no other writer runs. */
async function removeStaleLocks(gitDir: string, minAgeMs: number): Promise<string[]> {
  const candidates = [...LOCK_FILES.map((name) => join(gitDir, name)), ...(await lockFilesUnder(join(gitDir, 'refs', 'heads')))];
  const removed: string[] = [];
  for (const path of candidates) {
    try {
      if (minAgeMs > 0 && Date.now() - (await stat(path)).mtimeMs < minAgeMs) continue;
      await unlink(path);
      removed.push(relative(gitDir, path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return removed;
}

function invalidCommit(): AppError {
  return new AppError('INVALID_REQUEST', { message: 'Invalid commit', details: 'commit must be 4 to 40 hexadecimal characters' });
}

function commitNotFound(id: string): AppError {
  return new AppError('COMMIT_NOT_FOUND', { details: `commit ${id} does not exist in the history` });
}

// --- writer ------------------------------------------------------------------------------------

export function createHistoryWriter({
  gitDir,
  workTree,
  logger,
  now = () => performance.now(),
  gcEvery = DEFAULT_GC_EVERY,
  staleLockAgeMs = 0,
}: HistoryWriterDeps): HistoryWriter {
  const git: GitRunOptions = { gitDir, workTree };
  const log = logger.child({ module: 'history' });
  /** undefined: not known (before open, or after a failed commit); null: no commit yet. */
  let head: HeadState | null | undefined;
  let commitsSinceGc = 0;
  // One operation at a time: commits chain on the branch, and gc must not pack beside a commit.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work);
    queue = run.catch(() => undefined);
    return run;
  };

  async function readHead(): Promise<HeadState | null> {
    const commit = await headCommit(git);
    if (commit === null) return null;
    const text = await blobAt(git, commit);
    return { commit, text, revision: revisionOf(text) };
  }

  async function ensureConfig(): Promise<void> {
    const { stdout } = await runGit(git, ['config', '--local', '--list', '-z']);
    const current = new Map<string, string>();
    for (const item of stdout.split('\0')) {
      const newline = item.indexOf('\n');
      if (newline > 0) current.set(item.slice(0, newline), item.slice(newline + 1));
    }
    for (const [key, value] of repoConfig(workTree)) {
      if (current.get(key.toLowerCase()) !== value) await runGit(git, ['config', '--local', key, value]);
    }
  }

  async function open(): Promise<HistoryOpenResult> {
    const repaired = [...(await removeStaleLocks(gitDir, staleLockAgeMs)), ...(await removeObjectTemps(gitDir))];
    if (repaired.length > 0) log.warn({ repaired }, 'removed stale git lock files');
    // Staging folders of a creation a crash interrupted.
    for (const name of await readdir(dirname(gitDir)).catch(() => [])) {
      if (name.startsWith(`${basename(gitDir)}.init-`)) await rm(join(dirname(gitDir), name), { recursive: true, force: true });
    }
    if (!(await exists(join(gitDir, 'HEAD')))) {
      // A folder with content but no HEAD is a damaged repository: never deleted, the operator decides.
      if ((await readdir(gitDir).catch(() => [])).length > 0) {
        throw new AppError('HISTORY_FAILED', { details: `${gitDir} exists but is not a git repository (no HEAD); move it away to start a new history` });
      }
      // Created aside and renamed into place: the main thread never sees a half-made repository.
      const staging = `${gitDir}.init-${process.pid}`;
      await mkdir(staging, { recursive: true, mode: 0o700 });
      // No template: no sample hooks, no info/exclude; nothing in the repo that confhub did not put there.
      await runGit({ ...git, gitDir: staging }, ['init', '--quiet', '--initial-branch=main', '--template=']);
      await rm(gitDir, { recursive: true, force: true });
      await rename(staging, gitDir);
      log.info({ gitDir }, 'created the history repository');
    }
    await ensureConfig();
    head = await readHead();
    return { head, repaired };
  }

  async function commitNow(input: HistoryCommitInput): Promise<string | null> {
    const started = now();
    if (input.revision !== revisionOf(input.text)) {
      throw new AppError('HISTORY_FAILED', { details: 'the revision of a history commit does not match its text' });
    }
    if (input.rollbackOf !== undefined && !isCommitId(input.rollbackOf)) throw invalidCommit();
    if (!SOURCES.has(input.source) || !ACTOR_TYPES.has(input.actor.type)) {
      throw new AppError('HISTORY_FAILED', { details: `unknown history source "${token(input.source, 40)}" or actor type` });
    }
    const parent = head === undefined ? await readHead() : head;
    head = parent;
    if (parent !== null && parent.text === input.text) return null;
    const seconds = Math.floor(input.at / 1000);
    try {
      // The blob comes from the text given, never from the file on disk (it may have changed since).
      // Written without starting git (git-objects.ts): a process start stops the worker's threads.
      const blob = await writeObject(gitDir, 'blob', Buffer.from(input.text, 'utf8'));
      const tree = await writeObject(gitDir, 'tree', singleFileTree(HISTORY_FILE, blob));
      const committer = { name: 'confhub', email: 'confhub@confhub.invalid' };
      const commit = await writeObject(
        gitDir,
        'commit',
        commitContent({
          tree,
          parent: parent ? parent.commit : null,
          author: { name: actorText(input.actor), email: `${input.actor.type}@confhub.invalid` },
          committer,
          seconds,
          message: commitMessage(input),
        }),
      );
      // Compare-and-swap: fails if the branch moved since HEAD was read.
      await updateRef(gitDir, {
        ref: HISTORY_BRANCH,
        to: commit,
        from: parent ? parent.commit : null,
        who: committer,
        seconds,
        reason: `confhub: ${token(input.source)}`,
      });
      head = { commit, text: input.text, revision: input.revision };
      commitsSinceGc++;
      log.debug({ commit, source: input.source, durationMs: Math.round((now() - started) * 10) / 10 }, 'history commit');
      return commit;
    } catch (error) {
      head = undefined; // re-read before the next commit
      if (!isAppError(error)) {
        const code = (error as NodeJS.ErrnoException).code;
        throw new AppError('HISTORY_FAILED', { details: `writing a commit to the history failed${code ? ` (${code})` : ''}`, cause: error });
      }
      // A git this writer killed for taking too long leaves its lock; no other git of this writer
      // runs (one at a time), so the lock is removed now rather than blocking every later commit.
      if (isAppError(error) && /timed out/.test(error.details)) {
        const removed = await removeStaleLocks(gitDir, 0).catch(() => []);
        if (removed.length > 0) log.warn({ removed }, 'removed the lock files of a git that timed out');
      }
      throw error;
    }
  }

  async function gcNow(): Promise<void> {
    if (commitsSinceGc < gcEvery) return;
    commitsSinceGc = 0;
    const started = now();
    try {
      await runGit(git, ['gc', '--auto', '--quiet'], { timeoutMs: GC_TIMEOUT_MS });
      log.debug({ durationMs: Math.round(now() - started) }, 'history gc --auto');
    } catch (error) {
      // Loose objects cost disk and speed, never correctness: keep committing.
      log.warn({ err: error }, 'history gc failed');
    }
  }

  return {
    open: () => serial(open),
    commit: (input) => serial(() => commitNow(input)),
    gcIfNeeded: () => serial(gcNow),
    idle: () => serial(async () => undefined),
  };
}

// --- reader ------------------------------------------------------------------------------------

export function createHistoryReader({ gitDir, workTree }: HistoryReaderDeps): HistoryReader {
  const git: GitRunOptions = { gitDir, workTree };

  /** Full ids of commits seen in this repository: a commit never changes, so it is resolved once. */
  const known = new Set<string>();
  const remember = (id: string): void => {
    known.add(id);
    if (known.size > 10_000) known.delete(known.values().next().value!);
  };

  async function resolve(commitish: string): Promise<string> {
    if (typeof commitish !== 'string' || !isCommitId(commitish)) throw invalidCommit();
    const id = commitish.toLowerCase();
    if (known.has(id)) return id;
    // Hex only, so the argument can never be read as an option; --end-of-options all the same.
    const args = ['rev-parse', '--verify', '--quiet', '--end-of-options', `${id}^{commit}`];
    const exit = await spawnGit(git, args);
    if (exit.exitCode === 0) {
      const full = exit.stdout.toString('utf8').trim();
      remember(full);
      return full;
    }
    // 1: unknown; 128: an ambiguous short id or no repository yet (anything else is a real failure).
    if (exit.exitCode === 1 || (exit.exitCode === 128 && /ambiguous|not a git repository|unknown revision|bad revision/i.test(exit.stderr)))
      throw commitNotFound(id);
    if (exit.exitCode === 128 && (await repositoryMissing(git))) throw commitNotFound(id);
    throw gitFailure(args, exit);
  }

  async function list({ limit, before }: HistoryListInput): Promise<HistoryListResult> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new AppError('INVALID_REQUEST', { message: 'Invalid limit', details: `limit must be a whole number from 1 to ${MAX_LIST_LIMIT}` });
    }
    if (before !== undefined && !isCommitId(before)) throw invalidCommit();
    // One git log: limit + 1 entries tell whether there are more. `before` is walked from and skipped.
    const args = ['log', '-z', LOG_FORMAT, '-n', String(limit + 1)];
    if (before === undefined) args.push('--ignore-missing', '--end-of-options', HISTORY_BRANCH, '--');
    else args.push('--skip=1', '--end-of-options', `${before.toLowerCase()}^{commit}`, '--');
    const exit = await spawnGit(git, args);
    if (exit.exitCode !== 0) {
      if (before !== undefined) await resolve(before); // the precise 400/404 when `before` is the problem
      // Missing when git looked (the worker may have created it a moment later).
      if ((await repositoryMissing(git)) || /not a git repository/.test(exit.stderr)) return { entries: [], hasMore: false };
      throw gitFailure(args, exit);
    }
    const entries = parseLog(exit.stdout.toString('utf8'));
    for (const entry of entries) {
      remember(entry.id);
      if (entry.parent) remember(entry.parent);
    }
    return { entries: entries.slice(0, limit), hasMore: entries.length > limit };
  }

  async function get(commit: string): Promise<HistoryEntry> {
    const id = await resolve(commit);
    const { stdout } = await runGit(git, ['log', '-z', LOG_FORMAT, '-n', '1', '--end-of-options', id, '--']);
    const [entry] = parseLog(stdout);
    if (!entry) throw commitNotFound(id);
    if (entry.parent) remember(entry.parent);
    return entry;
  }

  async function contentAt(commit: string): Promise<string> {
    return blobAt(git, await resolve(commit));
  }

  async function unifiedDiff(from: string | null, to: string): Promise<string> {
    const fromId = from === null ? EMPTY_TREE : await resolve(from);
    const toId = await resolve(to);
    const { stdout } = await runGit(git, ['diff', '--no-color', '--no-ext-diff', '--no-textconv', '--text', '-U3', fromId, toId, '--', HISTORY_FILE]);
    return maskSealedTokens(stdout);
  }

  return { list, resolve, get, contentAt, unifiedDiff, head: () => headCommit(git) };
}
