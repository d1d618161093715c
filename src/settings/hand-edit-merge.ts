/**
 * A hand edit that a write replaced in the instant before its rename, merged back key by key:
 * three ways, between what the write had read (`ancestor`), the hand edit (`edited`) and the
 * file as it is now (`current`). In the order things happened the hand edit came first, so a key
 * the write (or anything since) changed keeps its newer value; every other key the edit set,
 * added or removed is carried over. Works on the stored form: sealed values are copied as they
 * are, and plain text a hand typed is sealed by the write that carries it, as always.
 */
import type { IniChange, IniDocument } from '../ini/document.js';

export interface HandEditMerge {
  /** What to apply to `current`. */
  readonly changes: readonly IniChange[];
  /** `section.key` the edit changed that something else changed too (the newer value stays, unless `editWins`). */
  readonly superseded: readonly string[];
  /** `section.key` the edit lacks that were not removed (`removals` off). */
  readonly kept: readonly string[];
  /** The edit changed more than key values (comments, blank lines, spacing, order): that part is not carried over. */
  readonly layoutDropped: boolean;
}

function valueAt(doc: IniDocument, section: string, keyLower: string): string | undefined {
  return doc.byName.get(section)?.byKey.get(keyLower)?.value;
}

/** Every `section`/`keyLower` pair in either document, each once, in file order. */
function keysOf(...docs: IniDocument[]): { section: string; keyLower: string; key: string }[] {
  const seen = new Set<string>();
  const keys: { section: string; keyLower: string; key: string }[] = [];
  for (const doc of docs) {
    for (const section of doc.sections) {
      for (const entry of section.entries) {
        const id = `${section.name}\u0000${entry.keyLower}`;
        if (seen.has(id)) continue;
        seen.add(id);
        keys.push({ section: section.name, keyLower: entry.keyLower, key: entry.key });
      }
    }
  }
  return keys;
}

export interface MergeInput {
  readonly ancestor: IniDocument;
  readonly edited: IniDocument;
  readonly current: IniDocument;
  /** The edit came last (`confhub edit` saved after a write): on a key both changed, the edit's value wins. */
  readonly editWins?: boolean;
  /** Keys the edit lacks are removed (default). Off where the edit was read from a file someone else may still have been writing. */
  readonly removals?: boolean;
}

export function mergeHandEdit({ ancestor, edited, current, editWins = false, removals = true }: MergeInput): HandEditMerge {
  const changes: IniChange[] = [];
  const superseded: string[] = [];
  const kept: string[] = [];
  for (const { section, keyLower, key } of keysOf(edited, ancestor)) {
    const before = valueAt(ancestor, section, keyLower);
    const after = valueAt(edited, section, keyLower);
    if (before === after) continue;
    const now = valueAt(current, section, keyLower);
    if (now === after) continue;
    if (now !== before) {
      superseded.push(`${section}.${keyLower}`);
      if (!editWins) continue;
    }
    if (after === undefined && !removals) kept.push(`${section}.${keyLower}`);
    else changes.push(after === undefined ? { section, key, value: '', remove: true } : { section, key, value: after });
  }
  return { changes, superseded, kept, layoutDropped: layoutChanged(ancestor, edited) };
}

/**
 * Whether the edit did more than set, add or remove keys: its comments, or its sections apart
 * from the ones it added, differ from the ancestor's. Blank lines and spacing are not counted.
 */
function layoutChanged(ancestor: IniDocument, edited: IniDocument): boolean {
  const skeleton = (doc: IniDocument, known: IniDocument): string => {
    const keyLines = new Set<number>();
    for (const section of doc.sections) for (const entry of section.entries) for (let i = entry.firstLine; i <= entry.lastLine; i++) keyLines.add(i);
    const added = new Set(doc.sections.filter((s) => !known.byName.has(s.name)).map((s) => s.headerLine));
    return doc.lines
      .filter((line, i) => !keyLines.has(i) && !added.has(i) && line.trim() !== '')
      .map((line) => line.trim())
      .join('\n');
  };
  return skeleton(ancestor, edited) !== skeleton(edited, ancestor);
}
