/**
 * A docker-compose `.env` file, written by dotenv.ts's rule (every value double-quoted, `$` as
 * `$$`) so that docker compose v2 reads back exactly the value stored. Two sources:
 * - a target with `env = <scope>`: the variables that consumer receives (global ∪ mapped ∪ own);
 * - otherwise its sections: `SECTION_KEY=value` for every key of every declared section.
 * The output is read back with the port of compose's own parser before it is staged.
 */
import { renderDotenv, dotenvProblems, readComposeDotenv, ComposeDotenvError } from './dotenv.js';
import type { RenderInput, Renderer } from './types.js';
import { GENERATED_NOTE, readBackFailed, renderFailed, sectionViews, throwProblems, unparsable } from './render-input.js';

const NAME = /^[A-Z_][A-Z0-9_]*$/;

interface EnvLine {
  readonly name: string;
  readonly value: string;
  /** `section.key` as in config.ini, or the variable's name. */
  readonly source: string;
}

/** SECTION_KEY: uppercased, every character outside [A-Z0-9_] replaced by `_`. */
export function envName(section: string, key: string): string {
  return `${section}_${key}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

function sectionLines(input: RenderInput): EnvLine[] {
  const problems: string[] = [];
  const lines: EnvLine[] = [];
  const byName = new Map<string, string>();
  for (const view of sectionViews(input).values()) {
    for (const [key, value] of view.entries) {
      const source = `${view.name}.${key}`;
      const name = envName(view.name, key);
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
  problems.push(...dotenvProblems(lines).map((problem) => problem.replace(/^(\w+)/, (name) => byName.get(name) ?? name)));
  throwProblems(input.target, problems);
  return lines;
}

function buildModel(input: RenderInput): EnvLine[] {
  if (!input.environment) return sectionLines(input);
  const lines = input.environment.map(({ name, value }) => ({ name, value, source: name }));
  throwProblems(input.target, dotenvProblems(lines));
  return lines;
}

function render(input: RenderInput): string {
  return renderDotenv(buildModel(input), GENERATED_NOTE);
}

function verify(output: string, input: RenderInput): void {
  const model = buildModel(input);
  let actual: Map<string, string>;
  try {
    actual = readComposeDotenv(output);
  } catch (error) {
    // compose's messages quote the file, which holds secrets: only the line is told.
    if (error instanceof ComposeDotenvError) throw unparsable(input.target, '.env', `compose cannot read line ${error.line}`);
    throw renderFailed(input.target, 'the .env file could not be read back');
  }
  const wrong = model.filter((line) => actual.get(line.name) !== line.value).map((line) => line.source);
  const extra = actual.size - model.filter((line) => actual.has(line.name)).length;
  if (extra > 0) wrong.push(`${extra} variable(s) that were not rendered`);
  if (wrong.length > 0) throw readBackFailed(input.target, wrong);
}

export const envRenderer: Renderer = { format: 'env', render, verify };
