/**
 * `{section: {key: value}}` of all input sections as YAML, written by the `yaml` package. Every
 * value must read back as the same string, not only with YAML 1.2 (the package's default) but
 * also with YAML 1.1 readers (PyYAML, older Go and Ruby parsers), where plain `yes`, `on`, `0o17`,
 * `1_000`, `2001-12-14` or a `<<` key mean something else: those are double-quoted. A render
 * reads its own output back with both versions and refuses, naming the key, what does not return.
 */
import { createRequire } from 'node:module';
import type { Scalar, YAMLMap } from 'yaml';
import type { RenderInput, Renderer } from './types.js';
import { GENERATED_NOTE, allValues, differences, readBackFailed, renderFailed, surrogateProblems, throwProblems, unparsable } from './render-input.js';

type Sections = Map<string, Map<string, string>>;
const VERSIONS = ['1.2', '1.1'] as const;

/**
 * The package is loaded when a yaml target is first rendered: the sync worker renders every
 * target of system.ini, and the shipped ones are not yaml (about 1 MiB of its heap otherwise).
 */
let loaded: typeof import('yaml') | undefined;
const yaml = (): typeof import('yaml') => (loaded ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));

/** True when the text, written plain, would not read as that same string under YAML 1.1. */
function plainIsAmbiguousIn11(text: string): boolean {
  if (text === '<<') return true;
  try {
    return yaml().parse(text, { version: '1.1', logLevel: 'error' }) !== text;
  } catch {
    return false;
  }
}

function scalar(text: string): Scalar<string> {
  const y = yaml();
  const node = new y.Scalar(text);
  // Left alone, the package picks the style that YAML 1.2 reads back; 1.1 needs quotes more often.
  if (plainIsAmbiguousIn11(text)) node.type = y.Scalar.QUOTE_DOUBLE;
  return node;
}

function stringifySections(sections: Sections): string {
  const y = yaml();
  const doc = new y.Document();
  const root = new y.YAMLMap<Scalar<string>, YAMLMap<Scalar<string>, Scalar<string>>>();
  for (const [name, keys] of sections) {
    const map = new y.YAMLMap<Scalar<string>, Scalar<string>>();
    for (const [key, value] of keys) map.items.push(new y.Pair(scalar(key), scalar(value)));
    root.items.push(new y.Pair(scalar(name), map));
  }
  doc.contents = root;
  // lineWidth 0: no folding of long values, so each value stays on its own lines.
  return `# ${GENERATED_NOTE}\n${doc.toString({ lineWidth: 0 })}`;
}

function readSections(text: string, version: (typeof VERSIONS)[number]): Map<string, Map<string, unknown>> {
  // mapAsMap: keys such as __proto__ stay data; uniqueKeys (default) refuses duplicates; 1.1 merges <<.
  const parsed: unknown = yaml().parse(text, { version, mapAsMap: true, logLevel: 'error' });
  if (!(parsed instanceof Map)) throw new Error('the top level is not a mapping');
  const out = new Map<string, Map<string, unknown>>();
  for (const [name, section] of parsed) {
    if (typeof name !== 'string') throw new Error('a section name is not a string');
    if (!(section instanceof Map)) throw new Error('a section is not a mapping');
    const keys = new Map<string, unknown>();
    for (const [key, value] of section as Map<unknown, unknown>) {
      // A key that reads back as something else is keyed by a marker that matches nothing.
      keys.set(typeof key === 'string' ? key : `\0${String(key)}`, value);
    }
    out.set(name, keys);
  }
  return out;
}

function compare(expected: Sections, text: string): string[] {
  const wrong = new Set<string>();
  for (const version of VERSIONS) {
    let actual: Map<string, Map<string, unknown>>;
    try {
      actual = readSections(text, version);
    } catch {
      // The parser's message quotes the text, which may hold secrets.
      throw new Error(`YAML ${version} readers reject it`);
    }
    for (const item of differences(expected, actual)) wrong.add(item);
  }
  return [...wrong];
}

function render(input: RenderInput): string {
  const sections = allValues(input);
  throwProblems(input.target, surrogateProblems(sections));
  const text = stringifySections(sections);
  let wrong: string[];
  try {
    wrong = compare(sections, text);
  } catch (error) {
    throw renderFailed(input.target, `the yaml package wrote output that ${(error as Error).message}`);
  }
  if (wrong.length > 0) throw renderFailed(input.target, `the yaml package cannot write these so that they read back: ${wrong.join(', ')}`);
  return text;
}

function verify(output: string, input: RenderInput): void {
  let wrong: string[];
  try {
    wrong = compare(allValues(input), output);
  } catch (error) {
    throw unparsable(input.target, 'YAML', (error as Error).message);
  }
  if (wrong.length > 0) throw readBackFailed(input.target, wrong);
}

export const yamlRenderer: Renderer = { format: 'yaml', render, verify };
