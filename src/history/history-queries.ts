/**
 * The main thread's view of config.ini's history: commits from git joined with the outcome of
 * their sync run from SQLite, and diffs between any two commits — key by key with sensitive
 * values masked, and as a unified text diff with sealed values masked.
 */
import type { Database } from 'better-sqlite3';
import { parseIni, type IniDocument } from '../ini/document.js';
import { openDocument } from '../secrets/sealed-document.js';
import type { Keyring } from '../secrets/secret-box.js';
import type { FileSchema } from '../settings/schema.js';
import type { HistoryEntry, HistoryReader } from './history-repo.js';
import { diffKeys, type StructuredDiff } from './key-diff.js';
import { NO_RESOLVE, resolveDocument, type ResolveSettings } from '../settings/resolve.js';

export interface SyncOutcome {
  readonly outcome: string;
  readonly at: string;
}

export interface HistoryItem extends HistoryEntry {
  /** The newest sync run of this revision; null when it has not run (yet). */
  readonly sync: SyncOutcome | null;
}

export interface HistoryDiff {
  readonly from: string | null;
  readonly to: string;
  /** The keys as written. */
  readonly diff: StructuredDiff;
  /** The values services get (references replaced, the running environment's overlays applied). */
  readonly resolved: StructuredDiff;
  readonly unified: string;
}

export interface HistoryQueriesDeps {
  reader: HistoryReader;
  db: Database;
  schema: FileSchema;
  keyring?: Keyring;
  /** How values resolve, for the diff of resolved values; default as written. */
  resolve?: ResolveSettings;
}

export const MAX_HISTORY_LIMIT = 200;
export const DEFAULT_HISTORY_LIMIT = 50;

export function createHistoryQueries({ reader, db, schema, keyring, resolve = NO_RESOLVE }: HistoryQueriesDeps) {
  // A commit's own outcome: what applying it did. Later passes over the same content (a start
  // that finds the files in place, a revision read again) find nothing to do and say `unchanged`;
  // they must not hide it. Retries of a pending reload were recorded as runs by earlier versions.
  const lastRun = db.prepare<[string], { outcome: string; finished_at: number }>(
    "SELECT outcome, finished_at FROM sync_runs WHERE commit_id = ? AND source != 'retry' ORDER BY outcome = 'unchanged', id DESC LIMIT 1",
  );

  function withSync(entry: HistoryEntry): HistoryItem {
    const row = lastRun.get(entry.id);
    return { ...entry, sync: row ? { outcome: row.outcome, at: new Date(row.finished_at).toISOString() } : null };
  }

  /** A revision as the API compares it: sealed values opened, or as stored when they no longer open. */
  async function documentAt(commit: string | null): Promise<IniDocument | undefined> {
    if (commit === null) return undefined;
    const stored = parseIni(await reader.contentAt(commit));
    try {
      return openDocument({ stored, schema, keyring }).doc;
    } catch {
      return stored;
    }
  }

  async function diffBetween(from: string | null, to: string): Promise<HistoryDiff> {
    const [before, after, unified] = await Promise.all([documentAt(from), documentAt(to), reader.unifiedDiff(from, to)]);
    const valuesOf = (doc: IniDocument): IniDocument => resolveDocument({ doc, schema, settings: resolve }).doc;
    return {
      from,
      to,
      diff: diffKeys(before, after!, schema).diff,
      // What the services' values did: a change of a referred key shows at every key that refers to it.
      resolved: diffKeys(before && valuesOf(before), valuesOf(after!), schema).diff,
      unified,
    };
  }

  return {
    async list(query: { limit: number; before?: string }): Promise<{ commits: HistoryItem[]; next: string | null }> {
      const before = query.before === undefined ? undefined : await reader.resolve(query.before);
      const { entries, hasMore } = await reader.list({ limit: query.limit, ...(before ? { before } : {}) });
      return { commits: entries.map(withSync), next: hasMore && entries.length > 0 ? entries[entries.length - 1]!.id : null };
    },

    async show(commitish: string): Promise<HistoryItem & Pick<HistoryDiff, 'diff' | 'resolved' | 'unified'>> {
      const entry = await reader.get(await reader.resolve(commitish));
      const { diff, resolved, unified } = await diffBetween(entry.parent, entry.id);
      return { ...withSync(entry), diff, resolved, unified };
    },

    async diff(fromish: string, toish: string | undefined): Promise<HistoryDiff> {
      const from = await reader.resolve(fromish);
      const to = toish === undefined ? await reader.head() : await reader.resolve(toish);
      return diffBetween(from, to!);
    },

    /** The stored text of config.ini at a commit, for a rollback. */
    async contentAt(commitish: string): Promise<{ commit: string; text: string }> {
      const commit = await reader.resolve(commitish);
      return { commit, text: await reader.contentAt(commit) };
    },
  };
}

export type HistoryQueries = ReturnType<typeof createHistoryQueries>;
