/**
 * The worker's side of the history: commits each valid revision of config.ini (who, why, which
 * keys), keeps HEAD in memory so a revision already committed costs nothing, reports the state
 * for /sync/status, and hands new commits to the pusher. A failing commit never fails the run:
 * the revision is applied anyway and the next revision's commit carries its content.
 */
import type { Logger } from 'pino';
import { toPlainError, type PlainError } from '../core/errors.js';
import type { HistoryWriter } from '../history/history-repo.js';
import { changedKeys, diffKeys, summarize } from '../history/key-diff.js';
import type { PushStatus } from '../history/push.js';
import { parseIni, type IniDocument } from '../ini/document.js';
import { openDocument } from '../secrets/sealed-document.js';
import type { Keyring } from '../secrets/secret-box.js';
import type { FileSchema } from '../settings/schema.js';
import type { HistoryStatus } from './protocol.js';
import type { RecordedRevision, RevisionMeta } from './sync-loop.js';
import { resolveDocument, type ResolveSettings } from '../settings/resolve.js';

export interface RevisionRecorderDeps {
  writer: HistoryWriter;
  schema: FileSchema;
  keyring?: Keyring;
  /** How values are resolved: a key whose resolved value changed (through a reference) is announced too. */
  resolve?: ResolveSettings;
  logger: Logger;
  onStatus: (status: HistoryStatus) => void;
  /** Told after each commit (an optional push to a remote). */
  onCommit?: () => void;
  /** Told of each new revision (committed or not) with the keys it changed since the last one committed. */
  onRevision?: (input: { revision: string; meta: RevisionMeta; keys: readonly string[] }) => void;
  pushStatus?: () => PushStatus | null;
  now?: () => number;
}

/** A revision's values as written and as resolved. */
interface Documents {
  raw: IniDocument | undefined;
  resolved: IniDocument | undefined;
}

interface Head {
  commit: string;
  revision: string;
  doc: IniDocument | undefined;
}

/** A revision's document with sealed values opened, or as stored when they no longer open. */
function openedOrStored(text: string, schema: FileSchema, keyring: Keyring | undefined): IniDocument | undefined {
  let stored: IniDocument;
  try {
    stored = parseIni(text);
  } catch {
    return undefined;
  }
  try {
    return openDocument({ stored, schema, keyring }).doc;
  } catch {
    return stored;
  }
}

export function createRevisionRecorder(deps: RevisionRecorderDeps) {
  const { writer, schema, keyring, now = Date.now } = deps;
  const log = deps.logger.child({ module: 'history' });
  let head: Head | undefined;
  let repaired: readonly string[] = [];
  let lastError: PlainError | null = null;
  let lastCommitAt: string | null = null;
  let commits = 0;
  let opened = false;
  /** The last revision whose changed keys were told (commits may fail; each revision is told once). */
  let announced: ({ revision: string } & Documents) | undefined;

  function resolvedOf(doc: IniDocument | undefined): IniDocument | undefined {
    return doc && deps.resolve ? resolveDocument({ doc, schema, settings: deps.resolve }).doc : doc;
  }

  function announce(revision: RecordedRevision, meta: RevisionMeta): void {
    const before = announced ?? (head ? { revision: head.revision, raw: head.doc, resolved: resolvedOf(head.doc) } : undefined);
    const raw = revision.raw ?? revision.doc;
    announced = { revision: revision.revision, raw, resolved: revision.doc };
    // The first revision of a new history changed nothing anyone could be told of.
    if (before === undefined || before.revision === revision.revision) return;
    // What was written, and what it changed through references and overlays.
    const keys = new Set([...changedKeys(before.raw, raw), ...changedKeys(before.resolved, revision.doc)]);
    deps.onRevision?.({ revision: revision.revision, meta, keys: [...keys] });
  }

  function status(): HistoryStatus {
    return { head: head?.commit ?? null, commits, lastCommitAt, lastError, repaired, push: deps.pushStatus?.() ?? null };
  }

  return {
    status,

    /**
     * Opens (or creates) the repository and repairs what a crash left. A repository that cannot be
     * opened does not stop syncing: it is reported, and opened again before the next commit.
     */
    async open(): Promise<boolean> {
      try {
        const result = await writer.open();
        repaired = result.repaired;
        for (const path of repaired) log.warn({ path }, 'removed a lock file left in the history repository by an interrupted commit');
        if (result.head) head = { commit: result.head.commit, revision: result.head.revision, doc: openedOrStored(result.head.text, schema, keyring) };
        opened = true;
      } catch (error) {
        lastError = toPlainError(error);
        log.error({ err: error }, 'the history repository cannot be opened; revisions are applied but not committed');
      }
      deps.onStatus(status());
      return opened;
    },

    /** Commits the revision unless HEAD already holds it; returns the revision's commit. */
    async record(revision: RecordedRevision, meta: RevisionMeta): Promise<string | null> {
      if (!opened && !(await this.open())) {
        announce(revision, meta);
        return null;
      }
      // Told before the check below: a revert to HEAD after a failed commit is a change too.
      announce(revision, meta);
      if (head?.revision === revision.revision) return head.commit;
      // A commit names the keys written; what they resolve to is the diff's to show.
      const { changes } = diffKeys(head?.doc, revision.raw ?? revision.doc, schema);
      const summary = summarize(changes, {
        initial: head === undefined,
        ...(meta.rollbackOf ? { rollbackOf: meta.rollbackOf } : {}),
        ...(meta.template ? { template: meta.template } : {}),
      });
      try {
        const at = now();
        const commit = await writer.commit({
          text: revision.text,
          revision: revision.revision,
          actor: meta.actor,
          source: meta.source,
          summary,
          changes,
          ...(meta.rollbackOf ? { rollbackOf: meta.rollbackOf } : {}),
          ...(meta.template ? { template: meta.template } : {}),
          at,
        });
        if (commit) {
          head = { commit, revision: revision.revision, doc: revision.raw ?? revision.doc };
          commits++;
          lastCommitAt = new Date(at).toISOString();
          lastError = null;
          deps.onCommit?.();
          // Not awaited: the revision is applied while git packs (the next commit waits for it).
          void writer.gcIfNeeded().catch((error: unknown) => log.warn({ err: error }, 'packing the history repository failed'));
        }
        deps.onStatus(status());
        return commit ?? head?.commit ?? null;
      } catch (error) {
        lastError = toPlainError(error);
        log.error({ err: error, revision: revision.revision }, 'committing the revision to the history failed; it is applied anyway');
        deps.onStatus(status());
        return null;
      }
    },

    /** Resolves when no git of the history runs (a gc started after a commit): awaited before the worker stops. */
    idle: (): Promise<void> => writer.idle(),

    /** The pusher's state changed. */
    pushChanged(): void {
      deps.onStatus(status());
    },
  };
}
