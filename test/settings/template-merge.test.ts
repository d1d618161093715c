import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { mergeShippedTemplate } from '../../src/bootstrap/template-merge.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { createHarness } from '../support/harness.js';

const TEMPLATE_V1 = '[cockpit]\nport = 9090\n\n[custom]\nkeep = v1\nold = going away\n';
const TEMPLATE_V2 = '[cockpit]\nport = 9090\n\n[custom]\nkeep = v1\nnew_setting = brought by v2\n\n[portainer]\nuser_pwd =\n\n[extra]\nfeature = on\n';

describe('upgrades merge the shipped template', () => {
  it('when a new template brings keys and sections, then they are added with its values while every user value is kept, removed keys are kept and reported, and a deleted key stays deleted', async () => {
    const mine = '# mine\n[cockpit]\nport = 9443\n\n[custom]\nkeep = changed by me\nold = going away\n';
    const h = await createHarness({ configText: mine });
    try {
      // The harness's start merged the real shipped template: this test starts over from the
      // user's file, with templates that keep their own record. Written through the store: a
      // hand edit this soon after the start's writes would be taken for a copy saved before them,
      // and those writes carried onto it.
      await h.settings.restore({ text: mine, actor: { type: 'system', id: 'test' }, source: 'rollback' });
      const recordPath = join(h.config.dataDir, 'test-template.json');
      const merge = (templateText: string) =>
        mergeShippedTemplate({ store: h.settings, templateText, recordPath, schema: CONFIG_SCHEMA, logger: pino({ level: 'silent' }) });
      expect(await merge(TEMPLATE_V1)).toEqual({ added: [], obsolete: [], generated: [] });
      const before = h.readConfig();

      const result = await merge(TEMPLATE_V2);
      expect(result.added).toEqual(['custom.new_setting', 'portainer.user_pwd', 'extra.feature']);
      expect(result.obsolete).toEqual(['custom.old']);
      expect(result.generated).toEqual(['portainer.user_pwd']);
      const text = h.readConfig();
      expect(text.startsWith(before.replace('old = going away\n', 'old = going away\nnew_setting = brought by v2\n'))).toBe(true);
      const { doc } = h.settings.read();
      expect(doc.byName.get('cockpit')!.byKey.get('port')!.value).toBe('9443');
      expect(doc.byName.get('custom')!.byKey.get('keep')!.value).toBe('changed by me');
      expect(doc.byName.get('custom')!.byKey.get('old')!.value).toBe('going away');
      expect(doc.byName.get('extra')!.byKey.get('feature')!.value).toBe('on');
      expect(doc.byName.get('portainer')!.byKey.get('user_pwd')!.value).toMatch(/^[A-Za-z0-9]{20}$/);
      expect(JSON.parse(readFileSync(recordPath, 'utf8')).keys).toContain('extra.feature');

      // The user deletes a key the template has: the next start does not bring it back.
      writeFileSync(h.config.configPath, h.readConfig().replace('feature = on\n', ''));
      expect(await merge(TEMPLATE_V2)).toEqual({ added: [], obsolete: [], generated: [] });
      expect(h.readConfig()).not.toContain('feature = on');
      const audit = h.audit.query({ limit: 10 });
      expect(audit.find((row) => row.key === 'new_setting')).toMatchObject({
        action: 'settings.update',
        actor: { type: 'system', id: 'upgrade' },
        result: 'applied',
      });
    } finally {
      await h.close();
    }
  });
});
