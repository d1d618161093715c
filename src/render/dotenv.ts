/**
 * `.env` files for docker compose v2, written so that compose reads back exactly the stored value,
 * and a port of the reader compose uses (compose-go's `dotenv` package with the `template`
 * interpolation it applies), so that claim is tested against compose's own rules.
 *
 * Writing rule: every value double-quoted; `\` → `\\` (`\0134` when it is the last character),
 * `"` → `\"`, LF → `\n`, CR → `\r`, `$` → `$$`; every other character verbatim. Why this reads back
 * exactly, step by step through compose-go's `extractVarValue` for a double-quoted value:
 * 1. the scan for the closing quote keeps every `\X` pair as written, except `\"`, which becomes
 *    `"`; a `"` after an even run of backslashes ends the value;
 * 2. `expandEscapes` turns `\\`, `\0134` (octal), `\n`, `\r` into `\`, `\`, LF, CR (the pairs are
 *    consumed left to right, so `\\n` stays a backslash followed by `n`);
 * 3. `template.Substitute` interpolates: `$$` is its escape for `$`, and since every `$` was doubled
 *    no `$NAME`, `${…}` or `${X:-y}` is ever seen, nothing is looked up and nothing can fail.
 * `$$` rather than `\$`: compose-go has read `$$` as `$` in double-quoted values since it began to
 * interpolate them with its template package (compose-go 1.2.9, docker compose 2.7); `\$` only since
 * compose-go 1.6 (compose 2.12) — in between the backslash is kept. Single quotes are not used:
 * compose reads `\'` inside them as an escaped quote, so a value ending in a backslash cannot be
 * single-quoted. The octal spelling of a final backslash is for compose 2.12 to 2.19 (compose-go 1.6
 * to 1.15), whose scan took the `"` after `\\` for an escaped quote; before 2.12 no spelling of a
 * final backslash reads back.
 */
import { AppError } from '../core/errors.js';
import { LONE_SURROGATE_PROBLEM, hasLoneSurrogate } from './render-input.js';

/** The variable names the product stores (issue: env names); compose reads a wider set. */
export const DOTENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const DOTENV_NAME_MAX = 256;

const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', $: '$$' };

/** Why a value cannot be written to a .env file, or undefined when it can. Never quotes the value. */
export function dotenvValueProblem(value: string): string | undefined {
  if (value.includes('\0')) return 'holds a NUL character, which no environment variable can';
  if (hasLoneSurrogate(value)) return LONE_SURROGATE_PROBLEM;
  return undefined;
}

/** Why a name cannot be a variable of a .env file, or undefined when it can. */
export function dotenvNameProblem(name: string): string | undefined {
  if (name.length > DOTENV_NAME_MAX) return `is longer than ${DOTENV_NAME_MAX} characters`;
  if (!DOTENV_NAME.test(name)) return 'is not a variable name (letters, digits and _, not starting with a digit)';
  return undefined;
}

/** The value as written after `NAME=`: double-quoted by the rule above. */
export function quoteDotenvValue(value: string): string {
  const body = value.replace(/[\\"\n\r$]/g, (c) => ESCAPES[c]!);
  return `"${value.endsWith('\\') ? `${body.slice(0, -2)}\\0134` : body}"`;
}

export type DotenvLine = { readonly ok: true; readonly line: string } | { readonly ok: false; readonly problem: string };

/** One `NAME="value"` line (without its line break), or the problem that refuses it. */
export function dotenvLine(name: string, value: string): DotenvLine {
  const nameProblem = dotenvNameProblem(name);
  if (nameProblem) return { ok: false, problem: `variable name ${JSON.stringify(name)} ${nameProblem}` };
  const valueProblem = dotenvValueProblem(value);
  if (valueProblem) return { ok: false, problem: `${name} ${valueProblem}` };
  return { ok: true, line: `${name}=${quoteDotenvValue(value)}` };
}

export interface DotenvVariable {
  readonly name: string;
  readonly value: string;
}

/**
 * Every reason the variables cannot be written, naming variables and never values. Names that
 * differ only by case are refused too: compose keeps both, but the product's store cannot.
 */
export function dotenvProblems(vars: readonly DotenvVariable[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const { name, value } of vars) {
    const line = dotenvLine(name, value);
    if (!line.ok) problems.push(line.problem);
    const other = seen.get(name.toUpperCase());
    if (other === name) problems.push(`${name} is given twice`);
    else if (other !== undefined) problems.push(`${other} and ${name} differ only in case`);
    else seen.set(name.toUpperCase(), name);
  }
  return problems;
}

/**
 * The whole file: the header as `#` comment lines, then one line per variable in the given order,
 * LF line breaks, a final line break. Throws RENDER_FAILED listing every problem (see
 * dotenvProblems) and writes nothing partial.
 */
export function renderDotenv(vars: readonly DotenvVariable[], header?: string): string {
  const problems = dotenvProblems(vars);
  if (problems.length > 0) throw new AppError('RENDER_FAILED', { details: problems.join('; ') });
  const out = header === undefined ? [] : header.split(/\r\n|\r|\n/).map((text) => (text === '' ? '#' : `# ${text}`));
  for (const { name, value } of vars) out.push(`${name}=${quoteDotenvValue(value)}`);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// The reader: compose-go dotenv/parser.go, dotenv/godotenv.go (parseWithLookup, expandVariables)
// and template/template.go (Substitute), ported function by function. Go walks the text by bytes
// where it looks only for ASCII delimiters; UTF-16 code units give the same cuts, because neither a
// UTF-8 continuation byte nor a surrogate is ever ASCII.
// ---------------------------------------------------------------------------------------------

/** A variable's value from outside the file, or undefined when unset. */
export type DotenvLookup = (name: string) => string | undefined;

/**
 * A file compose would refuse. The message is compose-go's, which quotes text of the file: a
 * caller must not show it where values may be secret (`line` is safe).
 */
export class ComposeDotenvError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
    this.name = 'ComposeDotenvError';
  }
}

/** template.InvalidTemplateError / MissingRequiredError, before the parser adds its line. */
class TemplateError extends Error {
  constructor(
    readonly kind: 'invalid' | 'required',
    message: string,
    readonly template = '',
  ) {
    super(message);
  }
}

const UNICODE_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/;
/** Go's unicode.IsSpace (JavaScript's \s differs: it has U+FEFF and lacks U+0085). */
const isUnicodeSpace = (c: string): boolean => UNICODE_SPACE.test(c);
/** parser.go isSpace: a space that is not a line break. */
const isSpace = (c: string): boolean => c === '\t' || c === '\v' || c === '\f' || c === '\r' || c === ' ' || c === '\u0085' || c === '\u00a0';
const isKeyLetter = (c: string): boolean => /^[\p{L}\p{N}]$/u.test(c);

function trimLeft(text: string, space: (c: string) => boolean): string {
  let i = 0;
  while (i < text.length && space(text[i]!)) i++;
  return text.slice(i);
}

function trimRight(text: string, space: (c: string) => boolean): string {
  let end = text.length;
  while (end > 0 && space(text[end - 1]!)) end--;
  return text.slice(0, end);
}

export interface ReadComposeDotenvOptions {
  /**
   * Consulted before the file's own variables for `$X`/`${X}` in unquoted and double-quoted values
   * and for a bare `NAME` line. Compose passes, for a project's `.env`, the shell environment and
   * then the variables read so far; for a service's env_file, the project's variables.
   */
  readonly lookup?: DotenvLookup;
  /** The map to read into (compose reads several files into one); a new one when absent. */
  readonly into?: Map<string, string>;
}

/**
 * What compose reads from a `.env` text: dotenv.ParseWithLookup (a leading UTF-8 BOM is skipped).
 * Throws ComposeDotenvError where compose fails to load the file.
 */
export function readComposeDotenv(text: string, options: ReadComposeDotenvOptions = {}): Map<string, string> {
  const out = options.into ?? new Map<string, string>();
  new Parser(out, options.lookup ?? (() => undefined)).parse(text.startsWith('\uFEFF') ? text.slice(1) : text);
  return out;
}

class Parser {
  private line = 1;

  constructor(
    private readonly out: Map<string, string>,
    private readonly lookup: DotenvLookup,
  ) {}

  parse(src: string): void {
    let cutset = src;
    for (;;) {
      cutset = this.statementStart(cutset);
      if (cutset === '') return;
      const { key, left, inherited } = this.locateKeyName(cutset);
      if (key.includes(' ')) throw new ComposeDotenvError(`line ${this.line}: key cannot contain a space`, this.line);
      if (inherited) {
        const value = this.lookup(key);
        if (value !== undefined) this.out.set(key, value);
        cutset = left;
        continue;
      }
      const extracted = this.extractVarValue(left);
      this.out.set(key, extracted.value);
      cutset = extracted.rest;
    }
  }

  /** getStatementStart: skips white space and `#` comment lines. */
  private statementStart(src: string): string {
    let rest = src;
    for (;;) {
      const pos = this.indexOfNonSpaceChar(rest);
      if (pos === -1) return '';
      rest = rest.slice(pos);
      if (rest[0] !== '#') return rest;
      const newline = rest.indexOf('\n');
      if (newline === -1) return '';
      rest = rest.slice(newline);
    }
  }

  private indexOfNonSpaceChar(src: string): number {
    for (let i = 0; i < src.length; i++) {
      const c = src[i]!;
      if (c === '\n') this.line++;
      if (!isUnicodeSpace(c)) return i;
    }
    return -1;
  }

  private locateKeyName(input: string): { key: string; left: string; inherited: boolean } {
    let src = input;
    if (/^export[\t\n\f\r ]+/.test(src)) src = trimLeft(src.slice('export'.length), isSpace);
    let key = '';
    let offset = 0;
    let inherited = false;
    let i = 0;
    for (const c of src) {
      if (!isSpace(c)) {
        if (c === '=' || c === ':' || c === '\n') {
          key = src.slice(0, i);
          offset = i + 1;
          inherited = c === '\n';
          break;
        }
        if (!'_.-[]'.includes(c) && !isKeyLetter(c)) {
          const message = `line ${this.line}: unexpected character ${goQuote(c)} in variable name ${goQuote(src.split('\n')[0]!)}`;
          throw new ComposeDotenvError(message, this.line);
        }
      }
      i += c.length;
    }
    if (src === '') throw new ComposeDotenvError('zero length string', this.line);
    if (inherited && !key.includes(' ')) this.line++;
    return { key: trimRight(key, isUnicodeSpace), left: trimLeft(src.slice(offset), isSpace), inherited };
  }

  private extractVarValue(src: string): { value: string; rest: string } {
    const quote = src[0];
    if (quote !== '"' && quote !== "'") {
      const newline = src.indexOf('\n');
      let value = newline === -1 ? src : src.slice(0, newline);
      const rest = newline === -1 ? '' : src.slice(newline + 1);
      this.line++;
      const comment = value.indexOf(' #');
      if (comment !== -1) value = value.slice(0, comment);
      return { value: this.expandVariables(trimRight(value, isUnicodeSpace)), rest };
    }
    let previousCharIsEscape = false;
    let chars = '';
    for (let i = 1; i < src.length; i++) {
      const c = src[i]!;
      if (c === '\n') this.line++;
      if (c !== quote) {
        if (!previousCharIsEscape && c === '\\') {
          previousCharIsEscape = true;
          continue;
        }
        if (previousCharIsEscape) {
          previousCharIsEscape = false;
          chars += '\\';
        }
        chars += c;
        continue;
      }
      if (previousCharIsEscape) {
        previousCharIsEscape = false;
        chars += c;
        continue;
      }
      const value = quote === '"' ? this.expandVariables(expandEscapes(chars)) : chars;
      return { value, rest: src.slice(i + 1) };
    }
    const end = src.indexOf('\n');
    const message = `line ${this.line}: unterminated quoted value ${end === -1 ? src : src.slice(0, end)}`;
    throw new ComposeDotenvError(message, this.line);
  }

  /** godotenv.go expandVariables: the lookup first, then the variables read so far. */
  private expandVariables(value: string): string {
    try {
      return substitute(value, (name) => this.lookup(name) ?? this.out.get(name));
    } catch (error) {
      if (error instanceof TemplateError) throw new ComposeDotenvError(error.message, this.line);
      throw error;
    }
  }
}

const ESCAPE_SEQUENCE = /\\(?:[abcfnrtv$"\\]|0[0-9]{0,3})/g;
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"' };

/** parser.go expandEscapes, with strconv.UnquoteChar's rules for the sequences it lets through. */
function expandEscapes(text: string): string {
  return text.replace(ESCAPE_SEQUENCE, (match) => {
    if (match === '\\$') return '$$';
    // `\0NNN` is rewritten to Go's `\NNN`, which needs exactly three octal digits up to 255;
    // otherwise UnquoteChar fails and the rewritten text is kept.
    const sequence = match.startsWith('\\0') ? `\\${match.slice(2)}` : match;
    const octal = /^\\([0-7]{3})$/.exec(sequence);
    if (octal) {
      const code = Number.parseInt(octal[1]!, 8);
      return code <= 255 ? String.fromCodePoint(code) : sequence;
    }
    return SIMPLE_ESCAPES[sequence.slice(1)] ?? sequence;
  });
}

const GO_SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
  '"': '\\"',
  '\\': '\\\\',
};

/** Go's %q (strconv.Quote), which compose's messages use: printable characters stay, others are escaped. */
function goQuote(text: string): string {
  let out = '';
  for (const c of text) {
    const code = c.codePointAt(0)!;
    const short = GO_SHORT_ESCAPES[c];
    if (short) out += short;
    else if (c === ' ' || /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(c)) out += c;
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (code < 0x10000) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return `"${out}"`;
}

// template/template.go. Go's `(?i:…)` folds case as Unicode does (`ſ` is an `s`), which JavaScript
// does only with the `u` flag; Go's `.` is any character but LF, JavaScript's also stops at CR,
// U+2028 and U+2029, hence `[^\n]`.
const PATTERN_SOURCE = String.raw`\$(?:(?<escaped>\$)|(?<named>[_a-z][_a-z0-9]*)|\{(?:(?<braced>[_a-z][_a-z0-9]*(?::?[\-+?][^\n]*)?)\}|(?<invalid>)))`;
const PATTERN_ALL = new RegExp(PATTERN_SOURCE, 'giu');
const PATTERN_FIRST = new RegExp(PATTERN_SOURCE, 'iu');

type Mapping = (name: string) => string | undefined;
interface Applied {
  readonly value: string;
  readonly applied: boolean;
}
type SubstituteFunc = (substitution: string, mapping: Mapping) => Applied;

/** template.Substitute: throws the first TemplateError, as Go returns it. */
function substitute(template: string, mapping: Mapping): string {
  try {
    return template.replace(PATTERN_ALL, (substring) => replacement(substring, mapping));
  } catch (error) {
    if (error instanceof TemplateError && error.kind === 'invalid' && error.template === '') {
      throw new TemplateError('invalid', `Invalid template: ${goQuote(template)}`, template);
    }
    throw error;
  }
}

/** template.DefaultReplacementAppliedFunc. */
function replacement(matched: string, mapping: Mapping): string {
  const substituteFunc = substitutionFunctionFor(matched);
  let substring = matched;
  let rest = '';
  const closingBrace = firstBraceClosingIndex(substring);
  if (closingBrace > -1) {
    rest = substring.slice(closingBrace + 1);
    substring = substring.slice(0, closingBrace + 1);
  }
  const groups = PATTERN_FIRST.exec(substring)?.groups ?? {};
  if (groups.escaped) return groups.escaped;
  let braced = false;
  let substitution = groups.named ?? '';
  if (substitution === '') {
    substitution = groups.braced ?? '';
    braced = true;
  }
  if (substitution === '') throw new TemplateError('invalid', 'Invalid template: ""');
  if (braced && substituteFunc) {
    const result = substituteFunc(substitution, mapping);
    if (result.applied) return result.value + substitute(rest, mapping);
  }
  return mapping(substitution) ?? '';
}

const SUBSTITUTE_FUNCS: readonly (readonly [string, SubstituteFunc])[] = [
  [':?', (s, m) => withRequired(s, m, true)],
  ['?', (s, m) => withRequired(s, m, false)],
  [':-', (s, m) => withDefaultWhenAbsence(s, m, true)],
  ['-', (s, m) => withDefaultWhenAbsence(s, m, false)],
  [':+', (s, m) => withDefaultWhenPresence(s, m, true)],
  ['+', (s, m) => withDefaultWhenPresence(s, m, false)],
];

/**
 * getSubstitutionFunctionForTemplate: the operator that occurs first in the matched text. When
 * none occurs Go picks one anyway, and it applies to nothing (its separator is absent).
 */
function substitutionFunctionFor(template: string): SubstituteFunc | undefined {
  let best: SubstituteFunc | undefined;
  let bestIndex = Number.POSITIVE_INFINITY;
  for (const [separator, fn] of SUBSTITUTE_FUNCS) {
    const index = template.indexOf(separator);
    if (index >= 0 && index < bestIndex) {
      best = fn;
      bestIndex = index;
    }
  }
  return best;
}

/** getFirstBraceClosingIndex, including its skip of the character after each `{`. */
function firstBraceClosingIndex(text: string): number {
  let open = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '}') {
      open--;
      if (open === 0) return i;
    }
    if (text[i] === '{') {
      open++;
      i++;
    }
  }
  return -1;
}

function partition(text: string, separator: string): [string, string] {
  const at = text.indexOf(separator);
  return at === -1 ? [text, ''] : [text.slice(0, at), text.slice(at + separator.length)];
}

function withDefaultWhenAbsence(substitution: string, mapping: Mapping, emptyOrUnset: boolean): Applied {
  const separator = emptyOrUnset ? ':-' : '-';
  if (!substitution.includes(separator)) return { value: '', applied: false };
  const [name, defaultValue] = partition(substitution, separator);
  const value = mapping(name);
  if (value === undefined || (emptyOrUnset && value === '')) return { value: substitute(defaultValue, mapping), applied: true };
  return { value, applied: true };
}

function withDefaultWhenPresence(substitution: string, mapping: Mapping, notEmpty: boolean): Applied {
  const separator = notEmpty ? ':+' : '+';
  if (!substitution.includes(separator)) return { value: '', applied: false };
  const [name, presenceValue] = partition(substitution, separator);
  const value = mapping(name);
  if (value !== undefined && (!notEmpty || value !== '')) return { value: substitute(presenceValue, mapping), applied: true };
  return { value: value ?? '', applied: true };
}

function withRequired(substitution: string, mapping: Mapping, notEmpty: boolean): Applied {
  const separator = notEmpty ? ':?' : '?';
  if (!substitution.includes(separator)) return { value: '', applied: false };
  const [name, errorMessage] = partition(substitution, separator);
  const value = mapping(name);
  if (value === undefined || (notEmpty && value === '')) {
    const reason = substitute(errorMessage, mapping);
    throw new TemplateError('required', `required variable ${name} is missing a value${reason === '' ? '' : `: ${reason}`}`);
  }
  return { value, applied: true };
}
