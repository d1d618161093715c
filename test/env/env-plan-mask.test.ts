/** `confhub plan` of environment targets: secrets are masked in the spelling each format writes them. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseIni } from '../../src/ini/document.js';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { planTargets } from '../../src/sync/plan.js';
import { parseSyncConfig } from '../../src/targets/target-spec.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('plan of environment targets', () => {
  it('when a secret holds $, quotes, a backslash, % or a line break, then neither the .env nor the supervisord include diff shows it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'confhub-env-plan-'));
    const sync = parseSyncConfig({
      doc: parseIni(
        '[target:app]\nenv = app\nformat = env\noutput = app.env\n\n[target:sup]\nenv = app\nformat = supervisor_env\noutput = sup.conf\nreload = supervisor:update:sup\n',
      ),
      dataDir: dir,
      configDir: join(dir, 'config'),
      own: loadRuntimeConfig({ CONFHUB_DATA_DIR: dir }, dir).ownPaths,
    });
    const doc = parseIni(
      '[env:app:secret]\nDB_PASSWORD = Pa$word"with\\quote%d-x\nMULTI = json:"first-line-secret\\nsecond-line-secret"\nGUARDED_TOKEN = json:"abc-guard #x%(y)zz "\n',
    );
    const plans = await planTargets({ targets: sync.targets, paths: sync.paths, doc, schema: CONFIG_SCHEMA, env: sync.env });
    expect(plans.map((p) => [p.target, p.change, p.error])).toEqual([
      ['app', 'create', null],
      ['sup', 'create', null],
    ]);
    for (const plan of plans) {
      expect(plan.diff).toContain('DB_PASSWORD=');
      for (const secret of ['word', 'quote', 'first-line-secret', 'second-line-secret', 'abc-guard', 'zz']) {
        expect(plan.diff, `${plan.target}: ${secret}`).not.toContain(secret);
      }
    }
  });
});
