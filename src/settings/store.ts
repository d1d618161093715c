/**
 * The settings store: the only writer of config.ini (and the reader of system.ini, which nobody
 * writes at run time).
 *
 * Writes are serialized through one queue and committed in groups: every request waiting when a
 * write starts is planned against the file's current content (re-read from disk, so a hand edit
 * made a moment ago is kept), each accepted or refused on its own, and the result written once
 * (temp file, fsync, rename, fsync dir). Just before the rename the file is read again; if a hand
 * edit landed meanwhile, the group is planned again on top of it. POSIX has no compare-and-rename,
 * so what a rename replaced is read back and merged (`mergeBack`), a copy saved from before our
 * writes has them carried onto it (`staleEdit`), and the one edit that cannot be recovered (renamed
 * in between check and rename) is told by the directory's events and audited (`watchTheWindow`).
 *
 * Reads are served from a snapshot cached by the file's (inode, size, mtime, ctime); a snapshot
 * read within a moment of the file's mtime is not trusted (the timestamp granularity could hide
 * a second edit in the same tick) and is checked again on the next read. The server's store also
 * watches the directory, so a read skips even the stat while nothing there changed (WatchOptions).
 */
import { readFileSync, statSync, utimesSync, watch as fsWatch, type BigIntStats } from 'node:fs';
import { basename, dirname } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { auditFailureWarning, type AuditLog, type AuditRecord } from '../audit/audit-log.js';
import { FILE_ACTOR, type Actor, type RevisionSource } from '../core/actor.js';
import { AppError, isAppError, withWarnings, type FieldIssue } from '../core/errors.js';
import { stageFile, type StagedFile } from '../fs/atomic-write.js';
import { writeFailure } from '../fs/write-failure.js';
import { applyIniChanges, parseIni, type IniDocument } from '../ini/document.js';
import type { Keyring } from '../secrets/secret-box.js';
import {
  applyOpenedChanges,
  applyStoredChanges,
  openDocument,
  resealDocument,
  unreadableError,
  type OpenedDocument,
  type StoredValueChange,
} from '../secrets/sealed-document.js';
import { isEnvSection } from './env-sections.js';
import { decodeText, revisionOf } from './revision.js';
import { planChanges, validationFailed, type ChangeInput, type PlannedChange } from './plan-changes.js';
import { MASK } from '../core/mask.js';
import { isSensitive, type FileSchema } from './schema.js';
import { createDocumentView, type DocumentView } from './typed-view.js';
import { NO_RESOLVE, resolveDocument, type ResolveResult, type ResolveSettings } from './resolve.js';
import { checkDocument } from './check-document.js';
import { mergeHandEdit } from './hand-edit-merge.js';
import { changedKeys } from '../history/key-diff.js';

export interface Snapshot {
  /** The file as stored: sensitive values sealed. */
  readonly text: string;
  /** The parse of `text`. */
  readonly stored: IniDocument;
  /** Every sealed value opened: what the API returns and validation checks. */
  readonly doc: IniDocument;
  /** `section.key` of sensitive values typed in plain text, sealed by the next write. */
  readonly unsealed: readonly string[];
  /** Sealed values that do not open (only in the store's own tolerant reads; `read()` throws instead). */
  readonly unreadable: readonly FieldIssue[];
  /** sha256 of the file's bytes. */
  readonly revision: string;
  /** Strong ETag derived from the revision. */
  readonly etag: string;
  /** `doc` resolved: the values services get, with where each came from (computed on first use). */
  readonly resolved: ResolveResult;
  /** The API's view of the resolved values. */
  readonly view: DocumentView;
  /** The API's view of the values as written (`?resolved=false`): references and overlays raw. */
  readonly rawView: DocumentView;
}

export interface UpdateInput {
  readonly changes: readonly ChangeInput[];
  /** ETags from If-Match; `*` matches any revision. */
  readonly ifMatch?: readonly string[];
  readonly actor: Actor;
  /** Default: `api` for API callers, `cli` otherwise. */
  readonly source?: RevisionSource;
  /** Sections and keys that are neither in the file nor declared may be added (template upgrades only). */
  readonly allowNew?: boolean;
  /** The configuration template applied (source `template`): the history names it. */
  readonly template?: string;
  /** `section.key` of values to mask in the audit log though their keys are not secret (a template's secret variables). */
  readonly masked?: ReadonlySet<string>;
  /**
   * The changes worked out against the file as the write finds it in the queue, not as it was
   * read before (the env API: where a variable is, which names it may take); `changes` then only
   * names what a refusal is audited as. No changes: nothing is written.
   */
  readonly plan?: (doc: IniDocument) => readonly ChangeInput[];
}

export interface AppliedChange extends PlannedChange {
  readonly changed: boolean;
}

export interface UpdateResult {
  readonly snapshot: Snapshot;
  readonly changes: readonly AppliedChange[];
  /** The file was replaced (false when every change left it as it was). */
  readonly written: boolean;
  /** What went wrong beside the write, for the caller to tell (the audit log could not be written). */
  readonly warnings: readonly string[];
}

export interface ReadOnlyIniStore {
  /** The current file; throws CONFIG_INVALID when it is missing or malformed. */
  read(): Snapshot;
  /** The newest snapshot that parsed, even if the file is broken now. */
  lastGood(): Snapshot | undefined;
}

export interface RestoreInput {
  /** Whole file content to put back, as stored (validated like any write). */
  readonly text: string;
  /** Only if the file is still this revision: a newer edit is never clobbered. */
  readonly ifRevision?: string;
  readonly ifMatch?: readonly string[];
  readonly actor: Actor;
  readonly source: 'rollback' | 'auto_rollback' | 'rekey';
  /** The history commit whose content this is. */
  readonly rollbackOf?: string;
}

export interface SealInput {
  /** Who typed the plain text values (the revision's author in the history). */
  readonly actor: Actor;
}

export interface EditInput {
  /** The file as stored when the editing began. */
  readonly read: string;
  /** The edited file. */
  readonly text: string;
  readonly actor: Actor;
}

/** Who made a revision, announced just before it replaces the file. */
export interface RevisionAnnouncement {
  readonly revision: string;
  readonly actor: Actor;
  readonly source: RevisionSource;
  readonly rollbackOf?: string;
  /** The configuration template it applied. */
  readonly template?: string;
}

export interface SettingsStore extends ReadOnlyIniStore {
  update(input: UpdateInput): Promise<UpdateResult>;
  /** Replaces the whole file (rollback); audited key by key. */
  restore(input: RestoreInput): Promise<UpdateResult>;
  /** Seals sensitive values typed in plain text; audited as settings.seal. */
  seal(input: SealInput): Promise<UpdateResult>;
  /** Applies a whole file edited as text (`confhub edit`): validated like any write, merged if the file changed meanwhile. */
  edit(input: EditInput): Promise<UpdateResult>;
  /** Resolves when every queued write has settled. */
  idle(): Promise<void>;
  /** Stops waiting out the watches of replaced files (a stop): each is read until it rests, and merged back if edited. */
  hurry(): void;
  /** Stops watching config.ini's directory, if it did. */
  close(): void;
}

export interface IniFileStoreOptions {
  path: string;
  /** Name used in messages ("config.ini"). */
  label: string;
  schema: FileSchema;
  /** Opens sealed values (and seals sensitive ones on write); none for system.ini. */
  keyring?: Keyring;
  /** ms during which a snapshot read right after the file's mtime is re-checked. */
  racyWindowMs?: number;
  /** Serve reads without a stat while the file's directory reports no change (the server). */
  watch?: WatchOptions;
  /** How values are resolved (system.ini's interpolation, CONFHUB_ENVIRONMENT); default: as written. */
  resolve?: ResolveSettings;
}

/**
 * A read checks the file with a stat (a system call, a sizeable share of a GET). With a watch, a
 * read skips it while the directory has reported no event since the last check: a change made
 * before a request arrives is reported before the request is read, since the event loop hands
 * out ready events in the order they became ready. Where changes send no events (some bind
 * mounts and VM shares), or the watch fails, a read still checks at least every `maxAgeMs`.
 */
export interface WatchOptions {
  /** Default 100. */
  readonly maxAgeMs?: number;
  /** Epoch ms (tests move it). */
  readonly now?: () => number;
  /** Reports every entry of `dir` that changed (null: unknown) and a watch that stopped; default fs.watch. */
  readonly watchDirectory?: (dir: string, listener: DirectoryListener) => { close(): void };
}

export interface DirectoryListener {
  /** `kind`: `rename` for a name that appeared, moved or went; `change` for content or attributes. */
  changed(name: string | null, kind?: 'rename' | 'change'): void;
  failed(): void;
}

const watchWithFs: NonNullable<WatchOptions['watchDirectory']> = (dir, listener) => {
  // Not persistent: the watch alone must not keep the process alive.
  const watcher = fsWatch(dir, { persistent: false }, (event, name) => listener.changed(name, event));
  watcher.on('error', () => {
    watcher.close();
    listener.failed();
  });
  return watcher;
};

export interface SettingsStoreOptions extends IniFileStoreOptions {
  audit: AuditLog;
  logger: Logger;
  now?: () => number;
  /** Attempts to commit a group when hand edits keep landing during the write. */
  maxAttempts?: number;
  /** Largest group committed by one write. */
  maxGroup?: number;
  /** How long after a write an edit saved from a copy read before it is recognised (ms; default 2000). */
  staleEditWindowMs?: number;
  /** Called just before a new content replaces the file: the sync worker learns who made it. */
  beforeCommit?: (input: RevisionAnnouncement) => void;
  /** Called once the file was replaced: which keys the accepted writes changed (never values). */
  /** A write's revision replaced the file (called at the rename, before anything else runs). */
  landed?: (revision: string) => void;
  afterCommit?: (input: CommittedRevision) => void;
}

/** A revision that replaced the file, with the keys (`section.key`) its writes changed or removed. */
export interface CommittedRevision extends RevisionAnnouncement {
  readonly keys: readonly string[];
}

/** `section.key` as events name it: setting keys are case-insensitive, variable names are not. */
function changedKey(change: { readonly section: string; readonly key: string }): string {
  return `${change.section}.${isEnvSection(change.section) ? change.key : change.key.toLowerCase()}`;
}

export function etagOf(revision: string): string {
  return `"${revision}"`;
}

export interface ToSnapshotInput {
  readonly text: string;
  /** Name used in messages ("config.ini"). */
  readonly label: string;
  readonly schema: FileSchema;
  readonly keyring?: Keyring | undefined;
  /** List values that do not open instead of throwing (the store's own reads). */
  readonly tolerate?: boolean;
  readonly resolve?: ResolveSettings | undefined;
}

export function toSnapshot({ text, label, schema, keyring, tolerate, resolve }: ToSnapshotInput): Snapshot {
  let stored: IniDocument;
  try {
    stored = parseIni(text);
  } catch (cause) {
    if (isAppError(cause) && cause.code === 'INI_SYNTAX') {
      throw new AppError('CONFIG_INVALID', { message: `${label} is invalid`, details: `${label} ${cause.message}`, data: cause.data, cause });
    }
    throw cause;
  }
  return snapshotOf({ text, stored, opened: openDocument({ stored, schema, keyring, tolerate: tolerate === true }), schema, resolve });
}

interface SnapshotParts {
  readonly text: string;
  readonly stored: IniDocument;
  readonly opened: Pick<OpenedDocument, 'doc' | 'unsealed' | 'unreadable'>;
  readonly schema: FileSchema;
  readonly resolve?: ResolveSettings | undefined;
  /** `opened.doc` resolved with `resolve` already (by a write's check). */
  readonly resolved?: ResolveResult;
}

function snapshotOf({ text, stored, opened: { doc, unsealed, unreadable }, schema, resolve = NO_RESOLVE, resolved: known }: SnapshotParts): Snapshot {
  const revision = revisionOf(text);
  // Resolved on first use: most snapshots a write makes are never read through the API.
  let resolved: ResolveResult | undefined = known;
  let view: DocumentView | undefined;
  let rawView: DocumentView | undefined;
  const resolvedOf = (): ResolveResult =>
    (resolved ??= resolveDocument({ doc, schema, settings: resolve, unreadable: new Set(unreadable.map((issue) => issue.field)) }));
  const rawViewOf = (): DocumentView => {
    rawView ??= createDocumentView(doc, schema);
    return rawView;
  };
  return Object.freeze({
    text,
    stored,
    doc,
    unsealed,
    unreadable,
    revision,
    etag: etagOf(revision),
    get resolved() {
      return resolvedOf();
    },
    get view() {
      const { doc: values } = resolvedOf();
      // Without overlays or references the raw view is the resolved one: one cache for both.
      view ??= values === doc ? rawViewOf() : createDocumentView(values, schema);
      return view;
    },
    get rawView() {
      return rawViewOf();
    },
  });
}

function missing(label: string, cause?: unknown): AppError {
  return new AppError('CONFIG_INVALID', { message: `${label} is invalid`, details: `${label} is missing`, cause });
}

interface CacheEntry {
  stat: BigIntStats;
  snapshot: Snapshot;
  trusted: boolean;
}

function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.dev === b.dev;
}

/** Knows whether the file may have changed since it was last checked, from its directory's events. */
function createChangeTracker(
  path: string,
  { maxAgeMs = 100, now = Date.now, watchDirectory = watchWithFs, onChange }: WatchOptions & { onChange?: () => void },
) {
  const name = basename(path);
  let checkedAt: number | undefined;
  let closed = false;
  let handle: { close(): void } | undefined;
  const observers = new Set<(name: string | null, kind: 'rename' | 'change' | undefined) => void>();
  try {
    handle = watchDirectory(dirname(path), {
      changed(changed, kind) {
        for (const observer of observers) observer(changed, kind);
        if (changed === null || changed === name) {
          checkedAt = undefined;
          onChange?.();
        }
      },
      failed() {
        closed = true;
      },
    });
  } catch {
    // No watch (no inotify watches left, say): every read checks the file.
    closed = true;
  }
  return {
    /** The file is as it was at the last check (no event since, and the check is recent). */
    unchanged: (): boolean => !closed && checkedAt !== undefined && now() - checkedAt < maxAgeMs,
    checked(): void {
      checkedAt = now();
    },
    /** Every event of the directory, in the order the kernel queued them, until the returned stop. */
    observe(observer: (name: string | null, kind: 'rename' | 'change' | undefined) => void): (() => void) | undefined {
      if (closed) return undefined;
      observers.add(observer);
      return () => observers.delete(observer);
    },
    close(): void {
      closed = true;
      handle?.close();
    },
  };
}

/** Cached, validated reads of one INI file. */
export function createIniFileReader({
  path,
  label,
  schema,
  keyring,
  resolve,
  racyWindowMs = 100,
  watch,
  onChange,
}: IniFileStoreOptions & { onChange?: () => void }) {
  let cache: CacheEntry | undefined;
  let good: Snapshot | undefined;
  // Told of each change event of the file (the store checks for an edit saved from an older copy).
  const changes = watch ? createChangeTracker(path, { ...watch, ...(onChange ? { onChange } : {}) }) : undefined;

  function remember(stat: BigIntStats, snapshot: Snapshot): Snapshot {
    const ageMs = Date.now() - Number(stat.mtimeMs);
    cache = { stat, snapshot, trusted: ageMs > racyWindowMs };
    good = snapshot;
    if (cache.trusted) changes?.checked();
    return snapshot;
  }

  return {
    read(): Snapshot {
      if (cache?.trusted && changes?.unchanged()) return cache.snapshot;
      const stat = statSync(path, { bigint: true, throwIfNoEntry: false });
      if (!stat) throw missing(label);
      if (cache?.trusted && sameFile(cache.stat, stat)) {
        changes?.checked();
        return cache.snapshot;
      }
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw missing(label, cause);
        throw cause;
      }
      const text = decodeText(bytes, label);
      if (cache && cache.snapshot.text === text) return remember(stat, cache.snapshot);
      return remember(stat, toSnapshot({ text, label, schema, keyring, resolve }));
    },
    lastGood: () => good,
    /** The snapshot of the file as last read or written, if any (a write reuses it when the file still holds that text). */
    cached: (): Snapshot | undefined => cache?.snapshot,
    /** Stops watching (a read then always checks the file). */
    close: (): void => changes?.close(),
    /** The directory's events from now on (none without a working watch). */
    observe: (observer: (name: string | null, kind: 'rename' | 'change' | undefined) => void) => changes?.observe(observer),
    /** After our own write: the new snapshot is known, no need to read it back. */
    adopt(snapshot: Snapshot): Snapshot {
      // Only a snapshot whose values all open is served (a tolerant one is the store's own business).
      if (snapshot.unreadable.length > 0) return snapshot;
      const stat = statSync(path, { bigint: true });
      return remember(stat, snapshot);
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
  seal?: SealInput;
  merge?: HandEditReplaced;
  /** Carries our recent writes onto an edit saved from a copy read before them (see `staleEdit`). */
  reapply?: true;
  edit?: EditInput;
  resolve(result: UpdateResult): void;
  reject(error: unknown): void;
}

/** A hand edit one of our writes replaced, and the content that write had read. */
interface HandEditReplaced {
  readonly ancestor: IniDocument;
  /** The hand edit's bytes. */
  readonly edited: Buffer;
  /** Keys the edit lacks are removed: only where the edit is our own text, never a file someone else was writing. */
  readonly removals?: boolean;
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
  for (const section of before.sections) {
    for (const entry of section.entries) {
      if (!after.byName.get(section.name)?.byKey.has(entry.keyLower))
        changes.push({ section: section.name, key: entry.key, oldValue: entry.value, newValue: '', removed: true });
    }
  }
  return changes;
}

/** The file a store serves, as the planning helpers need it. */
interface StoredFile {
  readonly label: string;
  readonly schema: FileSchema;
  readonly keyring: Keyring | undefined;
  readonly resolve: ResolveSettings | undefined;
}

function planRestore(
  working: Snapshot,
  restore: RestoreInput,
  { label, schema, keyring, resolve, noun = `the ${label} to restore` }: StoredFile & { noun?: string },
): Snapshot {
  if (restore.ifRevision !== undefined && working.revision !== restore.ifRevision) {
    throw new AppError('PRECONDITION_FAILED', { details: `${label} has changed since the revision to roll back` });
  }
  let stored: IniDocument;
  try {
    stored = parseIni(restore.text);
  } catch (cause) {
    throw new AppError('VALIDATION_FAILED', { details: `${noun} is not valid: ${isAppError(cause) ? cause.message : 'unreadable'}`, cause });
  }
  let opened: OpenedDocument;
  try {
    opened = openDocument({ stored, schema, keyring });
  } catch (error) {
    if (!isAppError(error) || error.code !== 'SECRET_UNREADABLE') throw error;
    const issues = error.data.errors ?? [];
    throw new AppError('VALIDATION_FAILED', {
      details: `${noun} holds secrets no master key opens: ${error.details}`,
      data: { errors: issues },
      cause: error,
    });
  }
  // Today's rules for every value a rollback by request brings back, credential strength included;
  // an automatic rollback restores what the services just ran with.
  const changed =
    restore.source === 'rollback' ? new Set(diffDocuments(working.doc, opened.doc).map((c) => `${c.section}.${c.key.toLowerCase()}`)) : new Set<string>();
  const { issues } = checkDocument({ doc: opened.doc, schema, changed, resolve: resolve ?? NO_RESOLVE });
  if (issues.length > 0) throw validationFailed(issues);
  return toSnapshot({ text: resealDocument({ text: restore.text, stored, opened, schema, keyring }), label, schema, keyring, resolve });
}

/** Plaintext changes of a planned update that alter a value, for the stored document. */
function valueChanges(changes: readonly PlannedChange[]): StoredValueChange[] {
  return changes
    .filter((c) => c.oldValue !== c.newValue || c.removed)
    .map((c) => ({ section: c.section, key: c.key, value: c.newValue, ...(c.removed ? { remove: true } : {}) }));
}

function sealUnsealed(working: Snapshot, { label, schema, keyring, resolve }: StoredFile): { snapshot: Snapshot; changes: PlannedChange[] } {
  const changes: PlannedChange[] = [];
  const unsealed = new Set(working.unsealed);
  for (const section of working.doc.sections) {
    for (const entry of section.entries) {
      if (unsealed.has(`${section.name}.${entry.keyLower}`))
        changes.push({ section: section.name, key: entry.key, oldValue: entry.value, newValue: entry.value });
    }
  }
  const text = applyStoredChanges({
    stored: working.stored,
    changes: changes.map((c) => ({ section: c.section, key: c.key, value: c.newValue })),
    schema,
    keyring,
  });
  return { snapshot: toSnapshot({ text, label, schema, keyring, resolve, tolerate: true }), changes };
}

function etagMatches(ifMatch: readonly string[] | undefined, etag: string): boolean {
  if (!ifMatch || ifMatch.length === 0) return true;
  return ifMatch.some((candidate) => candidate === '*' || candidate === etag);
}

/** Attempts of a write that carries a hand edit or our own writes back, while other edits keep landing. */
const MAX_CARRY_TRIES = 20;
/** Recent writes remembered to recognise a copy saved from before them (each holds two parsed files). */
const MAX_REMEMBERED_WRITES = 64;

const SEAL_ACTOR: Actor = Object.freeze({ type: 'system', id: 'seal' });

function defaultSource(pending: Pending): RevisionSource {
  if (pending.restore) return pending.restore.source;
  if (pending.merge) return 'file';
  if (pending.reapply) return pending.input.source ?? 'api';
  if (pending.seal) return pending.seal.actor.type === 'file' ? 'file' : 'seal';
  return pending.input.source ?? (pending.input.actor.type === 'api' ? 'api' : 'cli');
}

export function createSettingsStore(options: SettingsStoreOptions): SettingsStore {
  const { path, label, schema, keyring, resolve, audit, logger, now = Date.now, maxAttempts = 5, maxGroup = 256, staleEditWindowMs = 2000 } = options;
  const reader = createIniFileReader({ ...options, onChange: () => checkForStaleEdit() });
  const log = logger.child({ module: 'settings-store' });
  const queue: Pending[] = [];
  let draining: Promise<void> | undefined;
  /** Replaced files still watched for a late write into them (see replaceIf). */
  const held = new Set<() => void>();

  const shown = (section: string, key: string, value: string | undefined): string | null =>
    value === undefined ? null : isSensitive(schema, section, key) ? MASK : value;

  async function readCurrent(): Promise<Snapshot> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw missing(label, cause);
      throw cause;
    }
    const text = decodeText(bytes, label);
    // The file as the last write left it (or as last read) is not parsed and opened again: the
    // cost of a write must not grow with every secret of a large file. A cached snapshot opened
    // every value (reads are not tolerant), so it is what the tolerant read below would make.
    const cached = reader.cached();
    if (cached?.text === text) return cached;
    // Tolerant: a write that sets a value that no longer opens is how it is repaired.
    return toSnapshot({ text, label, schema, keyring, resolve, tolerate: true });
  }

  function actionOf(pending: Pending): string {
    if (pending.restore) return pending.restore.source === 'rekey' ? 'settings.rekey' : 'settings.rollback';
    if (pending.merge) return 'settings.merge';
    if (pending.edit) return 'settings.edit';
    if (pending.reapply) return 'settings.reapply';
    if (pending.seal) return 'settings.seal';
    if (pending.input.source === 'template') return 'settings.template';
    return pending.input.source === 'promote' ? 'settings.promote' : 'settings.update';
  }

  function changeRows(
    { actor, action, revision, at, masked }: { actor: Actor; action: string; revision: string | null; at: number; masked?: ReadonlySet<string> },
    changes: readonly PlannedChange[],
  ): AuditRecord[] {
    const show = (change: PlannedChange, value: string | undefined): string | null =>
      value !== undefined && masked?.has(changedKey(change)) ? MASK : shown(change.section, change.key, value);
    return changes.map((change) => ({
      at,
      actor,
      action,
      section: change.section,
      key: change.key,
      oldValue: show(change, change.oldValue),
      newValue: change.removed ? null : show(change, change.newValue),
      result: change.oldValue === change.newValue && !change.removed && action !== 'settings.seal' ? 'unchanged' : 'applied',
      errorCode: null,
      revision,
    }));
  }

  function auditRows(outcome: Outcome, { revision, written }: { revision: string | null; written: boolean }): AuditRecord[] {
    const { actor } = outcome.pending.input;
    const action = actionOf(outcome.pending);
    const at = now();
    if ('error' in outcome) {
      const inputs = outcome.pending.input.changes.length > 0 ? outcome.pending.input.changes : [{ section: null, key: null, value: undefined }];
      return inputs.map((input) => ({
        at,
        actor,
        action,
        section: input.section,
        key: input.key,
        // No value of a refused write is kept: a key that does not exist (a typo of a password's
        // name) is not known to be secret, so its value could only be stored as typed.
        oldValue: null,
        newValue: null,
        result: 'refused',
        errorCode: outcome.error.code,
        revision: null,
      }));
    }
    // A restore or an edit that changes no value (comments, layout, sealing) is still a write of the file.
    if (outcome.changes.length === 0 && (outcome.pending.restore || outcome.pending.edit) && written) {
      return [{ at, actor, action, section: null, key: null, oldValue: null, newValue: null, result: 'applied', errorCode: null, revision }];
    }
    const masked = outcome.pending.input.masked;
    return changeRows({ actor, action, revision, at, ...(masked ? { masked } : {}) }, outcome.changes);
  }

  function asAppError(error: unknown): AppError {
    return isAppError(error) ? error : new AppError('INTERNAL_ERROR', { cause: error });
  }

  /** The snapshot after plaintext changes planned on `working` (`doc`: its opened document with them applied). */
  function applyPlanned(
    working: Snapshot,
    { doc, changes, resolved }: { doc: IniDocument; changes: readonly StoredValueChange[]; resolved: ResolveResult },
  ): Snapshot {
    const next = applyOpenedChanges({ stored: working.stored, text: working.text, opened: working, doc, changes, schema, keyring });
    // The check resolved this document already (every value opened: a write leaves none that does not).
    return snapshotOf({ text: next.text, stored: next.stored, opened: next, schema, resolve, ...(next.unreadable.length === 0 ? { resolved } : {}) });
  }

  /** Plans one request on top of `working`; returns the snapshot after it. */
  function plan(pending: Pending, working: Snapshot): { snapshot: Snapshot; changes: PlannedChange[] } {
    if (pending.merge) return planMerge(pending.merge, working);
    if (pending.reapply) return planReapply(working);
    if (pending.edit) return planEdit(pending.edit, working);
    if (pending.restore) {
      const next = planRestore(working, pending.restore, { label, schema, keyring, resolve });
      return { snapshot: next, changes: diffDocuments(working.doc, next.doc) };
    }
    if (pending.seal) {
      if (working.unreadable.length > 0) throw unreadableError(working.unreadable);
      return { snapshot: working, changes: [] };
    }
    const inputs = pending.input.plan ? pending.input.plan(working.doc) : pending.input.changes;
    if (pending.input.plan && inputs.length === 0) return { snapshot: working, changes: [] };
    const planned = planChanges({
      ...(resolve ? { resolve } : {}),
      doc: working.doc,
      inputs,
      schema,
      skip: new Set(working.unreadable.map((issue) => issue.field)),
      ...(pending.input.allowNew ? { allowNew: true } : {}),
    });
    const changed = valueChanges(planned.changes);
    const snapshot = changed.length === 0 ? working : applyPlanned(working, { doc: planned.doc, changes: changed, resolved: planned.resolved });
    // Nothing is written while a value that does not open stays: only a write that sets it again.
    if (snapshot.unreadable.length > 0) throw unreadableError(snapshot.unreadable);
    return { snapshot, changes: [...planned.changes] };
  }

  /**
   * The hand edit carried over as it was typed (a hand edit is not held to the API's rules; the
   * sync worker judges the file as a whole, as for any hand edit).
   */
  function planMerge(
    merge: HandEditReplaced,
    working: Snapshot,
    { strict = false }: { strict?: boolean } = {},
  ): { snapshot: Snapshot; changes: PlannedChange[] } {
    let edited: IniDocument;
    try {
      edited = parseIni(decodeText(merge.edited, label));
    } catch (cause) {
      const reason = isAppError(cause) ? cause.message : 'unreadable';
      if (strict) throw new AppError('VALIDATION_FAILED', { details: `the edited ${label} is not valid: ${reason}`, cause });
      throw new AppError('CONFIG_INVALID', {
        details: `a hand edit of ${label} replaced by a write could not be merged back: it is not valid (${reason})`,
        cause,
      });
    }
    // A file merged back may have been saved from a copy older than the one the write read (sed -i
    // that read before an earlier write): measured against that copy, it would undo that write.
    const closest = strict || merge.removals ? { doc: merge.ancestor, later: [] } : closestAncestor(edited, merge.ancestor);
    // An edit session saved last: its values win; a hand edit replaced by a write came before it.
    const all = mergeHandEdit({ ancestor: closest.doc, edited, current: working.stored, editWins: strict, removals: strict || merge.removals === true });
    // A hand edit merged back came before the writes made after the copy it was made from: a key
    // one of them set keeps that write's value.
    const written = keysWrittenBy(closest.later);
    const dropped = all.changes.filter((c) => written.has(`${c.section}.${c.key.toLowerCase()}`)).map((c) => `${c.section}.${c.key.toLowerCase()}`);
    const merged = {
      ...all,
      changes: all.changes.filter((c) => !written.has(`${c.section}.${c.key.toLowerCase()}`)),
      superseded: [...all.superseded, ...dropped],
    };
    if (merged.superseded.length > 0 && !strict)
      log.info({ keys: merged.superseded }, `keys of a hand edit of ${label} were changed again since; the newer values stay`);
    if (merged.kept.length > 0) log.warn({ keys: merged.kept }, `a hand edit of ${label} merged back lacks keys; they are kept, not removed`);
    if (merged.layoutDropped) log.warn(`a hand edit of ${label} changed comments or sections that could not be merged back; only its keys were`);
    if (merged.changes.length === 0) return { snapshot: working, changes: [] };
    const snapshot = toSnapshot({ text: applyIniChanges(working.stored, merged.changes), label, schema, keyring, resolve, tolerate: true });
    if (strict) {
      if (snapshot.unreadable.length > 0) throw unreadableError(snapshot.unreadable);
      const changed = new Set(merged.changes.map((c) => `${c.section}.${c.key.toLowerCase()}`));
      const { issues } = checkDocument({ doc: snapshot.doc, schema, changed, resolve: resolve ?? NO_RESOLVE });
      if (issues.length > 0) throw validationFailed(issues);
    }
    const changes = merged.changes.map((change) => {
      const keyLower = change.key.toLowerCase();
      const oldValue = working.doc.byName.get(change.section)?.byKey.get(keyLower)?.value;
      return change.remove
        ? { section: change.section, key: change.key, oldValue, newValue: '', removed: true }
        : { section: change.section, key: change.key, oldValue, newValue: snapshot.doc.byName.get(change.section)?.byKey.get(keyLower)?.value ?? '' };
    });
    return { snapshot, changes };
  }

  /**
   * The edited file as a whole when config.ini is still what the editing began with (comments and
   * layout included), else its key changes merged three ways onto the file as it is now. Every
   * value it changes is held to today's rules, as a write through the API is.
   */
  function planEdit(edit: EditInput, working: Snapshot): { snapshot: Snapshot; changes: PlannedChange[] } {
    if (working.text === edit.read) {
      const next = planRestore(
        working,
        { text: edit.text, actor: edit.actor, source: 'rollback' },
        { label, schema, keyring, resolve, noun: `the edited ${label}` },
      );
      return { snapshot: next, changes: diffDocuments(working.doc, next.doc) };
    }
    let ancestor: IniDocument;
    try {
      ancestor = parseIni(edit.read);
    } catch {
      throw new AppError('CONFIG_CONFLICT', { details: `${label} was not valid when the editing began and has changed since; edit it again` });
    }
    const planned = planMerge({ ancestor, edited: Buffer.from(edit.text, 'utf8') }, working, { strict: true });
    log.info(`${label} changed while it was edited; the edit's keys were merged onto it`);
    return planned;
  }

  /** `section.key` the given writes changed. */
  function keysWrittenBy(writes: readonly (typeof installs)[number][]): Set<string> {
    const keys = new Set<string>();
    for (const { before, after } of writes) for (const c of diffDocuments(before, after)) keys.add(`${c.section}.${c.key.toLowerCase()}`);
    return keys;
  }

  /**
   * Of the versions the file recently had (what a write read, and what our recent writes put
   * there), the one `edited` differs from in the fewest keys: the copy its editor most likely read.
   */
  function closestAncestor(edited: IniDocument, fallback: IniDocument): { doc: IniDocument; later: readonly (typeof installs)[number][] } {
    const distance = (doc: IniDocument): number => diffDocuments(doc, edited).length;
    // The writes made after a version: those after the install that read it or wrote it.
    const from = installs.findIndex((install) => install.before === fallback);
    let best = { doc: fallback, later: from < 0 ? installs.slice() : installs.slice(from) };
    let bestDistance = distance(fallback);
    for (let i = installs.length - 1; i >= 0; i--) {
      const install = installs[i]!;
      for (const [doc, later] of [
        [install.after, installs.slice(i + 1)],
        [install.before, installs.slice(i)],
      ] as const) {
        const d = distance(doc);
        if (d < bestDistance) {
          best = { doc, later };
          bestDistance = d;
        }
      }
    }
    return best;
  }

  /** Carries our recent writes onto a file saved from a copy read before them, if it is one. */
  function planReapply(working: Snapshot): { snapshot: Snapshot; changes: PlannedChange[] } {
    const carry = staleEdit(working);
    if (!carry) return { snapshot: working, changes: [] };
    log.warn({ keys: carry.keys }, `${label} was saved from a copy read before the latest writes; their changes are carried onto it`);
    return planMerge(carry, working);
  }

  /**
   * Our recent replacements of the file. An editor that read the file before one of them and saves
   * after it (sed -i, a script, an editor's buffer) replaces it with a copy that lacks it.
   */
  const installs: { before: IniDocument; after: IniDocument; text: string; at: number; actor: Actor; source: RevisionSource }[] = [];

  let forget: NodeJS.Timeout | undefined;
  function remember(entry: (typeof installs)[number]): void {
    installs.push(entry);
    while (installs.length > 0 && (installs.length > MAX_REMEMBERED_WRITES || entry.at - installs[0]!.at > staleEditWindowMs)) installs.shift();
    // Whole documents are held: let them go once no copy can be recognised any more.
    clearTimeout(forget);
    forget = setTimeout(() => installs.splice(0), staleEditWindowMs);
    forget.unref();
  }

  function valueIn(doc: IniDocument, id: readonly [string, string]): string | undefined {
    return doc.byName.get(id[0])?.byKey.get(id[1])?.value;
  }

  /**
   * Whether `current` was saved from a copy read before some of our recent writes: it holds none
   * of the values those writes set and some of the values from before them (an edit made on top
   * of them would hold theirs, unless it changed back or over every one of them by hand). Then
   * the writes' changes are carried onto it; a key the edit itself changed to a third value keeps
   * the edit's.
   */
  function staleEdit(current: Snapshot): (HandEditReplaced & { keys: string[] }) | undefined {
    const latest = installs.at(-1);
    if (!latest || now() - latest.at > staleEditWindowMs || current.text === latest.text) return undefined;
    // The oldest copy it matches: the one the editor read, with every write since carried over.
    for (let i = 0; i < installs.length; i++) {
      const { before } = installs[i]!;
      const changed = diffDocuments(before, latest.after).map((c) => [c.section, c.key.toLowerCase()] as const);
      if (changed.length === 0) continue;
      // None of the writes' values is there, and some of the values from before them are: the
      // rest the copy's own edit changed, and keeps.
      if (
        changed.every((id) => valueIn(current.stored, id) !== valueIn(latest.after, id)) &&
        changed.some((id) => valueIn(current.stored, id) === valueIn(before, id))
      )
        return { ancestor: before, edited: Buffer.from(latest.text, 'utf8'), removals: true, keys: changed.map(([section, key]) => `${section}.${key}`) };
    }
    return undefined;
  }

  /** Writes whose directory events are still awaited (ended at close). */
  const windows = new Set<{ cancel(): void }>();
  /** Replaced files still watched, as promises: `idle()` waits for them (each may merge an edit back). */
  const watching = new Set<Promise<unknown>>();
  /** Cut the watches short, each reading its file until it rests (a stop). */
  const hurries = new Set<() => void>();
  /** The text a write is installing right now. */
  let writing: string | undefined;
  /** The check a change event started, if one runs (`idle()` waits for it: it may queue a write). */
  let staleCheck: Promise<void> | undefined;
  let closed = false;
  /** On a change of the file soon after our write: was it saved from a copy read before it? */
  let recheck = false;
  function checkForStaleEdit(): void {
    const latest = installs.at(-1);
    if (closed || !latest || now() - latest.at > staleEditWindowMs) return;
    // A change during a check may have come after its read: one more check once it is done.
    if (staleCheck) {
      recheck = true;
      return;
    }
    // After the events of the same change (a rename comes as two): one read for all of them.
    staleCheck = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => readFile(path))
      .then((bytes) => {
        // Most events are of our own writes: the file is what the latest one wrote, or the one
        // being written (its event can come before it is remembered).
        const ours = (text: string | undefined): boolean => text !== undefined && bytes.equals(Buffer.from(text, 'utf8'));
        if (closed || installs.length === 0 || ours(installs.at(-1)!.text) || ours(writing)) return;
        const current = toSnapshot({ text: decodeText(bytes, label), label, schema, keyring, resolve, tolerate: true });
        if (!staleEdit(current) || queue.some((pending) => pending.reapply)) return;
        queue.unshift(reapplyPending());
        draining ??= drain();
      })
      // Missing or broken now: the next write reports it.
      .catch(() => undefined)
      .finally(() => {
        staleCheck = undefined;
        if (recheck) {
          recheck = false;
          checkForStaleEdit();
        }
      });
  }

  /**
   * Whether an editor renamed its file over config.ini between a write's check and its rename: the
   * rename then replaced that file unseen, and only the directory's events tell. The kernel queues
   * them in the order things happened, so between the touch of the write's temp file just before
   * the check and that temp file's rename, a rename of config.ini is exactly that. Undefined when
   * there is no watch or the events do not come.
   */
  function watchTheWindow() {
    const target = basename(path);
    const events: [string | null, string | undefined][] = [];
    let temp: string | undefined;
    let report: (lost: boolean | 'unknown' | undefined) => void = () => undefined;
    const result = new Promise<boolean | 'unknown' | undefined>((resolve) => {
      report = resolve;
    });
    let timer: NodeJS.Timeout | undefined;
    const finish = (lost: boolean | 'unknown' | undefined): void => {
      stop?.();
      clearTimeout(timer);
      windows.delete(handle);
      report(lost);
    };
    const judge = (): void => {
      // The temp file's second rename event is ours (its first is its creation).
      const renames = events.flatMap(([name, kind], i) => (name === temp && kind === 'rename' ? [i] : []));
      if (renames.length < 2) return;
      const end = renames[1]!;
      let start = -1;
      for (let i = renames[0]!; i < end; i++) if (events[i]![0] === temp && events[i]![1] === 'change') start = i;
      const between = events.slice(start + 1, end);
      // An event without a name (the kernel's queue overflowed) may have been that rename.
      if (start < 0 || between.some(([name]) => name === null)) finish('unknown');
      else finish(between.some(([name, kind]) => name === target && kind === 'rename'));
    };
    const stop = reader.observe((name, kind) => {
      events.push([name, kind]);
      if (temp) judge();
    });
    const handle = {
      result,
      /** Marks the instant the file about to be replaced is pinned, as an event of the temp file. */
      mark(tempPath: string): void {
        if (!stop) return;
        temp = basename(tempPath);
        const at = new Date();
        utimesSync(tempPath, at, at);
        // Events this late mean a process too busy to say: the write is reported as possibly
        // having replaced an edit rather than not at all (after one more look at the events that
        // a long-blocked loop hands out after its timers).
        timer = setTimeout(() => setImmediate(() => finish('unknown')), 10_000);
        timer.unref();
      },
      cancel: (): void => finish(undefined),
    };
    windows.add(handle);
    if (!stop) finish(undefined);
    return handle;
  }

  /** A hand edit that cannot be brought back: said in the log and the audit (with the revision that replaced it, when known). */
  function announceLost(revision: string | null, { certain = true }: { certain?: boolean } = {}): void {
    if (revision && certain) log.error({ revision }, `a hand edit of ${label} was saved in the instant before a write replaced the file; that edit is lost`);
    if (revision && !certain)
      log.error({ revision }, `the directory's events did not tell in time whether a write of ${label} replaced a hand edit; one may be lost`);
    try {
      audit.record([
        {
          at: now(),
          actor: FILE_ACTOR,
          action: 'settings.hand_edit_lost',
          section: null,
          key: null,
          oldValue: null,
          newValue: null,
          result: 'refused',
          errorCode: 'CONFIG_CONFLICT',
          revision,
        },
      ]);
    } catch (error) {
      log.error({ err: error }, 'recording the audit log failed');
    }
  }

  /** A write of nobody's request that carries the recent writes onto a file saved from an older copy. */
  function reapplyPending(author = installs.at(-1)!, tries = 1): Pending {
    const settled = (error?: unknown): void => {
      if (!error) return;
      if (isAppError(error) && error.code === 'CONFIG_CONFLICT' && tries < MAX_CARRY_TRIES) {
        queue.unshift(reapplyPending(author, tries + 1));
        draining ??= drain();
      } else log.error({ err: error }, `recent writes could not be carried onto ${label}; an older copy replaced them`);
    };
    return { input: { changes: [], actor: author.actor, source: author.source }, reapply: true, resolve: () => settled(), reject: settled };
  }

  /** Merges a replaced hand edit back by the next write: first in the queue, so nothing waits between. */
  function mergeBack(merge: HandEditReplaced, tries = 1): void {
    if (tries === 1) log.warn(`a hand edit of ${label} landed in the instant before a write replaced it; it is merged back`);
    const settled = (error?: unknown): void => {
      if (!error) return;
      // Other edits kept landing: try again after them rather than give the edit up.
      if (isAppError(error) && error.code === 'CONFIG_CONFLICT' && tries < MAX_CARRY_TRIES) mergeBack(merge, tries + 1);
      else {
        log.error({ err: error }, `a hand edit of ${label} could not be merged back; it is lost`);
        announceLost(null);
      }
    };
    queue.unshift({ input: { changes: [], actor: FILE_ACTOR, source: 'file' }, merge, resolve: () => settled(), reject: settled });
    draining ??= drain();
  }

  async function commitGroup(group: Pending[]): Promise<void> {
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      let base: Snapshot;
      try {
        base = await readCurrent();
      } catch (error) {
        const appError = asAppError(error);
        settle({ outcomes: group.map((pending) => ({ pending, error: appError })), revision: null, sealed: [] });
        return;
      }
      if (!group.some((pending) => pending.reapply) && staleEdit(base)) group.unshift(reapplyPending());
      let working = base;
      const outcomes: Outcome[] = [];
      for (const pending of group) {
        const ifMatch = pending.input.ifMatch ?? pending.restore?.ifMatch;
        if (!etagMatches(ifMatch, working.etag)) {
          outcomes.push({
            pending,
            error: new AppError('PRECONDITION_FAILED', { details: `${label} has changed since the ETag given in If-Match` }),
          });
          continue;
        }
        try {
          const next = plan(pending, working);
          working = next.snapshot;
          outcomes.push({ pending, changes: next.changes });
        } catch (error) {
          outcomes.push({ pending, error: asAppError(error) });
        }
      }
      // Sensitive values typed in plain text are sealed by whichever write comes next.
      let sealed: PlannedChange[] = [];
      if (keyring && working.unsealed.length > 0 && working.unreadable.length === 0) {
        const result = sealUnsealed(working, { label, schema, keyring, resolve });
        working = result.snapshot;
        sealed = result.changes;
      }
      let announced: RevisionAnnouncement | undefined;
      if (working.text !== base.text) {
        let staged: StagedFile | undefined;
        const read = Buffer.from(base.text, 'utf8');
        const window = watchTheWindow();
        try {
          staged = await stageFile(path, working.text);
          // The newest accepted request names the revision (a rollback that only re-seals changes no value, yet writes).
          const accepted = [...outcomes].reverse().filter((o): o is Extract<Outcome, { changes: PlannedChange[] }> => !('error' in o));
          const last = accepted.find((o) => o.changes.some((c) => c.oldValue !== c.newValue)) ?? accepted[0];
          if (last) {
            const { pending } = last;
            announced = {
              revision: working.revision,
              actor: pending.seal?.actor ?? pending.input.actor,
              source: defaultSource(pending),
              ...(pending.restore?.rollbackOf ? { rollbackOf: pending.restore.rollbackOf } : {}),
              ...(pending.input.template ? { template: pending.input.template } : {}),
            };
            options.beforeCommit?.(announced);
          }
          const tempPath = staged.tempPath;
          writing = working.text;
          const landing = working.revision;
          const result = await staged.replaceIf(read, {
            beforeCheck: () => window.mark(tempPath),
            // Told before the directory's fsync is awaited: the worker may answer a later file meanwhile.
            afterRename: () => {
              if (announced) options.landed?.(landing);
            },
          });
          if (!result.installed) {
            window.cancel();
            await staged.discard();
            log.info({ attempt }, `${label} changed during a write; planning the writes again on top of it`);
            continue;
          }
          // What the write replaced is not what it read: an edit reached that file since the check
          // (written into it, or renamed into place before it was pinned), or does a moment later
          // through a descriptor opened before the rename. It is merged back once that file rests:
          // a half-written one is never taken for an edit.
          held.add(result.release);
          hurries.add(result.hurry);
          const ancestor = base.stored;
          const watched: Promise<void> = result.later.then((later) => {
            held.delete(result.release);
            hurries.delete(result.hurry);
            watching.delete(watched);
            if (!later || later.equals(read)) return;
            if (!closed) mergeBack({ ancestor, edited: later });
            else {
              log.error(`a hand edit of ${label} reached the file a write replaced as the store closed; it is lost`);
              announceLost(null);
            }
          });
          watching.add(watched);
        } catch (error) {
          window.cancel();
          await staged?.discard().catch(() => undefined);
          log.error({ err: error }, `writing ${label} failed`);
          const failure = writeFailure({ label, error });
          settle({ outcomes: outcomes.map((o) => ('error' in o ? o : { pending: o.pending, error: failure })), revision: null, sealed: [] });
          return;
        }
        const revision = working.revision;
        void window.result.then((lost) => {
          if (lost === true) announceLost(revision);
          else if (lost === 'unknown') announceLost(revision, { certain: false });
        });
        working = reader.adopt(working);
        remember({
          before: base.stored,
          after: working.stored,
          text: working.text,
          at: now(),
          actor: announced?.actor ?? FILE_ACTOR,
          source: announced?.source ?? 'file',
        });
        writing = undefined;
      }
      settle({ outcomes, revision: working.revision, sealed, snapshot: working, written: working.text !== base.text });
      if (announced) notifyCommitted(announced, { outcomes, sealed, before: base, after: working });
      return;
    }
    const conflict = new AppError('CONFIG_CONFLICT', { details: `${label} kept changing during the write; try again` });
    settle({ outcomes: group.map((pending) => ({ pending, error: conflict })), revision: null, sealed: [] });
  }

  interface Settlement {
    outcomes: Outcome[];
    revision: string | null;
    sealed: readonly PlannedChange[];
    snapshot?: Snapshot;
    written?: boolean;
  }

  function settle({ outcomes, revision, sealed, snapshot, written = false }: Settlement): void {
    let warnings: string[] = [];
    try {
      audit.record([
        ...outcomes.flatMap((outcome) => auditRows(outcome, { revision, written })),
        ...changeRows({ actor: SEAL_ACTOR, action: 'settings.seal', revision, at: now() }, sealed),
      ]);
    } catch (error) {
      // The file change has happened; failing the request now would misreport it. It is told instead.
      log.error({ err: error }, 'recording the audit log failed');
      warnings = [auditFailureWarning(error)];
    }
    if (sealed.length > 0) log.info({ keys: sealed.map((c) => `${c.section}.${c.key}`) }, `sealed values typed in plain text into ${label}`);
    for (const outcome of outcomes) {
      if ('error' in outcome) outcome.pending.reject(withWarnings(outcome.error, warnings));
      else
        outcome.pending.resolve({
          snapshot: snapshot!,
          changes: outcome.changes.map((change) => ({ ...change, changed: change.removed === true || change.oldValue !== change.newValue })),
          written,
          warnings,
        });
    }
  }

  /** The keys whose stored form changed: values set or removed, and plain text values sealed. */
  function notifyCommitted(
    announced: RevisionAnnouncement,
    { outcomes, sealed, before, after }: { outcomes: readonly Outcome[]; sealed: readonly PlannedChange[]; before: Snapshot; after: Snapshot },
  ): void {
    const keys = new Set<string>();
    for (const outcome of outcomes) {
      if ('error' in outcome) continue;
      for (const change of outcome.changes) if (change.removed || change.oldValue !== change.newValue) keys.add(changedKey(change));
    }
    for (const change of sealed) keys.add(changedKey(change));
    // Keys whose values changed through references or an overlay: clients re-read them too.
    if (resolve && (resolve.interpolation !== 'none' || resolve.environment !== undefined)) {
      for (const key of changedKeys(before.resolved.doc, after.resolved.doc)) keys.add(key);
    }
    try {
      options.afterCommit?.({ ...announced, keys: [...keys] });
    } catch (error) {
      log.error({ err: error }, `announcing a new ${label} revision failed`);
    }
  }

  async function drain(): Promise<void> {
    // Never done before `draining` is assigned (below), so its reset at the end is not undone.
    await Promise.resolve();
    while (queue.length > 0) {
      const group = queue.splice(0, maxGroup);
      try {
        await commitGroup(group);
      } catch (error) {
        log.error({ err: error }, 'settings write group failed');
        for (const pending of group) pending.reject(error);
      }
    }
    // In the same step as the last look at the queue: a write queued by a caller resumed by the
    // last settle (before a later callback could clear this) would otherwise wait for no drain.
    draining = undefined;
  }

  function enqueue(pending: Omit<Pending, 'resolve' | 'reject'>): Promise<UpdateResult> {
    return new Promise<UpdateResult>((resolve, reject) => {
      queue.push({ ...pending, resolve, reject });
      draining ??= drain();
    });
  }

  return {
    read: reader.read,
    lastGood: reader.lastGood,
    update: (input) => enqueue({ input }),
    restore: (restore) => enqueue({ input: { changes: [], actor: restore.actor }, restore }),
    seal: (seal) => enqueue({ input: { changes: [], actor: seal.actor }, seal }),
    edit: (edit) => enqueue({ input: { changes: [], actor: edit.actor, source: 'cli' }, edit }),
    hurry(): void {
      for (const hurry of [...hurries]) hurry();
    },
    async idle() {
      while (draining || staleCheck || watching.size > 0) await (draining ?? staleCheck ?? Promise.race(watching));
    },
    close(): void {
      closed = true;
      for (const window of [...windows]) window.cancel();
      for (const release of held) release();
      reader.close();
    },
  };
}
