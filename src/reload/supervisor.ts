/**
 * supervisord XML-RPC driver for reloads of the programs inside the all-in-one container.
 *
 * A restart is `stopProcess(name, wait)` then `startProcess(name, wait)`. Never
 * `supervisor.restart`: that restarts supervisord itself, and with it every program (and
 * confhub, when supervisord runs it).
 *
 * supervisord listens on a unix socket (`unix:///run/…/supervisor.sock`, the shipped setup) or
 * on TCP (`http://user:password@127.0.0.1:9001`), through the small XML-RPC client of
 * xml-rpc.ts; basic auth comes from the URL's userinfo and is sent as a header, never logged or
 * put into an error.
 */
import type { Logger } from 'pino';
import { sleep, systemClock, type Clock } from '../core/clock.js';
import { AppError, isAppError, type ErrorCode } from '../core/errors.js';
import { xmlRpcCall, type XmlRpcCallInput, type XmlRpcError, type XmlRpcParam, type XmlRpcValue } from './xml-rpc.js';

/** supervisord's process state names (supervisor/states.py ProcessStates). */
export type ProcessStateName = 'STOPPED' | 'STARTING' | 'RUNNING' | 'BACKOFF' | 'STOPPING' | 'EXITED' | 'FATAL' | 'UNKNOWN';

export interface ProcessInfo {
  readonly state: ProcessStateName | string;
  /** 0 when the program is not running. */
  readonly pid: number;
  /** Last start, in whole seconds since the epoch (supervisord's resolution). */
  readonly start: number;
  readonly exitStatus: number;
  /** supervisord's one-line summary, e.g. "pid 42, uptime 0:00:03" or a spawn error. */
  readonly description: string;
}

export interface WaitRunningOptions {
  readonly timeoutMs: number;
  /** How long the program must stay RUNNING with the same pid to count as up. */
  readonly stableMs: number;
  /** The program must have started after this `start` (seconds, the value before a restart). */
  readonly startedAfter?: number;
  /**
   * The pid before a restart. `start` only has whole seconds, so a restart within the same second
   * keeps `start` equal; a different pid with `start >= startedAfter` then proves the new process.
   */
  readonly previousPid?: number;
}

export interface SupervisorDriver {
  /** The URL without credentials, for messages. */
  readonly displayUrl: string;
  /** Resolves with supervisord's own state name (RUNNING when it is serving). */
  ping(timeoutMs: number): Promise<string>;
  processInfo(program: string, options?: { timeoutMs?: number }): Promise<ProcessInfo>;
  restart(program: string, options: { timeoutMs: number }): Promise<void>;
  signal(program: string, signal: string, options?: { timeoutMs?: number }): Promise<void>;
  waitRunning(program: string, options: WaitRunningOptions): Promise<ProcessInfo>;
  /**
   * One XML-RPC call for what the methods above do not cover (supervisor-update.ts). A fault
   * rejects as supervisord sent it (faultCode, faultString); no answer or no connection as AppError.
   */
  call(method: string, params: readonly XmlRpcParam[], options: { timeoutMs: number }): Promise<XmlRpcValue>;
}

export interface CreateSupervisorDriverInput {
  /** `unix:///path/to/supervisor.sock` or `http://[user:password@]host:port[/RPC2]`. */
  url: string;
  logger: Logger;
  /** Budget of the calls that take no timeout of their own. */
  defaultTimeoutMs?: number;
  pollIntervalMs?: number;
  /**
   * Times the waits (running, stability window) and the budgets they share; the deadline of each
   * single call is real time, since it guards real I/O. Default the system clock.
   */
  clock?: Clock;
}

/** supervisor/xmlrpc.py Faults. */
export const SUPERVISOR_FAULTS = Object.freeze({
  SHUTDOWN_STATE: 6,
  BAD_NAME: 10,
  BAD_SIGNAL: 11,
  NO_FILE: 20,
  NOT_EXECUTABLE: 21,
  FAILED: 30,
  ABNORMAL_TERMINATION: 40,
  SPAWN_ERROR: 50,
  ALREADY_STARTED: 60,
  NOT_RUNNING: 70,
  ALREADY_ADDED: 90,
  STILL_RUNNING: 91,
  CANT_REREAD: 92,
});

const DEFAULT_CALL_TIMEOUT_MS = 10_000;
const DEFAULT_POLL_INTERVAL_MS = 150;
const UNREACHABLE_CODES = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'EACCES',
  'EPERM',
  'ENOTSOCK',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
/** States from which the program will not come back by itself. */
const TERMINAL_STATES = new Set(['STOPPED', 'EXITED', 'FATAL', 'UNKNOWN']);

interface Endpoint {
  options: XmlRpcCallInput['endpoint'];
  secure: boolean;
  displayUrl: string;
}

function parseEndpoint(url: string): Endpoint {
  if (url.startsWith('unix://')) {
    const socketPath = url.slice('unix://'.length);
    if (!socketPath.startsWith('/'))
      throw new AppError('SERVICE_UNREACHABLE', { message: 'Invalid supervisord URL', details: `"${url}" is not unix:///absolute/path` });
    // Host only fills the Host header; the connection goes to the socket.
    return { options: { socketPath, host: 'localhost', path: '/RPC2' }, secure: false, displayUrl: url };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new AppError('SERVICE_UNREACHABLE', { message: 'Invalid supervisord URL', details: 'the supervisord URL cannot be parsed', cause: error });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new AppError('SERVICE_UNREACHABLE', {
      message: 'Invalid supervisord URL',
      details: `supervisord URL must be unix:// or http://, got ${parsed.protocol}`,
    });
  }
  const secure = parsed.protocol === 'https:';
  const headers: Record<string, string> = {};
  if (parsed.username !== '' || parsed.password !== '') {
    const user = decodeURIComponent(parsed.username);
    const pass = decodeURIComponent(parsed.password);
    headers.Authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }
  const path = parsed.pathname === '' || parsed.pathname === '/' ? '/RPC2' : parsed.pathname;
  const port = parsed.port === '' ? (secure ? 443 : 80) : Number(parsed.port);
  const displayUrl = `${parsed.protocol}//${parsed.host}${path}`;
  return { options: { host: parsed.hostname.replace(/^\[|\]$/g, ''), port, path, headers }, secure, displayUrl };
}

function isFault(error: unknown, faultCode: number): boolean {
  return !isAppError(error) && (error as XmlRpcError | undefined)?.faultCode === faultCode;
}

export function createSupervisorDriver(input: CreateSupervisorDriverInput): SupervisorDriver {
  // A bad URL must not throw here: the worker builds its drivers at start-up, and one bad
  // setting should fail the supervisord reloads (SERVICE_UNREACHABLE), not the whole worker.
  let endpoint: Endpoint | undefined;
  let endpointError: AppError | undefined;
  try {
    endpoint = parseEndpoint(input.url);
  } catch (error) {
    endpointError = isAppError(error) ? error : new AppError('SERVICE_UNREACHABLE', { message: 'Invalid supervisord URL', cause: error });
  }
  const displayUrl = endpoint?.displayUrl ?? '(invalid supervisor_url)';
  const defaultTimeoutMs = input.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const pollIntervalMs = input.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const clock = input.clock ?? systemClock;
  const log = input.logger.child({ module: 'reload-supervisor' });

  /**
   * One XML-RPC call with a deadline, aborted when it passes (no keep-alive: nothing lingers
   * after the call). Faults are passed through raw so callers can match on faultCode.
   */
  function rpc<T>(method: string, params: XmlRpcParam[], timeoutMs: number): Promise<T> {
    if (!endpoint) return Promise.reject(endpointError);
    const { options, secure } = endpoint;
    const controller = new AbortController();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(
        () => {
          settled = true;
          controller.abort();
          reject(
            new AppError('TIMEOUT', {
              message: `supervisord did not answer in time: ${method}`,
              details: `${method}: no answer from supervisord at ${displayUrl} within ${timeoutMs} ms`,
            }),
          );
        },
        Math.max(1, timeoutMs),
      );
      xmlRpcCall({ endpoint: options, secure, method, params, signal: controller.signal }).then(
        (value) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(value as T);
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(mapTransportError(error, method));
        },
      );
    });
  }

  function mapTransportError(error: unknown, method: string): unknown {
    const e = (error ?? {}) as XmlRpcError;
    if (typeof e.faultCode === 'number') return error;
    if (typeof e.code === 'string' && UNREACHABLE_CODES.has(e.code)) {
      return new AppError('SERVICE_UNREACHABLE', {
        message: 'supervisord unreachable',
        details: `${method}: cannot connect to supervisord at ${displayUrl} (${e.code})`,
        data: { url: displayUrl },
        cause: error,
      });
    }
    const status = e.statusCode;
    if (status === 401) {
      return new AppError('SERVICE_UNREACHABLE', {
        message: 'supervisord refused the credentials',
        details: `${method}: supervisord at ${displayUrl} answered 401 (check the user and password in supervisor_url)`,
        data: { url: displayUrl },
        cause: error,
      });
    }
    return new AppError('SERVICE_UNREACHABLE', {
      message: 'supervisord answered something that is not XML-RPC',
      details: `${method}: unexpected answer from ${displayUrl}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(error)}`,
      data: { url: displayUrl },
      cause: error,
    });
  }

  /** Turns a supervisord fault into an AppError naming the program. */
  function faultError(error: unknown, { code, program, what }: { code: ErrorCode; program: string; what: string }): unknown {
    const e = error as XmlRpcError;
    if (isAppError(error) || typeof e?.faultCode !== 'number') return error;
    // supervisord answers every call with this once it got SIGTERM (docker stop): the program
    // will read its new file when it next starts, so this is a reload that could not happen yet,
    // not a failed one (which would roll the change back).
    if (e.faultCode === SUPERVISOR_FAULTS.SHUTDOWN_STATE) {
      return new AppError('SERVICE_UNREACHABLE', {
        message: 'supervisord is shutting down',
        details: `${what} ${program}: supervisord is shutting down`,
        data: { program, shuttingDown: true },
        cause: error,
      });
    }
    if (e.faultCode === SUPERVISOR_FAULTS.BAD_NAME) {
      return new AppError(code, {
        message: `No such program: ${program}`,
        details: `supervisord has no program named "${program}"`,
        data: { program },
        cause: error,
      });
    }
    const fault = e.faultString ?? `fault ${e.faultCode}`;
    return new AppError(code, {
      message: `supervisord could not ${what} ${program}`,
      details: `${what} ${program}: ${fault}`,
      data: { program },
      cause: error,
    });
  }

  async function processInfo(program: string, options: { timeoutMs?: number } = {}, code: ErrorCode = 'RELOAD_FAILED'): Promise<ProcessInfo> {
    let raw: Record<string, unknown>;
    try {
      raw = await rpc<Record<string, unknown>>('supervisor.getProcessInfo', [program], options.timeoutMs ?? defaultTimeoutMs);
    } catch (error) {
      throw faultError(error, { code, program, what: 'inspect' });
    }
    return {
      state: String(raw.statename ?? 'UNKNOWN'),
      pid: Number(raw.pid ?? 0),
      start: Number(raw.start ?? 0),
      exitStatus: Number(raw.exitstatus ?? 0),
      description: String(raw.description ?? ''),
    };
  }

  function describeInfo(info: ProcessInfo | undefined): string {
    if (!info) return 'no state seen';
    return `${info.state}${info.pid ? ` pid ${info.pid}` : ''}${info.state === 'EXITED' ? ` exit status ${info.exitStatus}` : ''}${info.description ? ` (${info.description})` : ''}`;
  }

  return {
    displayUrl,

    async ping(timeoutMs) {
      const state = await rpc<{ statename?: string }>('supervisor.getState', [], timeoutMs);
      return String(state?.statename ?? 'UNKNOWN');
    },

    processInfo: (program, options) => processInfo(program, options),

    call: (method, params, { timeoutMs }) => rpc(method, [...params], timeoutMs),

    async restart(program, { timeoutMs }) {
      const deadline = clock.now() + timeoutMs;
      const remaining = (): number => Math.max(1, deadline - clock.now());
      log.info({ program }, 'restarting program');
      try {
        // wait=true: the answer comes once the process is gone (supervisord escalates to
        // SIGKILL after the program's stopwaitsecs).
        await rpc('supervisor.stopProcess', [program, true], remaining());
      } catch (error) {
        // A stopped program just gets started: the new file is read either way.
        if (!isFault(error, SUPERVISOR_FAULTS.NOT_RUNNING)) throw faultError(error, { code: 'RELOAD_FAILED', program, what: 'stop' });
      }
      try {
        // wait=true: the answer comes once the program is RUNNING (after its startsecs) or with
        // ABNORMAL_TERMINATION / SPAWN_ERROR when it died on the way.
        await rpc('supervisor.startProcess', [program, true], remaining());
      } catch (error) {
        // Someone (autorestart, an operator) started it between our two calls: it runs on the new file.
        if (isFault(error, SUPERVISOR_FAULTS.ALREADY_STARTED)) {
          log.warn({ program }, 'program was already started again');
          return;
        }
        throw faultError(error, { code: 'RELOAD_FAILED', program, what: 'start' });
      }
    },

    async signal(program, signal, options = {}) {
      log.info({ program, signal }, 'signalling program');
      try {
        await rpc('supervisor.signalProcess', [program, signal], options.timeoutMs ?? defaultTimeoutMs);
      } catch (error) {
        throw faultError(error, { code: 'RELOAD_FAILED', program, what: `send ${signal} to` });
      }
    },

    async waitRunning(program, options) {
      const { timeoutMs, stableMs, startedAfter, previousPid } = options;
      const deadline = clock.now() + timeoutMs;
      let last: ProcessInfo | undefined;
      let stableSince: { at: number; pid: number } | undefined;
      const failed = (why: string, cause?: unknown): AppError =>
        new AppError('HEALTH_FAILED', {
          message: `Program ${program} is not running: ${why}`,
          details: `program ${program}: ${why}; last seen: ${describeInfo(last)}`,
          data: { program, ...(last ? { state: last.state } : {}) },
          ...(cause === undefined ? {} : { cause }),
        });
      for (;;) {
        const now = clock.now();
        if (now >= deadline) throw failed(`not stably RUNNING within ${timeoutMs} ms`);
        try {
          last = await processInfo(program, { timeoutMs: Math.min(defaultTimeoutMs, deadline - now) }, 'HEALTH_FAILED');
        } catch (error) {
          if (isAppError(error) && error.code === 'TIMEOUT') {
            await sleep(clock, Math.min(pollIntervalMs, deadline - clock.now()), { keepAlive: true });
            continue;
          }
          if (isAppError(error) && error.code === 'HEALTH_FAILED') throw failed(error.details, error);
          throw error;
        }
        const fresh =
          startedAfter === undefined || last.start > startedAfter || (previousPid !== undefined && last.pid !== previousPid && last.start >= startedAfter);
        if (last.state === 'RUNNING' && last.pid > 0 && fresh) {
          if (!stableSince || stableSince.pid !== last.pid) stableSince = { at: clock.now(), pid: last.pid };
          if (clock.now() - stableSince.at >= stableMs) return last;
        } else {
          stableSince = undefined;
          // STARTING and BACKOFF may still end in RUNNING; these states will not by themselves.
          if (TERMINAL_STATES.has(last.state)) throw failed(`it is ${last.state}`);
        }
        await sleep(clock, Math.min(pollIntervalMs, deadline - clock.now()), { keepAlive: true });
      }
    },
  };
}
