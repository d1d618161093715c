/**
 * The templates on offer: those shipped in config/templates/ and the administrator's own in
 * `<config dir>/templates/`, one `<name>.ini` each; an administrator's template replaces a shipped
 * one of the same name. A file that cannot be offered (a bad name, not a regular file, too large,
 * invalid) is left out with a problem saying why: one broken file never hides the others.
 *
 * The config directory is writable by its administrator, so what is read there is held short: only
 * regular files (a symbolic link could point confhub at any file it may read, and a problem
 * quotes key names of what it read), at most 256 KiB each and 200 per directory.
 *
 * The file access is a parameter (node:fs by default); parsing is template-file.ts's and pure.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAppError } from '../core/errors.js';
import { parseTemplate, type Template, type TemplateOrigin, templateNameProblem } from './template-file.js';

/** config/templates/ at the package root, from src/templates or dist/templates alike. */
export const SHIPPED_TEMPLATES_DIR = fileURLToPath(new URL('../../config/templates', import.meta.url));
export const MAX_TEMPLATE_BYTES = 256 * 1024;
export const MAX_TEMPLATES = 200;
const EXTENSION = '.ini';

export interface TemplateDirEntry {
  readonly name: string;
  /** What the entry itself is (lstat: a symbolic link is `symlink`, whatever it points at). */
  readonly type: 'file' | 'directory' | 'symlink' | 'other';
}

export interface TemplateFileAccess {
  /** The entries of a directory, or undefined when there is none; throws when it cannot be read or is not a real directory. */
  readDir(dir: string): readonly TemplateDirEntry[] | undefined;
  /** The bytes of a regular file, at most `maxBytes + 1` of them (more than `maxBytes`: too large); never through a symbolic link. */
  readFile(path: string, options: { readonly maxBytes: number }): Uint8Array;
}

export interface TemplateProblem {
  /** The file's path (or the directory's, for a problem of the directory). */
  readonly file: string;
  readonly details: string;
}

export interface LoadTemplatesInput extends Partial<TemplateFileAccess> {
  readonly shippedDir: string;
  /** `<config dir>/templates`: need not exist. */
  readonly customDir: string;
}

export interface LoadTemplatesResult {
  /** Sorted by name; an administrator's template in place of a shipped one of the same name. */
  readonly templates: Template[];
  readonly problems: TemplateProblem[];
}

function errorText(error: unknown): string {
  if (isAppError(error)) return error.details;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  // ELOOP: O_NOFOLLOW met a symbolic link put in place of the file after the listing.
  if (code === 'ELOOP') return 'not read: a symbolic link, not a regular file';
  return `not read: ${typeof code === 'string' ? code : String((error as Error | undefined)?.message ?? error)}`;
}

interface DirResult {
  readonly templates: Map<string, Template>;
  /** Names of `.ini` files that were found but could not be offered. */
  readonly refused: Set<string>;
}

function readTemplateDir({ dir, origin, access }: { dir: string; origin: TemplateOrigin; access: TemplateFileAccess }, problems: TemplateProblem[]): DirResult {
  const result: DirResult = { templates: new Map(), refused: new Set() };
  let entries: readonly TemplateDirEntry[] | undefined;
  try {
    entries = access.readDir(dir);
  } catch (error) {
    problems.push({ file: dir, details: `the template directory cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
    return result;
  }
  if (entries === undefined) {
    // The administrator's directory is optional; the shipped one is part of the package.
    if (origin === 'shipped') problems.push({ file: dir, details: 'the shipped template directory is missing' });
    return result;
  }
  // Files other than *.ini (an editor's backup, a README) are not templates and not a problem.
  const candidates = entries.filter((e) => e.name.endsWith(EXTENSION)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (candidates.length > MAX_TEMPLATES) {
    const skipped = candidates.splice(MAX_TEMPLATES);
    problems.push({
      file: dir,
      details: `holds ${MAX_TEMPLATES + skipped.length} template files; only the first ${MAX_TEMPLATES} by name are read (${skipped.length} left out, from ${skipped[0]!.name})`,
    });
  }
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (const entry of candidates) {
    const file = join(dir, entry.name);
    const name = entry.name.slice(0, -EXTENSION.length);
    const refuse = (details: string): void => {
      problems.push({ file, details });
      result.refused.add(name);
    };
    const nameProblem = templateNameProblem(name);
    if (nameProblem) {
      problems.push({ file, details: `not read: the ${nameProblem}` });
      continue;
    }
    if (entry.type !== 'file') {
      refuse(
        `not read: ${entry.type === 'symlink' ? 'a symbolic link' : `a ${entry.type === 'directory' ? 'directory' : 'special file'}`}, not a regular file`,
      );
      continue;
    }
    try {
      const bytes = access.readFile(file, { maxBytes: MAX_TEMPLATE_BYTES });
      if (bytes.length > MAX_TEMPLATE_BYTES) {
        refuse(`not read: larger than ${MAX_TEMPLATE_BYTES / 1024} KiB`);
        continue;
      }
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch {
        refuse('not read: the file is not UTF-8');
        continue;
      }
      result.templates.set(name, parseTemplate({ name, text, origin }));
    } catch (error) {
      refuse(errorText(error));
    }
  }
  return result;
}

/**
 * Every template on offer and every file that could not be. A custom template that cannot be read
 * withholds the shipped one of its name too: the administrator meant to replace it, and applying
 * the shipped settings in its place would not be what they asked for.
 */
export function loadTemplates(input: LoadTemplatesInput): LoadTemplatesResult {
  const fallback = createNodeTemplateFileAccess();
  const access: TemplateFileAccess = { readDir: input.readDir ?? fallback.readDir, readFile: input.readFile ?? fallback.readFile };
  const problems: TemplateProblem[] = [];
  const shipped = readTemplateDir({ dir: input.shippedDir, origin: 'shipped', access }, problems);
  const custom = readTemplateDir({ dir: input.customDir, origin: 'custom', access }, problems);
  const byName = new Map(shipped.templates);
  for (const name of custom.refused) {
    if (byName.delete(name)) {
      problems.push({
        file: join(input.customDir, `${name}${EXTENSION}`),
        details: `the shipped template ${name} is not offered either: this file replaces it`,
      });
    }
  }
  for (const [name, template] of custom.templates) byName.set(name, template);
  const templates = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { templates, problems };
}

function entryType(entry: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): TemplateDirEntry['type'] {
  if (entry.isSymbolicLink()) return 'symlink';
  if (entry.isFile()) return 'file';
  return entry.isDirectory() ? 'directory' : 'other';
}

/** Template files read with node:fs, synchronously (a few small files, read when asked for). */
export function createNodeTemplateFileAccess(): TemplateFileAccess {
  return {
    readDir(dir) {
      let stat: Stats;
      try {
        stat = lstatSync(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      if (stat.isSymbolicLink()) throw new Error('it is a symbolic link, not a directory');
      if (!stat.isDirectory()) throw new Error('it is not a directory');
      return readdirSync(dir, { withFileTypes: true }).map((entry) => ({ name: entry.name, type: entryType(entry) }));
    },
    readFile(path, { maxBytes }) {
      // O_NOFOLLOW: the entry was a regular file when listed, and a link put in its place since is not followed.
      // O_NONBLOCK: a FIFO put there would otherwise block the open until someone writes to it.
      const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        if (!fstatSync(fd).isFile()) throw new Error('a special file, not a regular file');
        const buffer = Buffer.alloc(maxBytes + 1);
        let length = 0;
        for (;;) {
          const read = readSync(fd, buffer, length, buffer.length - length, null);
          if (read === 0) break;
          length += read;
          if (length === buffer.length) break;
        }
        return buffer.subarray(0, length);
      } finally {
        closeSync(fd);
      }
    },
  };
}
