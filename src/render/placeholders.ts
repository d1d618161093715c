/**
 * The `{{ section.key }}` grammar of templates, shared by the `template` format and the URLs of
 * targets (`health = http:…`, `reload = http:POST:…`), so both read the same text the same way.
 * Spaces or tabs inside the braces are optional; section names match exactly, keys
 * case-insensitively (the lookup decides that); `{{{{` writes a literal `{{`.
 *
 * Section and key names may both contain dots, so `{{ a.b.c }}` is tried as every split
 * (`a` + `b.c`, `a.b` + `c`); exactly one must name an existing key.
 */

const PLACEHOLDER = /\{\{[ \t]*([A-Za-z0-9_.:-]+)[ \t]*\}\}/y;

/** Literal text, or the name inside one placeholder. */
export type TemplatePart = { readonly text: string } | { readonly name: string };

export interface ParsedTemplate {
  readonly parts: readonly TemplatePart[];
  /** 1-based lines of a `{{` that opens no placeholder (kept as literal text in `parts`). */
  readonly malformedLines: readonly number[];
}

export function parsePlaceholders(template: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  const malformedLines: number[] = [];
  let literal = '';
  let line = 1;
  let from = 0;
  for (let at = template.indexOf('{{'); at >= 0; at = template.indexOf('{{', from)) {
    const text = template.slice(from, at);
    literal += text;
    line += text.split('\n').length - 1;
    if (template.startsWith('{{{{', at)) {
      literal += '{{';
      from = at + 4;
      continue;
    }
    PLACEHOLDER.lastIndex = at;
    const match = PLACEHOLDER.exec(template);
    if (!match) {
      if (!malformedLines.includes(line)) malformedLines.push(line);
      literal += '{{';
      from = at + 2;
      continue;
    }
    if (literal !== '') parts.push({ text: literal });
    literal = '';
    parts.push({ name: match[1]! });
    from = at + match[0].length;
  }
  literal += template.slice(from);
  if (literal !== '') parts.push({ text: literal });
  return { parts, malformedLines };
}

/** The names a template refers to, each once, in order of appearance. */
export function placeholderNames(parsed: ParsedTemplate): string[] {
  const names: string[] = [];
  for (const part of parsed.parts) if ('name' in part && !names.includes(part.name)) names.push(part.name);
  return names;
}

/** Every `section` + `key` reading of a dotted name. */
export function nameSplits(name: string): { section: string; key: string }[] {
  const splits: { section: string; key: string }[] = [];
  for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) splits.push({ section: name.slice(0, dot), key: name.slice(dot + 1) });
  return splits;
}

/** A value by section and key; undefined when there is none. */
export type ValueLookup = (section: string, key: string) => string | undefined;

/** The one value a name refers to: a single split must name an existing key. */
export function lookupPlaceholder(lookup: ValueLookup, name: string): { value: string; section: string; key: string } | 'unknown' | 'ambiguous' {
  const found: { value: string; section: string; key: string }[] = [];
  for (const { section, key } of nameSplits(name)) {
    const value = lookup(section, key);
    if (value !== undefined) found.push({ value, section, key });
  }
  if (found.length === 0) return 'unknown';
  if (found.length > 1) return 'ambiguous';
  return found[0]!;
}

export interface SubstituteResult {
  readonly text: string;
  readonly unknown: readonly string[];
  readonly ambiguous: readonly string[];
}

/**
 * Fills every placeholder with its value, passed through `format` (the found section and key
 * say which value it is, `index` which part of the template it fills). Names that resolve to
 * nothing or to more than one key are listed, and leave nothing in the text.
 */
export function substitute(
  parsed: ParsedTemplate,
  lookup: ValueLookup,
  format: (value: string, at: { section: string; key: string; index: number }) => string = (value) => value,
): SubstituteResult {
  const unknown: string[] = [];
  const ambiguous: string[] = [];
  let text = '';
  for (const [index, part] of parsed.parts.entries()) {
    if ('text' in part) {
      text += part.text;
      continue;
    }
    const found = lookupPlaceholder(lookup, part.name);
    if (found === 'unknown') {
      if (!unknown.includes(part.name)) unknown.push(part.name);
    } else if (found === 'ambiguous') {
      if (!ambiguous.includes(part.name)) ambiguous.push(part.name);
    } else {
      text += format(found.value, { section: found.section, key: found.key, index });
    }
  }
  return { text, unknown, ambiguous };
}

/** The problems of a substitution as one sentence each (names only, never values). */
export function substitutionProblems(parsed: ParsedTemplate, result: SubstituteResult): string[] {
  const problems: string[] = [];
  if (parsed.malformedLines.length > 0) {
    problems.push(`${parsed.malformedLines.map((l) => `line ${l}`).join(', ')}: "{{" without a closing "}}" around a section.key name`);
  }
  if (result.unknown.length > 0) problems.push(`unknown placeholders ${result.unknown.join(', ')}`);
  if (result.ambiguous.length > 0) problems.push(`ambiguous placeholders (more than one section.key split exists) ${result.ambiguous.join(', ')}`);
  return problems;
}
