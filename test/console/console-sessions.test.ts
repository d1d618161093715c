/**
 * Console sessions: the API key exchanged for an HttpOnly, SameSite=Strict cookie that is not the
 * key; /api/ with the cookie reaches confhub with the key; writes with the cookie only from the
 * console's own page (Origin); sign-out, idle expiry and a rotated key end a session.
 */
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { loopbackServers } from '../support/loopback-servers.js';
import { CONSOLE_DEFAULTS, createConsoleServer } from '../../src/console/console-server.js';
import { createSessionStore } from '../../src/console/sessions.js';
import { startConfhub } from '../support/confhub.js';
import { connectWs } from '../support/ws-client.js';

const KEY = 'k'.repeat(64);
const { listen, closeAll } = loopbackServers();
afterEach(() => closeAll());

/** A confhub stand-in: the key is KEY (until `rotate`); it records what reached it. */
async function setUp(options: { idleMs?: number } = {}) {
  let key = KEY;
  const seen: { method: string; url: string; key: string | undefined; cookie: string | undefined; forwardedFor?: string | undefined }[] = [];
  const upstream = await listen(
    createHttpServer((req: IncomingMessage, res) => {
      req.resume();
      const entry = { method: req.method!, url: req.url!, key: req.headers['x-api-key'] as string | undefined, cookie: req.headers.cookie };
      seen.push(req.headers['x-forwarded-for'] === '127.0.0.1' ? entry : { ...entry, forwardedFor: req.headers['x-forwarded-for'] as string });
      const ok = req.headers['x-api-key'] === key;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(ok ? '{"ok":true}' : '{"code":"API_KEY_INVALID","message":"Unauthorized","details":"Invalid API Key"}');
    }),
  );
  let now = 1_000_000;
  const sessions = createSessionStore({ ...(options.idleMs ? { idleMs: options.idleMs } : {}), now: () => now });
  const url = await listen(createConsoleServer({ settings: CONSOLE_DEFAULTS, upstream: new URL(upstream), sessions }));
  const origin = url;
  const signIn = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${url}/session`, { method: 'POST', headers: { 'content-type': 'application/json', origin, ...headers }, body });
  return {
    url,
    origin,
    seen,
    signIn,
    rotate: (next: string) => (key = next),
    advance: (ms: number) => (now += ms),
    async cookie(): Promise<string> {
      const res = await signIn(JSON.stringify({ key: KEY }));
      expect(res.status).toBe(200);
      return res.headers.get('set-cookie')!.split(';')[0]!;
    },
  };
}

describe('console sessions', () => {
  it('when the key is good, then a session cookie is set (HttpOnly, SameSite=Strict, not the key) and /api/ works with it alone', async () => {
    const { url, seen, signIn } = await setUp();
    const res = await signIn(JSON.stringify({ key: KEY }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ signedIn: true, idleSeconds: 1800 });
    const setCookie = res.headers.get('set-cookie')!;
    // No Max-Age: the console ends a session idle too long; a lifetime in the browser would end an active one.
    expect(setCookie).toMatch(/^confhub_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict$/);
    expect(setCookie).not.toContain(KEY);
    const cookie = setCookie.split(';')[0]!;
    expect(await (await fetch(`${url}/session`, { headers: { cookie } })).json()).toEqual({ signedIn: true, idleSeconds: 1800 });
    const api = await fetch(`${url}/api/v1/settings`, { headers: { cookie: `theme=dark; ${cookie}` } });
    expect(api.status).toBe(200);
    // confhub got the key, never the session cookie; other cookies pass.
    expect(seen.at(-1)).toEqual({ method: 'GET', url: '/api/v1/settings', key: KEY, cookie: 'theme=dark' });
  });

  it('when the key is wrong, empty, not JSON, too big, or the page is elsewhere, then no session is made', async () => {
    const { url, signIn } = await setUp();
    const wrong = await signIn(JSON.stringify({ key: 'x'.repeat(64) }));
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { code: string }).code).toBe('API_KEY_INVALID');
    expect(wrong.headers.get('set-cookie')).toBeNull();
    for (const [body, headers, status, code] of [
      ['{"key": ""}', {}, 400, 'INVALID_REQUEST'],
      ['{"key": ', {}, 400, 'INVALID_REQUEST'],
      [JSON.stringify({ key: 'k'.repeat(5000) }), {}, 400, 'INVALID_REQUEST'],
      ['key=x', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [JSON.stringify({ key: KEY }), { origin: 'https://evil.example' }, 403, 'ORIGIN_NOT_ALLOWED'],
    ] as const) {
      const res = await signIn(body, headers);
      expect(res.status, body.slice(0, 40)).toBe(status);
      expect(((await res.json()) as { code: string }).code).toBe(code);
      expect(res.headers.get('set-cookie')).toBeNull();
    }
    expect(await (await fetch(`${url}/session`)).json()).toMatchObject({ signedIn: false });
  });

  it('when a write comes with the cookie from another page or with no Origin, then it is refused before confhub; from the console page it goes through', async () => {
    const { url, origin, seen, cookie: signedIn } = await setUp();
    const cookie = await signedIn();
    const before = seen.length;
    const other = url.replace(/:(\d+)$/, (_m, port: string) => `:${Number(port) + 1}`);
    const foreign: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      {},
      { origin: other },
      { origin: url.replace('http:', 'https:') },
    ];
    for (const headers of foreign) {
      const res = await fetch(`${url}/api/v1/settings/gitea`, {
        method: 'PUT',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: '{}',
      });
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(((await res.json()) as { code: string }).code).toBe('ORIGIN_NOT_ALLOWED');
    }
    for (const method of ['POST', 'PATCH', 'DELETE']) {
      const res = await fetch(`${url}/api/v1/settings/gitea`, { method, headers: { cookie, origin: 'https://evil.example' } });
      expect(res.status, method).toBe(403);
    }
    expect(seen.length).toBe(before);
    const own = await fetch(`${url}/api/v1/settings/gitea`, { method: 'PUT', headers: { cookie, origin, 'content-type': 'application/json' }, body: '{}' });
    expect(own.status).toBe(200);
    expect(seen.at(-1)).toMatchObject({ method: 'PUT', key: KEY });
    // A program with its own key is no browser: no Origin needed.
    expect((await fetch(`${url}/api/v1/settings/gitea`, { method: 'PUT', headers: { 'x-api-key': KEY }, body: '{}' })).status).toBe(200);
  });

  it('when the user signs out, the session idles past its limit, or confhub refuses its key (rotated), then the cookie no longer signs in', async () => {
    const { url, origin, advance, rotate, cookie: signedIn } = await setUp({ idleMs: 60_000 });
    const out = await signedIn();
    const bye = await fetch(`${url}/session`, { method: 'DELETE', headers: { cookie: out, origin } });
    expect(bye.status).toBe(200);
    expect(bye.headers.get('set-cookie')).toMatch(/^confhub_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/);
    expect((await fetch(`${url}/api/v1/settings`, { headers: { cookie: out } })).status).toBe(401);

    const idle = await signedIn();
    advance(59_000);
    expect(await (await fetch(`${url}/session`, { headers: { cookie: idle } })).json()).toMatchObject({ signedIn: true });
    advance(59_000);
    expect((await fetch(`${url}/api/v1/settings`, { headers: { cookie: idle } })).status).toBe(200);
    // Used all along: open past any fixed lifetime.
    for (let i = 0; i < 5; i++) {
      advance(50_000);
      expect((await fetch(`${url}/session`, { headers: { cookie: idle } })).status).toBe(200);
    }
    expect(await (await fetch(`${url}/session`, { headers: { cookie: idle } })).json()).toMatchObject({ signedIn: true });
    advance(60_000);
    expect(await (await fetch(`${url}/session`, { headers: { cookie: idle } })).json()).toMatchObject({ signedIn: false });

    const rotated = await signedIn();
    rotate('n'.repeat(64));
    expect((await fetch(`${url}/api/v1/settings`, { headers: { cookie: rotated } })).status).toBe(401);
    expect(await (await fetch(`${url}/session`, { headers: { cookie: rotated } })).json()).toMatchObject({ signedIn: false });
  });

  it('when the console is reached over HTTPS through a proxy on loopback, then the cookie is Secure, the origin is https, and confhub sees each client', async () => {
    const { url, seen, signIn } = await setUp();
    const https = url.replace('http:', 'https:');
    const res = await signIn(JSON.stringify({ key: KEY }), { 'x-forwarded-proto': 'https', origin: https });
    // The new session, and the end of a plain-HTTP one this browser may hold from before TLS.
    expect(res.headers.getSetCookie()).toEqual([
      expect.stringMatching(/^__Host-confhub_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Secure$/),
      'confhub_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure',
    ]);
    const cookie = res.headers.getSetCookie()[0]!.split(';')[0]!;
    // Over HTTPS only the __Host- name counts: the same value under the plain name (which an
    // http:// page could plant) signs nothing in, and neither name reaches confhub.
    const plainName = cookie.replace('__Host-', '');
    expect(await (await fetch(`${url}/session`, { headers: { cookie: plainName, 'x-forwarded-proto': 'https' } })).json()).toMatchObject({ signedIn: false });
    expect(await (await fetch(`${url}/session`, { headers: { cookie, 'x-forwarded-proto': 'https' } })).json()).toMatchObject({ signedIn: true });
    expect(await (await fetch(`${url}/session`, { headers: { cookie } })).json()).toMatchObject({ signedIn: false });
    const put = await fetch(`${url}/api/v1/settings/gitea`, {
      method: 'PUT',
      headers: { cookie: `${cookie}; confhub_session=planted; theme=dark`, origin: https, 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7' },
      body: '{}',
    });
    expect(put.status).toBe(200);
    expect(seen.at(-1)).toMatchObject({ method: 'PUT', key: KEY, forwardedFor: '203.0.113.7, 127.0.0.1', cookie: 'theme=dark' });
    // An http:// page is not the https:// console.
    const plain = await fetch(`${url}/api/v1/settings/gitea`, { method: 'PUT', headers: { cookie, origin: url, 'x-forwarded-proto': 'https' }, body: '{}' });
    expect(plain.status).toBe(403);

    // A session from before TLS (plain HTTP) and the HTTPS one: signing out over HTTPS ends both.
    const before = (await signIn(JSON.stringify({ key: KEY }), { origin: url })).headers.getSetCookie()[0]!.split(';')[0]!;
    const out = await fetch(`${url}/session`, { method: 'DELETE', headers: { cookie: `${before}; ${cookie}`, origin: https, 'x-forwarded-proto': 'https' } });
    expect(out.headers.getSetCookie()).toEqual([
      '__Host-confhub_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure',
      'confhub_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure',
    ]);
    expect(await (await fetch(`${url}/session`, { headers: { cookie: before } })).json()).toMatchObject({ signedIn: false });
    expect(await (await fetch(`${url}/session`, { headers: { cookie, 'x-forwarded-proto': 'https' } })).json()).toMatchObject({ signedIn: false });
  });
});

describe('the live channel through the console', () => {
  it("when the console page opens the WebSocket with its session cookie, then it follows the event log; another page with the cookie is refused, one without gets confhub's answer", async () => {
    // The other origin is one confhub itself allows: only the console can be what refuses it with the cookie.
    const ch = await startConfhub({ systemIni: '[sync]\noutput_roots = @DIR@\n\n[api]\nallowed_origins = https://evil.example\n' });
    try {
      const url = await listen(createConsoleServer({ settings: CONSOLE_DEFAULTS, upstream: new URL(ch.url) }));
      const signIn = await fetch(`${url}/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: url },
        body: JSON.stringify({ key: ch.apiKey }),
      });
      expect(signIn.status).toBe(200);
      const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
      const wsUrl = `${url.replace('http:', 'ws:')}/api/v1/ws`;

      const page = connectWs(wsUrl, { protocols: ['confhub.v1'], origin: url, headers: { cookie } });
      await page.opened;
      expect(page.acceptedProtocolHeader()).toBe('confhub.v1');
      expect(await page.next((m) => m.type === 'hello')).toMatchObject({ type: 'hello', heartbeatMs: 5000 });
      // A write through the console with the cookie reaches the page as its event.
      const put = await fetch(`${url}/api/v1/settings/cockpit`, {
        method: 'PUT',
        headers: { cookie, origin: url, 'content-type': 'application/json' },
        body: JSON.stringify({ port: 9333 }),
      });
      expect(put.status).toBe(200);
      expect(await page.next((m) => m.type === 'settings.changed')).toMatchObject({ data: { keys: ['cockpit.port'] } });
      page.close();

      // Signing out (in another tab) ends the WebSockets the session opened, over HTTPS as over HTTP.
      const https = url.replace('http:', 'https:');
      for (const proxied of [{}, { 'x-forwarded-proto': 'https' }] as Record<string, string>[]) {
        const origin = 'x-forwarded-proto' in proxied ? https : url;
        const session = await fetch(`${url}/session`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', origin, ...proxied },
          body: JSON.stringify({ key: ch.apiKey }),
        });
        const own = session.headers.getSetCookie()[0]!.split(';')[0]!;
        const open = connectWs(wsUrl, { protocols: ['confhub.v1'], origin, headers: { cookie: own, ...proxied } });
        await open.opened;
        await open.next((m) => m.type === 'hello');
        expect((await fetch(`${url}/session`, { method: 'DELETE', headers: { cookie: own, origin, ...proxied } })).status).toBe(200);
        expect((await open.closed).code).toBe(1006);
      }

      const elsewhere = connectWs(wsUrl, { protocols: ['confhub.v1'], origin: 'https://evil.example', headers: { cookie } });
      const refused = await elsewhere.refused;
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'ORIGIN_NOT_ALLOWED', details: expect.stringContaining("console's session cookie") });

      // Without the cookie the Origin goes on: confhub's allow-list judges it.
      const allowed = connectWs(wsUrl, { protocols: ['confhub.v1', `key.${ch.apiKey}`], origin: 'https://evil.example' });
      await allowed.opened;
      allowed.close();
      const notAllowed = connectWs(wsUrl, { protocols: ['confhub.v1', `key.${ch.apiKey}`], origin: 'https://other.example' });
      expect((await notAllowed.refused).status).toBe(403);

      const anonymous = connectWs(wsUrl, { protocols: ['confhub.v1'], origin: url });
      await anonymous.opened;
      expect((await anonymous.closed).code).toBe(4401);

      // The key rotated: the WebSocket with the cookie is refused once, and the session ends.
      const rotated = await fetch(`${ch.url}/api/v1/settings/api_key`, {
        method: 'PUT',
        headers: { 'x-api-key': ch.apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ key: 'r'.repeat(64) }),
      });
      expect(rotated.status).toBe(200);
      const stale = connectWs(wsUrl, { protocols: ['confhub.v1'], origin: url, headers: { cookie } });
      expect((await stale.refused).status).toBe(401);
      expect(await (await fetch(`${url}/session`, { headers: { cookie } })).json()).toMatchObject({ signedIn: false });
    } finally {
      await ch.close();
    }
  });
});
