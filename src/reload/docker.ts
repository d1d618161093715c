/**
 * Docker Engine API driver for reloads: restart, signal, exec, and waiting until a container is
 * back and healthy. It talks to one socket (docker-engine-api.ts); every call carries its own
 * AbortSignal, so a hung daemon costs at most the caller's budget.
 *
 * Containers are named in system.ini either by name or by label (compose generates names such
 * as `app-gitea-1`; the `com.docker.compose.service` label is stable). A label must select
 * exactly one container: reloading "whichever came first" would hide a misconfiguration.
 */
import type { Logger } from 'pino';
import { sleep, systemClock, type Clock } from '../core/clock.js';
import { AppError, isAppError, type ErrorCode } from '../core/errors.js';
import { containerRefText, type ContainerRef } from '../targets/target-spec.js';
import { engineCall, engineStream, type EngineApiError } from './docker-engine-api.js';

export type ContainerHealth = 'healthy' | 'unhealthy' | 'starting' | undefined;

export interface ContainerState {
  readonly running: boolean;
  /** Docker's `State.Status`: created, running, restarting, exited, paused, dead. */
  readonly status: string;
  /** RFC 3339 with nanoseconds, as Docker reports it. */
  readonly startedAt: string;
  /** `undefined` when the container has no HEALTHCHECK. */
  readonly health: ContainerHealth;
  readonly restartCount: number;
  readonly exitCode: number;
}

export interface ResolvedContainer {
  readonly id: string;
  readonly name: string;
}

export interface ExecResult {
  readonly exitCode: number;
  /** stdout and stderr interleaved as they arrived, cut at OUTPUT_LIMIT_BYTES. */
  readonly output: string;
}

export interface WaitHealthyOptions {
  readonly timeoutMs: number;
  /** The container must have started after this StartedAt (the value seen before a restart). */
  readonly startedAfter?: string;
  /**
   * For containers without a HEALTHCHECK: how long they must keep running (same StartedAt, no
   * restarts) before they count as up. "Running" right after a start says little; a process that
   * dies on a bad config file usually does so within the first second.
   */
  readonly stableMs?: number;
}

export interface DockerDriver {
  readonly socketPath: string;
  ping(timeoutMs: number): Promise<void>;
  resolve(ref: ContainerRef, options?: { timeoutMs?: number }): Promise<ResolvedContainer>;
  restart(ref: ContainerRef, options: { timeoutMs: number }): Promise<void>;
  signal(ref: ContainerRef, signal: string, options?: { timeoutMs?: number }): Promise<void>;
  /** Runs argv (no shell) inside the container. A non-zero exit is returned, not thrown: the caller decides what it means. */
  exec(ref: ContainerRef, argv: readonly string[], options: { timeoutMs: number }): Promise<ExecResult>;
  inspectState(ref: ContainerRef, options?: { timeoutMs?: number }): Promise<ContainerState>;
  waitHealthy(ref: ContainerRef, options: WaitHealthyOptions): Promise<ContainerState>;
}

export interface CreateDockerDriverInput {
  socketPath: string;
  logger: Logger;
  /** Budget of the calls that take no timeout of their own (inspect, list, kill). */
  defaultTimeoutMs?: number;
  /** Interval between two inspections while waiting for a container. */
  pollIntervalMs?: number;
  /**
   * Times the waits (health, stability window, exec exit code) and the budgets they share; the
   * deadline of each single API call is real time, since it guards real I/O. Default the system clock.
   */
  clock?: Clock;
}

export const OUTPUT_LIMIT_BYTES = 4096;
const DEFAULT_CALL_TIMEOUT_MS = 10_000;
const DEFAULT_POLL_INTERVAL_MS = 150;
/** Errors of connect(2) on the socket: the daemon is not there (or not ours to talk to). */
const UNREACHABLE_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'EPERM', 'ENOTSOCK', 'ECONNRESET', 'EPIPE']);

/** What `docker` would print for the reference; used in messages and logs. */

/**
 * StartedAt as nanoseconds since the epoch. Docker trims trailing zeros of the fraction
 * (RFC3339Nano), so the strings cannot be compared as text: "…:32.5Z" > "…:32.50001Z".
 */
export function startedAtNanos(text: string): bigint | undefined {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!match) return undefined;
  const seconds = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(seconds)) return undefined;
  const fraction = (match[2] ?? '').padEnd(9, '0');
  return BigInt(seconds) * 1_000_000n + BigInt(fraction);
}

/** Docker's "never started" is the zero time 0001-01-01T00:00:00Z. */
function startedAfter(current: string, before: string): boolean {
  const a = startedAtNanos(current);
  const b = startedAtNanos(before);
  if (a === undefined) return false;
  if (b === undefined) return true;
  return a > b;
}

function describeState(state: ContainerState | undefined): string {
  if (!state) return 'no state seen';
  const parts = [state.status];
  if (!state.running && state.status !== 'created') parts.push(`exit code ${state.exitCode}`);
  if (state.health) parts.push(`health ${state.health}`);
  parts.push(`started ${state.startedAt}`);
  if (state.restartCount > 0) parts.push(`restarts ${state.restartCount}`);
  return parts.join(', ');
}

/** The parts of the engine's answers the driver reads. */
interface ContainerInspect {
  Id: string;
  Name: string;
  RestartCount?: number;
  State: { Running: boolean; Status: string; StartedAt: string; ExitCode: number; Health?: { Status?: string } };
}

interface ContainerSummary {
  Id: string;
  Names: string[];
  State: string;
}

interface ExecInspect {
  Running: boolean;
  ExitCode: number | null;
}

export interface EngineStepInput {
  readonly socketPath: string;
  /** What the call does, for messages: "inspect container web". */
  readonly what: string;
  readonly timeoutMs: number;
  /** The code of an engine refusal (an answer >= 400); timeouts and a missing engine have their own. */
  readonly code: ErrorCode;
  /** Applied to the engine's own message before it reaches the error (it may quote what it was sent). */
  readonly redact?: (text: string) => string;
}

/** Maps whatever an engine call threw to an AppError: TIMEOUT, SERVICE_UNREACHABLE, or `code` for a refusal. */
function toAppError(error: unknown, { signal, input }: { signal: AbortSignal; input: EngineStepInput }): AppError {
  const { socketPath, what, timeoutMs, code } = input;
  if (isAppError(error)) return error;
  const e = (error ?? {}) as EngineApiError;
  if (signal.aborted) {
    return new AppError('TIMEOUT', {
      message: `Docker did not answer in time: ${what}`,
      details: `${what}: no answer from the Docker engine at ${socketPath} within ${timeoutMs} ms`,
      cause: error,
    });
  }
  if (e.code && UNREACHABLE_CODES.has(e.code)) {
    return new AppError('SERVICE_UNREACHABLE', {
      message: `Docker engine unreachable: ${what}`,
      details: `${what}: cannot connect to the Docker engine at ${socketPath} (${e.code})`,
      data: { socket: socketPath },
      cause: error,
    });
  }
  const redact = input.redact ?? ((text: string) => text);
  const daemonMessage = redact(e.json?.message ?? e.message ?? String(error));
  // With a redaction, the cause (which a log line may print) is a redacted copy of the refusal.
  const cause: unknown = input.redact
    ? Object.assign(new Error(redact(e.message ?? '')), { statusCode: e.statusCode, json: e.json ? { message: redact(e.json.message ?? '') } : e.json })
    : error;
  return new AppError(code, {
    message: `Docker refused: ${what}`,
    details: `${what}: ${e.statusCode ? `HTTP ${e.statusCode}: ` : ''}${daemonMessage}`.trim(),
    cause,
  });
}

/** Runs one Engine API call with its own deadline and error mapping. */
export async function engineStep<T>(input: EngineStepInput, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(Math.max(1, input.timeoutMs));
  try {
    return await run(signal);
  } catch (error) {
    throw toAppError(error, { signal, input });
  }
}

export function createDockerDriver(input: CreateDockerDriverInput): DockerDriver {
  const { socketPath } = input;
  const defaultTimeoutMs = input.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const pollIntervalMs = input.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const clock = input.clock ?? systemClock;
  const log = input.logger.child({ module: 'reload-docker' });
  // No idle-socket timeout: `restart?t=` is legitimately silent for t seconds. Each call gets an
  // AbortSignal instead.
  const api = <T>(method: 'GET' | 'POST', path: string, signal: AbortSignal): Promise<T> => engineCall<T>({ socketPath, method, path, signal });
  const containerPath = (id: string, tail: string): string => `/containers/${encodeURIComponent(id)}${tail}`;

  const call = <T>(step: { what: string; timeoutMs: number; code: ErrorCode }, run: (signal: AbortSignal) => Promise<T>): Promise<T> =>
    engineStep({ socketPath, ...step }, run);

  async function resolve(ref: ContainerRef, options: { timeoutMs?: number } = {}, code: ErrorCode = 'RELOAD_FAILED'): Promise<ResolvedContainer> {
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    if (ref.by === 'name') {
      const info = await call({ what: `inspect container ${ref.name}`, timeoutMs, code }, async (abortSignal) => {
        try {
          return await api<ContainerInspect>('GET', containerPath(ref.name, '/json'), abortSignal);
        } catch (error) {
          if ((error as EngineApiError).statusCode === 404) {
            // Not created yet (first boot, a service still being deployed): the reload waits and is retried.
            throw new AppError('SERVICE_UNREACHABLE', {
              message: `No such container: ${ref.name}`,
              details: `container "${ref.name}" does not exist (yet)`,
              data: { container: ref.name },
              cause: error,
            });
          }
          throw error;
        }
      });
      return { id: info.Id, name: info.Name.replace(/^\//, '') };
    }
    const filter = ref.value === undefined ? ref.label : `${ref.label}=${ref.value}`;
    const text = containerRefText(ref);
    const all = await call({ what: `list containers with ${text}`, timeoutMs, code }, (abortSignal) =>
      api<ContainerSummary[]>('GET', `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: [filter] }))}`, abortSignal),
    );
    // Stopped leftovers (e.g. one-off `compose run` containers) share the service label; when
    // exactly one of the matches is running, that is the service.
    const running = all.filter((c) => c.State === 'running');
    const chosen = all.length === 1 ? all[0] : running.length === 1 ? running[0] : undefined;
    if (!chosen) {
      const names = all.map((c) => (c.Names[0] ?? c.Id.slice(0, 12)).replace(/^\//, ''));
      // None yet is a service not up yet (retried); several is a declaration to fix.
      throw new AppError(all.length === 0 ? 'SERVICE_UNREACHABLE' : code, {
        message: `Label ${filter} matches ${all.length} containers, expected exactly one`,
        details:
          all.length === 0
            ? `no container has the label ${filter}`
            : `the label ${filter} matches ${all.length} containers (${running.length} running): ${names.join(', ')}`,
        data: { label: filter, matches: all.length },
      });
    }
    return { id: chosen.Id, name: (chosen.Names[0] ?? chosen.Id.slice(0, 12)).replace(/^\//, '') };
  }

  async function inspectState(ref: ContainerRef, options: { timeoutMs?: number } = {}, code: ErrorCode = 'RELOAD_FAILED'): Promise<ContainerState> {
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    const started = clock.now();
    const { id, name } = await resolve(ref, { timeoutMs }, code);
    const info = await call({ what: `inspect container ${name}`, timeoutMs: Math.max(1, timeoutMs - (clock.now() - started)), code }, (abortSignal) =>
      api<ContainerInspect>('GET', containerPath(id, '/json'), abortSignal),
    );
    const health = info.State.Health?.Status;
    return {
      running: info.State.Running,
      status: info.State.Status,
      startedAt: info.State.StartedAt,
      health: health === 'healthy' || health === 'unhealthy' || health === 'starting' ? health : undefined,
      restartCount: info.RestartCount ?? 0,
      exitCode: info.State.ExitCode,
    };
  }

  return {
    socketPath,

    async ping(timeoutMs) {
      await call({ what: 'ping', timeoutMs, code: 'SERVICE_UNREACHABLE' }, (abortSignal) => api('GET', '/_ping', abortSignal));
    },

    resolve: (ref, options) => resolve(ref, options),

    async restart(ref, { timeoutMs }) {
      const started = clock.now();
      const { id, name } = await resolve(ref, { timeoutMs });
      const remaining = Math.max(1, timeoutMs - (clock.now() - started));
      // Half of the budget is for the graceful stop (Docker sends SIGKILL after `t` seconds), the
      // rest for the start; the HTTP call itself is cut at the full budget.
      const t = Math.max(0, Math.floor(remaining / 2 / 1000));
      log.info({ container: name, t }, 'restarting container');
      await call({ what: `restart container ${name}`, timeoutMs: remaining, code: 'RELOAD_FAILED' }, (abortSignal) =>
        api('POST', containerPath(id, `/restart?t=${t}`), abortSignal),
      );
    },

    async signal(ref, signal, options = {}) {
      const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
      const { id, name } = await resolve(ref, { timeoutMs });
      log.info({ container: name, signal }, 'signalling container');
      // Docker answers 409 when the container is not running: a signal cannot reload it.
      await call({ what: `send ${signal} to container ${name}`, timeoutMs, code: 'RELOAD_FAILED' }, (abortSignal) =>
        api('POST', containerPath(id, `/kill?signal=${encodeURIComponent(signal)}`), abortSignal),
      );
    },

    async exec(ref, argv, { timeoutMs }) {
      const deadline = clock.now() + timeoutMs;
      const remaining = (): number => Math.max(1, deadline - clock.now());
      const { id, name } = await resolve(ref, { timeoutMs });
      const what = `exec ${argv[0] ?? ''} in container ${name}`;
      // Cmd is an argv array: Docker execs it directly, no shell sees it.
      const exec = await call({ what, timeoutMs: remaining(), code: 'RELOAD_FAILED' }, (abortSignal) =>
        engineCall<{ Id: string }>({
          socketPath,
          method: 'POST',
          path: containerPath(id, '/exec'),
          body: { Cmd: [...argv], AttachStdout: true, AttachStderr: true, Tty: false },
          signal: abortSignal,
        }),
      );
      const execPath = `/exec/${encodeURIComponent(exec.Id)}`;
      const output = await call({ what, timeoutMs: remaining(), code: 'RELOAD_FAILED' }, async (signal) => {
        const chunks: Buffer[] = [];
        let size = 0;
        // Without a TTY, Docker multiplexes stdout and stderr; both are kept, interleaved as they came.
        await engineStream({ socketPath, method: 'POST', path: `${execPath}/start`, body: { Detach: false, Tty: false }, signal }, (payload) => {
          // Keep reading past the cap (the process must not block on a full pipe) but keep nothing beyond it.
          if (size < OUTPUT_LIMIT_BYTES) chunks.push(payload.subarray(0, OUTPUT_LIMIT_BYTES - size));
          size += payload.length;
        });
        return Buffer.concat(chunks).toString('utf8') + (size > OUTPUT_LIMIT_BYTES ? '\n[output truncated]' : '');
      });
      // The stream ends when the process exits; ExitCode can still be null for a moment after.
      for (;;) {
        const info = await call({ what, timeoutMs: remaining(), code: 'RELOAD_FAILED' }, (abortSignal) =>
          api<ExecInspect>('GET', `${execPath}/json`, abortSignal),
        );
        if (!info.Running && info.ExitCode !== null) {
          log.debug({ container: name, exitCode: info.ExitCode }, 'exec finished');
          return { exitCode: info.ExitCode, output };
        }
        if (clock.now() >= deadline) {
          throw new AppError('TIMEOUT', { message: `Docker did not report the exit code: ${what}`, details: `${what}: no exit code within ${timeoutMs} ms` });
        }
        await sleep(clock, Math.min(50, remaining()), { keepAlive: true });
      }
    },

    inspectState: (ref, options) => inspectState(ref, options),

    async waitHealthy(ref, options) {
      const { timeoutMs } = options;
      const stableMs = options.stableMs ?? 0;
      const deadline = clock.now() + timeoutMs;
      const text = containerRefText(ref);
      let last: ContainerState | undefined;
      let lastError: AppError | undefined;
      // Start of the current uninterrupted run (same StartedAt and restart count) in our polls.
      let stableSince: { at: number; startedAt: string; restartCount: number } | undefined;
      const failed = (why: string): AppError =>
        new AppError('HEALTH_FAILED', {
          message: `Container ${text} is not healthy: ${why}`,
          details: `container ${text}: ${why}; last seen: ${lastError && !last ? lastError.details : describeState(last)}`,
          data: { container: text, ...(last ? { state: last.status, health: last.health ?? null } : {}) },
          ...(lastError ? { cause: lastError } : {}),
        });
      for (;;) {
        const now = clock.now();
        if (now >= deadline) throw failed(`not healthy within ${timeoutMs} ms`);
        try {
          // Each inspection only gets the time left, so the loop cannot overrun the budget.
          last = await inspectState(ref, { timeoutMs: Math.min(defaultTimeoutMs, deadline - now) }, 'HEALTH_FAILED');
          lastError = undefined;
        } catch (error) {
          // inspectState only throws AppErrors (call() maps everything); anything else is a bug to surface.
          if (!isAppError(error)) throw error;
          const appError = error;
          // The engine being gone is not a health verdict on the container; say so.
          if (appError.code === 'SERVICE_UNREACHABLE') throw appError;
          // A container removed while we wait fails at once; a slow answer is retried.
          if (appError.code === 'HEALTH_FAILED') {
            lastError = appError;
            throw failed(appError.details);
          }
          lastError = appError;
          await sleep(clock, Math.min(pollIntervalMs, deadline - clock.now()), { keepAlive: true });
          continue;
        }
        const fresh = options.startedAfter === undefined || startedAfter(last.startedAt, options.startedAfter);
        if (!last.running && last.status !== 'restarting') {
          // Exited, dead or never started: waiting will not change that (no restart policy at work).
          throw failed(fresh ? 'it stopped after the reload' : 'it is not running');
        }
        if (last.running && fresh) {
          if (last.health === 'unhealthy') throw failed('its health check reports unhealthy');
          if (last.health === 'healthy') return last;
          if (last.health === undefined) {
            if (!stableSince || stableSince.startedAt !== last.startedAt || stableSince.restartCount !== last.restartCount) {
              stableSince = { at: clock.now(), startedAt: last.startedAt, restartCount: last.restartCount };
            }
            if (clock.now() - stableSince.at >= stableMs) return last;
          }
        } else {
          stableSince = undefined;
        }
        await sleep(clock, Math.min(pollIntervalMs, deadline - clock.now()), { keepAlive: true });
      }
    },
  };
}
