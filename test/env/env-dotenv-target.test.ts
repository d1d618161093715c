/**
 * A target that delivers an environment as a compose `.env` file (`format = env`, `env = <scope>`)
 * on a whole confhub: the file holds what the consumer receives, compose's reader gets back
 * every stored value exactly, and a change of a variable or of a mapped setting rewrites it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readComposeDotenv } from '../../src/render/dotenv.js';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';

let ch: Confhub;
const output = () => join(ch.dir, 'out', 'web.env');

beforeAll(async () => {
  ch = await startConfhub({
    systemIni:
      '[sync]\noutput_roots = @DIR@\ndebounce_min_ms = 30\n\n[env:web]\nWEB_PORT = {{ cockpit.port }}\n\n[target:web-env]\nenv = web\nformat = env\noutput = @DIR@/out/web.env\n',
  });
  await eventually('ready', async () => (await fetch(`${ch.url}/readyz`)).status === 200);
});
afterAll(async () => {
  await ch?.close();
});

describe('format env with env = <scope>', () => {
  it('when variables change, then the .env file holds global ∪ mapped ∪ own, and compose reads each value back exactly', async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose interpolation syntax, stored as literal text
    const values = { TZ: 'UTC', NASTY: 'a "q" $HOME ${X:-y} # c\n\tline\\', TRAILING: 'C:\\' };
    const answer = await ch.api('/api/v1/env/global?wait=true', { method: 'PATCH', body: JSON.stringify({ TZ: values.TZ }) });
    expect(await answer.json()).toMatchObject({
      consumers: [{ consumer: 'web', targets: [{ target: 'web-env', output: output(), reload: 'none' }] }],
      sync: { outcome: 'applied', targets: [{ target: 'web-env', changed: true }] },
    });
    await ch.api('/api/v1/env/web?wait=true', {
      method: 'PATCH',
      body: JSON.stringify({ NASTY: values.NASTY, TRAILING: { value: values.TRAILING, secret: true } }),
    });
    const read = readComposeDotenv(readFileSync(output(), 'utf8'), { lookup: () => 'INJECTED' });
    expect(Object.fromEntries(read)).toEqual({ TZ: 'UTC', WEB_PORT: '9090', ...{ NASTY: values.NASTY, TRAILING: values.TRAILING } });

    await ch.api('/api/v1/settings/cockpit?key=port&value=9393&wait=true', { method: 'PUT' });
    expect(readComposeDotenv(readFileSync(output(), 'utf8')).get('WEB_PORT')).toBe('9393');
    const plan = await ch.api('/api/v1/env/web/export?reveal=true');
    expect(await plan.text()).toBe(readFileSync(output(), 'utf8').split('\n').slice(1).join('\n'));
  });
});
