/**
 * Unit tests of src/settings/resolve.ts: environment overlays, then configparser's
 * ExtendedInterpolation (checked value by value against Python in resolve.python.property.test.ts).
 * INI texts are template literals: `\${…}` in them is a literal reference, not JavaScript's.
 */
import { describe, expect, it } from 'vitest';
import type { FieldIssue } from '../../src/core/errors.js';
import { parseIni, type IniDocument } from '../../src/ini/document.js';
import { MAX_REFERENCE_DEPTH, NO_RESOLVE, resolveDocument, type InterpolationMode, type ResolveResult } from '../../src/settings/resolve.js';
import { CONFIG_SCHEMA, type FileSchema } from '../../src/settings/schema.js';

/** No declared keys: only the name rule of isSensitive applies. */
const NO_SCHEMA: FileSchema = new Map();

interface RunInput {
  readonly text: string;
  readonly interpolation?: InterpolationMode;
  readonly environment?: string;
  readonly schema?: FileSchema;
  readonly unreadable?: ReadonlySet<string>;
}

interface RunResult extends ResolveResult {
  readonly input: IniDocument;
  /** The resolved value of `section.key`, or undefined when the key is absent. */
  value(section: string, key: string): string | undefined;
  /** The issues naming `field`. */
  issuesOf(field: string): FieldIssue[];
}

function run({ text, interpolation = 'extended', environment, schema = NO_SCHEMA, unreadable }: RunInput): RunResult {
  const input = parseIni(text);
  const result = resolveDocument({ doc: input, schema, settings: { interpolation, environment }, unreadable });
  return {
    ...result,
    input,
    value: (section, key) => result.doc.byName.get(section)?.byKey.get(key.toLowerCase())?.value,
    issuesOf: (field) => result.issues.filter((issue) => issue.field === field),
  };
}

/** The one issue naming `field` (fails when there is none or more than one). */
function onlyIssue(result: RunResult, field: string): FieldIssue {
  const issues = result.issuesOf(field);
  expect(issues, JSON.stringify(result.issues)).toHaveLength(1);
  return issues[0]!;
}

/** `[s]` with a0 = `first` and a1…a`length` each referring to the one before. */
function chain({ first, length }: { first: string; length: number }): string {
  const lines = ['[s]', `a0 = ${first}`];
  for (let i = 1; i <= length; i++) lines.push(`a${i} = \${a${i - 1}}`);
  return `${lines.join('\n')}\n`;
}

describe('references', () => {
  it('when a value refers to a key of its own section, then it gets that value, with the key matched case-insensitively', () => {
    const r = run({ text: `[web]\nHost = example.org\nurl = https://\${host}/a\nupper = \${HOST}:\${Host}\n` });
    expect(r.value('web', 'url')).toBe('https://example.org/a');
    expect(r.value('web', 'upper')).toBe('example.org:example.org');
    expect(r.issues).toEqual([]);
    expect(r.unresolved.size).toBe(0);
  });

  it('when a value refers to a key of another section, then it gets that value, and the section name must match exactly', () => {
    const r = run({ text: `[db]\nhost = db.local\nPort = 5432\n[app]\ndsn = pg://\${db:host}:\${db:PORT}/x\nwrong = \${DB:host}\n` });
    expect(r.value('app', 'dsn')).toBe('pg://db.local:5432/x');
    expect(onlyIssue(r, 'app.wrong')).toMatchObject({ code: 'REFERENCE_NOT_FOUND', message: 'app.wrong: refers to DB.host, which does not exist' });
    expect([...r.unresolved]).toEqual(['app.wrong']);
  });

  it('when a value holds $$, then it reads as one literal $ and the text after it is never a reference', () => {
    const r = run({ text: `[s]\nx = 1\nprice = 5$$\ntwo = $$$$\nliteral = $\${x}\nmixed = $$\${x}$$\n` });
    expect(r.value('s', 'price')).toBe('5$');
    expect(r.value('s', 'two')).toBe('$$');
    expect(r.value('s', 'literal')).toBe(`\${x}`);
    expect(r.value('s', 'mixed')).toBe('$1$');
    expect(r.issues).toEqual([]);
    expect(r.origins.get('s.literal')).toEqual({ section: 's', line: 5, raw: `$\${x}`, references: [] });
  });

  it('when references nest across sections, then each level is replaced by the resolved value of the next', () => {
    const r = run({ text: `[a]\nhost = h\n[b]\nurl = http://\${a:host}\n[c]\nhealth = \${b:url}/health\nboth = \${health} and \${b:url}\n` });
    expect(r.value('c', 'health')).toBe('http://h/health');
    expect(r.value('c', 'both')).toBe('http://h/health and http://h');
    expect(r.issues).toEqual([]);
  });

  it(`when a value refers to a key whose $$ resolved to a "\${", then that text is taken as it is, not read again as a reference`, () => {
    const r = run({ text: `[s]\nx = 1\ntemplate = $\${x}\nuse = <\${template}>\n` });
    expect(r.value('s', 'use')).toBe(`<\${x}>`);
    expect(r.issues).toEqual([]);
  });

  it('when a value spans lines, then references on every line are replaced and the line breaks stay', () => {
    const r = run({ text: `[s]\nhost = h\n[m]\nlist = first \${s:host}\n\tsecond $$\n\n\tthird \${s:host}\nafter = \${list}\n` });
    expect(r.value('m', 'list')).toBe('first h\nsecond $\n\nthird h');
    expect(r.value('m', 'after')).toBe('first h\nsecond $\n\nthird h');
    expect(r.origins.get('m.list')).toEqual({
      section: 'm',
      line: 4,
      raw: `first \${s:host}\nsecond $$\n\nthird \${s:host}`,
      references: ['s.host', 's.host'],
    });
    expect(r.issues).toEqual([]);
  });
});

describe('depth: configparser reads at most 10 levels', () => {
  it('when a chain reaches 10 levels below its value, then it resolves; at 11 and beyond it is refused as too deep', () => {
    // configparser: a value is level 1, each referred value holding a "$" one more; a11 reaches a1 at level 11.
    expect(MAX_REFERENCE_DEPTH).toBe(10);
    const r = run({ text: chain({ first: 'end', length: 12 }) });
    for (let i = 0; i <= 10; i++) expect(r.value('s', `a${i}`)).toBe('end');
    expect(r.issuesOf('s.a10')).toEqual([]);
    expect(onlyIssue(r, 's.a11')).toMatchObject({
      code: 'REFERENCE_TOO_DEEP',
      message: 's.a11: its references nest more than 10 levels deep; configparser reads at most 10',
    });
    expect(onlyIssue(r, 's.a12')).toMatchObject({
      code: 'REFERENCE_TOO_DEEP',
      message: 's.a12: its references nest more than 10 levels deep; configparser reads at most 10',
    });
    expect([...r.unresolved].sort()).toEqual(['s.a11', 's.a12']);
    expect(r.value('s', 'a11')).toBe(`\${a10}`);
  });

  it('when the end of the chain holds only $$, then it counts as a level of its own (as in configparser): a9 resolves, a10 is refused', () => {
    const r = run({ text: chain({ first: '$$', length: 10 }) });
    expect(r.value('s', 'a9')).toBe('$');
    expect(r.issuesOf('s.a9')).toEqual([]);
    expect(onlyIssue(r, 's.a10').code).toBe('REFERENCE_TOO_DEEP');
  });

  it('when one value refers both to a deep and to a shallow key, then its depth is the deepest branch', () => {
    const ok = run({ text: `${chain({ first: 'x', length: 9 })}wide = \${a0}\${a9}\${a1}\n` });
    expect(ok.value('s', 'wide')).toBe('xxx');
    const deep = run({ text: `${chain({ first: 'x', length: 10 })}wide = \${a0}\${a10}\${a1}\n` });
    expect(onlyIssue(deep, 's.wide').code).toBe('REFERENCE_TOO_DEEP');
  });
});

describe('references that cannot resolve', () => {
  it('when a reference names a missing key or a missing section, then the key is refused with REFERENCE_NOT_FOUND naming the target', () => {
    const r = run({ text: `[s]\nx = 1\nval = \${nope}\nsect = \${none:x}\nempty_key = \${s:}\nempty_section = \${:x}\n` });
    expect(onlyIssue(r, 's.val')).toEqual({ field: 's.val', code: 'REFERENCE_NOT_FOUND', message: 's.val: refers to s.nope, which does not exist' });
    expect(onlyIssue(r, 's.sect')).toEqual({ field: 's.sect', code: 'REFERENCE_NOT_FOUND', message: 's.sect: refers to none.x, which does not exist' });
    expect(onlyIssue(r, 's.empty_key').code).toBe('REFERENCE_NOT_FOUND');
    expect(onlyIssue(r, 's.empty_section').code).toBe('REFERENCE_NOT_FOUND');
    expect([...r.unresolved].sort()).toEqual(['s.empty_key', 's.empty_section', 's.sect', 's.val']);
    // An unresolved key keeps its raw value.
    expect(r.value('s', 'val')).toBe(`\${nope}`);
  });

  it.each([
    ['a "$" followed by a letter', 'cost $5', 'a "$" must be followed by "$" or "{" (write $$ for a literal $)'],
    ['a trailing "$"', 'cost 5$', 'a "$" must be followed by "$" or "{" (write $$ for a literal $)'],
    ['a space between "$" and "{"', '$ {x}', 'a "$" must be followed by "$" or "{" (write $$ for a literal $)'],
    [`an unclosed "\${"`, `a \${x`, `"\${" opens no reference: write \${section:key} or \${key} (write $$ for a literal $)`],
    [`an empty "\${}"`, `a \${} b`, `"\${" opens no reference: write \${section:key} or \${key} (write $$ for a literal $)`],
    ['two ":" in a reference', `\${a:b:c}`, `a reference holds more than one ":": write \${section:key}`],
    ['a valid reference before the bad "$"', `\${x} costs $5`, 'a "$" must be followed by "$" or "{" (write $$ for a literal $)'],
  ])('when a value holds %s, then it is refused with INVALID_REFERENCE and kept as written', (_, value, message) => {
    const r = run({ text: `[s]\nx = 1\nbad = ${value}\n` });
    expect(onlyIssue(r, 's.bad')).toEqual({ field: 's.bad', code: 'INVALID_REFERENCE', message: `s.bad: ${message}` });
    expect(r.value('s', 'bad')).toBe(value);
    expect([...r.unresolved]).toEqual(['s.bad']);
    expect(r.origins.get('s.bad')?.raw).toBe(value);
  });

  it('when a key refers to a key that cannot be resolved, then it is refused too, with INVALID_REFERENCE naming where it stops', () => {
    const r = run({ text: `[s]\nbroken = \${nope}\nuser = x\${broken}\nuser2 = \${user}\n` });
    expect(onlyIssue(r, 's.broken').code).toBe('REFERENCE_NOT_FOUND');
    expect(onlyIssue(r, 's.user')).toMatchObject({ code: 'INVALID_REFERENCE', message: 's.user: refers to s.broken, which cannot be resolved' });
    expect(onlyIssue(r, 's.user2')).toMatchObject({ code: 'INVALID_REFERENCE', message: 's.user2: refers to s.user, which cannot be resolved' });
    expect([...r.unresolved].sort()).toEqual(['s.broken', 's.user', 's.user2']);
  });
});

describe('cycles', () => {
  it('when a value refers to itself, then it is refused as a cycle', () => {
    const r = run({ text: `[s]\nself = a\${self}\n` });
    expect(onlyIssue(r, 's.self')).toEqual({ field: 's.self', code: 'REFERENCE_CYCLE', message: 's.self: refers back to itself: s.self → s.self' });
  });

  it('when two keys refer to each other, then both are refused as a cycle naming both', () => {
    const r = run({ text: `[s]\na = \${b}\nb = \${A}\n` });
    expect(onlyIssue(r, 's.a')).toMatchObject({ code: 'REFERENCE_CYCLE', message: 's.a: refers back to itself: s.a → s.b → s.a' });
    expect(onlyIssue(r, 's.b').code).toBe('REFERENCE_CYCLE');
    expect(onlyIssue(r, 's.b').message).toMatch(/s\.a → s\.b|s\.b → s\.a/);
  });

  it('when three keys across sections form a cycle, then each of them is refused as a cycle', () => {
    const r = run({ text: `[x]\na = \${y:b}\n[y]\nb = \${z:c}\n[z]\nc = pre-\${x:a}\n` });
    for (const field of ['x.a', 'y.b', 'z.c']) {
      const issue = onlyIssue(r, field);
      expect(issue.code).toBe('REFERENCE_CYCLE');
      for (const member of ['x.a', 'y.b', 'z.c']) expect(issue.message).toContain(member);
    }
    expect(onlyIssue(r, 'x.a').message).toBe('x.a: refers back to itself: x.a → y.b → z.c → x.a');
  });

  it.each([
    ['before', `[s]\nouter = \${a}\na = \${b}\nb = \${a}\n`],
    ['after', `[s]\na = \${b}\nb = \${a}\nouter = \${a}\n`],
  ])('when a key merely refers into a cycle (written %s it), then it is refused as referring into that cycle, not as in it', (_, text) => {
    const r = run({ text });
    expect(onlyIssue(r, 's.outer')).toMatchObject({ field: 's.outer', code: 'REFERENCE_CYCLE' });
    expect(onlyIssue(r, 's.outer').message).toMatch(/^s\.outer: refers to s\.a, which is in a reference cycle: s\.(a → s\.b|b → s\.a)$/);
    expect(onlyIssue(r, 's.a').code).toBe('REFERENCE_CYCLE');
    expect(onlyIssue(r, 's.b').code).toBe('REFERENCE_CYCLE');
    expect([...r.unresolved].sort()).toEqual(['s.a', 's.b', 's.outer']);
  });
});

describe('secrets', () => {
  it(`when a plain setting refers to a secret (gitea.base_url = \${gitea:user_pwd}), then it is refused and keeps its raw value`, () => {
    const r = run({ text: `[gitea]\nuser_pwd = s3cret-Value\nbase_url = http://\${gitea:user_pwd}@x\nuser_name = \${user_pwd}\n`, schema: CONFIG_SCHEMA });
    expect(onlyIssue(r, 'gitea.base_url')).toEqual({
      field: 'gitea.base_url',
      code: 'REFERENCE_TO_SECRET',
      message: 'gitea.base_url: refers to the secret gitea.user_pwd: only a secret may hold a secret',
    });
    expect(onlyIssue(r, 'gitea.user_name').code).toBe('REFERENCE_TO_SECRET');
    expect(r.value('gitea', 'base_url')).toBe(`http://\${gitea:user_pwd}@x`);
    expect(r.value('gitea', 'user_name')).toBe(`\${user_pwd}`);
    expect(r.doc.sections.flatMap((s) => s.entries.map((e) => e.value)).filter((v) => v.includes('s3cret'))).toEqual(['s3cret-Value']);
  });

  it('when a plain setting refers to an undeclared key whose name looks secret, then it is refused too', () => {
    const r = run({ text: `[custom]\ndb_pass = hunter2-hunter2\nurl = pg://u:\${db_pass}@h\n` });
    expect(onlyIssue(r, 'custom.url').code).toBe('REFERENCE_TO_SECRET');
  });

  it('when a secret refers to a secret, then it resolves', () => {
    const r = run({ text: `[gitea]\nuser_pwd = s3cret-Value\n[portainer]\nuser_pwd = \${gitea:user_pwd}-2\n`, schema: CONFIG_SCHEMA });
    expect(r.value('portainer', 'user_pwd')).toBe('s3cret-Value-2');
    expect(r.issues).toEqual([]);
  });

  it('when a secret refers to a plain setting, then it resolves', () => {
    const r = run({ text: `[gitea]\nuser_name = admin\nuser_pwd = \${user_name}-Long-Pass-1\n`, schema: CONFIG_SCHEMA });
    expect(r.value('gitea', 'user_pwd')).toBe('admin-Long-Pass-1');
  });

  it('when a plain setting of an overlay refers to the secret in its environment, then it is refused as in the base section', () => {
    const r = run({
      text: `[gitea]\nuser_pwd = s3cret-Value\nbase_url = http://a\n[gitea@staging]\nbase_url = http://\${user_pwd}\n`,
      schema: CONFIG_SCHEMA,
      environment: 'staging',
    });
    expect(onlyIssue(r, 'gitea.base_url').code).toBe('REFERENCE_TO_SECRET');
  });

  it('when a secret refers to a value that did not open, then it is refused with REFERENCE_UNREADABLE', () => {
    const r = run({
      text: `[gitea]\nuser_pwd = enc:v1:sealed\n[portainer]\nuser_pwd = \${gitea:user_pwd}\n`,
      schema: CONFIG_SCHEMA,
      unreadable: new Set(['gitea.user_pwd']),
    });
    expect(onlyIssue(r, 'portainer.user_pwd')).toMatchObject({
      code: 'REFERENCE_UNREADABLE',
      message: 'portainer.user_pwd: refers to gitea.user_pwd, which cannot be decrypted',
    });
    expect(r.value('portainer', 'user_pwd')).toBe(`\${gitea:user_pwd}`);
  });
});

describe('interpolation none', () => {
  it('when interpolation is none and there are no overlays, then every $ is left as written and the same document object is returned', () => {
    const text = `[s]\nx = 1\na = \${x} $5 $$ \${nope} \${a:b:c}\n[env:global]\nHOME_DIR = $HOME\n`;
    const input = parseIni(text);
    const r = resolveDocument({ doc: input, schema: NO_SCHEMA, settings: NO_RESOLVE });
    expect(r.doc).toBe(input);
    expect(r.issues).toEqual([]);
    expect(r.unresolved.size).toBe(0);
    expect(r.origins.get('s.a')).toEqual({ section: 's', line: 3, references: [] });
    expect(r.origins.size).toBe(3);
    expect([...r.origins.keys()]).toEqual(['s.x', 's.a', 'env:global.home_dir']);
  });

  it('when interpolation is none but overlays exist, then the environment is applied and $ is still left as written', () => {
    const r = run({ text: `[s]\na = \${x}\n[s@prod]\na = \${y} $\n`, interpolation: 'none', environment: 'prod' });
    expect(r.value('s', 'a')).toBe(`\${y} $`);
    expect(r.issues).toEqual([]);
    expect(r.origins.get('s.a')).toEqual({ section: 's@prod', line: 4, references: [] });
  });
});

describe('environment variables are literal', () => {
  it('when an [env:…] section holds $ and references, then they stay as written and raise no issue', () => {
    const r = run({ text: `[s]\nx = 1\n[env:global]\nPATH_EXTRA = $HOME/bin:\${x}:\${s:x}\n[env:app:secret]\nTOKEN = a$b\n` });
    expect(r.value('env:global', 'PATH_EXTRA')).toBe(`$HOME/bin:\${x}:\${s:x}`);
    expect(r.value('env:app:secret', 'TOKEN')).toBe('a$b');
    expect(r.issues).toEqual([]);
    expect(r.origins.get('env:global.path_extra')).toEqual({ section: 'env:global', line: 4, references: [] });
  });

  it('when a setting names an [env:…] section in a reference, then it is refused as configparser refuses it (a section name with ":")', () => {
    const r = run({ text: `[env:global]\nX = 1\n[s]\nfull = \${env:global:X}\nshort = \${env:global}\n` });
    expect(onlyIssue(r, 's.full').code).toBe('INVALID_REFERENCE');
    expect(onlyIssue(r, 's.short').code).toBe('REFERENCE_NOT_FOUND');
  });
});

describe('environment overlays', () => {
  const layered = '[gitea]\nbase_url = http://base\nuser_name = admin\n[gitea@staging]\nbase_url = http://staging\n[gitea@prod]\nbase_url = http://prod\n';

  it.each([
    ['staging', 'http://staging', 'gitea@staging', 5],
    ['prod', 'http://prod', 'gitea@prod', 7],
    ['dev', 'http://base', 'gitea', 2],
    [undefined, 'http://base', 'gitea', 2],
  ])('when confhub runs in %s, then the overlay of that environment wins and every other overlay is left out', (environment, url, section, line) => {
    const r = run({ text: layered, environment });
    expect(r.value('gitea', 'base_url')).toBe(url);
    expect(r.value('gitea', 'user_name')).toBe('admin');
    expect(r.doc.sections.map((s) => s.name)).toEqual(['gitea']);
    expect([...r.doc.byName.keys()]).toEqual(['gitea']);
    expect(r.origins.get('gitea.base_url')).toEqual({ section, line, references: [] });
    expect(r.issues).toEqual([]);
  });

  it('when an overlay adds a key, then the section has it in that environment only, and keys keep the base spelling', () => {
    const text = '[s]\nBase_URL = a\n[s@staging]\nbase_url = b\nextra = 1\n';
    const staging = run({ text, environment: 'staging' });
    expect(staging.doc.byName.get('s')?.entries.map((e) => [e.key, e.value])).toEqual([
      ['Base_URL', 'b'],
      ['extra', '1'],
    ]);
    const other = run({ text, environment: 'prod' });
    expect(other.doc.byName.get('s')?.entries.map((e) => [e.key, e.value])).toEqual([['Base_URL', 'a']]);
  });

  it('when an overlay names a section the base lacks, then that section exists in its environment only', () => {
    const text = '[s]\nx = 1\n[cache@staging]\nttl = 5\n';
    const staging = run({ text, environment: 'staging' });
    expect(staging.value('cache', 'ttl')).toBe('5');
    expect(staging.doc.sections.map((s) => s.name)).toEqual(['s', 'cache']);
    expect(staging.origins.get('cache.ttl')).toEqual({ section: 'cache@staging', line: 4, references: [] });
    expect(run({ text, environment: 'prod' }).doc.sections.map((s) => s.name)).toEqual(['s']);
  });

  it.each([['gitea@Staging'], ['gitea@'], ['gitea@-staging'], ['gitea@st aging'], ['gitea@st.aging'], [`gitea@${'a'.repeat(33)}`], ['@staging']])(
    'when an overlay is named [%s], then it is reported as INVALID_OVERLAY and never applied',
    (name) => {
      const environment = name.slice(name.lastIndexOf('@') + 1);
      const r = run({ text: `[gitea]\nbase_url = http://base\n[${name}]\nbase_url = http://other\n`, environment });
      const issue = onlyIssue(r, name);
      expect(issue.code).toBe('INVALID_OVERLAY');
      expect(issue.message.startsWith(`[${name}]: `)).toBe(true);
      expect(r.value('gitea', 'base_url')).toBe('http://base');
      expect(r.doc.sections.map((s) => s.name)).toEqual(['gitea']);
      // Not a reference problem: nothing is unresolved.
      expect(r.unresolved.size).toBe(0);
    },
  );

  it('when an environment name is 32 characters of letters, digits, "_" and "-", then it is accepted', () => {
    const environment = `a1_-${'b'.repeat(28)}`;
    const r = run({ text: `[s]\nx = 1\n[s@${environment}]\nx = 2\n`, environment });
    expect(r.issues).toEqual([]);
    expect(r.value('s', 'x')).toBe('2');
  });

  it('when an [env:…] section has an overlay, then it is refused as INVALID_OVERLAY and the variables keep their value', () => {
    const r = run({ text: '[env:global]\nX = 1\n[env:global@staging]\nX = 2\n', environment: 'staging' });
    expect(onlyIssue(r, 'env:global@staging')).toEqual({
      field: 'env:global@staging',
      code: 'INVALID_OVERLAY',
      message: '[env:global@staging]: environment variables take no overlays; set them in their scope',
    });
    expect(r.value('env:global', 'X')).toBe('1');
  });

  it('when an overlay is invalid and interpolation is none, then it is still reported', () => {
    const r = run({ text: '[s]\nx = 1\n[@x]\ny = 2\n', interpolation: 'none' });
    expect(onlyIssue(r, '@x').message).toBe('[@x]: an overlay names its section before the @');
  });

  it('when a reference names a key that an overlay sets, then it sees the value of the environment confhub runs in', () => {
    const text = `[db]\nhost = base-db\n[db@staging]\nhost = staging-db\nextra = e\n[app]\ndsn = pg://\${db:host}/x\n[app@staging]\nmore = \${dsn}+\${db:extra}\n`;
    const staging = run({ text, environment: 'staging' });
    expect(staging.value('app', 'dsn')).toBe('pg://staging-db/x');
    expect(staging.value('app', 'more')).toBe('pg://staging-db/x+e');
    const base = run({ text });
    expect(base.value('app', 'dsn')).toBe('pg://base-db/x');
    expect(base.value('app', 'more')).toBeUndefined();
  });

  it(`when an overlay value refers to a key of its own section with \${key}, then it is looked up in the section the overlay folds into`, () => {
    const r = run({ text: `[db]\nhost = h\nport = 1\n[db@staging]\nport = 2\nurl = \${host}:\${port}\n`, environment: 'staging' });
    expect(r.value('db', 'url')).toBe('h:2');
    expect(r.origins.get('db.url')).toEqual({ section: 'db@staging', line: 6, raw: `\${host}:\${port}`, references: ['db.host', 'db.port'] });
  });

  it('when a reference names an overlay section, then it is refused with INVALID_REFERENCE pointing to the base section', () => {
    const r = run({ text: `[db]\nhost = h\n[db@staging]\nhost = s\n[app]\nurl = \${db@staging:host}\n`, environment: 'staging' });
    expect(onlyIssue(r, 'app.url')).toEqual({
      field: 'app.url',
      code: 'INVALID_REFERENCE',
      message: 'app.url: refers to the overlay [db@staging]: refer to [db], whose value the environment chooses',
    });
  });

  it('when an overlay of another environment holds a broken reference, then it raises no issue', () => {
    const r = run({ text: `[s]\nx = 1\n[s@prod]\nx = \${nope}\n`, environment: 'staging' });
    expect(r.issues).toEqual([]);
    expect(r.value('s', 'x')).toBe('1');
  });
});

describe('origins and unresolved', () => {
  it('when values are resolved, then each origin names its section, its 1-based key line, its raw value only when it differs, and its references in order', () => {
    const text = `# head\n[a]\nplain = p\n\nref = \${b:y}-\${plain}-\${b:Y}\ndollar = $$\n[b]\ny = 1\nbroken = \${nope}\n`;
    const r = run({ text });
    expect(r.origins.get('a.plain')).toEqual({ section: 'a', line: 3, references: [] });
    expect(r.origins.get('a.ref')).toEqual({ section: 'a', line: 5, raw: `\${b:y}-\${plain}-\${b:Y}`, references: ['b.y', 'a.plain', 'b.y'] });
    expect(r.origins.get('a.dollar')).toEqual({ section: 'a', line: 6, raw: '$$', references: [] });
    expect(r.origins.get('b.broken')).toEqual({ section: 'b', line: 9, raw: `\${nope}`, references: ['b.nope'] });
    expect([...r.origins.keys()]).toEqual(['a.plain', 'a.ref', 'a.dollar', 'b.y', 'b.broken']);
  });

  it('when keys are written in mixed case, then origins and unresolved use the lowercased key', () => {
    const r = run({ text: `[S]\nMixed = \${nope}\nOther = 1\n` });
    expect([...r.unresolved]).toEqual(['S.mixed']);
    expect(r.origins.get('S.other')).toEqual({ section: 'S', line: 3, references: [] });
    expect(r.doc.byName.get('S')?.byKey.get('mixed')?.key).toBe('Mixed');
  });

  it('when some references fail, then unresolved holds exactly the keys named by the reference issues', () => {
    const text = `[s]\nok = 1\nalso_ok = \${ok}\nmissing = \${nope}\nsyntax = $x\nfollows = \${missing}\nloop = \${loop}\n[s@Bad]\nx = 1\n`;
    const r = run({ text });
    expect([...r.unresolved].sort()).toEqual(['s.follows', 's.loop', 's.missing', 's.syntax']);
    const referenceIssues = r.issues.filter((issue) => issue.code !== 'INVALID_OVERLAY').map((issue) => issue.field);
    expect(referenceIssues.sort()).toEqual([...r.unresolved].sort());
    expect(r.issues.filter((issue) => issue.code === 'INVALID_OVERLAY').map((issue) => issue.field)).toEqual(['s@Bad']);
  });

  it('when a document is resolved, then its entries keep their raw line numbers and the input document is left as it was', () => {
    const text = `[s]\nx = 1\ny = \${x}\n`;
    const r = run({ text });
    const y = r.doc.byName.get('s')?.byKey.get('y');
    expect(y).toMatchObject({ key: 'y', value: '1', firstLine: 2, lastLine: 2 });
    expect(r.input.byName.get('s')?.byKey.get('y')?.value).toBe(`\${x}`);
    expect(r.doc.lines).toBe(r.input.lines);
    expect(Object.isFrozen(r.doc)).toBe(true);
    expect(Object.isFrozen(y)).toBe(true);
    // An untouched entry is the input's own object.
    expect(r.doc.byName.get('s')?.byKey.get('x')).toBe(r.input.byName.get('s')?.byKey.get('x'));
  });
});
