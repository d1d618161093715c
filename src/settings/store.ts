/**
 * The settings store: the only writer of config.ini (and the reader of system.ini, which nobody
 * writes at run time).
 *
 * Writes are serialized through one queue and committed in groups: every request waiting when a
 * write starts is planned against the file's current content (re-read from disk, so a hand edit
 * made a moment ago is kept), each accepted or refused on its own, and the result written once
 * (temp file, fsync, rename, fsync dir). Just before the rename the file is read again; if a hand
 * edit landed meanwhile, the group is planned again on top of it.
 *
 * Reads are served from a snapshot cached by the file's (inode, size, mtime, ctime); a snapshot
 * read within a moment of the file's mtime is not trusted (the timestamp granularity could hide
 * a second edit in the same tick) and is checked again on the next read.
 */
import { readFileSync, statSync, type BigIntStats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Actor, AuditLog, AuditRecord } from '../audit/audit-log.js';
import { AppError, isAppError } from '../errors.js';
import { stageFile } from '../fs/atomic-write.js';
import { parseIni, type IniDocument } from '../ini/document.js';
import { decodeText, revisionOf } from './revision.js';
import { planChanges, validationFailed, type ChangeInput, type PlannedChange } from './plan-changes.js';
import { validateDocument } from './validate.js';
import { isSensitive, MASK, type FileSchema } from './schema.js';
import { createDocumentView, type DocumentView } from './typed-view.js';

export interface Snapshot {
  readonly text: string;
  readonly doc: IniDocument;
  /** sha256 of the file's bytes. */
  readonly revision: string;
  /** Strong ETag derived from the revision. */
  readonly etag: string;
  readonly view: DocumentView;
}

export interface UpdateInput {
  readonly changes: readonly ChangeInput[];
  /** ETags from If-Match; `*` matches any revision. */
  readonly ifMatch?: readonly string[];
  readonly actor: Actor;
}

export interface AppliedChange extends PlannedChange {
  readonly changed: boolean;
}

export interface UpdateResult {
  readonly snapshot: Snapshot;
  readonly changes: readonly AppliedChange[];
}

export interface ReadOnlyIniStore {
  /** The current file; throws CONFIG_INVALID when it is missing or malformed. */
  read(): Snapshot;
  /** The newest snapshot that parsed, even if the file is broken now. */
  lastGood(): Snapshot | undefined;
}

export interface RestoreInput {
  /** Whole file content to put back (validated like any write). */
  readonly text: string;
  /** Only if the file is still this revision: a newer edit is never clobbered. */
  readonly ifRevision: string;
  readonly actor: Actor;
}

export interface SettingsStore extends ReadOnlyIniStore {
  update(input: UpdateInput): Promise<UpdateResult>;
  /** Replaces the whole file (automatic rollback); audited key by key. */
  restore(input: RestoreInput): Promise<UpdateResult>;
  /** Resolves when every queued write has settled. */
  idle(): Promise<void>;
}

export interface IniFileStoreOptions {
  path: string;
  /** Name used in messages ("config.ini"). */
  label: string;
  schema: FileSchema;
  /** ms during which a snapshot read right after the file's mtime is re-checked. */
  racyWindowMs?: number;
}

export interface SettingsStoreOptions extends IniFileStoreOptions {
  audit: AuditLog;
  logger: Logger;
  now?: () => number;
  /** Attempts to commit a group when hand edits keep landing during the write. */
  maxAttempts?: number;
  /** Largest group committed by one write. */
  maxGroup?: number;
  /** Called just before a new content replaces the file: the sync worker learns who made it. */
  beforeCommit?: (input: { revision: string; actor: Actor }) => void;
}

export function etagOf(revision: string): string {
  return `"${revision}"`;
}

function toSnapshot(text: string, label: string, schema: FileSchema): Snapshot {
  let doc: IniDocument;
  try {
    doc = parseIni(text);
  } catch (cause) {
    if (isAppError(cause) && cause.code === 'INI_SYNTAX') {
      throw new AppError('CONFIG_INVALID', `${label} is invalid`, { details: `${label} ${cause.message}`, data: cause.data, cause });
    }
    throw cause;
  }
  const revision = revisionOf(text);
  return Object.freeze({ text, doc, revision, etag: etagOf(revision), view: createDocumentView(doc, schema) });
}

function missing(label: string, cause?: unknown): AppError {
  return new AppError('CONFIG_INVALID', `${label} is invalid`, { details: `${label} is missing`, cause });
}

interface CacheEntry {
  stat: BigIntStats;
  snapshot: Snapshot;
  trusted: boolean;
}

function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.dev === b.dev;
}

/** Cached, validated reads of one INI file. */
export function createIniFileReader({ path, label, schema, racyWindowMs = 100 }: IniFileStoreOptions) {
  let cache: CacheEntry | undefined;
  let good: Snapshot | undefined;

  function remember(stat: BigIntStats, snapshot: Snapshot): Snapshot {
    const ageMs = Date.now() - Number(stat.mtimeMs);
    cache = { stat, snapshot, trusted: ageMs > racyWindowMs };
    good = snapshot;
    return snapshot;
  }

  return {
    read(): Snapshot {
      const stat = statSync(path, { bigint: true, throwIfNoEntry: false });
      if (!stat) throw missing(label);
      if (cache && cache.trusted && sameFile(cache.stat, stat)) return cache.snapshot;
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw missing(label, cause);
        throw cause;
      }
      const text = decodeText(bytes, label);
      if (cache && cache.snapshot.text === text) return remember(stat, cache.snapshot);
      return remember(stat, toSnapshot(text, label, schema));
    },
    lastGood: () => good,
    /** After our own write: the new content is known, no need to read it back. */
    adopt(text: string): Snapshot {
      const stat = statSync(path, { bigint: true });
      return remember(stat, toSnapshot(text, label, schema));
    },
  };
}

export function createReadOnlyIniStore(options: IniFileStoreOptions): ReadOnlyIniStore {
  const reader = createIniFileReader(options);
  return { read: reader.read, lastGood: reader.lastGood };
}

interface Pending {
  input: UpdateInput;
  restore?: RestoreInput;
  resolve(result: UpdateResult): void;
  reject(error: unknown): void;
}

type Outcome = { pending: Pending; changes: PlannedChange[] } | { pending: Pending; error: AppError };

/** The key-level difference between two documents, for the audit log of a whole-file restore. */
export function diffDocuments(before: IniDocument, after: IniDocument): PlannedChange[] {
  const changes: PlannedChange[] = [];
  for (const section of after.sections) {
    for (const entry of section.entries) {
      const old = before.byName.get(section.name)?.byKey.get(entry.keyLower)?.value;
      if (old !== entry.value) changes.push({ section: section.name, key: entry.key, oldValue: old, newValue: entry.value });
    }
  }
  return changes;
}

function planRestore(working: Snapshot, restore: RestoreInput, label: string, schema: FileSchema): { text: string; doc: IniDocument; changes: PlannedChange[] } {
  if (working.revision !== restore.ifRevision) {
    throw new AppError('PRECONDITION_FAILED', 'Precondition Failed', { details: `${label} has changed since the revision to roll back` });
  }
  const next = toSnapshot(restore.text, label, schema);
  const issues = validateDocument({ doc: next.doc, schema });
  if (issues.length > 0) throw validationFailed(issues);
  return { text: restore.text, doc: next.doc, changes: diffDocuments(working.doc, next.doc) };
}

function etagMatches(ifMatch: readonly string[] | undefined, etag: string): boolean {
  if (!ifMatch || ifMatch.length === 0) return true;
  return ifMatch.some((candidate) => candidate === '*' || candidate === etag);
}

export function createSettingsStore(options: SettingsStoreOptions): SettingsStore {
  const { path, label, schema, audit, logger, now = Date.now, maxAttempts = 5, maxGroup = 256 } = options;
  const reader = createIniFileReader(options);
  const log = logger.child({ module: 'settings-store' });
  const queue: Pending[] = [];
  let draining: Promise<void> | undefined;

  const shown = (section: string, key: string, value: string | undefined): string | null =>
    value === undefined ? null : isSensitive(schema, section, key) ? MASK : value;

  async function readCurrent(): Promise<{ text: string; snapshot: Snapshot }> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw missing(label, cause);
      throw cause;
    }
    const text = decodeText(bytes, label);
    return { text, snapshot: toSnapshot(text, label, schema) };
  }

  function auditRows(outcome: Outcome, revision: string | null): AuditRecord[] {
    const { actor } = outcome.pending.input;
    const action = outcome.pending.restore ? 'settings.rollback' : 'settings.update';
    const at = now();
    if ('error' in outcome) {
      const inputs = outcome.pending.input.changes.length > 0 ? outcome.pending.input.changes : [{ section: null, key: null, value: undefined }];
      return inputs.map((input) => ({
        at,
        actor,
        action,
        section: input.section,
        key: input.key,
        oldValue: null,
        newValue: input.section && input.key && typeof input.value === 'string' ? shown(input.section, input.key, input.value) : null,
        result: 'refused',
        errorCode: outcome.error.code,
        revision: null,
      }));
    }
    return outcome.changes.map((change) => ({
      at,
      actor,
      action,
      section: change.section,
      key: change.key,
      oldValue: shown(change.section, change.key, change.oldValue),
      newValue: shown(change.section, change.key, change.newValue),
      result: change.oldValue === change.newValue ? 'unchanged' : 'applied',
      errorCode: null,
      revision,
    }));
  }

  async function commitGroup(group: Pending[]): Promise<void> {
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      let base: { text: string; snapshot: Snapshot };
      try {
        base = await readCurrent();
      } catch (error) {
        const appError = isAppError(error) ? error : new AppError('INTERNAL_ERROR', 'Internal error', { cause: error });
        settle(group.map((pending) => ({ pending, error: appError })), null);
        return;
      }
      let working = base.snapshot;
      const outcomes: Outcome[] = [];
      for (const pending of group) {
        if (!etagMatches(pending.input.ifMatch, working.etag)) {
          outcomes.push({
            pending,
            error: new AppError('PRECONDITION_FAILED', 'Precondition Failed', { details: `${label} has changed since the ETag given in If-Match` }),
          });
          continue;
        }
        try {
          const plan = pending.restore ? planRestore(working, pending.restore, label, schema) : planChanges(working.doc, pending.input.changes, schema);
          if (plan.text !== working.text) working = toSnapshot(plan.text, label, schema);
          outcomes.push({ pending, changes: [...plan.changes] });
        } catch (error) {
          outcomes.push({ pending, error: isAppError(error) ? error : new AppError('INTERNAL_ERROR', 'Internal error', { cause: error }) });
        }
      }
      if (working.text !== base.text) {
        let staged;
        try {
          staged = await stageFile(path, working.text);
          const onDisk = await readFile(path).catch(() => undefined);
          if (!onDisk || revisionOf(decodeText(onDisk, label)) !== base.snapshot.revision) {
            await staged.discard();
            log.info({ attempt }, `${label} changed during a write; planning the writes again on top of it`);
            continue;
          }
          const last = [...outcomes].reverse().find((o) => !('error' in o));
          if (last) options.beforeCommit?.({ revision: working.revision, actor: last.pending.input.actor });
          await staged.commit();
        } catch (error) {
          await staged?.discard().catch(() => undefined);
          log.error({ err: error }, `writing ${label} failed`);
          const failure = new AppError('INTERNAL_ERROR', 'Internal error', { details: `${label} could not be written`, cause: error });
          settle(outcomes.map((o) => ('error' in o ? o : { pending: o.pending, error: failure })), null);
          return;
        }
        working = reader.adopt(working.text);
      }
      settle(outcomes, working.revision, working);
      return;
    }
    const conflict = new AppError('CONFIG_CONFLICT', 'Conflict', { details: `${label} kept changing during the write; try again` });
    settle(group.map((pending) => ({ pending, error: conflict })), null);
  }

  function settle(outcomes: Outcome[], revision: string | null, snapshot?: Snapshot): void {
    try {
      audit.record(outcomes.flatMap((outcome) => auditRows(outcome, revision)));
    } catch (error) {
      // The file change has happened; failing the request now would misreport it.
      log.error({ err: error }, 'recording the audit log failed');
    }
    for (const outcome of outcomes) {
      if ('error' in outcome) outcome.pending.reject(outcome.error);
      else
        outcome.pending.resolve({
          snapshot: snapshot!,
          changes: outcome.changes.map((change) => ({ ...change, changed: change.oldValue !== change.newValue })),
        });
    }
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const group = queue.splice(0, maxGroup);
      try {
        await commitGroup(group);
      } catch (error) {
        log.error({ err: error }, 'settings write group failed');
        for (const pending of group) pending.reject(error);
      }
    }
  }

  function enqueue(pending: Omit<Pending, 'resolve' | 'reject'>): Promise<UpdateResult> {
    return new Promise<UpdateResult>((resolve, reject) => {
      queue.push({ ...pending, resolve, reject });
      if (!draining) {
        draining = drain().finally(() => {
          draining = undefined;
        });
      }
    });
  }

  return {
    read: reader.read,
    lastGood: reader.lastGood,
    update: (input) => enqueue({ input }),
    restore: (restore) => enqueue({ input: { changes: [], actor: restore.actor }, restore }),
    async idle() {
      while (draining) await draining;
    },
  };
}
