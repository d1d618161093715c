/**
 * The sync_runs table: one row per run the worker reported, per revision it skipped and per
 * invalid source, so the history can show each commit's own outcome and a restarted worker
 * knows which commit the targets last applied.
 */
import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import type { ActorRef } from '../core/actor.js';
import type { RevisionOutcome, RunSource, TargetOutcome } from '../targets/outcome.js';

export type RunLogOutcome = RevisionOutcome | 'source_invalid';

export interface RunRecord {
  readonly revision: string;
  /** The history commit of the revision; null when it is not (yet) committed. */
  readonly commit: string | null;
  readonly source: RunSource;
  readonly actor: ActorRef;
  readonly outcome: RunLogOutcome;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly targets: readonly TargetOutcome[];
  /** Targets whose lane went past this revision without running it. */
  readonly superseded?: readonly string[];
}

export interface RunLogDeps {
  db: Database;
  logger: Logger;
}

export function createRunLog({ db, logger }: RunLogDeps) {
  const log = logger.child({ module: 'run-log' });
  const insert = db.prepare(`INSERT INTO sync_runs (revision, commit_id, source, actor_type, actor_id, outcome, started_at, finished_at, targets, superseded)
    VALUES (@revision, @commitId, @source, @actorType, @actorId, @outcome, @startedAt, @finishedAt, @targets, @superseded)`);
  const lastApplied = db.prepare<[], { commit_id: string }>(
    "SELECT commit_id FROM sync_runs WHERE commit_id IS NOT NULL AND source != 'retry' AND outcome IN ('applied', 'unchanged') AND superseded = '[]' ORDER BY id DESC LIMIT 1",
  );

  return {
    /** Never throws: the run has happened, a failed row must not turn it into an error. */
    record(run: RunRecord): void {
      try {
        insert.run({
          revision: run.revision,
          commitId: run.commit,
          source: run.source,
          actorType: run.actor.type,
          actorId: run.actor.id,
          outcome: run.outcome,
          startedAt: run.startedAt,
          finishedAt: run.finishedAt,
          targets: JSON.stringify(run.targets),
          superseded: JSON.stringify(run.superseded ?? []),
        });
      } catch (error) {
        log.error({ err: error, revision: run.revision, outcome: run.outcome }, 'recording a sync run failed');
      }
    },

    /** The newest commit whose revision every target applied, for a worker that starts. */
    lastAppliedCommit(): string | undefined {
      try {
        return lastApplied.get()?.commit_id;
      } catch (error) {
        log.error({ err: error }, 'reading the last applied commit failed');
        return undefined;
      }
    },
  };
}

export type RunLog = ReturnType<typeof createRunLog>;
