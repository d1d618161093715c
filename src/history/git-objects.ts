/**
 * Writes a history commit into the git repository without running git: the blob, the tree and
 * the commit as loose objects, then the branch moved by git's own lock-file protocol.
 *
 * Why not `git hash-object`, `update-index`, `write-tree`, `commit-tree` and `update-ref`: each
 * start of a process forks the sync worker's whole process, and the fork stops every thread for
 * about 10 ms at confhub's size (5 ms even for a bare Node). Five of them per commit held a target
 * file back by up to 50 ms while its revision was being applied. The formats written here are
 * git's stable on-disk formats; git itself still creates the repository, reads it, and packs it
 * (`gc --auto`), and the tests check every commit with `git fsck --strict`.
 *
 * - An object is `<type> <length>\0<content>`, named by its SHA-1, stored zlib-deflated at
 *   `objects/<2 hex>/<38 hex>`, read-only. It is written to a temp file, synced, and linked into
 *   place (renamed where the file system has no hard links), so a reader never sees half an
 *   object; an existing object is not written again, only touched.
 * - The branch moves by compare-and-swap: `refs/heads/main.lock` is created exclusively (a git
 *   updating the branch at the same time holds it), the branch is read again and must still be
 *   the parent, the new id is written and synced, reflog lines appended (the branch's and
 *   HEAD's), and the lock renamed over the branch, which is atomic. A branch packed by `gc`
 *   (packed-refs) is read there.
 * - A kill at any point leaves the branch at the parent or at the commit, and at worst a temp
 *   file or the lock, which open() removes.
 */
import { createHash } from 'node:crypto';
import { appendFile, type FileHandle, link, mkdir, open, readdir, readFile, rename, unlink, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { AppError } from '../core/errors.js';

export type ObjectType = 'blob' | 'tree' | 'commit';

/** Temp files of objects being written, in `objects/`; a kill can leave one behind. */
export const OBJECT_TEMP_PREFIX = 'tmp_obj_confhub_';

const NO_COMMIT = '0'.repeat(40);
let tempCounter = 0;

/** The object as git stores it: header and content, and its id. */
export function gitObject(type: ObjectType, content: Buffer): { id: string; raw: Buffer } {
  const raw = Buffer.concat([Buffer.from(`${type} ${content.length}\0`, 'ascii'), content]);
  return { id: createHash('sha1').update(raw).digest('hex'), raw };
}

/** A new read-only file, synced to disk. */
async function writeNewSynced(path: string, data: Buffer): Promise<void> {
  const handle = await open(path, 'wx', 0o444);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Stores an object (a no-op when it exists) and returns its id. */
export async function writeObject(gitDir: string, type: ObjectType, content: Buffer): Promise<string> {
  const { id, raw } = gitObject(type, content);
  const objects = join(gitDir, 'objects');
  const path = join(objects, id.slice(0, 2), id.slice(2));
  // The same content is the same object: one there already is touched, as git does, so a gc
  // running meanwhile (the previous worker's) does not prune it as old and unreachable.
  if (await touch(path)) return id;
  const temp = join(objects, `${OBJECT_TEMP_PREFIX}${process.pid}_${Date.now().toString(36)}_${tempCounter++}`);
  try {
    // git's default for loose objects (core.looseCompression): fastest.
    await writeNewSynced(temp, deflateSync(raw, { level: 1 }));
    await mkdir(dirname(path), { recursive: true });
    await linkIntoPlace(temp, path);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  return id;
}

async function touch(path: string): Promise<boolean> {
  const now = new Date();
  return utimes(path, now, now).then(
    () => true,
    () => false,
  );
}

async function linkIntoPlace(temp: string, path: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await link(temp, path);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Written meanwhile by someone else: the same bytes.
      if (code === 'EEXIST') return;
      // git prune removes fan-out directories it emptied: made again, once.
      if (code === 'ENOENT' && attempt === 0) {
        await mkdir(dirname(path), { recursive: true });
        continue;
      }
      // File systems without hard links (some network and FUSE mounts): git renames instead.
      await rename(temp, path);
      return;
    }
  }
}

/** A tree holding one regular file. */
export function singleFileTree(name: string, blobId: string): Buffer {
  return Buffer.concat([Buffer.from(`100644 ${name}\0`, 'utf8'), Buffer.from(blobId, 'hex')]);
}

export interface CommitFields {
  readonly tree: string;
  readonly parent: string | null;
  /** Names as git writes them: no `<`, `>` or newline (callers pass tokens). */
  readonly author: { readonly name: string; readonly email: string };
  readonly committer: { readonly name: string; readonly email: string };
  /** Seconds since the epoch, UTC. */
  readonly seconds: number;
  /** Ends with a newline; stored as given, like `git commit-tree` does. */
  readonly message: string;
}

export function commitContent(fields: CommitFields): Buffer {
  for (const who of [fields.author, fields.committer]) {
    if (/[<>\n\0]/.test(who.name + who.email)) throw new AppError('HISTORY_FAILED', { details: 'a commit identity holds <, > or a line break' });
  }
  const stamp = `${fields.seconds} +0000`;
  const lines = [
    `tree ${fields.tree}`,
    ...(fields.parent ? [`parent ${fields.parent}`] : []),
    `author ${fields.author.name} <${fields.author.email}> ${stamp}`,
    `committer ${fields.committer.name} <${fields.committer.email}> ${stamp}`,
  ];
  return Buffer.from(`${lines.join('\n')}\n\n${fields.message}`, 'utf8');
}

/** The commit a ref points at: its own file, else packed-refs; null when it does not exist. */
export async function readRef(gitDir: string, ref: string): Promise<string | null> {
  const loose = await readFile(join(gitDir, ref), 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (loose !== null) {
    const id = loose.trim();
    if (!/^[0-9a-f]{40}$/.test(id)) throw new AppError('HISTORY_FAILED', { details: `${ref} does not hold a commit id` });
    return id;
  }
  const packed = await readFile(join(gitDir, 'packed-refs'), 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '';
    throw error;
  });
  for (const line of packed.split('\n')) {
    const match = /^([0-9a-f]{40}) (\S+)$/.exec(line);
    if (match && match[2] === ref) return match[1]!;
  }
  return null;
}

export interface RefUpdate {
  readonly ref: string;
  readonly to: string;
  /** The value the ref must still have (null: it must not exist). */
  readonly from: string | null;
  /** The reflog line's identity, time and message. */
  readonly who: { readonly name: string; readonly email: string };
  readonly seconds: number;
  readonly reason: string;
}

/** Moves a ref by compare-and-swap under git's lock file; HISTORY_FAILED when it moved meanwhile. */
export async function updateRef(gitDir: string, update: RefUpdate): Promise<void> {
  const path = join(gitDir, update.ref);
  const lock = `${path}.lock`;
  let handle: FileHandle;
  try {
    handle = await open(lock, 'wx', 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AppError('HISTORY_FAILED', { details: `${update.ref} is locked by another git (${update.ref}.lock exists)` });
    }
    throw error;
  }
  let renamed = false;
  try {
    try {
      const current = await readRef(gitDir, update.ref);
      if (current !== update.from) {
        throw new AppError('HISTORY_FAILED', {
          details: `${update.ref} moved while a commit was made (expected ${update.from ?? 'none'}, found ${current ?? 'none'})`,
        });
      }
      await handle.writeFile(`${update.to}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    const reason = update.reason.replace(/[\n\t]/g, ' ');
    const line = `${update.from ?? NO_COMMIT} ${update.to} ${update.who.name} <${update.who.email}> ${update.seconds} +0000\t${reason}\n`;
    // When HEAD points at the branch, git logs the move in both reflogs.
    const head = await readFile(join(gitDir, 'HEAD'), 'utf8').catch(() => '');
    for (const log of [update.ref, ...(head.trim() === `ref: ${update.ref}` ? ['HEAD'] : [])]) {
      const logPath = join(gitDir, 'logs', log);
      await mkdir(dirname(logPath), { recursive: true });
      await appendFile(logPath, line);
    }
    await rename(lock, path);
    renamed = true;
  } finally {
    if (!renamed) await unlink(lock).catch(() => undefined);
  }
}

/** Removes temp object files a kill left (only when no writer of this repository runs). */
export async function removeObjectTemps(gitDir: string): Promise<string[]> {
  const objects = join(gitDir, 'objects');
  const names = (await readdir(objects).catch(() => [] as string[])).filter((name) => name.startsWith(OBJECT_TEMP_PREFIX));
  for (const name of names) await unlink(join(objects, name)).catch(() => undefined);
  return names.map((name) => join('objects', name));
}
