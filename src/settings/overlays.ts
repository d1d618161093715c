/**
 * Environment overlays: `[section@env]` holds the keys of `[section]` that differ when confhub runs
 * in `env` (CONFHUB_ENVIRONMENT). An overlay follows its base section's schema: its secrets are
 * sealed and masked, its values checked by the same kinds.
 */
import type { IniDocument } from '../ini/document.js';

const ENVIRONMENT_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const OVERLAY_MARK = '@';

export function environmentNameProblem(name: string): string | undefined {
  return ENVIRONMENT_NAME.test(name) ? undefined : 'an environment name is 1-32 lowercase letters, digits, "_" or "-", starting with a letter or digit';
}

/** `gitea@staging` → `{ base: 'gitea', environment: 'staging' }`; undefined for a section that is no overlay. */
export function parseOverlay(sectionName: string): { readonly base: string; readonly environment: string } | undefined {
  const at = sectionName.lastIndexOf(OVERLAY_MARK);
  if (at < 0) return undefined;
  return { base: sectionName.slice(0, at), environment: sectionName.slice(at + 1) };
}

export function overlayName(base: string, environment: string): string {
  return `${base}${OVERLAY_MARK}${environment}`;
}

/** The section whose schema a section follows: an overlay's base, or itself. */
export function baseSectionOf(sectionName: string): string {
  return parseOverlay(sectionName)?.base ?? sectionName;
}

/** The environments config.ini has overlays for, sorted; an overlay left without keys is none. */
export function environmentsOf(doc: IniDocument): string[] {
  const names = new Set<string>();
  for (const section of doc.sections) {
    const overlay = parseOverlay(section.name);
    if (overlay && overlay.base !== '' && section.entries.length > 0 && !environmentNameProblem(overlay.environment)) names.add(overlay.environment);
  }
  return [...names].sort();
}
