/**
 * The whole check of config.ini across environments: a file is valid or not wherever it runs, and
 * what a write changes is held to today's rules in each environment where it takes effect.
 */
import { describe, expect, it } from 'vitest';
import { parseIni } from '../../src/ini/document.js';
import { checkDocument } from '../../src/settings/check-document.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';

const BASE =
  '[gitea]\nbase_url = http://git:3000/api/v1\nuser_name = websoft9\nuser_email = admin@example.com\nuser_pwd = Qz7!rT4#nB9$wE2^yU\n\n[cockpit]\nport = 9090\n\n[console]\ntitle = t\nbind = 127.0.0.1\nport = 9080\n';

function lineOf(doc: ReturnType<typeof parseIni>, section: string, key: string): number {
  return doc.byName.get(section)!.byKey.get(key)!.firstLine + 1;
}

describe('checkDocument across environments', () => {
  it('when a section password is set while an environment overlay keeps a legacy weak one, then the write is not refused for that overlay', () => {
    const doc = parseIni(`${BASE}\n[gitea@staging]\nuser_pwd = password\n`);
    const { issues } = checkDocument({ doc, schema: CONFIG_SCHEMA, resolve: { interpolation: 'none' }, changed: new Set(['gitea.user_pwd']) });
    expect(issues).toEqual([]);
    // Setting the overlay's password is held to the rules, in that environment.
    const overlay = checkDocument({ doc, schema: CONFIG_SCHEMA, resolve: { interpolation: 'none' }, changed: new Set(['gitea@staging.user_pwd']) });
    expect(overlay.issues).toEqual([
      expect.objectContaining({ field: 'gitea.user_pwd', code: 'WEAK_PASSWORD', message: expect.stringContaining('(in environment staging)') }),
    ]);
  });

  it('when only another environment is broken, then the issue names that environment; the running one resolves without it', () => {
    const doc = parseIni(`${BASE}\n[cockpit@prod]\nport = 9080\n`);
    const checked = checkDocument({ doc, schema: CONFIG_SCHEMA, resolve: { interpolation: 'none', environment: 'staging' } });
    const { issues, resolved } = checked;
    // Each issue's line is where that environment's value is written: prod's overlay, and [console].
    expect(issues.map((issue) => checked.lineOf(issue))).toEqual([lineOf(doc, 'cockpit@prod', 'port'), lineOf(doc, 'console', 'port')]);
    expect(issues.map((issue) => issue.message)).toEqual([
      'cockpit.port uses port 9080, which console.port also uses (in environment prod)',
      'console.port uses port 9080, which cockpit.port also uses (in environment prod)',
    ]);
    expect(resolved.doc.byName.get('cockpit')!.byKey.get('port')!.value).toBe('9090');
  });
});
