/**
 * The console as an administrator uses it, in Debian's Chromium through playwright-core: settings
 * edited and saved (a section, or several as one batch) and seen applied, on this page and live on
 * another; every refused value next to its field with nothing saved; a 412 conflict and its
 * re-apply; diffs side by side and inline with secrets masked; two revisions compared; a rollback
 * confirmed on its diff and its result; a service refusing a change (rolled back, in words); the
 * live channel going offline, dropping and resuming where it left off; a session ending under an
 * edit; and the accessibility basics. confhub, its worker and the console are real; the service
 * behind the target is a loopback reload hook the tests can make refuse. Each test reads what it
 * expects from the API, so it holds alone (`-t`) as in the file's order.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_DEFAULTS, createConsoleServer } from '../../src/console/console-server.js';
import { type Confhub, eventually, startConfhub } from '../support/confhub.js';
import { ref } from '../support/e2e-helpers.js';
import { chromiumOrWarn, launchChromium } from '../support/chromium.js';
import { loopbackServers } from '../support/loopback-servers.js';

const HAS_CHROMIUM = chromiumOrWarn('the console admin page tests');

let ch: Confhub;
let browser: Browser;
let consoleUrl: string;
/** The reload hook of target `web`: 500 while set, so the worker restores the files and rolls config.ini back. */
let refuseReloads = false;
/** How long the reload hook takes to answer: a save with ?wait=true waits that long. */
let holdReloadsMs = 0;
/** Called when the reload hook gets a request (before it answers). */
let onReload: (() => void) | undefined;
const { listen, closeAll } = loopbackServers();

interface Commit {
  id: string;
  revision: string;
  summary: string;
  source: string;
  actor: { type: string; id: string };
  changes: { key: string }[];
  sync: { outcome: string } | null;
}

async function json<T>(path: string, init?: RequestInit): Promise<T> {
  return (await (await ch.api(path, init)).json()) as T;
}

const commits = async (): Promise<Commit[]> => (await json<{ commits: Commit[] }>('/api/v1/settings/history?limit=200')).commits;
const output = (): string => readFileSync(join(ch.dir, 'out', 'web.ini'), 'utf8');
const portInFile = (): string => /^port = (.*)$/m.exec(ch.readConfig().split('[cockpit]')[1] ?? '')?.[1] ?? '';
const setting = async (section: string, key: string): Promise<string> =>
  String((await json<Record<string, unknown>>(`/api/v1/settings/${section}?resolved=false`))[key]);
async function write(body: Record<string, Record<string, unknown>>): Promise<void> {
  const res = await ch.api('/api/v1/settings?wait=true', { method: 'PATCH', body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(200);
}

/** A new browser context (its own cookies), signed in, on `view`; every request it makes is recorded. */
async function signedIn(view = 'status', init?: string): Promise<{ context: BrowserContext; page: Page; requests: string[] }> {
  const context = await browser.newContext();
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  const requests: string[] = [];
  page.on('request', (request) => requests.push(`${request.method()} ${request.url()}`));
  page.on('websocket', (socket) => requests.push(`WS ${socket.url()}`));
  await page.goto(consoleUrl);
  await page.getByLabel('API key').fill(ch.apiKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#live[data-state="connected"]').waitFor();
  await page.getByRole('link', { name: view[0]!.toUpperCase() + view.slice(1) }).click();
  if (view === 'settings') await page.locator('fieldset[data-section="cockpit"]').waitFor();
  if (view === 'history') await page.locator('#commits tbody tr').first().waitFor();
  return { context, page, requests };
}

const field = (page: Page, name: string) => page.locator(`[data-field="${name}"]`);
const input = (page: Page, name: string) => field(page, name).locator('input, textarea');
/** The activity panel: what this page wrote and what the services made of it. */
const activity = (page: Page) => page.locator('#activity');
const patches = (requests: string[]) => requests.filter((r) => r.startsWith('PATCH'));
const pageLoads = (requests: string[]) => requests.filter((r) => r.startsWith('GET') && new URL(r.slice(4)).pathname === '/');
const focusedField = (page: Page) => page.evaluate("document.activeElement.closest('[data-field]')?.dataset.field ?? document.activeElement.id");

/** The text of every visible element whose contrast with its background is under 4.5:1 (WCAG AA). */
const LOW_CONTRAST = `(() => {
  const rgb = (text) => text.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => { const [r, g, b] = c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const background = (node) => { for (; node; node = node.parentElement) { const c = getComputedStyle(node).backgroundColor; if (!c.endsWith(', 0)') && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
  const low = [];
  for (const node of document.querySelectorAll('body *')) {
    if (!node.getClientRects().length || ![...node.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(node);
    if (style.opacity !== '1' || node.closest('[disabled]')) continue;
    const [a, b] = [lum(rgb(style.color)), lum(rgb(background(node)))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(node.tagName + '.' + node.className + ' ' + ratio.toFixed(2));
  }
  return low;
})()`;

describe.skipIf(!HAS_CHROMIUM)('the console admin page in Chromium', () => {
  beforeAll(async () => {
    const hook = await listen(
      createServer((req, res) => {
        req.resume();
        onReload?.();
        setTimeout(() => {
          res.writeHead(refuseReloads ? 500 : 200, { 'content-type': 'text/plain' }).end(refuseReloads ? 'port refused by the service' : 'ok');
        }, holdReloadsMs);
      }),
    );
    ch = await startConfhub({
      systemIni: `[confhub]\ninterpolation = extended\n\n[sync]\noutput_roots = @DIR@\ndebounce_min_ms = 50\ndebounce_max_ms = 400\npoll_interval_ms = 500\n\n[target:web]\nsections = cockpit\nformat = ini\noutput = @DIR@/out/web.ini\nreload = http:POST:${hook}/reload\nhealth = none\n`,
      // confhub runs in environment staging, whose overlay sets the wildcard domain.
      configExtra: '\n[site]\nhost = example.com\nmotd = first line\n  second line\n\n[domain@staging]\nwildcard_domain = staging.example.com\n',
      env: { CONFHUB_ENVIRONMENT: 'staging' },
    });
    await eventually('the first run is done', async () => (await json<{ lastRun: unknown }>('/api/v1/sync/status')).lastRun !== null);
    consoleUrl = await listen(createConsoleServer({ settings: { ...CONSOLE_DEFAULTS, title: 'Admin console' }, upstream: new URL(ch.url) }));
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await closeAll();
    await ch?.close();
  });

  it('when a value is edited and its section saved, then config.ini has it, this page shows it applied to the target, and another open page shows the new revision live', async () => {
    const { context, page, requests } = await signedIn('settings');
    const watcher = await signedIn('status');
    // The watcher cannot read the status again: what it shows comes from the events themselves.
    await watcher.page.route('**/api/v1/sync/status', (route) => route.abort());
    const next = String(Number(portInFile()) + 1);
    await input(page, 'cockpit.port').fill(next);
    expect(await field(page, 'cockpit.port').getAttribute('class')).toContain('dirty');
    await page.getByRole('button', { name: 'Save cockpit' }).click();
    await activity(page)
      .getByText(/^Saved cockpit\.port: revision [0-9a-f]{7} applied$/)
      .waitFor();
    expect(await activity(page).textContent()).toMatch(/^Saved cockpit\.port: revision [0-9a-f]{7} appliedweb: in sync, file written, reloaded$/);
    expect(portInFile()).toBe(next);
    expect(output()).toContain(`port=${next}\n`);
    // One PATCH, the form rebuilt on the saved file, focus back on the section's button.
    expect(patches(requests)).toHaveLength(1);
    expect(await input(page, 'cockpit.port').inputValue()).toBe(next);
    expect(await field(page, 'cockpit.port').getAttribute('class')).not.toContain('dirty');
    expect(await page.evaluate('document.activeElement.dataset.save')).toBe('cockpit');
    // The other page learnt it over the live channel: its row shows the new revision, without a reload.
    const head = (await commits())[0]!;
    expect(head.changes).toEqual([{ key: 'cockpit.port', change: 'changed' }]);
    await watcher.page.locator('#targets tr[data-target="web"] td.mono').getByText(head.revision.slice(0, 7)).waitFor();
    expect(pageLoads(watcher.requests)).toHaveLength(1);
    await watcher.context.close();
    await context.close();
  }, 60_000);

  it('when values of two sections are changed and all are saved (with a double click), then one write carries both, as one revision', async () => {
    const { context, page, requests } = await signedIn('settings');
    const before = (await commits()).length;
    await input(page, 'console.title').fill(`Batch ${before}`);
    await input(page, 'docker_mirror.url').fill('https://mirror-a.example.com\n\nhttps://mirror-b.example.com');
    await page.getByRole('button', { name: 'Save all changes' }).dblclick();
    await activity(page)
      .getByText(/^Saved docker_mirror\.url, console\.title: revision [0-9a-f]{7} applied \(no service file changed\)$/)
      .waitFor();
    expect(patches(requests)).toHaveLength(1);
    const after = await commits();
    expect(after).toHaveLength(before + 1);
    expect(after[0]!.changes.map((c) => c.key).sort()).toEqual(['console.title', 'docker_mirror.url']);
    // A list is edited one item per line and stored comma-separated, empty lines dropped.
    expect(ch.readConfig()).toContain('url = https://mirror-a.example.com,https://mirror-b.example.com\n');
    await context.close();
  }, 60_000);

  it('when several values are invalid, then each error shows next to its field, the first invalid field has focus, and nothing is saved', async () => {
    const { context, page, requests } = await signedIn('settings');
    const config = ch.readConfig();
    const before = (await commits()).length;
    await input(page, 'cockpit.port').fill('70000');
    await input(page, 'gitea.base_url').fill('not a url');
    await input(page, 'console.bind').fill('localhost');
    await page.getByRole('button', { name: 'Save all changes' }).click();
    await page.locator('#settings-error').getByText('Nothing was saved: 3 values were refused.').waitFor();
    expect(await field(page, 'cockpit.port').locator('.field-error').textContent()).toBe('cockpit.port must be an integer from 1 to 65535');
    expect(await field(page, 'gitea.base_url').locator('.field-error').textContent()).toBe('gitea.base_url must be an http:// or https:// URL');
    expect(await field(page, 'console.bind').locator('.field-error').textContent()).toContain('console.bind');
    for (const name of ['cockpit.port', 'gitea.base_url', 'console.bind']) expect(await input(page, name).getAttribute('aria-invalid')).toBe('true');
    expect(await input(page, 'gitea.user_name').getAttribute('aria-invalid')).toBeNull();
    // The error is the field's description to assistive technology.
    const described = await input(page, 'gitea.base_url').getAttribute('aria-describedby');
    expect(await page.locator(`#${described!.split(' ')[1]}`).textContent()).toBe('gitea.base_url must be an http:// or https:// URL');
    // The first refused field in the form's order has focus; the edits stay for the user to correct.
    expect(await focusedField(page)).toBe('gitea.base_url');
    expect(await input(page, 'cockpit.port').inputValue()).toBe('70000');
    expect(ch.readConfig()).toBe(config);
    expect(await commits()).toHaveLength(before);
    expect(patches(requests)).toHaveLength(1);
    // No "saving…" left behind in the activity panel.
    expect(await activity(page).textContent()).toBe('');
    expect(await page.evaluate(LOW_CONTRAST)).toEqual([]);
    await context.close();
  }, 60_000);

  it('when config.ini changed after the page was opened, then saving a section shows what changed meanwhile (secrets masked), and re-applying saves that section on the new file', async () => {
    const { context, page } = await signedIn('settings');
    const port = Number(portInFile());
    const title = await setting('console', 'title');
    await input(page, 'cockpit.port').fill(String(port + 10));
    await input(page, 'gitea.user_pwd').fill('Mine-Gitea-Passw0rd');
    // An edit of another section, not saved by "Save cockpit".
    await input(page, 'console.title').fill('Not saved yet');
    // Someone else changes the same key, another one and a password.
    await write({ cockpit: { port: port + 5 }, console: { title: `${title} (theirs)` }, gitea: { user_pwd: 'Their-Gitea-Passw0rd' } });
    // The live channel tells the page; the user's edits stay.
    await page
      .locator('#settings-notice')
      .getByText(/changed cockpit\.port, console\.title, gitea\.user_pwd while you were editing/)
      .waitFor();
    await page.getByRole('button', { name: 'Save cockpit' }).click();
    const conflict = page.getByRole('region', { name: 'config.ini changed while you were editing' });
    await conflict.waitFor();
    expect(await conflict.locator('tbody tr').evaluateAll((rows) => rows.map((row) => [...row.children].map((cell) => cell.textContent)))).toEqual([
      ['gitea.user_pwd', '••••••', '••••••', '••••••'],
      ['cockpit.port', String(port), String(port + 5), String(port + 10)],
      ['console.title', title, `${title} (theirs)`, 'Not saved yet'],
    ]);
    expect(await conflict.locator('tr.clash th').allTextContents()).toEqual(['gitea.user_pwd', 'cockpit.port', 'console.title']);
    expect(await page.content()).not.toContain('Gitea-Passw0rd');
    expect(portInFile()).toBe(String(port + 5));
    // The form shows the file as it is now, with the user's edits put back.
    expect(await input(page, 'cockpit.port').inputValue()).toBe(String(port + 10));
    expect(await input(page, 'console.title').inputValue()).toBe('Not saved yet');
    expect(await page.evaluate('document.activeElement.id')).toBe('reapply');
    await page.getByRole('button', { name: 'Re-apply my changes' }).click();
    await activity(page)
      .getByText(/^Saved cockpit\.port: revision [0-9a-f]{7} applied$/)
      .waitFor();
    expect(await conflict.isHidden()).toBe(true);
    expect(portInFile()).toBe(String(port + 10));
    // Only the section the user saved: the other edits wait in the form.
    expect(await setting('console', 'title')).toBe(`${title} (theirs)`);
    expect(await input(page, 'console.title').inputValue()).toBe('Not saved yet');
    expect(await field(page, 'console.title').getAttribute('class')).toContain('dirty');
    await context.close();
  }, 60_000);

  it('when a conflict is answered with discard, then the form shows the file as it is and nothing is written', async () => {
    const { context, page } = await signedIn('settings');
    const port = Number(portInFile());
    await input(page, 'cockpit.port').fill(String(port + 3));
    await input(page, 'console.title').fill('Another section, not saved');
    await write({ cockpit: { port: port + 2 } });
    await page.getByRole('button', { name: 'Save cockpit' }).click();
    await page.getByRole('button', { name: 'Discard my changes' }).click();
    await eventually('the form shows the file', async () => (await input(page, 'cockpit.port').inputValue()) === String(port + 2));
    expect(portInFile()).toBe(String(port + 2));
    // Only the saved section's edits are dropped.
    expect(await page.locator('.field.dirty').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-field')))).toEqual(['console.title']);
    expect(await input(page, 'console.title').inputValue()).toBe('Another section, not saved');
    await context.close();
  }, 60_000);

  it('when someone changes a key the user is still editing while a save of another section waits for the services, then the page shows it instead of moving the edit onto their value', async () => {
    const { context, page } = await signedIn('settings');
    const port = Number(portInFile());
    const title = await setting('console', 'title');
    await input(page, 'cockpit.port').fill(String(port + 1));
    await input(page, 'console.title').fill('Mine, saved later');
    await input(page, 'gitea.user_pwd').fill('Mine-Gitea-Passw0rd-2');
    holdReloadsMs = 1500;
    try {
      // Their write lands while the page's save is being applied: the service is reloading.
      const reloading = new Promise<void>((resolve) => {
        onReload = resolve;
      });
      await page.getByRole('button', { name: 'Save cockpit' }).click();
      await reloading;
      const theirs = await ch.api('/api/v1/settings', {
        method: 'PATCH',
        body: JSON.stringify({ console: { title: `${title} (theirs)` }, gitea: { user_pwd: 'Their-Gitea-Passw0rd-2' } }),
      });
      expect(theirs.status).toBe(200);
      await activity(page)
        .getByText(/^Saved cockpit\.port: revision [0-9a-f]{7} applied$/)
        .waitFor();
    } finally {
      holdReloadsMs = 0;
      onReload = undefined;
    }
    const conflict = page.getByRole('region', { name: 'config.ini changed while you were editing' });
    await conflict.waitFor();
    expect(await conflict.locator('tbody tr').evaluateAll((rows) => rows.map((row) => [...row.children].map((cell) => cell.textContent)))).toEqual([
      ['gitea.user_pwd', '••••••', '••••••', '••••••'],
      ['console.title', title, `${title} (theirs)`, 'Mine, saved later'],
    ]);
    expect(await page.content()).not.toContain('Gitea-Passw0rd-2');
    expect(await input(page, 'console.title').inputValue()).toBe('Mine, saved later');
    await page.getByRole('button', { name: 'Discard my changes' }).click();
    await eventually('the form shows their title', async () => (await input(page, 'console.title').inputValue()) === `${title} (theirs)`);
    expect(await setting('console', 'title')).toBe(`${title} (theirs)`);
    await context.close();
  }, 60_000);

  it('when a password is shown, then its field reveals the value; its change in history shows masked, side by side and inline; the API key is never in the page', async () => {
    const { context, page } = await signedIn('settings');
    const password = 'Corr3ct-Horse-Battery-Staple';
    const pwd = input(page, 'gitea.user_pwd');
    expect(await pwd.getAttribute('type')).toBe('password');
    await pwd.fill(password);
    await page.getByRole('button', { name: 'Show gitea.user_pwd' }).click();
    expect(await pwd.getAttribute('type')).toBe('text');
    expect(await page.getByRole('button', { name: 'Hide gitea.user_pwd' }).getAttribute('aria-pressed')).toBe('true');
    await page.getByRole('button', { name: 'Save gitea' }).click();
    await activity(page)
      .getByText(/^Saved gitea\.user_pwd: revision [0-9a-f]{7} applied \(no service file changed\)$/)
      .waitFor();
    expect(await pwd.getAttribute('type')).toBe('password');
    // The API key: shown as set, its value in no field and nowhere in the page.
    expect(await field(page, 'api_key.key').locator('output').textContent()).toBe('set, not shown');
    const values = (await page.evaluate("[...document.querySelectorAll('input, textarea, output')].map((c) => c.value)")) as string[];
    expect(values.filter((value) => value.includes(ch.apiKey))).toEqual([]);
    expect(await page.evaluate('document.documentElement.outerHTML')).not.toContain(ch.apiKey);
    expect(await page.locator('fieldset[data-section="api_key"] [data-save]').count()).toBe(0);

    await page.getByRole('link', { name: 'History' }).click();
    const newest = (await commits())[0]!;
    await page.getByRole('button', { name: `View changes of ${newest.id.slice(0, 7)} (${newest.summary})` }).click();
    const row = page.locator('#diff tr[data-key="gitea.user_pwd"]');
    await row.waitFor();
    expect(await row.getAttribute('class')).toBe('change-changed');
    expect(await row.locator('ins').textContent()).toBe('******');
    await page.getByLabel('inline').check();
    await page.locator('#diff .line-add').first().waitFor();
    expect(await page.locator('#diff .line-add').allTextContents()).toEqual(['+user_pwd = ******\n']);
    expect(await page.content()).not.toContain(password);
    await context.close();
  }, 60_000);

  it('when a value has a reference or an environment overlay sets it, then the form shows the reference and what it resolves to, and the overlay value read-only', async () => {
    const reference = `http://git.${ref('site:host')}:3000/api/v1`;
    await write({ gitea: { base_url: reference } });
    const { context, page, requests } = await signedIn('settings');
    expect(await input(page, 'gitea.base_url').inputValue()).toBe(reference);
    expect(await field(page, 'gitea.base_url').locator('.hint').textContent()).toContain('resolves to http://git.example.com:3000/api/v1');
    // Saving another key of the section leaves the reference as written.
    await input(page, 'gitea.user_name').fill('admin2');
    await page.getByRole('button', { name: 'Save gitea' }).click();
    await activity(page)
      .getByText(/^Saved gitea\.user_name: revision/)
      .waitFor();
    expect(await setting('gitea', 'base_url')).toBe(reference);
    // The overlay of the environment confhub runs in: shown, not editable, nothing to save in its section.
    const overlay = field(page, 'domain.wildcard_domain');
    expect(await overlay.locator('output').textContent()).toBe('staging.example.com');
    expect(await overlay.locator('input').count()).toBe(0);
    expect(await overlay.locator('.hint').textContent()).toContain('set in [domain@staging]');
    expect(await page.locator('fieldset[data-section="domain"] [data-save]').count()).toBe(0);
    expect(patches(requests)).toHaveLength(1);
    // A value of several lines: a text area holding its lines, not read as an edit.
    const motd = input(page, 'site.motd');
    expect(await motd.evaluate((node) => node.tagName)).toBe('TEXTAREA');
    expect(await motd.inputValue()).toBe('first line\nsecond line');
    expect(await field(page, 'site.motd').getAttribute('class')).not.toContain('dirty');
    await motd.fill('first line\nsecond line\nthird line');
    await page.getByRole('button', { name: 'Save site' }).click();
    await activity(page)
      .getByText(/^Saved site\.motd: revision/)
      .waitFor();
    expect(await setting('site', 'motd')).toBe('first line\nsecond line\nthird line');
    await write({ gitea: { base_url: 'http://websoft9-git:3000/api/v1', user_name: 'websoft9' } });
    await context.close();
  }, 60_000);

  it('when two revisions are compared, then the diff holds the keys changed between them; the list says who, source, keys and outcome', async () => {
    await write({ cockpit: { port: Number(portInFile()) + 1 } });
    const { context, page } = await signedIn('history');
    const all = await commits();
    const [first, newest] = [all.at(-1)!, all[0]!];
    const row = page.locator(`#commits tr[data-commit="${newest.id}"] td`);
    expect((await row.allTextContents()).slice(1, 5)).toEqual([`api ${newest.actor.id}`, 'api', 'cockpit.port', 'applied']);
    await page.getByLabel('Compare from').selectOption(first.id);
    await page.getByLabel('to', { exact: true }).selectOption(newest.id);
    await page.getByRole('button', { name: 'Compare' }).click();
    await page
      .locator('#diff-title')
      .getByText(`Compare ${first.id.slice(0, 7)} → ${newest.id.slice(0, 7)}`)
      .waitFor();
    const expected = await json<{ diff: Record<string, Record<string, unknown>> }>(`/api/v1/settings/diff?from=${first.id}&to=${newest.id}`);
    const keys = await page.locator('#diff tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')));
    expect(keys).toEqual(
      Object.values(expected.diff)
        .flatMap((group) => Object.keys(group))
        .sort(),
    );
    expect(keys).toContain('cockpit.port');
    expect(await page.locator('#diff tr[data-key="cockpit.port"] del').textContent()).toBe('9090');
    expect(await page.evaluate('document.activeElement.id')).toBe('diff-title');
    expect(await page.evaluate(LOW_CONTRAST)).toEqual([]);
    await page.getByLabel('inline').check();
    expect(await page.locator('#diff pre .line-del').allTextContents()).toContain('-port = 9090\n');
    expect(await page.evaluate(LOW_CONTRAST)).toEqual([]);
    await page.getByLabel('side by side').check();
    await page.locator('#diff table').waitFor();
    await context.close();
  }, 60_000);

  it('when a rollback is confirmed on its diff, then config.ini goes back and the result per target shows; cancelling, a double click or a write meanwhile roll back nothing more', async () => {
    await write({ cockpit: { port: 9500 } });
    const { context, page, requests } = await signedIn('history');
    const all = await commits();
    // The first revision: the port goes back to 9090, so the target's file is written and its service reloaded.
    const target = all.at(-1)!;
    const label = `Roll back to ${target.id.slice(0, 7)} (${target.summary})`;
    const dialog = page.getByRole('dialog');
    // Cancel: the dialog shows what would change, and nothing does.
    await page.getByRole('button', { name: label }).click();
    await dialog.getByText(`config.ini goes back to revision ${target.id.slice(0, 7)}`).waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    // A write while the dialog is open: the rollback it showed is refused, nothing is undone unseen.
    await page.getByRole('button', { name: label }).click();
    await dialog.getByText(`config.ini goes back to revision ${target.id.slice(0, 7)}`).waitFor();
    await write({ cockpit: { port: 9501 } });
    await dialog.getByRole('button', { name: 'Roll back' }).click();
    await activity(page)
      .getByText(/^config\.ini changed while the confirmation was open: nothing was rolled back/)
      .waitFor();
    expect(portInFile()).toBe('9501');
    expect(await commits()).toHaveLength(all.length + 1);

    // Confirmed, after a double click: one dialog, one rollback.
    await page.getByRole('button', { name: label }).dblclick();
    await dialog.getByText(`config.ini goes back to revision ${target.id.slice(0, 7)}`).waitFor();
    const head = (await commits())[0]!;
    const diff = await json<{ diff: { changed: Record<string, { old: string; new: string }> } }>(`/api/v1/settings/diff?from=${head.id}&to=${target.id}`);
    expect(diff.diff.changed['cockpit.port']).toEqual({ old: '9501', new: '9090' });
    for (const [key, change] of Object.entries(diff.diff.changed)) {
      expect(await dialog.locator(`tr[data-key="${key}"] del`).textContent()).toBe(change.old);
      expect(await dialog.locator(`tr[data-key="${key}"] ins`).textContent()).toBe(change.new);
    }
    await dialog.getByRole('button', { name: 'Roll back' }).click();
    await activity(page)
      .getByText(new RegExp(`^Rolled back to ${target.id.slice(0, 7)}: revision [0-9a-f]{7} applied$`))
      .waitFor();
    expect(await activity(page).locator('li[data-target="web"]').textContent()).toBe('web: in sync, file written, reloaded');
    expect(portInFile()).toBe('9090');
    expect(requests.filter((r) => r.startsWith('POST') && r.includes('/rollback'))).toHaveLength(2);
    const after = await commits();
    expect(after[0]).toMatchObject({ source: 'rollback' });
    // config.ini holds the content of that revision again; the history list follows live.
    expect((await json<{ diff: unknown }>(`/api/v1/settings/diff?from=${target.id}&to=${after[0]!.id}`)).diff).toEqual({ added: {}, removed: {}, changed: {} });
    await page.locator(`#commits tbody tr[data-commit="${after[0]!.id}"]`).waitFor();
    await context.close();
  }, 60_000);

  it('when the service refuses a change, then the page says it was rolled back, why, and the status shows the target failed with the error in words', async () => {
    const { context, page } = await signedIn('settings');
    const port = portInFile();
    refuseReloads = true;
    try {
      await input(page, 'cockpit.port').fill(String(Number(port) + 100));
      await page.getByRole('button', { name: 'Save cockpit' }).click();
      await activity(page)
        .getByText(/^Saved cockpit\.port: revision [0-9a-f]{7} rolled back/)
        .waitFor();
      expect(await activity(page).locator('li[data-target="web"]').textContent()).toContain('500');
      await eventually('config.ini is rolled back', () => portInFile() === port);
      // The refused value stays in the form, to be corrected.
      expect(await input(page, 'cockpit.port').inputValue()).toBe(String(Number(port) + 100));
      expect(await field(page, 'cockpit.port').getAttribute('class')).toContain('dirty');
      expect(await page.locator('#settings-notice').textContent()).toContain('Your values are still in the form');
      await page.getByRole('link', { name: 'Status' }).click();
      const row = page.locator('#targets tr[data-target="web"]');
      await row.locator('.state-failed').waitFor();
      expect(await row.locator('td').nth(3).textContent()).toContain('(RELOAD_FAILED)');
      expect(await page.evaluate(LOW_CONTRAST)).toEqual([]);
    } finally {
      refuseReloads = false;
    }
    await context.close();
  }, 60_000);

  it('when the browser goes offline and back, then the indicator says so, the channel resumes from the last event, and what changed meanwhile shows without a reload', async () => {
    const { context, page, requests } = await signedIn('status');
    const states: string[] = [];
    await page.exposeFunction('recordState', (state: string) => states.push(state));
    await page.evaluate(
      "new MutationObserver(() => recordState(document.querySelector('#live').dataset.state)).observe(document.querySelector('#live'), { attributeFilter: ['data-state'] })",
    );
    const rev = await page.locator('#live').getAttribute('data-rev');
    expect(rev).toMatch(/^\d+$/);
    await context.setOffline(true);
    await eventually('the indicator said offline', () => states.includes('offline'));
    const port = Number(portInFile()) + 7;
    const put = await ch.api('/api/v1/settings/cockpit?wait=true', { method: 'PUT', body: JSON.stringify({ port }) });
    expect(put.status).toBe(200);
    const head = (await json<{ lastRun: { revision: string } }>('/api/v1/sync/status')).lastRun.revision;
    await context.setOffline(false);
    await page.locator('#live[data-state="connected"]').waitFor();
    await page.locator('#targets tr[data-target="web"] td.mono').getByText(head.slice(0, 7)).waitFor();
    expect(states.at(-1)).toBe('connected');
    // Resumed: the next socket asked for what followed the last event the page had seen.
    const sockets = requests.filter((r) => r.startsWith('WS '));
    expect(new URL(sockets[0]!.slice(3)).searchParams.get('since')).toBeNull();
    expect(new URL(sockets[1]!.slice(3)).searchParams.get('since')).toBe(rev);
    expect(pageLoads(requests)).toHaveLength(1);
    await context.close();
  }, 60_000);

  it('when the connection drops, then the indicator says reconnecting, and the page reconnects by itself from the last event it had', async () => {
    // The browser says it is online whatever the machine's interfaces: this is about a dropped connection.
    const { context, page } = await signedIn('status', "Object.defineProperty(Navigator.prototype, 'onLine', { get: () => true })");
    const sockets: { url: string; close(): Promise<void> }[] = [];
    await page.routeWebSocket('**/api/v1/ws**', (socket) => {
      socket.connectToServer();
      sockets.push({ url: socket.url(), close: () => socket.close({ code: 1012, reason: 'dropped' }) });
    });
    // The socket opened before the route goes on; the next one goes through it.
    await context.setOffline(true);
    await context.setOffline(false);
    await eventually('the page reconnected through the route', () => sockets.length >= 1);
    await page.locator('#live[data-state="connected"]').waitFor();
    const routed = sockets.length;
    const texts: string[] = [];
    await page.exposeFunction('recordText', (text: string) => texts.push(text));
    await page.evaluate(
      "new MutationObserver(() => recordText(document.querySelector('#live').textContent)).observe(document.querySelector('#live'), { subtree: true, childList: true, characterData: true })",
    );
    const rev = await page.locator('#live').getAttribute('data-rev');
    await sockets.at(-1)!.close();
    await eventually('the page reconnected by itself', () => sockets.length === routed + 1, 5_000);
    await page.locator('#live[data-state="connected"]').waitFor();
    expect(texts).toContainEqual(expect.stringMatching(/^Live updates: reconnecting \(next attempt in \d+ s\)$/));
    expect(texts.at(-1)).toBe('Live updates: connected');
    expect(new URL(sockets.at(-1)!.url).searchParams.get('since')).toBe(rev);
    await context.close();
  }, 60_000);

  it('when the session ends under an edit, then the sign-in form says so, and after signing in the edit is still there; a live channel refused (4401) signs out too', async () => {
    const { context, page } = await signedIn('settings');
    await input(page, 'console.title').fill('Edited before the session ended');
    // The session ends (as when it idles out): the next request is refused.
    await context.clearCookies();
    await page.getByRole('button', { name: 'Save console' }).click();
    await page.getByRole('alert').filter({ hasText: 'Your session ended: sign in again. Your unsaved changes (1) are kept in this page.' }).waitFor();
    // Nothing read from confhub stays in the page while signed out.
    expect(await page.locator('#sections').evaluate((sections) => sections.children.length)).toBe(0);
    await page.getByLabel('API key').fill(ch.apiKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('fieldset[data-section="console"]').waitFor();
    expect(await input(page, 'console.title').inputValue()).toBe('Edited before the session ended');
    expect(await field(page, 'console.title').getAttribute('class')).toContain('dirty');
    // The live channel reconnecting without a session: confhub closes it with 4401, the page signs out.
    await context.clearCookies();
    await context.setOffline(true);
    await context.setOffline(false);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await context.close();
  }, 60_000);

  it('when the user signs out, then nothing read from confhub is left in the page', async () => {
    // Two revisions at least: one to roll back to.
    await write({ cockpit: { port: Number(portInFile()) + 1 } });
    const { context, page } = await signedIn('settings');
    const password = await setting('gitea', 'user_pwd');
    await page.getByRole('link', { name: 'History' }).click();
    await page
      .locator('#commits tbody tr')
      .first()
      .getByRole('button', { name: /^View changes/ })
      .click();
    await page.locator('#diff tbody tr, #diff p').first().waitFor();
    await page
      .locator('#commits tbody tr')
      .nth(1)
      .getByRole('button', { name: /^Roll back/ })
      .click();
    await page.getByRole('dialog').getByText('config.ini goes back to revision').waitFor();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    const left = (await page.evaluate(
      "[...document.querySelectorAll('#app *')].filter((node) => !node.children.length && node.textContent.trim()).map((node) => node.textContent)",
    )) as string[];
    expect(left.filter((text) => /[0-9a-f]{7}|websoft9|example\.com/.test(text))).toEqual([]);
    expect(await page.evaluate("[...document.querySelectorAll('input')].map((i) => i.value).join(' ')")).not.toContain(password);
    expect(await page.locator('#sections, #commits tbody, #diff, #targets tbody').evaluateAll((nodes) => nodes.map((n) => n.children.length))).toEqual([
      0, 0, 0, 0,
    ]);
    expect(
      await page.evaluate(
        "[document.querySelector('#rollback-dialog').textContent.match(/[0-9a-f]{7}/), document.querySelector('#settings-form').dataset.revision ?? null, document.querySelector('#live').dataset.rev ?? null]",
      ),
    ).toEqual([null, null, null]);
    await context.close();
  }, 60_000);

  it('has a label on every control, reaches every view by keyboard, shows focus, keeps text contrast at 4.5:1, and asks nothing of another origin', async () => {
    const { context, page, requests } = await signedIn('settings');
    const unlabelled = await page.evaluate(
      "[...document.querySelectorAll('input, select, textarea, output, button')].filter((c) => !(c.labels?.length || c.getAttribute('aria-label') || (c.tagName === 'BUTTON' && c.textContent.trim()))).map((c) => c.id || c.outerHTML)",
    );
    expect(unlabelled).toEqual([]);
    expect(await page.evaluate(LOW_CONTRAST)).toEqual([]);
    // From the top of a freshly loaded page.
    await page.reload();
    await page.locator('#live[data-state="connected"]').waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Skip to the content');
    // The skip link moves focus past the header; the view stays the one shown.
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement.id')).toBe('main');
    expect(await page.locator('#view-settings').isVisible()).toBe(true);
    let guard = 0;
    while ((await page.evaluate('document.activeElement.textContent')) !== 'History' && guard++ < 10) await page.keyboard.press('Tab');
    expect(await page.evaluate("getComputedStyle(document.activeElement).outlineStyle + ' ' + getComputedStyle(document.activeElement).outlineWidth")).toBe(
      'solid 3px',
    );
    await page.keyboard.press('Enter');
    await page.locator('#view-history:not([hidden]) #commits tbody tr').first().waitFor();
    // The view's heading has focus, so a screen reader says where the user is.
    expect(await page.evaluate('document.activeElement.id')).toBe('history-title');
    const origin = new URL(consoleUrl).host;
    expect(requests.filter((r) => new URL(r.split(' ')[1]!).host !== origin)).toEqual([]);
    await context.close();
  }, 60_000);
});
