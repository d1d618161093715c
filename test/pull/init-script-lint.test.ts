/**
 * The init script as shipped: shellcheck (Debian's `shellcheck`, which test/run.sh installs) finds
 * nothing in it as POSIX sh, and it is executable, as the image copies it with its mode.
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = 'init/confhub-init.sh';

/** shellcheck's verdict; without shellcheck this fails rather than skips, so the check cannot go quiet. */
function shellcheck(path: string): Promise<{ exitCode: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile('shellcheck', ['-s', 'sh', path], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error('shellcheck is not installed (Debian: apt-get install shellcheck, as bash test/run.sh does)'));
      } else if (error && typeof error.code !== 'number') reject(error);
      else resolve({ exitCode: error ? Number(error.code) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('init/confhub-init.sh', () => {
  it('when shellcheck reads it as POSIX sh, then it has no finding', async () => {
    expect(await shellcheck(SCRIPT)).toEqual({ exitCode: 0, output: '' });
  });

  it('is executable by everyone and writable by its owner only (0755)', () => {
    expect(statSync(`${ROOT}/${SCRIPT}`).mode & 0o7777).toBe(0o755);
  });
});
