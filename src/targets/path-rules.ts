/**
 * Where targets may write and read templates, as plain data (it crosses to the sync worker):
 * outputs stay under the output roots and templates under the template roots, and no output is
 * ever one of confhub's own files. Here the rules are applied to paths as written (start-up,
 * pure); fs/contained-path.ts applies them again to paths as the kernel resolves them.
 */
import { isAbsolute, normalize, relative } from 'node:path';

/** A file or directory confhub keeps for itself, with what it is (for messages). */
export interface OwnPath {
  readonly path: string;
  readonly what: string;
  /** Everything under it is confhub's too. */
  readonly tree?: true;
  /** Templates may be read from it (the config directory: the default template root). */
  readonly templates?: true;
}

export interface PathRules {
  /** Absolute directories an output must resolve inside. */
  readonly outputRoots: readonly string[];
  /** Absolute directories a template must resolve inside. */
  readonly templateRoots: readonly string[];
  readonly own: readonly OwnPath[];
}

/** True when `path` is `dir` or below it (paths as written: no link is followed). */
export function isInside(dir: string, path: string): boolean {
  const rel = relative(normalize(dir), normalize(path));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** The own file or directory `path` is, or lies in; undefined when it is none of them. */
export function ownPathHit(path: string, own: readonly OwnPath[]): OwnPath | undefined {
  // Exact files first: "config.ini" says more than "inside the config directory".
  return own.find((o) => o.path === path) ?? own.find((o) => o.tree && isInside(o.path, path));
}

export interface PathCheck {
  readonly roots: readonly string[];
  readonly own: readonly OwnPath[];
}

/** Why `path` may not be written by a target ("is …", to follow the path); undefined when it may. */
export function outputProblem(path: string, { roots, own }: PathCheck): string | undefined {
  const hit = ownPathHit(path, own);
  if (hit) return `${hit.path === path ? 'is' : 'is inside'} ${hit.what}, which confhub keeps for itself`;
  if (!roots.some((root) => isInside(root, path))) return `is outside the output roots (${roots.join(', ')}) that [sync] output_roots allows`;
  return undefined;
}

/** Why `path` may not be read as a template ("is …", to follow the path); undefined when it may. */
export function templateProblem(path: string, { roots, own }: PathCheck): string | undefined {
  const hit = ownPathHit(path, own);
  if (hit && !(hit.templates && hit.path !== path)) return `${hit.path === path ? 'is' : 'is inside'} ${hit.what}, which is no template`;
  if (!roots.some((root) => isInside(root, path))) return `is outside the template roots (${roots.join(', ')}) that [sync] template_roots allows`;
  return undefined;
}

/** A path for a message: as declared, and where it really leads when that differs. */
export function shownPath(declared: string, real: string): string {
  return real === declared ? declared : `${declared} (which leads to ${real})`;
}

/** Why a `[sync] *_roots` list cannot be used; undefined when it can. Items are comma separated. */
export function rootsProblem(items: readonly string[]): string | undefined {
  if (items.some((item) => item === '')) return 'must not contain empty list items';
  for (const item of items) {
    if (!isAbsolute(item)) return `"${item}" must be an absolute path`;
    if (item.split('/').includes('..')) return `"${item}" must not contain ".." segments`;
  }
  return undefined;
}
