/**
 * The key-level difference between two revisions of config.ini, as history shows it: keys
 * (`section.key`, key lowercased) added, removed and changed, with the values of sensitive keys
 * masked. Documents are compared opened (plaintext), so a value sealed again under a new master
 * key is not a change, and a changed password is one even though both sides show `******`.
 */
import type { IniDocument } from '../ini/document.js';
import { MASK } from '../core/mask.js';
import { isSensitive, type FileSchema } from '../settings/schema.js';
import { fieldId } from '../settings/validate.js';
import { isEnvSection } from '../settings/env-sections.js';

export type ChangeKind = 'added' | 'removed' | 'changed';

export interface KeyChange {
  /** `section.key` */
  readonly key: string;
  readonly change: ChangeKind;
}

export interface StructuredDiff {
  readonly added: Record<string, string>;
  readonly removed: Record<string, string>;
  readonly changed: Record<string, { old: string; new: string }>;
}

function values(doc: IniDocument | undefined, schema: FileSchema): Map<string, { value: string; shown: string }> {
  const out = new Map<string, { value: string; shown: string }>();
  for (const section of doc?.sections ?? []) {
    for (const entry of section.entries) {
      const shown = entry.value !== '' && isSensitive(schema, section.name, entry.key) ? MASK : entry.value;
      out.set(fieldId(section.name, entry.key), { value: entry.value, shown });
    }
  }
  return out;
}

export function diffKeys(before: IniDocument | undefined, after: IniDocument, schema: FileSchema): { changes: KeyChange[]; diff: StructuredDiff } {
  const old = values(before, schema);
  const now = values(after, schema);
  const changes: KeyChange[] = [];
  // Null prototypes: keys are file content, never object members.
  const diff: StructuredDiff = { added: Object.create(null), removed: Object.create(null), changed: Object.create(null) };
  for (const [key, entry] of now) {
    const was = old.get(key);
    if (!was) {
      changes.push({ key, change: 'added' });
      diff.added[key] = entry.shown;
    } else if (was.value !== entry.value) {
      changes.push({ key, change: 'changed' });
      diff.changed[key] = { old: was.shown, new: entry.shown };
    }
  }
  for (const [key, entry] of old) {
    if (!now.has(key)) {
      changes.push({ key, change: 'removed' });
      diff.removed[key] = entry.shown;
    }
  }
  return { changes, diff };
}

const SUMMARY_KEYS = 3;

/** One line naming what changed, e.g. `gitea.user_pwd changed; portainer.base_url added`. */
export function summarize(changes: readonly KeyChange[], options: { initial: boolean; rollbackOf?: string; template?: string }): string {
  const prefix = options.rollbackOf ? `roll back to ${options.rollbackOf.slice(0, 12)}: ` : options.template ? `template ${options.template}: ` : '';
  if (options.initial) return `${prefix}first revision (${changes.length} keys)`;
  if (changes.length === 0) return `${prefix}no value changed (comments, layout or sealing only)`;
  const parts: string[] = [];
  for (const kind of ['changed', 'added', 'removed'] as const) {
    const keys = changes.filter((c) => c.change === kind).map((c) => c.key);
    if (keys.length === 0) continue;
    const named = keys.slice(0, SUMMARY_KEYS).join(', ');
    parts.push(`${named}${keys.length > SUMMARY_KEYS ? ` and ${keys.length - SUMMARY_KEYS} more` : ''} ${kind}`);
  }
  return `${prefix}${parts.join('; ')}`;
}

/**
 * `section.key` of every key added, removed or changed between two revisions, as the event log
 * names them: setting keys lowercased (they are case-insensitive), variable names as written.
 */
export function changedKeys(before: IniDocument | undefined, after: IniDocument): string[] {
  const valuesOf = (doc: IniDocument | undefined): Map<string, string> => {
    const out = new Map<string, string>();
    for (const section of doc?.sections ?? [])
      for (const entry of section.entries) out.set(`${section.name}.${isEnvSection(section.name) ? entry.key : entry.key.toLowerCase()}`, entry.value);
    return out;
  };
  const old = valuesOf(before);
  const now = valuesOf(after);
  const keys = [...now].filter(([key, value]) => old.get(key) !== value).map(([key]) => key);
  for (const key of old.keys()) if (!now.has(key)) keys.push(key);
  return keys;
}
