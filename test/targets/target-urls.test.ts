import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { parseIni } from '../../src/ini/document.js';
import { parseSyncConfig, type TargetSpec } from '../../src/targets/target-spec.js';
import { targetForDocument } from '../../src/targets/target-urls.js';

const base = { dataDir: '/srv/data', configDir: '/srv/data/config', protectedPaths: ['/srv/data/config/config.ini', '/srv/data/config/system.ini'] };

function declare(keys: string): TargetSpec {
  const text = `[target:web]\nsections = web, web.admin\nformat = json\noutput = web.json\ntimeout = 10\n${keys}`;
  return parseSyncConfig({ ...base, doc: parseIni(text) }).targets[0]!;
}

function failure(spec: TargetSpec, config: string): AppError {
  try {
    targetForDocument(spec, parseIni(config));
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected an AppError');
}

describe('reload and health URLs for one revision of config.ini', () => {
  it('when the health URL refers to the port, then each revision is checked at its own port, and the window stays', () => {
    const spec = declare('health = http:http://127.0.0.1:{{ web.port }}/health\nhealth_window = 2\n');
    expect(targetForDocument(spec, parseIni('[web]\nport = 8081\n')).health).toEqual({
      kind: 'http',
      url: 'http://127.0.0.1:8081/health',
      shown: 'http://127.0.0.1:8081/health',
      windowMs: 2000,
    });
    // Keys match case-insensitively, as in templates; a dotted section name is found too.
    expect(targetForDocument(spec, parseIni('[web]\nPORT = 8082\n')).health).toMatchObject({ url: 'http://127.0.0.1:8082/health' });
    const dotted = declare('reload = http:POST:http://127.0.0.1:{{ web.admin.port }}/reload\n');
    expect(targetForDocument(dotted, parseIni('[web.admin]\nport = 9000\n')).reload).toEqual({
      kind: 'http',
      method: 'POST',
      url: 'http://127.0.0.1:9000/reload',
      shown: 'http://127.0.0.1:9000/reload',
    });
  });

  it('when a target has no templated URL, then it is returned as it is', () => {
    const spec = declare('health = http:http://127.0.0.1:8080/\nreload = http:POST:http://127.0.0.1:8080/reload\n');
    expect(targetForDocument(spec, parseIni('[web]\nport = 1\n'))).toBe(spec);
  });

  it('when a referenced key is missing, then the target fails with RENDER_FAILED naming it; never an "undefined" in a URL', () => {
    const spec = declare('health = http:http://127.0.0.1:{{ web.port }}/\n');
    const error = failure(spec, '[web]\nhost = example\n');
    expect(error.code).toBe('RENDER_FAILED');
    expect(error.details).toBe('target web: health URL http://127.0.0.1:{{ web.port }}/: unknown placeholders web.port');
    // A section the target does not declare is not looked at, even when config.ini has it.
    expect(failure(spec, '[other]\nport = 80\n').details).toContain('unknown placeholders web.port');
  });

  it('when a value would move the request to another host, then it is percent-encoded and cannot: a bad port fails, a path value stays in its segment', () => {
    const spec = declare('health = http:http://127.0.0.1:{{ web.port }}/{{ web.path }}\n');
    const error = failure(spec, '[web]\nport = 80@evil.example\npath = x\n');
    expect(error.code).toBe('RENDER_FAILED');
    expect(error.details).toBe(
      'target web: health URL http://127.0.0.1:{{ web.port }}/{{ web.path }}: the values of web.port, web.path do not make a valid URL',
    );
    expect(error.details).not.toContain('evil');
    const resolved = targetForDocument(spec, parseIni('[web]\nport = 81\npath = a/../b?c#d\n')).health;
    expect(resolved).toMatchObject({ url: 'http://127.0.0.1:81/a%2F..%2Fb%3Fc%23d' });
    expect(new URL((resolved as { url: string }).url).host).toBe('127.0.0.1:81');
  });

  it('when a URL carries a secret, then it is sent but what messages show has no userinfo, no query and no secret value', () => {
    const spec = declare(
      'reload = http:POST:http://{{ web.user }}:{{ web.user_pwd }}@127.0.0.1:{{ web.port }}/hooks/{{ web.hook_token }}?key={{ web.api_key }}\n',
    );
    const resolved = targetForDocument(
      spec,
      parseIni('[web]\nuser = admin\nuser_pwd = p@ss w0rd!\nport = 81\nhook_token = t0ps3cr3t\napi_key = k3yk3yk3y\n'),
    ).reload;
    expect(resolved).toEqual({
      kind: 'http',
      method: 'POST',
      url: 'http://admin:p%40ss%20w0rd!@127.0.0.1:81/hooks/t0ps3cr3t?key=k3yk3yk3y',
      shown: 'http://127.0.0.1:81/hooks/******',
    });
    const missing = failure(spec, '[web]\nuser = admin\nuser_pwd = p@ss w0rd!\nport = 81\n');
    expect(JSON.stringify({ m: missing.message, d: missing.details })).not.toMatch(/p@ss|w0rd/);
  });
});
