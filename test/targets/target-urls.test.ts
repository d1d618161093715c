import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { parseIni } from '../../src/ini/document.js';
import { parseSyncConfig, type TargetSpec } from '../../src/targets/target-spec.js';
import { targetForDocument } from '../../src/targets/target-urls.js';

const base = { dataDir: '/srv/data', configDir: '/srv/data/config', own: [] };

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

  it('when a URL would carry a secret, then it is refused: at the declaration, and for a target built any other way before anything is sent', () => {
    expect(() => declare('reload = http:POST:http://127.0.0.1:81/hooks/{{ web.hook_token }}\n')).toThrow(
      'system.ini [target:web] reload: {{ web.hook_token }} refers to web.hook_token, a secret',
    );
    const spec: TargetSpec = {
      ...declare('health = http:http://127.0.0.1:{{ web.port }}/\n'),
      health: {
        kind: 'http',
        url: 'http://{{ web.user }}:{{ web.user_pwd }}@127.0.0.1:{{ web.port }}/',
        templated: true,
        shown: 'http://127.0.0.1:{{ web.port }}/',
      },
    };
    const error = failure(spec, '[web]\nuser = admin\nuser_pwd = p@ss w0rd!\nport = 81\n');
    expect(error.code).toBe('RENDER_FAILED');
    expect(error.details).toBe('target web: health URL http://127.0.0.1:{{ web.port }}/: web.user_pwd is a secret, which a URL may not hold');
    // What may be there is sent; messages show no userinfo and no query.
    const open = declare('reload = http:POST:http://{{ web.user }}@127.0.0.1:{{ web.port }}/hooks?site={{ web.name }}\n');
    expect(targetForDocument(open, parseIni('[web]\nuser = admin\nport = 81\nname = blog\n')).reload).toEqual({
      kind: 'http',
      method: 'POST',
      url: 'http://admin@127.0.0.1:81/hooks?site=blog',
      shown: 'http://127.0.0.1:81/hooks',
    });
  });

  it('when the host is an IPv6 address, then it is put in brackets, written with or without them, and in brackets the template writes', () => {
    const spec = declare('health = http:http://{{ web.host }}:{{ web.port }}/health\n');
    const at = (host: string): string => (targetForDocument(spec, parseIni(`[web]\nhost = ${host}\nport = 8080\n`)).health as { url: string }).url;
    expect(at('::1')).toBe('http://[::1]:8080/health');
    expect(at('[::1]')).toBe('http://[::1]:8080/health');
    expect(at('FE80:0:0:0:0:0:0:1')).toBe('http://[fe80::1]:8080/health');
    expect(at('::ffff:127.0.0.1')).toBe('http://[::ffff:7f00:1]:8080/health');
    // Names and IPv4 addresses as before.
    expect(at('127.0.0.1')).toBe('http://127.0.0.1:8080/health');
    expect(at('web.internal')).toBe('http://web.internal:8080/health');
    // With userinfo and without a port too.
    const bare = declare('reload = http:POST:http://{{ web.user }}@{{ web.host }}/reload\n');
    expect(targetForDocument(bare, parseIni('[web]\nuser = a\nhost = ::1\n')).reload).toMatchObject({
      url: 'http://a@[::1]/reload',
      shown: 'http://[::1]/reload',
    });
    const bracketed = declare('health = http:http://[{{ web.ip6 }}]:{{ web.port }}/\n');
    expect(targetForDocument(bracketed, parseIni('[web]\nip6 = 2001:db8::5\nport = 81\n')).health).toMatchObject({ url: 'http://[2001:db8::5]:81/' });
    // Only a value that is the whole host is read as one: elsewhere an address is one encoded value.
    const path = declare('health = http:http://127.0.0.1/peers/{{ web.host }}\n');
    expect(targetForDocument(path, parseIni('[web]\nhost = ::1\n')).health).toMatchObject({ url: 'http://127.0.0.1/peers/%3A%3A1' });
  });

  it('when a host value is an IPv6 address with a zone id, or no host at all, then the target fails naming the key, never the value, and no value reaches another host', () => {
    const spec = declare('health = http:http://{{ web.host }}:{{ web.port }}/\n');
    const problem = (host: string): string => failure(spec, `[web]\nhost = ${host}\nport = 8080\n`).details;
    const prefix = 'target web: health URL http://{{ web.host }}:{{ web.port }}/: ';
    const zone = `${prefix}web.host is an IPv6 address with a zone id ("%…"), which a URL cannot hold`;
    expect(problem('fe80::1%eth0')).toBe(zone);
    expect(problem('[fe80::1%25eth0]')).toBe(zone);
    for (const host of [
      '[::1]:9@evil.example',
      '::1]@evil.example',
      'evil.example:80',
      'evil.example/x',
      'a b',
      '[web.internal]',
      'fe80::1%eth0@evil.example',
    ]) {
      const details = problem(host);
      expect(details, host).toMatch(/web\.host (\((the host|in \[ \] as the host)\) is not|is an IPv6 address with a zone id)/);
      expect(details, host).not.toContain('evil');
    }
    const bracketed = declare('health = http:http://[{{ web.ip6 }}]/\n');
    expect(failure(bracketed, '[web]\nip6 = 127.0.0.1\n').details).toBe(
      'target web: health URL http://[{{ web.ip6 }}]/: web.ip6 (in [ ] as the host) is not an IPv6 address',
    );
  });
});
