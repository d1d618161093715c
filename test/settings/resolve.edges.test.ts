/**
 * Edges of the resolve step found by review: ids that collide, depth met mid-value, chorded
 * cycles, values that do not open in overlays, nested overlays, chains and expansions large
 * enough to exhaust the stack or memory. INI texts are template literals: `\${…}` in them is a
 * literal reference.
 */
import { describe, expect, it } from 'vitest';
import { parseIni } from '../../src/ini/document.js';
import { resolveDocument, type ResolveResult, type ResolveSettings } from '../../src/settings/resolve.js';
import { CONFIG_SCHEMA, type FileSchema } from '../../src/settings/schema.js';

interface RunInput {
  readonly text: string;
  readonly settings?: ResolveSettings;
  readonly schema?: FileSchema;
  readonly unreadable?: ReadonlySet<string>;
}

function run({ text, settings = { interpolation: 'extended' }, schema = new Map(), unreadable }: RunInput): ResolveResult {
  return resolveDocument({ doc: parseIni(text), schema, settings, unreadable });
}

const resolvedValue = (result: ResolveResult, section: string, key: string): string | undefined => result.doc.byName.get(section)?.byKey.get(key)?.value;
const codesOf = (result: ResolveResult, field: string): string[] => result.issues.filter((issue) => issue.field === field).map((issue) => issue.code);

/** `[s]` with a0 = x and a1…a10 each referring to the one before: a10 is exactly 10 levels deep. */
const CHAIN_OF_10 = `[s]\na0 = x\n${Array.from({ length: 10 }, (_, i) => `a${i + 1} = \${a${i}}`).join('\n')}\n`;

describe('resolveDocument at its edges', () => {
  it('when section "a" has key "b.c" and section "a.b" has key "c", then each keeps its own value (they share the id "a.b.c")', () => {
    const r = run({ text: `[a]\nb.c = \${x}\nx = from-a\n[a.b]\nc = plain\nd = \${y}\ny = from-ab\n` });
    expect(resolvedValue(r, 'a', 'b.c')).toBe('from-a');
    expect(resolvedValue(r, 'a.b', 'c')).toBe('plain');
    expect(resolvedValue(r, 'a.b', 'd')).toBe('from-ab');
    expect(r.issues).toEqual([]);
  });

  it('when a value refers to a key 10 levels deep and then holds a bad "$", then configparser stops at the depth first: REFERENCE_TOO_DEEP', () => {
    const r = run({ text: `${CHAIN_OF_10}bad_syntax = \${a10}$\nmissing = \${a10}\${nope}\n` });
    // Python: get('s', 'bad_syntax') and get('s', 'missing') both raise InterpolationDepthError.
    expect(codesOf(r, 's.bad_syntax')).toEqual(['REFERENCE_TOO_DEEP']);
    expect(codesOf(r, 's.missing')).toEqual(['REFERENCE_TOO_DEEP']);
  });

  it('when a key is part of a cycle that also has a chord (a → b → a, b → c → b), then it is reported as a cycle, not as merely referring to one', () => {
    const r = run({ text: `[s]\na = \${b}\nb = \${c}\${a}\nc = \${b}\n` });
    expect(codesOf(r, 's.b')).toEqual(['REFERENCE_CYCLE']);
    expect(codesOf(r, 's.c')).toEqual(['REFERENCE_CYCLE']);
    expect(codesOf(r, 's.a')).toEqual(['REFERENCE_CYCLE']);
  });

  it('when a reference fails, then the origin still lists every key the raw value refers to, in order', () => {
    const r = run({ text: `[s]\nb = 1\nx = \${nope}\${b}\${s:b}\n` });
    expect(r.origins.get('s.x')?.references).toEqual(['s.nope', 's.b', 's.b']);
  });

  it('when the environment overlay holds the value that did not open, then a secret referring to it is refused as unreadable', () => {
    // openDocument names a value that does not open by the section it is written in: gitea@staging.user_pwd.
    const r = run({
      text: `[gitea]\nuser_pwd = base-Secret-1\n[gitea@staging]\nuser_pwd = enc:v1:sealed\n[portainer]\nuser_pwd = \${gitea:user_pwd}\n`,
      settings: { interpolation: 'extended', environment: 'staging' },
      schema: CONFIG_SCHEMA,
      unreadable: new Set(['gitea@staging.user_pwd']),
    });
    expect(codesOf(r, 'portainer.user_pwd')).toEqual(['REFERENCE_UNREADABLE']);
    expect(resolvedValue(r, 'portainer', 'user_pwd')).not.toBe('enc:v1:sealed');
  });

  it('when only the base value did not open and the environment overlay replaces it, then a secret referring to it gets the overlay value', () => {
    const r = run({
      text: `[gitea]\nuser_pwd = enc:v1:sealed\n[gitea@staging]\nuser_pwd = staging-Secret-1\n[portainer]\nuser_pwd = \${gitea:user_pwd}\n`,
      settings: { interpolation: 'extended', environment: 'staging' },
      schema: CONFIG_SCHEMA,
      unreadable: new Set(['gitea.user_pwd']),
    });
    expect(r.issues).toEqual([]);
    expect(resolvedValue(r, 'portainer', 'user_pwd')).toBe('staging-Secret-1');
  });

  it('when an overlay names an overlay as its section ([a@b@c]), then it is refused as INVALID_OVERLAY and no section "a@b" appears', () => {
    const r = run({ text: '[a]\nk = base\n[a@b@c]\nk = v\n', settings: { interpolation: 'extended', environment: 'c' } });
    expect(codesOf(r, 'a@b@c')).toEqual(['INVALID_OVERLAY']);
    expect(r.doc.sections.map((s) => s.name)).toEqual(['a']);
  });
  it('when a chain of 5000 references is written deepest first, then resolving returns issues instead of overflowing the stack', () => {
    // configparser stops at 10 levels; nothing beyond needs to be followed to refuse a key.
    const lines = Array.from({ length: 5000 }, (_, i) => `a${5000 - i} = \${a${4999 - i}}`);
    const text = `[s]\n${lines.join('\n')}\na0 = x\n`;
    let result: ResolveResult | undefined;
    expect(() => {
      result = run({ text });
    }).not.toThrow();
    expect(result && codesOf(result, 's.a11')).toEqual(['REFERENCE_TOO_DEEP']);
    expect(result && resolvedValue(result, 's', 'a10')).toBe('x');
  });

  it('when nested references would expand past the longest string JavaScript holds, then the keys are refused instead of resolveDocument throwing', () => {
    // Ten lines: each level repeats the one below 16 times (100 · 16^9 characters at a9).
    const lines = [`a0 = ${'x'.repeat(100)}`, ...Array.from({ length: 9 }, (_, i) => `a${i + 1} = ${`\${a${i}}`.repeat(16)}`)];
    let result: ResolveResult | undefined;
    expect(() => {
      result = run({ text: `[s]\n${lines.join('\n')}\n` });
    }).not.toThrow();
    expect(result?.unresolved.has('s.a9')).toBe(true);
    expect(result?.issues.find((issue) => issue.field === 's.a9')).toMatchObject({ code: 'REFERENCE_TOO_LONG' });
  });
});

describe('secrets in reference problems', () => {
  it('when a secret refers to a key that does not exist, then the message names no part of its value', () => {
    const r = run({ text: `[gitea]\nuser_pwd = Tr0ub4dor\${hunter2-secret}xyz\nbase_url = http://\${nowhere}\n`, schema: CONFIG_SCHEMA });
    const secret = r.issues.find((issue) => issue.field === 'gitea.user_pwd')!;
    expect(secret).toMatchObject({ code: 'REFERENCE_NOT_FOUND', message: 'gitea.user_pwd: refers to a key, which does not exist' });
    expect(JSON.stringify(r.issues)).not.toContain('hunter2');
    // A key that is no secret still says what it refers to.
    expect(r.issues.find((issue) => issue.field === 'gitea.base_url')!.message).toContain('gitea.nowhere');
  });
});
