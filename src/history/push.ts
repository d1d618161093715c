/**
 * Optional copy of the history to a remote git repository, declared in system.ini:
 *
 *   [history]
 *   remote = https://git.example.com/ops/confhub-history.git
 *   branch = main
 *   user = confhub
 *   token_file = /run/secrets/history_token
 *   timeout = 30
 *   retry_max = 300
 *
 * Each new commit is pushed asynchronously, one push at a time, never forced; a failure is
 * retried with exponential backoff and jitter and never blocks or loses a local commit. The token
 * reaches git only through the environment (an http.extraHeader in GIT_CONFIG_*), never argv and
 * never the repository's config, and is masked out of every error text.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, normalize } from 'node:path';
import type { Logger } from 'pino';
import { AppError, toPlainError, type PlainError } from '../core/errors.js';
import { backoffDelay } from '../core/backoff.js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { maskText } from '../core/mask.js';
import type { IniDocument } from '../ini/document.js';
import { isInside } from '../targets/path-rules.js';
import { firstLine, gitFailure, spawnGit, type GitRunOptions } from './git.js';

export interface HistoryPushConfig {
  /** The remote as configured (never holds credentials); shown in status. */
  readonly remote: string;
  /** What git is given. */
  readonly url: string;
  readonly transport: 'http' | 'file';
  readonly branch: string;
  /** HTTP basic-auth user. */
  readonly user: string;
  readonly tokenFile?: string;
  readonly tokenEnv?: string;
  readonly timeoutMs: number;
  readonly retryMaxMs: number;
}

export type PushState = 'disabled' | 'idle' | 'pushing' | 'in_sync' | 'failed';

export interface PushStatus {
  /** The remote as configured; it never holds credentials. */
  remote: string;
  branch: string;
  state: PushState;
  pushedCommit: string | null;
  /** `details` never contains the token. */
  lastError: PlainError | null;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  consecutiveFailures: number;
}

export interface ParseHistoryConfigOptions {
  /** The config directory: the history's own work tree, which a remote must not be inside. */
  configDir: string;
}

export interface HistoryPusherDeps {
  git: GitRunOptions;
  /** undefined: no [history] section; the pusher does nothing and says `disabled`. */
  config: HistoryPushConfig | undefined;
  logger: Logger;
  /** Read on every attempt (a rotated token is picked up); default: token_file or process.env[token_env]. */
  readToken?: () => string | undefined;
  onStatus: (status: PushStatus) => void;
  /** First retry delay; doubled per consecutive failure up to retry_max. */
  retryBaseMs?: number;
  /** Times the retries and stamps the attempts; default the system clock. */
  clock?: Clock;
  /** 0 <= x < 1, for the jitter. */
  random?: () => number;
}

export interface HistoryPusher {
  /** A new commit exists; push it (now, or after the running push or the pending retry). */
  schedule(): void;
  /** Cancels the pending retry, kills a running push, and waits for it. */
  stop(): Promise<void>;
  status(): PushStatus;
}

const SECTION = 'history';
const KEYS = ['remote', 'branch', 'user', 'token_file', 'token_env', 'timeout', 'retry_max'];
const TOKEN_ENV = /^[A-Z_][A-Z0-9_]*$/;
/** Variables of confhub itself that must never be sent to a remote. */
const FORBIDDEN_TOKEN_ENV = new Set(['CONFHUB_MASTER_KEY', 'CONFHUB_API_KEY']);
const USER = /^[A-Za-z0-9._@+-]{1,128}$/;
const BRANCH = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;
const DEFAULT_RETRY_BASE_MS = 1000;
/** Passed through to `git push` when set: CA bundles and proxies of the container. */
const PASS_THROUGH_ENV = [
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'GIT_SSL_CAINFO',
  'GIT_SSL_CAPATH',
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'NO_PROXY',
  'no_proxy',
];

// --- system.ini [history] ----------------------------------------------------------------------

function invalid(key: string | undefined, problem: string): AppError {
  const where = key ? `system.ini [${SECTION}] ${key}` : `system.ini [${SECTION}]`;
  return new AppError('TARGET_INVALID', { message: `${where}: ${problem}` });
}

/** A remote as an error message may show it: userinfo hidden, control characters escaped. */
function shown(text: string): string {
  const hidden = text.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1***@');
  const cut = hidden.length > 200 ? `${hidden.slice(0, 200)}…` : hidden;
  return JSON.stringify(cut).slice(1, -1);
}

function parseRemote(text: string, configDir: string): Pick<HistoryPushConfig, 'remote' | 'url' | 'transport'> {
  const expected = 'must be an https:// or http:// URL, a file:// URL or an absolute path to a bare repository';
  if (/[\p{Cc}\s]/u.test(text)) throw invalid('remote', `"${shown(text)}" must not contain spaces or control characters`);
  let path: string | undefined;
  // URL parsing would silently resolve dot segments; a path must say where it goes.
  if (/(^|\/)\.\.?(\/|$)/.test(text.replace(/^file:\/\//i, ''))) throw invalid('remote', `"${shown(text)}" must be a normalized absolute path or URL`);
  if (text.startsWith('/')) {
    path = text;
  } else if (/^file:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw invalid('remote', `"${shown(text)}" is not a valid file:// URL`);
    }
    if ((url.host !== '' && url.host !== 'localhost') || url.username || url.password || url.search || url.hash) {
      throw invalid('remote', `"${shown(text)}" must be file:///absolute/path/to/repo.git (no host, query or fragment)`);
    }
    path = decodeURIComponent(url.pathname);
  } else if (/^https?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw invalid('remote', `"${shown(text)}" is not a valid URL`);
    }
    if (url.username || url.password) throw invalid('remote', `"${shown(text)}" must not contain credentials; use token_file or token_env`);
    if (url.hostname === '' || url.hash) throw invalid('remote', `"${shown(text)}" must name a host and have no fragment`);
    return { remote: text, url: url.href, transport: 'http' };
  } else {
    // ext::, fd::, ssh://, git://, scp-like host:path, relative paths: refused.
    throw invalid('remote', `"${shown(text)}" ${expected}`);
  }
  if (!isAbsolute(path) || normalize(path) !== path.replace(/\/+$/, '') || path.split('/').includes('..')) {
    throw invalid('remote', `"${shown(text)}" must be a normalized absolute path`);
  }
  if (isInside(configDir, path)) throw invalid('remote', `"${shown(text)}" must not be inside the config directory`);
  return { remote: text, url: path, transport: 'file' };
}

function branchProblem(branch: string): string | undefined {
  if (!BRANCH.test(branch)) return 'must be 1-200 letters, digits, ".", "_", "-" or "/", starting with a letter or digit';
  const parts = branch.split('/');
  if (branch.includes('..') || parts.some((p) => p === '' || p.startsWith('.') || p.endsWith('.lock')) || branch.endsWith('.')) {
    return 'is not a valid git branch name';
  }
  return undefined;
}

function wholeNumber(key: string, text: string, { min, max }: { min: number; max: number }): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw invalid(key, `must be a whole number from ${min} to ${max}, got "${shown(text)}"`);
  return Number(text);
}

/** The push settings of a parsed system.ini (its [history] section), or undefined when it has none. */
export function historyConfigOf(systemIni: IniDocument, options: ParseHistoryConfigOptions): HistoryPushConfig | undefined {
  const section = systemIni.byName.get('history');
  return parseHistoryConfig(section ? new Map(section.entries.map((entry) => [entry.keyLower, entry.value])) : undefined, options);
}

/**
 * The [history] section of system.ini (keys lowercased), or undefined when there is none.
 * Throws TARGET_INVALID naming the section and the key.
 */
export function parseHistoryConfig(section: ReadonlyMap<string, string> | undefined, { configDir }: ParseHistoryConfigOptions): HistoryPushConfig | undefined {
  if (section === undefined) return undefined;
  const v = new Map<string, string>();
  for (const [key, value] of section) {
    const lower = key.toLowerCase();
    if (!KEYS.includes(lower)) throw invalid(shown(key), `unknown key; expected one of ${KEYS.join(', ')}`);
    v.set(lower, value.trim());
  }
  const remoteText = v.get('remote');
  if (!remoteText) throw invalid('remote', 'is required in a [history] section');
  const remote = parseRemote(remoteText, configDir);
  const branch = v.get('branch') || 'main';
  const branchIssue = branchProblem(branch);
  if (branchIssue) throw invalid('branch', `"${shown(branch)}" ${branchIssue}`);
  const user = v.get('user') || 'confhub';
  if (!USER.test(user)) throw invalid('user', 'must be 1-128 letters, digits, ".", "_", "@", "+" or "-"');
  const tokenFile = v.get('token_file') || undefined;
  const tokenEnv = v.get('token_env') || undefined;
  if (tokenFile && tokenEnv) throw invalid('token_env', 'set only one of token_file and token_env');
  if (tokenFile !== undefined && !isAbsolute(tokenFile)) throw invalid('token_file', `must be an absolute path, got "${shown(tokenFile)}"`);
  if (tokenEnv !== undefined) {
    if (!TOKEN_ENV.test(tokenEnv)) throw invalid('token_env', `"${shown(tokenEnv)}" is not an environment variable name ([A-Z_][A-Z0-9_]*)`);
    if (FORBIDDEN_TOKEN_ENV.has(tokenEnv)) throw invalid('token_env', `${tokenEnv} is confhub's own secret and is never sent to a remote`);
  }
  if ((tokenFile || tokenEnv) && remote.transport === 'file') throw invalid(tokenFile ? 'token_file' : 'token_env', 'is only used with an http(s) remote');
  return Object.freeze({
    ...remote,
    branch,
    user,
    ...(tokenFile ? { tokenFile } : {}),
    ...(tokenEnv ? { tokenEnv } : {}),
    timeoutMs: (v.has('timeout') ? wholeNumber('timeout', v.get('timeout')!, { min: 1, max: 3600 }) : 30) * 1000,
    retryMaxMs: (v.has('retry_max') ? wholeNumber('retry_max', v.get('retry_max')!, { min: 1, max: 86_400 }) : 300) * 1000,
  });
}

// --- the pusher --------------------------------------------------------------------------------

function defaultReadToken(config: HistoryPushConfig): () => string | undefined {
  return () => {
    if (config.tokenFile) {
      let text: string;
      try {
        text = readFileSync(config.tokenFile, 'utf8');
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code ?? 'error';
        throw new AppError('HISTORY_FAILED', { message: 'History push failed', details: `cannot read token_file ${config.tokenFile}: ${code}`, cause });
      }
      const token = text.trim();
      if (token === '') throw new AppError('HISTORY_FAILED', { message: 'History push failed', details: `token_file ${config.tokenFile} is empty` });
      return token;
    }
    if (config.tokenEnv) {
      const token = process.env[config.tokenEnv]?.trim();
      if (!token)
        throw new AppError('HISTORY_FAILED', { message: 'History push failed', details: `environment variable ${config.tokenEnv} (token_env) is not set` });
      return token;
    }
    return undefined;
  };
}

/** Every form in which a token could surface in a message. */
function secretForms(user: string, token: string | undefined): string[] {
  if (!token) return [];
  const basic = Buffer.from(`${user}:${token}`, 'utf8').toString('base64');
  return [`Basic ${basic}`, basic, `${user}:${token}`, token, encodeURIComponent(token)].filter((s) => s !== '');
}

const DISABLED: PushStatus = Object.freeze({
  remote: '',
  branch: '',
  state: 'disabled',
  pushedCommit: null,
  lastError: null,
  lastAttemptAt: null,
  nextAttemptAt: null,
  consecutiveFailures: 0,
});

export function createHistoryPusher(deps: HistoryPusherDeps): HistoryPusher {
  const { git, config, onStatus, retryBaseMs = DEFAULT_RETRY_BASE_MS, clock = systemClock, random = Math.random } = deps;
  if (!config) {
    return { schedule: () => undefined, stop: async () => undefined, status: () => ({ ...DISABLED }) };
  }
  const log = deps.logger.child({ module: 'history-push', remote: config.remote });
  const readToken = deps.readToken ?? defaultReadToken(config);
  const abort = new AbortController();
  let current: PushStatus = { ...DISABLED, remote: config.remote, branch: config.branch, state: 'idle' };
  let wanted = false;
  /** A drain loop is running (kept apart from `running`, which stop() awaits). */
  let active = false;
  let running: Promise<void> = Promise.resolve();
  let retryTimer: TimerHandle | null = null;
  let stopped = false;

  if (config.transport === 'http' && config.url.startsWith('http:') && (config.tokenFile || config.tokenEnv)) {
    log.warn('the history token is sent over plain http; use an https:// remote');
  }

  function update(patch: Partial<PushStatus>): void {
    current = { ...current, ...patch };
    onStatus({ ...current });
  }

  async function localHead(): Promise<string | null> {
    const args = ['rev-parse', '--verify', '--quiet', '--end-of-options', 'refs/heads/main^{commit}'];
    const exit = await spawnGit(git, args);
    if (exit.exitCode === 0) return exit.stdout.toString('utf8').trim();
    if (exit.exitCode === 1) return null;
    throw gitFailure(args, exit);
  }

  function pushEnv(token: string | undefined): { config: Record<string, string>; env: Record<string, string> } {
    const timeoutSeconds = String(Math.ceil(config!.timeoutMs / 1000));
    const gitConfig: Record<string, string> = {
      // A transfer slower than 1 KiB/s for `timeout` seconds is a stalled remote.
      'http.lowSpeedLimit': '1024',
      'http.lowSpeedTime': timeoutSeconds,
      // The Authorization header must not follow a redirect to another host.
      'http.followRedirects': 'false',
      'credential.helper': '',
      'core.askPass': '/bin/false',
    };
    if (token !== undefined) {
      gitConfig['http.extraHeader'] = `Authorization: Basic ${Buffer.from(`${config!.user}:${token}`, 'utf8').toString('base64')}`;
    }
    const env: Record<string, string> = {
      GIT_ALLOW_PROTOCOL: 'http:https:file',
      GIT_TERMINAL_PROMPT: '0',
      GIT_ASKPASS: '/bin/false',
      SSH_ASKPASS: '/bin/false',
    };
    for (const name of PASS_THROUGH_ENV) {
      const value = process.env[name];
      if (value !== undefined) env[name] = value;
    }
    return { config: gitConfig, env };
  }

  /** What went wrong, in words an operator can act on; never the token. */
  function describeFailure(exit: Awaited<ReturnType<typeof spawnGit>>, secrets: readonly string[]): string {
    const stderr = maskText(exit.stderr, secrets);
    const stdout = maskText(exit.stdout.toString('utf8'), secrets);
    if (exit.timedOut) return `git push to ${config!.remote} timed out after ${Math.ceil(config!.timeoutMs / 1000)} s`;
    const rejected = stdout.split('\n').find((line) => line.startsWith('!'));
    if (rejected && /non-fast-forward|fetch first|stale info/.test(rejected)) {
      return `the remote branch ${config!.branch} has commits that are not in the local history; confhub never force-pushes (${firstLine(rejected.replace(/\t/g, ' '), 200)})`;
    }
    // On a 401 git asks for a user name, which our askpass refuses: that is what stderr says then.
    if (/askpass|could not read (Username|Password)|Authentication failed|\b401\b/.test(stderr)) {
      return `the remote ${config!.remote} refused the credentials (HTTP 401); check [history] user and token_file or token_env`;
    }
    if (/\b403\b/.test(stderr)) return `the remote ${config!.remote} denied the push (HTTP 403) for user ${config!.user}`;
    const line = firstLine(stderr) || (rejected ? firstLine(rejected.replace(/\t/g, ' ')) : `exit code ${exit.exitCode ?? 'none'}`);
    return `git push to ${config!.remote} failed: ${line}`;
  }

  function scheduleRetry(failures: number): void {
    // Jittered: retries of several confhubs against one remote spread out.
    const delay = backoffDelay({ attempt: failures - 1, baseMs: retryBaseMs, maxMs: config!.retryMaxMs, minMs: retryBaseMs / 4, random });
    update({ nextAttemptAt: new Date(clock.now() + delay).toISOString() });
    retryTimer = clock.setTimeout(() => {
      retryTimer = null;
      schedule();
    }, delay);
    retryTimer.unref();
  }

  async function attempt(): Promise<void> {
    let secrets: string[] = [];
    try {
      const head = await localHead();
      if (head === null) {
        update({ state: 'idle' });
        return;
      }
      if (head === current.pushedCommit && current.state === 'in_sync') return;
      update({ state: 'pushing', lastAttemptAt: new Date(clock.now()).toISOString(), nextAttemptAt: null });
      const token = config!.transport === 'http' ? readToken() : undefined;
      secrets = secretForms(config!.user, token);
      const { config: gitConfig, env } = pushEnv(token);
      // An explicit commit, not refs/heads/main: pushedCommit is exactly what the remote got.
      const args = ['push', '--porcelain', '--quiet', '--', config!.url, `${head}:refs/heads/${config!.branch}`];
      const exit = await spawnGit(git, args, { config: gitConfig, env, timeoutMs: config!.timeoutMs, signal: abort.signal });
      if (exit.aborted) return;
      if (exit.exitCode !== 0) throw new AppError('HISTORY_FAILED', { message: 'History push failed', details: describeFailure(exit, secrets) });
      update({ state: 'in_sync', pushedCommit: head, lastError: null, nextAttemptAt: null, consecutiveFailures: 0 });
      log.info({ commit: head, branch: config!.branch }, 'pushed the history');
    } catch (error) {
      if (stopped) return;
      const plain = toPlainError(error);
      const lastError: PlainError = { code: plain.code, message: maskText(plain.message, secrets), details: maskText(plain.details, secrets) };
      const consecutiveFailures = current.consecutiveFailures + 1;
      update({ state: 'failed', lastError, consecutiveFailures });
      log.warn({ details: lastError.details, consecutiveFailures }, 'pushing the history failed; retrying later');
      scheduleRetry(consecutiveFailures);
    }
  }

  async function drain(): Promise<void> {
    // No await between the last check of `wanted` and clearing `active`: a schedule() in
    // between would otherwise be lost. Commits made during a push are covered by the next turn.
    while (wanted && !stopped && retryTimer === null) {
      wanted = false;
      await attempt();
    }
    active = false;
  }

  function schedule(): void {
    if (stopped) return;
    wanted = true;
    if (!active && retryTimer === null) {
      active = true;
      running = drain();
    }
  }

  return {
    schedule,
    async stop() {
      stopped = true;
      if (retryTimer) clock.clearTimeout(retryTimer);
      retryTimer = null;
      abort.abort();
      await running;
    },
    status: () => ({ ...current }),
  };
}
