/**
 * The one way confhub runs git: `execFile` (never a shell), a minimal environment built here
 * (never process.env wholesale: it may hold CONFHUB_MASTER_KEY or tokens), no system or user
 * config, no prompts, no hooks, a timeout that kills. Failures become HISTORY_FAILED with the
 * first line git printed on stderr.
 */
import { execFile } from 'node:child_process';
import { dirname } from 'node:path';
import { AppError } from '../core/errors.js';

export interface GitRunOptions {
  /** The git dir (`<dataDir>/history.git`). */
  readonly gitDir: string;
  /** The work tree (the config directory); omitted for commands that need none. */
  readonly workTree?: string;
}

export interface GitRunInput {
  readonly stdin?: string | Buffer;
  /** Extra variables, added after (and so over) the base environment. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Configuration passed as GIT_CONFIG_COUNT/KEY_n/VALUE_n: command scope, above the repo's
   * config, never written to disk and never in argv.
   */
  readonly config?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  /** Aborting kills the git process. */
  readonly signal?: AbortSignal;
}

export interface GitResult<T extends string | Buffer = string> {
  stdout: T;
  stderr: string;
}

export interface GitExit {
  /** null when git was killed (timeout, abort). */
  exitCode: number | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
}

export const DEFAULT_GIT_TIMEOUT_MS = 30_000;
const MAX_BUFFER = 64 * 1024 * 1024;
const COMMIT_ID = /^[0-9a-f]{4,40}$/i;
/** The tree with no entries; git knows it without it being stored. */
export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

/**
 * Applies to every git call: hooks are never run (the repo's own config could point
 * core.hooksPath somewhere, command scope wins over it).
 */
const BASE_CONFIG: Readonly<Record<string, string>> = Object.freeze({ 'core.hooksPath': '/dev/null' });

export function isCommitId(text: string): boolean {
  return COMMIT_ID.test(text);
}

/**
 * The whole environment of a git process. Exported so tests can assert what it never contains.
 * GIT_OPTIONAL_LOCKS=0: readers on the main thread take no optional lock (index.lock), which
 * would make a gc of the worker's fail.
 */
export function gitEnv(options: GitRunOptions, input: Pick<GitRunInput, 'env' | 'config'> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: dirname(options.gitDir),
    GIT_DIR: options.gitDir,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_OPTIONAL_LOCKS: '0',
    LC_ALL: 'C',
  };
  if (options.workTree !== undefined) env.GIT_WORK_TREE = options.workTree;
  const config = Object.entries({ ...BASE_CONFIG, ...(input.config ?? {}) });
  env.GIT_CONFIG_COUNT = String(config.length);
  config.forEach(([key, value], index) => {
    env[`GIT_CONFIG_KEY_${index}`] = key;
    env[`GIT_CONFIG_VALUE_${index}`] = value;
  });
  return Object.assign(env, input.env ?? {});
}

/** The subcommand for messages: the first argument that is not an option or `-c` pair. */
function subcommand(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-c' || arg === '-C') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return 'command';
}

export function firstLine(text: string, max = 300): string {
  const line = text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
  return line.trim().slice(0, max);
}

/** Runs git and reports how it ended; never rejects for a non-zero exit. */
export function spawnGit(options: GitRunOptions, args: readonly string[], input: GitRunInput = {}): Promise<GitExit> {
  const timeoutMs = input.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      args,
      {
        env: gitEnv(options, input),
        encoding: 'buffer',
        maxBuffer: MAX_BUFFER,
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        windowsHide: true,
        ...(input.signal ? { signal: input.signal } : {}),
      },
      (error, stdout, stderr) => {
        const stderrText = stderr.toString('utf8');
        if (!error) {
          resolve({ exitCode: 0, stdout, stderr: stderrText, timedOut: false, aborted: false });
          return;
        }
        const failure = error as NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: string | null };
        if (failure.name === 'AbortError') {
          resolve({ exitCode: null, stdout, stderr: stderrText, timedOut: false, aborted: true });
          return;
        }
        if (typeof failure.code === 'number') {
          resolve({ exitCode: failure.code, stdout, stderr: stderrText, timedOut: false, aborted: false });
          return;
        }
        if (typeof failure.code !== 'string' && (failure.killed || failure.signal)) {
          resolve({ exitCode: null, stdout, stderr: stderrText, timedOut: failure.killed === true, aborted: false });
          return;
        }
        // Spawn failures (git missing: ENOENT) and maxBuffer overflows (string codes).
        reject(
          new AppError('HISTORY_FAILED', {
            details: `git ${subcommand(args)} failed: ${String(failure.code ?? failure.message).slice(0, 300)}`,
            cause: error,
          }),
        );
      },
    );
    // git may exit before reading all of stdin (EPIPE); the exit status reports the failure.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input.stdin ?? '');
  });
}

export function gitFailure(args: readonly string[], exit: GitExit, timeoutMs = DEFAULT_GIT_TIMEOUT_MS): AppError {
  const what = `git ${subcommand(args)}`;
  let details: string;
  if (exit.timedOut) details = `${what} timed out after ${Math.round(timeoutMs / 1000)} s`;
  else if (exit.aborted) details = `${what} was stopped`;
  else details = `${what} failed: ${firstLine(exit.stderr) || `exit code ${exit.exitCode ?? 'none'}`}`;
  return new AppError('HISTORY_FAILED', { details });
}

/** Runs git; a non-zero exit rejects with HISTORY_FAILED. stdout as raw bytes. */
export async function runGitBuffer(options: GitRunOptions, args: readonly string[], input: GitRunInput = {}): Promise<GitResult<Buffer>> {
  const exit = await spawnGit(options, args, input);
  if (exit.exitCode !== 0) throw gitFailure(args, exit, input.timeoutMs);
  return { stdout: exit.stdout, stderr: exit.stderr };
}

/** Runs git; a non-zero exit rejects with HISTORY_FAILED. stdout as UTF-8 text. */
export async function runGit(options: GitRunOptions, args: readonly string[], input: GitRunInput = {}): Promise<GitResult> {
  const { stdout, stderr } = await runGitBuffer(options, args, input);
  return { stdout: stdout.toString('utf8'), stderr };
}
