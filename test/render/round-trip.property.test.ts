/**
 * Property: for arbitrary values (and, for the generic formats, arbitrary key names), a render
 * either throws RENDER_FAILED or produces text that the format's own parser reads back to exactly
 * the input values. The parsers are the verify parsers (go-ini and .env readers written here) or
 * the real libraries (`ini`, `yaml` under both YAML 1.1 and 1.2, JSON.parse).
 */
import fc from 'fast-check';
import { decode as decodeIni } from 'ini';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { isAppError } from '../../src/core/errors.js';
import { readComposeDotenv } from '../../src/render/dotenv.js';
import { envName } from '../../src/render/env.js';
import { readGoIni } from '../../src/render/gitea.js';
import { RENDERERS } from '../../src/render/index.js';
import type { RenderInput } from '../../src/render/types.js';
import type { FormatName } from '../../src/targets/target-spec.js';

const RUNS = 300;

/** Pieces every format treats specially somewhere. */
const FRAGMENTS = [
  'a',
  'Z9',
  ' ',
  '  ',
  '\t',
  '\n',
  '\r',
  '\r\n',
  ';',
  '#',
  '=',
  ':',
  ': ',
  ' #',
  '"',
  "'",
  '`',
  '"""',
  '```',
  '\\',
  '\\;',
  '\\n',
  '$',
  '\u0024{X}',
  '$$',
  '{{',
  '}}',
  '[',
  ']',
  '[x]',
  '{',
  '}',
  '-',
  '- ',
  '*',
  '&',
  '!',
  '%',
  '@',
  '?',
  '|',
  '>',
  ',',
  '~',
  'yes',
  'no',
  'on',
  'off',
  'true',
  'null',
  'NULL',
  '0x1F',
  '0o17',
  '017',
  '1e3',
  '1_000',
  '1:20',
  '.inf',
  '.nan',
  '2001-12-14',
  '<<',
  'ü',
  '中文',
  '✓',
  '😀',
  '\u00a0',
  '\u0085',
  '\u2028',
  '\u2029',
  '\u3000',
  '\ufeff',
  '\u200b',
  '\u0000',
  '\u0001',
  '\u001b',
  '\u007f',
];

const valueArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 6 }).map((parts) => parts.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 12 }) },
);

/** Key and section names as config.ini may hold them: mostly tame, sometimes not. */
const nameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,10}$/) },
  { weight: 1, arbitrary: fc.stringMatching(/^[0-9][A-Za-z0-9_.-]{0,4}$/) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'x[]', '1', '2', 'a.b', 'on', 'yes', '<<', 'true', 'k y', 'a;b', '#k', 'ü') },
);

const sectionsArb = fc.uniqueArray(
  fc.record({ name: nameArb, values: fc.uniqueArray(fc.tuple(nameArb, valueArb), { maxLength: 5, selector: ([k]) => k.toLowerCase() }) }),
  { minLength: 1, maxLength: 3, selector: (s) => s.name },
);

function toInput(sections: { name: string; values: [string, string][] }[]): RenderInput {
  return { target: 'p', sections: sections.map((s) => ({ name: s.name, values: new Map(s.values) })) };
}

/** Renders, or returns undefined when the renderer refuses with RENDER_FAILED (anything else fails). */
function renderOrRefuse(format: FormatName, input: RenderInput): string | undefined {
  try {
    return RENDERERS.get(format)!.render(input);
  } catch (error) {
    if (isAppError(error) && error.code === 'RENDER_FAILED') return undefined;
    throw error;
  }
}

function asPlain(sections: { name: string; values: [string, string][] }[]): Map<string, Map<string, string>> {
  return new Map(sections.map((s) => [s.name, new Map(s.values)]));
}

describe('round trips of arbitrary values', () => {
  it('when env renders arbitrary values, then the .env reader gets every value back under its name, or the render is refused', () => {
    fc.assert(
      fc.property(sectionsArb, (sections) => {
        const text = renderOrRefuse('env', toInput(sections));
        if (text === undefined) return;
        const read = readComposeDotenv(text);
        for (const s of sections) for (const [k, v] of s.values) expect(read.get(envName(s.name, k))).toBe(v);
        expect(read.size).toBe(sections.reduce((n, s) => n + s.values.length, 0));
      }),
      { numRuns: RUNS },
    );
  });

  it('when gitea passes arbitrary values through, then go-ini (with and without continuation lines) reads every one back, or the render is refused', () => {
    const passArb = fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z][a-z.]{0,6}__[A-Z][A-Z0-9]{0,6}$/), valueArb), {
      maxLength: 6,
      selector: ([k]) => k.toLowerCase(),
    });
    fc.assert(
      fc.property(passArb, valueArb, (pass, rootValue) => {
        const values: [string, string][] = [['base_url', 'http://git.local:3000/api/v1'], ['__APP_NAME', rootValue], ...pass];
        const text = renderOrRefuse('gitea', toInput([{ name: 'gitea', values }]));
        if (text === undefined) return;
        for (const continuation of [false, true]) {
          const read = readGoIni(text, { continuation });
          expect(read.get('')?.get('APP_NAME')).toBe(rootValue);
          for (const [key, value] of pass) {
            const split = key.indexOf('__');
            const section = key.slice(0, split);
            const name = key.slice(split + 2);
            // server/security keys the renderer derives are overridden in place; others are read as written.
            expect(read.get(section)?.get(name), `${key} continuation=${continuation}`).toBe(value);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('when json renders arbitrary sections, then JSON.parse gives back every value', () => {
    fc.assert(
      fc.property(sectionsArb, (sections) => {
        const text = renderOrRefuse('json', toInput(sections));
        if (text === undefined) return;
        const parsed = JSON.parse(text) as Record<string, Record<string, unknown>>;
        expect(Object.keys(parsed).length).toBe(sections.length);
        for (const s of sections) {
          const section = Object.getOwnPropertyDescriptor(parsed, s.name)?.value as Record<string, unknown>;
          expect(Object.keys(section).length).toBe(s.values.length);
          for (const [k, v] of s.values) expect(Object.getOwnPropertyDescriptor(section, k)?.value).toBe(v);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('when yaml renders arbitrary sections, then YAML 1.2 and 1.1 readers both give back every value as a string', () => {
    fc.assert(
      fc.property(sectionsArb, (sections) => {
        const text = renderOrRefuse('yaml', toInput(sections));
        if (text === undefined) return;
        for (const version of ['1.2', '1.1'] as const) {
          const parsed = parseYaml(text, { version, mapAsMap: true }) as Map<string, Map<string, unknown>>;
          expect(parsed, version).toEqual(asPlain(sections));
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('when ini renders arbitrary sections, then ini.decode gives back every value (true/false/null as their words), or the render is refused', () => {
    fc.assert(
      fc.property(sectionsArb, (sections) => {
        const text = renderOrRefuse('ini', toInput(sections));
        if (text === undefined) return;
        const decoded = decodeIni(text) as Record<string, Record<string, unknown>>;
        for (const s of sections) {
          if (s.values.length === 0) continue;
          const section = Object.getOwnPropertyDescriptor(decoded, s.name)?.value as Record<string, unknown> | undefined;
          expect(section, s.name).toBeDefined();
          expect(Object.keys(section!).length).toBe(s.values.length);
          for (const [k, v] of s.values) {
            const got: unknown = Object.getOwnPropertyDescriptor(section, k)?.value;
            expect(typeof got === 'string' ? got : String(got)).toBe(v);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('when a typical value set is rendered, then none of these formats refuses it', () => {
    const tame = [
      {
        name: 'app',
        values: [
          ['user_pwd', 'p;a#s"s\'w`o=r d$1 ünï 中文 ✓'],
          ['url', 'http://h:1/x'],
        ] as [string, string][],
      },
    ];
    for (const format of ['env', 'json', 'yaml', 'ini'] as const) expect(renderOrRefuse(format, toInput(tame)), format).toBeDefined();
  });
});
