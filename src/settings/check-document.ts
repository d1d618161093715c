/**
 * The whole check of config.ini: resolved (overlays, references), then validated on the values
 * services get. Every environment the file has overlays for is checked, and the file without an
 * environment too: one file is valid or not wherever it runs, so a write for staging cannot leave
 * a broken production overlay for a later promote, and the worker and the API agree.
 */
import type { FieldIssue } from '../core/errors.js';
import type { IniDocument } from '../ini/document.js';
import { environmentsOf, parseOverlay } from './overlays.js';
import { resolveDocument, type ResolveResult, type ResolveSettings } from './resolve.js';
import { fieldId, validateDocument, type ValidateInput } from './validate.js';

export interface CheckDocumentInput extends Omit<ValidateInput, 'doc'> {
  /** config.ini with every sealed value opened, as stored (references and overlays raw). */
  readonly doc: IniDocument;
  readonly resolve: ResolveSettings;
}

export interface CheckDocumentResult {
  /** The document in the environment confhub runs in. */
  readonly resolved: ResolveResult;
  readonly issues: FieldIssue[];
  /** The 1-based line of config.ini an issue is about, in the environment it was found in. */
  lineOf(issue: FieldIssue): number | undefined;
}

export function checkDocument({ doc, resolve, changed = new Set(), skip = new Set(), ...rest }: CheckDocumentInput): CheckDocumentResult {
  const resolved = resolveDocument({ doc, schema: rest.schema, settings: resolve, unreadable: skip });
  const issues = [...resolved.issues, ...validateIn({ resolved, environment: resolve.environment, changed, skip, rest })];
  const lines = new WeakMap<FieldIssue, number>();
  const lineIn = (origins: ResolveResult['origins'], issue: FieldIssue): number | undefined => origins.get(issue.field)?.line;
  for (const issue of issues) {
    const line = lineIn(resolved.origins, issue);
    if (line !== undefined) lines.set(issue, line);
  }
  const environments: (string | undefined)[] = environmentsOf(doc);
  if (resolve.environment !== undefined) environments.unshift(undefined);
  const seen = new Set(issues.map((issue) => issue.message));
  for (const environment of environments) {
    if (environment === resolve.environment) continue;
    const other = resolveDocument({ doc, schema: rest.schema, settings: { ...resolve, environment }, unreadable: skip });
    for (const issue of [...other.issues, ...validateIn({ resolved: other, environment, changed, skip, rest })]) {
      if (seen.has(issue.message)) continue;
      seen.add(issue.message);
      const named = { ...issue, message: `${issue.message} (${environment === undefined ? 'without an environment' : `in environment ${environment}`})` };
      const line = lineIn(other.origins, issue);
      if (line !== undefined) lines.set(named, line);
      issues.push(named);
    }
  }
  return { resolved, issues, lineOf: (issue) => lines.get(issue) };
}

interface ValidateInInput {
  readonly resolved: ResolveResult;
  readonly environment: string | undefined;
  readonly changed: ReadonlySet<string>;
  readonly skip: ReadonlySet<string>;
  readonly rest: Omit<ValidateInput, 'doc' | 'changed' | 'skip'>;
}

/** Validation of one environment's values; keys written there (or whose references were) count as changed. */
function validateIn({ resolved, environment, changed, skip, rest }: ValidateInInput): FieldIssue[] {
  return validateDocument({
    ...rest,
    doc: resolved.doc,
    changed: changedIn({ resolved, environment, changed }),
    skip: new Set([...inEnvironment(skip, environment), ...resolved.unresolved]),
  });
}

/**
 * `section@env.key` ids of `environment` as the resolved document names them; other environments'
 * left out, and so is a section's key the environment's overlay replaces (`origins` given).
 */
function inEnvironment(ids: ReadonlySet<string>, environment: string | undefined, origins?: ResolveResult['origins']): Set<string> {
  const out = new Set<string>();
  for (const id of ids) {
    const dot = id.indexOf('.', id.lastIndexOf('@') + 1);
    const overlay = dot < 0 ? undefined : parseOverlay(id.slice(0, dot));
    if (overlay) {
      if (overlay.environment === environment) out.add(fieldId(overlay.base, id.slice(dot + 1)));
      continue;
    }
    const from = origins?.get(id)?.section;
    if (from === undefined || parseOverlay(from) === undefined) out.add(id);
  }
  return out;
}

/** The changed keys, and every key whose references reach one (its resolved value changed with it). */
function changedIn({
  resolved,
  environment,
  changed,
}: {
  resolved: ResolveResult;
  environment: string | undefined;
  changed: ReadonlySet<string>;
}): Set<string> {
  const out = inEnvironment(changed, environment, resolved.origins);
  if (out.size === 0) return out;
  const referring = [...resolved.origins].filter(([, origin]) => origin.references.length > 0);
  for (let grew = referring.length > 0; grew; ) {
    grew = false;
    for (const [id, origin] of referring) {
      if (!out.has(id) && origin.references.some((ref) => out.has(ref))) {
        out.add(id);
        grew = true;
      }
    }
  }
  return out;
}
