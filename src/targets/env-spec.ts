/**
 * The consumers of environment variables and their mapped variables, declared in system.ini
 * (read-only, shipped with the image). A consumer is a name a target delivers with `env = NAME`,
 * or a `[env:NAME]` section of system.ini, whose keys are mapped variables: templates over
 * config.ini values in the `{{ section.key }}` grammar of the `template` format, so changing the
 * setting changes the variable.
 *
 *   [env:gitea]
 *   GITEA__server__ROOT_URL = {{ gitea.base_url }}
 *
 * Declarations are checked once, at start, with the section and key of each problem.
 */
import type { IniDocument } from '../ini/document.js';
import { parsePlaceholders, placeholderNames, type ParsedTemplate } from '../render/placeholders.js';
import { envNameProblem, GLOBAL_SCOPE, isEnvSection, parseEnvSection, scopeNameProblem } from '../settings/env-sections.js';
import { invalid } from './declaration-error.js';

export interface MappedVariable {
  readonly name: string;
  /** The template as system.ini writes it. */
  readonly text: string;
  readonly template: ParsedTemplate;
  /** `section.key` names of its placeholders, in order. */
  readonly placeholders: readonly string[];
}

export interface EnvDeclarations {
  /** Every consumer: targets' `env` names and `[env:NAME]` sections of system.ini, sorted. */
  readonly consumers: readonly string[];
  /** Mapped variables by consumer. */
  readonly mapped: ReadonlyMap<string, readonly MappedVariable[]>;
}

export const NO_ENV_DECLARATIONS: EnvDeclarations = Object.freeze({ consumers: Object.freeze([]), mapped: new Map() });

export function parseEnvDeclarations(doc: IniDocument, { targetConsumers }: { targetConsumers: readonly string[] }): EnvDeclarations {
  const mapped = new Map<string, MappedVariable[]>();
  for (const section of doc.sections) {
    if (!isEnvSection(section.name)) continue;
    const env = parseEnvSection(section.name)!;
    if (env.secret)
      throw invalid(section.name, undefined, 'mapped variables are secret when a setting they read is; there is no :secret section in system.ini');
    if (env.scope === GLOBAL_SCOPE)
      throw invalid(section.name, undefined, 'mapped variables are declared per consumer ([env:NAME]); global variables are set through the API');
    const scopeProblem = scopeNameProblem(env.scope);
    if (scopeProblem) throw invalid(section.name, undefined, scopeProblem);
    const variables: MappedVariable[] = [];
    for (const entry of section.entries) {
      const nameProblem = envNameProblem(entry.key);
      if (nameProblem) throw invalid(section.name, entry.key, nameProblem);
      const template = parsePlaceholders(entry.value);
      if (template.malformedLines.length > 0) {
        throw invalid(section.name, entry.key, `line ${template.malformedLines[0]}: "{{" without a closing "}}" around a section.key name`);
      }
      const placeholders = placeholderNames(template);
      if (placeholders.length === 0)
        throw invalid(section.name, entry.key, 'names no {{ section.key }}: a variable set to a fixed text is set through the API');
      variables.push(Object.freeze({ name: entry.key, text: entry.value, template, placeholders: Object.freeze(placeholders) }));
    }
    mapped.set(env.scope, variables);
  }
  for (const consumer of targetConsumers) {
    if (consumer === GLOBAL_SCOPE) continue;
    const problem = scopeNameProblem(consumer);
    if (problem) throw invalid(`env:${consumer}`, undefined, problem);
  }
  const consumers = [...new Set([...mapped.keys(), ...targetConsumers.filter((c) => c !== GLOBAL_SCOPE)])].sort();
  return Object.freeze({ consumers: Object.freeze(consumers), mapped });
}
