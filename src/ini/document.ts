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
const TRIM = new RegExp(`^[${WS}]+|[${WS}]+$`, 'gu');
const TRIM_END = new RegExp(`[${WS}]+$`, 'u');
const FIRST_NON_WS = new RegExp(`[^${WS}]`, 'u');
const LINE_BREAK = /\r\n|\n|\r/g;
const SECTION_HEADER = /^\[(.+)\]$/su;
/** configparser's OPTCRE: the key runs to the first `=` or `:`. */
const OPTION_LINE = new RegExp(`^(.*?)[${WS}]*([=:])[${WS}]*(.*)$`, 'su');
/** Splits an existing entry's first line so a rewrite keeps its indentation and spacing. */
const ENTRY_PREFIX = new RegExp(`^([${WS}]*)(.*?)([${WS}]*)[=:]([${WS}]*)`, 'su');

export function pyStrip(text: string): string {
  return text.replace(TRIM, '');
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
}

function finishEntry(draft: EntryDraft): IniEntry {
  return Object.freeze({
    key: draft.key,
    keyLower: draft.keyLower,
    value: draft.valueLines.join('\n').replace(TRIM_END, ''),
    firstLine: draft.firstLine,
    lastLine: draft.lastLine,
  });
}

/** Parses INI text; throws AppError INI_SYNTAX naming the 1-based line on any malformed input. */
export function parseIni(text: string): IniDocument {
  const bom = text.startsWith('\uFEFF');
  const body = bom ? text.slice(1) : text;
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

  const sections: SectionDraft[] = [];
  const sectionIndex = new Map<string, SectionDraft>();
  const keyLines = new Map<SectionDraft, Map<string, number>>();
  let current: SectionDraft | undefined;
  let entry: EntryDraft | undefined;
  let indentLevel = 0;

  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const stripped = pyStrip(raw);
    if (stripped.startsWith('#') || stripped.startsWith(';')) continue;
    if (stripped === '') {
      // Blank lines belong to the value only if a deeper-indented line follows (trailing ones are trimmed).
      entry?.valueLines.push('');
      continue;
    }
    const indent = raw.search(FIRST_NON_WS);
    if (entry && indent > indentLevel) {
      entry.valueLines.push(stripped);
      entry.lastLine = i;
      continue;
    }
    indentLevel = indent;
    const header = SECTION_HEADER.exec(stripped);
    if (header) {
      const name = header[1]!;
      const existing = sectionIndex.get(name);
      if (existing) {
        throw syntaxError(i, `duplicate section [${name}] (first defined on line ${existing.headerLine + 1})`);
      }
      current = { name, headerLine: i, entries: [] };
      sections.push(current);
      sectionIndex.set(name, current);
      keyLines.set(current, new Map());
      entry = undefined;
      continue;
    }
    if (stripped.startsWith('[')) {
      throw syntaxError(i, 'malformed section header: expected [name] alone on the line');
    }
    if (!current) throw syntaxError(i, 'a key appears before any [section] header');
    const option = OPTION_LINE.exec(stripped);
    if (!option) throw syntaxError(i, `expected "key = value", a [section] header or a comment`);
    const key = option[1]!;
    if (key === '') throw syntaxError(i, 'empty key before "="');
    const keyLower = key.toLowerCase();
    const seen = keyLines.get(current)!;
    const firstSeen = seen.get(keyLower);
    if (firstSeen !== undefined) {
      throw syntaxError(i, `duplicate key "${key}" in section [${current.name}] (first defined on line ${firstSeen + 1})`);
    }
    seen.set(keyLower, i);
    entry = { key, keyLower, valueLines: [option[3]!], firstLine: i, lastLine: i };
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
  let out = doc.bom ? '\uFEFF' : '';
  for (let i = 0; i < doc.lines.length; i++) out += doc.lines[i]! + doc.eols[i]!;
  return out;
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
    return lines[i]!.slice(0, lines[i]!.search(FIRST_NON_WS));
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

/**
 * Applies changes and returns the new file text. Existing entries are rewritten in place (their
 * indentation and spacing kept, `:` normalised to `=`); new keys go after the last entry of their
 * section; new sections are appended. Values must pass unrepresentableReason first.
 */
export function applyIniChanges(doc: IniDocument, changes: readonly IniChange[]): string {
  const eol = dominantEol(doc);
  const lines = [...doc.lines];
  const eolsOut = [...doc.eols];
  /** line index → replacement lines (undefined entries removed) */
  const replaced = new Map<number, string[]>();
  const removed = new Set<number>();
  const appendedAfter = new Map<number, string[]>();
  const newSections = new Map<string, string[]>();

  for (const change of changes) {
    const section = doc.byName.get(change.section);
    const existing = section?.byKey.get(change.key.toLowerCase());
    if (change.remove) {
      if (existing) for (let i = existing.firstLine; i <= existing.lastLine; i++) removed.add(i);
    } else if (section && existing) {
      const prefix = ENTRY_PREFIX.exec(lines[existing.firstLine]!)!;
      const [, indent = '', , before = '', afterRaw = ''] = prefix;
      const after = afterRaw === '' && existing.value === '' ? (before === '' ? '' : ' ') : afterRaw;
      replaced.set(existing.firstLine, renderEntry({ indent, before, after }, existing.key, change.value));
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

  const outLines: string[] = [];
  const outEols: string[] = [];
  // Untouched lines keep their own terminator; generated lines take the file's dominant one.
  const pushGenerated = (text: string): void => {
    if (outEols.length > 0 && outEols[outEols.length - 1] === '') outEols[outEols.length - 1] = eol;
    outLines.push(text);
    outEols.push(eol);
  };
  for (let i = 0; i < lines.length; i++) {
    const replacement = replaced.get(i);
    if (replacement) replacement.forEach(pushGenerated);
    else if (!removed.has(i)) {
      outLines.push(lines[i]!);
      outEols.push(eolsOut[i]!);
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
  if (doc.eols.length > 0 && doc.eols[doc.eols.length - 1] === '' && outEols.length > 0) outEols[outEols.length - 1] = '';
  return serializeIni({ bom: doc.bom, lines: outLines, eols: outEols });
}
