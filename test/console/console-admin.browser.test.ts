/**
 * The console as an administrator uses it, in Debian's Chromium through playwright-core: settings
 * edited and saved (a section, or several as one batch) and seen applied live, every refused value
 * next to its field with nothing saved, a 412 conflict and its re-apply, diffs side by side and
 * inline with secrets masked, two revisions compared, a rollback confirmed on its diff and its
 * result live, a service refusing a change (rolled back, in words), the live channel going offline
 * and resuming where it left off, and the accessibility basics. confhub, its worker and the console
 * are real; the service behind the target is a loopback reload hook the tests can make refuse.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_DEFAULTS, createConsoleServer } from '../../src/console/console-server.js';
import { type Confhub, eventually, startConfhub } from '../support/confhub.js';
import { findProgram } from '../support/engines.js';
import { loopbackServers } from '../support/loopback-servers.js';

const CHROMIUM = findProgram('chromium');
if (!CHROMIUM) console.warn('chromium is not installed (Debian: apt-get install chromium); skipping the console admin page tests');

let ch: Confhub;
let browser: Browser;
let consoleUrl: string;
/** The reload hook of target `web`: 500 while set, so the worker restores the files and rolls config.ini back. */
let refuseReloads = false;
const { listen, closeAll } = loopbackServers();

interface Commit {
  id: string;
  summary: string;
  source: string;
  changes: { key: string }[];
  sync: { outcome: string } | null;
}

async function json<T>(path: string, init?: RequestInit): Promise<T> {
  return (await (await ch.api(path, init)).json()) as T;
}

const commits = async (): Promise<Commit[]> => (await json<{ commits: Commit[] }>('/api/v1/settings/history?limit=200')).commits;
const output = (): string => readFileSync(join(ch.dir, 'out', 'web.ini'), 'utf8');
const portInFile = (): string => /^port = (.*)$/m.exec(ch.readConfig().split('[cockpit]')[1] ?? '')?.[1] ?? '';

/** A new browser context (its own cookies), signed in, on `view`; every request it makes is recorded. */
async function signedIn(view = 'status'): Promise<{ context: BrowserContext; page: Page; requests: string[] }> {
  const context = await browser.newContext();
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

describe.skipIf(!CHROMIUM)('the console admin page in Chromium', () => {
  beforeAll(async () => {
    const hook = await listen(
      createServer((req, res) => {
        req.resume();
        res.writeHead(refuseReloads ? 500 : 200, { 'content-type': 'text/plain' }).end(refuseReloads ? 'port refused by the service' : 'ok');
      }),
    );
    ch = await startConfhub({
      systemIni: `[sync]\noutput_roots = @DIR@\ndebounce_min_ms = 50\ndebounce_max_ms = 400\npoll_interval_ms = 500\n\n[target:web]\nsections = cockpit\nformat = ini\noutput = @DIR@/out/web.ini\nreload = http:POST:${hook}/reload\nhealth = none\n`,
    });
    await eventually('the first run is done', async () => (await json<{ lastRun: unknown }>('/api/v1/sync/status')).lastRun !== null);
    consoleUrl = await listen(createConsoleServer({ settings: { ...CONSOLE_DEFAULTS, title: 'Admin console' }, upstream: new URL(ch.url) }));
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await closeAll();
    await ch?.close();
  });

  it('when a value is edited and its section saved, then config.ini has it and the page shows it applied to the target, live', async () => {
    const { context, page, requests } = await signedIn('settings');
    const next = String(Number(portInFile()) + 1);
    await input(page, 'cockpit.port').fill(next);
    expect(await field(page, 'cockpit.port').getAttribute('class')).toContain('dirty');
    await page.getByRole('button', { name: 'Save cockpit' }).click();
    await activity(page)
      .getByText(/^Saved cockpit\.port: revision [0-9a-f]{7} applied$/)
      .waitFor();
    expect(await activity(page).locator('li[data-target="web"]').textContent()).toBe('web: in sync, file written, reloaded');
    expect(portInFile()).toBe(next);
    expect(output()).toContain(`port=${next}\n`);
    // Sent as a JSON number, with If-Match; the verdict came over the live channel, the page never reloaded.
    expect(requests.filter((r) => r.startsWith('PATCH'))).toHaveLength(1);
    expect(requests.filter((r) => r.startsWith('GET') && new URL(r.slice(4)).pathname === '/')).toHaveLength(1);
    expect(await input(page, 'cockpit.port').inputValue()).toBe(next);
    expect(await field(page, 'cockpit.port').getAttribute('class')).not.toContain('dirty');
    // The status view shows the new revision too.
    const head = (await json<{ history: { head: string } }>('/api/v1/sync/status')).history.head;
    expect((await commits())[0]).toMatchObject({ id: head, changes: [{ key: 'cockpit.port' }] });
    await context.close();
  }, 60_000);

  it('when values of two sections are changed and all are saved, then one write carries both, as one revision', async () => {
    const { context, page, requests } = await signedIn('settings');
    const before = (await commits()).length;
    await input(page, 'console.title').fill('Batch title');
    await page.locator('[data-field="docker_mirror.url"] textarea').fill('https://mirror-a.example.com\n\nhttps://mirror-b.example.com');
    await page.getByRole('button', { name: 'Save all changes' }).click();
    await activity(page)
      .getByText(/^Saved docker_mirror\.url, console\.title: revision [0-9a-f]{7} applied \(no service file changed\)$/)
      .waitFor();
    expect(requests.filter((r) => r.startsWith('PATCH'))).toHaveLength(1);
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
    expect(await page.evaluate('document.activeElement.id')).toBe('field-gitea-base_url');
    expect(await input(page, 'cockpit.port').inputValue()).toBe('70000');
    expect(ch.readConfig()).toBe(config);
    expect(await commits()).toHaveLength(before);
    expect(requests.filter((r) => r.startsWith('PATCH'))).toHaveLength(1);
    await context.close();
  }, 60_000);

  it('when config.ini changed after the page was opened, then saving shows what changed meanwhile, and re-applying saves the edit on the new file', async () => {
    const { context, page } = await signedIn('settings');
    const port = Number(portInFile());
    await input(page, 'cockpit.port').fill(String(port + 10));
    // Someone else changes the same key and another one.
    const theirs = await ch.api('/api/v1/settings', { method: 'PATCH', body: JSON.stringify({ cockpit: { port: port + 5 }, console: { title: 'Theirs' } }) });
    expect(theirs.status).toBe(200);
    // The live channel tells the page; the user's edit stays.
    await page
      .locator('#settings-notice')
      .getByText(/changed cockpit\.port, console\.title while you were editing/)
      .waitFor();
    await page.getByRole('button', { name: 'Save all changes' }).click();
    const conflict = page.locator('#conflict');
    await conflict.getByText('config.ini changed while you were editing').waitFor();
    expect(await conflict.locator('tbody tr').evaluateAll((rows) => rows.map((row) => row.textContent))).toEqual([
      `cockpit.port${port}${port + 5}${port + 10}`,
      'console.titleBatch titleTheirs',
    ]);
    expect(await conflict.locator('tr.clash th').textContent()).toBe('cockpit.port');
    expect(portInFile()).toBe(String(port + 5));
    // The form shows the file as it is now, with the user's edit put back.
    expect(await input(page, 'console.title').inputValue()).toBe('Theirs');
    expect(await input(page, 'cockpit.port').inputValue()).toBe(String(port + 10));
    expect(await page.evaluate('document.activeElement.id')).toBe('reapply');
    await page.getByRole('button', { name: 'Re-apply my changes' }).click();
    await activity(page)
      .getByText(/^Saved cockpit\.port: revision [0-9a-f]{7} applied$/)
      .waitFor();
    expect(await conflict.isHidden()).toBe(true);
    expect(portInFile()).toBe(String(port + 10));
    expect(ch.readConfig()).toContain('title = Theirs\n');
    await context.close();
  }, 60_000);

  it('when a conflict is answered with discard, then the form shows the file as it is and nothing is written', async () => {
    const { context, page } = await signedIn('settings');
    const port = Number(portInFile());
    await input(page, 'cockpit.port').fill(String(port + 3));
    expect((await ch.api('/api/v1/settings/cockpit', { method: 'PUT', body: JSON.stringify({ port: port + 2 }) })).status).toBe(200);
    await page.getByRole('button', { name: 'Save cockpit' }).click();
    await page.getByRole('button', { name: 'Discard my changes' }).click();
    await page.waitForFunction(`document.querySelector('#field-cockpit-port').value === '${port + 2}'`);
    expect(portInFile()).toBe(String(port + 2));
    expect(await page.locator('.field.dirty').count()).toBe(0);
    await context.close();
  }, 60_000);

  it('when a password is shown, then its field reveals the value; its change in history shows masked, side by side and inline', async () => {
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

  it('when two revisions are compared, then the diff holds the keys changed between them, and the layout switches between side by side and inline', async () => {
    const { context, page } = await signedIn('history');
    const all = await commits();
    const first = all.at(-1)!;
    await page.getByLabel('Compare from').selectOption(first.id);
    await page.getByLabel('to', { exact: true }).selectOption(all[0]!.id);
    await page.getByRole('button', { name: 'Compare' }).click();
    await page
      .locator('#diff-title')
      .getByText(`Compare ${first.id.slice(0, 7)} → ${all[0]!.id.slice(0, 7)}`)
      .waitFor();
    const keys = await page.locator('#diff tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-key')));
    expect(keys).toEqual(expect.arrayContaining(['cockpit.port', 'console.title', 'docker_mirror.url', 'gitea.user_pwd']));
    expect(await page.locator('#diff tr[data-key="cockpit.port"] del').textContent()).toBe('9090');
    expect(await page.evaluate('document.activeElement.id')).toBe('diff-title');
    await page.getByLabel('inline').check();
    expect(await page.locator('#diff pre .line-del').allTextContents()).toContain('-port = 9090\n');
    await page.getByLabel('side by side').check();
    await page.locator('#diff table').waitFor();
    await context.close();
  }, 60_000);

  it('when a rollback is confirmed on its diff, then config.ini goes back and the result per target shows live; cancelling changes nothing', async () => {
    const { context, page } = await signedIn('history');
    const all = await commits();
    // The first revision: the port goes back to 9090, so the target's file is written and its service reloaded.
    const target = all.at(-1)!;
    expect(portInFile()).not.toBe('9090');
    // Cancel first: the dialog shows what would change, and nothing does.
    const label = `Roll back to ${target.id.slice(0, 7)} (${target.summary})`;
    await page.getByRole('button', { name: label }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText(`config.ini goes back to revision ${target.id.slice(0, 7)}`).waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await commits()).toHaveLength(all.length);

    await page.getByRole('button', { name: label }).click();
    const diff = await json<{ diff: { changed: Record<string, { old: string; new: string }> } }>(`/api/v1/settings/diff?from=${all[0]!.id}&to=${target.id}`);
    for (const [key, change] of Object.entries(diff.diff.changed)) {
      expect(await dialog.locator(`tr[data-key="${key}"] del`).textContent()).toBe(change.old);
      expect(await dialog.locator(`tr[data-key="${key}"] ins`).textContent()).toBe(change.new);
    }
    expect(Object.keys(diff.diff.changed).length).toBeGreaterThan(0);
    await dialog.getByRole('button', { name: 'Roll back' }).click();
    await activity(page)
      .getByText(new RegExp(`^Rolled back to ${target.id.slice(0, 7)}: revision [0-9a-f]{7} applied$`))
      .waitFor();
    expect(await activity(page).locator('li[data-target="web"]').textContent()).toBe('web: in sync, file written, reloaded');
    expect(portInFile()).toBe('9090');
    const after = await commits();
    expect(after[0]).toMatchObject({ source: 'rollback' });
    // The history list follows live.
    await page.locator(`#commits tbody tr[data-commit="${after[0]!.id}"]`).waitFor();
    // config.ini holds the content of that revision again.
    const left = await json<{ diff: Record<string, object> }>(`/api/v1/settings/diff?from=${target.id}&to=${after[0]!.id}`);
    expect(left.diff).toEqual({ added: {}, removed: {}, changed: {} });
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
      await page.getByRole('link', { name: 'Status' }).click();
      const row = page.locator('#targets tr[data-target="web"]');
      await row.locator('.state-failed').waitFor();
      expect(await row.locator('td').nth(3).textContent()).toContain('(RELOAD_FAILED)');
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
      "new MutationObserver(() => recordState(document.querySelector('#live').dataset.state)).observe(document.querySelector('#live'), { attributes: true })",
    );
    await context.setOffline(true);
    await page.locator('#live[data-state="offline"]').waitFor();
    const rev = await page.locator('#live').getAttribute('data-rev');
    expect(rev).toMatch(/^\d+$/);
    const port = Number(portInFile()) + 7;
    const put = await ch.api('/api/v1/settings/cockpit?wait=true', { method: 'PUT', body: JSON.stringify({ port }) });
    expect(put.status).toBe(200);
    const head = (await json<{ history: { head: string }; lastRun: { revision: string } }>('/api/v1/sync/status')).lastRun.revision;
    await context.setOffline(false);
    await page.locator('#live[data-state="connected"]').waitFor();
    await page.locator('#targets tr[data-target="web"] td.mono').getByText(head.slice(0, 7)).waitFor();
    expect(states).toEqual(expect.arrayContaining(['offline', 'connected']));
    // Resumed: the second socket asked for what followed the last event the page had seen.
    const sockets = requests.filter((r) => r.startsWith('WS '));
    expect(sockets).toHaveLength(2);
    expect(new URL(sockets[0]!.slice(3)).searchParams.get('since')).toBeNull();
    expect(new URL(sockets[1]!.slice(3)).searchParams.get('since')).toBe(rev);
    expect(requests.filter((r) => r.startsWith('GET') && new URL(r.slice(4)).pathname === '/')).toHaveLength(1);
    await context.close();
  }, 60_000);

  it('when the connection drops, then the indicator says reconnecting, and the page reconnects by itself from the last event it had', async () => {
    const { context, page } = await signedIn('status');
    const sockets: { url: string; close(): Promise<void> }[] = [];
    await page.routeWebSocket('**/api/v1/ws**', (socket) => {
      socket.connectToServer();
      sockets.push({ url: socket.url(), close: () => socket.close({ code: 1012, reason: 'dropped' }) });
    });
    // The socket opened before the route goes on; a drop of the next one is what the test makes.
    await context.setOffline(true);
    await context.setOffline(false);
    await eventually('the page reconnected through the route', () => sockets.length === 1);
    await page.locator('#live[data-state="connected"]').waitFor();
    const rev = await page.locator('#live').getAttribute('data-rev');
    await sockets[0]!.close();
    await page.locator('#live[data-state="reconnecting"]').waitFor();
    expect(await page.locator('#live').textContent()).toMatch(/^Live updates: reconnecting \(next attempt in \d+ s\)$/);
    await eventually('the page reconnected by itself', () => sockets.length === 2, 5_000);
    await page.locator('#live[data-state="connected"]').waitFor();
    expect(new URL(sockets[1]!.url).searchParams.get('since')).toBe(rev);
    await context.close();
  }, 60_000);

  it('has a label on every control, reaches every view by keyboard, shows focus, keeps text contrast at 4.5:1, and asks nothing of another origin', async () => {
    const { context, page, requests } = await signedIn('settings');
    const unlabelled = await page.evaluate(
      "[...document.querySelectorAll('input, select, textarea, button')].filter((c) => !(c.labels?.length || c.getAttribute('aria-label') || c.textContent.trim())).map((c) => c.id || c.outerHTML)",
    );
    expect(unlabelled).toEqual([]);
    // Keyboard: from the top of the page to the History view and into its first button.
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
    await page.keyboard.press('Enter');
    await page.locator('#view-history:not([hidden]) #commits tbody tr').first().waitFor();
    expect(await page.evaluate("getComputedStyle(document.activeElement).outlineStyle + ' ' + getComputedStyle(document.activeElement).outlineWidth")).toBe(
      'solid 3px',
    );
    const contrast = await page.evaluate(`(() => {
      const rgb = (text) => text.match(/[\\d.]+/g).slice(0, 3).map(Number);
      const lum = (c) => { const [r, g, b] = c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
      const background = (node) => { for (; node; node = node.parentElement) { const c = getComputedStyle(node).backgroundColor; if (!c.endsWith(', 0)') && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
      const worst = [];
      for (const node of document.querySelectorAll('body *')) {
        if (!node.offsetParent || ![...node.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
        const style = getComputedStyle(node);
        if (style.opacity !== '1') continue;
        const [a, b] = [lum(rgb(style.color)), lum(rgb(background(node)))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        if (ratio < 4.5) worst.push(node.tagName + ' ' + node.className + ' ' + ratio.toFixed(2));
      }
      return worst;
    })()`);
    expect(contrast).toEqual([]);
    const origin = new URL(consoleUrl).host;
    expect(requests.filter((r) => new URL(r.split(' ')[1]!).host !== origin)).toEqual([]);
    await context.close();
  }, 60_000);
});
