/**
 * README's error table and the catalogue (src/core/errors.ts) say the same thing: every code a
 * client can meet (audience `http` or `target`) is listed with exactly its catalogue status, the
 * table names no code the catalogue lacks, and every catalogue code is used somewhere in src/, so
 * nothing listed is dead.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, type CatalogueEntry } from '../../src/core/errors.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

type Catalogue = Readonly<Record<string, CatalogueEntry>>;

interface TableRow {
  /** 1-based line in README. */
  readonly line: number;
  readonly codes: readonly string[];
  /** One status for every code of the row, or one per code in the same order. */
  readonly statuses: readonly number[];
}

const TABLE_HEADER = /^\|\s*code\s*\|\s*status\s*\|\s*when\s*\|\s*$/;
const CODE_CELL = /^`([A-Z][A-Z0-9_]*)`$/;
const STATUS_CELL = /^[1-5]\d\d$/;

/** The lines of the "## API" section: from its heading to the next level-2 heading. */
function apiSection(readme: string): { lines: string[]; firstLine: number } {
  const lines = readme.split('\n');
  const start = lines.findIndex((line) => line.trimEnd() === '## API');
  if (start < 0) throw new Error('README has no "## API" section');
  const length = lines.slice(start + 1).findIndex((line) => line.startsWith('## '));
  return { lines: lines.slice(start, length < 0 ? undefined : start + 1 + length), firstLine: start + 1 };
}

/** Table cells, split on `|` that is not escaped as `\|`. */
function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/(?<!\\)\|$/, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());
}

/**
 * The rows of every `| code | status | when |` table under "## API". A row lists one code or
 * several joined by ` · `, with one status for all or one per code (`503 · 504`). A row this
 * parser cannot read is an error, so a typo cannot hide a code from the checks.
 */
function errorTableRows(readme: string): TableRow[] {
  const { lines, firstLine } = apiSection(readme);
  const rows: TableRow[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!TABLE_HEADER.test(lines[i]!)) continue;
    i += 2; // the header and its |---| line
    for (; i < lines.length && lines[i]!.trimStart().startsWith('|'); i++) {
      const line = firstLine + i;
      const [codeCell = '', statusCell = ''] = cells(lines[i]!);
      const codes = codeCell.split('·').map((part) => CODE_CELL.exec(part.trim())?.[1]);
      const statusParts = statusCell.split('·').map((part) => part.trim());
      if (codes.some((code) => code === undefined)) throw new Error(`README line ${line}: the code cell "${codeCell}" is not \`CODE\` or \`CODE\` · \`CODE\``);
      if (!statusParts.every((part) => STATUS_CELL.test(part))) throw new Error(`README line ${line}: the status cell "${statusCell}" is not NNN or NNN · NNN`);
      if (statusParts.length !== 1 && statusParts.length !== codes.length) {
        throw new Error(`README line ${line}: ${codes.length} codes but ${statusParts.length} statuses; give one status for all or one per code`);
      }
      rows.push({ line, codes: codes as string[], statuses: statusParts.map(Number) });
    }
  }
  return rows;
}

/** Every disagreement between README's error table and the catalogue, one sentence each. */
function tableProblems(readme: string, catalogue: Catalogue): string[] {
  const problems: string[] = [];
  const listed = new Map<string, { status: number; line: number }>();
  for (const row of errorTableRows(readme)) {
    row.codes.forEach((code, i) => {
      const status = row.statuses.length === 1 ? row.statuses[0]! : row.statuses[i]!;
      const earlier = listed.get(code);
      if (earlier) problems.push(`${code} is listed twice (README lines ${earlier.line} and ${row.line})`);
      listed.set(code, { status, line: row.line });
      const entry = catalogue[code];
      if (!entry) problems.push(`${code} (README line ${row.line}) is not in the catalogue`);
      else if (entry.status !== status) problems.push(`${code} is listed with status ${status} (README line ${row.line}); the catalogue says ${entry.status}`);
    });
  }
  for (const [code, entry] of Object.entries(catalogue)) {
    if (entry.audience !== 'startup' && !listed.has(code)) problems.push(`${code} (${entry.status}, audience ${entry.audience}) is not listed`);
  }
  return problems;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.isFile() && entry.name.endsWith('.ts') ? [path] : [];
  });
}

/**
 * Where codes are not used but listed: the catalogue itself, and the OpenAPI document, which
 * describes answers (a code named only there is still thrown nowhere).
 */
const NOT_A_USE = new Set(['src/core/errors.ts', 'src/http/openapi.ts']);

describe('the error catalogue and README', () => {
  it('when README is read, then its API section has an error table', () => {
    expect(errorTableRows(README).length).toBeGreaterThan(0);
  });

  it('when the table is compared with the catalogue, then every http and target code is listed once with its status, and nothing else is', () => {
    expect(tableProblems(README, ERROR_CATALOGUE)).toEqual([]);
  });

  it('when a code only stops a start, then the API section still names it', () => {
    const section = apiSection(README).lines.join('\n');
    const startupCodes = Object.entries(ERROR_CATALOGUE as Catalogue)
      .filter(([, entry]) => entry.audience === 'startup')
      .map(([code]) => code);
    expect(startupCodes.filter((code) => !section.includes(`\`${code}\``))).toEqual([]);
  });

  it('when src/ is searched, then every catalogue code is used outside the catalogue', () => {
    const text = sourceFiles(join(ROOT, 'src'))
      .filter((path) => !NOT_A_USE.has(relative(ROOT, path).split('\\').join('/')))
      .map((path) => readFileSync(path, 'utf8'))
      .join('\n');
    const unused = Object.keys(ERROR_CATALOGUE).filter((code) => !["'", '"', '`'].some((quote) => text.includes(`${quote}${code}${quote}`)));
    expect(unused).toEqual([]);
  });
});

describe('the README table check itself', () => {
  const catalogue: Catalogue = {
    A_CODE: { status: 400, message: 'a', audience: 'http' },
    B_CODE: { status: 503, message: 'b', audience: 'http' },
    C_CODE: { status: 502, message: 'c', audience: 'target' },
    S_CODE: { status: 500, message: 's', audience: 'startup' },
  };
  const readme = (rows: string): string =>
    `# x\n\n## API\n\ntext\n\n| code | status | when |\n|---|---|---|\n${rows}\n\n## Next\n\n| code | status | when |\n|---|---|---|\n| \`ELSEWHERE\` | 200 | outside the API section |\n`;

  it('when every row agrees, then there is no problem', () => {
    expect(tableProblems(readme('| `A_CODE` | 400 | a |\n| `B_CODE` · `C_CODE` | 503 · 502 | b · c |'), catalogue)).toEqual([]);
  });

  it('when a row names a code with a wrong status, then the problem names the code, both statuses and the line', () => {
    expect(tableProblems(readme('| `A_CODE` | 400 | a |\n| `B_CODE` · `C_CODE` | 503 · 500 | b · c |'), catalogue)).toEqual([
      'C_CODE is listed with status 500 (README line 10); the catalogue says 502',
    ]);
  });

  it('when one status is given for two codes, then it applies to both', () => {
    expect(tableProblems(readme('| `A_CODE` · `B_CODE` | 400 | a · b |\n| `C_CODE` | 502 | c |'), catalogue)).toEqual([
      'B_CODE is listed with status 400 (README line 9); the catalogue says 503',
    ]);
  });

  it('when a code is missing, unknown or listed twice, then each is a problem', () => {
    expect(tableProblems(readme('| `A_CODE` | 400 | a |\n| `A_CODE` · `X_CODE` | 400 | again · unknown |\n| `C_CODE` | 502 | c |'), catalogue)).toEqual([
      'A_CODE is listed twice (README lines 9 and 10)',
      'X_CODE (README line 10) is not in the catalogue',
      'B_CODE (503, audience http) is not listed',
    ]);
  });

  it('when a startup code is listed, then its status is checked too', () => {
    expect(tableProblems(readme('| `A_CODE` | 400 | a |\n| `B_CODE` | 503 | b |\n| `C_CODE` | 502 | c |\n| `S_CODE` | 400 | s |'), catalogue)).toEqual([
      'S_CODE is listed with status 400 (README line 12); the catalogue says 500',
    ]);
  });

  it.each([
    ['| A_CODE | 400 | a |', 'the code cell "A_CODE"'],
    ['| `A_CODE` | 4xx | a |', 'the status cell "4xx"'],
    ['| `A_CODE` · `B_CODE` · `C_CODE` | 400 · 503 | a |', '3 codes but 2 statuses'],
  ])('when a row reads %s, then the check refuses the table', (row, message) => {
    expect(() => tableProblems(readme(row), catalogue)).toThrow(message);
  });
});
