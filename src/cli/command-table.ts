/**
 * The command line's one table: every command with its positional arguments, options (type,
 * default) and one-line summary. Parsing (node:util parseArgs), the usage text, each command's
 * `--help` and the usage errors are all made from it, so a command cannot exist without its help.
 * Pure: argv in, a parsed command or a text to print out.
 */
import { parseArgs } from 'node:util';
import { MAX_HISTORY_LIMIT } from '../history/history-queries.js';
import { ENVIRONMENT } from '../runtime-config.js';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  /** The value's placeholder in the usage (`--limit N`). */
  readonly placeholder?: string;
  readonly default?: string;
  /** A whole number within these bounds (a string option's value). */
  readonly range?: { readonly min: number; readonly max: number };
  readonly description: string;
}

export interface PositionalSpec {
  readonly name: string;
  /** When set, the argument must be one of these (`apikey show|rotate`). */
  readonly choices?: readonly string[];
  readonly description: string;
}

export interface CommandSpec {
  readonly name: string;
  /** One line, shown in the command list and on top of the command's help. */
  readonly summary: string;
  /** What the command's help adds below the summary. */
  readonly details?: string;
  readonly positionals?: readonly PositionalSpec[];
  /** Any number of further arguments (`NAME=VALUE …`), after the positionals. */
  readonly rest?: { readonly name: string; readonly description: string };
  readonly options?: Readonly<Record<string, OptionSpec>>;
  /** The command reads the environment table (serve): its help lists it. */
  readonly environment?: boolean;
}

export const COMMANDS = [
  {
    name: 'serve',
    summary: 'run the REST API and the sync worker (the default command)',
    details:
      'On an empty data directory it installs config.ini and system.ini from the shipped defaults, generates the API key, the master key and the empty service passwords, then renders every target and reloads the services it can reach.',
    environment: true,
  },
  {
    name: 'once',
    summary: 'do what a start does, reconcile every target once, and exit (init containers, CI)',
    details:
      'Prints each step on its own line: defaults installed, keys and passwords generated, the revision committed to the history, then the outcome of every target. Unreachable services are reported, not failures; exit 1 when a target failed. Refuses to run beside a running confhub. Reads the same environment as serve (confhub serve --help).',
  },
  { name: 'validate', summary: 'check config.ini and system.ini', details: 'Exit 0 when both are valid; 1 with every problem on stderr.' },
  {
    name: 'plan',
    summary: 'show what a sync would change, writing nothing',
    details: 'Per target: create, update, mode or unchanged, with a unified diff whose secrets are masked. Exit 1 when a target cannot be rendered.',
  },
  {
    name: 'history',
    summary: 'list the newest commits of config.ini',
    details: 'One line per commit: id, time, actor, source, sync outcome, summary.',
    options: {
      limit: {
        type: 'string',
        placeholder: 'N',
        default: '20',
        range: { min: 1, max: MAX_HISTORY_LIMIT },
        description: `how many commits, from 1 to ${MAX_HISTORY_LIMIT}`,
      },
    },
  },
  {
    name: 'rollback',
    summary: "restore config.ini to a commit's content",
    details: 'Validated and audited like an API write; a running confhub applies it like a hand edit.',
    positionals: [{ name: 'commit', description: 'the commit to restore (an id from confhub history, 4 to 40 hex digits)' }],
  },
  {
    name: 'edit',
    summary: 'edit config.ini in $VISUAL or $EDITOR (default vi), validated on save',
    details:
      'The editor gets a private copy. On save it is held to the API rules and applied, audited, merged with writes made meanwhile; a copy that is not valid is opened again with the reasons on top (exit 1 when given up).',
  },
  {
    name: 'apikey',
    summary: 'print the API key, or replace it with a new random one',
    details: 'show: the key clients send in the x-api-key header. rotate: a new random key, printed; a running confhub takes it at once.',
    positionals: [{ name: 'action', choices: ['show', 'rotate'], description: 'what to do with the key' }],
  },
  {
    name: 'masterkey',
    summary: 'seal every secret of config.ini with a new master key',
    details: 'confhub must be stopped. The old key is kept in master.key.retired to open older history.',
    positionals: [{ name: 'action', choices: ['rotate'], description: 'what to do with the key' }],
  },
  {
    name: 'template',
    summary: 'list, show, preview or apply a configuration template',
    details:
      'list: the shipped templates and your own (templates/ in the config directory). show NAME: its variables and the sections it sets. preview NAME [VAR=VALUE …]: what applying it would change (config.ini diff and targets, secrets masked), writing nothing; exit 1 when it would be refused. apply NAME [VAR=VALUE …]: one write, all or nothing, validated and audited like an API write; a running confhub applies it like a hand edit.',
    positionals: [{ name: 'action', choices: ['list', 'show', 'preview', 'apply'], description: 'what to do' }],
    rest: { name: 'NAME [VAR=VALUE …]', description: 'the template, then its variables (a list type takes comma-separated items)' },
    options: {
      environment: {
        type: 'string',
        placeholder: 'NAME',
        description: "preview or apply into this environment's overlays [section@NAME] instead of the sections",
      },
    },
  },
  {
    name: 'token',
    summary: "make, list or revoke a target's read-only tokens (for services that pull their files)",
    details:
      "create TARGET: a new token, printed once: give it to the service's container as a file (CONFHUB_TOKEN_FILE of confhub-init.sh). list TARGET: its tokens (ids, never the tokens). revoke TARGET ID: refused from the next request on. Works beside a running confhub; audited.",
    positionals: [{ name: 'action', choices: ['create', 'list', 'revoke'], description: 'what to do' }],
    rest: { name: 'TARGET [ID]', description: 'the target of system.ini, then for revoke the token id' },
    options: {
      description: { type: 'string', placeholder: 'TEXT', description: 'with create: what holds the token (the service container, say)' },
    },
  },
  { name: 'version', summary: 'print the version (also --version)' },
] as const satisfies readonly CommandSpec[];

export type CommandName = (typeof COMMANDS)[number]['name'];

export type ParsedCommandLine =
  | { readonly kind: 'print'; readonly text: string }
  | { readonly kind: 'version' }
  | {
      readonly kind: 'run';
      readonly command: Exclude<CommandName, 'version'>;
      /** By the positional's name. */
      readonly args: Readonly<Record<string, string>>;
      /** The further arguments of a command that takes them (`rest`). */
      readonly rest?: readonly string[];
      /** By the option's name, defaults filled in. */
      readonly options: Readonly<Record<string, string | boolean | undefined>>;
    }
  /** A usage error: one line naming the problem and where the help is; exit code 2. */
  | { readonly kind: 'usage-error'; readonly message: string };

const HELP_OPTION: OptionSpec = { type: 'boolean', description: 'print this help' };

function specOf(name: string): CommandSpec | undefined {
  return (COMMANDS as readonly CommandSpec[]).find((c) => c.name === name);
}

/** The command with its arguments, as the usage shows it: `history [--limit N]`, `apikey show|rotate`. */
function synopsis(command: CommandSpec): string {
  const positionals = [
    ...(command.positionals ?? []).map((p) => (p.choices ? p.choices.join('|') : `<${p.name}>`)),
    ...(command.rest ? [`[${command.rest.name}]`] : []),
  ];
  const options = Object.entries(command.options ?? {}).map(([name, o]) => `[--${name}${o.placeholder ? ` ${o.placeholder}` : ''}]`);
  return [command.name, ...positionals, ...options].join(' ');
}

/** Wraps `text` into lines of at most `width` characters, each prefixed by `indent`. */
function wrap(text: string, width: number, indent = ''): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines.map((l) => `${indent}${l}`).join('\n');
}

/** Rows of two or three columns, each column as wide as its widest cell. */
function columns(rows: readonly (readonly string[])[], indent = '  '): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => `${indent}${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}`.trimEnd()).join('\n');
}

export function usage(version: string): string {
  return `confhub ${version}: configuration center for all-in-one container deployments

Usage: confhub [command] [arguments]

Commands:
${columns(COMMANDS.map((c) => [synopsis(c), c.summary]))}

confhub <command> --help explains a command; confhub serve --help lists the environment variables.
`;
}

export function commandHelp(command: CommandSpec): string {
  const name = command.name === 'serve' ? '[serve]' : command.name;
  const parts = [`Usage: confhub ${synopsis({ ...command, name })}`, wrap(`${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.`, 78)];
  if (command.details) parts.push(wrap(command.details, 78));
  // A choice of actions is explained by the details; a free argument gets its line here.
  const positionals = [
    ...(command.positionals ?? []).filter((p) => !p.choices).map((p) => [`<${p.name}>`, p.description]),
    ...(command.rest ? [[command.rest.name, command.rest.description]] : []),
  ];
  if (positionals.length > 0) parts.push(`Arguments:\n${columns(positionals)}`);
  const options = Object.entries({ ...(command.options ?? {}), help: HELP_OPTION }).map(([name, o]) => [
    `${name === 'help' ? '-h, ' : ''}--${name}${o.placeholder ? ` ${o.placeholder}` : ''}`,
    `${o.description}${o.default !== undefined ? ` (default ${o.default})` : ''}`,
  ]);
  parts.push(`Options:\n${columns(options)}`);
  if (command.environment) parts.push(`Environment (variable, default, meaning):\n${columns(ENVIRONMENT.map((e) => [e.name, e.default, e.meaning]))}`);
  return `${parts.join('\n\n')}\n`;
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** ` (did you mean X?)` when one candidate is close to what was typed. */
function suggestion(typed: string, candidates: readonly string[], prefix = ''): string {
  const close = candidates
    .map((c) => ({ c, d: distance(typed.toLowerCase(), c) }))
    .filter(({ c, d }) => d <= Math.max(1, Math.floor(c.length / 3)) || (typed.length >= 2 && c.startsWith(typed.toLowerCase())))
    .sort((x, y) => x.d - y.d);
  return close.length > 0 ? ` (did you mean ${prefix}${close[0]!.c}?)` : '';
}

/** Parses `argv` (without node and the script) against the table. */
export function parseCommandLine(argv: readonly string[], { version }: { version: string }): ParsedCommandLine {
  const [first, ...rest] = argv;
  if (first === undefined) return { kind: 'run', command: 'serve', args: {}, options: {} };
  if (first === '--version') return rest.length === 0 ? { kind: 'version' } : parseCommandLine(['version', ...rest], { version });
  if (first === '--help' || first === '-h' || first === 'help') {
    const about = rest[0] === undefined ? undefined : specOf(rest[0]);
    if (rest[0] !== undefined && !about) return unknownCommand(rest[0]);
    return { kind: 'print', text: about ? commandHelp(about) : usage(version) };
  }
  // Options without a command are serve's.
  const name = first.startsWith('-') ? 'serve' : first;
  const command = specOf(name);
  if (!command) return unknownCommand(name);
  const args = first.startsWith('-') ? argv : rest;
  const declared: Record<string, OptionSpec> = { ...(command.options ?? {}), help: HELP_OPTION };
  const { tokens } = parseArgs({
    args: [...args],
    options: Object.fromEntries(Object.entries(declared).map(([n, o]) => [n, { type: o.type, ...(n === 'help' ? { short: 'h' } : {}) }])),
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const fail = (problem: string): ParsedCommandLine => ({
    kind: 'usage-error',
    message: `confhub: ${command.name}: ${problem}; see confhub ${command.name} --help`,
  });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return { kind: 'print', text: commandHelp(command) };
  const options: Record<string, string | boolean | undefined> = {};
  for (const [n, o] of Object.entries(declared)) if (o.default !== undefined) options[n] = o.default;
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value);
    if (token.kind !== 'option') continue;
    const spec = declared[token.name];
    if (!spec) return fail(`unknown option ${token.rawName}${suggestion(token.name, Object.keys(declared), '--')}`);
    if (spec.type === 'string' && token.value === undefined) return fail(`${token.rawName} needs a value (${token.rawName} ${spec.placeholder ?? 'VALUE'})`);
    if (spec.type === 'boolean' && token.value !== undefined) return fail(`${token.rawName} takes no value`);
    if (spec.range && token.value !== undefined) {
      const n = /^\d{1,9}$/.test(token.value) ? Number(token.value) : Number.NaN;
      if (!(n >= spec.range.min && n <= spec.range.max)) {
        return fail(`${token.rawName} must be a whole number from ${spec.range.min} to ${spec.range.max}, got "${token.value}"`);
      }
    }
    options[token.name] = token.value ?? true;
  }
  const expected = command.positionals ?? [];
  const named: Record<string, string> = {};
  for (const [i, p] of expected.entries()) {
    const value = positionals[i];
    if (value === undefined) return fail(`missing ${p.choices ? p.choices.join('|') : `<${p.name}>`}: ${p.description}`);
    if (p.choices && !p.choices.includes(value)) return fail(`unknown ${p.name} "${value}"${suggestion(value, p.choices)}; expected ${p.choices.join(' or ')}`);
    named[p.name] = value;
  }
  const extra = positionals[expected.length];
  if (extra !== undefined && !command.rest) return fail(`unexpected argument "${extra}"`);
  if (command.name === 'version') return { kind: 'version' };
  const further = command.rest ? { rest: positionals.slice(expected.length) } : {};
  return { kind: 'run', command: command.name as Exclude<CommandName, 'version'>, args: named, options, ...further };
}

function unknownCommand(name: string): ParsedCommandLine {
  const hint = suggestion(
    name,
    COMMANDS.map((c) => c.name),
  );
  return { kind: 'usage-error', message: `confhub: unknown command "${name}"${hint}; see confhub --help` };
}
