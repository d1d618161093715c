/**
 * Example-based tests of src/ini/document.ts: the configparser dialect (strict, no interpolation,
 * no inline comments, empty lines allowed in values) as read by parseIni, and the minimal-diff
 * writer applyIniChanges. Property tests and the cross-check against Python's configparser live
 * in round-trip.property.test.ts.
 */
import { describe, expect, it } from 'vitest';
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
  type IniDocument,
} from '../../src/ini/document.js';

/** The INI_SYNTAX error parseIni throws for `text` (fails the test when it parses). */
function syntaxErrorOf(text: string): AppError {
  try {
    parseIni(text);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('INI_SYNTAX');
    return error as AppError;
  }
  throw new Error(`expected INI_SYNTAX, but the text parsed: ${JSON.stringify(text)}`);
}

function syntaxLine(text: string): unknown {
  return syntaxErrorOf(text).data.line;
}

function valueAt(text: string, section: string, key: string): string | undefined {
  return getEntry(parseIni(text), section, key)?.value;
}

/** Every section → [key as written, value] pairs, in file order. */
function contents(doc: IniDocument): Array<[string, Array<[string, string]>]> {
  return doc.sections.map((s) => [s.name, s.entries.map((e): [string, string] => [e.key, e.value])]);
}

describe('parseIni: entries and sections', () => {
  it('when a file has sections with "key = value" lines, then values are trimmed and sections keep file order', () => {
    const doc = parseIni('[b]\nx =   1  \n[a]\ny=2\n');
    expect(contents(doc)).toEqual([
      ['b', [['x', '1']]],
      ['a', [['y', '2']]],
    ]);
  });

  it('when a key uses ":" as separator, then it is read like "="', () => {
    expect(contents(parseIni('[s]\nhost: example.org\nport : 8080\nempty:\n'))).toEqual([
      [
        's',
        [
          ['host', 'example.org'],
          ['port', '8080'],
          ['empty', ''],
        ],
      ],
    ]);
  });

  it('when a line holds both "=" and ":", then the key ends at the first of them', () => {
    const doc = parseIni('[s]\nurl = http://h:80/a=b\nmap: a=b:c\n');
    expect(getEntry(doc, 's', 'url')?.value).toBe('http://h:80/a=b');
    expect(getEntry(doc, 's', 'map')?.value).toBe('a=b:c');
  });

  it('when a value contains ";" or "#", then they are kept (there are no inline comments)', () => {
    const text = '[s]\npwd = a;b#c\nnote = value ; not a comment\nhash = x # y\nlead = #starts\nsemi = ;starts\n';
    const doc = parseIni(text);
    expect(getEntry(doc, 's', 'pwd')?.value).toBe('a;b#c');
    expect(getEntry(doc, 's', 'note')?.value).toBe('value ; not a comment');
    expect(getEntry(doc, 's', 'hash')?.value).toBe('x # y');
    expect(getEntry(doc, 's', 'lead')?.value).toBe('#starts');
    expect(getEntry(doc, 's', 'semi')?.value).toBe(';starts');
  });

  it('when a value contains "%", then it is literal (no interpolation)', () => {
    expect(valueAt('[s]\np = 100%\nq = %(home)s/x\n', 's', 'q')).toBe('%(home)s/x');
    expect(valueAt('[s]\np = 100%\n', 's', 'p')).toBe('100%');
  });

  it('when keys are looked up in another case, then they match, and the entry keeps the spelling of the file', () => {
    const doc = parseIni('[s]\nMaxConn = 5\n');
    const entry = getEntry(doc, 's', 'MAXCONN');
    expect(entry).toMatchObject({ key: 'MaxConn', keyLower: 'maxconn', value: '5' });
    expect(getEntry(doc, 's', 'maxconn')).toBe(entry);
  });

  it('when section names differ only in case, then they are distinct sections (names are case-sensitive)', () => {
    const doc = parseIni('[App]\na = 1\n[app]\na = 2\n');
    expect(getEntry(doc, 'App', 'a')?.value).toBe('1');
    expect(getEntry(doc, 'app', 'a')?.value).toBe('2');
    expect(getEntry(doc, 'APP', 'a')).toBeUndefined();
  });

  it('when a header has spaces or "]" inside the brackets, then the name is kept verbatim', () => {
    const doc = parseIni('  [ my app ]  \na = 1\n[x]]\nb = 2\n');
    expect(doc.sections.map((s) => s.name)).toEqual([' my app ', 'x]']);
  });

  it('when lines start with "#" or ";" (indented or not), then they are comments', () => {
    const doc = parseIni('# top\n[s]\n; c1\n   # c2\na = 1\n\t; c3\n');
    expect(contents(doc)).toEqual([['s', [['a', '1']]]]);
  });

  it('when a key has an empty value, then the value is the empty string', () => {
    expect(valueAt('[s]\na =\nb=   \n', 's', 'a')).toBe('');
    expect(valueAt('[s]\na =\nb=   \n', 's', 'b')).toBe('');
  });

  it('when key lines are indented equally, then each is its own key, including the first one after the header', () => {
    const doc = parseIni('[s]\n    a = 1\n    b = 2\n');
    expect(contents(doc)).toEqual([
      [
        's',
        [
          ['a', '1'],
          ['b', '2'],
        ],
      ],
    ]);
  });

  it('when a key line is indented deeper than the previous key line, then it is part of the previous value', () => {
    const doc = parseIni('[s]\n  a = 1\n    b = 2\n  c = 3\n');
    expect(contents(doc)).toEqual([
      [
        's',
        [
          ['a', '1\nb = 2'],
          ['c', '3'],
        ],
      ],
    ]);
  });

  it('when the file is empty or only comments and blank lines, then it has no sections', () => {
    expect(parseIni('').sections).toEqual([]);
    expect(parseIni('\uFEFF').sections).toEqual([]);
    expect(parseIni('# c\n\n; d\n   \n').sections).toEqual([]);
  });

  it('when a line contains Unicode whitespace around the separator, then it is trimmed as Python does', () => {
    const doc = parseIni('[s]\n\u3000key\u00a0=\u2003value\u00a0\n');
    expect(getEntry(doc, 's', 'key')?.value).toBe('value');
  });
});

describe('parseIni: multi-line values', () => {
  it('when lines after a key are indented deeper, then they continue the value, each trimmed', () => {
    const doc = parseIni('[s]\nlist = a\n    b  \n\tc\nnext = 1\n');
    const entry = getEntry(doc, 's', 'list')!;
    expect(entry.value).toBe('a\nb\nc');
    expect(entry.firstLine).toBe(1);
    expect(entry.lastLine).toBe(3);
    expect(getEntry(doc, 's', 'next')?.value).toBe('1');
  });

  it('when a blank line is followed by a deeper-indented line, then the blank line is kept inside the value', () => {
    const entry = getEntry(parseIni('[s]\nv = a\n\n   \n  b\n'), 's', 'v')!;
    expect(entry.value).toBe('a\n\n\nb');
    expect(entry.lastLine).toBe(4);
  });

  it('when a full-line comment sits between continuation lines, then it is skipped', () => {
    const entry = getEntry(parseIni('[s]\nv = a\n  # hidden\n; hidden too\n  b\n'), 's', 'v')!;
    expect(entry.value).toBe('a\nb');
    expect(entry.lastLine).toBe(4);
  });

  it('when blank lines trail a value, then they are dropped and lastLine is the last value line', () => {
    const doc = parseIni('[s]\nv = a\n  b\n\n\n[t]\nw = 1\n');
    const entry = getEntry(doc, 's', 'v')!;
    expect(entry.value).toBe('a\nb');
    expect(entry.lastLine).toBe(2);
  });

  it('when the first line of a value is empty, then the value starts with a line break', () => {
    expect(valueAt('[s]\nv =\n  a\n  b\n', 's', 'v')).toBe('\na\nb');
  });

  it('when a deeper-indented line looks like a header or a key, then it is still part of the value', () => {
    expect(valueAt('[s]\nv = a\n  [other]\n  k = x\n', 's', 'v')).toBe('a\n[other]\nk = x');
  });

  it('when a line directly after a header is indented, then it is a key, not a continuation', () => {
    expect(contents(parseIni('[s]\n      a = 1\n'))).toEqual([['s', [['a', '1']]]]);
  });
});

describe('parseIni: INI_SYNTAX errors name the 1-based line', () => {
  it('when a section is defined twice, then the second header line is reported', () => {
    const error = syntaxErrorOf('[a]\nx = 1\n\n[b]\n[a]\n');
    expect(error.data.line).toBe(5);
    expect(error.message).toContain('line 5');
  });

  it('when a key is repeated in another case in one section, then the repeat is reported', () => {
    expect(syntaxLine('[s]\nName = 1\nother = 2\nNAME = 3\n')).toBe(4);
  });

  it('when the same key appears in two different sections, then it is not an error', () => {
    expect(contents(parseIni('[a]\nk = 1\n[b]\nk = 2\n'))).toEqual([
      ['a', [['k', '1']]],
      ['b', [['k', '2']]],
    ]);
  });

  it('when a key appears before any header, then its line is reported (after comments and blank lines)', () => {
    expect(syntaxLine('k = v\n[s]\n')).toBe(1);
    expect(syntaxLine('# c\n\n  ; d\nk = v\n[s]\n')).toBe(4);
  });

  it('when a line is neither a key, a header nor a comment, then it is reported', () => {
    expect(syntaxLine('[s]\na = 1\njust words\n')).toBe(3);
  });

  it('when a key is empty, then its line is reported', () => {
    expect(syntaxLine('[s]\na = 1\n= v\n')).toBe(3);
    expect(syntaxLine('[s]\n  : v\n')).toBe(2);
  });

  it('when a header is malformed, then its line is reported', () => {
    expect(syntaxLine('[s]\na = 1\n[unterminated\n')).toBe(3);
    expect(syntaxLine('[]\n')).toBe(1);
  });

  it('when a header has text after "]", then it is refused (intended divergence: Python reads [a] x as section "a")', () => {
    expect(syntaxLine('[s]\n[a] x\n')).toBe(2);
  });

  it('when a non-header line starts with "[", then it is refused (intended divergence: Python reads "[x = 1" as key "[x")', () => {
    expect(syntaxLine('[s]\n[x = 1\n')).toBe(2);
  });

  it('when lines end in CRLF, lone CR or follow a BOM, then line numbers still count lines', () => {
    expect(syntaxLine('\uFEFF[s]\r\na = 1\r\nbad\r\n')).toBe(3);
    expect(syntaxLine('[s]\ra = 1\rbad\r')).toBe(3);
  });

  it('when continuation lines, comments and blank lines come first, then they count towards the line number', () => {
    expect(syntaxLine('[s]\nv = a\n  b\n# c\n\n  ; d\n[s]\n')).toBe(7);
  });
});

describe('serializeIni', () => {
  it.each([
    ['LF', '[s]\na = 1\n'],
    ['CRLF with BOM', '\uFEFF[s]\r\na = 1\r\n'],
    ['no trailing newline', '[s]\na = 1'],
    ['mixed terminators and lone CR', '[s]\r\na = 1\n\rb = 2\r\n'],
    ['blank and whitespace-only lines', '\n  \n[s]\n\t\n'],
    ['empty', ''],
  ])('when a file (%s) is parsed and serialized, then the text is identical', (_name, text) => {
    expect(serializeIni(parseIni(text))).toBe(text);
  });
});

describe('applyIniChanges: editing existing entries', () => {
  it('when one value changes, then only that line changes and the key keeps its spelling and spacing', () => {
    const text = '# head\n[s]\nMaxConn   =  5\nother=1\n';
    const out = applyIniChanges(parseIni(text), [{ section: 's', key: 'maxconn', value: '10' }]);
    expect(out).toBe('# head\n[s]\nMaxConn   =  10\nother=1\n');
  });

  it('when the entry used ":", then the rewritten line uses "=" and keeps the spacing around it', () => {
    const doc = parseIni('[s]\nkey : old\ntight:old\n[t]\n  Ind\t:  old\n');
    const out = applyIniChanges(doc, [
      { section: 's', key: 'key', value: 'new' },
      { section: 's', key: 'tight', value: 'new' },
      { section: 't', key: 'ind', value: 'new' },
    ]);
    expect(out).toBe('[s]\nkey = new\ntight=new\n[t]\n  Ind\t=  new\n');
  });

  it('when a value is set to or from the empty string, then the line stays well spaced', () => {
    const doc = parseIni('[s]\na = x\nb =\nc=\n');
    const out = applyIniChanges(doc, [
      { section: 's', key: 'a', value: '' },
      { section: 's', key: 'b', value: 'y' },
      { section: 's', key: 'c', value: 'z' },
    ]);
    expect(out).toBe('[s]\na =\nb = y\nc=z\n');
  });

  it('when a value becomes multi-line, then it is written as tab-indented continuation lines deeper than the key', () => {
    const out = applyIniChanges(parseIni('[s]\n  list = a\n  next = 1\n'), [{ section: 's', key: 'list', value: 'a\n\nb' }]);
    expect(out).toBe('[s]\n  list = a\n  \t\n  \tb\n  next = 1\n');
    expect(valueAt(out, 's', 'list')).toBe('a\n\nb');
    expect(valueAt(out, 's', 'next')).toBe('1');
  });

  it('when a multi-line value becomes single-line, then its continuation and inner comment lines go, trailing blanks and later comments stay', () => {
    const text = '[s]\nv = a\n  # inner\n  b\n\n# after\nw = 2\n';
    const out = applyIniChanges(parseIni(text), [{ section: 's', key: 'v', value: 'z' }]);
    expect(out).toBe('[s]\nv = z\n\n# after\nw = 2\n');
  });

  it('when a multi-line entry is edited and a new key is added to its section in one call, then the new key follows the rewritten entry', () => {
    const text = '[s]\na = 1\nlist = x\n   y\n   z\n\n# trailer\n[t]\nb = 2\n';
    const doc = parseIni(text);
    const out = applyIniChanges(doc, [
      { section: 's', key: 'list', value: 'p\nq' },
      { section: 's', key: 'added', value: 'new' },
    ]);
    expect(out).toBe('[s]\na = 1\nlist = p\n\tq\nadded = new\n\n# trailer\n[t]\nb = 2\n');
    expect(contents(parseIni(out))).toEqual([
      [
        's',
        [
          ['a', '1'],
          ['list', 'p\nq'],
          ['added', 'new'],
        ],
      ],
      ['t', [['b', '2']]],
    ]);
  });

  it('when a BOM + CRLF file is edited, then the BOM, every CRLF and every untouched byte are kept', () => {
    const text = '\uFEFF; config\r\n[db]\r\nhost = old\r\nport = 5432\r\n\r\n[web]\r\nurl = http://x\r\n';
    const out = applyIniChanges(parseIni(text), [{ section: 'db', key: 'host', value: 'new\nline' }]);
    const before = Buffer.from(text, 'utf8');
    const after = Buffer.from(out, 'utf8');
    const start = before.indexOf('host = old');
    const end = start + Buffer.byteLength('host = old\r\n');
    expect(after.subarray(0, start)).toEqual(before.subarray(0, start));
    expect(after.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(after.subarray(after.length - (before.length - end))).toEqual(before.subarray(end));
    expect(after.subarray(start, after.length - (before.length - end)).toString('utf8')).toBe('host = new\r\n\tline\r\n');
    // Every line break, generated ones included, is CRLF.
    expect(out.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  });

  it('when the last entry of a file without a trailing newline is edited, then the file still has none', () => {
    const out = applyIniChanges(parseIni('[s]\na = 1\nb = 2'), [{ section: 's', key: 'b', value: 'x\ny' }]);
    expect(out).toBe('[s]\na = 1\nb = x\n\ty');
  });

  it('when changes name a key that exists in another section, then only the named section changes', () => {
    const out = applyIniChanges(parseIni('[a]\nk = 1\n[b]\nk = 1\n'), [{ section: 'b', key: 'K', value: '2' }]);
    expect(out).toBe('[a]\nk = 1\n[b]\nk = 2\n');
  });
});

describe('applyIniChanges: adding keys and sections', () => {
  it("when a key is new, then it goes right after the last value line of its section, with that entry's indentation", () => {
    const text = '[s]\n  a = 1\n  list = x\n     y\n\n# about t\n[t]\n';
    const out = applyIniChanges(parseIni(text), [{ section: 's', key: 'b', value: '2' }]);
    expect(out).toBe('[s]\n  a = 1\n  list = x\n     y\n  b = 2\n\n# about t\n[t]\n');
  });

  it('when a key is added to an empty section, then it goes right after the header', () => {
    const text = '[empty]\n# nothing yet\n\n[t]\nb = 2\n';
    const out = applyIniChanges(parseIni(text), [{ section: 'empty', key: 'k', value: 'v' }]);
    expect(out).toBe('[empty]\nk = v\n# nothing yet\n\n[t]\nb = 2\n');
  });

  it('when a key is added to an empty section followed by a deeper-indented header, then the next section is not swallowed', () => {
    // Without care the new unindented key line would turn "  [t]" into a continuation of its value.
    const text = '[s]\n\n  [t]\n  x = 1\n';
    const out = applyIniChanges(parseIni(text), [{ section: 's', key: 'k', value: 'v\nw' }]);
    expect(contents(parseIni(out))).toEqual([
      ['s', [['k', 'v\nw']]],
      ['t', [['x', '1']]],
    ]);
    expect(out.endsWith('\n\n  [t]\n  x = 1\n')).toBe(true);
  });

  it('when a key is added to the last section of a file without a trailing newline, then the file still has none', () => {
    expect(applyIniChanges(parseIni('[s]\na = 1'), [{ section: 's', key: 'b', value: '2' }])).toBe('[s]\na = 1\nb = 2');
  });

  it('when a section is added to a file without a trailing newline, then it is separated by a blank line and the file still has no trailing newline', () => {
    expect(applyIniChanges(parseIni('[a]\nx = 1'), [{ section: 'b', key: 'y', value: '2' }])).toBe('[a]\nx = 1\n\n[b]\ny = 2');
  });

  it('when a section is added to a file ending with a blank line, then no second blank line is added', () => {
    expect(applyIniChanges(parseIni('[a]\nx = 1\n\n'), [{ section: 'b', key: 'y', value: '2' }])).toBe('[a]\nx = 1\n\n[b]\ny = 2\n');
  });

  it('when a section is added to an empty file, then the file is just that section', () => {
    expect(applyIniChanges(parseIni(''), [{ section: 'b', key: 'y', value: '2' }])).toBe('[b]\ny = 2\n');
  });

  it('when two sections with several keys are added in one call, then each gets its keys and they are separated by a blank line', () => {
    const out = applyIniChanges(parseIni('[a]\r\nx = 1\r\n'), [
      { section: 'b', key: 'k1', value: '1' },
      { section: 'c', key: 'k3', value: '3\n4' },
      { section: 'b', key: 'k2', value: '2' },
    ]);
    expect(out).toBe('[a]\r\nx = 1\r\n\r\n[b]\r\nk1 = 1\r\nk2 = 2\r\n\r\n[c]\r\nk3 = 3\r\n\t4\r\n');
  });

  it('when line terminators are mixed, then generated lines use the dominant one and untouched lines keep theirs', () => {
    const text = '[s]\r\na = 1\r\nb = 2\n';
    expect(applyIniChanges(parseIni(text), [{ section: 's', key: 'c', value: '3' }])).toBe('[s]\r\na = 1\r\nb = 2\nc = 3\r\n');
  });
});

describe('editIni: the cost of a write is the cost of its changes', () => {
  const text = '[a]\nx = 1\nlong = one\n  two\n\n[b]\ny = 2\n\n[c]\nz = 3\n';

  it("when values are rewritten in as many lines, then every untouched section and entry is the document's own object (nothing else was parsed again)", () => {
    const doc = parseIni(text);
    const edited = editIni(doc, [
      { section: 'a', key: 'long', value: 'three\nfour' },
      { section: 'c', key: 'Z', value: '30' },
    ]);
    expect(serializeIni(edited)).toBe('[a]\nx = 1\nlong = three\n\tfour\n\n[b]\ny = 2\n\n[c]\nz = 30\n');
    expect(edited.byName.get('b')).toBe(doc.byName.get('b'));
    expect(edited.byName.get('a')!.byKey.get('x')).toBe(doc.byName.get('a')!.byKey.get('x'));
    expect(getEntry(edited, 'a', 'long')).toMatchObject({ value: 'three\nfour', firstLine: 2, lastLine: 3 });
    expect(getEntry(edited, 'c', 'z')?.value).toBe('30');
  });

  it('when a value grows by a line, or a key is added, then the result is parsed whole and still reads right', () => {
    const doc = parseIni(text);
    const grown = editIni(doc, [{ section: 'a', key: 'x', value: '1\n2' }]);
    expect(grown.byName.get('b')).not.toBe(doc.byName.get('b'));
    expect(getEntry(grown, 'b', 'y')).toMatchObject({ value: '2', firstLine: 7 });
    const added = editIni(doc, [{ section: 'b', key: 'w', value: 'new' }]);
    expect(getEntry(added, 'b', 'w')?.value).toBe('new');
    expect(getEntry(added, 'c', 'z')).toMatchObject({ value: '3', firstLine: 10 });
  });

  it("when serializeEdit is given a text that is not the document's, then it serializes the edit whole rather than splice into it", () => {
    const doc = parseIni(text);
    const edited = editIni(doc, [{ section: 'b', key: 'y', value: '20' }]);
    const expected = '[a]\nx = 1\nlong = one\n  two\n\n[b]\ny = 20\n\n[c]\nz = 3\n';
    expect(serializeEdit({ doc, text, edited })).toBe(expected);
    expect(serializeEdit({ doc, text: `${text}# more\n`, edited })).toBe(expected);
  });
});

describe('unrepresentableReason', () => {
  it.each([
    ['NUL', 'a\u0000b'],
    ['a C0 control (U+0001)', 'a\u0001b'],
    ['escape (U+001B)', '\u001b[31m'],
    ['carriage return', 'a\rb'],
    ['CRLF', 'a\r\nb'],
    ['vertical tab', 'a\u000bb'],
    ['form feed', 'a\u000cb'],
    ['file separator (U+001C, Python whitespace)', 'a\u001cb'],
    ['DEL', 'a\u007fb'],
    ['NEL (U+0085)', 'a\u0085b'],
    ['a C1 control (U+009B)', 'a\u009bb'],
    ['line separator (U+2028)', 'a\u2028b'],
    ['paragraph separator (U+2029)', 'a\u2029b'],
    ['an unpaired high surrogate', 'a\ud800b'],
    ['an unpaired low surrogate', '\udc00'],
    ['a leading space', ' a'],
    ['a trailing space', 'a '],
    ['a leading tab', '\ta'],
    ['a trailing no-break space', 'a\u00a0'],
    ['a leading ideographic space', '\u3000a'],
    ['a continuation line with a leading space', 'a\n b'],
    ['a line with trailing whitespace before a line break', 'a \nb'],
    ['a whitespace-only inner line', 'a\n \nb'],
    ['a continuation line starting with "#"', 'a\n#b'],
    ['a continuation line starting with ";"', 'a\n;b'],
    ['a trailing empty line', 'a\n'],
    ['several trailing empty lines', 'a\nb\n\n'],
    ['only a line break', '\n'],
  ])('when a value contains %s, then it is refused with a reason', (_what, value) => {
    expect(unrepresentableReason(value)).toEqual(expect.any(String));
  });

  it.each([
    ['the empty string', ''],
    ['";" and "#" inside a line', 'a;b#c'],
    ['a first line starting with "#"', '#not a comment'],
    ['a first line starting with ";"', ';x'],
    ['Python interpolation syntax', '%(x)s and 100%'],
    ['quotes and backticks', `"double" 'single' \`cmd\``],
    ['"=" and ":"', 'a=b:c = d'],
    ['a header and a key on continuation lines', 'first\n[section]\nk = v'],
    ['Unicode and emoji', 'grüße 日本 😀'],
    ['an inner tab and inner no-break space', 'a\tb\u00a0c'],
    ['interior empty lines', 'a\n\n\nb'],
    ['an empty first line', '\nb'],
    ['a zero-width space and a BOM character', '\u200ba\ufeff'],
    ['backslashes', 'C:\\dir\\n'],
  ])('when a value contains %s, then it is accepted and reads back identically once written', (_what, value) => {
    expect(unrepresentableReason(value)).toBeUndefined();
    const base = '\uFEFF[s]\r\n  k = old\r\n    old2\r\n[t]\r\nx = 1\r\n';
    for (const change of [
      { section: 's', key: 'k', value },
      { section: 's', key: 'n', value },
      { section: 'new', key: 'n', value },
    ]) {
      const out = applyIniChanges(parseIni(base), [change]);
      const decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(out, 'utf8'));
      const reread = parseIni(decoded);
      expect(getEntry(reread, change.section, change.key)?.value).toBe(value);
      expect(getEntry(reread, 't', 'x')?.value).toBe('1');
    }
  });

  it('when a value is refused for whitespace, a comment-like line or a trailing empty line, then writing it anyway would indeed change it', () => {
    for (const value of [' a', 'a\t', 'a\n b', 'a\n#b', 'a\n;b', 'a\n', 'a\n\u3000']) {
      expect(unrepresentableReason(value)).toEqual(expect.any(String));
      const out = applyIniChanges(parseIni('[s]\nk = 1\n'), [{ section: 's', key: 'k', value }]);
      expect(valueAt(out, 's', 'k')).not.toBe(value);
    }
  });
});

describe('pyStrip', () => {
  it('when text is surrounded by Python whitespace (including U+001C..U+001F, U+0085, U+3000), then exactly that is removed', () => {
    expect(pyStrip('\u001c\u0085 \t\u3000a b\u2028\u00a0\u000b')).toBe('a b');
    expect(pyStrip('\u200ba\ufeff')).toBe('\u200ba\ufeff');
  });
});
