/** Exact input only: what a client sends is stored as sent or refused with 400, never repaired. */
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { duplicateJsonKey, queryProblem } from '../../src/http/exact-input.js';
import { createHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeEach(async () => {
  h = await createHarness();
});
afterEach(async () => {
  await h.close();
});

describe('exact input through the API', () => {
  it('when a query value is not percent-encoded UTF-8 (%zz, a lone %e9, an overlong %c0%af), then 400 and config.ini is unchanged', async () => {
    const before = h.readConfig();
    for (const value of ['caf%e9', '%zz', '%c0%af', 'ab%', '%ff']) {
      for (const prefix of ['/api/v1', '/api']) {
        const res = await request(h.app).put(`${prefix}/settings/gitea?key=user_name&value=${value}`).set('x-api-key', h.apiKey);
        expect(res.status, value).toBe(400);
        expect(res.body).toMatchObject({ code: 'INVALID_REQUEST', details: expect.stringMatching(/query string/) });
      }
    }
    expect(h.readConfig()).toBe(before);
    const ok = await request(h.app).put('/api/v1/settings/gitea?key=user_name&value=caf%C3%A9').set('x-api-key', h.apiKey);
    expect(ok.status).toBe(200);
    expect(h.readConfig()).toContain('user_name = café');
  });

  it('when a JSON body is not valid UTF-8 or holds a key twice, then 400 naming the problem (the key, never a value), and nothing is written', async () => {
    const before = h.readConfig();
    const latin1 = Buffer.concat([Buffer.from('{"user_name": "caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const bad = await request(h.app)
      .put('/api/v1/settings/gitea')
      .set('x-api-key', h.apiKey)
      .set('content-type', 'application/json')
      // The bytes as they are, not the Buffer serialized as JSON.
      .serialize((body: unknown) => body as string)
      .send(latin1);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'INVALID_REQUEST', details: 'The request body is not valid UTF-8' });
    const twice = await request(h.app)
      .patch('/api/v1/settings')
      .set('x-api-key', h.apiKey)
      .set('content-type', 'application/json')
      .send('{"gitea": {"user_name": "first-secret-ish", "user_\\u006eame": "second"}}');
    expect(twice.status).toBe(400);
    expect(twice.body.details).toBe('The request body has the key "user_name" twice in one object');
    expect(JSON.stringify(twice.body)).not.toContain('second');
    const utf16 = await request(h.app)
      .put('/api/v1/settings/gitea')
      .set('x-api-key', h.apiKey)
      .set('content-type', 'application/json; charset=utf-16le')
      .serialize((body: unknown) => body as string)
      .send(Buffer.from('{"user_name": "zoë"}', 'utf16le'));
    expect(utf16.status).toBe(415);
    expect(utf16.body).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
    expect(h.readConfig()).toBe(before);
  });
});

describe('duplicateJsonKey', () => {
  it('when keys repeat in one object, at any depth, then the first repeated key is named; equal keys in different objects or values equal to keys are fine', () => {
    expect(duplicateJsonKey('{"a": 1, "b": {"a": 2, "c": [{"a": 3}]}, "d": "a"}')).toBeUndefined();
    expect(duplicateJsonKey('{"a": 1, "a": 2}')).toBe('a');
    expect(duplicateJsonKey('{"x": {"k": 1, "k": 2}}')).toBe('k');
    expect(duplicateJsonKey('[{"k": 1}, {"k": 2}, {"k": 1, "j": {"k": 0}, "k": 3}]')).toBe('k');
    expect(duplicateJsonKey('{"a": "has \\" { , quotes", "a\\"b": 1, "b": ["a", "a"]}')).toBeUndefined();
    expect(duplicateJsonKey('{"\\u0061": 1, "a": 2}')).toBe('a');
    expect(duplicateJsonKey('{"a": "unterminated')).toBeUndefined();
  });
});

describe('queryProblem', () => {
  it('when percent-encoding is malformed or decodes to invalid UTF-8, then a problem; valid UTF-8, plus signs and plain text pass', () => {
    for (const ok of ['key=a&value=b', 'value=caf%C3%A9', 'value=a+b', 'value=%E2%82%AC', 'value=caf\u00e9', '']) expect(queryProblem(ok), ok).toBeUndefined();
    for (const bad of ['value=%zz', 'value=%', 'value=%e9', 'value=%c0%af', 'value=%ed%a0%80']) expect(queryProblem(bad), bad).toBeDefined();
  });
});
