#!/usr/bin/env node
/**
 * Lets `npm start` skip the build when nothing that goes into dist/ changed since the last one
 * (tsc is most of a start). `begin` marks the start of a build, `done` records that it finished,
 * `check` exits 0 when dist/ was built from the sources as they are now (src/, tsconfig.json,
 * package.json, package-lock.json, none changed since the build began), 1 otherwise. The time is
 * the build's start: a source saved while tsc ran makes the next start build again.
 */
import { existsSync, readdirSync, renameSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const root = process.cwd();
const dist = join(root, 'dist');
const started = join(dist, '.build-started');
const stamp = join(dist, '.build-stamp');

/** The newest change under `path`: files, and directories (a file added or removed). */
function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let max = stat.mtimeMs;
  for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  return max;
}

const mode = process.argv[2];
if (mode === 'begin') {
  mkdirSync(dist, { recursive: true });
  writeFileSync(started, `${new Date().toISOString()}\n`);
} else if (mode === 'done') {
  renameSync(started, stamp);
} else if (mode === 'check') {
  if (!existsSync(stamp) || !existsSync(join(dist, 'cli.js'))) process.exit(1);
  const builtFrom = statSync(stamp).mtimeMs;
  const inputs = ['src', 'tsconfig.json', 'package.json', 'package-lock.json'].map((name) => join(root, name)).filter((path) => existsSync(path));
  process.exit(inputs.some((path) => newest(path) >= builtFrom) ? 1 : 0);
} else {
  process.stderr.write('usage: node scripts/build-stamp.mjs begin|done|check\n');
  process.exit(2);
}
