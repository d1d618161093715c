/**
 * The path rules (targets/path-rules.ts) applied to paths as the kernel resolves them, links
 * followed: an output directory that is (or passes through) a symbolic link must still end up
 * under an output root, and a template under a template root.
 *
 * A path checked and then used by name can be swapped between the two (a service that can write
 * into its volume could replace a directory with a link to /etc). So a directory or template is
 * opened first and what was opened is checked: on Linux /proc/self/fd/N names the very object a
 * descriptor holds, and every later step goes through that name, which no rename or link changes.
 * Without /proc (not Linux) the check falls back to realpath(3) and the swap stays possible in the
 * moment between the check and the use.
 */
import { constants, realpathSync } from 'node:fs';
import { mkdir, open, readlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AppError } from '../core/errors.js';
import { outputProblem, shownPath, templateProblem, type OwnPath, type PathCheck, type PathRules } from '../targets/path-rules.js';
import { invalid, type SyncConfig } from '../targets/target-spec.js';

/**
 * The real path of a path that may not exist yet: its nearest existing ancestor resolved, the rest
 * appended. (A part confhub may not look into is taken as written: nothing can be written there either.)
 */
export function realPathOf(path: string): string {
  const missing: string[] = [];
  let head = resolve(path);
  for (;;) {
    try {
      return join(realpathSync(head), ...missing);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (!(code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES') || dirname(head) === head) throw error;
      missing.unshift(basename(head));
      head = dirname(head);
    }
  }
}

/** The rules with every root and own path resolved as the kernel sees them now. */
function realRules(roots: readonly string[], own: readonly OwnPath[]): PathCheck {
  return { roots: roots.map(realPathOf), own: own.map((o) => ({ ...o, path: realPathOf(o.path) })) };
}

/** The path the kernel resolved when it opened this descriptor, and a name that reaches the same object. */
async function openedAs(handle: FileHandle, path: string): Promise<{ real: string; via: string }> {
  const proc = `/proc/self/fd/${handle.fd}`;
  try {
    return { real: await readlink(proc), via: proc };
  } catch {
    const real = realPathOf(path);
    return { real, via: real };
  }
}

/** Refuses the output when its real path breaks the rules. */
function checkOutput(output: string, real: string, rules: PathCheck): void {
  const problem = outputProblem(real, rules);
  if (problem) throw new AppError('WRITE_FAILED', { details: `${shownPath(output, real)} ${problem}; confhub does not write there` });
}

/** An output's directory, opened and found inside the output roots. */
export interface OutputDir {
  /** The output file, reached through the verified directory. */
  readonly file: string;
  /** The verified directory's real path (for a check command, which cannot use `file`). */
  readonly real: string;
  /** Releases the directory; again is harmless. */
  close(): Promise<void>;
}

export interface OpenOutputDirInput {
  readonly output: string;
  readonly rules: Pick<PathRules, 'outputRoots' | 'own'>;
  /** Create the directory when missing; without it a missing directory answers undefined. */
  readonly create?: boolean;
}

/** Opens the directory of a target's output and checks where it really is; refuses (WRITE_FAILED) what is not allowed. */
export async function openOutputDir({ output, rules, create = false }: OpenOutputDirInput): Promise<OutputDir | undefined> {
  const dir = dirname(output);
  if (create) {
    // mkdir follows links: see that the directories it would make land inside a root first.
    // (A link swapped in after this could still get empty directories made outside; never a file.)
    checkOutput(output, join(realPathOf(dir), basename(output)), realRules(rules.outputRoots, rules.own));
    await mkdir(dir, { recursive: true });
  }
  let handle: FileHandle;
  try {
    handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (error) {
    if (!create && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const opened = await openedAs(handle, dir);
    checkOutput(output, join(opened.real, basename(output)), realRules(rules.outputRoots, rules.own));
    let closing: Promise<void> | undefined;
    return { file: join(opened.via, basename(output)), real: opened.real, close: () => (closing ??= handle.close()) };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** Reads a template after checking that the file opened is inside the template roots and none of confhub's own. */
export async function readTemplateContained(path: string, rules: Pick<PathRules, 'templateRoots' | 'own'>): Promise<string> {
  // O_NONBLOCK: a FIFO planted as the template must not hang the sync; it is refused below.
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const { real } = await openedAs(handle, path);
    const problem = templateProblem(real, realRules(rules.templateRoots, rules.own));
    if (problem) throw new AppError('RENDER_FAILED', { details: `the template ${shownPath(path, real)} ${problem}; confhub does not read it` });
    if (!(await handle.stat()).isFile()) throw new AppError('RENDER_FAILED', { details: `the template ${path} is not a regular file` });
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Start-up: every output and template, followed through links as they are now, is where the rules
 * allow; refused otherwise (TARGET_INVALID, naming the target), like a bad declaration. The sync
 * checks again at each write and render.
 */
export function checkTargetPaths({ targets, paths }: Pick<SyncConfig, 'targets' | 'paths'>): void {
  const outputs = realRules(paths.outputRoots, paths.own);
  const templates = realRules(paths.templateRoots, paths.own);
  for (const target of targets) {
    // The directory is followed, not the file: a file that is a link is refused when written.
    const output = join(realPathOf(dirname(target.output)), basename(target.output));
    const problem = outputProblem(output, outputs);
    if (problem) throw invalid(`target:${target.name}`, 'output', `${shownPath(target.output, output)} ${problem}`);
    if (target.template === undefined) continue;
    const template = realPathOf(target.template);
    const templateRefused = templateProblem(template, templates);
    if (templateRefused) throw invalid(`target:${target.name}`, 'template', `${shownPath(target.template, template)} ${templateRefused}`);
  }
}
