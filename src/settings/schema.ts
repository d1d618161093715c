/**
 * What config.ini and system.ini may hold. Sections and keys declared here are known even when
 * the file lacks them (an update may add them); keys the file has beyond these are kept and
 * treated as free text.
 */
import type { FieldKind } from './field-kinds.js';
import { isEnvSection, isSensitiveEnvKey } from './env-sections.js';
import { baseSectionOf } from './overlays.js';

export interface FieldSpec {
  readonly kind: FieldKind;
  readonly description: string;
  /** An empty value is valid (e.g. optional paths, secrets that first start fills in). */
  readonly allowEmpty: boolean;
  /** Masked in audit rows, logs and errors. */
  readonly sensitive: boolean;
  /** Values may span lines; declared keys are single-line unless they say so. */
  readonly multiline: boolean;
  /** Credential strength applies; the named key of the same section is the user name. */
  readonly password?: { readonly userKey: string };
}

export interface SectionSpec {
  readonly description: string;
  readonly fields: ReadonlyMap<string, FieldSpec>;
}

export type FileSchema = ReadonlyMap<string, SectionSpec>;

type FieldInput = Omit<FieldSpec, 'allowEmpty' | 'sensitive' | 'multiline'> & Partial<Pick<FieldSpec, 'allowEmpty' | 'sensitive' | 'multiline'>>;

function field(kind: FieldKind, description: string, extra: Partial<FieldInput> = {}): FieldSpec {
  const sensitive = kind === 'secret' || kind === 'api_key';
  return Object.freeze({ kind, description, allowEmpty: false, sensitive, multiline: false, ...extra });
}

function section(description: string, fields: Record<string, FieldSpec>): SectionSpec {
  return Object.freeze({ description, fields: new Map(Object.entries(fields)) });
}

const password = (service: string): FieldSpec =>
  field('secret', `${service} administrator password (filled with a random value on first start)`, {
    allowEmpty: true,
    password: { userKey: 'user_name' },
  });

export const CONFIG_SCHEMA: FileSchema = new Map([
  [
    'nginx_proxy_manager',
    section('Nginx Proxy Manager: the reverse proxy in front of the console and the apps', {
      base_url: field('http_url', 'Nginx Proxy Manager API base URL'),
      user_name: field('email', 'Nginx Proxy Manager administrator login (an email address)'),
      user_pwd: password('Nginx Proxy Manager'),
      nike_name: field('text', 'Nginx Proxy Manager administrator nickname'),
      listen_port: field('port', 'Port the console is published on through the proxy'),
      docker0_ip: field('ipv4', 'Address of the docker0 bridge as seen from the proxy'),
      ssl_cert: field('abs_path', 'Certificate file of the console (empty: none)', { allowEmpty: true }),
      ssl_key: field('abs_path', 'Private key file of the console certificate (empty: none)', { allowEmpty: true }),
    }),
  ],
  [
    'gitea',
    section('Gitea: the repository service of the app store', {
      base_url: field('http_url', 'Gitea API base URL'),
      user_name: field('text', 'Gitea administrator user name'),
      user_email: field('email', 'Gitea administrator email'),
      user_pwd: password('Gitea'),
    }),
  ],
  [
    'portainer',
    section('Portainer: the container deployment service', {
      base_url: field('http_url', 'Portainer API base URL'),
      user_name: field('text', 'Portainer administrator user name'),
      user_pwd: password('Portainer'),
    }),
  ],
  ['api_key', section('The key clients send in the x-api-key header', { key: field('api_key', 'API key (generated on first start)', { allowEmpty: true }) })],
  [
    'docker_mirror',
    section('Docker registry mirrors', { url: field('url_list', 'Registry mirror URLs, comma separated (empty: none)', { allowEmpty: true }) }),
  ],
  [
    'domain',
    section('Domain names of the apps', {
      wildcard_domain: field('hostname', 'Wildcard domain the apps are published under (empty: none)', { allowEmpty: true }),
    }),
  ],
  ['cockpit', section('Cockpit: the host administration console', { port: field('port', 'Cockpit web service port') })],
  ['initial_apps', section('Apps installed on first start', { keys: field('name_list', 'App names, comma separated', { allowEmpty: true }) })],
  ['favorite_apps', section('Apps pinned in the console', { keys: field('name_list', 'App names, comma separated', { allowEmpty: true }) })],
  [
    'console',
    section('The console program of the container: a status page that passes /api/ to confhub (restarted through supervisord on change)', {
      title: field('text', 'Title of the console page'),
      bind: field('ipv4', 'Address the console listens on (0.0.0.0: every interface)'),
      port: field('port', 'Port the console listens on'),
    }),
  ],
]);

export const SYSTEM_SCHEMA: FileSchema = new Map([
  ['docker_library', section('Library of app templates', { path: field('abs_path', 'Directory of the app templates') })],
  ['app_media', section('App media', { path: field('abs_path', 'Directory of the app media files') })],
]);

const SENSITIVE_NAME = /(pwd|pass|secret|token|credential|private|(^|_)key$)/i;

/** Sensitivity by schema, or by name for keys the schema does not declare. */
export function isSensitive(schema: FileSchema, sectionName: string, key: string): boolean {
  if (isEnvSection(sectionName)) return isSensitiveEnvKey(sectionName, key);
  // An environment's overlay holds the same secrets as its section.
  const base = baseSectionOf(sectionName);
  const spec = schema.get(base)?.fields.get(key.toLowerCase());
  if (spec) return spec.sensitive;
  return SENSITIVE_NAME.test(key) || base === 'api_key';
}
