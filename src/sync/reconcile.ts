/**
 * One reconcile: bring every target in line with one revision of config.ini.
 *
 *   render all (pure) → compare with disk → stage + check the changed ones → write them →
 *   run each distinct reload action once (targets sharing one share it), in the order the
 *   first target of each is declared (a lane may hold several actions on one service) → verify health →
 *   on failure restore the failing targets' files, reload and verify again, and apply the
 *   on_failure policy: `rollback` puts every target of the revision back (and asks for
 *   config.ini to be restored), `keep` leaves the other targets on the new revision.
 *
 * A service that cannot be reached (no Docker socket, supervisord down, container not created
 * yet) is not a failure of the revision: its files are written and its reload stays pending,
 * to be retried with backoff by the caller. A file that cannot be written because its disk is
 * full is retried the same way (`pending_write`); the revision has not reached it, so it failed.
 */
import type { Logger } from 'pino';
import { AppError, toPlainError } from '../core/errors.js';
import { diskFullError, isDiskFull } from '../fs/write-failure.js';
import type { IniDocument } from '../ini/document.js';
import type { ReloadResult, ReloadActions } from '../reload/reload-actions.js';
import type { RenderInput, RenderSection } from '../render/types.js';
import type { PathRules } from '../targets/path-rules.js';
import type { HealthCheck, TargetSpec } from '../targets/target-spec.js';
import { installedCheck, reloadKey } from '../targets/target-spec.js';
import { targetForDocument } from '../targets/target-urls.js';
import type { FileOnDisk, ReconcileResult, RevisionOutcome, TargetState, UsedWriteMode } from '../targets/outcome.js';
import { createHash } from 'node:crypto';
import { createTargetWriter, differs, type PreviousFile, type StagedTarget } from './target-writer.js';
import { environmentOf } from '../env/environment.js';
import { CONFIG_SCHEMA } from '../settings/schema.js';
import { NO_ENV_DECLARATIONS, type EnvDeclarations } from '../targets/env-spec.js';

export interface ReconcileRequest {
  readonly revision: string;
  readonly doc: IniDocument;
  /** Reload (and verify) targets even when their files did not change. */
  readonly force: boolean;
  /** Only these targets (a lane, or a retry of pending reloads); default all. */
  readonly only?: readonly string[];
  /** Called once the files are on disk, before any reload: a first render is then in place. */
  readonly onWritten?: () => void;
  /** Told what each target's file on disk is, before the reloads that follow (and after files are put back). */
  readonly onFiles?: (files: readonly FileOnDisk[]) => void;
}

export interface ReconcilerDeps {
  targets: readonly TargetSpec[];
  actions: ReloadActions;
  render: (target: TargetSpec, input: RenderInput) => string;
  readTemplate: (path: string) => Promise<string>;
  /** Where outputs may be written (system.ini [sync] output_roots) and what is confhub's own. */
  paths: Pick<PathRules, 'outputRoots' | 'own'>;
  logger: Logger;
  now?: () => number;
  /** The consumers of environment variables (system.ini), for targets with `env`. */
  env?: EnvDeclarations;
  /**
   * The revision the targets last applied before this reconciler was made (a worker restart):
   * files its first runs put back are reloaded and checked at that revision's URLs.
   */
  applied?: IniDocument;
  /** The revision id of `applied`: a file on disk that is its rendering is reported as of it. */
  appliedRevision?: string;
}

interface Work {
  spec: TargetSpec;
  content?: Buffer;
  previous?: PreviousFile;
  changed: boolean;
  staged?: StagedTarget;
  /** Set before the live file is touched, so a write that fails halfway is restored too. */
  written?: UsedWriteMode;
  /** Its previous file was put back (after a failed check, reload or health check, or a rollback). */
  restored?: boolean;
  reloaded: boolean;
  healthy: boolean | null;
  error?: AppError;
  state?: TargetState;
  finishedAt?: number;
}

function asAppError(error: unknown): AppError {
  return error instanceof AppError ? error : new AppError('INTERNAL_ERROR', { details: String((error as Error)?.message ?? error), cause: error });
}

/**
 * A target whose file could not be written or staged. A full disk is no fault of the revision:
 * like an unreachable service, the target waits (`pending_write`) and its lane tries again with
 * backoff, so it recovers once space is freed; it does not roll anything back.
 */
function failWork(work: Work, error: unknown): void {
  const full = isDiskFull(error);
  work.error = full ? diskFullError({ label: `the output of target ${work.spec.name}`, error }) : asAppError(error);
  work.state = full ? 'pending_write' : 'failed';
}

export interface RenderInputOf {
  readonly doc: IniDocument;
  readonly spec: TargetSpec;
  readonly template: string | undefined;
  /** The consumers of environment variables, for a target with `env`. */
  readonly env: EnvDeclarations;
}

export function renderInput({ doc, spec, template, env }: RenderInputOf): RenderInput {
  const sections: RenderSection[] = [];
  for (const name of spec.sections) {
    const section = doc.byName.get(name);
    if (section) sections.push({ name, values: new Map(section.entries.map((e) => [e.key, e.value])) });
  }
  return {
    sections,
    target: spec.name,
    ...(template !== undefined ? { template } : {}),
    ...(spec.env !== undefined ? { environment: environmentFor(doc, spec, env) } : {}),
    ...(spec.reload.kind === 'supervisor_update' ? { program: spec.reload.program } : {}),
  };
}

/** The variables a target's consumer receives; RENDER_FAILED naming the mapped variables that cannot be computed. */
function environmentFor(doc: IniDocument, spec: TargetSpec, env: EnvDeclarations): { name: string; value: string }[] {
  const { variables, problems } = environmentOf({ doc, schema: CONFIG_SCHEMA, declarations: env, consumer: spec.env! });
  if (problems.length > 0) throw new AppError('RENDER_FAILED', { details: `target ${spec.name}: ${problems.join('; ')}` });
  return [...variables].map(([name, variable]) => ({ name, value: variable.value }));
}

/** The health rule of a group of targets sharing a service: the first one that asks for a check. */
function groupHealth(group: readonly Work[]): HealthCheck {
  return group.find((w) => w.spec.health.kind !== 'none')?.spec.health ?? { kind: 'none' };
}

/** When an outage is first summed up, and how rarely at most (it doubles in between). */
const FIRST_SUMMARY_MS = 60_000;
const MAX_SUMMARY_MS = 3_600_000;

const sha256 = (content: Buffer): string => createHash('sha256').update(content).digest('hex');
/** Per target, how many of the revisions its file was reported as are remembered. */
const REMEMBERED_FILES = 4;

export function createReconciler(deps: ReconcilerDeps) {
  const { actions, logger, now = Date.now } = deps;
  const log = logger.child({ module: 'reconcile' });
  const writer = createTargetWriter({ rules: deps.paths });
  /** Each target as its service last ran it (URLs resolved): restored files are reloaded and checked there. */
  const appliedSpecs = new Map<string, TargetSpec>();
  if (deps.applied) {
    for (const spec of deps.targets) {
      try {
        appliedSpecs.set(spec.name, targetForDocument(spec, deps.applied));
      } catch {
        // That revision cannot fill this target's URLs: a restore uses those of the failing one.
      }
    }
  }

  /**
   * Services that could not be reached, by reload action. An outage is announced once, then
   * summed up with its retry count at a decaying rate (1 min, 2, 4, … up to 1 h; each retry in
   * between at debug), and the recovery once: a service down for a day is a few lines, not one
   * warning a minute.
   */
  const outages = new Map<string, { since: number; attempts: number; reportAt: number; intervalMs: number }>();

  /**
   * The revisions each target's file was last reported as, by sha256 (the newest few): a file put
   * back that has those bytes is of that revision.
   */
  const reported = new Map<string, Map<string, string>>();
  const remember = (file: FileOnDisk): void => {
    if (file.revision === null || file.sha256 === null) return;
    const byDigest = reported.get(file.target) ?? new Map<string, string>();
    byDigest.delete(file.sha256);
    byDigest.set(file.sha256, file.revision);
    if (byDigest.size > REMEMBERED_FILES) byDigest.delete(byDigest.keys().next().value!);
    reported.set(file.target, byDigest);
  };
  /** sha256 of each target rendered from the revision applied before this reconciler (a worker restart), made once when needed. */
  let appliedDigests: Promise<Map<string, string>> | undefined;

  async function renderedFromApplied(): Promise<Map<string, string>> {
    const digests = new Map<string, string>();
    if (!deps.applied) return digests;
    for (const spec of deps.targets) {
      try {
        const template = spec.template ? await deps.readTemplate(spec.template) : undefined;
        const content = deps.render(spec, renderInput({ doc: deps.applied, spec, template, env: deps.env ?? NO_ENV_DECLARATIONS }));
        digests.set(spec.name, sha256(Buffer.from(content, 'utf8')));
      } catch {
        // Not renderable now: its files put back are reported as of no known revision.
      }
    }
    return digests;
  }

  /**
   * A target's file on disk once a run is done writing (or putting back): this revision's when it
   * wrote it or found it in place; else the file it had, of the revision it was last reported as
   * or the one applied before a restart when it has those bytes, else of no known revision (a
   * service that pulls is then told to wait: it may be the service's own default).
   */
  async function onDisk(work: Work, revision: string): Promise<FileOnDisk | undefined> {
    const target = work.spec.name;
    if (!work.restored && work.content && (work.written || (work.previous && !work.changed))) {
      return { target, revision, sha256: sha256(work.content) };
    }
    if (!work.previous) return undefined;
    if (!work.previous.exists) return { target, revision: null, sha256: null };
    const digest = sha256(work.previous.content);
    const known = reported.get(target)?.get(digest);
    if (known) return { target, revision: known, sha256: digest };
    if (deps.appliedRevision) {
      appliedDigests ??= renderedFromApplied();
      if ((await appliedDigests).get(target) === digest) return { target, revision: deps.appliedRevision, sha256: digest };
    }
    return { target, revision: null, sha256: digest };
  }

  async function report(works: readonly Work[], { revision, onFiles }: Pick<ReconcileRequest, 'revision' | 'onFiles'>): Promise<void> {
    if (!onFiles) return;
    const files: FileOnDisk[] = [];
    for (const work of works) {
      const file = await onDisk(work, revision);
      if (file) files.push(file);
    }
    for (const file of files) remember(file);
    if (files.length > 0) onFiles(files);
  }

  function unreachable(action: string, code: string): void {
    const at = now();
    const outage = outages.get(action);
    if (!outage) {
      outages.set(action, { since: at, attempts: 1, reportAt: at + FIRST_SUMMARY_MS, intervalMs: FIRST_SUMMARY_MS });
      log.warn({ action, code }, 'reload did not happen: the service cannot be reached; retrying with backoff');
      return;
    }
    outage.attempts++;
    if (at < outage.reportAt) {
      log.debug({ action, code, attempts: outage.attempts }, 'reload did not happen: the service is still unreachable');
      return;
    }
    outage.intervalMs = Math.min(outage.intervalMs * 2, MAX_SUMMARY_MS);
    outage.reportAt = at + outage.intervalMs;
    log.info({ action, code, attempts: outage.attempts, downMs: at - outage.since }, 'the service is still unreachable; retrying with backoff');
  }

  function reached(action: string): void {
    const outage = outages.get(action);
    if (!outage) return;
    outages.delete(action);
    log.info({ action, attempts: outage.attempts, downMs: now() - outage.since }, 'the service can be reached again');
  }

  async function reloadGroups(works: readonly Work[], { force }: { force: boolean }): Promise<void> {
    const groups = new Map<string, Work[]>();
    for (const work of works) {
      if (work.error || work.spec.reload.kind === 'none') continue;
      if (!work.written && !(force && work.content)) continue;
      const key = reloadKey(work.spec.reload);
      groups.set(key, [...(groups.get(key) ?? []), work]);
    }
    for (const group of groups.values()) {
      const { reload } = group[0]!.spec;
      const timeoutMs = Math.max(...group.map((w) => w.spec.timeoutMs));
      let result: ReloadResult;
      try {
        result = await actions.reload(reload, { timeoutMs });
      } catch (error) {
        const appError = asAppError(error);
        for (const work of group) {
          work.error = appError;
          work.state = appError.code === 'SERVICE_UNREACHABLE' ? 'pending_reload' : 'failed';
          work.finishedAt = now();
        }
        if (appError.code === 'SERVICE_UNREACHABLE') unreachable(actions.describe(reload), appError.code);
        else {
          // Reached, though the reload failed another way: the outage is over.
          reached(actions.describe(reload));
          log.warn({ action: actions.describe(reload), code: appError.code }, 'reload did not happen');
        }
        continue;
      }
      reached(actions.describe(reload));
      for (const work of group) work.reloaded = result.reloaded;
      try {
        await actions.verify({ action: reload, health: groupHealth(group), reloadResult: result, timeoutMs });
        for (const work of group) work.healthy = true;
      } catch (error) {
        const appError = asAppError(error);
        for (const work of group) {
          work.healthy = false;
          work.error = appError;
          work.state = 'failed';
        }
      }
      for (const work of group) work.finishedAt = now();
    }
  }

  /** Puts the previous files back, then reloads and verifies those services once more. */
  async function restore(works: readonly Work[], request: Pick<ReconcileRequest, 'revision' | 'onFiles'>): Promise<void> {
    const restored: Work[] = [];
    for (const work of works) {
      if (!work.written || !work.previous) continue;
      try {
        await writer.restore(work.spec.output, work.previous, work.written);
        work.restored = true;
        restored.push({ ...work, spec: appliedSpecs.get(work.spec.name) ?? work.spec, error: undefined, state: undefined, reloaded: false, healthy: null });
      } catch (error) {
        log.error({ target: work.spec.name, err: error }, 'the previous file could not be restored');
      }
    }
    // Before the services are reloaded on them: one that pulls its files then gets these.
    await report(works, request);
    await reloadGroups(restored, { force: false });
    for (const again of restored) {
      if (again.error) log.error({ target: again.spec.name, code: again.error.code }, 'service did not come back after its files were restored');
    }
  }

  async function reconcile(request: ReconcileRequest, works: Work[], started: number): Promise<ReconcileResult> {
    for (const work of works) {
      try {
        // Read first: a target that cannot be rendered still reports the file it has.
        work.previous = await writer.readPrevious(work.spec.output);
        work.spec = targetForDocument(work.spec, request.doc);
        const template = work.spec.template ? await deps.readTemplate(work.spec.template) : undefined;
        work.content = Buffer.from(
          deps.render(work.spec, renderInput({ doc: request.doc, spec: work.spec, template, env: deps.env ?? NO_ENV_DECLARATIONS })),
          'utf8',
        );
        work.changed = differs(work.previous, work.content, work.spec.mode);
      } catch (error) {
        work.error = asAppError(error);
        work.state = 'failed';
      }
    }
    for (const work of works) {
      if (work.error || !work.changed) continue;
      try {
        work.staged = await writer.stage({ path: work.spec.output, content: work.content!, mode: work.spec.mode, writeMode: work.spec.write });
        if (work.spec.check?.kind === 'exec') await actions.runCheck(work.spec.check, work.staged.checkPath, { timeoutMs: work.spec.timeoutMs });
      } catch (error) {
        failWork(work, error);
      }
    }

    const rollbackFailure = (): boolean => works.some((w) => w.state === 'failed' && w.spec.onFailure === 'rollback');
    const finish = (outcome: RevisionOutcome, { rollbackConfig }: { rollbackConfig: boolean }): ReconcileResult => {
      const end = now();
      for (const w of works) if (w.content && !w.error && (w.state ?? 'in_sync') === 'in_sync') appliedSpecs.set(w.spec.name, w.spec);
      return {
        revision: request.revision,
        outcome,
        rollbackConfig,
        targets: works.map((w) => ({
          target: w.spec.name,
          changed: w.changed,
          writeMode: w.written ?? null,
          reloaded: w.reloaded,
          healthy: w.healthy,
          durationMs: (w.finishedAt ?? end) - started,
          error: w.error ? toPlainError(w.error) : null,
          state: w.state ?? 'in_sync',
        })),
      };
    };
    const rollBack = async (): Promise<ReconcileResult> => {
      await restore(works, request);
      for (const w of works) if (!w.state || w.state === 'in_sync') w.state = 'rolled_back';
      return finish('rolled_back', { rollbackConfig: true });
    };

    // A rollback-policy target that failed before anything was written: leave every service as it is.
    if (rollbackFailure()) return rollBack();

    for (const work of works) {
      if (!work.staged || work.error) continue;
      try {
        work.written = work.spec.write === 'rename' ? 'rename' : 'inplace';
        work.written = await work.staged.commit();
        if (work.spec.reload.kind === 'none') work.finishedAt = now();
        const check = installedCheck(work.spec);
        if (check) {
          // The service's own validator sees the file where the service reads it (with the rest of
          // its configuration), so it runs after the write and before the reload; a failure puts
          // the old file back.
          try {
            await actions.runCheck(check, work.spec.output, { timeoutMs: work.spec.timeoutMs, installed: true });
          } catch (error) {
            // A service that is not up yet cannot check its file; it reads it when it starts.
            if (asAppError(error).code !== 'SERVICE_UNREACHABLE') {
              await writer.restore(work.spec.output, work.previous!, work.written);
              work.written = undefined;
              throw error;
            }
          }
        }
      } catch (error) {
        failWork(work, error);
        if (work.written) {
          // The write itself failed (an in-place write can fail halfway): put the old file back.
          await writer
            .restore(work.spec.output, work.previous!, work.written)
            .catch((cause: unknown) => log.error({ target: work.spec.name, err: cause }, 'the previous file could not be restored'));
          work.written = undefined;
        }
      }
      if (work.state === 'failed' && work.spec.onFailure === 'rollback') return rollBack();
    }

    await report(works, request);
    request.onWritten?.();
    await reloadGroups(works, { force: request.force });

    const failed = works.filter((w) => w.state === 'failed' && (w.written || w.reloaded));
    if (failed.length > 0) {
      if (rollbackFailure()) return rollBack();
      await restore(failed, request);
      return finish('failed', { rollbackConfig: false });
    }
    if (works.some((w) => w.state === 'failed' || w.state === 'pending_write')) return finish('failed', { rollbackConfig: false });
    const anything = works.some((w) => w.written || w.reloaded);
    return finish(anything ? 'applied' : 'unchanged', { rollbackConfig: false });
  }

  return {
    async reconcile(request: ReconcileRequest): Promise<ReconcileResult> {
      const started = now();
      const selected = request.only ? deps.targets.filter((t) => request.only!.includes(t.name)) : [...deps.targets];
      const works: Work[] = selected.map((spec) => ({ spec, changed: false, reloaded: false, healthy: null }));
      try {
        return await reconcile(request, works, started);
      } finally {
        // Staged files that were not committed never outlive the run (discard is idempotent).
        for (const work of works) await work.staged?.discard().catch(() => undefined);
      }
    },
  };
}
