/**
 * Where confhub keeps its data and how it listens, from the environment. Loaded once at start-up,
 * validated, frozen; a bad value stops the start with a message naming the variable.
 */
import { isAbsolute, resolve } from 'node:path';
import { lockAddress } from './bootstrap/instance-lock.js';
import { AppError } from './core/errors.js';
import { nextKeyPath, retiredKeysPath, type MasterKeySource } from './secrets/master-key.js';
import { FIELD_KINDS, publicApiKeyProblem } from './settings/field-kinds.js';
import { environmentNameProblem } from './settings/overlays.js';
import type { OwnPath } from './targets/path-rules.js';
import { dockerSocketProblem, supervisorUrlProblem, type SyncOverrides } from './targets/target-spec.js';

export interface RuntimeConfig {
  readonly dataDir: string;
  readonly configDir: string;
  readonly configPath: string;
  readonly systemPath: string;
  readonly databasePath: string;
  /** The git dir of config.ini's history. */
  readonly historyDir: string;
  /** Which keys of the shipped config.ini template this installation has seen. */
  readonly templateRecordPath: string;
  /** Every file and directory confhub keeps for itself: no target may write them. */
  readonly ownPaths: readonly OwnPath[];
  /** Where the master key comes from (CONFHUB_MASTER_KEY, CONFHUB_MASTER_KEY_FILE or the data directory). */
  readonly masterKey: MasterKeySource;
  readonly host: string;
  /** 0 asks the OS for a free port (tests). */
  readonly port: number;
  /** Used as the API key on first start instead of a random one. */
  readonly initialApiKey: string | undefined;
  /** Requests per minute per client address; 0 turns limiting off. */
  readonly rateLimitPerMinute: number;
  /** Failed authentications per 15 minutes per client address before 429; 0 turns it off. */
  readonly authFailuresPer15Min: number;
  readonly logLevel: string;
  /** `pretty` (lines for people), `json`, or `auto`: pretty when stdout is a terminal. */
  readonly logFormat: 'json' | 'pretty' | 'auto';
  /** Express "trust proxy" setting: false, or a hop count / address list. */
  readonly trustProxy: boolean | number | string;
  readonly bodyLimitBytes: number;
  /** CONFHUB_DOCKER_SOCKET and CONFHUB_SUPERVISOR_URL: where the reloaders are, over system.ini [sync]. */
  readonly reloaders: SyncOverrides;
  /** How long a shutdown waits for the write or apply in flight (under docker stop's 10 s grace). */
  readonly stopTimeoutMs: number;
  /** CONFHUB_ENVIRONMENT: the overlays `[section@NAME]` of config.ini that apply; undefined: none. */
  readonly environment?: string;
}

export const DEFAULT_RATE_LIMIT = 1200;
export const DEFAULT_AUTH_FAILURE_LIMIT = 20;
/**
 * Every environment variable confhub reads: `confhub serve --help` prints this table, a test holds
 * README's environment table to it (both ways), and loadRuntimeConfig can read no other name.
 */
export const ENVIRONMENT = [
  { name: 'CONFHUB_DATA_DIR', default: './data', meaning: 'everything confhub writes (database, history, master key, config directory)' },
  { name: 'CONFHUB_CONFIG_DIR', default: '$CONFHUB_DATA_DIR/config', meaning: 'holds config.ini and system.ini; a missing file is installed from config/' },
  { name: 'CONFHUB_HOST', default: '127.0.0.1', meaning: 'address the API listens on' },
  { name: 'CONFHUB_PORT', default: '8080', meaning: 'port the API listens on (0: any free port)' },
  {
    name: 'CONFHUB_MASTER_KEY_FILE',
    default: '$CONFHUB_DATA_DIR/master.key',
    meaning: 'the master key that seals secrets; the default file is created on first start',
  },
  { name: 'CONFHUB_MASTER_KEY', default: '—', meaning: 'the master key itself (hex or base64) instead of a file' },
  { name: 'CONFHUB_API_KEY', default: '—', meaning: 'the API key of the first start instead of a random one' },
  { name: 'CONFHUB_RATE_LIMIT', default: String(DEFAULT_RATE_LIMIT), meaning: 'requests per minute per client address on /api; 0: no limit' },
  {
    name: 'CONFHUB_AUTH_FAILURE_LIMIT',
    default: String(DEFAULT_AUTH_FAILURE_LIMIT),
    meaning: 'failed authentications per 15 minutes per client address before 429; 0: off',
  },
  { name: 'CONFHUB_LOG_LEVEL', default: 'info', meaning: 'fatal, error, warn, info, debug, trace or silent' },
  { name: 'CONFHUB_LOG_FORMAT', default: 'auto', meaning: 'json, pretty, or auto (pretty on a terminal, else json)' },
  { name: 'CONFHUB_TRUST_PROXY', default: 'off', meaning: 'Express trust proxy (true, a hop count, or addresses) behind a reverse proxy' },
  { name: 'CONFHUB_BODY_LIMIT', default: '65536', meaning: 'largest JSON body in bytes' },
  { name: 'CONFHUB_DOCKER_SOCKET', default: '[sync] docker_socket of system.ini', meaning: 'the Docker Engine socket; wins over system.ini' },
  { name: 'CONFHUB_SUPERVISOR_URL', default: '[sync] supervisor_url of system.ini', meaning: "supervisord's XML-RPC URL; wins over system.ini" },
  { name: 'CONFHUB_STOP_TIMEOUT_MS', default: '5000', meaning: 'on SIGTERM, how long the write or apply in flight may take before the worker is ended' },
  { name: 'CONFHUB_ENVIRONMENT', default: '—', meaning: 'the environment confhub runs in: the overlays [section@NAME] of config.ini apply' },
] as const;

export type EnvironmentName = (typeof ENVIRONMENT)[number]['name'];

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function fail(name: string, problem: string): never {
  throw new AppError('STARTUP_CONFIG_INVALID', { message: `${name} ${problem}` });
}

type Read = (name: EnvironmentName) => string | undefined;

function integer(read: Read, name: EnvironmentName, { fallback, min, max }: { fallback: number; min: number; max: number }): number {
  const raw = read(name);
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) fail(name, `must be a whole number from ${min} to ${max}, got "${raw}"`);
  const value = Number(raw.trim());
  if (value < min || value > max) fail(name, `must be a whole number from ${min} to ${max}, got "${raw}"`);
  return value;
}

function trustProxy(raw: string | undefined): boolean | number | string {
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw;
}

function ownPathsOf(at: {
  dataDir: string;
  configDir: string;
  databasePath: string;
  historyDir: string;
  templateRecordPath: string;
  masterKeyFile: string;
}): readonly OwnPath[] {
  const lock = lockAddress(at.dataDir);
  const own: OwnPath[] = [
    { path: at.dataDir, what: 'the data directory' },
    { path: resolve(at.configDir, 'config.ini'), what: 'config.ini' },
    { path: resolve(at.configDir, 'system.ini'), what: 'system.ini' },
    { path: at.configDir, what: 'the config directory', tree: true, templates: true },
    { path: at.masterKeyFile, what: 'the master key' },
    { path: retiredKeysPath(at.masterKeyFile), what: 'the retired master keys' },
    { path: nextKeyPath(at.masterKeyFile), what: 'the master key of a rotation' },
    { path: at.databasePath, what: 'the database' },
    // SQLite's companions: the write-ahead log, its index and the rollback journal.
    ...['-wal', '-shm', '-journal'].map((suffix) => ({ path: `${at.databasePath}${suffix}`, what: 'the database' })),
    { path: at.historyDir, what: 'the history repository', tree: true },
    { path: at.templateRecordPath, what: 'the record of the shipped template' },
    ...(lock.file ? [{ path: lock.path, what: 'the instance lock' }] : []),
  ];
  return Object.freeze(own.map((o) => Object.freeze(o)));
}

export function loadRuntimeConfig(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): RuntimeConfig {
  const path = (raw: string): string => (isAbsolute(raw) ? raw : resolve(cwd, raw));
  const read: Read = (name) => env[name];
  const dataDir = path(read('CONFHUB_DATA_DIR') || './data');
  const configDirRaw = read('CONFHUB_CONFIG_DIR');
  const configDir = configDirRaw ? path(configDirRaw) : resolve(dataDir, 'config');
  const initialApiKey = read('CONFHUB_API_KEY') || undefined;
  if (initialApiKey !== undefined) {
    const problem = FIELD_KINDS.api_key.check(initialApiKey) ?? publicApiKeyProblem(initialApiKey);
    if (problem) fail('CONFHUB_API_KEY', problem);
  }
  const logLevel = (read('CONFHUB_LOG_LEVEL') || 'info').toLowerCase();
  if (!LOG_LEVELS.has(logLevel)) fail('CONFHUB_LOG_LEVEL', `must be one of ${[...LOG_LEVELS].join(', ')}, got "${read('CONFHUB_LOG_LEVEL')}"`);
  const logFormat = (read('CONFHUB_LOG_FORMAT') || 'auto').toLowerCase();
  if (logFormat !== 'json' && logFormat !== 'pretty' && logFormat !== 'auto')
    fail('CONFHUB_LOG_FORMAT', `must be json, pretty or auto, got "${read('CONFHUB_LOG_FORMAT')}"`);
  const envKey = read('CONFHUB_MASTER_KEY') || undefined;
  const keyFile = read('CONFHUB_MASTER_KEY_FILE') || undefined;
  if (envKey !== undefined && keyFile !== undefined) fail('CONFHUB_MASTER_KEY', 'and CONFHUB_MASTER_KEY_FILE are both set; set one');
  const masterKeyFile = keyFile !== undefined ? path(keyFile) : resolve(dataDir, 'master.key');
  const masterKey: MasterKeySource = Object.freeze({
    ...(envKey !== undefined ? { envKey } : {}),
    file: masterKeyFile,
    createFile: keyFile === undefined,
    whenMissing:
      keyFile === undefined
        ? 'confhub has not set up this data directory yet: run confhub once (or start confhub), or put master.key back from a backup'
        : `create it (32 random bytes: umask 077; head -c 32 /dev/urandom > ${masterKeyFile}), or unset CONFHUB_MASTER_KEY_FILE to use master.key in the data directory, generated on first start`,
  });
  // Checked here as system.ini's are, so a bad value is refused naming the variable.
  const dockerSocket = read('CONFHUB_DOCKER_SOCKET') || undefined;
  const socketProblem = dockerSocket === undefined ? undefined : dockerSocketProblem(dockerSocket);
  if (socketProblem) fail('CONFHUB_DOCKER_SOCKET', socketProblem);
  const supervisorUrl = read('CONFHUB_SUPERVISOR_URL') || undefined;
  const urlProblem = supervisorUrl === undefined ? undefined : supervisorUrlProblem(supervisorUrl);
  if (urlProblem) fail('CONFHUB_SUPERVISOR_URL', urlProblem);
  const databasePath = resolve(dataDir, 'confhub.db');
  const historyDir = resolve(dataDir, 'history.git');
  const templateRecordPath = resolve(dataDir, 'shipped-template.json');
  const environment = read('CONFHUB_ENVIRONMENT') || undefined;
  const environmentProblem = environment === undefined ? undefined : environmentNameProblem(environment);
  if (environmentProblem) fail('CONFHUB_ENVIRONMENT', `${environmentProblem}, got "${environment!.slice(0, 40)}"`);
  const host = read('CONFHUB_HOST') || '127.0.0.1';
  if (/\s/.test(host)) fail('CONFHUB_HOST', `must be an address or host name, got "${host}"`);
  return Object.freeze({
    dataDir,
    configDir,
    configPath: resolve(configDir, 'config.ini'),
    systemPath: resolve(configDir, 'system.ini'),
    databasePath,
    historyDir,
    templateRecordPath,
    ownPaths: ownPathsOf({ dataDir, configDir, databasePath, historyDir, templateRecordPath, masterKeyFile: masterKey.file }),
    masterKey,
    host,
    port: integer(read, 'CONFHUB_PORT', { fallback: 8080, min: 0, max: 65535 }),
    initialApiKey,
    rateLimitPerMinute: integer(read, 'CONFHUB_RATE_LIMIT', { fallback: DEFAULT_RATE_LIMIT, min: 0, max: 10_000_000 }),
    authFailuresPer15Min: integer(read, 'CONFHUB_AUTH_FAILURE_LIMIT', { fallback: DEFAULT_AUTH_FAILURE_LIMIT, min: 0, max: 10_000_000 }),
    logLevel,
    logFormat,
    trustProxy: trustProxy(read('CONFHUB_TRUST_PROXY')),
    bodyLimitBytes: integer(read, 'CONFHUB_BODY_LIMIT', { fallback: 64 * 1024, min: 1024, max: 16 * 1024 * 1024 }),
    reloaders: Object.freeze({ ...(dockerSocket !== undefined ? { dockerSocket } : {}), ...(supervisorUrl !== undefined ? { supervisorUrl } : {}) }),
    stopTimeoutMs: integer(read, 'CONFHUB_STOP_TIMEOUT_MS', { fallback: 5000, min: 100, max: 3_600_000 }),
    ...(environment !== undefined ? { environment } : {}),
  });
}
