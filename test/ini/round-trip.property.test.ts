/**
 * Property tests of src/ini/document.ts, and a cross-check against the real Python configparser
 * (the legacy apphub reads and writes these files with it).
 *
 * Known, intended divergences from Python, never generated here (see document.test.ts for the
 * examples that pin our side down):
 * - Python's special [DEFAULT] section (its keys leak into every section there);
 * - a line starting with "[" that is not exactly "[name]": Python reads "[a] x" as section "a"
 *   and "[x = 1" as key "[x"; we refuse both as malformed headers;
 * - keys with characters outside printable ASCII (Python's str.lower and JS toLowerCase disagree
 *   on a few of them);
 * - lone CR line terminators are generated for our own round trips and for Python's reading
 *   (Python's universal newlines split on them as we do), but a writer never produces them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import {
  applyIniChanges,
  editIni,
  getEntry,
  parseIni,
  pyStrip,
  serializeEdit,
  serializeIni,
  unrepresentableReason,
  type IniChange,
  type IniDocument,
} from '../../src/ini/document.js';
import { apiKeyNameArb, apiSectionNameArb, documentArb, valueArb } from './arbitraries.js';

const representableValueArb = valueArb.filter((value) => unrepresentableReason(value) === undefined);

/** What the file holds once written: the text goes to disk as UTF-8 and is read back strictly. */
function throughUtf8(text: string): string {
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(text, 'utf8'));
}

/** Characters refused as a matter of policy (they would read back fine in our own parser). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these control characters are the policy.
const POLICY_REFUSED = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

type Target =
  | { kind: 'edit'; section: string; key: string; firstLine: number; lastLine: number }
  | { kind: 'addKey'; section: string; key: string; anchor: number }
  | { kind: 'addSection'; section: string; key: string };

/** Every change one could make to `doc`: edit any entry, add a key to any section, add a section. */
function targetsOf(doc: IniDocument, newKey: string, newSection: string): Target[] {
  const targets: Target[] = [];
  for (const section of doc.sections) {
    for (const entry of section.entries) {
      targets.push({ kind: 'edit', section: section.name, key: entry.key, firstLine: entry.firstLine, lastLine: entry.lastLine });
    }
    let key = newKey;
    while (section.byKey.has(key.toLowerCase())) key += '_';
    const last = section.entries[section.entries.length - 1];
    targets.push({ kind: 'addKey', section: section.name, key, anchor: last ? last.lastLine : section.headerLine });
  }
  let section = newSection;
  while (doc.byName.has(section)) section += '_';
  targets.push({ kind: 'addSection', section, key: newKey });
  return targets;
}

/** Every entry but the target, in file order. */
function othersOf(doc: IniDocument, target: { section: string; key: string }): Array<[string, string, string]> {
  return doc.sections.flatMap((s) =>
    s.entries
      .filter((e) => !(s.name === target.section && e.keyLower === target.key.toLowerCase()))
      .map((e): [string, string, string] => [s.name, e.key, e.value]),
  );
}

function apply(doc: IniDocument, target: Target, value: string): string {
  const change: IniChange = { section: target.section, key: target.key, value };
  return applyIniChanges(doc, [change]);
}

/** Offset in the text where 0-based line `index` starts (the text's length past the last line). */
function offsetOfLine(doc: IniDocument, index: number): number {
  let offset = doc.bom ? 1 : 0;
  for (let i = 0; i < index && i < doc.lines.length; i++) offset += doc.lines[i]!.length + doc.eols[i]!.length;
  return offset;
}

describe('property: a value is refused, or it is stored and reads back exactly', () => {
  const bases = [
    // BOM, CRLF, comments, a multi-line value with a blank line, an indented key, an empty section.
    '\uFEFF; managed by apphub\r\n[db]\r\nhost = localhost\r\n  Port: 5432\r\n\r\n[web]\r\nurls = a\r\n    b\r\n\r\n    c\r\n# end\r\n[empty]\r\n',
    // An empty section followed by a deeper-indented header.
    '[s]\n\n  [t]\n  x = 1\n',
    // Indented keys, no trailing newline.
    '[a]\n    k = v\n    w = %(k)s;#',
    '',
  ];

  it('when an arbitrary value is set anywhere, then either unrepresentableReason refuses it or the file reads it back exactly with all other keys unchanged', () => {
    fc.assert(
      fc.property(fc.constantFrom(...bases), fc.nat(), valueArb, (base, pick, value) => {
        const doc = parseIni(base);
        const targets = targetsOf(doc, 'NewKey', 'new.section');
        const target = targets[pick % targets.length]!;
        const reason = unrepresentableReason(value);
        if (reason !== undefined) {
          // The caller writes nothing then; the refusal must say why, and unless it is a
          // character-policy refusal, writing the value anyway must indeed lose it.
          expect(reason).toMatch(/\S/);
          if (!POLICY_REFUSED.test(value)) {
            let readBack: string | undefined;
            try {
              readBack = getEntry(parseIni(apply(doc, target, value)), target.section, target.key)?.value;
            } catch {
              readBack = undefined;
            }
            expect(readBack).not.toBe(value);
          }
          return;
        }
        const reread = parseIni(throughUtf8(apply(doc, target, value)));
        expect(getEntry(reread, target.section, target.key)?.value).toBe(value);
        expect(othersOf(reread, target)).toEqual(othersOf(doc, target));
        const names = doc.sections.map((s) => s.name);
        expect(reread.sections.map((s) => s.name)).toEqual(target.kind === 'addSection' ? [...names, target.section] : names);
      }),
      { numRuns: 1500 },
    );
  });

  it('when the value generator runs, then it produces both refused and accepted values (the property above is not vacuous)', () => {
    const samples = fc.sample(valueArb, { numRuns: 500, seed: 42 });
    const refused = samples.filter((v) => unrepresentableReason(v) !== undefined).length;
    expect(refused).toBeGreaterThan(50);
    expect(samples.length - refused).toBeGreaterThan(50);
    expect(samples.some((v) => v.includes('\n') && unrepresentableReason(v) === undefined)).toBe(true);
  });
});

describe('property: generated documents', () => {
  const docArb = documentArb({ invalid: false, loneCr: true });

  it('when a generated document is parsed and serialized, then the text is identical and an empty change list changes nothing', () => {
    fc.assert(
      fc.property(docArb, (text) => {
        const doc = parseIni(text);
        expect(serializeIni(doc)).toBe(text);
        expect(applyIniChanges(doc, [])).toBe(text);
      }),
      { numRuns: 400 },
    );
  });

  it('when one key is changed or added, then every line outside its entry is byte-identical and every other key keeps its value', () => {
    fc.assert(
      fc.property(docArb, fc.nat(), representableValueArb, apiKeyNameArb, apiSectionNameArb, (text, pick, value, newKey, newSection) => {
        const doc = parseIni(text);
        const targets = targetsOf(doc, newKey, newSection);
        const target = targets[pick % targets.length]!;
        const out = apply(doc, target, value);

        // The range of lines the change may touch: [first, last] (empty for insertions).
        const [first, last] =
          target.kind === 'edit'
            ? [target.firstLine, target.lastLine]
            : target.kind === 'addKey'
              ? [target.anchor + 1, target.anchor]
              : [doc.lines.length, doc.lines.length - 1];
        const prefixEnd = offsetOfLine(doc, first);
        const suffix = text.slice(offsetOfLine(doc, last + 1));
        expect(out.slice(0, prefixEnd)).toBe(text.slice(0, prefixEnd));
        expect(out.slice(out.length - suffix.length)).toBe(suffix);
        expect(out.length).toBeGreaterThan(prefixEnd + suffix.length);

        const reread = parseIni(out);
        expect(getEntry(reread, target.section, target.key)?.value).toBe(value);
        expect(othersOf(reread, target)).toEqual(othersOf(doc, target));
        // Exactly the value's lines were written in place of the entry (plus header and separator for a new section).
        const valueLines = value.split('\n').length;
        const lastLine = doc.lines[doc.lines.length - 1];
        const added = target.kind === 'addSection' ? valueLines + 1 + (lastLine !== undefined && pyStrip(lastLine) !== '' ? 1 : 0) : valueLines;
        // A lone CR before a generated blank line merges with its LF into one CRLF (a cosmetic loss of that blank line).
        if (!/\r(?!\n)/.test(text)) expect(reread.lines.length).toBe(doc.lines.length - (last - first + 1) + added);
        // A file without a trailing line break keeps none.
        if (text !== '' && text !== '\uFEFF') expect(/[\r\n]$/.test(out)).toBe(/[\r\n]$/.test(text));
      }),
      { numRuns: 600 },
    );
  });
});

/** Everything a document holds, as plain data (entries and sections compared field by field). */
function shapeOf(doc: IniDocument) {
  return {
    bom: doc.bom,
    lines: [...doc.lines],
    eols: [...doc.eols],
    sections: doc.sections.map((s) => ({ name: s.name, headerLine: s.headerLine, entries: s.entries.map((e) => ({ ...e })), byKey: [...s.byKey.keys()] })),
    byName: [...doc.byName.keys()],
  };
}

describe('property: editIni', () => {
  const docArb = documentArb({ invalid: false, loneCr: true });

  it('when values are set on a document, then the document editIni makes is exactly the parse of what applyIniChanges writes, and serializeEdit writes that text', () => {
    fc.assert(
      fc.property(
        docArb,
        fc.array(fc.tuple(fc.nat(), representableValueArb), { minLength: 1, maxLength: 3 }),
        apiKeyNameArb,
        apiSectionNameArb,
        (text, picks, newKey, newSection) => {
          const doc = parseIni(text);
          const targets = targetsOf(doc, newKey, newSection);
          // Mostly edits of existing entries (the in-place path), sometimes an added key or section;
          // each key once, as planChanges passes them.
          const byKey = new Map<string, IniChange>();
          for (const [pick, value] of picks) {
            const target = targets[pick % targets.length]!;
            byKey.set(`${target.section}\0${target.key.toLowerCase()}`, { section: target.section, key: target.key, value });
          }
          const changes = [...byKey.values()];
          const written = applyIniChanges(doc, changes);
          const edited = editIni(doc, changes);
          expect(serializeIni(edited)).toBe(written);
          expect(serializeEdit({ doc, text, edited })).toBe(written);
          expect(shapeOf(edited)).toEqual(shapeOf(parseIni(written)));
        },
      ),
      { numRuns: 800 },
    );
  });
});

/** Runs Python's configparser over every *.ini in a directory, once. */
const PYTHON_READER = `
import configparser, json, os, sys

class Recording(configparser.ConfigParser):
    """configparser collects malformed lines into one ParsingError raised at the end (so a later
    duplicate can be raised first); remember them to know the first failing line."""
    def __init__(self):
        super().__init__(interpolation=None, strict=True, empty_lines_in_values=True,
                         comment_prefixes=('#', ';'), inline_comment_prefixes=None)
        self.bad_lines = []

    def _handle_error(self, exc, fpname, lineno, line):
        self.bad_lines.append(lineno)
        return super()._handle_error(exc, fpname, lineno, line)

results = {}
directory = sys.argv[1]
for name in sorted(os.listdir(directory)):
    if not name.endswith('.ini'):
        continue
    with open(os.path.join(directory, name), encoding='utf-8-sig') as f:
        text = f.read()
    parser = Recording()
    try:
        parser.read_string(text, source=name)
    except configparser.Error as error:
        line = getattr(error, 'lineno', None)
        if line is None and getattr(error, 'errors', None):
            line = error.errors[0][0]
        lines = [n for n in [line] + parser.bad_lines if n is not None]
        results[name] = {'error': type(error).__name__, 'line': min(lines) if lines else None}
        continue
    results[name] = {'sections': [[s, list(parser._sections[s].items())] for s in parser.sections()]}
json.dump(results, sys.stdout)
`;

/** Section order and key order matter, so sections are [name, [[key_lowercased, value], ...]] pairs. */
type PythonResult = { error: string; line: number | null } | { sections: Array<[string, Array<[string, string]>]> };
const PYTHON_ERRORS = ['DuplicateSectionError', 'DuplicateOptionError', 'MissingSectionHeaderError', 'ParsingError'];

function ourResult(text: string): PythonResult {
  try {
    const doc = parseIni(text);
    return { sections: doc.sections.map((s) => [s.name, s.entries.map((e): [string, string] => [e.keyLower, e.value])]) };
  } catch (error) {
    if (error instanceof AppError && error.code === 'INI_SYNTAX') return { error: 'INI_SYNTAX', line: error.data.line as number };
    throw error;
  }
}

describe('cross-check against Python configparser', () => {
  const seed = Number(process.env.FC_SEED ?? Date.now() % 2_147_483_647);
  let dir = '';
  let python: Record<string, PythonResult> = {};
  const documents: Array<{ file: string; text: string }> = [];
  const writes: Array<{ file: string; source: string; target: Target; value: string }> = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'confhub-ini-xcheck-'));
    fc.sample(documentArb({ invalid: true, loneCr: true }), { numRuns: 300, seed }).forEach((text, i) => {
      const file = `doc-${String(i).padStart(3, '0')}.ini`;
      writeFileSync(join(dir, file), text, 'utf8');
      documents.push({ file, text });
    });
    const writeCases = fc.tuple(documentArb({ invalid: false, loneCr: false }), fc.nat(), representableValueArb, apiKeyNameArb, apiSectionNameArb);
    fc.sample(writeCases, { numRuns: 150, seed: seed + 1 }).forEach(([source, pick, value, newKey, newSection], i) => {
      const doc = parseIni(source);
      const targets = targetsOf(doc, newKey, newSection);
      const target = targets[pick % targets.length]!;
      const file = `write-${String(i).padStart(3, '0')}.ini`;
      writeFileSync(join(dir, file), apply(doc, target, value), 'utf8');
      writes.push({ file, source, target, value });
    });
    const script = join(dir, 'read_ini.py');
    writeFileSync(script, PYTHON_READER, 'utf8');
    python = JSON.parse(execFileSync('python3', [script, dir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as Record<string, PythonResult>;
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when ~300 random documents (valid and invalid) are read by both, then sections, keys, values and errors (with their line) agree', () => {
    let errors = 0;
    for (const { file, text } of documents) {
      const context = `${file} (FC_SEED=${seed}): ${JSON.stringify(text)}`;
      const theirs = python[file];
      expect(theirs, context).toBeDefined();
      // Parse exactly the bytes Python read.
      const ours = ourResult(readFileSync(join(dir, file), 'utf8'));
      if ('error' in theirs!) {
        errors++;
        expect(PYTHON_ERRORS, context).toContain(theirs.error);
        expect(ours, context).toEqual({ error: 'INI_SYNTAX', line: theirs.line });
      } else {
        expect(ours, context).toEqual(theirs);
      }
    }
    // Both outcomes must be well represented, or the comparison proves little.
    expect(errors).toBeGreaterThan(80);
    expect(documents.length - errors).toBeGreaterThan(120);
  });

  it('when applyIniChanges writes a value, then Python reads back exactly that value and the same document we read', () => {
    for (const { file, source, target, value } of writes) {
      const context = `${file} (FC_SEED=${seed}) ${JSON.stringify(target)} = ${JSON.stringify(value)} into ${JSON.stringify(source)}`;
      const theirs = python[file];
      expect(theirs, context).toBeDefined();
      expect(theirs, context).not.toHaveProperty('error');
      const sections = (theirs as { sections: Array<[string, Array<[string, string]>]> }).sections;
      const pyValue = sections.find(([name]) => name === target.section)?.[1].find(([key]) => key === target.key.toLowerCase())?.[1];
      expect(pyValue, context).toBe(value);
      expect(ourResult(readFileSync(join(dir, file), 'utf8')), context).toEqual(theirs);
    }
    expect(writes.some((w) => w.value.includes('\n'))).toBe(true);
  });
});
