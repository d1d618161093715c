/**
 * The one pure resolve step: config.ini as stored (sealed values opened) → the values services
 * get. Everything that uses values goes through it: validation, the API's view, renderers, env
 * mapping, plans, previews and diffs, so what a user sees is what a service receives.
 *
 * Two steps, in this order:
 * 1. Environments: `[section@env]` overlays the keys of `[section]` when confhub runs in `env`
 *    (CONFHUB_ENVIRONMENT); overlays of other environments are left out.
 * 2. References (opt-in, `[confhub] interpolation = extended` in system.ini): `${section:key}` and
 *    `${key}` (same section), `$$` for a literal `$` — Python configparser's ExtendedInterpolation,
 *    to the letter, so a Python tool reading config.ini with it gets the same values: section names
 *    match exactly, keys case-insensitively, a chain deeper than configparser's 10 levels is
 *    refused. References are looked up in the resolved sections (the environment's value).
 *
 * Environment variables (`[env:…]`) are literal: they take neither overlays nor references (a
 * variable derived from a setting is a mapped one, declared in system.ini).
 */
import type { FieldIssue } from '../core/errors.js';
import type { IniDocument, IniEntry, IniSection } from '../ini/document.js';
import { isEnvSection } from './env-sections.js';
import { baseSectionOf, environmentNameProblem, parseOverlay } from './overlays.js';
import { isSensitive, type FileSchema } from './schema.js';
import { fieldId } from './validate.js';

export type InterpolationMode = 'none' | 'extended';
export const INTERPOLATION_MODES: readonly InterpolationMode[] = ['none', 'extended'];

/** How config.ini is resolved: set once at start (system.ini and CONFHUB_ENVIRONMENT). */
export interface ResolveSettings {
  readonly interpolation: InterpolationMode;
  /** The environment confhub runs in; undefined: every overlay is left out. */
  readonly environment?: string;
}

export const NO_RESOLVE: ResolveSettings = Object.freeze({ interpolation: 'none' });

/** configparser's MAX_INTERPOLATION_DEPTH. */
export const MAX_REFERENCE_DEPTH = 10;

/** Where a resolved value came from. */
export interface ValueOrigin {
  /** The section of config.ini holding the raw value: `gitea` or `gitea@staging`. */
  readonly section: string;
  /** 1-based line of the key in config.ini. */
  readonly line: number;
  /** The value as written, when it differs from the resolved one (it holds references or `$$`). */
  readonly raw?: string;
  /** `section.key` of each key the raw value refers to, in order. */
  readonly references: readonly string[];
}

export interface ResolveInput {
  /** config.ini with every sealed value opened. */
  readonly doc: IniDocument;
  readonly schema: FileSchema;
  readonly settings: ResolveSettings;
  /** `section.key` of values that did not open (their text is sealed): referring to one is an issue. */
  readonly unreadable?: ReadonlySet<string>;
}

export interface ResolveResult {
  /**
   * The values services get: the environment's overlays folded into their sections, other
   * overlays left out, references replaced. Entries keep the line of their raw key (for errors);
   * `lines` are the raw file's, so this document is never serialized.
   */
  readonly doc: IniDocument;
  /** By `section.key` (key lowercased) of `doc`. */
  readonly origins: ReadonlyMap<string, ValueOrigin>;
  /** Bad overlays and references: each names the key that holds it. */
  readonly issues: readonly FieldIssue[];
  /** `section.key` of values left unresolved (an issue names each): not to be validated by type. */
  readonly unresolved: ReadonlySet<string>;
}

const SYNTAX_HINT = 'write $$ for a literal $';

/** A step of resolving one value: a literal, or the problem that stops it. */
class ReferenceProblem {
  constructor(
    readonly code: string,
    readonly message: string,
    /** For a cycle: the keys that form it. */
    readonly cycle?: readonly string[],
  ) {}
}

interface MergedEntry {
  readonly key: string;
  readonly keyLower: string;
  readonly value: string;
  readonly from: string;
  readonly entry: IniEntry;
}

export function resolveDocument({ doc, schema, settings, unreadable = new Set() }: ResolveInput): ResolveResult {
  const issues: FieldIssue[] = [];
  const hasOverlays = doc.sections.some((section) => parseOverlay(section.name) !== undefined);
  if (!hasOverlays && settings.interpolation === 'none') return unchanged(doc);

  // 1. Environments.
  const merged = new Map<string, Map<string, MergedEntry>>();
  const headers = new Map<string, number>();
  const sectionOf = (name: string, headerLine: number): Map<string, MergedEntry> => {
    let section = merged.get(name);
    if (!section) {
      section = new Map();
      merged.set(name, section);
      headers.set(name, headerLine);
    }
    return section;
  };
  for (const section of doc.sections) {
    if (parseOverlay(section.name)) continue;
    const into = sectionOf(section.name, section.headerLine);
    for (const entry of section.entries) into.set(entry.keyLower, { key: entry.key, keyLower: entry.keyLower, value: entry.value, from: section.name, entry });
  }
  for (const section of doc.sections) {
    const overlay = parseOverlay(section.name);
    if (!overlay) continue;
    const problem = overlayProblem(overlay);
    if (problem) {
      issues.push({ field: section.name, code: 'INVALID_OVERLAY', message: `[${section.name}]: ${problem}` });
      continue;
    }
    if (overlay.environment !== settings.environment) continue;
    const into = sectionOf(overlay.base, section.headerLine);
    for (const entry of section.entries) {
      const base = into.get(entry.keyLower);
      // The base section's spelling of the key is kept: writes find it there.
      into.set(entry.keyLower, { key: base?.key ?? entry.key, keyLower: entry.keyLower, value: entry.value, from: section.name, entry });
    }
  }

  // 2. References.
  // Keyed by section and key apart: `[a] b.c` and `[a.b] c` are both `a.b.c` as a field id.
  const resolved = new Map<string, string>();
  const references = new Map<string, string[]>();
  const unresolved = new Set<string>();
  if (settings.interpolation === 'extended') {
    const resolver = createResolver({ merged, schema, unreadable });
    for (const [sectionName, entries] of merged) {
      if (isEnvSection(sectionName)) continue;
      for (const entry of entries.values()) {
        if (!entry.value.includes('$')) continue;
        const id = fieldId(sectionName, entry.keyLower);
        const at = internalKey(sectionName, entry.keyLower);
        const outcome = resolver.value(sectionName, entry.keyLower);
        references.set(at, referencesIn({ value: entry.value, section: sectionName }));
        if (outcome instanceof ReferenceProblem) {
          unresolved.add(id);
          issues.push({ field: id, code: outcome.code, message: `${id}: ${outcome.message}` });
        } else {
          resolved.set(at, outcome.text);
        }
      }
    }
  }

  const origins = new Map<string, ValueOrigin>();
  const sections: IniSection[] = [];
  for (const [name, section] of merged) {
    const entries: IniEntry[] = [];
    for (const merge of section.values()) {
      const id = fieldId(name, merge.keyLower);
      const at = internalKey(name, merge.keyLower);
      const value = resolved.get(at) ?? merge.value;
      const origin: ValueOrigin = {
        section: merge.from,
        line: merge.entry.firstLine + 1,
        ...(value !== merge.value || unresolved.has(id) ? { raw: merge.value } : {}),
        references: references.get(at) ?? [],
      };
      origins.set(id, origin);
      entries.push(
        value === merge.value && merge.entry.key === merge.key
          ? merge.entry
          : Object.freeze({ ...merge.entry, key: merge.key, keyLower: merge.keyLower, value }),
      );
    }
    sections.push(
      Object.freeze({ name, headerLine: headers.get(name)!, entries: Object.freeze(entries), byKey: new Map(entries.map((e) => [e.keyLower, e])) }),
    );
  }
  const out: IniDocument = Object.freeze({
    bom: doc.bom,
    lines: doc.lines,
    eols: doc.eols,
    sections: Object.freeze(sections),
    byName: new Map(sections.map((s) => [s.name, s])),
  });
  return { doc: out, origins, issues, unresolved };
}

function overlayProblem({ base, environment }: { base: string; environment: string }): string | undefined {
  if (base === '') return 'an overlay names its section before the @';
  if (base.includes('@')) return 'an overlay is of a section, not of another overlay: one @';
  if (isEnvSection(base)) return 'environment variables take no overlays; set them in their scope';
  return environmentNameProblem(environment);
}

/** Nothing to resolve: the document as it is, each value its own origin. */
function unchanged(doc: IniDocument): ResolveResult {
  let origins: Map<string, ValueOrigin> | undefined;
  const lazy = (): Map<string, ValueOrigin> => {
    if (!origins) {
      origins = new Map();
      for (const section of doc.sections) {
        for (const entry of section.entries)
          origins.set(fieldId(section.name, entry.keyLower), { section: section.name, line: entry.firstLine + 1, references: [] });
      }
    }
    return origins;
  };
  // GETs of a file without overlays or references never pay for the map.
  const view: ReadonlyMap<string, ValueOrigin> = {
    get: (key) => lazy().get(key),
    has: (key) => lazy().has(key),
    get size() {
      return lazy().size;
    },
    forEach: (fn, self) => lazy().forEach(fn, self),
    entries: () => lazy().entries(),
    keys: () => lazy().keys(),
    values: () => lazy().values(),
    [Symbol.iterator]: () => lazy()[Symbol.iterator](),
  };
  return { doc, origins: view, issues: [], unresolved: new Set() };
}

interface ResolverInput {
  readonly merged: ReadonlyMap<string, ReadonlyMap<string, MergedEntry>>;
  readonly schema: FileSchema;
  readonly unreadable: ReadonlySet<string>;
}

/** A value with its references replaced and how deep its chain of `$`-holding values goes. */
interface Resolved {
  readonly text: string;
  /** configparser's depth: 1 for a value whose references hold no `$`. */
  readonly depth: number;
}

/** The longest value references may build: doubling references must not exhaust memory. */
const MAX_RESOLVED_LENGTH = 64 * 1024;

type Part = { readonly text: string } | { readonly section: string; readonly key: string } | ReferenceProblem;

function internalKey(section: string, key: string): string {
  return `${section}\u0000${key}`;
}

/** Splits a value as configparser's ExtendedInterpolation reads it; a syntax error ends it. */
function parseValue({ value, section }: { value: string; section: string }): Part[] {
  const parts: Part[] = [];
  let rest = value;
  while (rest !== '') {
    const at = rest.indexOf('$');
    if (at < 0) {
      parts.push({ text: rest });
      break;
    }
    if (at > 0) parts.push({ text: rest.slice(0, at) });
    rest = rest.slice(at);
    const next = rest.charAt(1);
    if (next === '$') {
      parts.push({ text: '$' });
      rest = rest.slice(2);
      continue;
    }
    if (next !== '{') {
      parts.push(new ReferenceProblem('INVALID_REFERENCE', `a "$" must be followed by "$" or "{" (${SYNTAX_HINT})`));
      break;
    }
    const close = rest.indexOf('}', 2);
    if (close < 0 || close === 2) {
      parts.push(new ReferenceProblem('INVALID_REFERENCE', `"\${" opens no reference: write \${section:key} or \${key} (${SYNTAX_HINT})`));
      break;
    }
    const path = rest.slice(2, close).split(':');
    rest = rest.slice(close + 1);
    if (path.length > 2) {
      parts.push(new ReferenceProblem('INVALID_REFERENCE', `a reference holds more than one ":": write \${section:key}`));
      break;
    }
    parts.push(path.length === 1 ? { section, key: path[0]!.toLowerCase() } : { section: path[0]!, key: path[1]!.toLowerCase() });
  }
  return parts;
}

/** `section.key` of every reference a value makes, up to a syntax error. */
function referencesIn(input: { value: string; section: string }): string[] {
  return parseValue(input).flatMap((part) => ('key' in part ? [fieldId(part.section, part.key)] : []));
}

/**
 * Resolves values depth first, each once. The walk stops at configparser's depth: a chain that
 * goes further is refused whatever lies beyond, so a long chain costs no deep stack, and only
 * the key the walk started from learns it was cut (the keys on the way are walked again from
 * their own start).
 */
function createResolver({ merged, schema, unreadable }: ResolverInput) {
  const done = new Map<string, Resolved | ReferenceProblem>();
  const visiting: string[] = [];
  const CUT = new ReferenceProblem(
    'REFERENCE_TOO_DEEP',
    `its references nest more than ${MAX_REFERENCE_DEPTH} levels deep; configparser reads at most ${MAX_REFERENCE_DEPTH}`,
  );

  function value(section: string, key: string): Resolved | ReferenceProblem {
    const at = internalKey(section, key);
    const known = done.get(at);
    if (known) return known;
    const entry = merged.get(section)?.get(key);
    const id = fieldId(section, key);
    if (!entry) return new ReferenceProblem('REFERENCE_NOT_FOUND', `${id} does not exist`);
    const open = visiting.indexOf(at);
    if (open >= 0) {
      const cycle = visiting.slice(open).map((k) => k.replace('\u0000', '.'));
      return new ReferenceProblem('REFERENCE_CYCLE', `refers back to itself: ${[...cycle, id].join(' → ')}`, cycle);
    }
    if (visiting.length >= MAX_REFERENCE_DEPTH) return CUT;
    visiting.push(at);
    const outcome = resolveEntry({ section, entry, id });
    visiting.pop();
    // A walk cut short says nothing of this key's own chain unless the walk began here.
    if (outcome !== CUT || visiting.length === 0) done.set(at, outcome);
    return outcome;
  }

  function resolveEntry({ section, entry, id }: { section: string; entry: MergedEntry; id: string }): Resolved | ReferenceProblem {
    const sensitive = isSensitive(schema, section, entry.key);
    // A reference to nothing is text of the value: a secret's is never quoted (messages reach logs and events).
    const named = (target: string): string => (sensitive ? 'a key' : target);
    let text = '';
    let depth = 1;
    for (const part of parseValue({ value: entry.value, section })) {
      if (part instanceof ReferenceProblem) return part;
      if ('text' in part) {
        text += part.text;
        continue;
      }
      const target = fieldId(part.section, part.key);
      if (parseOverlay(part.section)) {
        return new ReferenceProblem(
          'INVALID_REFERENCE',
          sensitive
            ? 'refers to an overlay: refer to its section, whose value the environment chooses'
            : `refers to the overlay [${part.section}]: refer to [${baseSectionOf(part.section)}], whose value the environment chooses`,
        );
      }
      if (isEnvSection(part.section)) return new ReferenceProblem('INVALID_REFERENCE', 'environment variables cannot be referred to');
      const referred = merged.get(part.section)?.get(part.key);
      if (!referred) return new ReferenceProblem('REFERENCE_NOT_FOUND', `refers to ${named(target)}, which does not exist`);
      if (!sensitive && isSensitive(schema, part.section, referred.key)) {
        return new ReferenceProblem('REFERENCE_TO_SECRET', `refers to the secret ${target}: only a secret may hold a secret`);
      }
      // Named as the file holds it: an environment's overlay, or the section.
      if (unreadable.has(fieldId(referred.from, referred.keyLower))) {
        return new ReferenceProblem('REFERENCE_UNREADABLE', `refers to ${target}, which cannot be decrypted`);
      }
      if (!referred.value.includes('$')) {
        text += referred.value;
      } else {
        const inner = value(part.section, part.key);
        if (inner instanceof ReferenceProblem) return referring({ inner, target, id });
        text += inner.text;
        depth = Math.max(depth, inner.depth + 1);
        if (depth > MAX_REFERENCE_DEPTH) return CUT;
      }
      if (text.length > MAX_RESOLVED_LENGTH) {
        return new ReferenceProblem('REFERENCE_TOO_LONG', `its references make it longer than ${MAX_RESOLVED_LENGTH} characters`);
      }
    }
    return { text, depth };
  }

  /** What a key learns of a problem of a key it refers to. */
  function referring({ inner, target, id }: { inner: ReferenceProblem; target: string; id: string }): ReferenceProblem {
    if (inner === CUT) return CUT;
    if (inner.cycle) {
      if (inner.cycle.includes(id)) return inner;
      return new ReferenceProblem('REFERENCE_CYCLE', `refers to ${target}, which is in a reference cycle: ${inner.cycle.join(' → ')}`, inner.cycle);
    }
    if (inner.code === 'REFERENCE_TOO_DEEP' || inner.code === 'REFERENCE_TOO_LONG')
      return new ReferenceProblem(inner.code, `refers to ${target}: ${inner.message}`);
    return new ReferenceProblem('INVALID_REFERENCE', `refers to ${target}, which cannot be resolved`);
  }

  return { value };
}
