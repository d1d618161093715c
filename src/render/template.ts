/**
 * A user's template with `{{ section.key }}` placeholders (spaces or tabs inside the braces are
 * optional; section names match exactly, keys case-insensitively). `{{{{` writes a literal `{{`.
 * The template owns its bytes: no comment line is added and no line break appended.
 *
 * Section and key names may both contain dots, so `{{ a.b.c }}` is tried as every split
 * (`a` + `b.c`, `a.b` + `c`); exactly one must name an existing key.
 */
import type { RenderInput, Renderer } from './types.js';
import { renderFailed, sectionViews, type SectionView } from './render-input.js';

const PLACEHOLDER = /\{\{[ \t]*([A-Za-z0-9_.:-]+)[ \t]*\}\}/y;

function resolve(views: ReadonlyMap<string, SectionView>, name: string): { value: string } | 'unknown' | 'ambiguous' {
  const found: string[] = [];
  for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
    const value = views.get(name.slice(0, dot))?.get(name.slice(dot + 1));
    if (value !== undefined) found.push(value);
  }
  if (found.length === 0) return 'unknown';
  if (found.length > 1) return 'ambiguous';
  return { value: found[0]! };
}

function render(input: RenderInput): string {
  if (input.template === undefined) throw renderFailed(input.target, 'no template text was given');
  const template = input.template;
  const views = sectionViews(input);
  const malformed: number[] = [];
  const unknown: string[] = [];
  const ambiguous: string[] = [];
  let out = '';
  let line = 1;
  let from = 0;
  for (let at = template.indexOf('{{'); at >= 0; at = template.indexOf('{{', from)) {
    const text = template.slice(from, at);
    out += text;
    line += text.split('\n').length - 1;
    if (template.startsWith('{{{{', at)) {
      out += '{{';
      from = at + 4;
      continue;
    }
    PLACEHOLDER.lastIndex = at;
    const match = PLACEHOLDER.exec(template);
    if (!match) {
      if (!malformed.includes(line)) malformed.push(line);
      out += '{{';
      from = at + 2;
      continue;
    }
    const name = match[1]!;
    const resolved = resolve(views, name);
    if (resolved === 'unknown') {
      if (!unknown.includes(name)) unknown.push(name);
    } else if (resolved === 'ambiguous') {
      if (!ambiguous.includes(name)) ambiguous.push(name);
    } else {
      out += resolved.value;
    }
    from = at + match[0].length;
  }
  out += template.slice(from);

  const problems: string[] = [];
  if (malformed.length > 0) problems.push(`${malformed.map((l) => `line ${l}`).join(', ')}: "{{" without a closing "}}" around a section.key name`);
  if (unknown.length > 0) problems.push(`unknown placeholders ${unknown.join(', ')}`);
  if (ambiguous.length > 0) problems.push(`ambiguous placeholders (more than one section.key split exists) ${ambiguous.join(', ')}`);
  if (problems.length > 0) throw renderFailed(input.target, problems.join('; '), malformed.length > 0 ? { line: malformed[0] } : undefined);
  return out;
}

function verify(output: string, input: RenderInput): void {
  // Substitution is exact by construction; rendering again proves the output is this input's.
  if (render(input) !== output) throw renderFailed(input.target, 'the output is not what the template renders to');
}

export const templateRenderer: Renderer = { format: 'template', render, verify };
