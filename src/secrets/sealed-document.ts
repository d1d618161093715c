/**
 * config.ini as stored (sensitive values sealed) and as used (every sealed value opened). Both
 * threads open a stored document the same way; only the settings store seals. A sealed value is
 * only rewritten when its plaintext changes, so an unrelated write leaves its line byte-identical.
 */
import { AppError, type FieldIssue } from '../core/errors.js';
import { applyIniChanges, editIni, serializeEdit, serializeIni, unrepresentableReason, type IniChange, type IniDocument } from '../ini/document.js';
import { isSensitive, type FileSchema } from '../settings/schema.js';
import { fieldId } from '../settings/validate.js';
import { isSealed, openValue, sealValue, sealedKeyId, type Keyring } from './secret-box.js';

export interface OpenedDocument {
  /** Every sealed value opened: what the API returns, validation checks and renderers use. */
  readonly doc: IniDocument;
  /** `section.key` of sensitive values still stored in plain text (typed by hand): to be sealed. */
  readonly unsealed: readonly string[];
  /** Sealed values whose master key is not the current one (sealed before a rotation). */
  readonly staleKey: readonly string[];
  /** With `tolerate`: values that do not open (kept as stored in `doc`). */
  readonly unreadable: readonly FieldIssue[];
}

export function unreadableError(failures: readonly FieldIssue[]): AppError {
  return new AppError('SECRET_UNREADABLE', {
    details: `${failures.map((f) => f.message).join('; ')}; set the value again (through the API or as plain text in config.ini, which is sealed at once)`,
    data: { errors: failures },
  });
}

/**
 * Opens every sealed value of `stored`. Throws SECRET_UNREADABLE naming every value that does not
 * open (such a value is never passed on as a password), unless `tolerate` is set: then they are
 * listed in `unreadable` (the store lets a write replace them).
 */
export interface OpenDocumentInput {
  readonly stored: IniDocument;
  readonly schema: FileSchema;
  readonly keyring: Keyring | undefined;
  readonly tolerate?: boolean;
}

export function openDocument({ stored, schema, keyring, tolerate = false }: OpenDocumentInput): OpenedDocument {
  const opened: IniChange[] = [];
  const unsealed: string[] = [];
  const staleKey: string[] = [];
  const failures: FieldIssue[] = [];
  for (const section of stored.sections) {
    for (const entry of section.entries) {
      const field = fieldId(section.name, entry.key);
      if (!isSealed(entry.value)) {
        if (entry.value !== '' && isSensitive(schema, section.name, entry.key)) unsealed.push(field);
        continue;
      }
      if (!keyring) {
        failures.push({ field, code: 'SECRET_UNREADABLE', message: `${field} cannot be decrypted: no master key is configured` });
        continue;
      }
      try {
        const plain = openValue(keyring, field, entry.value);
        const reason = unrepresentableReason(plain);
        if (reason) throw new AppError('SECRET_UNREADABLE', { details: `${field} cannot be decrypted: ${reason}` });
        opened.push({ section: section.name, key: entry.key, value: plain });
        if (sealedKeyId(entry.value) !== keyring.current.id) staleKey.push(field);
      } catch (error) {
        failures.push({ field, code: 'SECRET_UNREADABLE', message: (error as AppError).details });
      }
    }
  }
  if (failures.length > 0 && !tolerate) throw unreadableError(failures);
  const doc = opened.length === 0 ? stored : editIni(stored, opened);
  return { doc, unsealed, staleKey, unreadable: failures };
}

export interface StoredValueChange {
  readonly section: string;
  readonly key: string;
  /** The plaintext value; sensitive values are sealed before they are written. */
  readonly value: string;
  /** The key is removed (value ignored). */
  readonly remove?: boolean;
}

/**
 * Applies plaintext changes to the stored document, sealing the values of sensitive keys, and
 * checks that the result reads back as intended and holds every other key unchanged.
 */
export interface ApplyStoredChangesInput {
  readonly stored: IniDocument;
  /** The text `stored` was parsed from, if known: the result is then spliced into it (serializeEdit). */
  readonly text?: string;
  readonly changes: readonly StoredValueChange[];
  readonly schema: FileSchema;
  readonly keyring: Keyring | undefined;
}

export function applyStoredChanges(input: ApplyStoredChangesInput): string {
  return sealChanges(input).text;
}

/** The changes applied and sealed: the new text and its parse (which checked it). */
function sealChanges({ stored, text: storedText, changes, schema, keyring }: ApplyStoredChangesInput): { text: string; stored: IniDocument } {
  if (changes.length === 0) return { text: serialize(stored), stored };
  const iniChanges: IniChange[] = changes.map((change) => ({
    section: change.section,
    key: change.key,
    value:
      keyring && !change.remove && change.value !== '' && isSensitive(schema, change.section, change.key)
        ? sealValue(keyring, fieldId(change.section, change.key), change.value)
        : change.value,
    ...(change.remove ? { remove: true } : {}),
  }));
  const next = editIni(stored, iniChanges);
  const text = storedText === undefined ? serializeIni(next) : serializeEdit({ doc: stored, text: storedText, edited: next });
  const has = (doc: IniDocument, c: IniChange): boolean => doc.byName.get(c.section)?.byKey.has(c.key.toLowerCase()) === true;
  const added = iniChanges.filter((c) => !c.remove && !has(stored, c)).length;
  const removed = iniChanges.filter((c) => c.remove && has(stored, c)).length;
  const count = (doc: IniDocument): number => doc.sections.reduce((n, s) => n + s.entries.length, 0);
  const wrong = iniChanges.filter((c) => (c.remove ? has(next, c) : next.byName.get(c.section)?.byKey.get(c.key.toLowerCase())?.value !== c.value));
  if (wrong.length > 0 || count(next) !== count(stored) + added - removed) {
    throw new AppError('INTERNAL_ERROR', {
      details: `config.ini would not read back as written (${wrong.map((c) => fieldId(c.section, c.key)).join(', ') || 'key count'})`,
    });
  }
  return { text, stored: next };
}

/**
 * applyStoredChanges for a document already opened, returning what openDocument would make of
 * the result without opening every sealed value again: only the values changed differ, and
 * `doc` (the opened document with the changes applied, as planChanges returns it) holds them.
 * So a write costs the same however many secrets the file holds.
 */
export interface ApplyOpenedChangesInput extends ApplyStoredChangesInput {
  /** What openDocument made of `stored` (staleKey is not carried on). */
  readonly opened: Pick<OpenedDocument, 'unsealed' | 'unreadable'>;
  /** The opened document with `changes` applied. */
  readonly doc: IniDocument;
}

export interface AppliedOpenedChanges extends Pick<OpenedDocument, 'doc' | 'unsealed' | 'unreadable'> {
  readonly text: string;
  readonly stored: IniDocument;
}

export function applyOpenedChanges({ opened, doc, ...input }: ApplyOpenedChangesInput): AppliedOpenedChanges {
  const next = sealChanges(input);
  const touched = new Set(input.changes.map((change) => fieldId(change.section, change.key)));
  const unsealed = opened.unsealed.filter((field) => !touched.has(field));
  for (const change of input.changes) {
    const value = next.stored.byName.get(change.section)?.byKey.get(change.key.toLowerCase())?.value ?? '';
    if (!isSealed(value) && value !== '' && isSensitive(input.schema, change.section, change.key)) unsealed.push(fieldId(change.section, change.key));
  }
  // A value just set opens: it was sealed with the current key.
  const unreadable = opened.unreadable.filter((issue) => !touched.has(issue.field));
  return { text: next.text, stored: next.stored, doc, unsealed, unreadable };
}

function serialize(doc: IniDocument): string {
  return applyIniChanges(doc, []);
}

/**
 * The stored text for a document to be written as a whole (a rollback): the text itself when
 * every sensitive value is sealed with the current key (byte for byte what was stored then),
 * else with those values sealed again.
 */
export interface ResealDocumentInput {
  readonly text: string;
  readonly stored: IniDocument;
  readonly opened: OpenedDocument;
  readonly schema: FileSchema;
  readonly keyring: Keyring | undefined;
}

export function resealDocument({ text, stored, opened, schema, keyring }: ResealDocumentInput): string {
  const again = [...opened.unsealed, ...opened.staleKey];
  if (again.length === 0 || !keyring) return text;
  const changes: StoredValueChange[] = [];
  for (const section of opened.doc.sections) {
    for (const entry of section.entries) {
      if (again.includes(fieldId(section.name, entry.key))) changes.push({ section: section.name, key: entry.key, value: entry.value });
    }
  }
  return applyStoredChanges({ stored, changes, schema, keyring });
}
