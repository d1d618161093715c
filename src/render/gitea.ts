/**
 * Gitea's app.ini, read by go-ini (gopkg.in/ini.v1) with Gitea's options. What go-ini does that a
 * writer must respect: a bare value is trimmed, cut at the first `;` or `#` (inline comment),
 * loses surrounding quotes and, outside Gitea, continues on the next line after a trailing `\`;
 * `` `...` `` is read literally on one line; `"""..."""` literally across lines.
 *
 * Besides [server] and [security], every gitea key named `<section>__<KEY>` is passed through as
 * Gitea's own GITEA__section__KEY environment variables are (environment-to-ini), `_0X2E_`-style
 * escapes included; `__KEY` goes to the root section.
 */
import type { RenderInput, Renderer } from './types.js';
import {
  GENERATED_NOTE,
  LONE_SURROGATE_PROBLEM,
  differences,
  hasLoneSurrogate,
  optionalValue,
  readBackFailed,
  renderFailed,
  requireKeys,
  throwProblems,
  unparsable,
  wildcardHost,
} from './render-input.js';

interface IniEntry {
  readonly key: string;
  readonly value: string;
  /** The config.ini key the value came from, for messages. */
  readonly source: string;
}

interface IniSectionModel {
  /** '' is go-ini's root (DEFAULT) section, written before any header. */
  readonly name: string;
  readonly entries: IniEntry[];
}

const KNOWN_KEYS = new Set(['base_url', 'user_name', 'user_email', 'user_pwd']);
const SECTION_NAME = /^[a-z0-9_][a-z0-9_.-]*$/;
const KEY_NAME = /^[A-Z0-9_][A-Z0-9_.-]*$/;
/** Go's unicode.IsSpace: what go-ini trims from a bare value. */
const GO_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const GO_SPACE_START = new RegExp(`^(?:${GO_SPACE.source})+`);
const GO_SPACE_END = new RegExp(`(?:${GO_SPACE.source})+$`);

/** Gitea's decodeEnvSectionKey: `_0X2E_` → `.`, `_0X2D_` → `-` (env names cannot hold them). */
function decodeEnvEscapes(text: string): string {
  return text.replace(/_0[xX]([0-9a-fA-F]{1,6})_/g, (_, hex: string) => {
    const code = parseInt(hex, 16);
    return code <= 0x10ffff ? String.fromCodePoint(code) : `_0X${hex}_`;
  });
}

export type GoIniQuoting =
  | { readonly ok: true; readonly text: string; readonly style: 'bare' | 'backtick' | 'triple' }
  | { readonly ok: false; readonly problem: string };

/** How go-ini must see a value: bare when nothing in it is special, else `` ` `` or `"""`. */
export function quoteGoIniValue(value: string): GoIniQuoting {
  if (hasLoneSurrogate(value)) return { ok: false, problem: LONE_SURROGATE_PROBLEM };
  if (value.includes('\0')) return { ok: false, problem: 'holds a NUL character' };
  const multiline = /[\n\r]/.test(value);
  const plain =
    !multiline &&
    !/[;#"`=]/.test(value) &&
    !GO_SPACE_START.test(value) &&
    !GO_SPACE_END.test(value) &&
    !value.endsWith('\\') &&
    !(value.length >= 2 && value.startsWith("'") && value.endsWith("'"));
  if (plain) return { ok: true, text: value, style: 'bare' };
  if (!multiline && !value.includes('`')) return { ok: true, text: `\`${value}\``, style: 'backtick' };
  if (value.includes('"""')) return { ok: false, problem: 'holds both a backtick or line break and """, which go-ini cannot quote' };
  return { ok: true, text: `"""${value}"""`, style: 'triple' };
}

function buildModel(input: RenderInput): IniSectionModel[] {
  const { views, value } = requireKeys(input, { gitea: ['base_url'] });
  const problems: string[] = [];

  let url: URL | undefined;
  try {
    url = new URL(value('gitea', 'base_url'));
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    problems.push('gitea.base_url is not an http:// or https:// URL without credentials, query or fragment');
    url = undefined;
  }
  const domain = wildcardHost(optionalValue(views, 'domain', 'wildcard_domain'));
  if (domain === undefined) problems.push('domain.wildcard_domain is not a domain name');

  const server: IniSectionModel = { name: 'server', entries: [] };
  const security: IniSectionModel = { name: 'security', entries: [{ key: 'INSTALL_LOCK', value: 'true', source: 'security.INSTALL_LOCK' }] };
  if (url) {
    const path = url.pathname.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
    server.entries.push(
      { key: 'ROOT_URL', value: `${url.origin}${path}/`, source: 'gitea.base_url' },
      { key: 'DOMAIN', value: domain || url.hostname, source: domain ? 'domain.wildcard_domain' : 'gitea.base_url' },
      { key: 'HTTP_PORT', value: url.port || (url.protocol === 'https:' ? '443' : '80'), source: 'gitea.base_url' },
    );
  }
  const root: IniSectionModel = { name: '', entries: [] };
  const sections = new Map<string, IniSectionModel>([
    ['', root],
    ['server', server],
    ['security', security],
  ]);
  /** Which config key set each (section, KEY), to name both when two collide. */
  const setBy = new Map<string, string>();

  for (const [configKey, configValue] of views.get('gitea')?.entries ?? []) {
    const split = configKey.indexOf('__');
    if (split < 0) continue;
    if (KNOWN_KEYS.has(configKey.toLowerCase())) continue;
    const sectionName = decodeEnvEscapes(configKey.slice(0, split)).toLowerCase();
    const keyName = decodeEnvEscapes(configKey.slice(split + 2)).toUpperCase();
    if ((sectionName !== '' && !SECTION_NAME.test(sectionName)) || !KEY_NAME.test(keyName) || keyName === '-') {
      problems.push(`gitea.${configKey} does not name an app.ini [section] and KEY (letters, digits, "_", "." and "-")`);
      continue;
    }
    const id = `${sectionName}\0${keyName}`;
    const earlier = setBy.get(id);
    if (earlier) {
      problems.push(`gitea.${earlier} and gitea.${configKey} both set [${sectionName}] ${keyName}`);
      continue;
    }
    setBy.set(id, configKey);
    let section = sections.get(sectionName);
    if (!section) {
      section = { name: sectionName, entries: [] };
      sections.set(sectionName, section);
    }
    const entry: IniEntry = { key: keyName, value: configValue, source: `gitea.${configKey}` };
    // A pass-through key overrides a derived one in place, as GITEA__server__DOMAIN overrides app.ini.
    const derived = section.entries.findIndex((e) => e.key === keyName);
    if (derived >= 0) section.entries[derived] = entry;
    else section.entries.push(entry);
  }
  for (const section of sections.values()) {
    for (const entry of section.entries) {
      const quoted = quoteGoIniValue(entry.value);
      if (!quoted.ok) problems.push(`${entry.source} ${quoted.problem}`);
    }
  }
  throwProblems(input.target, problems);
  return [...sections.values()];
}

function render(input: RenderInput): string {
  const model = buildModel(input);
  const blocks: string[] = [];
  for (const section of model) {
    if (section.name !== '' && section.entries.length === 0) continue;
    const lines = section.name === '' ? [] : [`[${section.name}]`];
    for (const entry of section.entries) {
      const quoted = quoteGoIniValue(entry.value);
      if (!quoted.ok) throw renderFailed(input.target, `${entry.source} ${quoted.problem}`);
      lines.push(quoted.text === '' ? `${entry.key} =` : `${entry.key} = ${quoted.text}`);
    }
    if (lines.length > 0) blocks.push(lines.join('\n'));
  }
  return `# ${GENERATED_NOTE}\n${blocks.map((b) => `\n${b}\n`).join('')}`;
}

export interface GoIniReadOptions {
  /** go-ini's default joins a bare value ending in `\` with the next line; Gitea turns that off. */
  readonly continuation: boolean;
}

/**
 * A reader of the go-ini subset confhub writes, following go-ini's parser.go: full-line `#`/`;`
 * comments, `[section]` (to the last `]`), `KEY = value` split at the first `=` or `:`, values
 * bare / backtick / triple-quoted. Quoted key names are refused (never written). Returns
 * section → KEY → value, '' for the root section; throws Error on what go-ini would refuse.
 */
export function readGoIni(text: string, options: GoIniReadOptions): Map<string, Map<string, string>> {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  // readUntil('\n'): every line keeps its terminator, the last one may have none.
  const lines = body.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const out = new Map<string, Map<string, string>>([['', new Map()]]);
  let current = out.get('')!;
  let index = 0;
  const next = (): string | undefined => lines[index++];

  const readMultilines = (first: string, quote: string): string => {
    let value = first;
    for (;;) {
      const line = next();
      if (line === undefined) throw new Error(`line ${index}: missing closing ${quote}`);
      const pos = line.lastIndexOf(quote);
      if (pos >= 0) return value + line.slice(0, pos);
      value += line;
    }
  };

  const readValue = (raw: string): string => {
    const line = raw.replace(GO_SPACE_START, '');
    if (line === '') return '';
    let quote = '';
    if (line.length > 3 && line.startsWith('"""')) quote = '"""';
    else if (line.startsWith('`')) quote = '`';
    if (quote !== '') {
      const rest = line.slice(quote.length);
      const pos = rest.lastIndexOf(quote);
      return pos < 0 ? readMultilines(rest, quote) : rest.slice(0, pos);
    }
    let value = line.replace(GO_SPACE_END, '');
    if (options.continuation && value.endsWith('\\')) {
      value = value.slice(0, -1);
      for (;;) {
        const more = next();
        const piece = more === undefined ? '' : more.replace(GO_SPACE_START, '').replace(GO_SPACE_END, '');
        if (piece === '') break;
        value += piece;
        if (!value.endsWith('\\')) break;
        value = value.slice(0, -1);
      }
      return value;
    }
    const comment = value.search(/[#;]/);
    if (comment >= 0) value = value.slice(0, comment).replace(GO_SPACE_START, '').replace(GO_SPACE_END, '');
    for (const q of ["'", '"']) {
      if (value.length >= 2 && value.startsWith(q) && value.endsWith(q) && value.indexOf(q, 1) === value.length - 1) return value.slice(1, -1);
    }
    return value;
  };

  for (let raw = next(); raw !== undefined; raw = next()) {
    const line = raw.replace(GO_SPACE_START, '');
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) {
      const close = line.lastIndexOf(']');
      if (close < 0) throw new Error(`line ${index}: unclosed section`);
      const name = line.slice(1, close);
      current = out.get(name) ?? new Map<string, string>();
      out.set(name, current);
      continue;
    }
    if (line.startsWith('"') || line.startsWith('`')) throw new Error(`line ${index}: quoted key names are not expected`);
    const delimiter = line.search(/[=:]/);
    if (delimiter < 0) throw new Error(`line ${index}: no "=" after the key`);
    if (delimiter === 0) throw new Error(`line ${index}: empty key name`);
    const key = line.slice(0, delimiter).replace(GO_SPACE_START, '').replace(GO_SPACE_END, '');
    if (key === '-') throw new Error(`line ${index}: "-" is go-ini's auto-increment key`);
    const keyLine = index;
    const value = readValue(line.slice(delimiter + 1));
    if (current.has(key)) throw new Error(`line ${keyLine}: duplicate key`);
    current.set(key, value);
  }
  return out;
}

function verify(output: string, input: RenderInput): void {
  const model = buildModel(input);
  const expected = new Map(model.map((s) => [s.name, new Map(s.entries.map((e) => [e.key, e.value]))]));
  const sources = new Map<string, string>(model.flatMap((s) => s.entries.map((e) => [`${s.name}.${e.key}`, e.source] as const)));
  // Read as Gitea does (no continuation lines) and as go-ini's default does: both must agree.
  for (const continuation of [false, true]) {
    let actual: Map<string, Map<string, string>>;
    try {
      actual = readGoIni(output, { continuation });
    } catch (error) {
      throw unparsable(input.target, 'go-ini', (error as Error).message);
    }
    const wrong = differences(expected, actual);
    if (wrong.length > 0)
      throw readBackFailed(
        input.target,
        wrong.map((w) => sources.get(w) ?? w),
      );
  }
}

export const giteaRenderer: Renderer = { format: 'gitea', render, verify };
