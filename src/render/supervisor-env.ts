/**
 * The include file that gives one supervisord program its environment: `[program:PROG]` with
 * only `environment=`. supervisord reads `[include] files=` after the whole main file, into the
 * same parser (RawConfigParser, strict=False), so this section merges onto the main file's
 * `[program:PROG]` and its `environment` replaces the main file's (options.py read_config:
 * `parser.read(filename)` per included file; configparser keeps one section per name across
 * files). The main file keeps the program's definition; its own `environment=` of that program
 * is replaced as a whole, not merged per variable. An include for a program the main file does
 * not define is a program without `command`: supervisord refuses the whole configuration (at its
 * start, and as CANT_REREAD on reloadConfig).
 *
 * What supervisord 4.2 does to the text, in order, and what that asks of the writer:
 * 1. configparser (UnhosedConfigParser: inline_comment_prefixes `;` `#`): each physical line is
 *    cut at a `;` or `#` that starts the line or follows whitespace (Python `str.isspace`), then
 *    stripped; a continuation line (indented) whose text starts with `;` or `#` is a comment and
 *    dropped; the kept lines are joined with `\n`. The file is read in text mode, so `\r` becomes a
 *    line break.
 * 2. `expand_here` replaces every `%(here)s` in the text by the include's directory.
 * 3. `expand`: the text is `%`-formatted with the program's expansions (`s % expansions`).
 * 4. `dict_of_key_value_pairs`: `shlex.shlex` in non-POSIX mode (no escapes at all; a quoted
 *    token runs to the next same quote; `#` outside quotes starts a comment) splits
 *    `NAME = value ,`, and each value token is stripped of every leading and trailing `'` and `"`.
 *
 * So each value is one quoted token (`"` unless it holds a `"`, then `'`), `%` is written `%%`,
 * and where steps 1–2 would change the text the writer puts `%(program_name).0s` — a
 * precision-0 expansion of a name every program has, which formats to nothing — in between: before
 * a `;`/`#` that follows whitespace or starts a line, at the start of a line that starts with
 * whitespace, at the end of a line that ends with whitespace, and after a `%%`
 * followed by `(`. A line break of the value is a line break of the file: the token continues on
 * an indented continuation line. What no spelling carries is refused, naming the variable:
 * NUL, `\r`, both quote kinds in one value, a `'` or `"` at either end, half a surrogate pair.
 * Non-ASCII text is written as UTF-8, which supervisord reads in a UTF-8 or C locale (Python ≥ 3.7
 * reads the C locale as UTF-8).
 */
import { GENERATED_NOTE, LONE_SURROGATE_PROBLEM, hasLoneSurrogate, readBackFailed, renderFailed, throwProblems, unparsable } from './render-input.js';
import type { RenderInput, Renderer } from './types.js';

/** Formats to nothing when supervisord expands `environment` (see above). */
export const SUPERVISOR_EMPTY_EXPANSION = '%(program_name).0s';

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;
/** supervisord refuses ' ', ':' and '/' in a program name; ']' would end the section header. */
const PROGRAM_NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const CONTINUATION_INDENT = '    ';
/** Python's str.isspace(): what configparser strips and what makes a following `;`/`#` a comment. */
const PY_SPACE = new Set(
  '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000',
);

export interface SupervisorEnvInput {
  /** The target's name, for problem texts. */
  readonly target: string;
  /** The supervisord program (`[program:PROG]` of the main configuration). */
  readonly program: string;
  /** The program's whole environment beyond supervisord's own; written sorted by name. */
  readonly variables: ReadonlyMap<string, string>;
}

/** Why supervisord could not be given this value exactly; undefined when it can. Never quotes the value. */
export function supervisorEnvValueProblem(value: string): string | undefined {
  if (value.includes('\0')) return 'holds a NUL character, which no environment variable can';
  if (value.includes('\r')) return 'holds a carriage return, which supervisord reads as a line break';
  if (hasLoneSurrogate(value)) return LONE_SURROGATE_PROBLEM;
  if (value.includes('"') && value.includes("'")) return 'holds both \' and ", which supervisord cannot read in one value';
  if (/^['"]|['"]$/.test(value)) return 'starts or ends with a quote character, which supervisord strips';
  return undefined;
}

/** One line of the value, guarded where configparser would strip or cut it. */
function guardLine(line: string, { first }: { first: boolean }): string {
  let out = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    const atLineStart = i === 0 && !first;
    if ((c === ';' || c === '#') && (atLineStart || (i > 0 && PY_SPACE.has(line[i - 1]!)))) out += SUPERVISOR_EMPTY_EXPANSION;
    else if (atLineStart && PY_SPACE.has(c)) out += SUPERVISOR_EMPTY_EXPANSION;
    out += c === '%' ? (line[i + 1] === '(' ? `%%${SUPERVISOR_EMPTY_EXPANSION}` : '%%') : c;
  }
  if (line !== '' && PY_SPACE.has(line[line.length - 1]!)) out += SUPERVISOR_EMPTY_EXPANSION;
  return out;
}

/** A value's lines as the include file spells them (guarded, `%` doubled), for masking it in diffs. */
export function supervisorValueLines(value: string): string[] {
  return value.split('\n').map((line, index) => guardLine(line, { first: index === 0 }));
}

/** `NAME="value"` over as many lines as the value has (continuation lines indented). */
function variableLines(name: string, value: string): string[] {
  const quote = value.includes('"') ? "'" : '"';
  const lines = supervisorValueLines(value);
  lines[0] = `${name}=${quote}${lines[0]}`;
  lines[lines.length - 1] += quote;
  return lines;
}

/**
 * The include file's text. Throws RENDER_FAILED naming every variable (never its value) that
 * supervisord could not be given exactly, and a program name it could not hold.
 */
export function renderSupervisorEnv(input: SupervisorEnvInput): string {
  if (!PROGRAM_NAME.test(input.program)) {
    throw renderFailed(input.target, `program "${input.program}" is not a supervisord program name (letters, digits, _ . -)`);
  }
  const names = [...input.variables.keys()].sort();
  const problems: string[] = [];
  for (const name of names) {
    if (!VARIABLE_NAME.test(name)) {
      problems.push(`variable ${hasLoneSurrogate(name) ? '(unprintable name)' : JSON.stringify(name)} is not a valid name`);
      continue;
    }
    const problem = supervisorEnvValueProblem(input.variables.get(name)!);
    if (problem) problems.push(`variable ${name} ${problem}`);
  }
  throwProblems(input.target, problems);
  const body = names.map((name, index) => {
    const lines = variableLines(name, input.variables.get(name)!);
    if (index < names.length - 1) lines[lines.length - 1] += ',';
    return lines.map((line) => `${CONTINUATION_INDENT}${line}`).join('\n');
  });
  return [`; ${GENERATED_NOTE}`, `[program:${input.program}]`, 'environment=', ...body, ''].join('\n');
}

function inputOf(input: RenderInput): SupervisorEnvInput {
  if (!input.environment || input.program === undefined) {
    throw renderFailed(input.target, 'format supervisor_env needs env = <scope> and reload = supervisor:update:PROG');
  }
  return { target: input.target, program: input.program, variables: new Map(input.environment.map((v) => [v.name, v.value])) };
}

/**
 * The structure of the file read back: its program, and one `NAME=` entry per variable. The values
 * themselves are proven by the conformance test against supervisord's own reader.
 */
function verify(output: string, input: RenderInput): void {
  const expected = inputOf(input);
  const lines = output.split('\n');
  if (lines[1] !== `[program:${expected.program}]` || lines[2] !== 'environment=')
    throw unparsable(input.target, 'supervisord include', 'no [program] section with environment=');
  // A value holds no character of its own quote: the first line ending in it (and a comma) ends the entry.
  const names: string[] = [];
  let quote: string | undefined;
  for (const line of lines.slice(3, -1)) {
    if (quote === undefined) {
      const start = /^ {4}([A-Za-z_][A-Za-z0-9_]*)=(["'])/.exec(line);
      if (!start) throw unparsable(input.target, 'supervisord include', 'an entry does not start with NAME=');
      names.push(start[1]!);
      quote = start[2]!;
      if (line.length > start[0].length && /["'],?$/.test(line) && line.replace(/,$/, '').endsWith(quote)) quote = undefined;
    } else if (line.replace(/,$/, '').endsWith(quote)) quote = undefined;
  }
  const wanted = [...expected.variables.keys()].sort();
  if (names.join(',') !== wanted.join(',')) throw readBackFailed(input.target, ['the variables of the environment']);
}

export const supervisorEnvRenderer: Renderer = { format: 'supervisor_env', render: (input) => renderSupervisorEnv(inputOf(input)), verify };
