/**
 * Target lanes: each revision reaches every target on its own lane, so a slow or unreachable
 * service delays only its own files. Targets whose reloads reach the same service share a lane,
 * so that service is never reloaded, checked (`check_installed` sees its whole configuration) or
 * written for by two lanes at once: the container for docker actions (its name, or the label
 * filter, as the Engine API is asked), the program for supervisor actions (`nginx` is
 * supervisord's `nginx:nginx`), the origin (scheme, host, port) for an HTTP hook. A target with
 * `reload = none` has a lane of its own. Only the reload decides: a health URL or a check command
 * shared with another lane does not join them, and a container named in one target and chosen by
 * label in another are two lanes (which container a label picks is known only when Docker is
 * asked).
 *
 * - One revision on a lane runs each distinct reload action of its targets once, in the order
 *   system.ini declares the first target of each (`docker:restart:git` before
 *   `docker:signal:HUP:git` if a target with the restart comes first); see reconcile.ts.
 * - A lane runs one revision at a time. A revision submitted while one runs waits; a newer one
 *   replaces it (latest wins): the older revision is superseded on that lane, never applied.
 * - A revision's outcome is the aggregate of its lanes, known once every lane has finished it or
 *   gone past it. Outcomes complete in submission order, since each lane takes revisions in order.
 * - A lane whose service could not be reached retries its reload on its own, with backoff and
 *   jitter, with the revision written for it; a newer revision on the lane takes its place (its
 *   run forces the reload the retry owed). A file its disk had no room for is retried the same way.
 */
import type { Logger } from 'pino';
import { backoffDelay } from '../core/backoff.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { AppError, isAppError, toPlainError } from '../core/errors.js';
import type { IniDocument } from '../ini/document.js';
import type { FileOnDisk, ReconcileResult, RevisionOutcome, RunSource, TargetOutcome } from '../targets/outcome.js';
import { containerRefText, type HttpUrl, type ReloadAction, type TargetSpec } from '../targets/target-spec.js';
import type { ReconcileRequest } from './reconcile.js';

export interface LaneReconciler {
  reconcile(request: ReconcileRequest): Promise<ReconcileResult>;
}

/** What one lane did with one revision. */
export interface LaneReport {
  readonly lane: string;
  readonly revision: string;
  /** The revision's document (what its secrets are, for masking what is reported). */
  readonly doc: IniDocument;
  readonly source: RunSource;
  readonly startedAt: number;
  readonly finishedAt: number;
  /** Only this lane's targets. */
  readonly result: ReconcileResult;
}

export interface LaneSubmission {
  readonly revision: string;
  readonly doc: IniDocument;
  readonly force: boolean;
  readonly source: RunSource;
}

/** A revision on its way through the lanes. */
export interface LaneTicket {
  /** Every lane's files for this revision are on disk (or it failed or went past it) — reloads may still run. */
  readonly written: Promise<void>;
  /** The aggregate of every lane that ran this revision; lanes that went past it are listed as superseded. */
  readonly done: Promise<ReconcileResult>;
}

export interface TargetLanesDeps {
  targets: readonly Pick<TargetSpec, 'name' | 'reload'>[];
  reconciler: LaneReconciler;
  clock: Clock;
  logger: Logger;
  /** Told what each lane did, as soon as it did it (retries included). */
  onReport: (report: LaneReport) => void;
  /** Told what the targets' files on disk are, as soon as a lane wrote them or put them back. */
  onFiles?: (files: readonly FileOnDisk[]) => void;
  retryBaseMs: number;
  retryMaxMs: number;
}

interface Tracker {
  readonly revision: string;
  remaining: number;
  unwritten: number;
  readonly results: Map<string, ReconcileResult>;
  readonly superseded: string[];
  result?: ReconcileResult;
  wrote: () => void;
  finish: (result: ReconcileResult) => void;
}

interface Job {
  readonly submission: LaneSubmission;
  /** Undefined for a retry, which answers nobody. */
  readonly tracker: Tracker | undefined;
}

interface Lane {
  readonly name: string;
  readonly targets: readonly string[];
  running: boolean;
  queued: Job | undefined;
  /** The revision to retry: its service could not be reached, or a file of it found its disk full. */
  owed: LaneSubmission | undefined;
  /** The retry (or whatever runs next) owes the service its reload. */
  reloadOwed: boolean;
  retryTimer: TimerHandle | undefined;
  retryAttempt: number;
}

/**
 * Scheme, host and port of a reload hook. A URL whose host or port comes from config.ini values
 * is known only per revision: its authority as written (without userinfo) stands for it.
 */
function urlOrigin(url: HttpUrl): string {
  if (!url.templated) return new URL(url.url).origin;
  const match = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^/?#@]*@)?([^/?#]*)/i.exec(url.url);
  return match ? `${match[1]!.toLowerCase()}${match[2]}` : url.url;
}

/** The service a reload action reaches (see the header); undefined for `none`. */
export function reloadService(action: ReloadAction): string | undefined {
  switch (action.kind) {
    case 'none':
      return undefined;
    case 'docker_restart':
    case 'docker_signal':
    case 'docker_exec':
      return `docker:${containerRefText(action.container)}`;
    case 'supervisor_restart':
    case 'supervisor_signal':
      // supervisord reads a name without a group as group and process of the same name.
      return `supervisor:${action.program.includes(':') ? action.program : `${action.program}:${action.program}`}`;
    case 'http':
      return `http:${urlOrigin(action)}`;
  }
}

/** The lanes of a set of targets, in declaration order of each lane's first target. */
export function laneNames(targets: readonly Pick<TargetSpec, 'name' | 'reload'>[]): Map<string, string[]> {
  const lanes = new Map<string, string[]>();
  for (const target of targets) {
    const name = reloadService(target.reload) ?? `target:${target.name}`;
    lanes.set(name, [...(lanes.get(name) ?? []), target.name]);
  }
  return lanes;
}

function aggregateOutcome(results: readonly ReconcileResult[]): RevisionOutcome {
  if (results.some((r) => r.outcome === 'rolled_back')) return 'rolled_back';
  if (results.some((r) => r.outcome === 'failed')) return 'failed';
  if (results.some((r) => r.outcome === 'applied')) return 'applied';
  return 'unchanged';
}

export function createTargetLanes(deps: TargetLanesDeps) {
  const { reconciler, clock, onReport, retryBaseMs, retryMaxMs } = deps;
  const log = deps.logger.child({ module: 'lanes' });
  const order = deps.targets.map((t) => t.name);
  const lanes: Lane[] = [...laneNames(deps.targets)].map(([name, targets]) => ({
    name,
    targets,
    running: false,
    queued: undefined,
    owed: undefined,
    reloadOwed: false,
    retryTimer: undefined,
    retryAttempt: 0,
  }));
  let stopped = false;
  /** Revisions whose outcome is not answered yet, in submission order. */
  const unfinished: Tracker[] = [];
  const idleWaiters: (() => void)[] = [];

  function aggregate(tracker: Tracker): ReconcileResult {
    const results = lanes.map((lane) => tracker.results.get(lane.name)).filter((r): r is ReconcileResult => r !== undefined);
    const targets: TargetOutcome[] = results.flatMap((r) => r.targets).sort((a, b) => order.indexOf(a.target) - order.indexOf(b.target));
    const error = results.find((r) => r.error)?.error;
    return {
      revision: tracker.revision,
      outcome: aggregateOutcome(results),
      rollbackConfig: results.some((r) => r.rollbackConfig),
      targets,
      ...(tracker.superseded.length > 0 ? { superseded: [...tracker.superseded].sort((a, b) => order.indexOf(a) - order.indexOf(b)) } : {}),
      ...(error ? { error } : {}),
    };
  }

  function laneWrote(tracker: Tracker | undefined): void {
    if (!tracker) return;
    tracker.unwritten--;
    if (tracker.unwritten === 0) tracker.wrote();
  }

  function laneFinished(tracker: Tracker | undefined, lane: Lane, result: ReconcileResult | 'superseded'): void {
    if (!tracker) return;
    if (result === 'superseded') tracker.superseded.push(...lane.targets);
    else tracker.results.set(lane.name, result);
    tracker.remaining--;
    if (tracker.remaining > 0) return;
    tracker.result = aggregate(tracker);
    // A revision superseded everywhere is done before an older one still running: answer in order.
    while (unfinished[0]?.result) {
      const next = unfinished.shift()!;
      next.finish(next.result!);
    }
  }

  function failedResult(revision: string, lane: Lane, error: unknown): ReconcileResult {
    const appError = isAppError(error) ? error : new AppError('INTERNAL_ERROR', { details: 'the reconcile failed unexpectedly', cause: error });
    log.error({ err: error, revision, lane: lane.name }, 'reconcile failed unexpectedly');
    return { revision, outcome: 'failed', rollbackConfig: false, targets: [], error: toPlainError(appError) };
  }

  async function runJob(lane: Lane, job: Job): Promise<void> {
    const { submission } = job;
    const owed = lane.reloadOwed;
    const startedAt = clock.now();
    let written = false;
    const markWritten = (): void => {
      if (written) return;
      written = true;
      laneWrote(job.tracker);
    };
    let result: ReconcileResult;
    try {
      result = await reconciler.reconcile({
        revision: submission.revision,
        doc: submission.doc,
        // A reload owed to the service is done with whatever revision runs next.
        force: submission.force || owed,
        only: lane.targets,
        onWritten: markWritten,
        ...(deps.onFiles ? { onFiles: deps.onFiles } : {}),
      });
    } catch (error) {
      // A bug or an I/O failure inside the reconcile must not take the lane down: report it.
      result = failedResult(submission.revision, lane, error);
    }
    markWritten();
    lane.reloadOwed = result.targets.some((t) => t.state === 'pending_reload');
    // A file that did not fit is written by a plain run: its service is reloaded once it is.
    if (lane.reloadOwed || result.targets.some((t) => t.state === 'pending_write')) {
      lane.owed = submission;
    } else {
      lane.owed = undefined;
      lane.retryAttempt = 0;
    }
    try {
      onReport({ lane: lane.name, revision: submission.revision, doc: submission.doc, source: submission.source, startedAt, finishedAt: clock.now(), result });
    } catch (error) {
      log.error({ err: error, lane: lane.name, revision: submission.revision }, 'reporting a lane result failed');
    }
    laneFinished(job.tracker, lane, result);
  }

  async function drain(lane: Lane): Promise<void> {
    lane.running = true;
    try {
      while (lane.queued) {
        const job = lane.queued;
        lane.queued = undefined;
        clock.clearTimeout(lane.retryTimer);
        lane.retryTimer = undefined;
        await runJob(lane, job);
      }
    } finally {
      lane.running = false;
      // Whatever happened above, a lane never stays idle with work queued (stop() waits for it).
      if (lane.queued) kick(lane);
      else {
        scheduleRetry(lane);
        if (lanes.every((l) => !l.running && !l.queued)) for (const resolve of idleWaiters.splice(0)) resolve();
      }
    }
  }

  function kick(lane: Lane): void {
    if (lane.running) return;
    void drain(lane).catch((error: unknown) => log.error({ err: error, lane: lane.name }, 'a lane stopped unexpectedly'));
  }

  function scheduleRetry(lane: Lane): void {
    if (stopped || !lane.owed || lane.retryTimer || lane.running || lane.queued) return;
    // Floored at a quarter of the base: full jitter alone could ask a service that just failed again at once.
    const delay = backoffDelay({ attempt: lane.retryAttempt, baseMs: retryBaseMs, maxMs: retryMaxMs, minMs: retryBaseMs / 4 });
    lane.retryAttempt++;
    lane.retryTimer = clock.setTimeout(() => {
      lane.retryTimer = undefined;
      if (stopped || !lane.owed || lane.running || lane.queued) return;
      lane.queued = { submission: { ...lane.owed, source: 'retry', force: lane.reloadOwed }, tracker: undefined };
      kick(lane);
    }, delay);
    lane.retryTimer.unref();
  }

  return {
    /** Sends a revision down every lane; a revision still waiting on a lane is superseded there. */
    submit(submission: LaneSubmission): LaneTicket {
      let wrote!: () => void;
      let finish!: (result: ReconcileResult) => void;
      const written = new Promise<void>((resolve) => {
        wrote = resolve;
      });
      const done = new Promise<ReconcileResult>((resolve) => {
        finish = resolve;
      });
      const tracker: Tracker = {
        revision: submission.revision,
        remaining: lanes.length,
        unwritten: lanes.length,
        results: new Map(),
        superseded: [],
        wrote,
        finish,
      };
      if (lanes.length === 0) {
        wrote();
        finish({ revision: submission.revision, outcome: 'unchanged', rollbackConfig: false, targets: [] });
        return { written, done };
      }
      unfinished.push(tracker);
      for (const lane of lanes) {
        const replaced = lane.queued;
        // A forced reload waiting on this lane is still owed by whatever runs in its place.
        lane.queued = { submission: replaced?.submission.force && !submission.force ? { ...submission, force: true } : submission, tracker };
        if (replaced) {
          laneWrote(replaced.tracker);
          laneFinished(replaced.tracker, lane, 'superseded');
        }
        kick(lane);
      }
      return { written, done };
    },

    /** Resolves when no lane runs or waits to run (a retry timer may still be set). */
    idle(): Promise<void> {
      if (lanes.every((l) => !l.running && !l.queued)) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },

    /** No more retries; what was submitted still runs (await idle()). */
    stop(): void {
      stopped = true;
      for (const lane of lanes) {
        clock.clearTimeout(lane.retryTimer);
        lane.retryTimer = undefined;
      }
    },
  };
}

export type TargetLanes = ReturnType<typeof createTargetLanes>;
