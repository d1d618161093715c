/** `npm start` builds only when a source changed since the last build (tsc is most of a start). */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirs } from './support/temp-dirs.js';

const tempDir = tempDirs('confhub-stamp-');
const script = new URL('../scripts/build-stamp.mjs', import.meta.url).pathname;
const run = (cwd: string, mode: string): number | null => spawnSync(process.execPath, [script, mode], { cwd }).status;

describe('build stamp', () => {
  it('when dist/ was built from the sources as they are, then check passes; a source changed (even with an old time), an interrupted build, or no build fails it', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'a.ts'), 'export {};\n');
    writeFileSync(join(dir, 'tsconfig.json'), '{}\n');
    expect(run(dir, 'check')).toBe(1);
    expect(run(dir, 'begin')).toBe(0);
    writeFileSync(join(dir, 'dist', 'cli.js'), '');
    expect(run(dir, 'done')).toBe(0);
    expect(run(dir, 'check')).toBe(0);
    // Copied in with an old time (rsync -a, tar x): the content decides.
    writeFileSync(join(dir, 'src', 'a.ts'), 'export const changed = 1;\n');
    const past = new Date(Date.now() - 3_600_000);
    utimesSync(join(dir, 'src', 'a.ts'), past, past);
    expect(run(dir, 'check')).toBe(1);
    // A build that began and never finished leaves no record of the one before.
    expect(run(dir, 'begin')).toBe(0);
    expect(run(dir, 'check')).toBe(1);
    expect(run(dir, 'done')).toBe(0);
    expect(run(dir, 'check')).toBe(0);
    expect(run(dir, 'nonsense')).toBe(2);
  });

  it('when npm start runs, then it builds only when the stamp check fails', () => {
    const scripts = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.prestart).toBe('node scripts/build-stamp.mjs check || npm run build');
    expect(scripts.build).toMatch(/^node scripts\/build-stamp\.mjs begin && tsc -p tsconfig\.json && node scripts\/build-stamp\.mjs done$/);
    expect(execFileSync('git', ['check-ignore', '-q', 'dist/.build-stamp'], { cwd: new URL('..', import.meta.url).pathname, stdio: 'ignore' })).toBeDefined();
  });
});
