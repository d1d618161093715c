/**
 * Whole-document validation, shared by every writer and (later) the sync worker: each declared
 * key's type, ports used twice across services, and credential strength of passwords being set.
 * Every failing field is reported, not just the first.
 */
import type { FieldIssue } from '../core/errors.js';
import type { IniDocument } from '../ini/document.js';
import { weakPasswordReason } from './credential-strength.js';
import { FIELD_KINDS, publicApiKeyProblem } from './field-kinds.js';
import type { FileSchema } from './schema.js';
import { decodeEnvValue, envNameProblem, envValueProblem, envSectionName, parseEnvSection, scopeNameProblem } from './env-sections.js';

export interface ValidateInput {
  doc: IniDocument;
  schema: FileSchema;
  /**
   * `section.key` (key lowercased) of the values a write sets. Credential strength is checked for
   * passwords being set (or whose user name is being set), so an untouched legacy password never
   * blocks an unrelated change.
   */
  changed?: ReadonlySet<string>;
  /** `section.key` of values not to check (sealed values that do not open: reported on their own). */
  skip?: ReadonlySet<string>;
  /**
   * Refuse a publicly known API key wherever it stands, not only where a write sets it: for a
   * file saved by hand. (A legacy file holding one is read at start and its key replaced then.)
   */
  refusePublicKeys?: boolean;
  /**
   * The consumers system.ini declares and their mapped variables: env sections are then also held
   * to them (a scope that exists, no own variable named like a mapped one, no name two ways).
   * `confhub validate` warns of these; confhub runs with them, since an upgraded system.ini may
   * drop a consumer or map a name a user set, and a file that stopped every target for that
   * could not be mended through the API.
   */
  envDeclarations?: EnvDeclarationsShape;
}

/** What validation needs of the env declarations (targets/env-spec.ts), without depending on it. */
export interface EnvDeclarationsShape {
  readonly consumers: readonly string[];
  readonly mapped: ReadonlyMap<string, readonly { readonly name: string; readonly placeholders: readonly string[] }[]>;
}

export function fieldId(section: string, key: string): string {
  return `${section}.${key.toLowerCase()}`;
}

export function validateDocument({
  doc,
  schema,
  changed = new Set(),
  skip = new Set(),
  refusePublicKeys = false,
  envDeclarations,
}: ValidateInput): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const portUsers = new Map<number, string[]>();

  for (const [sectionName, spec] of schema) {
    const section = doc.byName.get(sectionName);
    if (!section) continue;
    for (const [key, fieldSpec] of spec.fields) {
      const entry = section.byKey.get(key);
      if (!entry) continue;
      const id = fieldId(sectionName, key);
      if (skip.has(id)) continue;
      const kind = FIELD_KINDS[fieldSpec.kind];
      if (entry.value === '') {
        if (!fieldSpec.allowEmpty) issues.push({ field: id, code: 'REQUIRED', message: `${id} must not be empty` });
        else if (fieldSpec.password && changed.has(id)) {
          issues.push({ field: id, code: 'WEAK_PASSWORD', message: `${id} must not be empty` });
        }
        continue;
      }
      if (!fieldSpec.multiline && entry.value.includes('\n')) {
        issues.push({ field: id, code: 'MULTILINE_NOT_ALLOWED', message: `${id} must be a single line` });
        continue;
      }
      const problem =
        kind.check(entry.value) ?? (fieldSpec.kind === 'api_key' && (refusePublicKeys || changed.has(id)) ? publicApiKeyProblem(entry.value) : undefined);
      if (problem) {
        issues.push({ field: id, code: kind.issueCode, message: `${id} ${problem}` });
        continue;
      }
      if (fieldSpec.kind === 'port') {
        const port = Number(entry.value);
        portUsers.set(port, [...(portUsers.get(port) ?? []), id]);
      }
      if (fieldSpec.password) {
        const userId = fieldId(sectionName, fieldSpec.password.userKey);
        if (changed.has(id) || changed.has(userId)) {
          const userName = section.byKey.get(fieldSpec.password.userKey)?.value;
          const reason = weakPasswordReason({ password: entry.value, userName });
          if (reason) issues.push({ field: id, code: 'WEAK_PASSWORD', message: `${id} ${reason}` });
        }
      }
    }
  }

  for (const [port, users] of portUsers) {
    if (users.length < 2) continue;
    for (const user of users) {
      const others = users.filter((other) => other !== user).join(', ');
      issues.push({ field: user, code: 'PORT_CONFLICT', message: `${user} uses port ${port}, which ${others} also uses` });
    }
  }
  issues.push(...envIssues(doc, skip));
  if (envDeclarations) issues.push(...declaredEnvIssues(doc, envDeclarations));
  return issues;
}

/** The `[env:<scope>]` sections: scope names, variable names, values an environment can hold, one name per scope. */
function envIssues(doc: IniDocument, skip: ReadonlySet<string>): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const section of doc.sections) {
    const env = parseEnvSection(section.name);
    if (!env) continue;
    const scopeProblem = scopeNameProblem(env.scope);
    if (scopeProblem) issues.push({ field: section.name, code: 'INVALID_ENV_SCOPE', message: `[${section.name}]: ${scopeProblem}` });
    const other = env.secret ? undefined : doc.byName.get(envSectionName(env.scope, { secret: true }));
    for (const entry of section.entries) {
      const id = fieldId(section.name, entry.key);
      const nameProblem = envNameProblem(entry.key);
      if (nameProblem) {
        issues.push({ field: id, code: 'INVALID_ENV_NAME', message: `${id}: ${nameProblem}` });
        continue;
      }
      if (other?.byKey.has(entry.keyLower)) {
        issues.push({ field: id, code: 'ENV_NAME_CLASH', message: `${id}: ${other.name} also holds ${entry.key}; a variable is in one of them` });
      }
      if (skip.has(id)) continue;
      let value: string;
      try {
        value = decodeEnvValue(entry.value);
      } catch {
        // The parser's own message quotes the value, which may be a secret.
        issues.push({ field: id, code: 'INVALID_ENV_VALUE', message: `${id}: json: must be followed by one JSON string` });
        continue;
      }
      const valueProblem = envValueProblem(value);
      if (valueProblem) issues.push({ field: id, code: 'INVALID_ENV_VALUE', message: `${id} ${valueProblem}` });
    }
  }
  return issues;
}

/** Env sections held to system.ini's declarations, as the API holds its writes. */
function declaredEnvIssues(doc: IniDocument, declarations: EnvDeclarationsShape): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const globalNames = new Map<string, string>();
  for (const secret of [false, true])
    for (const entry of doc.byName.get(envSectionName('global', { secret }))?.entries ?? []) globalNames.set(entry.keyLower, entry.key);
  for (const section of doc.sections) {
    const env = parseEnvSection(section.name);
    if (!env || scopeNameProblem(env.scope)) continue;
    if (env.scope !== 'global' && !declarations.consumers.includes(env.scope)) {
      issues.push({
        field: section.name,
        code: 'INVALID_ENV_SCOPE',
        message: `[${section.name}]: ${env.scope} is not global or a consumer declared in system.ini`,
      });
      continue;
    }
    const mapped = new Map((declarations.mapped.get(env.scope) ?? []).map((v) => [v.name.toLowerCase(), v]));
    for (const entry of section.entries) {
      const id = fieldId(section.name, entry.key);
      const shadowed = mapped.get(entry.keyLower);
      if (shadowed)
        issues.push({
          field: id,
          code: 'ENV_MAPPED',
          message: `${id}: ${shadowed.name} is mapped from ${shadowed.placeholders.join(', ')}; change that setting instead`,
        });
      const global = env.scope === 'global' ? undefined : globalNames.get(entry.keyLower);
      if (global !== undefined && global !== entry.key) {
        issues.push({ field: id, code: 'ENV_NAME_CASE', message: `${id}: global has ${global}, which differs only by case; the consumer would get both` });
      }
    }
  }
  return issues;
}
