/** The two outputs of a bench: a JSON file under bench/results and a Markdown summary on stdout. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { ROOT } from './paths.js';
import { log } from './processes.js';

export const RESULTS_DIR = join(ROOT, 'bench', 'results');

export function fmt(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtMiB(kib: number | null | undefined): string {
  return fmt((kib ?? NaN) / 1024, 1);
}

/** A Markdown table; `align` has one letter per column, l or r. */
export function markdownTable(head: readonly string[], align: string, rows: readonly (readonly (string | number)[])[]): string[] {
  const line = (cells: readonly (string | number)[]): string => `| ${cells.join(' | ')} |`;
  return [line(head), `|${[...align].map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`, ...rows.map(line)];
}

/** Budgets are reported, never enforced: a miss is worth reading about, not a failed run. */
export interface Budget {
  name: string;
  limit: string;
  actual: string;
  pass: boolean;
}

export function budgetTable(budgets: readonly Budget[]): string[] {
  return markdownTable(
    ['Budget', 'Limit', 'Measured', 'Result'],
    'llll',
    budgets.map((b) => [b.name, b.limit, b.actual, b.pass ? 'pass' : '**FAIL**']),
  );
}

/** The warning paragraph for measurements that other processes disturbed (`during`: what and how much). */
export function disturbedNote(during: readonly string[]): string[] {
  if (during.length === 0) return [];
  return [`**Disturbed run:** other processes used CPU during ${during.join(', ')}; run again on a quiet machine before quoting these numbers.`, ''];
}

/**
 * Writes the JSON and prints the Markdown. The results are committed, so they must not carry this
 * machine's paths (temp dirs, the checkout, the home dir): refuse rather than publish them.
 */
export function writeResults(file: string, report: unknown, markdown: string, privatePaths: readonly string[] = []): void {
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const leaked = [...privatePaths, tmpdir(), ROOT, homedir(), '/tmp', '/work', '/root'].filter((p) => p.length > 1 && json.includes(p));
  if (leaked.length > 0) throw new Error(`the results would contain machine-specific paths (${leaked.length} kinds); not writing them`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, json);
  process.stdout.write(`\n${markdown}\n\n`);
  log(`results written to ${relative(ROOT, file)}`);
}
