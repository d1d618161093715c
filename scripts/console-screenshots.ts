/**
 * The README's pictures of the console (npm run screenshots): a confhub with one target, a few
 * changes made through the API, and the console's page in Debian's Chromium (playwright-core with
 * that executable), photographed on its main views into docs/.
 */
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { CONSOLE_DEFAULTS, createConsoleServer } from '../src/console/console-server.js';
import { eventually, startConfhub } from '../test/support/confhub.js';
import { CHROMIUM, launchChromium } from '../test/support/chromium.js';

const DOCS = new URL('../docs/', import.meta.url);
const VIEWPORT = { width: 1200, height: 760 };

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: new URL(`console-${name}.png`, DOCS).pathname });
  process.stderr.write(`docs/console-${name}.png\n`);
}

if (!CHROMIUM) throw new Error('chromium is not installed (Debian: apt-get install chromium)');

const ch = await startConfhub({
  systemIni:
    '[sync]\noutput_roots = @DIR@\n\n[target:cockpit]\nsections = cockpit\nformat = ini\noutput = @DIR@/out/cockpit.ini\nreload = none\nhealth = none\n\n[target:console]\nsections = console\nformat = json\noutput = @DIR@/out/console.json\nreload = none\nhealth = none\n',
});
const consoleServer = createConsoleServer({ settings: { ...CONSOLE_DEFAULTS, title: 'confhub console' }, upstream: new URL(ch.url) });
await new Promise<void>((resolve) => consoleServer.listen(0, '127.0.0.1', resolve));
const consoleUrl = `http://127.0.0.1:${(consoleServer.address() as AddressInfo).port}`;
const browser = await launchChromium();
try {
  await eventually('the first run is done', async () => ((await (await ch.api('/api/v1/sync/status')).json()) as { lastRun: unknown }).lastRun !== null);
  for (const body of [
    { cockpit: { port: 9443 } },
    { console: { title: 'Production console' }, docker_mirror: { url: ['https://mirror.example.com'] } },
    { gitea: { user_pwd: 'N3w-Gitea-Passw0rd' } },
  ]) {
    const res = await ch.api('/api/v1/settings?wait=true', { method: 'PATCH', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`PATCH answered ${res.status}: ${await res.text()}`);
  }
  const page = await browser.newPage({ viewport: VIEWPORT });
  await page.goto(consoleUrl);
  await page.getByLabel('API key').fill(ch.apiKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#live[data-state="connected"]').waitFor();

  // Settings: an edit applied, then two refused values next to their fields.
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.locator('[data-field="cockpit.port"] input').fill('9444');
  await page.getByRole('button', { name: 'Save cockpit' }).click();
  await page
    .locator('#activity')
    .getByText(/applied/)
    .waitFor();
  await page.getByRole('link', { name: 'Status' }).click();
  await page.locator('#targets tbody tr').first().waitFor();
  await shoot(page, 'status');
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.locator('[data-field="gitea.base_url"] input').fill('git.example.com');
  await page.locator('[data-field="nginx_proxy_manager.listen_port"] input').fill('90000');
  await page.getByRole('button', { name: 'Save all changes' }).click();
  await page.locator('#settings-error').getByText('Nothing was saved').waitFor();
  await page.locator('[data-field="nginx_proxy_manager.listen_port"]').scrollIntoViewIfNeeded();
  await page.evaluate('window.scrollBy(0, -260)');
  await shoot(page, 'settings');
  await page.getByRole('button', { name: 'Discard changes' }).click();

  // History: the list and a revision's diff side by side.
  await page.getByRole('link', { name: 'History' }).click();
  await page.locator('#commits tbody tr').first().waitFor();
  await page
    .locator('#commits tbody tr', { hasText: 'console.title' })
    .getByRole('button', { name: /^View changes/ })
    .click();
  await page.locator('#diff table').waitFor();
  await page.evaluate('window.scrollTo(0, 0)');
  await shoot(page, 'history');

  // Rollback: the confirmation with the diff it will apply.
  await page
    .locator('#commits tbody tr', { hasText: 'cockpit.port' })
    .nth(1)
    .getByRole('button', { name: /^Roll back/ })
    .click();
  await page.getByRole('dialog').getByText('config.ini goes back to revision').waitFor();
  await shoot(page, 'rollback');
} finally {
  await browser.close();
  await new Promise<void>((resolve) => consoleServer.close(() => resolve()));
  await ch.close();
}
