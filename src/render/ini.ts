/**
 * A generic INI file of all input sections, written and read by the npm `ini` package (for
 * consumers that read it with that package or a similar reader). Its encoder quotes what its
 * decoder would cut or trim (`;`, `#`, `=`, leading spaces, line breaks…), but a few values do
 * not survive the pair (e.g. a `\` before `;`, keys named `__proto__` or ending in `[]`): every
 * render decodes its own output and refuses, naming the key, anything that does not come back.
 *
 * Known limits of the package, accepted here: it writes no header for a section without keys
 * (so verify reads an absent section as empty), and as it encodes an object, keys that look like
 * array indexes ("1", "2") come first in their section.
 */
import { decode, encode } from 'ini';
import type { RenderInput, Renderer } from './types.js';
import { GENERATED_NOTE, allValues, differences, readBackFailed, renderFailed, surrogateProblems, throwProblems } from './render-input.js';

type Sections = Map<string, Map<string, string>>;

function encodeSections(sections: Sections): string {
  // Null-prototype objects: a key named __proto__ must be data, not the prototype.
  const root: Record<string, Record<string, string>> = Object.create(null);
  for (const [name, keys] of sections) {
    const section: Record<string, string> = Object.create(null);
    for (const [key, value] of keys) section[key] = value;
    root[name] = section;
  }
  // platform: the line terminator would otherwise follow process.platform.
  return `; ${GENERATED_NOTE}\n${encode(root, { platform: 'linux' })}`;
}

function readSections(text: string): Map<string, Map<string, unknown>> {
  const decoded = decode(text) as Record<string, unknown>;
  const out = new Map<string, Map<string, unknown>>();
  for (const name of Object.keys(decoded)) {
    const section = decoded[name];
    // A top-level scalar is a key outside any section: keep it so it counts as unexpected.
    out.set(name, section !== null && typeof section === 'object' && !Array.isArray(section) ? new Map(Object.entries(section)) : new Map([['', section]]));
  }
  return out;
}

/**
 * The package's decoder turns the bare words true, false and null into JSON values; the file
 * holds exactly the text that was meant, so those count as read back.
 */
function sameAsIni(actual: unknown, expected: string): boolean {
  if (typeof actual === 'string') return actual === expected;
  return (actual === true || actual === false || actual === null) && String(actual) === expected;
}

function compare(expected: Sections, text: string): string[] {
  const actual = readSections(text);
  // ini.encode writes no header for an empty section: absent reads as empty.
  for (const [name, keys] of expected) if (keys.size === 0 && !actual.has(name)) actual.set(name, new Map());
  return differences(expected, actual, sameAsIni);
}

function render(input: RenderInput): string {
  const sections = allValues(input);
  throwProblems(input.target, surrogateProblems(sections));
  const text = encodeSections(sections);
  const wrong = compare(sections, text);
  if (wrong.length > 0) throw renderFailed(input.target, `the ini package cannot write these so that they read back: ${wrong.join(', ')}`);
  return text;
}

function verify(output: string, input: RenderInput): void {
  const wrong = compare(allValues(input), output);
  if (wrong.length > 0) throw readBackFailed(input.target, wrong);
}

export const iniRenderer: Renderer = { format: 'ini', render, verify };
