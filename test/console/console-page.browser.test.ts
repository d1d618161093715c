/**
 * The console's page in a real browser: Debian's Chromium, driven by playwright-core with that
 * executable (no browser download). Sign in with a wrong key and the right one, the key kept in
 * no page storage and the cookie out of the page's reach, sign out, and a form on another origin
 * refused before confhub (CSRF).
 */
import { createServer as createHttpServer } from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_DEFAULTS, createConsoleServer } from '../../src/console/console-server.js';
import { type Confhub, startConfhub } from '../support/confhub.js';
import { chromiumOrWarn, launchChromium } from '../support/chromium.js';
import { loopbackServers } from '../support/loopback-servers.js';

const HAS_CHROMIUM = chromiumOrWarn('the console page tests');

let ch: Confhub;
let browser: Browser;
let consoleUrl: string;
let elsewhere: string;
const { listen, closeAll } = loopbackServers();

describe.skipIf(!HAS_CHROMIUM)('the console page in Chromium', () => {
  beforeAll(async () => {
    ch = await startConfhub({
      systemIni: '[sync]\noutput_roots = @DIR@\n\n[target:web]\nsections = cockpit\nformat = ini\noutput = @DIR@/out/web.ini\nreload = none\nhealth = none\n',
    });
    consoleUrl = await listen(createConsoleServer({ settings: { ...CONSOLE_DEFAULTS, title: 'Test console' }, upstream: new URL(ch.url) }));
    // Another origin (another port: the same site, so the browser sends the cookie; the Origin is what tells).
    elsewhere = await listen(
      createHttpServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(
          `<form id="f" method="POST" enctype="text/plain" action="${consoleUrl}/api/v1/targets/web/tokens"><input name='{"description": "' value='csrf"}'></form>`,
        );
      }),
    );
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await closeAll();
    await ch?.close();
  });

  it('when a wrong key is given, then the page says so next to the form and no session cookie is set; with the right key the targets show', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(consoleUrl);
    await page.getByLabel('API key').fill('x'.repeat(64));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Invalid API Key' }).waitFor();
    expect(await context.cookies()).toEqual([]);
    expect(await page.evaluate('document.activeElement.id')).toBe('key');

    await page.getByLabel('API key').fill(ch.apiKey);
    await page.keyboard.press('Enter');
    await page.getByRole('rowheader', { name: 'web', exact: true }).waitFor();
    // The first run may still be going: the row follows it live.
    await page.getByRole('cell', { name: 'in sync' }).waitFor();
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: 'confhub_session', httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(cookie!.value).not.toContain(ch.apiKey);
    // The key is nowhere the page keeps things, and the cookie is out of its scripts' reach.
    expect(
      await page.evaluate(
        "({ cookie: document.cookie, local: localStorage.length, session: sessionStorage.length, field: document.querySelector('#key').value })",
      ),
    ).toEqual({ cookie: '', local: 0, session: 0, field: '' });
    expect(await page.content()).not.toContain(ch.apiKey);
    // Reloaded: still signed in.
    await page.reload();
    await page.getByRole('rowheader', { name: 'web', exact: true }).waitFor();
    await context.close();
  });

  it('when the user signs out, then the form is back and the API refuses the old cookie', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(consoleUrl);
    await page.getByLabel('API key').fill(ch.apiKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate(async () => (await fetch('/api/v1/sync/status')).status)).toBe(401);
    await context.close();
  });

  it('when a page of another origin posts a form to the console with the signed-in cookie, then the console refuses it and confhub makes nothing', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(consoleUrl);
    await page.getByLabel('API key').fill(ch.apiKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const attacker = await context.newPage();
    await attacker.goto(elsewhere);
    await Promise.all([attacker.waitForURL(`${consoleUrl}/api/v1/targets/web/tokens`), attacker.evaluate("document.getElementById('f').submit()")]);
    expect(await attacker.content()).toContain('ORIGIN_NOT_ALLOWED');
    const tokens = (await (await ch.api('/api/v1/targets/web/tokens')).json()) as { tokens: unknown[] };
    expect(tokens.tokens).toEqual([]);
    await context.close();
  });
});
