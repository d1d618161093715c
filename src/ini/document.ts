/**
 * The INI dialect of config.ini and system.ini: what Python's configparser (strict, no
 * interpolation, no inline comments, empty lines allowed in values) reads and writes, because
 * that is what wrote the installed base. Every reader and writer of those files goes through
 * this module.
 *
 * The document keeps the file's lines verbatim, so an edit rewrites only the lines of the
 * entries it touches: comments, blank lines, order, spacing, CRLF and a BOM stay byte-identical.
 */
import { AppError } from '../core/errors.js';

/** Python's str.isspace() set: configparser strips and measures indentation with it. */
const WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LINE_BREAK = /\r\n|\n|\r/g;
/** Splits an existing entry's first line so a rewrite keeps its indentation and spacing. */
const ENTRY_PREFIX = new RegExp(`^([${WS}]*)(.*?)([${WS}]*)[=:]([${WS}]*)`, 'su');

/**
 * One UTF-16 code unit of WS (the set holds no character outside the BMP, so code units and
 * code points agree). The parser reads every line of the file through this rather than through
 * regular expressions: it runs on each write and each read of a file with thousands of keys.
 */
function isSpace(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d) || (code >= 0x1c && code <= 0x1f);
  if (code < 0x85) return false;
  return (
    code === 0x85 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000
  );
}

/** Index of the first character of `text` from `from` on that is not WS (`text.length` if none). */
function skipSpace(text: string, from: number): number {
  let i = from;
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** End of `text` before `to` once trailing WS down to `from` is dropped. */
function trimSpaceEnd(text: string, from: number, to: number): number {
  let end = to;
  while (end > from && isSpace(text.charCodeAt(end - 1))) end--;
  return end;
}

export function pyStrip(text: string): string {
  const start = skipSpace(text, 0);
  const end = trimSpaceEnd(text, start, text.length);
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

export interface IniEntry {
  /** The key as written in the file. */
  readonly key: string;
  /** Keys match case-insensitively (configparser's optionxform). */
  readonly keyLower: string;
  readonly value: string;
  /** 0-based index of the key line. */
  readonly firstLine: number;
  /** 0-based index of the last line holding part of the value. */
  readonly lastLine: number;
}

export interface IniSection {
  readonly name: string;
  readonly headerLine: number;
  readonly entries: readonly IniEntry[];
  /** Lowercased key → entry. */
  readonly byKey: ReadonlyMap<string, IniEntry>;
}

export interface IniDocument {
  readonly bom: boolean;
  readonly lines: readonly string[];
  /** Line terminator of each line as found ('' for a last line without one). */
  readonly eols: readonly string[];
  readonly sections: readonly IniSection[];
  readonly byName: ReadonlyMap<string, IniSection>;
}

function syntaxError(lineIndex: number, message: string): AppError {
  const line = lineIndex + 1;
  return new AppError('INI_SYNTAX', { message: `line ${line}: ${message}`, data: { line } });
}

interface EntryDraft {
  key: string;
  keyLower: string;
  valueLines: string[];
  firstLine: number;
  lastLine: number;
}

interface SectionDraft {
  name: string;
  headerLine: number;
  entries: EntryDraft[];
  /** Lowercased key → 0-based line it was first defined on. */
  keyLines: Map<string, number>;
}

function finishEntry(draft: EntryDraft): IniEntry {
  const lines = draft.valueLines;
  // A value's first line comes stripped; only the blank lines that followed it may trail.
  const joined = lines.length === 1 ? lines[0]! : lines.join('\n');
  return Object.freeze({
    key: draft.key,
    keyLower: draft.keyLower,
    value: lines.length === 1 ? joined : joined.slice(0, trimSpaceEnd(joined, 0, joined.length)),
    firstLine: draft.firstLine,
    lastLine: draft.lastLine,
  });
}

/** The lines of `body` and the terminator of each ('' for a last line without one). */
function splitLines(body: string): { lines: string[]; eols: string[] } {
  if (!body.includes('\r')) {
    const lines = body.split('\n');
    const last = lines.pop()!;
    const eols: string[] = new Array(lines.length).fill('\n');
    if (last !== '') {
      lines.push(last);
      eols.push('');
    }
    return { lines, eols };
  }
  const lines: string[] = [];
  const eols: string[] = [];
  let start = 0;
  for (const match of body.matchAll(LINE_BREAK)) {
    lines.push(body.slice(start, match.index));
    eols.push(match[0]);
    start = match.index + match[0].length;
  }
  if (start < body.length) {
    lines.push(body.slice(start));
    eols.push('');
  }
  return { lines, eols };
}

/** Index of the first `=` or `:` of `line` from `from` on, or -1: configparser's key runs to it. */
function separatorIndex(line: string, from: number): number {
  const equals = line.indexOf('=', from);
  const colon = line.indexOf(':', from);
  if (equals < 0) return colon;
  return colon < 0 ? equals : Math.min(equals, colon);
}

/**
 * The key and the value's first line of a key line whose text without leading and trailing WS is
 * `raw[indent, end)`, or why it is not one.
 */
function readKeyLine(raw: string, indent: number, end: number): { key: string; value: string } | string {
  const separator = separatorIndex(raw, indent);
  if (separator < 0) return 'expected "key = value", a [section] header or a comment';
  const key = raw.slice(indent, trimSpaceEnd(raw, indent, separator));
  if (key === '') return 'empty key before "="';
  return { key, value: raw.slice(skipSpace(raw, separator + 1), end) };
}

const HASH = 0x23;
const SEMICOLON = 0x3b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** Parses INI text; throws AppError INI_SYNTAX naming the 1-based line on any malformed input. */
export function parseIni(text: string): IniDocument {
  const bom = text.startsWith('\uFEFF');
  const { lines, eols } = splitLines(bom ? text.slice(1) : text);

  const sections: SectionDraft[] = [];
  const sectionIndex = new Map<string, SectionDraft>();
  let current: SectionDraft | undefined;
  let entry: EntryDraft | undefined;
  let indentLevel = 0;

  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    // The line without its leading and trailing WS is raw[indent, end).
    const indent = skipSpace(raw, 0);
    if (indent === raw.length) {
      // Blank lines belong to the value only if a deeper-indented line follows (trailing ones are trimmed).
      entry?.valueLines.push('');
      continue;
    }
    const first = raw.charCodeAt(indent);
    if (first === HASH || first === SEMICOLON) continue;
    const end = trimSpaceEnd(raw, indent, raw.length);
    if (entry && indent > indentLevel) {
      entry.valueLines.push(raw.slice(indent, end));
      entry.lastLine = i;
      continue;
    }
    indentLevel = indent;
    if (first === OPEN_BRACKET) {
      // `[name]` alone on the line, name not empty.
      if (end - indent < 3 || raw.charCodeAt(end - 1) !== CLOSE_BRACKET) {
        throw syntaxError(i, 'malformed section header: expected [name] alone on the line');
      }
      const name = raw.slice(indent + 1, end - 1);
      const existing = sectionIndex.get(name);
      if (existing) {
        throw syntaxError(i, `duplicate section [${name}] (first defined on line ${existing.headerLine + 1})`);
      }
      current = { name, headerLine: i, entries: [], keyLines: new Map() };
      sections.push(current);
      sectionIndex.set(name, current);
      entry = undefined;
      continue;
    }
    if (!current) throw syntaxError(i, 'a key appears before any [section] header');
    const option = readKeyLine(raw, indent, end);
    if (typeof option === 'string') throw syntaxError(i, option);
    const { key, value } = option;
    const keyLower = key.toLowerCase();
    const firstSeen = current.keyLines.get(keyLower);
    if (firstSeen !== undefined) {
      throw syntaxError(i, `duplicate key "${key}" in section [${current.name}] (first defined on line ${firstSeen + 1})`);
    }
    current.keyLines.set(keyLower, i);
    entry = { key, keyLower, valueLines: [value], firstLine: i, lastLine: i };
    current.entries.push(entry);
  }

  const finished = sections.map((draft): IniSection => {
    const entries = draft.entries.map(finishEntry);
    return Object.freeze({
      name: draft.name,
      headerLine: draft.headerLine,
      entries: Object.freeze(entries),
      byKey: new Map(entries.map((e) => [e.keyLower, e])),
    });
  });
  return Object.freeze({
    bom,
    lines: Object.freeze(lines),
    eols: Object.freeze(eols),
    sections: Object.freeze(finished),
    byName: new Map(finished.map((s) => [s.name, s])),
  });
}

export function serializeIni(doc: Pick<IniDocument, 'bom' | 'lines' | 'eols'>): string {
  const { lines, eols } = doc;
  const bom = doc.bom ? '\uFEFF' : '';
  const n = lines.length;
  if (n === 0) return bom;
  // A join makes a flat string; appending line by line makes a rope of thousands of pieces, which
  // hashing and writing the text each flatten first. Most files end every line alike: one join.
  let uniform = true;
  for (let i = 1; i < n - 1 && uniform; i++) uniform = eols[i] === eols[0];
  if (uniform) return bom + lines.join(eols[0]) + eols[n - 1];
  const parts: string[] = new Array(n * 2 + 1);
  parts[0] = bom;
  for (let i = 0; i < n; i++) {
    parts[2 * i + 1] = lines[i]!;
    parts[2 * i + 2] = eols[i]!;
  }
  return parts.join('');
}

/**
 * The text of `edited` (editIni's result for `doc`), made from `text`, the text of `doc`: while
 * no line moved, the lines that changed are spliced into it, at the cost of those lines and a copy
 * rather than of joining every line again. Otherwise, and should `text` not be `doc`'s text (its
 * length says), serializeIni.
 */
export function serializeEdit({ doc, text, edited }: { doc: IniDocument; text: string; edited: IniDocument }): string {
  if (doc.bom !== edited.bom || doc.lines.length !== edited.lines.length) return serializeIni(edited);
  const pieces: string[] = [];
  let copiedTo = 0;
  let offset = doc.bom ? 1 : 0;
  for (let i = 0; i < doc.lines.length; i++) {
    const end = offset + doc.lines[i]!.length + doc.eols[i]!.length;
    if (doc.lines[i] !== edited.lines[i] || doc.eols[i] !== edited.eols[i]) {
      pieces.push(text.slice(copiedTo, offset), edited.lines[i]!, edited.eols[i]!);
      copiedTo = end;
    }
    offset = end;
  }
  if (offset !== text.length) return serializeIni(edited);
  pieces.push(text.slice(copiedTo));
  return pieces.join('');
}

export function getEntry(doc: IniDocument, section: string, key: string): IniEntry | undefined {
  return doc.byName.get(section)?.byKey.get(key.toLowerCase());
}

/**
 * Why `value` cannot be stored so that it reads back identically, or undefined when it can.
 * The dialect trims every line of a value, reads an indented line starting with # or ; as a
 * comment and drops trailing empty lines; control characters and Unicode line separators are
 * refused outright so no value can smuggle a line break past other readers.
 */
export function unrepresentableReason(value: string): string | undefined {
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (char === '\n' || char === '\t') continue;
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) {
      return `control character U+${code.toString(16).toUpperCase().padStart(4, '0')} is not allowed`;
    }
    if (code === 0x2028 || code === 0x2029) return 'Unicode line and paragraph separators are not allowed';
    // for...of yields paired surrogates as one code point, so this is a lone half: the UTF-8 file would hold U+FFFD instead.
    if (code >= 0xd800 && code <= 0xdfff) return 'unpaired UTF-16 surrogates cannot be stored in a UTF-8 file';
  }
  const lines = value.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line !== pyStrip(line)) return `line ${i + 1} of the value starts or ends with whitespace, which the file format trims`;
    if (i > 0 && (line.startsWith('#') || line.startsWith(';'))) {
      return `line ${i + 1} of the value starts with "${line[0]}", which the file format reads as a comment`;
    }
  }
  if (lines.length > 1 && lines[lines.length - 1] === '') return 'the value ends with an empty line, which the file format drops';
  return undefined;
}

export interface IniChange {
  readonly section: string;
  readonly key: string;
  readonly value: string;
  /** The key's lines are removed (value ignored); a key that is not there is left alone. */
  readonly remove?: boolean;
}

function dominantEol(doc: Pick<IniDocument, 'eols'>): string {
  let crlf = 0;
  let lf = 0;
  for (const eol of doc.eols) {
    if (eol === '\r\n') crlf++;
    else if (eol === '\n') lf++;
  }
  return crlf > lf ? '\r\n' : '\n';
}

/**
 * Indentation for a key added to an empty section: that of the next header, if any. An unindented
 * key would turn a deeper-indented next header (and its keys) into continuation lines of its value.
 */
function nextHeaderIndent(lines: readonly string[], from: number): string {
  for (let i = from; i < lines.length; i++) {
    const stripped = pyStrip(lines[i]!);
    if (stripped === '' || stripped.startsWith('#') || stripped.startsWith(';')) continue;
    return lines[i]!.slice(0, skipSpace(lines[i]!, 0));
  }
  return '';
}

/** How an entry is laid out: its indentation and the spacing around `=`. */
interface EntryLayout {
  readonly indent: string;
  readonly before: string;
  readonly after: string;
}

function renderEntry({ indent, before, after }: EntryLayout, key: string, value: string): string[] {
  const [first, ...rest] = value.split('\n');
  // Continuation lines are indented deeper than the key, as configparser writes them.
  const head = first === '' ? `${indent}${key}${before}=` : `${indent}${key}${before}=${after}${first}`;
  return [head, ...rest.map((line) => `${indent}\t${line}`)];
}

/** An existing entry rewritten by a change. */
interface EntryEdit {
  readonly section: IniSection;
  readonly entry: IniEntry;
  readonly value: string;
  /** The lines written in place of the entry's. */
  readonly lines: readonly string[];
}

interface RenderedChanges {
  readonly lines: string[];
  readonly eols: string[];
  /** By the entry's key line. */
  readonly edits: ReadonlyMap<number, EntryEdit>;
  /** Every change rewrote an existing entry in as many lines as it had (no line moved). */
  readonly inPlace: boolean;
}

function renderChanges(doc: IniDocument, changes: readonly IniChange[]): RenderedChanges {
  const eol = dominantEol(doc);
  const { lines, eols } = doc;
  const edits = new Map<number, EntryEdit>();
  const removed = new Set<number>();
  const appendedAfter = new Map<number, string[]>();
  const newSections = new Map<string, string[]>();
  let deleted = false;

  for (const change of changes) {
    const section = doc.byName.get(change.section);
    const existing = section?.byKey.get(change.key.toLowerCase());
    if (change.remove) {
      if (existing) {
        deleted = true;
        for (let i = existing.firstLine; i <= existing.lastLine; i++) removed.add(i);
      }
    } else if (section && existing) {
      const prefix = ENTRY_PREFIX.exec(lines[existing.firstLine]!)!;
      const [, indent = '', , before = '', afterRaw = ''] = prefix;
      const after = afterRaw === '' && existing.value === '' ? (before === '' ? '' : ' ') : afterRaw;
      edits.set(existing.firstLine, {
        section,
        entry: existing,
        value: change.value,
        lines: renderEntry({ indent, before, after }, existing.key, change.value),
      });
      for (let i = existing.firstLine + 1; i <= existing.lastLine; i++) removed.add(i);
    } else if (section) {
      const last = section.entries[section.entries.length - 1];
      const anchor = last ? last.lastLine : section.headerLine;
      const indent = last ? (lines[last.firstLine]!.match(ENTRY_PREFIX)?.[1] ?? '') : nextHeaderIndent(lines, section.headerLine + 1);
      const list = appendedAfter.get(anchor) ?? [];
      list.push(...renderEntry({ indent, before: ' ', after: ' ' }, change.key, change.value));
      appendedAfter.set(anchor, list);
    } else {
      const list = newSections.get(change.section) ?? [];
      list.push(...renderEntry({ indent: '', before: ' ', after: ' ' }, change.key, change.value));
      newSections.set(change.section, list);
    }
  }

  const added = appendedAfter.size > 0 || newSections.size > 0;
  if (!added && !deleted && [...edits.values()].every(({ entry, lines: written }) => written.length === entry.lastLine - entry.firstLine + 1)) {
    // Each entry rewritten in as many lines: the same lines, a few replaced (the loop below gives
    // the same result, growing two arrays line by line).
    const outLines = [...lines];
    const outEols = [...eols];
    for (const { entry, lines: written } of edits.values()) {
      written.forEach((line, j) => {
        outLines[entry.firstLine + j] = line;
        outEols[entry.firstLine + j] = eol;
      });
    }
    if (eols.length > 0 && eols[eols.length - 1] === '') outEols[outEols.length - 1] = '';
    return { lines: outLines, eols: outEols, edits, inPlace: true };
  }

  const outLines: string[] = [];
  const outEols: string[] = [];
  // Untouched lines keep their own terminator; generated lines take the file's dominant one.
  const pushGenerated = (text: string): void => {
    if (outEols.length > 0 && outEols[outEols.length - 1] === '') outEols[outEols.length - 1] = eol;
    outLines.push(text);
    outEols.push(eol);
  };
  // The lines where something happens, in order: every other line is copied as it is.
  const stops = [...new Set([...edits.keys(), ...removed, ...appendedAfter.keys()])].sort((a, b) => a - b);
  let stop = 0;
  for (let i = 0; i < lines.length; i++) {
    if (i !== stops[stop]) {
      outLines.push(lines[i]!);
      outEols.push(eols[i]!);
      continue;
    }
    stop++;
    const edit = edits.get(i);
    if (edit) edit.lines.forEach(pushGenerated);
    else if (!removed.has(i)) {
      outLines.push(lines[i]!);
      outEols.push(eols[i]!);
    }
    appendedAfter.get(i)?.forEach(pushGenerated);
  }
  if (newSections.size > 0) {
    if (outLines.length > 0 && pyStrip(outLines[outLines.length - 1]!) !== '') pushGenerated('');
    let first = true;
    for (const [name, entryLines] of newSections) {
      if (!first) pushGenerated('');
      first = false;
      pushGenerated(`[${name}]`);
      entryLines.forEach(pushGenerated);
    }
  }
  // A file that ended without a line break still does.
  if (eols.length > 0 && eols[eols.length - 1] === '' && outEols.length > 0) outEols[outEols.length - 1] = '';
  return { lines: outLines, eols: outEols, edits, inPlace: false };
}

/**
 * Applies changes and returns the new file text. Existing entries are rewritten in place (their
 * indentation and spacing kept, `:` normalised to `=`); new keys go after the last entry of their
 * section; new sections are appended. Values must pass unrepresentableReason first.
 */
export function applyIniChanges(doc: IniDocument, changes: readonly IniChange[]): string {
  const { lines, eols } = renderChanges(doc, changes);
  return serializeIni({ bom: doc.bom, lines, eols });
}

/**
 * applyIniChanges, returning the parse of its result (serializeIni gives its text), made without
 * reading the whole text again when every change rewrites an existing entry in as many lines:
 * then each rewritten entry is parsed on its own, and every other line, entry and section is the
 * document's own. Writes of a file with thousands of keys cost what their changes cost, not what
 * the file does.
 *
 * Why an entry read on its own reads as it does in place: its key line keeps the indentation it
 * had, so the parser takes it for a key as before and measures its continuation lines against
 * the same depth; the first line after it that is neither blank nor a comment was not deep
 * enough to continue the old value, so it does not continue the new one either, and the parser
 * is in the same state there as before. Anything else (keys or sections added, an entry that
 * grows or shrinks, an entry that does not read back) is parsed whole.
 */
export function editIni(doc: IniDocument, changes: readonly IniChange[]): IniDocument {
  const rendered = renderChanges(doc, changes);
  return (rendered.inPlace ? editedInPlace(doc, rendered) : undefined) ?? parseIni(serializeIni({ bom: doc.bom, lines: rendered.lines, eols: rendered.eols }));
}

/** The one entry `lines` hold when read under a section header of their own, if they hold exactly one. */
function parseAlone(lines: readonly string[]): Pick<IniEntry, 'key' | 'value' | 'lastLine'> | undefined {
  if (lines.length === 1) {
    // What parseIni makes of a line under a header: the common case, read without the section.
    const raw = lines[0]!;
    const indent = skipSpace(raw, 0);
    const first = raw.charCodeAt(indent);
    if (indent === raw.length || first === HASH || first === SEMICOLON || first === OPEN_BRACKET) return undefined;
    const option = readKeyLine(raw, indent, trimSpaceEnd(raw, indent, raw.length));
    return typeof option === 'string' ? undefined : { ...option, lastLine: 1 };
  }
  try {
    const entries = parseIni(`[_]\n${lines.join('\n')}`).sections[0]!.entries;
    return entries.length === 1 ? entries[0] : undefined;
  } catch {
    // Parsed whole instead, which reports the line where it is in the file.
    return undefined;
  }
}

function editedInPlace(doc: IniDocument, { lines, eols, edits }: RenderedChanges): IniDocument | undefined {
  const replaced = new Map<IniSection, Map<IniEntry, IniEntry>>();
  for (const { section, entry, value, lines: written } of edits.values()) {
    const alone = parseAlone(written);
    if (alone?.key !== entry.key || alone.value !== value || alone.lastLine !== written.length) return undefined;
    const inSection = replaced.get(section) ?? new Map<IniEntry, IniEntry>();
    inSection.set(entry, Object.freeze({ ...entry, value }));
    replaced.set(section, inSection);
  }
  const sections = doc.sections.map((section): IniSection => {
    const inSection = replaced.get(section);
    if (!inSection) return section;
    const entries = section.entries.map((entry) => inSection.get(entry) ?? entry);
    return Object.freeze({ ...section, entries: Object.freeze(entries), byKey: new Map(entries.map((e) => [e.keyLower, e])) });
  });
  return Object.freeze({
    bom: doc.bom,
    lines: Object.freeze(lines),
    eols: Object.freeze(eols),
    sections: Object.freeze(sections),
    byName: new Map(sections.map((s) => [s.name, s])),
  });
}
