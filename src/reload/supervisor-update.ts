/**
 * `supervisorctl update PROG` over XML-RPC: how a program gets a changed `environment=` (or any
 * other changed key of its configuration files). supervisord only reads its files when told, and
 * a running group keeps the configuration it was added with, so a restart alone would start the
 * program with its old environment.
 *
 * As supervisorctl.py do_update does for a group it is asked for: `reloadConfig` re-reads the
 * files and answers which groups were added, changed or removed against the running ones; a
 * changed group is stopped (`stopProcessGroup`, waiting), removed and added again from the new
 * configuration; an added one is added. Groups changed in the files but not asked for keep
 * running on their old configuration, as with `update PROG`. Two differences, both so that the
 * program runs afterwards as after `supervisor:restart`: a group that is not changed but is not
 * running is started, and a group added back is started even when its `autostart` is false. A
 * group the files no longer have is refused and left running (removing a program is not an
 * environment change).
 *
 * The program is a group of one process named like it: `[program:PROG]` with `numprocs = 1`
 * outside any `[group:x]`.
 *
 * When the new configuration does not start (the program exits, cannot be spawned), the program
 * stays as supervisord leaves it — FATAL, EXITED or BACKOFF — with the new configuration active:
 * supervisord holds no copy of the old one. The caller restores the previous file and calls this
 * again, which brings the old environment back.
 */
import { systemClock, type Clock } from '../core/clock.js';
import { AppError, isAppError } from '../core/errors.js';
import { SUPERVISOR_FAULTS, type ProcessInfo, type SupervisorDriver } from './supervisor.js';
import type { XmlRpcError, XmlRpcValue } from './xml-rpc.js';

/** What reloadConfig said of the program's group. */
export type ProgramChange = 'changed' | 'added' | 'unchanged';

export interface ApplyProgramUpdateInput {
  readonly supervisor: Pick<SupervisorDriver, 'call' | 'processInfo'>;
  readonly program: string;
  /** Budget of the whole update (a stop waits out the program's stopwaitsecs). */
  readonly timeoutMs: number;
  readonly clock?: Clock;
}

export interface ProgramUpdate {
  readonly change: ProgramChange;
  /** The process before a changed group was replaced, to tell the new process from it. */
  readonly before?: { readonly pid: number; readonly start: number };
}

export interface UpdateProgramInput extends ApplyProgramUpdateInput {
  readonly supervisor: Pick<SupervisorDriver, 'call' | 'processInfo' | 'waitRunning'>;
  /** How long the program must stay RUNNING with the same pid; default 1 s, at most half the budget left. */
  readonly stableMs?: number;
}

export interface UpdateProgramResult extends ProgramUpdate {
  /** The process seen stably RUNNING. */
  readonly running: ProcessInfo;
}

const DEFAULT_STABLE_MS = 1000;
/** States a process does not leave by itself (supervisor/states.py STOPPED_STATES and UNKNOWN). */
const NOT_COMING_BACK = new Set(['STOPPED', 'EXITED', 'FATAL', 'UNKNOWN']);

function faultCode(error: unknown): number | undefined {
  return isAppError(error) ? undefined : (error as XmlRpcError | undefined)?.faultCode;
}

/** The `[[added, changed, removed]]` answer of reloadConfig, as three lists of group names. */
function groupLists(answer: XmlRpcValue): { added: string[]; changed: string[]; removed: string[] } {
  const lists = Array.isArray(answer) && Array.isArray(answer[0]) ? answer[0] : [];
  const names = (index: number): string[] => {
    const list = lists[index];
    return Array.isArray(list) ? list.filter((name): name is string => typeof name === 'string') : [];
  };
  return { added: names(0), changed: names(1), removed: names(2) };
}

/** Reloads, and when the program's group changed, replaces it; the process is then started, not yet verified. */
export async function applyProgramUpdate(input: ApplyProgramUpdateInput): Promise<ProgramUpdate> {
  const { supervisor, program, clock = systemClock } = input;
  const deadline = clock.now() + input.timeoutMs;
  const remaining = (): number => Math.max(1, deadline - clock.now());

  /** The state for an error's data, when supervisord can still tell it. */
  const stateNow = async (): Promise<{ state?: string }> => {
    try {
      return { state: (await supervisor.processInfo(program, { timeoutMs: Math.min(2000, remaining()) })).state };
    } catch {
      return {};
    }
  };
  const failed = async (step: string, error: unknown): Promise<unknown> => {
    const code = faultCode(error);
    if (code === undefined) return error;
    if (code === SUPERVISOR_FAULTS.SHUTDOWN_STATE) {
      return new AppError('SERVICE_UNREACHABLE', {
        message: 'supervisord is shutting down',
        details: `update ${program}: ${step}: supervisord is shutting down`,
        data: { program, shuttingDown: true },
        cause: error,
      });
    }
    // CANT_REREAD's text quotes the configuration it could not read, environment values included:
    // neither it nor the fault goes into the error.
    const rereadFailed = code === SUPERVISOR_FAULTS.CANT_REREAD;
    const why = rereadFailed ? 'supervisord cannot read its configuration files (supervisorctl reread tells why)' : (error as XmlRpcError).faultString;
    return new AppError('RELOAD_FAILED', {
      message: `supervisord could not update ${program}`,
      details: `update ${program}: ${step}: ${why}`,
      data: { program, ...(await stateNow()) },
      ...(rereadFailed ? {} : { cause: error }),
    });
  };
  const call = async (method: string, params: (string | boolean)[], { allow = [] as number[] } = {}): Promise<XmlRpcValue | undefined> => {
    try {
      return await supervisor.call(method, params, { timeoutMs: remaining() });
    } catch (error) {
      const code = faultCode(error);
      if (code !== undefined && allow.includes(code)) return undefined;
      throw await failed(method.replace(/^supervisor\./, ''), error);
    }
  };
  // wait=false: the start is watched by waitRunning. A group added with autostart may already
  // be starting; that is what this asks for.
  const start = (): Promise<unknown> => call('supervisor.startProcess', [program, false], { allow: [SUPERVISOR_FAULTS.ALREADY_STARTED] });

  const { added, changed, removed } = groupLists((await call('supervisor.reloadConfig', []))!);
  if (removed.includes(program)) {
    throw new AppError('RELOAD_FAILED', {
      message: `Program ${program} is no longer in supervisord's configuration`,
      details: `update ${program}: supervisord's configuration files no longer define it; it keeps running as it was`,
      data: { program, ...(await stateNow()) },
    });
  }
  if (added.includes(program)) {
    await call('supervisor.addProcessGroup', [program], { allow: [SUPERVISOR_FAULTS.ALREADY_ADDED] });
    await start();
    return { change: 'added' };
  }
  if (!changed.includes(program)) {
    const info = await supervisor.processInfo(program, { timeoutMs: remaining() });
    if (NOT_COMING_BACK.has(info.state)) await start();
    return { change: 'unchanged' };
  }
  const before = await supervisor.processInfo(program, { timeoutMs: remaining() });
  // wait=true: the answer comes once every process is stopped (SIGKILL after stopwaitsecs).
  await call('supervisor.stopProcessGroup', [program, true]);
  // BAD_NAME: someone else removed it meanwhile; ALREADY_ADDED: someone else added it back, from
  // the same re-read files. Either way the group ends up on the new configuration.
  await call('supervisor.removeProcessGroup', [program], { allow: [SUPERVISOR_FAULTS.BAD_NAME] });
  await call('supervisor.addProcessGroup', [program], { allow: [SUPERVISOR_FAULTS.ALREADY_ADDED] });
  await start();
  return { change: 'changed', before: { pid: before.pid, start: before.start } };
}

/**
 * applyProgramUpdate, then waits until the program (a new process when its group was replaced)
 * is stably RUNNING. Throws RELOAD_FAILED for a refused step and HEALTH_FAILED (data: program,
 * state) when the program does not come up, naming the program and never a value.
 */
export async function updateProgram(input: UpdateProgramInput): Promise<UpdateProgramResult> {
  const { supervisor, program, clock = systemClock } = input;
  const deadline = clock.now() + input.timeoutMs;
  const update = await applyProgramUpdate(input);
  const timeoutMs = Math.max(1, deadline - clock.now());
  const stableMs = Math.min(input.stableMs ?? DEFAULT_STABLE_MS, Math.floor(timeoutMs / 2));
  const running = await supervisor.waitRunning(program, {
    timeoutMs,
    stableMs,
    ...(update.before ? { startedAfter: update.before.start, previousPid: update.before.pid } : {}),
  });
  return { ...update, running };
}
