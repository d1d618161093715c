/**
 * Service connection tests: is each service confhub configures reachable right now?
 *
 * The services are the sync targets of system.ini (their container, supervisord program and HTTP
 * health URL) and the service URLs of config.ini (`base_url` and `*_url` keys). Every probe has
 * its own timeout and every failure becomes part of the result, never an exception: an
 * unreachable Docker engine is something to report, not a reason for the API to fail.
 *
 * Results are cached. list() answers from the cache at once and starts one background refresh
 * when something is stale; test() checks one service now. Both share the checks in flight, so a
 * service is never probed twice at the same time, however many callers ask.
 */
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock.js';
import { withDeadline } from '../core/deadline.js';
import { AppError, isAppError, type ErrorCode } from '../core/errors.js';
import type { IniDocument } from '../ini/document.js';
import type { DockerDriver } from '../reload/docker.js';
import { safeUrl } from '../core/safe-url.js';
import type { SupervisorDriver } from '../reload/supervisor.js';
import { printable } from '../core/names.js';
import { CONFIG_SCHEMA, isSensitive } from '../settings/schema.js';
import { containerRefText, installedCheck, type ContainerRef, type TargetSpec } from '../targets/target-spec.js';
import { targetForDocument } from '../targets/target-urls.js';
import { scrubUrlSecrets, type HttpProbe } from './http-probe.js';

export type ServiceKind = 'target' | 'url';

/** What one probe looks at. Raw URLs stay in here; results only carry safeUrl(). */
export type ProbeSpec =
  | { readonly kind: 'container'; readonly container: ContainerRef }
  | { readonly kind: 'supervisor'; readonly program: string }
  | {
      readonly kind: 'http';
      readonly url: string;
      /** `health` for a target's health URL, `section.key` for a config.ini URL. */
      readonly source: string;
      /** What results show of the URL when safeUrl() would not do (a templated URL's own, no secret values). */
      readonly shown?: string;
      /**
       * A health URL must answer 2xx (as the sync's health check requires). A base URL is an API
       * root that may well answer 401 or 404: any answer below 500 means the service is there.
       */
      readonly expect: '2xx' | 'below_500';
    };

export interface ServiceDefinition {
  readonly name: string;
  readonly kind: ServiceKind;
  readonly probes: readonly ProbeSpec[];
}

export interface CheckError {
  readonly code: ErrorCode;
  /** Safe to show: no credentials, no query strings. */
  readonly message: string;
}

interface CheckBase {
  readonly ok: boolean;
  readonly latencyMs: number;
  /** ISO 8601, when the probe finished. */
  readonly checkedAt: string;
  readonly error?: CheckError;
}

export type ContainerHealthName = 'healthy' | 'unhealthy' | 'starting' | 'none';

export interface ContainerCheck extends CheckBase {
  readonly kind: 'container';
  /** The container as system.ini names it (`websoft9-git`, `label=com.docker.compose.service=git`). */
  readonly container: string;
  /** Docker's State.Status (running, exited, …), or `absent`; missing when Docker did not answer. */
  readonly state?: string;
  readonly health?: ContainerHealthName;
}

export interface SupervisorCheck extends CheckBase {
  readonly kind: 'supervisor';
  readonly program: string;
  /** supervisord's state name (RUNNING, STOPPED, FATAL, …); missing when supervisord did not answer. */
  readonly state?: string;
}

export interface HttpCheck extends CheckBase {
  readonly kind: 'http';
  /** safeUrl(): no userinfo, no query, no fragment. */
  readonly url: string;
  readonly source: string;
  /** The HTTP status; missing when nothing answered. */
  readonly status?: number;
}

export type ConnectionCheck = ContainerCheck | SupervisorCheck | HttpCheck;

export interface ServiceStatus {
  readonly name: string;
  readonly kind: ServiceKind;
  /** Every check passed; null when never checked or when there is nothing to check. */
  readonly ok: boolean | null;
  /** Never checked, checked with a different declaration, or older than the cache age. */
  readonly stale: boolean;
  readonly checkedAt: string | null;
  readonly checks: readonly ConnectionCheck[];
}

export interface ServiceList {
  readonly services: readonly ServiceStatus[];
  /** The oldest result in the list; null while any service has never been checked. */
  readonly checkedAt: string | null;
  /** A background refresh is running; a later list() shows its results. */
  readonly refreshing: boolean;
}

export interface ConnectionChecks {
  /** The cached results, at once; starts a background refresh of the stale ones. */
  list(): ServiceList;
  /** Checks one service now. INVALID_NAME for a name no service can have, SERVICE_NOT_FOUND for an unknown one. */
  test(name: string): Promise<ServiceStatus>;
  /** Resolves when no check is running (shutdown, tests). */
  idle(): Promise<void>;
}

export interface CreateConnectionChecksInput {
  readonly targets: readonly TargetSpec[];
  /** config.ini as it is now (the last good version when it is broken); read on every call, so edits show up. */
  readonly configDoc: () => IniDocument | undefined;
  readonly docker: Pick<DockerDriver, 'inspectState'>;
  readonly supervisor: Pick<SupervisorDriver, 'processInfo'>;
  readonly http: HttpProbe;
  readonly logger: Logger;
  /** Budget of one probe. */
  readonly timeoutMs?: number;
  /** Results older than this are stale and refreshed by the next list(). */
  readonly maxAgeMs?: number;
  /** Ages the cache, measures latencies and times the outer deadline; default the system clock. */
  readonly clock?: Clock;
}

export const DEFAULT_PROBE_TIMEOUT_MS = 3000;
export const DEFAULT_MAX_AGE_MS = 10_000;
/**
 * The drivers enforce the timeout themselves and say more about what timed out; this outer
 * deadline only catches a probe that does not, so it fires a little later.
 */
export const DEADLINE_GRACE_MS = 250;

/** Target names and config.ini section names both fit in this. */
const SERVICE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/;
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

export function serviceNameProblem(name: string): string | undefined {
  if (FORBIDDEN.has(name.toLowerCase()) || !SERVICE_NAME.test(name)) {
    return `Service name "${printable(name)}" must be 1-64 letters, digits, "_", ".", ":" or "-"`;
  }
  return undefined;
}

/**
 * A config.ini key that names a service URL. Keys whose names say they hold a secret
 * (`token_url`, `secret_url`) are not probed: their URL is the secret, and results show paths.
 */
function isUrlKey(sectionName: string, keyLower: string): boolean {
  return (keyLower === 'base_url' || keyLower.endsWith('_url')) && !isSensitive(CONFIG_SCHEMA, sectionName, keyLower);
}

function httpUrlOf(value: string): string | undefined {
  // The URL parser silently drops tabs and newlines; a multi-line value is not a URL.
  if (value === '' || /\s/.test(value)) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The health URL as config.ini fills it in now; undefined when it cannot (the sync reports why). */
function healthNow(target: TargetSpec, configDoc: IniDocument | undefined): TargetSpec['health'] | undefined {
  if (target.health.kind !== 'http' || !target.health.templated) return target.health;
  if (!configDoc) return undefined;
  try {
    return targetForDocument(target, configDoc).health;
  } catch {
    return undefined;
  }
}

function targetProbes(target: TargetSpec, configDoc: IniDocument | undefined): ProbeSpec[] {
  const probes: ProbeSpec[] = [];
  const containers = new Map<string, ContainerRef>();
  const { reload } = target;
  const check = installedCheck(target);
  const health = healthNow(target, configDoc);
  if (reload.kind === 'docker_restart' || reload.kind === 'docker_signal' || reload.kind === 'docker_exec')
    containers.set(containerRefText(reload.container), reload.container);
  // The check runs in that container before every reload: a sync needs it as much as the reload.
  if (check?.kind === 'docker_exec') containers.set(containerRefText(check.container), check.container);
  for (const container of containers.values()) probes.push({ kind: 'container', container });
  if (reload.kind === 'supervisor_restart' || reload.kind === 'supervisor_signal') probes.push({ kind: 'supervisor', program: reload.program });
  // An http:POST reload hook is not probed: calling it would reload the service.
  if (health?.kind === 'http')
    probes.push({ kind: 'http', url: health.url, source: 'health', expect: '2xx', ...(health.shown ? { shown: health.shown } : {}) });
  return probes;
}

export interface ServiceDefinitionsInput {
  readonly targets: readonly TargetSpec[];
  readonly configDoc: IniDocument | undefined;
}

/**
 * Every target, then every config.ini section with service URLs; a section named like a target
 * adds its URLs to that target instead of being listed twice.
 */
export function serviceDefinitions({ targets, configDoc }: ServiceDefinitionsInput): ServiceDefinition[] {
  const byName = new Map<string, { kind: ServiceKind; probes: ProbeSpec[] }>();
  for (const target of targets) byName.set(target.name, { kind: 'target', probes: targetProbes(target, configDoc) });
  for (const section of configDoc?.sections ?? []) {
    if (serviceNameProblem(section.name)) continue;
    for (const entry of section.entries) {
      if (!isUrlKey(section.name, entry.keyLower)) continue;
      const url = httpUrlOf(entry.value);
      if (!url) continue;
      let service = byName.get(section.name);
      if (!service) {
        service = { kind: 'url', probes: [] };
        byName.set(section.name, service);
      }
      service.probes.push({ kind: 'http', url, source: `${section.name}.${entry.key}`, expect: 'below_500' });
    }
  }
  return [...byName].map(([name, { kind, probes }]) => Object.freeze({ name, kind, probes: Object.freeze(probes) }));
}

interface CacheEntry {
  /** The declaration the checks were made for: an edited URL makes the old results meaningless. */
  readonly specKey: string;
  readonly at: number;
  readonly ok: boolean | null;
  readonly checks: readonly ConnectionCheck[];
}

/**
 * The drivers' own timeouts come first; this deadline (a little later) only catches a probe that
 * ignores them. On the injected clock, so that a test can tell when a probe that never answers
 * gives up.
 */
function probeDeadline<T>(clock: Clock, run: () => Promise<T>, { timeoutMs, what }: { timeoutMs: number; what: string }): Promise<T> {
  return withDeadline(run(), {
    clock,
    timeoutMs: timeoutMs + DEADLINE_GRACE_MS,
    onTimeout: () => new AppError('TIMEOUT', { message: 'No answer in time', details: `${what}: no answer within ${timeoutMs} ms` }),
  });
}

export function createConnectionChecks(input: CreateConnectionChecksInput): ConnectionChecks {
  const { targets, docker, supervisor, http } = input;
  const timeoutMs = input.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const maxAgeMs = input.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  const clock = input.clock ?? systemClock;
  const now = (): number => clock.now();
  const log = input.logger.child({ module: 'connection-checks' });
  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<CacheEntry>>();
  let refreshing: Promise<void> | undefined;

  function definitions(): ServiceDefinition[] {
    let doc: IniDocument | undefined;
    try {
      doc = input.configDoc();
    } catch (error) {
      // Without config.ini the targets can still be checked.
      log.debug({ code: isAppError(error) ? error.code : undefined }, 'config.ini unreadable; listing the targets only');
    }
    return serviceDefinitions({ targets, configDoc: doc });
  }

  function checkError(error: unknown, what: string, url?: string): CheckError {
    if (isAppError(error)) {
      // The drivers' inspect calls default to RELOAD_FAILED (they serve the reloads); here nothing was reloaded.
      const code = error.code === 'RELOAD_FAILED' ? 'HEALTH_FAILED' : error.code;
      return { code, message: url === undefined ? error.details : scrubUrlSecrets(error.details, url) };
    }
    // Not an error any driver maps: its text is unknown, so it is logged (by name only) and not shown.
    log.warn({ what, errorName: (error as Error | undefined)?.name }, 'unexpected error while checking a service');
    return { code: 'INTERNAL_ERROR', message: `${what}: unexpected error` };
  }

  async function probeContainer(container: ContainerRef): Promise<Omit<ContainerCheck, 'latencyMs' | 'checkedAt'>> {
    const text = containerRefText(container);
    const base = { kind: 'container' as const, container: text };
    try {
      const state = await probeDeadline(clock, () => docker.inspectState(container, { timeoutMs }), { timeoutMs, what: `inspect container ${text}` });
      const health: ContainerHealthName = state.health ?? 'none';
      // A paused or restarting container can report Running = true and still serve nothing.
      const running = state.running && state.status === 'running';
      const ok = running && (health === 'none' || health === 'healthy');
      const why = !running
        ? `container ${text} is ${state.status}${state.status === 'exited' || state.status === 'dead' ? ` (exit code ${state.exitCode})` : ''}`
        : health === 'unhealthy'
          ? `container ${text} is running but its health check reports unhealthy`
          : `container ${text} is running but its health check is still starting`;
      return { ...base, ok, state: state.status, health, ...(ok ? {} : { error: { code: 'HEALTH_FAILED', message: why } }) };
    } catch (error) {
      // The driver says SERVICE_UNREACHABLE both for "no such container" and for "no Docker
      // engine"; only the latter names the socket.
      if (isAppError(error) && error.code === 'SERVICE_UNREACHABLE' && !('socket' in error.data)) {
        return { ...base, ok: false, state: 'absent', error: checkError(error, `inspect container ${text}`) };
      }
      return { ...base, ok: false, error: checkError(error, `inspect container ${text}`) };
    }
  }

  async function probeProgram(program: string): Promise<Omit<SupervisorCheck, 'latencyMs' | 'checkedAt'>> {
    const base = { kind: 'supervisor' as const, program };
    try {
      const info = await probeDeadline(clock, () => supervisor.processInfo(program, { timeoutMs }), { timeoutMs, what: `inspect program ${program}` });
      const ok = info.state === 'RUNNING';
      const why = `program ${program} is ${info.state}${info.description ? ` (${info.description})` : ''}`;
      return { ...base, ok, state: info.state, ...(ok ? {} : { error: { code: 'HEALTH_FAILED', message: why } }) };
    } catch (error) {
      return { ...base, ok: false, error: checkError(error, `inspect program ${program}`) };
    }
  }

  async function probeUrl(probe: Extract<ProbeSpec, { kind: 'http' }>): Promise<Omit<HttpCheck, 'latencyMs' | 'checkedAt'>> {
    const shown = probe.shown ?? safeUrl(probe.url);
    const base = { kind: 'http' as const, url: shown, source: probe.source };
    try {
      const { status } = await probeDeadline(clock, () => http(probe.url, { timeoutMs }), { timeoutMs, what: `GET ${shown}` });
      const ok = probe.expect === '2xx' ? status >= 200 && status <= 299 : status < 500;
      return { ...base, ok, status, ...(ok ? {} : { error: { code: 'HEALTH_FAILED', message: `GET ${shown}: HTTP ${status}` } }) };
    } catch (error) {
      return { ...base, ok: false, error: checkError(error, `GET ${shown}`, probe.url) };
    }
  }

  async function runProbe(probe: ProbeSpec): Promise<ConnectionCheck> {
    const started = now();
    const result =
      probe.kind === 'container'
        ? await probeContainer(probe.container)
        : probe.kind === 'supervisor'
          ? await probeProgram(probe.program)
          : await probeUrl(probe);
    const finished = now();
    return { ...result, latencyMs: Math.max(0, Math.round(finished - started)), checkedAt: new Date(finished).toISOString() } as ConnectionCheck;
  }

  async function checkService(definition: ServiceDefinition, specKey: string): Promise<CacheEntry> {
    const checks = await Promise.all(definition.probes.map((probe) => runProbe(probe)));
    const entry: CacheEntry = Object.freeze({
      specKey,
      at: now(),
      ok: checks.length === 0 ? null : checks.every((c) => c.ok),
      checks: Object.freeze(checks),
    });
    cache.set(definition.name, entry);
    const failed = checks.filter((c) => !c.ok).map((c) => c.error?.code ?? 'not ok');
    if (failed.length > 0) log.debug({ service: definition.name, failed }, 'service check failed');
    return entry;
  }

  /** One run per service and declaration at a time; later callers share it. */
  function run(definition: ServiceDefinition): Promise<CacheEntry> {
    const specKey = JSON.stringify(definition.probes);
    const key = `${definition.name}\0${specKey}`;
    const running = inFlight.get(key);
    if (running) return running;
    const promise = checkService(definition, specKey).finally(() => inFlight.delete(key));
    inFlight.set(key, promise);
    return promise;
  }

  function view(definition: ServiceDefinition, entry: CacheEntry | undefined, at: number): ServiceStatus {
    if (!entry || entry.specKey !== JSON.stringify(definition.probes)) {
      return { name: definition.name, kind: definition.kind, ok: null, stale: true, checkedAt: null, checks: [] };
    }
    return {
      name: definition.name,
      kind: definition.kind,
      ok: entry.ok,
      stale: at - entry.at >= maxAgeMs,
      checkedAt: new Date(entry.at).toISOString(),
      checks: entry.checks,
    };
  }

  function refresh(stale: readonly ServiceDefinition[]): void {
    if (refreshing) return;
    log.debug({ services: stale.map((d) => d.name) }, 'refreshing service checks');
    refreshing = Promise.all(stale.map((definition) => run(definition)))
      .then(() => undefined)
      .catch((error: unknown) => {
        // run() turns every probe failure into a result; reaching this is a bug, and must not crash main.
        log.error({ errorName: (error as Error | undefined)?.name }, 'service check refresh failed');
      })
      .finally(() => {
        refreshing = undefined;
      });
  }

  return {
    list() {
      const all = definitions();
      const names = new Set(all.map((d) => d.name));
      for (const name of cache.keys()) if (!names.has(name)) cache.delete(name);
      const at = now();
      const services = all.map((definition) => view(definition, cache.get(definition.name), at));
      const stale = all.filter((_definition, i) => services[i]!.stale);
      if (stale.length > 0) refresh(stale);
      let oldest: string | null = null;
      for (const service of services) {
        if (service.checkedAt === null) {
          oldest = null;
          break;
        }
        if (oldest === null || service.checkedAt < oldest) oldest = service.checkedAt;
      }
      return { services, checkedAt: oldest, refreshing: refreshing !== undefined };
    },

    async test(name) {
      const problem = serviceNameProblem(name);
      if (problem) throw new AppError('INVALID_NAME', { details: problem });
      const definition = definitions().find((d) => d.name === name);
      if (!definition) {
        throw new AppError('SERVICE_NOT_FOUND', {
          details: `No service named "${name}": neither a target in system.ini nor a config.ini section with a service URL`,
          data: { service: name },
        });
      }
      return view(definition, await run(definition), now());
    },

    async idle() {
      while (refreshing || inFlight.size > 0) {
        await Promise.allSettled([refreshing, ...inFlight.values()]);
      }
    },
  };
}
