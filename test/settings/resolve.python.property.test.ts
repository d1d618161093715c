/**
 * Cross-check of src/settings/resolve.ts against Python's configparser.ExtendedInterpolation, which
 * the doc comment promises to follow to the letter: random documents are written to a temp dir,
 * one python3 run reads them all, and every key must agree. Python either returns a value (ours
 * must return the same value with no issue for the key) or raises an InterpolationError (ours must
 * report an issue for the key, of the matching kind).
 *
 * Never generated here, on purpose: a [DEFAULT] section (configparser's keys shared by every
 * section; confhub has none), overlays and [env:…] sections (confhub's own), key names that look
 * secret (the secret rule is confhub's own; the schema is empty so only the name rule could apply).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FieldIssue } from '../../src/core/errors.js';
import { parseIni, type IniDocument } from '../../src/ini/document.js';
import { resolveDocument, type ResolveResult } from '../../src/settings/resolve.js';
import { isSensitive, type FileSchema } from '../../src/settings/schema.js';
import { fieldId } from '../../src/settings/validate.js';

const NO_SCHEMA: FileSchema = new Map();

/** Section names: case matters (s0 / S0), dots, a space, and a ":" that no reference can name. */
const SECTION_NAMES = ['s0', 's1', 'S0', 'web', 'a', 'a.b', 'x y', 'x:y'];
/** Key names: case, a dot, a space; none looks secret and none is a chain key (c0, c1…). */
const KEY_NAMES = ['k0', 'k1', 'k2', 'Host', 'url', 'name', 'port', 'c', 'b.c', 'x y', 'Mixed_Case', 'dir'];
const MISSING_KEYS = ['nokey', 'K9', 'c99'];
const MISSING_SECTIONS = ['nosuch', 'S9', 'web2'];
const LITERALS = ['a', 'x y', 'http://', ':', '/', '{', '}', '-', 'k0', ' ', '%(k0)s', '#', ';'];
const BAD_SYNTAX = ['$', '$x', `\${`, `\${}`, `\${a:b:c}`, '$ {k0}', `\${k0`, '$}'];

type Fragment =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'ref'; readonly pick: number; readonly same: boolean; readonly missing: boolean; readonly spelling: 'exact' | 'key' | 'section' };

const fragmentArb: fc.Arbitrary<Fragment> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...LITERALS).map((text): Fragment => ({ kind: 'text', text })) },
  { weight: 2, arbitrary: fc.constant<Fragment>({ kind: 'text', text: '$$' }) },
  {
    weight: 7,
    arbitrary: fc
      .record({
        pick: fc.nat(),
        same: fc.boolean(),
        missing: fc.nat(9).map((n) => n === 0),
        // Which name is written in another case: keys still match, sections do not.
        spelling: fc.constantFrom<'exact' | 'key' | 'section'>('exact', 'exact', 'exact', 'key', 'section'),
      })
      .map((ref): Fragment => ({ kind: 'ref', ...ref })),
  },
  { weight: 1, arbitrary: fc.constantFrom(...BAD_SYNTAX).map((text): Fragment => ({ kind: 'text', text })) },
);

/** A value: one line mostly, sometimes a continuation line (configparser joins them with "\n"). */
const valueModelArb = fc.array(fc.array(fragmentArb, { maxLength: 4 }), { minLength: 1, maxLength: 2 });

const documentModelArb = fc.record({
  sections: fc.uniqueArray(
    fc.record({ name: fc.constantFrom(...SECTION_NAMES), keys: fc.uniqueArray(fc.constantFrom(...KEY_NAMES), { minLength: 1, maxLength: 5 }) }),
    { minLength: 1, maxLength: 4, selector: (s) => s.name },
  ),
  values: fc.array(valueModelArb, { minLength: 30, maxLength: 30 }),
  /** c0…c`length`, each referring to the one before, spread over the sections; c0 closes a cycle sometimes. */
  chain: fc.record({
    // Lengths around configparser's limit of 10 come often.
    length: fc.oneof(
      { weight: 3, arbitrary: fc.integer({ min: 0, max: 8 }) },
      { weight: 3, arbitrary: fc.constantFrom(9, 10, 11) },
      { weight: 1, arbitrary: fc.constantFrom(12, 13) },
    ),
    cycle: fc.nat(4).map((n) => n === 0),
    first: fc.constantFrom('end', '$$', 'x$$y', ''),
    placements: fc.array(fc.nat(), { minLength: 14, maxLength: 14 }),
    same: fc.array(fc.boolean(), { minLength: 14, maxLength: 14 }),
  }),
});

type DocumentModel = typeof documentModelArb extends fc.Arbitrary<infer T> ? T : never;

interface Generated {
  readonly text: string;
  /** Length of the chain of references (c`length` resolves `length` levels deep), or 0 without one. */
  readonly chainLength: number;
  readonly chainCycle: boolean;
  /** The chain ends in a value without "$" (one holding "$$" is a level of its own). */
  readonly chainEnd: boolean;
}

const flip = (name: string): string => (name === name.toLowerCase() ? name.toUpperCase() : name.toLowerCase());
const ref = (path: string): string => `\${${path}}`;

function renderDocument(model: DocumentModel): Generated {
  const sections = model.sections.map((s) => ({ name: s.name, entries: s.keys.map((key) => ({ key, value: '' })) }));
  const { chain } = model;
  const chainSections = Array.from({ length: chain.length + 1 }, (_, i) => sections[chain.placements[i]! % sections.length]!);
  // Every key exists before any value is written, so references pick among real targets.
  for (const [i, section] of chainSections.entries()) section.entries.push({ key: `c${i}`, value: '' });
  const everywhere = sections.flatMap((section) => section.entries.map((entry) => ({ section: section.name, key: entry.key })));

  const chainRef = ({ from, to }: { from: number; to: number }): string => {
    const target = chainSections[to]!;
    return target === chainSections[from] && chain.same[from] ? ref(`c${to}`) : ref(`${target.name}:c${to}`);
  };
  chainSections.forEach((section, i) => {
    const entry = section.entries.find((e) => e.key === `c${i}`)!;
    if (i > 0) entry.value = `<${chainRef({ from: i, to: i - 1 })}>`;
    else entry.value = chain.cycle && chain.length > 0 ? chainRef({ from: 0, to: chain.length }) : chain.first;
  });

  let slot = 0;
  for (const section of sections) {
    for (const entry of section.entries) {
      if (/^c\d+$/.test(entry.key)) continue;
      const lines = model.values[slot++ % model.values.length]!.map((fragments) =>
        fragments
          .map((fragment) => {
            if (fragment.kind === 'text') return fragment.text;
            if (fragment.same) {
              const key = fragment.missing ? MISSING_KEYS[fragment.pick % MISSING_KEYS.length]! : section.entries[fragment.pick % section.entries.length]!.key;
              return ref(fragment.spelling === 'exact' ? key : flip(key));
            }
            if (fragment.missing) {
              const other = everywhere[fragment.pick % everywhere.length]!;
              return fragment.pick % 2 === 0
                ? ref(`${MISSING_SECTIONS[fragment.pick % MISSING_SECTIONS.length]}:${other.key}`)
                : ref(`${other.section}:${MISSING_KEYS[fragment.pick % MISSING_KEYS.length]}`);
            }
            const target = everywhere[fragment.pick % everywhere.length]!;
            const name = fragment.spelling === 'section' ? flip(target.section) : target.section;
            return ref(`${name}:${fragment.spelling === 'key' ? flip(target.key) : target.key}`);
          })
          .join(''),
      );
      entry.value = lines.join('\n\t');
    }
  }
  const text = sections.map((section) => [`[${section.name}]`, ...section.entries.map((e) => `${e.key} = ${e.value}`)].join('\n')).join('\n\n');
  return { text: `${text}\n`, chainLength: chain.length, chainCycle: chain.cycle && chain.length > 0, chainEnd: !chain.first.includes('$') };
}

const PYTHON_RESOLVER = `
import configparser, json, os, sys

results = {}
directory = sys.argv[1]
for name in sorted(os.listdir(directory)):
    if not name.endswith('.ini'):
        continue
    parser = configparser.ConfigParser(
        interpolation=configparser.ExtendedInterpolation(),
        strict=True,
        empty_lines_in_values=True,
        comment_prefixes=('#', ';'),
        inline_comment_prefixes=None,
    )
    with open(os.path.join(directory, name), encoding='utf-8') as f:
        parser.read_string(f.read(), source=name)
    sections = []
    for section in parser.sections():
        keys = []
        for key in parser.options(section):
            try:
                keys.append([key, {'value': parser.get(section, key)}])
            except configparser.InterpolationError as error:
                keys.append([key, {'error': type(error).__name__}])
        sections.append([section, keys])
    results[name] = sections
json.dump(results, sys.stdout)
`;

type PythonOutcome = { value: string } | { error: string };
type PythonDocument = Array<[string, Array<[string, PythonOutcome]>]>;

/** Our codes each Python error may show as; INVALID_REFERENCE beyond syntax only for a key referring to a key that fails. */
const CODES_FOR: Record<string, readonly string[]> = {
  InterpolationSyntaxError: ['INVALID_REFERENCE'],
  InterpolationMissingOptionError: ['REFERENCE_NOT_FOUND', 'INVALID_REFERENCE'],
  InterpolationDepthError: ['REFERENCE_TOO_DEEP', 'REFERENCE_CYCLE', 'INVALID_REFERENCE'],
};

/** A key on which we and Python disagree. */
interface Mismatch {
  readonly file: string;
  readonly text: string;
  readonly id: string;
  readonly python: PythonOutcome;
  readonly ours: { readonly value?: string; readonly issues: readonly FieldIssue[]; readonly unresolved: boolean };
}

/** How many keys disagree, and the document of the first, for the failure message. */
function describeMismatches({ mismatches, seed }: { mismatches: readonly Mismatch[]; seed: number }): string {
  const first = mismatches[0];
  if (!first) return 'no mismatch';
  return `${mismatches.length} keys disagree with Python (FC_SEED=${seed}); the first, ${first.id}, is in ${first.file}:\n${first.text}`;
}

interface Case {
  readonly file: string;
  readonly generated: Generated;
  readonly python: PythonDocument;
  readonly input: IniDocument;
  readonly ours: ResolveResult;
}

/**
 * Ids (`section.key`) that name two keys of the document: [a] b.c and [a.b] c. Issues, unresolved
 * and origins name keys by id, so for these only values are compared.
 */
function ambiguousIds(python: PythonDocument): Set<string> {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const [section, keys] of python) {
    for (const [key] of keys) {
      const id = fieldId(section, key);
      if (seen.has(id)) twice.add(id);
      seen.add(id);
    }
  }
  return twice;
}

describe('cross-check of resolveDocument against Python configparser ExtendedInterpolation', () => {
  const seed = Number(process.env.FC_SEED ?? Date.now() % 2_147_483_647);
  let dir = '';
  const cases: Case[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'confhub-resolve-xcheck-'));
    const generated = fc.sample(documentModelArb, { numRuns: 300, seed }).map(renderDocument);
    for (const [i, doc] of generated.entries()) writeFileSync(join(dir, `doc-${String(i).padStart(3, '0')}.ini`), doc.text, 'utf8');
    const script = join(dir, 'resolve.py');
    writeFileSync(script, PYTHON_RESOLVER, 'utf8');
    const python = JSON.parse(execFileSync('python3', [script, dir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as Record<string, PythonDocument>;
    generated.forEach((doc, i) => {
      const file = `doc-${String(i).padStart(3, '0')}.ini`;
      // Resolve exactly the bytes Python read.
      const input = parseIni(readFileSync(join(dir, file), 'utf8'));
      const ours = resolveDocument({ doc: input, schema: NO_SCHEMA, settings: { interpolation: 'extended' } });
      cases.push({ file, generated: doc, python: python[file]!, input, ours });
    });
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when the generator runs, then no key it writes looks secret (the secret rule must never apply here)', () => {
    for (const { python } of cases) {
      for (const [section, keys] of python) for (const [key] of keys) expect(isSensitive(NO_SCHEMA, section, key), `${section}.${key}`).toBe(false);
    }
  });

  it('when ~300 random documents are resolved by both, then every key Python resolves has the same value and no issue, and every key Python refuses has one', () => {
    let resolved = 0;
    let substituted = 0;
    let refused = 0;
    let deepest = 0;
    let atLimit = 0;
    let pastLimit = 0;
    const errors = new Map<string, number>();
    const mismatches: Mismatch[] = [];
    for (const { file, generated, python, input, ours } of cases) {
      expect(python, file).toBeDefined();
      expect(
        ours.doc.sections.map((s) => [s.name, s.entries.map((e) => e.keyLower)]),
        `${file}:\n${generated.text}`,
      ).toEqual(python.map(([name, keys]) => [name, keys.map(([k]) => k)]));
      const ambiguous = ambiguousIds(python);
      for (const [section, keys] of python) {
        for (const [key, outcome] of keys) {
          const id = fieldId(section, key);
          const value = ours.doc.byName.get(section)?.byKey.get(key)?.value;
          const issues = ours.issues.filter((issue) => issue.field === id);
          const unresolved = ours.unresolved.has(id);
          let agrees: boolean;
          if ('value' in outcome) {
            resolved++;
            const raw = ours.origins.get(id)?.raw;
            if (raw !== undefined && raw !== outcome.value) substituted++;
            agrees = value === outcome.value && (ambiguous.has(id) || (issues.length === 0 && !unresolved));
          } else {
            refused++;
            errors.set(outcome.error, (errors.get(outcome.error) ?? 0) + 1);
            // A refused key keeps the value as written.
            const written = input.byName.get(section)?.byKey.get(key)?.value;
            agrees = value === written && unresolved && (ambiguous.has(id) || issues.length === 1);
          }
          if (!agrees) mismatches.push({ file, text: generated.text, id, python: outcome, ours: { value, issues, unresolved } });
        }
      }
      const top = python.flatMap(([, keys]) => keys).find(([key]) => key === `c${generated.chainLength}`)?.[1];
      if (!generated.chainCycle && generated.chainEnd && top) {
        if ('value' in top) deepest = Math.max(deepest, generated.chainLength);
        if (generated.chainLength === 10 && 'value' in top) atLimit++;
        if (generated.chainLength === 11 && 'error' in top) pastLimit++;
      }
    }
    expect(mismatches.slice(0, 3), describeMismatches({ mismatches, seed })).toEqual([]);
    // Both outcomes, each kind of Python error and chains at the limit must be well represented.
    expect(resolved).toBeGreaterThan(1500);
    expect(substituted).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1500);
    expect(errors.get('InterpolationSyntaxError')).toBeGreaterThan(500);
    expect(errors.get('InterpolationMissingOptionError')).toBeGreaterThan(200);
    expect(errors.get('InterpolationDepthError')).toBeGreaterThan(500);
    // A chain ending in a value without "$" resolves exactly up to 10 levels.
    expect(deepest).toBe(10);
    expect(atLimit).toBeGreaterThan(2);
    expect(pastLimit).toBeGreaterThan(2);
  });

  it('when Python refuses a key, then our issue is of the matching kind (a key referring to a refused key may say so instead)', () => {
    let checked = 0;
    const mismatches: Mismatch[] = [];
    for (const { file, generated, python, ours } of cases) {
      const failing = new Set(python.flatMap(([section, keys]) => keys.filter(([, o]) => 'error' in o).map(([key]) => fieldId(section, key))));
      const ambiguous = ambiguousIds(python);
      for (const [section, keys] of python) {
        for (const [key, outcome] of keys) {
          if (!('error' in outcome)) continue;
          const id = fieldId(section, key);
          const issues = ours.issues.filter((i) => i.field === id);
          if (issues.length !== 1 || ambiguous.has(id)) continue; // the test above reports it
          const issue = issues[0]!;
          checked++;
          let agrees = CODES_FOR[outcome.error]!.includes(issue.code);
          if (agrees && issue.code === 'INVALID_REFERENCE' && outcome.error !== 'InterpolationSyntaxError') {
            // Not a syntax error of its own: it must say it refers to a key that Python refuses too.
            const refersToFailing = ours.origins.get(id)?.references.some((target) => failing.has(target)) === true;
            agrees = refersToFailing && issue.message.endsWith('which cannot be resolved');
          }
          if (!agrees) mismatches.push({ file, text: generated.text, id, python: outcome, ours: { issues, unresolved: ours.unresolved.has(id) } });
        }
      }
    }
    expect(mismatches.slice(0, 3), describeMismatches({ mismatches, seed })).toEqual([]);
    expect(checked).toBeGreaterThan(1000);
  });
});
