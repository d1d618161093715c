/**
 * Which JSON values each kind of key takes, the same through PUT, PATCH and the legacy query form:
 * text keys (names, passwords, emails, URLs, paths, the API key, undeclared keys) take strings
 * only; ports a JSON integer or decimal digits; lists a string or an array of strings. A refusal
 * names the field, writes nothing and never echoes the value.
 */
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseIni } from '../../src/ini/document.js';
import { createHarness, type Harness } from '../support/harness.js';

let h: Harness;

beforeEach(async () => {
  // One key the schema does not declare: it is text like any other.
  h = await createHarness({ configText: `${readFileSync(new URL('../../config/config.ini', import.meta.url), 'utf8')}\n[extra]\nnote = hello\n` });
});

afterEach(async () => {
  await h.close();
});

type Write = (section: string, key: string, value: unknown) => request.Test;

/** A JSON value as the body's raw text, so that `1e3`, `-0` or `1e400` reach the server as typed. */
const json = (value: unknown): string => (typeof value === 'string' && value.startsWith('raw:') ? value.slice(4) : JSON.stringify(value));

const WRITES: Record<'PUT' | 'PATCH', Write> = {
  PUT: (section, key, value) =>
    request(h.app)
      .put(`/api/v1/settings/${section}`)
      .set('x-api-key', h.apiKey)
      .set('content-type', 'application/json')
      .send(`{${JSON.stringify(key)}:${json(value)}}`),
  PATCH: (section, key, value) =>
    request(h.app)
      .patch('/api/v1/settings')
      .set('x-api-key', h.apiKey)
      .set('content-type', 'application/json')
      .send(`{${JSON.stringify(section)}:{${JSON.stringify(key)}:${json(value)}}}`),
};

const legacy = (section: string, key: string, value: string) => request(h.app).put(`/api/settings/${section}`).query({ key, value }).set('x-api-key', h.apiKey);

function stored(section: string, key: string): string | undefined {
  return parseIni(h.readConfig()).byName.get(section)?.byKey.get(key)?.value;
}

/** The write was refused as VALIDATION_FAILED with exactly one issue, for `field`, and the file is as it was. */
async function expectRefused(res: request.Response, before: string, field: string, code: string): Promise<void> {
  expect(res.status, JSON.stringify(res.body)).toBe(400);
  expect(res.body.code).toBe('VALIDATION_FAILED');
  expect(res.body.errors).toEqual([{ field, code, message: expect.stringContaining(field) }]);
  expect(h.readConfig()).toBe(before);
}

const TEXT_KEYS = [
  ['nginx_proxy_manager', 'nike_name'],
  ['gitea', 'user_pwd'],
  ['gitea', 'user_email'],
  ['gitea', 'base_url'],
  ['nginx_proxy_manager', 'ssl_cert'],
  ['api_key', 'key'],
  ['extra', 'note'],
] as const;

describe.each(['PUT', 'PATCH'] as const)('JSON values through %s', (method) => {
  const write = (section: string, key: string, value: unknown) => WRITES[method](section, key, value);

  it('when a text, password, email, URL, path, API key or undeclared key gets a boolean, a number, null, an array or an object, then 400 INVALID_TYPE names the field and nothing is written', async () => {
    const before = h.readConfig();
    for (const [section, key] of TEXT_KEYS) {
      for (const value of [true, false, 8080, 0, 'raw:-0', 'raw:1e3', null, ['a'], { a: 'b' }]) {
        const res = await write(section, key, value);
        await expectRefused(res, before, `${section}.${key}`, 'INVALID_TYPE');
        expect(res.body.errors[0].message).toMatch(/must be a string, not (a boolean|a number|null|an array|an object)$/);
      }
    }
  });

  it('when the same keys get strings, then they are stored as sent', async () => {
    expect((await write('nginx_proxy_manager', 'nike_name', 'true')).status).toBe(200);
    expect(stored('nginx_proxy_manager', 'nike_name')).toBe('true');
    expect((await write('extra', 'note', '8080')).status).toBe(200);
    expect(stored('extra', 'note')).toBe('8080');
  });

  it('when a port gets a JSON integer or its decimal digits, then it is stored as digits and read back as a number', async () => {
    for (const [value, text] of [
      [9443, '9443'],
      ['9444', '9444'],
      ['raw:1e3', '1000'],
      ['raw:9445.0', '9445'],
    ] as const) {
      const res = await write('nginx_proxy_manager', 'listen_port', value);
      expect(res.status, `${value}: ${JSON.stringify(res.body)}`).toBe(200);
      expect(stored('nginx_proxy_manager', 'listen_port')).toBe(text);
      expect((await request(h.app).get('/api/v1/settings/nginx_proxy_manager/listen_port').set('x-api-key', h.apiKey)).body).toEqual({
        listen_port: Number(text),
      });
    }
  });

  it('when a port gets leading zeros, a fraction, a huge or negative number, -0, a text that is no integer, a boolean or null, then 400 names the field and nothing is written', async () => {
    const before = h.readConfig();
    for (const [value, code] of [
      ['080', 'INVALID_PORT'],
      ['0', 'INVALID_PORT'],
      ['raw:-0', 'INVALID_PORT'],
      [-80, 'INVALID_PORT'],
      [70000, 'INVALID_PORT'],
      ['raw:99999999999999999999', 'INVALID_PORT'],
      ['1e3', 'INVALID_PORT'],
      ['NaN', 'INVALID_PORT'],
      ['Infinity', 'INVALID_PORT'],
      ['0x50', 'INVALID_PORT'],
      ['', 'REQUIRED'],
      [80.5, 'INVALID_TYPE'],
      ['raw:1e400', 'INVALID_TYPE'],
      [true, 'INVALID_TYPE'],
      [null, 'INVALID_TYPE'],
      [[80], 'INVALID_TYPE'],
    ] as const) {
      await expectRefused(await write('nginx_proxy_manager', 'listen_port', value), before, 'nginx_proxy_manager.listen_port', code);
    }
  });

  it('when a list key gets an array of strings or a comma-separated string, then it is stored; a number or an array holding one is refused', async () => {
    expect((await write('initial_apps', 'keys', ['wordpress', 'gitea'])).status).toBe(200);
    expect(stored('initial_apps', 'keys')).toBe('wordpress,gitea');
    const before = h.readConfig();
    await expectRefused(await write('initial_apps', 'keys', 42), before, 'initial_apps.keys', 'INVALID_TYPE');
    await expectRefused(await write('initial_apps', 'keys', ['wordpress', 1]), before, 'initial_apps.keys', 'INVALID_TYPE');
    await expectRefused(await write('initial_apps', 'keys', null), before, 'initial_apps.keys', 'INVALID_TYPE');
  });
});

describe('the legacy query form (?key=&value=, always text)', () => {
  it('when it sets a text key to "true" or "8080", then that text is stored, as apphub did', async () => {
    expect((await legacy('nginx_proxy_manager', 'nike_name', 'true')).status).toBe(200);
    expect(stored('nginx_proxy_manager', 'nike_name')).toBe('true');
    const res = await legacy('extra', 'note', '8080');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ note: '8080' });
  });

  it('when it sets a port, then decimal digits are taken and leading zeros or non-integers refused, as in a JSON body', async () => {
    expect((await legacy('cockpit', 'port', '9091')).status).toBe(200);
    expect(stored('cockpit', 'port')).toBe('9091');
    const before = h.readConfig();
    for (const [value, code] of [
      ['09091', 'INVALID_PORT'],
      ['1e3', 'INVALID_PORT'],
      ['-0', 'INVALID_PORT'],
      ['NaN', 'INVALID_PORT'],
      ['9091.5', 'INVALID_PORT'],
    ] as const) {
      await expectRefused(await legacy('cockpit', 'port', value), before, 'cockpit.port', code);
    }
  });

  it('when it sets a list key, then the comma-separated text is stored', async () => {
    expect((await legacy('favorite_apps', 'keys', 'wordpress,gitea')).status).toBe(200);
    expect(stored('favorite_apps', 'keys')).toBe('wordpress,gitea');
  });
});
