/**
 * The environment variables of a scope and of a consumer, from config.ini (opened: sealed values
 * in plain text) and the declarations of system.ini. Pure: the API, the env renderers and the plan
 * of a write all read variables through here.
 *
 * A consumer's environment = the global variables ∪ its mapped variables ∪ its own variables, in
 * that order (a later one wins: a consumer's own variable over a global one; an own variable may
 * not share a mapped one's name, the write refuses it).
 */
import type { IniDocument } from '../ini/document.js';
import { substitute, substitutionProblems } from '../render/placeholders.js';
import { decodeEnvValue, envSectionName, GLOBAL_SCOPE, isEnvSection, looksSecret } from '../settings/env-sections.js';
import { isSensitive, type FileSchema } from '../settings/schema.js';
import type { EnvDeclarations, MappedVariable } from '../targets/env-spec.js';

export interface EnvVariable {
  readonly value: string;
  readonly secret: boolean;
  /** `config.ini` for a variable set through the API or by hand, `mapped:<section>.<key>` for a mapped one. */
  readonly source: string;
  /** The scope it is set in (`global` for a global variable in a consumer's environment). */
  readonly scope: string;
}

export interface Environment {
  /** By name, in the order they were set. */
  readonly variables: ReadonlyMap<string, EnvVariable>;
  /** Mapped variables that could not be computed (names and settings only, never values). */
  readonly problems: readonly string[];
}

/** The variables set at one scope (`[env:<scope>]` and `[env:<scope>:secret]`). A stored value that does not decode is left out. */
export function scopeVariables(doc: IniDocument, scope: string): Map<string, EnvVariable> {
  const out = new Map<string, EnvVariable>();
  for (const secret of [false, true]) {
    const section = doc.byName.get(envSectionName(scope, { secret }));
    for (const entry of section?.entries ?? []) {
      let value: string;
      try {
        value = decodeEnvValue(entry.value);
      } catch {
        continue;
      }
      out.set(entry.key, { value, secret: secret || looksSecret(entry.key), source: 'config.ini', scope });
    }
  }
  return out;
}

export interface ConsumerInput {
  readonly doc: IniDocument;
  /** config.ini's schema: a mapped variable reading a sensitive setting is secret. */
  readonly schema: FileSchema;
  readonly declarations: EnvDeclarations;
  readonly consumer: string;
}

function mappedValue(doc: IniDocument, schema: FileSchema, variable: MappedVariable): { value: EnvVariable | undefined; problems: string[] } {
  const read: string[] = [];
  const result = substitute(
    variable.template,
    // Mapped variables read settings, not other variables.
    (section, key) => (isEnvSection(section) ? undefined : doc.byName.get(section)?.byKey.get(key.toLowerCase())?.value),
    (value, at) => {
      read.push(`${at.section}.${at.key.toLowerCase()}`);
      return value;
    },
  );
  const problems = substitutionProblems(variable.template, result);
  if (problems.length > 0) return { value: undefined, problems };
  const secret = looksSecret(variable.name) || read.some((id) => isSensitive(schema, id.slice(0, id.lastIndexOf('.')), id.slice(id.lastIndexOf('.') + 1)));
  return { value: { value: result.text, secret, source: `mapped:${read.join(',')}`, scope: '' }, problems: [] };
}

/** A consumer's mapped variables. */
export function mappedVariables({ doc, schema, declarations, consumer }: ConsumerInput): Environment {
  const variables = new Map<string, EnvVariable>();
  const problems: string[] = [];
  for (const variable of declarations.mapped.get(consumer) ?? []) {
    const mapped = mappedValue(doc, schema, variable);
    if (mapped.value) variables.set(variable.name, { ...mapped.value, scope: consumer });
    else problems.push(...mapped.problems.map((problem) => `[env:${consumer}] ${variable.name}: ${problem}`));
  }
  return { variables, problems };
}

/** What a consumer receives: global ∪ mapped ∪ own (`global` itself: the global variables). */
export function environmentOf(input: ConsumerInput): Environment {
  const variables = new Map<string, EnvVariable>(scopeVariables(input.doc, GLOBAL_SCOPE));
  if (input.consumer === GLOBAL_SCOPE) return { variables, problems: [] };
  const mapped = mappedVariables(input);
  for (const [name, variable] of mapped.variables) variables.set(name, variable);
  for (const [name, variable] of scopeVariables(input.doc, input.consumer)) variables.set(name, variable);
  return { variables, problems: mapped.problems };
}

/** The variables defined at a scope itself: for a consumer its mapped and its own ones, for `global` the global ones. */
export function variablesAt(input: ConsumerInput): Environment {
  if (input.consumer === GLOBAL_SCOPE) return { variables: scopeVariables(input.doc, GLOBAL_SCOPE), problems: [] };
  const mapped = mappedVariables(input);
  const variables = new Map(mapped.variables);
  for (const [name, variable] of scopeVariables(input.doc, input.consumer)) variables.set(name, variable);
  return { variables, problems: mapped.problems };
}
