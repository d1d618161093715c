/**
 * The one reload API the sync worker calls, whatever the service is: a sibling container
 * (Docker), a program of supervisord, or an HTTP hook. It also runs the `check` command of a
 * target against the staged file, and `check_installed` against the installed one.
 *
 * reload() captures a "before" marker (container StartedAt, supervisord pid and start) so that
 * verify() can tell the restarted service from the old one that had not stopped yet.
 */
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock.js';
import { AppError, isAppError } from '../core/errors.js';
import { containerRefText, describeAction, type CheckCommand, type HealthCheck, type ReloadAction } from '../targets/target-spec.js';
import type { DockerDriver, ExecResult } from './docker.js';
import { postReload as defaultPostReload, probeHealth as defaultProbeHealth } from './http.js';
import type { SupervisorDriver } from './supervisor.js';
import { readFile } from 'node:fs/promises';
import { ComposeDotenvError, readComposeDotenv } from '../render/dotenv.js';
import type { EnvRecreator } from './docker-recreate.js';
import { applyProgramUpdate } from './supervisor-update.js';

export interface ReloadResult {
  readonly reloaded: boolean;
  readonly before?: { readonly startedAt?: string; readonly pid?: number; readonly start?: number };
}

/** What verify() checks: the service a reload action reached, by its health check, within the timeout. */
export interface VerifyInput {
  readonly action: ReloadAction;
  readonly health: HealthCheck;
  readonly reloadResult: ReloadResult;
  readonly timeoutMs: number;
}

export interface RunCheckOptions {
  readonly timeoutMs: number;
  /**
   * The path is the installed file (`check_installed`): it replaces `{file}` but is not appended
   * when the command has none, since such a command checks the service's whole configuration.
   */
  readonly installed?: boolean;
}

export interface ReloadActions {
  reload(action: ReloadAction, options: { timeoutMs: number }): Promise<ReloadResult>;
  verify(input: VerifyInput): Promise<void>;
  runCheck(check: CheckCommand, path: string, options: RunCheckOptions): Promise<void>;
  describe(action: ReloadAction): string;
}

export interface HttpHooks {
  postReload(url: string, options: { timeoutMs: number; shown?: string }): Promise<void>;
  probeHealth(url: string, options: { timeoutMs: number; stableMs: number; shown?: string }): Promise<void>;
}

export interface CreateReloadActionsInput {
  docker: DockerDriver;
  supervisor: SupervisorDriver;
  /** Recreates containers with a new environment (`docker:recreate`). */
  recreator?: EnvRecreator;
  logger: Logger;
  /** Defaults to global fetch (http.ts), timed by `clock`. */
  http?: HttpHooks;
  /**
   * How long a service must stay healthy after a reload (running, or answering 2xx) when its
   * target declares no `health_window`. Capped at half the target's timeout.
   */
  stableMs?: number;
  /**
   * Times the budget a reload shares between its steps; pass the drivers the same clock. Default
   * the system clock.
   */
  clock?: Clock;
}

/** Lines and bytes of a failing command's output that go into the error. */
const OUTPUT_LINES = 10;
const OUTPUT_BYTES = 1024;
const CHECK_MAX_BUFFER = 256 * 1024;
const DEFAULT_STABLE_MS = 1000;

export function firstLines(output: string): string {
  const lines = output
    .replace(/\r\n/g, '\n')
    .split('\n')
    .filter((l) => l.trim() !== '');
  let text = lines.slice(0, OUTPUT_LINES).join('\n');
  if (text.length > OUTPUT_BYTES) text = `${text.slice(0, OUTPUT_BYTES)}…`;
  else if (lines.length > OUTPUT_LINES) text += '\n…';
  return text;
}

/**
 * `{file}` anywhere in an argument is the path; without one, the path is the last argument
 * (unless `append` is false).
 */
export function checkArgv(argv: readonly string[], path: string, { append = true }: { append?: boolean } = {}): string[] {
  const placeholder = argv.some((a) => a.includes('{file}'));
  const out = argv.map((a) => a.split('{file}').join(path));
  return placeholder || !append ? out : [...out, path];
}

interface ExecFileFailure {
  code?: number | string | null;
  killed?: boolean;
  signal?: NodeJS.Signals | null;
  message?: string;
}

/** The variables of a target's `.env` output, as compose reads them: what a recreated container gets. */
async function environmentFile(path: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    // No file: a rollback to before the target's first delivery took it away; nothing is managed.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw error;
  }
  try {
    return readComposeDotenv(text);
  } catch (error) {
    // compose's messages quote the file, which holds secrets: only the line is told.
    const line = error instanceof ComposeDotenvError ? ` (line ${error.line})` : '';
    throw new AppError('RELOAD_FAILED', { details: `${path} is not a .env file compose reads${line}` });
  }
}

export function createReloadActions(input: CreateReloadActionsInput): ReloadActions {
  const { docker, supervisor, recreator, clock = systemClock } = input;
  const http: HttpHooks = input.http ?? { postReload: defaultPostReload, probeHealth: (url, options) => defaultProbeHealth(url, { ...options, clock }) };
  const log = input.logger.child({ module: 'reload-actions' });
  const stableFor = (timeoutMs: number): number => Math.min(input.stableMs ?? DEFAULT_STABLE_MS, Math.floor(timeoutMs / 2));

  async function reload(action: ReloadAction, { timeoutMs }: { timeoutMs: number }): Promise<ReloadResult> {
    const started = clock.now();
    const deadline = started + timeoutMs;
    const remaining = (): number => Math.max(1, deadline - clock.now());
    let result: ReloadResult;
    switch (action.kind) {
      case 'none':
        return { reloaded: false };
      case 'docker_restart': {
        const before = await docker.inspectState(action.container, { timeoutMs: remaining() });
        await docker.restart(action.container, { timeoutMs: remaining() });
        result = { reloaded: true, before: { startedAt: before.startedAt } };
        break;
      }
      case 'docker_signal': {
        const before = await docker.inspectState(action.container, { timeoutMs: remaining() });
        await docker.signal(action.container, action.signal, { timeoutMs: remaining() });
        result = { reloaded: true, before: { startedAt: before.startedAt } };
        break;
      }
      case 'docker_exec': {
        const { exitCode, output } = await docker.exec(action.container, action.command, { timeoutMs: remaining() });
        if (exitCode !== 0) {
          const what = describeAction(action);
          throw new AppError('RELOAD_FAILED', {
            message: `Reload command failed with exit code ${exitCode}`,
            details: `${what}: exit code ${exitCode}${output.trim() ? `: ${firstLines(output)}` : ''}`,
            data: { container: containerRefText(action.container), exitCode },
          });
        }
        result = { reloaded: true };
        break;
      }
      case 'docker_recreate': {
        if (!recreator) throw new AppError('RELOAD_FAILED', { details: `${describeAction(action)}: no Docker engine to recreate it with` });
        const env = await environmentFile(action.envFile);
        const recreated = await recreator.recreate({ ref: action.container, env, timeoutMs: remaining(), healthTimeoutMs: timeoutMs });
        for (const warning of recreated.warnings) log.warn({ container: recreated.container }, warning);
        result = { reloaded: recreated.recreated };
        break;
      }
      case 'supervisor_update': {
        const update = await applyProgramUpdate({ supervisor, program: action.program, timeoutMs: remaining(), clock });
        // Its include file was just written: supervisord seeing no change usually means the file is not in its [include] files.
        if (update.change === 'unchanged')
          log.warn({ program: action.program }, 'supervisord found the program unchanged; is its include file listed in [include] files?');
        result = { reloaded: update.change !== 'unchanged', ...(update.before ? { before: update.before } : {}) };
        break;
      }
      case 'supervisor_restart': {
        const before = await supervisor.processInfo(action.program, { timeoutMs: remaining() });
        await supervisor.restart(action.program, { timeoutMs: remaining() });
        result = { reloaded: true, before: { pid: before.pid, start: before.start } };
        break;
      }
      case 'supervisor_signal':
        await supervisor.signal(action.program, action.signal, { timeoutMs: remaining() });
        result = { reloaded: true };
        break;
      case 'http':
        await http.postReload(action.url, { timeoutMs: remaining(), ...(action.shown !== undefined ? { shown: action.shown } : {}) });
        result = { reloaded: true };
        break;
    }
    log.info({ action: describeAction(action), durationMs: clock.now() - started }, 'reloaded');
    return result;
  }

  async function verifyAuto(action: ReloadAction, reloadResult: ReloadResult, { timeoutMs, stableMs }: { timeoutMs: number; stableMs: number }): Promise<void> {
    switch (action.kind) {
      case 'docker_restart': {
        const startedAfter = reloadResult.before?.startedAt;
        await docker.waitHealthy(action.container, { timeoutMs, stableMs, ...(startedAfter !== undefined ? { startedAfter } : {}) });
        return;
      }
      case 'docker_recreate':
        // The recreation waited for the new container's health itself, and put the old one back when it failed.
        return;
      case 'docker_signal':
      case 'docker_exec':
        // Same container, no new StartedAt: it must still be running (and healthy, if it says).
        await docker.waitHealthy(action.container, { timeoutMs, stableMs });
        return;
      case 'supervisor_update':
      case 'supervisor_restart': {
        const { start, pid } = reloadResult.before ?? {};
        await supervisor.waitRunning(action.program, {
          timeoutMs,
          stableMs,
          ...(start !== undefined ? { startedAfter: start } : {}),
          ...(pid !== undefined ? { previousPid: pid } : {}),
        });
        return;
      }
      case 'supervisor_signal':
        await supervisor.waitRunning(action.program, { timeoutMs, stableMs });
        return;
      case 'http':
      case 'none':
        // Nothing to watch: an HTTP hook's answer was the verdict; `none` reloaded nothing.
        return;
    }
  }

  async function verify({ action, health, reloadResult, timeoutMs }: VerifyInput): Promise<void> {
    if (health.kind === 'none') return;
    const stableMs = health.windowMs ?? stableFor(timeoutMs);
    try {
      if (health.kind === 'http') {
        await http.probeHealth(health.url, { timeoutMs, stableMs, ...(health.shown !== undefined ? { shown: health.shown } : {}) });
      } else await verifyAuto(action, reloadResult, { timeoutMs, stableMs });
    } catch (error) {
      // One verdict for the caller: whatever stopped the check (engine gone, timeout), the
      // service was not seen healthy. The original code stays in the details and the cause.
      if (isAppError(error) && error.code !== 'HEALTH_FAILED') {
        throw new AppError('HEALTH_FAILED', {
          message: `Could not verify ${describeAction(action)}`,
          details: `${error.code}: ${error.details}`,
          data: { ...error.data },
          cause: error,
        });
      }
      throw error;
    }
  }

  function runExecCheck(argv: readonly string[], path: string, { timeoutMs, installed = false }: RunCheckOptions): Promise<void> {
    const [file, ...args] = checkArgv(argv, path, { append: !installed });
    if (!file) return Promise.reject(new AppError('CHECK_FAILED', { message: 'Empty check command' }));
    const shown = argv.join(' ');
    return new Promise((resolve, reject) => {
      // execFile, no shell: the file name and the arguments reach the program as they are.
      // The environment is reduced to PATH/LANG: a checker has no use for confhub's secrets.
      execFile(
        file,
        args,
        {
          timeout: timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: CHECK_MAX_BUFFER,
          env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
          windowsHide: true,
        },
        (error, stdout, stderr) => {
          if (!error) {
            resolve();
            return;
          }
          const e = error as ExecFileFailure;
          const output = firstLines(`${stdout}\n${stderr}`);
          let why: string;
          if (typeof e.code === 'string') why = `cannot run ${file}: ${e.code}`;
          else if (e.killed && e.signal === 'SIGKILL') why = `killed after ${timeoutMs} ms`;
          else if (e.signal) why = `killed by ${e.signal}`;
          else why = `exit code ${e.code ?? 'unknown'}`;
          reject(
            new AppError('CHECK_FAILED', {
              message: `Check rejected the ${installed ? 'installed ' : ''}file: ${why}`,
              details: `${shown}: ${why}${output ? `: ${output}` : ''}`,
              data: { command: file, ...(typeof e.code === 'number' ? { exitCode: e.code } : {}) },
              cause: error,
            }),
          );
        },
      );
    });
  }

  async function runCheck(check: CheckCommand, path: string, options: RunCheckOptions): Promise<void> {
    const { timeoutMs } = options;
    if (check.kind === 'exec') return runExecCheck(check.argv, path, options);
    // docker_exec checks the service's own view (its mounted config), so no path is passed.
    const what = `docker exec ${containerRefText(check.container)} ${check.command.join(' ')}`;
    let result: ExecResult;
    try {
      result = await docker.exec(check.container, check.command, { timeoutMs });
    } catch (error) {
      if (isAppError(error) && error.code === 'RELOAD_FAILED') {
        throw new AppError('CHECK_FAILED', { message: 'Check could not run', details: `${what}: ${error.details}`, data: { ...error.data }, cause: error });
      }
      throw error;
    }
    if (result.exitCode !== 0) {
      const output = firstLines(result.output);
      throw new AppError('CHECK_FAILED', {
        message: `Check rejected the file: exit code ${result.exitCode}`,
        details: `${what}: exit code ${result.exitCode}${output ? `: ${output}` : ''}`,
        data: { container: containerRefText(check.container), exitCode: result.exitCode },
      });
    }
  }

  return { reload, verify, runCheck, describe: describeAction };
}
