/**
 * fast-check generators for the INI property tests: values biased toward what the dialect treats
 * specially, and whole documents built from blocks (comments, headers, entries with continuation
 * lines) with random indentation, spacing, separators, line terminators and an optional BOM.
 */
import fc from 'fast-check';

/** Characters Python's str.isspace() accepts that neither reader treats as a line break. */
const ODD_SPACES = [' ', '\t', '\f', '\v', '\u001c', '\u001f', '\u0085', '\u00a0', '\u1680', '\u2003', '\u2028', '\u202f', '\u3000'];

export const indentArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  { weight: 3, arbitrary: fc.constantFrom(' ', '  ', '    ', '\t') },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...ODD_SPACES), { minLength: 1, maxLength: 3 }).map((a) => a.join('')) },
);

/** Extra (non-empty) indentation that makes a line deeper than the one it follows. */
const deeperArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(' ', '  ', '\t', '    ') },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...ODD_SPACES), { minLength: 1, maxLength: 3 }).map((a) => a.join('')) },
);

/** Spacing around a separator. */
const spaceArb: fc.Arbitrary<string> = fc.constantFrom('', ' ', ' ', '  ', '\t', ' \u00a0');

/** Pieces of a line that the dialect (or a careless writer) treats specially. */
const LINE_FRAGMENTS = [
  'a',
  'value',
  'Z9',
  ' ',
  '  ',
  '\t',
  '#',
  ';',
  ' ; c',
  ' # c',
  '=',
  ':',
  ' = ',
  '[x]',
  '[',
  ']',
  'k = v',
  'k: v',
  '%',
  '%(x)s',
  '$HOME',
  '"q"',
  "'q'",
  '`cmd`',
  '\\',
  'ü',
  '日本',
  '😀',
  '\u00a0',
  '\u3000',
  '\u0085',
  '\u2028',
  '\u2029',
  '\u0000',
  '\u0001',
  '\u000b',
  '\u000c',
  '\u001c',
  '\u001f',
  '\u007f',
  '\u009b',
  '\u200b',
  '\ufeff',
  'DEFAULT',
];

const fragmentArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...LINE_FRAGMENTS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 3 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 3 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 6 }) },
);

/** Text of one line (no line break), biased toward special characters. */
export const lineTextArb: fc.Arbitrary<string> = fc.array(fragmentArb, { maxLength: 5 }).map((parts) => parts.join('').replace(/[\r\n]/g, ''));

/** Values a client might send: line breaks of every kind, comment markers, lone surrogates, controls. */
export const valueArb: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fragmentArb },
      { weight: 4, arbitrary: fc.constantFrom('\n', '\n\n', '\r', '\r\n', '\n#', '\n;', '\n ', '\n\t', ' \n', '\n[section]', '\nk = v', '\n\u00a0') },
      { weight: 1, arbitrary: fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff') },
      { weight: 2, arbitrary: fc.string({ maxLength: 8 }) },
    ),
    { maxLength: 8 },
  )
  .map((parts) => parts.join(''));

/** Printable-ASCII keys the way hand-edited files spell them (case, inner spaces, punctuation). */
export const keyArb: fc.Arbitrary<string> = fc
  .stringMatching(/^[A-Za-z0-9_.$%@!?"'`~&*+,/<>|{}()\]-][A-Za-z0-9_.$%@!?"'`~&*+,/<>|{}()\][# ;-]{0,8}$/)
  .filter((key) => key === key.trim());

/** Section names: any text without a line break, except Python's special DEFAULT. */
export const sectionNameArb: fc.Arbitrary<string> = fc
  .oneof(
    fc.stringMatching(/^[A-Za-z0-9_.:-]{1,10}$/),
    fc.constantFrom('default', 'Default', 'a b', ' spaced ', 'x]', 'a] [b', 'k = v', 'grüße', '日本', '%(x)s', 'a;b', '#x', ';x', '[x', '😀'),
    lineTextArb,
  )
  .filter((name) => name !== '' && name !== 'DEFAULT' && !/[\r\n]/.test(name));

/** Names the API accepts for new keys and sections (see src/settings/names.ts). */
export const apiKeyNameArb: fc.Arbitrary<string> = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}$/);
export const apiSectionNameArb: fc.Arbitrary<string> = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,10}$/).filter((name) => name !== 'DEFAULT');

const commentLineArb: fc.Arbitrary<string> = fc
  .tuple(indentArb, fc.constantFrom('#', ';'), lineTextArb)
  .map(([indent, marker, text]) => `${indent}${marker}${text}`);

/** A comment or a blank (possibly whitespace-only) line. */
const fillerLineArb: fc.Arbitrary<string> = fc.oneof(indentArb, commentLineArb);

/** Junk for invalid lines: no separator, no bracket, no comment marker. */
const junkArb: fc.Arbitrary<string> = fc.stringMatching(/^[A-Za-z0-9_.!?'"-][A-Za-z0-9 _.!?'"-]{0,10}$/);

export interface DocumentOptions {
  /** Insert lines that make (or may make) the document invalid. */
  readonly invalid: boolean;
  /** Allow lone CR line terminators. */
  readonly loneCr: boolean;
}

function swapCase(text: string): string {
  return [...text].map((c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase())).join('');
}

const entryArb = fc.record({
  indent: indentArb,
  key: keyArb,
  before: spaceArb,
  sep: fc.constantFrom('=', ':'),
  after: spaceArb,
  value: lineTextArb,
  rest: fc.array(
    fc.oneof(
      // A continuation line: deeper than the key line, so it stays a continuation wherever the entry lands.
      { weight: 3, arbitrary: fc.tuple(deeperArb, lineTextArb).map(([deeper, text]) => ({ deeper, text })) },
      { weight: 1, arbitrary: indentArb },
      { weight: 1, arbitrary: commentLineArb },
    ),
    { maxLength: 4 },
  ),
  fillers: fc.array(fillerLineArb, { maxLength: 1 }),
});

const sectionArb = fc.record({
  indent: indentArb,
  name: sectionNameArb,
  trailing: spaceArb,
  entries: fc.array(entryArb, { maxLength: 4 }),
});

const mutationArb = fc.record({
  kind: fc.constantFrom('junk', 'emptyKey', 'badHeader', 'dupHeader', 'dupKey', 'keyFirst'),
  indent: indentArb,
  at: fc.nat(),
  pick: fc.nat(),
  junk: junkArb,
  sep: fc.constantFrom('=', ':'),
  space: spaceArb,
  key: keyArb,
});

const documentModelArb = (options: DocumentOptions) =>
  fc.record({
    pre: fc.array(fillerLineArb, { maxLength: 2 }),
    sections: fc.array(sectionArb, { maxLength: 4 }),
    mutations: options.invalid ? fc.oneof(fc.constant([]), fc.array(mutationArb, { minLength: 1, maxLength: 2 })) : fc.constant([]),
    style: fc.constantFrom('lf', 'crlf', 'mixed'),
    mixedEols: fc.array(options.loneCr ? fc.constantFrom('\n', '\r\n', '\r') : fc.constantFrom('\n', '\r\n'), { minLength: 1, maxLength: 16 }),
    finalEol: fc.boolean(),
    bom: fc.boolean(),
  });

type DocumentModel = ReturnType<typeof documentModelArb> extends fc.Arbitrary<infer T> ? T : never;

/** Makes `name` unique in `seen` (by `id`) with a numeric suffix. */
function unique(name: string, seen: Set<string>, id: (n: string) => string): string {
  let candidate = name;
  for (let i = 2; seen.has(id(candidate)); i++) candidate = `${name}${i}`;
  seen.add(id(candidate));
  return candidate;
}

function renderDocument(model: DocumentModel): string {
  const blocks: string[][] = model.pre.map((line) => [line]);
  const names: string[] = [];
  const keys: string[] = [];
  const seenNames = new Set<string>();
  const seenKeys = new Set<string>();
  for (const section of model.sections) {
    const name = unique(section.name, seenNames, (n) => n);
    names.push(name);
    blocks.push([`${section.indent}[${name}]${section.trailing}`]);
    for (const entry of section.entries) {
      const key = unique(entry.key, seenKeys, (k) => k.toLowerCase());
      keys.push(key);
      const rest = entry.rest.map((line) => (typeof line === 'string' ? line : `${entry.indent}${line.deeper}${line.text}`));
      blocks.push([`${entry.indent}${key}${entry.before}${entry.sep}${entry.after}${entry.value}`, ...rest]);
      for (const line of entry.fillers) blocks.push([line]);
    }
  }
  // Invalid lines go between blocks only, so continuation lines stay continuation lines.
  for (const m of model.mutations) {
    const at = m.kind === 'keyFirst' ? 0 : m.at % (blocks.length + 1);
    let lines: string[];
    switch (m.kind) {
      case 'junk':
        lines = [`${m.indent}${m.junk}`];
        break;
      case 'emptyKey':
        lines = [`${m.indent}${m.sep}${m.space}${m.junk}`];
        break;
      case 'badHeader':
        lines = [m.pick % 2 === 0 ? `${m.indent}[]` : `${m.indent}[${m.junk}`];
        break;
      case 'dupHeader':
        lines = names.length > 0 ? [`${m.indent}[${names[m.pick % names.length]}]`] : ['[dup]', `${m.indent}[dup]`];
        break;
      case 'dupKey':
        lines = [`${m.indent}${swapCase(keys.length > 0 ? keys[m.pick % keys.length]! : 'k')}${m.space}${m.sep} dup`];
        break;
      default:
        lines = [`${m.indent}${m.key}${m.space}${m.sep} first`];
    }
    blocks.splice(at, 0, lines);
  }

  const lines = blocks.flat();
  const eols: string[] = lines.map((_, i) => (model.style === 'lf' ? '\n' : model.style === 'crlf' ? '\r\n' : model.mixedEols[i % model.mixedEols.length]!));
  if (eols.length > 0 && !model.finalEol) eols[eols.length - 1] = '';
  return (model.bom ? '\uFEFF' : '') + lines.map((line, i) => line + eols[i]!).join('');
}

/**
 * A document as text. Section names are unique and keys are unique across the whole document
 * (case-insensitively), so a valid document stays valid even when a deeper-indented header or key
 * turns into a continuation line. Invalid lines are only inserted between blocks, so continuation
 * lines always stay continuation lines (their text is arbitrary and must never be read as a header
 * or key, where the known divergences from Python live).
 */
export function documentArb(options: DocumentOptions): fc.Arbitrary<string> {
  return documentModelArb(options).map(renderDocument);
}
