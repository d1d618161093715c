/**
 * Sync targets as system.ini declares them, parsed and validated once at start-up. A bad
 * declaration stops the start with a message naming the section and the key.
 *
 *   [target:gitea]
 *   sections = gitea, domain
 *   format = gitea
 *   output = /data/gitea/conf/app.ini
 *   write = auto
 *   mode = 0600
 *   reload = docker:restart:websoft9-git
 *   health = auto
 *
 * Global settings live in [sync].
 */
import { invalid } from './declaration-error.js';
import { parseEnvDeclarations, type EnvDeclarations } from './env-spec.js';
import { isEnvSection } from '../settings/env-sections.js';
import { dirname, isAbsolute, resolve } from 'node:path';
import { safeUrl } from '../core/safe-url.js';
import type { IniDocument, IniSection } from '../ini/document.js';
import { sectionNameProblem } from '../core/names.js';
import { nameSplits, parsePlaceholders, placeholderNames } from '../render/placeholders.js';
import { CONFIG_SCHEMA, isSensitive } from '../settings/schema.js';
import { isInside, outputProblem, rootsProblem, templateProblem, type OwnPath, type PathRules } from './path-rules.js';
import { hostPlaceholder } from './url-host.js';

export { invalid };

export const FORMATS = ['gitea', 'portainer', 'nginx_proxy_manager', 'cockpit', 'env', 'ini', 'json', 'yaml', 'template', 'supervisor_env'] as const;
export type FormatName = (typeof FORMATS)[number];
export const WRITE_MODES = ['rename', 'inplace', 'auto'] as const;
export type WriteMode = (typeof WRITE_MODES)[number];
export type FailurePolicy = 'rollback' | 'keep';

/** A container by name, or by label (compose generates names; labels are stable). */
export type ContainerRef = { readonly by: 'name'; readonly name: string } | { readonly by: 'label'; readonly label: string; readonly value?: string };

export type ReloadAction =
  | { readonly kind: 'none' }
  | { readonly kind: 'docker_restart'; readonly container: ContainerRef }
  | { readonly kind: 'docker_signal'; readonly signal: string; readonly container: ContainerRef }
  | { readonly kind: 'docker_exec'; readonly container: ContainerRef; readonly command: readonly string[] }
  /** The container made again with the environment of `envFile` (the target's `.env` output): Docker cannot change a running container's. */
  | { readonly kind: 'docker_recreate'; readonly container: ContainerRef; readonly envFile: string }
  | { readonly kind: 'supervisor_restart'; readonly program: string }
  /** supervisord reads its configuration again and replaces the program when its include file changed (`supervisorctl update PROG`). */
  | { readonly kind: 'supervisor_update'; readonly program: string }
  | { readonly kind: 'supervisor_signal'; readonly signal: string; readonly program: string }
  | ({ readonly kind: 'http'; readonly method: 'POST' } & HttpUrl);

/**
 * `windowMs`: how long the service must stay healthy (every look in a row good) after a reload;
 * default one second, at most half the timeout.
 */
export type HealthCheck =
  | { readonly kind: 'auto'; readonly windowMs?: number }
  | { readonly kind: 'none' }
  | ({ readonly kind: 'http'; readonly windowMs?: number } & HttpUrl);

/**
 * The URL of a reload hook or a health check. One that refers to config.ini values
 * (`{{ section.key }}`) is declared `templated`, with the template as `url`; the sync resolves it
 * for each revision (targets/target-urls.ts). `shown` is what messages and logs may show of it:
 * no userinfo, query or fragment, and no secret value.
 */
export interface HttpUrl {
  readonly url: string;
  readonly templated?: true;
  readonly shown?: string;
}

/**
 * `check` runs against the staged file before it replaces the live one (`{file}` is the staged
 * path); `check_installed` (and a `docker:exec` check) runs once the new file is in place, before
 * the reload (`{file}` is the output path).
 */
export type CheckCommand =
  | { readonly kind: 'exec'; readonly argv: readonly string[] }
  | { readonly kind: 'docker_exec'; readonly container: ContainerRef; readonly command: readonly string[] };

export interface TargetSpec {
  readonly name: string;
  /** config.ini sections the renderer reads, in the declared order. */
  readonly sections: readonly string[];
  readonly format: FormatName;
  /** Absolute path of the rendered file. */
  readonly output: string;
  readonly write: WriteMode;
  readonly mode: number;
  readonly reload: ReloadAction;
  readonly health: HealthCheck;
  readonly check?: CheckCommand;
  /** A command that checks the service's whole configuration with the new file in place (include files). */
  readonly checkInstalled?: CheckCommand;
  /** Absolute path of the template (format `template`). */
  readonly template?: string;
  readonly timeoutMs: number;
  readonly onFailure: FailurePolicy;
  /** The environment it delivers: `global` or a consumer name (env-spec.ts). */
  readonly env?: string;
  /**
   * `part_of`: the target whose bundle also carries this target's file, at its path relative to
   * that target's output directory (pull integration: one service, several files, one fetch).
   */
  readonly partOf?: string;
}

export interface SyncSettings {
  readonly dockerSocket: string;
  /** `unix:///path/to/supervisor.sock` or `http://[user:password@]host:port`. */
  readonly supervisorUrl: string;
  readonly debounceMinMs: number;
  readonly debounceMaxMs: number;
  /** Interval of the content-hash poll that backs up the file watcher. */
  readonly pollIntervalMs: number;
  readonly onFailure: FailurePolicy;
}

export interface SyncConfig {
  readonly settings: SyncSettings;
  readonly targets: readonly TargetSpec[];
  /** `[sync] output_roots` and `template_roots` (defaults applied), and confhub's own files. */
  readonly paths: PathRules;
  /** The consumers of environment variables and their mapped variables. */
  readonly env: EnvDeclarations;
}

export const DEFAULT_SYNC_SETTINGS: SyncSettings = Object.freeze({
  dockerSocket: '/var/run/docker.sock',
  supervisorUrl: 'unix:///run/confhub/supervisor.sock',
  debounceMinMs: 100,
  debounceMaxMs: 1000,
  pollIntervalMs: 2000,
  onFailure: 'rollback',
});

const TARGET_PREFIX = 'target:';
const TARGET_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const CONTAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,254}$/;
const PROGRAM_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;
/** A program an include file can name: `[program:NAME]`, not a group member. */
const SUPERVISOR_ENV_PROGRAM = /^[A-Za-z0-9_.-]{1,128}$/;
const SIGNAL = /^(SIG)?[A-Z0-9]{2,10}$/;
const TARGET_KEYS = new Set([
  'sections',
  'format',
  'output',
  'write',
  'mode',
  'reload',
  'health',
  'health_window',
  'check',
  'check_installed',
  'template',
  'timeout',
  'on_failure',
  'env',
  'part_of',
]);
const SYNC_KEYS = new Set([
  'docker_socket',
  'supervisor_url',
  'debounce_min_ms',
  'debounce_max_ms',
  'poll_interval_ms',
  'on_failure',
  'output_roots',
  'template_roots',
]);

export interface ParseSyncConfigInput {
  doc: IniDocument;
  /** Relative output paths are resolved against the data directory. */
  dataDir: string;
  /** Relative template paths are resolved against the config directory. */
  configDir: string;
  /** confhub's own files and directories (config.ini, the master key, the database…): no target may write them. */
  own: readonly OwnPath[];
  /** Where the reloaders are, from the environment; these win over system.ini [sync]. */
  overrides?: SyncOverrides;
}

export interface SyncOverrides {
  readonly dockerSocket?: string;
  readonly supervisorUrl?: string;
}

function container(section: string, key: string, text: string): ContainerRef {
  if (text.startsWith('label=')) {
    const [label = '', ...rest] = text.slice('label='.length).split('=');
    if (!LABEL_KEY.test(label)) throw invalid(section, key, `"${text}" is not label=KEY or label=KEY=VALUE`);
    return rest.length > 0 ? { by: 'label', label, value: rest.join('=') } : { by: 'label', label };
  }
  if (!CONTAINER_NAME.test(text)) throw invalid(section, key, `"${text}" is not a container name or label=KEY[=VALUE]`);
  return { by: 'name', name: text };
}

function signalName(section: string, key: string, text: string): string {
  const upper = text.toUpperCase();
  if (!SIGNAL.test(upper)) throw invalid(section, key, `"${text}" is not a signal name such as HUP`);
  return upper.startsWith('SIG') ? upper.slice(3) : upper;
}

function argv(section: string, key: string, text: string): string[] {
  // Split on whitespace, never through a shell: no quoting, no expansion.
  const words = text
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '');
  if (words.length === 0) throw invalid(section, key, 'the command is empty');
  return words;
}

/**
 * What may be shown of a URL template: the text without userinfo, query and fragment (a template
 * does not parse as a URL, and placeholder names hold none of `/?#@`).
 */
export function shownUrlTemplate(text: string): string {
  return text.replace(/^(https?:\/\/)[^/?#]*@/i, '$1').replace(/[?#][\s\S]*$/, '');
}

function httpUrl(section: string, key: string, text: string): HttpUrl {
  const parsed = parsePlaceholders(text);
  if (parsed.malformedLines.length > 0) throw invalid(section, key, '"{{" without a closing "}}" around a section.key name');
  const templated = placeholderNames(parsed).length > 0;
  // A stand-in that fits any part (host, port, path, query) checks the rest of a template as a URL;
  // a placeholder in the scheme makes it fail, so a value can never turn http into something else.
  const host = hostPlaceholder(parsed);
  const standIn = parsed.parts.map((part, i) => ('text' in part ? part.text : host?.bracketed && host.index === i ? '::1' : '1')).join('');
  let url: URL;
  try {
    url = new URL(standIn);
  } catch {
    throw invalid(section, key, `"${text}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(section, key, `"${text}" must be an http:// or https:// URL`);
  return templated ? { url: text, templated: true, shown: shownUrlTemplate(text) } : { url: url.toString() };
}

/**
 * A URL may only refer to the target's own sections: they are what a revision changes it by. Nor
 * to a secret: the URL is shown in results, logs and /services, and sent where proxies log it.
 */
function checkUrlReferences(at: { section: string; key: string }, url: HttpUrl, sections: readonly string[]): void {
  if (!url.templated) return;
  for (const name of placeholderNames(parsePlaceholders(url.url))) {
    const splits = nameSplits(name).filter((split) => sections.includes(split.section));
    if (splits.length === 0) throw invalid(at.section, at.key, `{{ ${name} }} names no section of sections (${sections.join(', ')})`);
    const secret = splits.find((split) => isSensitive(CONFIG_SCHEMA, split.section, split.key));
    if (secret) {
      throw invalid(at.section, at.key, `{{ ${name} }} refers to ${secret.section}.${secret.key}, a secret: a URL may only hold values that are not secret`);
    }
  }
}

/**
 * The reloads that deliver an environment need the target that holds it: a container is
 * recreated with the variables of the target's `.env` output, a supervisord program takes the
 * include file (`format = supervisor_env`) its target writes.
 */
function deliveryReload(
  { section, env, format, output }: { section: string; env: string | undefined; format: string; output: string },
  reload: ReloadAction,
): ReloadAction {
  if (reload.kind === 'docker_recreate') {
    if (env === undefined || format !== 'env')
      throw invalid(section, 'reload', 'docker:recreate delivers an environment: the target needs env = <scope> and format = env');
    return { ...reload, envFile: output };
  }
  if (reload.kind === 'supervisor_update' && (env === undefined || format !== 'supervisor_env')) {
    throw invalid(section, 'reload', 'supervisor:update delivers an environment: the target needs env = <scope> and format = supervisor_env');
  }
  if (format === 'supervisor_env' && reload.kind !== 'supervisor_update') {
    throw invalid(section, 'format', 'supervisor_env is the include file of a program: the target needs reload = supervisor:update:PROG and env = <scope>');
  }
  return reload;
}

export function parseReload(section: string, text: string): ReloadAction {
  const key = 'reload';
  if (text === '' || text === 'none') return { kind: 'none' };
  const [scheme, verb, ...rest] = text.split(':');
  if (scheme === 'docker') {
    if (verb === 'restart' && rest.length >= 1) return { kind: 'docker_restart', container: container(section, key, rest.join(':')) };
    if (verb === 'signal' && rest.length >= 2) {
      return { kind: 'docker_signal', signal: signalName(section, key, rest[0]!), container: container(section, key, rest.slice(1).join(':')) };
    }
    if (verb === 'exec' && rest.length >= 2) {
      return { kind: 'docker_exec', container: container(section, key, rest[0]!), command: argv(section, key, rest.slice(1).join(':')) };
    }
    // The env file is the target's output, set once the output is known.
    if (verb === 'recreate' && rest.length >= 1) return { kind: 'docker_recreate', container: container(section, key, rest.join(':')), envFile: '' };
  }
  if (scheme === 'supervisor') {
    if (verb === 'restart' && rest.length === 1 && PROGRAM_NAME.test(rest[0]!)) return { kind: 'supervisor_restart', program: rest[0]! };
    if (verb === 'update' && rest.length === 1 && SUPERVISOR_ENV_PROGRAM.test(rest[0]!)) return { kind: 'supervisor_update', program: rest[0]! };
    if (verb === 'signal' && rest.length === 2 && PROGRAM_NAME.test(rest[1]!)) {
      return { kind: 'supervisor_signal', signal: signalName(section, key, rest[0]!), program: rest[1]! };
    }
  }
  if (scheme === 'http' && verb === 'POST' && rest.length >= 1) return { kind: 'http', method: 'POST', ...httpUrl(section, key, rest.join(':')) };
  throw invalid(
    section,
    key,
    `"${text}" is not one of docker:restart:NAME, docker:signal:SIG:NAME, docker:exec:NAME:CMD, docker:recreate:NAME, supervisor:restart:PROG, supervisor:signal:SIG:PROG, supervisor:update:PROG, http:POST:URL, none`,
  );
}

function parseHealth(section: string, text: string): HealthCheck {
  if (text === '' || text === 'auto') return { kind: 'auto' };
  if (text === 'none') return { kind: 'none' };
  if (text.startsWith('http:')) {
    const rest = text.slice('http:'.length);
    if (rest.startsWith('http://') || rest.startsWith('https://')) return { kind: 'http', ...httpUrl(section, 'health', rest) };
  }
  throw invalid(section, 'health', `"${text}" is not auto, none or http:URL`);
}

function parseCheck(section: string, key: 'check' | 'check_installed', text: string): CheckCommand | undefined {
  if (text === '') return undefined;
  if (text.startsWith('docker:exec:')) {
    const [name = '', ...command] = text.slice('docker:exec:'.length).split(':');
    return { kind: 'docker_exec', container: container(section, key, name), command: argv(section, key, command.join(':')) };
  }
  const words = argv(section, key, text);
  if (!isAbsolute(words[0]!)) throw invalid(section, key, `the command must start with an absolute path, got "${words[0]}"`);
  return { kind: 'exec', argv: words };
}

/** The check that runs once the new file is in place: `check_installed`, or a `docker:exec` check. */
export function installedCheck(spec: TargetSpec): CheckCommand | undefined {
  return spec.checkInstalled ?? (spec.check?.kind === 'docker_exec' ? spec.check : undefined);
}

/** `health_window`: seconds with up to millisecond precision, shorter than the timeout. */
function healthWithWindow(section: string, health: HealthCheck, { text, timeoutMs }: { text: string | undefined; timeoutMs: number }): HealthCheck {
  if (text === undefined) return health;
  if (health.kind === 'none') throw invalid(section, 'health_window', 'has no effect with health = none');
  if (!/^\d{1,3}(\.\d{1,3})?$/.test(text)) throw invalid(section, 'health_window', `must be seconds such as 2 or 0.5, got "${text}"`);
  const windowMs = Math.round(Number(text) * 1000);
  if (windowMs >= timeoutMs) throw invalid(section, 'health_window', `must be shorter than timeout (${timeoutMs / 1000} s)`);
  return { ...health, windowMs };
}

function positiveInt(at: { section: string; key: string }, text: string, { min, max }: { min: number; max: number }): number {
  const { section, key } = at;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max)
    throw invalid(section, key, `must be a whole number from ${min} to ${max}, got "${text}"`);
  return Number(text);
}

function policy(section: string, text: string): FailurePolicy {
  if (text === 'rollback' || text === 'keep') return text;
  throw invalid(section, 'on_failure', `must be rollback or keep, got "${text}"`);
}

function values(section: IniSection, allowed: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of section.entries) {
    if (!allowed.has(entry.keyLower)) throw invalid(section.name, entry.key, `unknown key; expected one of ${[...allowed].join(', ')}`);
    out.set(entry.keyLower, entry.value);
  }
  return out;
}

/**
 * Why this cannot be supervisord's address; undefined when it can. For system.ini and the
 * environment alike. The value is not quoted: an http:// URL may carry a password.
 */
export function supervisorUrlProblem(url: string): string | undefined {
  return /^unix:\/\/\/./.test(url) || /^https?:\/\/./.test(url) ? undefined : 'must be unix:///path/to/supervisor.sock or http://host:port';
}

/** Why this cannot be the Docker socket; undefined when it can. */
export function dockerSocketProblem(path: string): string | undefined {
  return isAbsolute(path) ? undefined : `must be an absolute path, got "${path}"`;
}

function parseSyncSettings(doc: IniDocument, overrides: SyncOverrides): SyncSettings {
  const section = doc.byName.get('sync');
  const v = section ? values(section, SYNC_KEYS) : new Map<string, string>();
  if (overrides.dockerSocket !== undefined) v.set('docker_socket', overrides.dockerSocket);
  if (overrides.supervisorUrl !== undefined) v.set('supervisor_url', overrides.supervisorUrl);
  const debounceMinMs = v.has('debounce_min_ms')
    ? positiveInt({ section: 'sync', key: 'debounce_min_ms' }, v.get('debounce_min_ms')!, { min: 0, max: 60_000 })
    : DEFAULT_SYNC_SETTINGS.debounceMinMs;
  const debounceMaxMs = v.has('debounce_max_ms')
    ? positiveInt({ section: 'sync', key: 'debounce_max_ms' }, v.get('debounce_max_ms')!, { min: 1, max: 600_000 })
    : DEFAULT_SYNC_SETTINGS.debounceMaxMs;
  if (debounceMaxMs < debounceMinMs) throw invalid('sync', 'debounce_max_ms', `must not be below debounce_min_ms (${debounceMinMs})`);
  const supervisorUrl = v.get('supervisor_url') || DEFAULT_SYNC_SETTINGS.supervisorUrl;
  const urlProblem = supervisorUrlProblem(supervisorUrl);
  if (urlProblem) throw invalid('sync', 'supervisor_url', urlProblem);
  const dockerSocket = v.get('docker_socket') || DEFAULT_SYNC_SETTINGS.dockerSocket;
  const socketProblem = dockerSocketProblem(dockerSocket);
  if (socketProblem) throw invalid('sync', 'docker_socket', socketProblem);
  return Object.freeze({
    dockerSocket,
    supervisorUrl,
    debounceMinMs,
    debounceMaxMs,
    pollIntervalMs: v.has('poll_interval_ms')
      ? positiveInt({ section: 'sync', key: 'poll_interval_ms' }, v.get('poll_interval_ms')!, { min: 100, max: 3_600_000 })
      : DEFAULT_SYNC_SETTINGS.pollIntervalMs,
    onFailure: v.has('on_failure') ? policy('sync', v.get('on_failure')!) : DEFAULT_SYNC_SETTINGS.onFailure,
  });
}

/** Where confhub runs: what relative paths resolve against, and the files no target may write. */
export interface InstallationPaths {
  readonly dataDir: string;
  readonly configDir: string;
  readonly ownPaths: readonly OwnPath[];
  /** CONFHUB_DOCKER_SOCKET / CONFHUB_SUPERVISOR_URL. */
  readonly reloaders?: SyncOverrides;
}

/** system.ini's targets and [sync] for this installation (the server and every CLI command). */
export function syncConfigOf(doc: IniDocument, paths: InstallationPaths): SyncConfig {
  return parseSyncConfig({
    doc,
    dataDir: paths.dataDir,
    configDir: paths.configDir,
    own: paths.ownPaths,
    ...(paths.reloaders ? { overrides: paths.reloaders } : {}),
  });
}

/**
 * `[sync] output_roots` and `template_roots`: comma-separated absolute directories. By default
 * outputs stay in the data directory (the image's volume, where the shipped targets write
 * services/…) and templates in the config directory.
 */
function parsePathRules(doc: IniDocument, { dataDir, configDir, own }: { dataDir: string; configDir: string; own: readonly OwnPath[] }): PathRules {
  const section = doc.byName.get('sync');
  const roots = (key: string, fallback: string): readonly string[] => {
    const text = section?.byKey.get(key)?.value ?? '';
    if (text === '') return Object.freeze([fallback]);
    const items = text.split(',').map((item) => item.trim());
    const problem = rootsProblem(items);
    if (problem) throw invalid('sync', key, problem);
    return Object.freeze(items.map((item) => resolve(item)));
  };
  return Object.freeze({ outputRoots: roots('output_roots', dataDir), templateRoots: roots('template_roots', configDir), own: Object.freeze([...own]) });
}

export function parseSyncConfig({ doc, dataDir, configDir, own, overrides = {} }: ParseSyncConfigInput): SyncConfig {
  const settings = parseSyncSettings(doc, overrides);
  const paths = parsePathRules(doc, { dataDir, configDir, own });
  const targets: TargetSpec[] = [];
  const outputs = new Map<string, string>();
  const recreated = new Map<string, string>();
  for (const section of doc.sections) {
    if (!section.name.startsWith(TARGET_PREFIX)) continue;
    const name = section.name.slice(TARGET_PREFIX.length);
    if (!TARGET_NAME.test(name)) throw invalid(section.name, undefined, 'the target name must be 1-64 lowercase letters, digits, "_" or "-"');
    const v = values(section, TARGET_KEYS);
    const required = (key: string): string => {
      const value = v.get(key);
      if (value === undefined || value === '') throw invalid(section.name, key, 'is required');
      return value;
    };
    const env = v.get('env') || undefined;
    // A target that delivers an environment reads its variables, not sections.
    const sections =
      env !== undefined && !v.get('sections')
        ? []
        : required('sections')
            .split(',')
            .map((s) => s.trim());
    for (const s of sections) {
      const problem = s === '' ? 'an empty section name' : sectionNameProblem(s);
      if (problem) throw invalid(section.name, 'sections', problem);
    }
    const format = required('format');
    if (!(FORMATS as readonly string[]).includes(format)) throw invalid(section.name, 'format', `"${format}" is not one of ${FORMATS.join(', ')}`);
    if (env !== undefined && format !== 'env' && format !== 'supervisor_env') {
      throw invalid(section.name, 'env', `format ${format} does not deliver an environment; use format = env (a .env file) or supervisor_env`);
    }
    if (env !== undefined && v.get('sections')) throw invalid(section.name, 'sections', "a target with env delivers its consumer's variables, not sections");
    const envSection = sections.find((s) => isEnvSection(s));
    if (envSection) throw invalid(section.name, 'sections', `${envSection} holds environment variables; deliver them with env = <scope>`);
    const output = resolve(dataDir, required('output'));
    // Output paths travel in a bundle's MANIFEST, one per line, and busybox tar lists a link as `name -> target`.
    if (/\p{Cc}/u.test(output)) throw invalid(section.name, 'output', 'must not contain control characters');
    if (output.includes(' -> '))
      throw invalid(section.name, 'output', 'must not contain " -> " (the init script of services that pull their files takes it for a link)');
    const outputRefused = outputProblem(output, { roots: paths.outputRoots, own: paths.own });
    if (outputRefused) throw invalid(section.name, 'output', `${output} ${outputRefused}`);
    const other = outputs.get(output);
    if (other) throw invalid(section.name, 'output', `is also the output of [target:${other}]`);
    outputs.set(output, name);
    const write = v.get('write') || 'auto';
    if (!(WRITE_MODES as readonly string[]).includes(write)) throw invalid(section.name, 'write', `"${write}" is not one of ${WRITE_MODES.join(', ')}`);
    const modeText = v.get('mode') || '0600';
    if (!/^0?[0-7]{3}$/.test(modeText)) throw invalid(section.name, 'mode', `"${modeText}" is not an octal file mode such as 0600`);
    const templateText = v.get('template');
    if (format === 'template' && !templateText) throw invalid(section.name, 'template', 'is required with format = template');
    if (format !== 'template' && templateText) throw invalid(section.name, 'template', 'is only used with format = template');
    const template = templateText ? resolve(configDir, templateText) : undefined;
    const templateRefused = template === undefined ? undefined : templateProblem(template, { roots: paths.templateRoots, own: paths.own });
    if (templateRefused) throw invalid(section.name, 'template', `${template} ${templateRefused}`);
    const check = parseCheck(section.name, 'check', v.get('check') ?? '');
    const checkInstalled = parseCheck(section.name, 'check_installed', v.get('check_installed') ?? '');
    if (check?.kind === 'docker_exec' && checkInstalled) {
      throw invalid(section.name, 'check_installed', 'a docker:exec check already runs on the installed file; declare only one of the two');
    }
    const timeoutMs = (v.has('timeout') ? positiveInt({ section: section.name, key: 'timeout' }, v.get('timeout')!, { min: 1, max: 600 }) : 30) * 1000;
    const reload = deliveryReload({ section: section.name, env, format, output }, parseReload(section.name, v.get('reload') ?? ''));
    if (reload.kind === 'docker_recreate') {
      const other = recreated.get(reloadKey({ ...reload, envFile: '' }));
      if (other)
        throw invalid(
          section.name,
          'reload',
          `[target:${other}] already recreates ${containerRefText(reload.container)}; one target delivers a container's environment`,
        );
      recreated.set(reloadKey({ ...reload, envFile: '' }), name);
    }
    const partOf = v.get('part_of') || undefined;
    if (partOf !== undefined && !TARGET_NAME.test(partOf)) throw invalid(section.name, 'part_of', `"${partOf}" is not a target name`);
    const health = healthWithWindow(section.name, parseHealth(section.name, v.get('health') ?? ''), { text: v.get('health_window'), timeoutMs });
    if (reload.kind === 'http') checkUrlReferences({ section: section.name, key: 'reload' }, reload, sections);
    if (health.kind === 'http') checkUrlReferences({ section: section.name, key: 'health' }, health, sections);
    targets.push(
      Object.freeze({
        name,
        sections: Object.freeze(sections),
        format: format as FormatName,
        output,
        write: write as WriteMode,
        mode: parseInt(modeText, 8),
        reload,
        health,
        ...(check ? { check } : {}),
        ...(checkInstalled ? { checkInstalled } : {}),
        ...(template !== undefined ? { template } : {}),
        timeoutMs,
        onFailure: v.has('on_failure') ? policy(section.name, v.get('on_failure')!) : settings.onFailure,
        ...(env !== undefined ? { env } : {}),
        ...(partOf !== undefined ? { partOf } : {}),
      }),
    );
  }
  checkBundles(targets);
  const env = parseEnvDeclarations(doc, { targetConsumers: targets.flatMap((t) => (t.env === undefined ? [] : [t.env])) });
  return Object.freeze({ settings, targets: Object.freeze(targets), paths, env });
}

/**
 * A `part_of` names another target that is in no bundle but its own, and lies in that target's
 * output directory: a bundle's paths are relative to it, and a service that pulls installs them
 * under one directory.
 */
function checkBundles(targets: readonly TargetSpec[]): void {
  for (const part of targets) {
    if (part.partOf === undefined) continue;
    const section = `${TARGET_PREFIX}${part.name}`;
    if (part.partOf === part.name) throw invalid(section, 'part_of', 'names this target itself; a target is always in its own bundle');
    const owner = targets.find((t) => t.name === part.partOf);
    if (!owner) throw invalid(section, 'part_of', `names no target: there is no [target:${part.partOf}]`);
    if (owner.partOf !== undefined) throw invalid(section, 'part_of', `[target:${owner.name}] is itself part of [target:${owner.partOf}]; name that one`);
    if (!isInside(dirname(owner.output), part.output)) {
      throw invalid(section, 'output', `${part.output} is not inside ${dirname(owner.output)}, the directory of [target:${owner.name}]'s output (part_of)`);
    }
  }
}

/** The targets whose files make `name`'s bundle: itself first, then its parts in declared order. */
export function bundleTargets(targets: readonly TargetSpec[], name: string): TargetSpec[] {
  const owner = targets.find((t) => t.name === name);
  return owner ? [owner, ...targets.filter((t) => t.partOf === name)] : [];
}

/** A container reference as system.ini writes it. */
export function containerRefText(ref: ContainerRef): string {
  if (ref.by === 'name') return ref.name;
  return ref.value === undefined ? `label=${ref.label}` : `label=${ref.label}=${ref.value}`;
}

export function describeAction(action: ReloadAction): string {
  switch (action.kind) {
    case 'none':
      return 'none';
    case 'docker_restart':
      return `docker restart ${containerRefText(action.container)}`;
    case 'docker_signal':
      return `docker kill --signal ${action.signal} ${containerRefText(action.container)}`;
    case 'docker_exec':
      return `docker exec ${containerRefText(action.container)} ${action.command.join(' ')}`;
    case 'docker_recreate':
      return `docker recreate ${containerRefText(action.container)} with a new environment`;
    case 'supervisor_update':
      return `supervisorctl update ${action.program}`;
    case 'supervisor_restart':
      return `supervisorctl restart ${action.program}`;
    case 'supervisor_signal':
      return `supervisorctl signal ${action.signal} ${action.program}`;
    case 'http':
      return `${action.method} ${action.shown ?? safeUrl(action.url)}`;
  }
}

/**
 * Identity of a reload, so a service is reloaded once per revision even when several of its
 * targets changed. What a URL shows in messages is no part of it: two targets whose hooks resolve
 * to the same URL share one POST.
 */
export function reloadKey(action: ReloadAction): string {
  return action.kind === 'http' ? JSON.stringify({ kind: action.kind, method: action.method, url: action.url }) : JSON.stringify(action);
}
