/**
 * A docker-compose `.env` file: `SECTION_KEY=value` for every key of every section. Quoting as
 * compose reads it: bare for a safe alphabet; '...' is literal (no escapes, no interpolation) for
 * anything without a `'` or line break; "..." otherwise, where compose unescapes `\\ \" \n \r`
 * and `\$` (an unescaped `$` would be interpolated).
 */
import type { RenderInput, Renderer } from './types.js';
import { GENERATED_NOTE, LONE_SURROGATE_PROBLEM, hasLoneSurrogate, readBackFailed, sectionViews, throwProblems, unparsable } from './render-input.js';

const BARE = /^[A-Za-z0-9_./:@,+-]*$/;
const NAME = /^[A-Z_][A-Z0-9_]*$/;

interface EnvLine {
  readonly name: string;
  readonly value: string;
  /** `section.key` as in config.ini. */
  readonly source: string;
}

export type EnvQuoting =
  | { readonly ok: true; readonly text: string; readonly style: 'bare' | 'single' | 'double' }
  | { readonly ok: false; readonly problem: string };

export function quoteEnvValue(value: string): EnvQuoting {
  if (value.includes('\0')) return { ok: false, problem: 'holds a NUL character, which no environment variable can' };
  if (hasLoneSurrogate(value)) return { ok: false, problem: LONE_SURROGATE_PROBLEM };
  if (BARE.test(value)) return { ok: true, text: value, style: 'bare' };
  if (!/['\n\r]/.test(value)) return { ok: true, text: `'${value}'`, style: 'single' };
  const escaped = value.replace(/[\\"$\n\r]/g, (c) => ({ '\\': '\\\\', '"': '\\"', $: '\\$', '\n': '\\n', '\r': '\\r' })[c as '\\']);
  return { ok: true, text: `"${escaped}"`, style: 'double' };
}

/** SECTION_KEY: uppercased, every character outside [A-Z0-9_] replaced by `_`. */
export function envName(section: string, key: string): string {
  return `${section}_${key}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

function buildModel(input: RenderInput): EnvLine[] {
  const problems: string[] = [];
  const lines: EnvLine[] = [];
  const byName = new Map<string, string>();
  for (const view of sectionViews(input).values()) {
    for (const [key, value] of view.entries) {
      const source = `${view.name}.${key}`;
      const name = envName(view.name, key);
      const quoted = quoteEnvValue(value);
      if (!quoted.ok) problems.push(`${source} ${quoted.problem}`);
      if (!NAME.test(name)) {
        problems.push(`${source} would be the variable ${name}, which starts with a digit`);
        continue;
      }
      const other = byName.get(name);
      if (other) {
        problems.push(`${other} and ${source} both become ${name}`);
        continue;
      }
      byName.set(name, source);
      lines.push({ name, value, source });
    }
  }
  throwProblems(input.target, problems);
  return lines;
}

function render(input: RenderInput): string {
  const out = [`# ${GENERATED_NOTE}`];
  for (const line of buildModel(input)) {
    const quoted = quoteEnvValue(line.value);
    if (quoted.ok) out.push(`${line.name}=${quoted.text}`);
  }
  return `${out.join('\n')}\n`;
}

/**
 * Reads a .env file by exactly the rules above: `#` comment lines, blank lines, `NAME=` followed
 * by a bare, single-quoted or double-quoted value filling the rest of the line. Throws Error on
 * anything else (including a `$` that compose would interpolate).
 */
export function readEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line === '' || line.startsWith('#')) return;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(line);
    if (!match) throw new Error(`${where}: expected NAME=value`);
    const [, name = '', raw = ''] = match;
    let value: string;
    if (raw.startsWith("'")) {
      if (raw.length < 2 || !raw.endsWith("'") || raw.indexOf("'", 1) !== raw.length - 1) throw new Error(`${where}: malformed single-quoted value`);
      value = raw.slice(1, -1);
    } else if (raw.startsWith('"')) {
      value = '';
      let i = 1;
      for (; i < raw.length && raw[i] !== '"'; i++) {
        const c = raw[i]!;
        if (c === '$') throw new Error(`${where}: unescaped "$" would be interpolated`);
        if (c !== '\\') {
          value += c;
          continue;
        }
        const next = raw[++i];
        const unescaped = next === 'n' ? '\n' : next === 'r' ? '\r' : next === '\\' || next === '"' || next === '$' ? next : undefined;
        if (unescaped === undefined) throw new Error(`${where}: unknown escape in a double-quoted value`);
        value += unescaped;
      }
      if (i !== raw.length - 1) throw new Error(`${where}: malformed double-quoted value`);
    } else {
      if (!BARE.test(raw)) throw new Error(`${where}: an unquoted value holds a character that needs quoting`);
      value = raw;
    }
    if (out.has(name)) throw new Error(`${where}: duplicate variable`);
    out.set(name, value);
  });
  return out;
}

function verify(output: string, input: RenderInput): void {
  const model = buildModel(input);
  let actual: Map<string, string>;
  try {
    actual = readEnvFile(output);
  } catch (error) {
    throw unparsable(input.target, '.env', (error as Error).message);
  }
  const wrong = model.filter((line) => actual.get(line.name) !== line.value).map((line) => line.source);
  const extra = actual.size - model.filter((line) => actual.has(line.name)).length;
  if (extra > 0) wrong.push(`${extra} variable(s) that were not rendered`);
  if (wrong.length > 0) throw readBackFailed(input.target, wrong);
}

export const envRenderer: Renderer = { format: 'env', render, verify };
