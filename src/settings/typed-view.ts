/**
 * The API's view of a parsed document: values typed by the schema (ports as numbers, booleans as
 * booleans); a value that does not parse as its type is returned as the stored text. Views are
 * memoised per snapshot, so a GET costs a Map lookup once the file has been read.
 */
import type { IniDocument, IniSection } from '../ini/document.js';
import { FIELD_KINDS } from './field-kinds.js';
import { SYSTEM_SCHEMA, type FileSchema, type SectionSpec } from './schema.js';
import { isEnvSection } from './env-sections.js';
import { baseSectionOf } from './overlays.js';

export type SectionValues = Record<string, unknown>;

export function typedValue(spec: SectionSpec | undefined, key: string, text: string): unknown {
  const fieldSpec = spec?.fields.get(key.toLowerCase());
  if (!fieldSpec || text === '') return text;
  const kind = FIELD_KINDS[fieldSpec.kind];
  return kind.check(text) === undefined ? kind.toJson(text) : text;
}

export function sectionValues(section: IniSection, spec: SectionSpec | undefined): SectionValues {
  // Null prototype: a key named like an Object.prototype member stays plain data.
  const values: SectionValues = Object.create(null);
  for (const entry of section.entries) values[entry.key] = typedValue(spec, entry.key, entry.value);
  return values;
}

/**
 * The settings of a document: for config.ini every section but the environment variables, which
 * have their own API (legacy clients list every section of GET /api/settings and must not meet them).
 */
export interface DocumentView {
  /** `{section: {key: value}}` as JSON text. */
  allJson(): string;
  /** One section as JSON text, or undefined when the file has no such section. */
  sectionJson(name: string): string | undefined;
}

export function createDocumentView(doc: IniDocument, schema: FileSchema): DocumentView {
  // system.ini's [env:NAME] sections are declarations of mapped variables, shown as they are.
  const hidden = (name: string): boolean => schema !== SYSTEM_SCHEMA && isEnvSection(name);
  let all: string | undefined;
  const perSection = new Map<string, string>();
  return {
    allJson() {
      if (all === undefined) {
        const out: Record<string, SectionValues> = Object.create(null);
        for (const section of doc.sections) if (!hidden(section.name)) out[section.name] = sectionValues(section, schema.get(baseSectionOf(section.name)));
        all = JSON.stringify(out);
      }
      return all;
    },
    sectionJson(name) {
      const cached = perSection.get(name);
      if (cached !== undefined) return cached;
      const section = doc.byName.get(name);
      if (!section || hidden(name)) return undefined;
      const json = JSON.stringify(sectionValues(section, schema.get(baseSectionOf(name))));
      perSection.set(name, json);
      return json;
    },
  };
}
