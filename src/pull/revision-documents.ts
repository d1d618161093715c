/**
 * config.ini at a revision the worker applied, as the worker rendered it: secrets opened and
 * values resolved. The current revision comes from the store's snapshot; an earlier one (a write
 * still being applied, a rollback) from the history commit its sync run names.
 */
import type { Database } from 'better-sqlite3';
import { AppError } from '../core/errors.js';
import { parseIni, type IniDocument } from '../ini/document.js';
import { openDocument } from '../secrets/sealed-document.js';
import type { Keyring } from '../secrets/secret-box.js';
import { resolveDocument, type ResolveSettings } from '../settings/resolve.js';
import { revisionOf } from '../settings/revision.js';
import type { FileSchema } from '../settings/schema.js';
import type { Snapshot } from '../settings/store.js';

export interface RevisionDocumentsDeps {
  db: Database;
  /** config.ini's stored text at a history commit. */
  textAt(commit: string): Promise<string>;
  /** The store's snapshot of config.ini now, when it reads. */
  current(): Snapshot | undefined;
  keyring: Keyring;
  schema: FileSchema;
  resolve: ResolveSettings;
}

/** Earlier revisions kept opened: a rollback or a slow service keeps a target on one for a while. */
const KEPT = 4;

export function createRevisionDocuments(deps: RevisionDocumentsDeps) {
  const commitOf = deps.db.prepare<[string], { commit_id: string }>(
    'SELECT commit_id FROM sync_runs WHERE revision = ? AND commit_id IS NOT NULL ORDER BY id DESC LIMIT 1',
  );
  const kept = new Map<string, IniDocument>();

  return async function documentAt(revision: string): Promise<IniDocument> {
    const snapshot = deps.current();
    if (snapshot?.revision === revision) return snapshot.resolved.doc;
    const known = kept.get(revision);
    if (known) return known;
    const row = commitOf.get(revision);
    if (!row) throw new AppError('TARGET_NOT_APPLIED', { details: `revision ${revision.slice(0, 12)} is in no history commit yet; ask again shortly` });
    const text = await deps.textAt(row.commit_id);
    if (revisionOf(text) !== revision) {
      throw new AppError('HISTORY_FAILED', { details: `history commit ${row.commit_id} does not hold revision ${revision.slice(0, 12)}` });
    }
    const doc = resolveDocument({
      doc: openDocument({ stored: parseIni(text), schema: deps.schema, keyring: deps.keyring }).doc,
      schema: deps.schema,
      settings: deps.resolve,
    }).doc;
    kept.set(revision, doc);
    if (kept.size > KEPT) kept.delete(kept.keys().next().value!);
    return doc;
  };
}
