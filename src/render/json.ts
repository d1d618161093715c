/**
 * `{section: {key: value}}` of all input sections, keys in file order, values as strings, 2-space
 * indent. Written by hand rather than by JSON.stringify of an object: an object would move keys
 * that look like array indexes ("1", "2") to the front. JSON has no comments.
 */
import type { RenderInput, Renderer } from './types.js';
import { allValues, differences, readBackFailed, unparsable } from './render-input.js';

/** JSON.stringify(value, null, 2) for a map of maps of strings, in the maps' order. */
export function stringifySections(sections: ReadonlyMap<string, ReadonlyMap<string, string>>): string {
  const q = (text: string): string => JSON.stringify(text);
  if (sections.size === 0) return '{}';
  const blocks = [...sections].map(([name, keys]) => {
    if (keys.size === 0) return `  ${q(name)}: {}`;
    const lines = [...keys].map(([key, value]) => `    ${q(key)}: ${q(value)}`);
    return `  ${q(name)}: {\n${lines.join(',\n')}\n  }`;
  });
  return `{\n${blocks.join(',\n')}\n}`;
}

/** Parsed JSON of that shape back into maps; throws Error when the shape is different. */
export function parseSections(text: string): Map<string, Map<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse messages quote the text, which may hold secrets.
    throw new Error('JSON.parse rejected it');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the top level is not an object');
  const out = new Map<string, Map<string, unknown>>();
  for (const [name, section] of Object.entries(parsed)) {
    if (typeof section !== 'object' || section === null || Array.isArray(section)) throw new Error('a section is not an object');
    out.set(name, new Map(Object.entries(section as Record<string, unknown>)));
  }
  return out;
}

function render(input: RenderInput): string {
  // JSON.stringify escapes lone surrogates, so every string value is representable.
  return `${stringifySections(allValues(input))}\n`;
}

function verify(output: string, input: RenderInput): void {
  let actual: Map<string, Map<string, unknown>>;
  try {
    actual = parseSections(output);
  } catch (error) {
    throw unparsable(input.target, 'JSON', (error as Error).message);
  }
  const wrong = differences(allValues(input), actual);
  if (wrong.length > 0) throw readBackFailed(input.target, wrong);
}

export const jsonRenderer: Renderer = { format: 'json', render, verify };
