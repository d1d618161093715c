/**
 * A write of environment variables turned into the settings store's changes: names, values and
 * scope checked, secrets placed in the scope's `:secret` section, and the names no write may take
 * refused (a mapped variable's, one that differs from another only by case). Every problem is
 * named; nothing is written unless all of the write is valid.
 */
import { AppError, type FieldIssue } from '../core/errors.js';
import type { IniDocument } from '../ini/document.js';
import {
  encodeEnvValue,
  envNameProblem,
  envSectionName,
  envValueProblem,
  GLOBAL_SCOPE,
  looksSecret,
  MAX_ENV_VALUE_LENGTH,
  scopeNameProblem,
} from '../settings/env-sections.js';
import { printable } from '../core/names.js';
import type { ChangeInput } from '../settings/plan-changes.js';
import { validationFailed } from '../settings/plan-changes.js';
import type { EnvDeclarations } from '../targets/env-spec.js';

/** One variable as a write gives it: its value (secret or not), or null to remove it. */
export type EnvWriteValue = { readonly value: string; readonly secret?: boolean } | null;

export interface PlanEnvWriteInput {
  /** config.ini as it is now (values opened). */
  readonly doc: IniDocument;
  readonly declarations: EnvDeclarations;
  readonly scope: string;
  readonly variables: ReadonlyMap<string, EnvWriteValue>;
  /** Why a value cannot reach a consumer of the scope (a supervisord program cannot carry every text); undefined when it can. */
  readonly deliveryProblem?: (scope: string, value: string) => string | undefined;
}

export function scopeExists(declarations: EnvDeclarations, scope: string): boolean {
  return scope === GLOBAL_SCOPE || declarations.consumers.includes(scope);
}

/** The scope, or ENV_SCOPE_NOT_FOUND naming the scopes there are. */
export function requireScope(declarations: EnvDeclarations, scope: string): void {
  if (scopeExists(declarations, scope)) return;
  const problem = scopeNameProblem(scope);
  if (problem) throw new AppError('INVALID_NAME', { details: `Scope "${printable(scope)}": ${problem}` });
  throw new AppError('ENV_SCOPE_NOT_FOUND', {
    details: `Scope ${scope} does not exist; the scopes are ${[GLOBAL_SCOPE, ...declarations.consumers].join(', ')} (consumers are declared in system.ini)`,
  });
}

/** Where a scope's variable is now: its section and its name as the file spells it. */
function locate(doc: IniDocument, scope: string, name: string): { section: string; key: string } | undefined {
  for (const secret of [false, true]) {
    const section = envSectionName(scope, { secret });
    const entry = doc.byName.get(section)?.byKey.get(name.toLowerCase());
    if (entry) return { section, key: entry.key };
  }
  return undefined;
}

/** Names a consumer receives from elsewhere (global, mapped) or defines itself, by lowercased name. */
function namesAround(doc: IniDocument, declarations: EnvDeclarations, scope: string): Map<string, { name: string; where: string }> {
  const names = new Map<string, { name: string; where: string }>();
  const add = (name: string, where: string) => {
    if (!names.has(name.toLowerCase())) names.set(name.toLowerCase(), { name, where });
  };
  const scopes = scope === GLOBAL_SCOPE ? [GLOBAL_SCOPE, ...declarations.consumers] : [GLOBAL_SCOPE, scope];
  for (const other of scopes) {
    for (const variable of declarations.mapped.get(other) ?? []) add(variable.name, `mapped for ${other}`);
    for (const secret of [false, true]) for (const entry of doc.byName.get(envSectionName(other, { secret }))?.entries ?? []) add(entry.key, other);
  }
  return names;
}

export function planEnvWrite({ doc, declarations, scope, variables, deliveryProblem }: PlanEnvWriteInput): ChangeInput[] {
  requireScope(declarations, scope);
  if (variables.size === 0) throw new AppError('INVALID_REQUEST', { details: 'No variables to change were given' });

  const badNames: string[] = [];
  const byLower = new Map<string, string>();
  for (const name of variables.keys()) {
    const problem = envNameProblem(name);
    if (problem) badNames.push(`Variable "${printable(name)}": ${problem}`);
    const twin = byLower.get(name.toLowerCase());
    if (twin) badNames.push(`Variables ${twin} and ${name} differ only by case; config.ini keys match without case, so one name is kept per scope`);
    byLower.set(name.toLowerCase(), name);
  }
  if (badNames.length > 0) throw new AppError('INVALID_NAME', { details: badNames.join('; ') });

  const mapped = new Map((declarations.mapped.get(scope) ?? []).map((variable) => [variable.name.toLowerCase(), variable]));
  // Removing is allowed: an own variable a newer system.ini maps must be removable.
  const refusedMapped = [...variables].flatMap(([name, given]) => {
    const variable = given === null ? undefined : mapped.get(name.toLowerCase());
    return variable ? [`${variable.name} is mapped from ${variable.placeholders.join(', ')}; change that setting instead`] : [];
  });
  if (refusedMapped.length > 0) throw new AppError('ENV_MAPPED', { details: refusedMapped.join('; ') });

  const issues: FieldIssue[] = [];
  const changes: ChangeInput[] = [];
  const around = namesAround(doc, declarations, scope);
  for (const [name, given] of variables) {
    const field = `${scope}.${name}`;
    const at = locate(doc, scope, name);
    if (at && at.key !== name) {
      issues.push({ field, code: 'ENV_NAME_CASE', message: `${field}: ${at.key} is set in this scope; a name differing only by case is refused` });
      continue;
    }
    if (given === null) {
      if (at) changes.push({ section: at.section, key: at.key, value: '', remove: true });
      continue;
    }
    const other = around.get(name.toLowerCase());
    if (!at && other && other.name !== name) {
      issues.push({ field, code: 'ENV_NAME_CASE', message: `${field}: ${other.name} (${other.where}) differs only by case; a consumer would get both` });
      continue;
    }
    const problem =
      given.value.length > MAX_ENV_VALUE_LENGTH
        ? `must be at most ${MAX_ENV_VALUE_LENGTH} characters`
        : (envValueProblem(given.value) ?? deliveryProblem?.(scope, given.value));
    if (problem) {
      issues.push({ field, code: 'INVALID_ENV_VALUE', message: `${field} ${problem}` });
      continue;
    }
    if (given.secret === false && looksSecret(name)) {
      issues.push({
        field,
        code: 'ENV_SECRET_NAME',
        message: `${field}: the name looks secret, so its value is always kept sealed; secret: false cannot be set`,
      });
      continue;
    }
    const wasSecret = at?.section.endsWith(':secret') === true;
    const secret = given.secret ?? (wasSecret || looksSecret(name));
    const section = envSectionName(scope, { secret });
    if (at && at.section !== section) changes.push({ section: at.section, key: at.key, value: '', remove: true });
    changes.push({ section, key: name, value: encodeEnvValue(given.value) });
  }
  if (issues.length > 0) throw validationFailed(issues);
  return changes;
}

/** The JSON of a write (`{NAME: "value" | {value, secret} | null}`) as variables, or VALIDATION_FAILED naming each bad entry. */
export function envWriteValues(body: unknown, scope: string): Map<string, EnvWriteValue> {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length === 0) {
    throw new AppError('INVALID_REQUEST', { details: 'The body must be a non-empty JSON object {NAME: "value" | {"value": "...", "secret": true} | null}' });
  }
  const out = new Map<string, EnvWriteValue>();
  const issues: FieldIssue[] = [];
  for (const name of Object.keys(body)) {
    const given = envWriteValue((body as Record<string, unknown>)[name]);
    if (given === undefined) {
      issues.push({
        field: `${scope}.${printable(name)}`,
        code: 'INVALID_TYPE',
        message: `${scope}.${printable(name)} must be a string, {"value": string, "secret": boolean} or null`,
      });
    } else out.set(name, given);
  }
  if (issues.length > 0) throw validationFailed(issues);
  return out;
}

/** One variable of a write as JSON gives it; undefined when it is none of the accepted shapes. */
export function envWriteValue(given: unknown): EnvWriteValue | undefined {
  if (given === null) return null;
  if (typeof given === 'string') return { value: given };
  if (typeof given !== 'object' || Array.isArray(given)) return undefined;
  const { value, secret, ...rest } = given as Record<string, unknown>;
  if (typeof value !== 'string' || (secret !== undefined && typeof secret !== 'boolean') || Object.keys(rest).length > 0) return undefined;
  return secret === undefined ? { value } : { value, secret };
}
