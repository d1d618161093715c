/**
 * A user's template with `{{ section.key }}` placeholders (the grammar of placeholders.ts:
 * spaces or tabs inside the braces are optional; section names match exactly, keys
 * case-insensitively; `{{{{` writes a literal `{{`; dotted names are tried as every split).
 * The template owns its bytes: no comment line is added and no line break appended.
 */
import { parsePlaceholders, substitute, substitutionProblems } from './placeholders.js';
import { renderFailed, sectionViews } from './render-input.js';
import type { RenderInput, Renderer } from './types.js';

function render(input: RenderInput): string {
  if (input.template === undefined) throw renderFailed(input.target, 'no template text was given');
  const views = sectionViews(input);
  const parsed = parsePlaceholders(input.template);
  const result = substitute(parsed, (section, key) => views.get(section)?.get(key));
  const problems = substitutionProblems(parsed, result);
  if (problems.length > 0)
    throw renderFailed(input.target, problems.join('; '), parsed.malformedLines.length > 0 ? { line: parsed.malformedLines[0] } : undefined);
  return result.text;
}

function verify(output: string, input: RenderInput): void {
  // Substitution is exact by construction; rendering again proves the output is this input's.
  if (render(input) !== output) throw renderFailed(input.target, 'the output is not what the template renders to');
}

export const templateRenderer: Renderer = { format: 'template', render, verify };
