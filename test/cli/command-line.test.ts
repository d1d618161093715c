/** The command table: parsing, usage errors, each command's help, and the environment table README documents. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS, commandHelp, parseCommandLine, usage } from '../../src/cli/command-table.js';
import { ENVIRONMENT, loadRuntimeConfig } from '../../src/runtime-config.js';
import { runCli } from '../support/confhub-process.js';

const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const parse = (...argv: string[]) => parseCommandLine(argv, { version: '9.9.9' });

/** Runs the CLI (commands that stop before touching a data directory). */
const cli = (args: string[]) => runCli(args, { CONFHUB_DATA_DIR: '/nonexistent/confhub-cli-test' });

/** README's environment table: variable → default cell, backticks removed. */
function readmeEnvironment(): Map<string, string> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration (environment)'));
  const table = section.slice(0, section.indexOf('\n\n', section.indexOf('|')));
  const rows = new Map<string, string>();
  for (const line of table.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const name = /^`(CONFHUB_[A-Z_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (name) rows.set(name, cells[2]!.replaceAll('`', ''));
  }
  return rows;
}

describe('the command line', () => {
  it('when an option is given as --limit=5, --limit 5 or after -h, then it parses the same; the default fills a missing one', () => {
    expect(parse('history', '--limit=5')).toMatchObject({ kind: 'run', command: 'history', options: { limit: '5' } });
    expect(parse('history', '--limit', '5')).toMatchObject({ kind: 'run', command: 'history', options: { limit: '5' } });
    expect(parse('history')).toMatchObject({ kind: 'run', options: { limit: '20' } });
    expect(parse('rollback', 'abc123')).toMatchObject({ kind: 'run', command: 'rollback', args: { commit: 'abc123' } });
    expect(parse()).toMatchObject({ kind: 'run', command: 'serve' });
    for (const argv of [
      ['rollback', 'abc123', '--help'],
      ['rollback', '-h'],
      ['history', '--limit=5', '--help'],
    ]) {
      expect(parse(...argv)).toMatchObject({ kind: 'print', text: expect.stringMatching(new RegExp(`^Usage: confhub ${argv[0]}`)) });
    }
    expect(parse('--version')).toEqual({ kind: 'version' });
    expect(parse('version')).toEqual({ kind: 'version' });
  });

  it('when an option, an argument or a command is wrong, then one line names it, suggests the close one and points at its help', () => {
    const error = (...argv: string[]) => {
      const parsed = parse(...argv);
      if (parsed.kind !== 'usage-error') throw new Error(`expected a usage error, got ${parsed.kind}`);
      expect(parsed.message).not.toContain('\n');
      return parsed.message;
    };
    expect(error('history', '--lmit', '5')).toBe('confhub: history: unknown option --lmit (did you mean --limit?); see confhub history --help');
    expect(error('history', '--limit')).toBe('confhub: history: --limit needs a value (--limit N); see confhub history --help');
    expect(error('history', '--limit=lots')).toBe('confhub: history: --limit must be a whole number from 1 to 200, got "lots"; see confhub history --help');
    expect(error('history', '--limit', '0')).toMatch(/^confhub: history: --limit must be a whole number from 1 to 200, got "0"/);
    expect(error('rollback')).toMatch(/^confhub: rollback: missing <commit>: .*; see confhub rollback --help$/);
    expect(error('apikey')).toBe('confhub: apikey: missing show|rotate: what to do with the key; see confhub apikey --help');
    expect(error('apikey', 'shw')).toBe('confhub: apikey: unknown action "shw" (did you mean show?); expected show or rotate; see confhub apikey --help');
    expect(error('validate', 'extra')).toBe('confhub: validate: unexpected argument "extra"; see confhub validate --help');
    expect(error('validate', '--verbose')).toBe('confhub: validate: unknown option --verbose; see confhub validate --help');
    expect(error('hstory')).toBe('confhub: unknown command "hstory" (did you mean history?); see confhub --help');
    expect(error('frobnicate')).toBe('confhub: unknown command "frobnicate"; see confhub --help');
  });

  it('when the usage is printed, then every command has one line and no line repeats a phrase of another', () => {
    const text = usage('9.9.9');
    for (const command of COMMANDS) expect(text).toMatch(new RegExp(`^ {2}${command.name}\\b`, 'm'));
    const lines = text.split('\n').filter((line) => line.startsWith('  '));
    const summaries = lines.map((line) => line.trim().split(/\s{2,}/)[1]!);
    // No two summaries share a run of four words.
    const runs = new Map<string, number>();
    summaries.forEach((summary, i) => {
      const words = summary.split(' ');
      for (let w = 0; w + 4 <= words.length; w++) {
        const run = words.slice(w, w + 4).join(' ');
        expect(runs.get(run) ?? i, `"${run}" is repeated`).toBe(i);
        runs.set(run, i);
      }
    });
  });

  it("when README's environment table is read, then it lists exactly the variables of the table serve --help prints, with the same defaults", () => {
    const readme = readmeEnvironment();
    expect([...readme.keys()].sort()).toEqual(ENVIRONMENT.map((e) => e.name).sort());
    for (const variable of ENVIRONMENT) expect(readme.get(variable.name), variable.name).toMatch(new RegExp(`^${literal(variable.default)}`));
    const help = commandHelp(COMMANDS.find((c) => c.name === 'serve')!);
    for (const variable of ENVIRONMENT) expect(help).toMatch(new RegExp(`^ {2}${variable.name} +${literal(variable.default)} +\\S`, 'm'));
  });

  it('when nothing is set, then the values confhub takes are the defaults the table shows', () => {
    const config = loadRuntimeConfig({}, '/srv');
    const shown = new Map<string, string>(ENVIRONMENT.map((e) => [e.name, e.default]));
    expect(String(config.port)).toBe(shown.get('CONFHUB_PORT'));
    expect(config.host).toBe(shown.get('CONFHUB_HOST'));
    expect(String(config.rateLimitPerMinute)).toBe(shown.get('CONFHUB_RATE_LIMIT'));
    expect(String(config.authFailuresPer15Min)).toBe(shown.get('CONFHUB_AUTH_FAILURE_LIMIT'));
    expect(String(config.bodyLimitBytes)).toBe(shown.get('CONFHUB_BODY_LIMIT'));
    expect(String(config.stopTimeoutMs)).toBe(shown.get('CONFHUB_STOP_TIMEOUT_MS'));
    expect(config.logLevel).toBe(shown.get('CONFHUB_LOG_LEVEL'));
    expect(config.logFormat).toBe(shown.get('CONFHUB_LOG_FORMAT'));
    expect(config.dataDir).toBe('/srv/data');
  });

  it('when the CLI is run with a wrong option or a missing argument, then exit code 2 and one line on stderr; serve --help lists CONFHUB_LOG_FORMAT', async () => {
    expect(await cli(['history', '--lmit=5'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'confhub: history: unknown option --lmit (did you mean --limit?); see confhub history --help\n',
    });
    expect(await cli(['rollback'])).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(/^confhub: rollback: missing <commit>[^\n]*\n$/) });
    const help = await cli(['serve', '--help']);
    expect(help.code).toBe(0);
    for (const variable of ENVIRONMENT) expect(help.stdout).toContain(variable.name);
  });
});
