/**
 * The README's compose example of the all-in-one stack with a service that pulls its files is a
 * valid compose file: Debian's docker-compose accepts it, and it says what the README says.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { findProgram } from '../support/engines.js';

const COMPOSE = findProgram('docker-compose');
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function exampleOf(readme: string): string {
  const section = readme.slice(readme.indexOf('## Pull integration'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('no yaml block under "## Pull integration" in README.md');
  return block[1]!;
}

describe('the compose example of the pull integration', () => {
  it('when docker-compose reads it, then it is valid, the service waits for confhub to be healthy, runs the script as its entrypoint and gets the token as a file', async () => {
    // Fails rather than skips without docker-compose, so the check cannot go quiet.
    if (!COMPOSE) throw new Error('docker-compose is not installed (Debian: apt-get install docker-compose, as bash test/run.sh does)');
    const dir = mkdtempSync(join(tmpdir(), 'confhub-compose-'));
    try {
      writeFileSync(join(dir, 'compose.yaml'), exampleOf(README));
      writeFileSync(join(dir, 'web.token'), 'cht_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n');
      writeFileSync(join(dir, 'confhub-init.sh'), readFileSync(new URL('../../init/confhub-init.sh', import.meta.url)), { mode: 0o755 });
      const env = { PATH: process.env.PATH ?? '', HOME: dir };
      const { stdout } = await promisify(execFile)(COMPOSE, ['--project-directory', dir, '-f', join(dir, 'compose.yaml'), 'config'], { env, cwd: dir });
      const config = parse(stdout) as { services: Record<string, Record<string, unknown>> };
      const web = config.services.web!;
      expect(web.depends_on).toEqual({ confhub: { condition: 'service_healthy' } });
      expect(web.entrypoint).toEqual(['/usr/local/bin/confhub-init.sh']);
      expect(web.environment).toMatchObject({ CONFHUB_URL: 'http://confhub:8080', CONFHUB_TARGET: 'web', CONFHUB_TOKEN_FILE: '/run/secrets/confhub_token' });
      // The token is never in the environment.
      expect(JSON.stringify(web.environment)).not.toContain('cht_');
      expect(config.services.confhub).toBeDefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
