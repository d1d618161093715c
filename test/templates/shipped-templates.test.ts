/**
 * The templates confhub ships apply cleanly to the config.ini it ships: every key they set exists
 * there, and the values they make pass the schema, as the settings API would check them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHIPPED_CONFIG_DIR } from '../../src/bootstrap/shipped-defaults.js';
import { type IniDocument, parseIni } from '../../src/ini/document.js';
import { planChanges } from '../../src/settings/plan-changes.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { loadTemplates, SHIPPED_TEMPLATES_DIR } from '../../src/templates/template-catalog.js';
import { instantiateTemplate, type Template } from '../../src/templates/template-file.js';

const shippedConfig = parseIni(readFileSync(join(SHIPPED_CONFIG_DIR, 'config.ini'), 'utf8'));
const catalog = loadTemplates({ shippedDir: SHIPPED_TEMPLATES_DIR, customDir: join(SHIPPED_TEMPLATES_DIR, 'no-custom-dir') });

/** Values an administrator would give; every shipped template needs its entry here. */
const SAMPLES: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  'public-https': { domain: 'example.com', certificate: '/data/certs/example.com.crt', certificate_key: '/data/certs/example.com.key' },
  'local-only': {},
  'registry-mirror': { mirrors: ['https://mirror.example.com', 'https://mirror2.example.org/docker'] },
};

function shipped(name: string): Template {
  const template = catalog.templates.find((t) => t.name === name);
  if (!template) throw new Error(`no shipped template ${name}`);
  return template;
}

function apply({ doc, name, variables }: { doc: IniDocument; name: string; variables: Readonly<Record<string, unknown>> }): IniDocument {
  const result = instantiateTemplate({ template: shipped(name), variables });
  expect(result.unresolved).toEqual([]);
  expect(result.issues).toEqual([]);
  const planned = planChanges({ doc, inputs: result.changes, schema: CONFIG_SCHEMA });
  for (const change of result.changes) expect(planned.doc.byName.get(change.section)?.byKey.get(change.key)?.value).toBe(change.value);
  return planned.doc;
}

describe('the shipped templates', () => {
  it('when the catalogue is read, then every shipped template has a sample here and reads without a problem', () => {
    expect(catalog.problems).toEqual([]);
    expect(catalog.templates.map((t) => t.name)).toEqual(Object.keys(SAMPLES).sort());
  });

  it.each(Object.keys(SAMPLES))('when %s is applied with sample values to the shipped config.ini, then the settings API accepts every change', (name) => {
    apply({ doc: shippedConfig, name, variables: SAMPLES[name]! });
  });

  it('when public-https is applied, then the domain, both certificate files and the default HTTPS port are set', () => {
    const doc = apply({ doc: shippedConfig, name: 'public-https', variables: SAMPLES['public-https']! });
    const value = (section: string, key: string): string | undefined => doc.byName.get(section)?.byKey.get(key)?.value;
    expect([value('domain', 'wildcard_domain'), value('nginx_proxy_manager', 'listen_port')]).toEqual(['*.example.com', '443']);
    expect([value('nginx_proxy_manager', 'ssl_cert'), value('nginx_proxy_manager', 'ssl_key')]).toEqual([
      '/data/certs/example.com.crt',
      '/data/certs/example.com.key',
    ]);
  });

  it('when local-only follows public-https, then the domain and the certificate are cleared and the console binds to loopback on its port', () => {
    const https = apply({ doc: shippedConfig, name: 'public-https', variables: { ...SAMPLES['public-https'], https_port: 8443 } });
    const local = apply({ doc: https, name: 'local-only', variables: { console_port: '9081' } });
    const value = (section: string, key: string): string | undefined => local.byName.get(section)?.byKey.get(key)?.value;
    expect([value('domain', 'wildcard_domain'), value('nginx_proxy_manager', 'ssl_cert'), value('nginx_proxy_manager', 'ssl_key')]).toEqual(['', '', '']);
    expect([value('console', 'bind'), value('console', 'port'), value('nginx_proxy_manager', 'listen_port')]).toEqual(['127.0.0.1', '9081', '8443']);
  });

  it('when registry-mirror is given a comma-separated string, then it is stored as the list the settings API takes', () => {
    const doc = apply({ doc: shippedConfig, name: 'registry-mirror', variables: { mirrors: 'https://a.example, https://b.example' } });
    expect(doc.byName.get('docker_mirror')?.byKey.get('url')?.value).toBe('https://a.example, https://b.example');
  });

  it('when a value makes a setting the schema refuses, then planChanges refuses the changes, naming the key', () => {
    const result = instantiateTemplate({ template: shipped('public-https'), variables: { ...SAMPLES['public-https'], domain: '*.example.com' } });
    expect(result.issues).toEqual([]);
    expect(() => planChanges({ doc: shippedConfig, inputs: result.changes, schema: CONFIG_SCHEMA })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED', details: 'domain.wildcard_domain must be a domain name such as example.com' }),
    );
  });
});
