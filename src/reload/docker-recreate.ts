/**
 * A container gets a new environment by recreation: Docker cannot change the environment of an
 * existing container. The recreation keeps everything else of the container (its image, host
 * config, mounts, anonymous volumes, networks, labels, healthcheck…) and is done so that a
 * failure, or a crash of confhub, never leaves the service without its container:
 *
 *   inspect → rename the old one aside → create the new one under the name → stop the old one →
 *   start the new one → wait until it is healthy → remove the old one (never its volumes).
 *
 * On a failure the new one is removed, the old one started again (if it was running) and renamed
 * back. The old container's aside name records whether it was running (`NAME.confhub-old` or
 * `NAME.confhub-old-stopped`), so repairRecreates() can finish or undo an interrupted
 * recreation from what the engine shows, with no journal of its own: a new container that runs
 * and is healthy is kept, anything else is undone.
 *
 * The environment confhub manages is merged into the container's own: the variables the user
 * gave the container (its Env minus the image's default entries, so the image's defaults still
 * come from the image) are kept, confhub's variables are set or replaced in place, and the
 * variables confhub set last time but manages no more are dropped (an image default of the same
 * name then shows through again). The names — never values — confhub set are kept in the label
 * `confhub.env.managed`; a variable the user had set by hand and confhub then took over is
 * confhub's from then on, and goes when confhub stops managing it.
 */
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock.js';
import { AppError, isAppError, type ErrorCode } from '../core/errors.js';
import { maskText } from '../core/mask.js';
import type { ContainerRef } from '../targets/target-spec.js';
import { engineCall, type EngineApiError } from './docker-engine-api.js';
import { createDockerDriver, engineStep, type DockerDriver } from './docker.js';

/** Comma-separated, sorted names of the variables confhub set on the container. */
export const MANAGED_ENV_LABEL = 'confhub.env.managed';
/** As in secretsOf (settings/mask-secrets.ts): shorter values are not masked in free text. */
const MIN_MASKED_LENGTH = 4;
/** Suffix of an old container renamed aside that was running (a restore starts it again). */
export const ASIDE_SUFFIX_RUNNING = '.confhub-old';
/** Suffix of an old container renamed aside that was not running (a restore leaves it stopped). */
export const ASIDE_SUFFIX_STOPPED = '.confhub-old-stopped';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DEFAULT_CALL_TIMEOUT_MS = 10_000;
const DEFAULT_STABLE_MS = 1000;
/** Docker's own default when a container declares no StopTimeout. */
const DEFAULT_STOP_TIMEOUT_S = 10;

// ---------------------------------------------------------------------------------------------
// What the engine answers (the parts read here; everything else of Config and HostConfig is
// carried over untouched, which is why they are open records).

export interface MountPoint {
  readonly Type?: string;
  readonly Name?: string;
  readonly Source?: string;
  readonly Destination: string;
  readonly RW?: boolean;
}

export interface HostMount {
  readonly Type?: string;
  readonly Source?: string;
  readonly Target?: string;
  readonly ReadOnly?: boolean;
  readonly [field: string]: unknown;
}

export interface EndpointSettings {
  readonly Aliases?: readonly string[] | null;
  readonly IPAMConfig?: unknown;
  readonly Links?: readonly string[] | null;
  readonly [field: string]: unknown;
}

export interface ContainerInspect {
  readonly Id: string;
  readonly Name: string;
  readonly Created: string;
  /** The image id (sha256:…) the container runs. */
  readonly Image: string;
  readonly State: { readonly Running: boolean; readonly Restarting?: boolean; readonly Status: string };
  readonly Config: {
    readonly Hostname?: string;
    readonly Domainname?: string;
    /** The image as named at create time: a tag may point elsewhere by now. */
    readonly Image?: string;
    readonly Env?: readonly string[] | null;
    readonly Labels?: Readonly<Record<string, string>> | null;
    readonly StopTimeout?: number;
    readonly [field: string]: unknown;
  };
  readonly HostConfig: {
    readonly NetworkMode?: string;
    readonly Binds?: readonly string[] | null;
    readonly Mounts?: readonly HostMount[] | null;
    readonly Links?: readonly string[] | null;
    readonly AutoRemove?: boolean;
    readonly [field: string]: unknown;
  };
  readonly Mounts?: readonly MountPoint[] | null;
  readonly NetworkSettings?: { readonly Networks?: Readonly<Record<string, EndpointSettings | null>> | null } | null;
}

export interface ImageInspect {
  readonly Id: string;
  readonly Config?: { readonly Env?: readonly string[] | null } | null;
}

interface ContainerSummary {
  Id: string;
  Names?: string[];
}

// ---------------------------------------------------------------------------------------------
// The plan (pure)

export interface EndpointConfig {
  Aliases?: string[];
  IPAMConfig?: unknown;
  Links?: string[];
}

export interface CreateBody {
  readonly [field: string]: unknown;
  readonly Image: string;
  readonly Env: readonly string[];
  readonly Labels: Readonly<Record<string, string>>;
  readonly HostConfig: Readonly<Record<string, unknown>>;
  readonly NetworkingConfig?: { readonly EndpointsConfig: Readonly<Record<string, EndpointConfig>> };
}

export interface PlanRecreateInput {
  readonly container: ContainerInspect;
  /** The image the container runs, inspected by its id. */
  readonly image: ImageInspect;
  /** What the new container is created from: the old one's image name while it still names the same image, else the image id. */
  readonly imageRef: string;
  /** The whole environment confhub manages for this container. */
  readonly env: ReadonlyMap<string, string>;
}

export interface RecreatePlan {
  /** Body of POST /containers/create. */
  readonly create: CreateBody;
  /** Networks beyond the first: the engine takes one at create (API < 1.44); they are connected before the start. */
  readonly connect: readonly { readonly network: string; readonly endpoint: EndpointConfig }[];
  /** The container already has this environment and this bookkeeping: there is nothing to recreate. */
  readonly unchanged: boolean;
  /** Names confhub sets, sorted: the new value of the MANAGED_ENV_LABEL label. */
  readonly managed: readonly string[];
}

function envName(entry: string): string {
  const at = entry.indexOf('=');
  return at < 0 ? entry : entry.slice(0, at);
}

export function parseManagedLabel(value: string | undefined): Set<string> {
  return new Set((value ?? '').split(',').filter((name) => ENV_NAME.test(name)));
}

/** The name is not a valid variable name or the value cannot be passed to a process (NUL). */
function checkEnv(env: ReadonlyMap<string, string>, container: string): void {
  for (const [name, value] of env) {
    // Names are not secret; values are never quoted.
    if (!ENV_NAME.test(name)) {
      throw new AppError('RELOAD_FAILED', { details: `container ${container}: "${name}" is not a valid environment variable name`, data: { container } });
    }
    if (value.includes('\0')) {
      throw new AppError('RELOAD_FAILED', { details: `container ${container}: the value of ${name} contains a NUL character`, data: { container } });
    }
  }
}

/**
 * The user environment of the new container: the old one's own entries (image defaults taken
 * out) with confhub's variables replaced in place, the ones it no longer manages dropped, and its
 * new ones appended in name order.
 */
function mergeEnv(ownEntries: readonly string[], env: ReadonlyMap<string, string>, managedBefore: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const placed = new Set<string>();
  for (const entry of ownEntries) {
    const name = envName(entry);
    const value = env.get(name);
    if (value !== undefined) {
      if (!placed.has(name)) out.push(`${name}=${value}`);
      placed.add(name);
    } else if (!managedBefore.has(name)) {
      out.push(entry);
    }
  }
  for (const name of [...env.keys()].sort()) if (!placed.has(name)) out.push(`${name}=${env.get(name)}`);
  return out;
}

/** Destination of a `-v` bind or named volume (`src:dst[:options]`). */
function bindDestination(bind: string): string | undefined {
  return bind.split(':')[1];
}

/**
 * Legacy links read back as `/other:/this/alias`; create takes `other:alias`.
 */
function createLink(link: string): string {
  const [target = '', alias = ''] = link.split(':');
  return `${target.replace(/^\//, '')}:${alias.slice(alias.lastIndexOf('/') + 1)}`;
}

/** HostConfig as read back, with anonymous volumes pinned to the very volumes the old container uses. */
function hostConfigFor(container: ContainerInspect): Record<string, unknown> {
  const host = container.HostConfig;
  const explicit = new Set<string>();
  for (const bind of host.Binds ?? []) {
    const destination = bindDestination(bind);
    if (destination) explicit.add(destination);
  }
  const volumeAt = new Map<string, MountPoint>();
  for (const mount of container.Mounts ?? []) if (mount.Type === 'volume' && mount.Name) volumeAt.set(mount.Destination, mount);
  // `--mount type=volume,target=/x` without a source is anonymous too: the same volume, by name.
  const mounts: HostMount[] = (host.Mounts ?? []).map((mount) => {
    if (mount.Target) explicit.add(mount.Target);
    const used = mount.Target ? volumeAt.get(mount.Target) : undefined;
    return mount.Type === 'volume' && !mount.Source && used?.Name ? { ...mount, Source: used.Name } : mount;
  });
  // `-v /x` and the image's VOLUMEs: nothing in Binds or Mounts names them, so a new container
  // would get fresh empty volumes. A volume mount by name keeps the data.
  for (const [destination, mount] of volumeAt) {
    if (explicit.has(destination)) continue;
    mounts.push({ Type: 'volume', Source: mount.Name, Target: destination, ...(mount.RW === false ? { ReadOnly: true } : {}) });
  }
  const out: Record<string, unknown> = { ...host };
  if (mounts.length > 0) out.Mounts = mounts;
  if (host.Links && host.Links.length > 0) out.Links = host.Links.map(createLink);
  return out;
}

/** Network modes that are not a network of their own: no endpoint settings, no aliases. */
function ownsNoEndpoint(networkMode: string): boolean {
  return networkMode === 'none' || networkMode === 'host' || networkMode.startsWith('container:');
}

function endpointFor(settings: EndpointSettings, shortId: string): EndpointConfig {
  const endpoint: EndpointConfig = {};
  // Docker adds the short id of each container as an alias; the old id would point nowhere.
  const aliases = (settings.Aliases ?? []).filter((alias) => alias !== shortId);
  if (aliases.length > 0) endpoint.Aliases = aliases;
  if (settings.IPAMConfig) endpoint.IPAMConfig = settings.IPAMConfig;
  if (settings.Links && settings.Links.length > 0) endpoint.Links = [...settings.Links];
  return endpoint;
}

export function planRecreate({ container, image, imageRef, env }: PlanRecreateInput): RecreatePlan {
  const shortId = container.Id.slice(0, 12);
  const imageDefaults = new Set(image.Config?.Env ?? []);
  const ownEntries = (container.Config.Env ?? []).filter((entry) => !imageDefaults.has(entry));
  const labels: Record<string, string> = { ...(container.Config.Labels ?? {}) };
  const managedBefore = parseManagedLabel(labels[MANAGED_ENV_LABEL]);
  const newEnv = mergeEnv(ownEntries, env, managedBefore);
  const managed = [...env.keys()].sort();
  const labelBefore = labels[MANAGED_ENV_LABEL];
  if (managed.length > 0) labels[MANAGED_ENV_LABEL] = managed.join(',');
  else delete labels[MANAGED_ENV_LABEL];
  // Entries equal to an image default are the image's on both sides: a managed value that equals
  // one is no change (the old container's own entries never show it).
  const newOwn = newEnv.filter((entry) => !imageDefaults.has(entry));
  const unchanged = labelBefore === labels[MANAGED_ENV_LABEL] && newOwn.length === ownEntries.length && newOwn.every((entry) => ownEntries.includes(entry));

  const networkMode = container.HostConfig.NetworkMode ?? 'default';
  const config: Record<string, unknown> = { ...container.Config };
  // A hostname Docker made up is the old short id: the new container makes up its own. With
  // another container's network, the hostname is that container's and may not be set.
  if (config.Hostname === shortId || networkMode.startsWith('container:')) delete config.Hostname;
  if (networkMode.startsWith('container:')) delete config.Domainname;

  let networkingConfig: CreateBody['NetworkingConfig'];
  const connect: { network: string; endpoint: EndpointConfig }[] = [];
  if (!ownsNoEndpoint(networkMode)) {
    const primary = networkMode === 'default' ? 'bridge' : networkMode;
    for (const [network, settings] of Object.entries(container.NetworkSettings?.Networks ?? {})) {
      const endpoint = endpointFor(settings ?? {}, shortId);
      if (network === primary) networkingConfig = { EndpointsConfig: { [network]: endpoint } };
      else connect.push({ network, endpoint });
    }
  }
  const create: CreateBody = {
    ...config,
    Image: imageRef,
    Env: newEnv,
    Labels: labels,
    HostConfig: hostConfigFor(container),
    ...(networkingConfig ? { NetworkingConfig: networkingConfig } : {}),
  };
  return { create, connect, unchanged, managed };
}

// ---------------------------------------------------------------------------------------------
// The recreation against the engine

export type RecreatePhase = 'inspect' | 'rename' | 'create' | 'stop' | 'start' | 'healthy' | 'remove';

/** The boundaries a recreation passes, in order; the rollback ones only after a failure. */
export type RecreateStep =
  | 'inspected'
  | 'renamed'
  | 'created'
  | 'stopped'
  | 'started'
  | 'healthy'
  | 'removed'
  | 'rollback-removed-new'
  | 'rollback-started-old'
  | 'rollback-renamed-back';

export interface RecreateInput {
  readonly ref: ContainerRef;
  /** The whole environment confhub manages for the container (global, mapped and its own). */
  readonly env: ReadonlyMap<string, string>;
  /**
   * Budget of the steps up to the start of the new container. The health wait has its own; the
   * removal of the old container and a rollback each get a fresh budget after it.
   */
  readonly timeoutMs: number;
  /** How long the new container may take to report healthy. */
  readonly healthTimeoutMs: number;
  /** For containers without a HEALTHCHECK: how long the new one must keep running. Default 1 s. */
  readonly stableMs?: number;
  /** Called at each step boundary, before the next step begins (crash tests pause here). */
  readonly onStep?: (step: RecreateStep) => void | Promise<void>;
}

export interface RecreateResult {
  /** The container's name (what a label resolved to). */
  readonly container: string;
  /** False when the container already had this environment: nothing was done. */
  readonly recreated: boolean;
  /** The container now under the name. */
  readonly id: string;
  readonly previousId?: string;
  /** Whether the container runs: a container that was stopped is recreated stopped. */
  readonly running: boolean;
  /** Milliseconds of each phase on the injected clock. */
  readonly phases: Readonly<Partial<Record<RecreatePhase, number>>>;
  /** What went wrong without failing the recreation (the old container could not be removed). */
  readonly warnings: readonly string[];
}

export interface RepairInput {
  /** Budget of the engine calls of one container's repair. Default 30 s. */
  readonly timeoutMs?: number;
  /** How long a new container found running may take to report healthy before it is undone. Default 60 s. */
  readonly healthTimeoutMs?: number;
  readonly stableMs?: number;
}

export interface RepairOutcome {
  readonly container: string;
  /** finished: the new container was kept and the old one removed; restored: the old one is back under its name. */
  readonly action: 'finished' | 'restored' | 'failed';
  readonly details: string;
}

export interface EnvRecreator {
  recreate(input: RecreateInput): Promise<RecreateResult>;
  /** Finishes or undoes every recreation a crash interrupted (containers renamed aside). Run at start, before any reload. */
  repairRecreates(input?: RepairInput): Promise<RepairOutcome[]>;
}

export interface CreateEnvRecreatorInput {
  readonly socketPath: string;
  readonly logger: Logger;
  /** Times the phases, the health wait and the budgets; each single API call has a real-time deadline. Default the system clock. */
  readonly clock?: Clock;
  /** Budget of the calls made outside a recreation's own budget (repair's listing). */
  readonly defaultTimeoutMs?: number;
  /** Interval between two inspections while waiting for health. */
  readonly pollIntervalMs?: number;
}

/**
 * Masks the given values in a message, longest first. Values shorter than secretsOf's floor are
 * left: masking every "1" would garble the message, not hide a secret.
 */
export function redactionOf(values: Iterable<string>): (message: string) => string {
  const secrets = [...new Set(values)].filter((value) => value.length >= MIN_MASKED_LENGTH).sort((a, b) => b.length - a.length);
  return (message) => maskText(message, secrets);
}

function asideName(name: string, wasRunning: boolean): string {
  return `${name}${wasRunning ? ASIDE_SUFFIX_RUNNING : ASIDE_SUFFIX_STOPPED}`;
}

/** The service name and what the old container was doing, from an aside name; undefined for any other name. */
export function parseAsideName(name: string): { readonly name: string; readonly wasRunning: boolean } | undefined {
  // The stopped suffix first: it extends the running one.
  if (name.endsWith(ASIDE_SUFFIX_STOPPED)) return { name: name.slice(0, -ASIDE_SUFFIX_STOPPED.length), wasRunning: false };
  if (name.endsWith(ASIDE_SUFFIX_RUNNING)) return { name: name.slice(0, -ASIDE_SUFFIX_RUNNING.length), wasRunning: true };
  return undefined;
}

function isRunning(info: ContainerInspect): boolean {
  return info.State.Running || info.State.Restarting === true;
}

function failureText(error: unknown): string {
  return isAppError(error) ? error.details : 'an unexpected error';
}

export function createEnvRecreator(input: CreateEnvRecreatorInput): EnvRecreator {
  const { socketPath } = input;
  const clock = input.clock ?? systemClock;
  const defaultTimeoutMs = input.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const log = input.logger.child({ module: 'reload-docker-recreate' });
  const driver: DockerDriver = createDockerDriver({
    socketPath,
    logger: input.logger,
    clock,
    defaultTimeoutMs,
    ...(input.pollIntervalMs === undefined ? {} : { pollIntervalMs: input.pollIntervalMs }),
  });
  const containerPath = (id: string, tail: string): string => `/containers/${encodeURIComponent(id)}${tail}`;

  interface Call {
    readonly what: string;
    readonly timeoutMs: number;
    readonly redact?: (text: string) => string;
    readonly code?: ErrorCode;
  }
  interface Request {
    readonly method: 'GET' | 'POST' | 'DELETE';
    readonly path: string;
    readonly body?: unknown;
  }
  const api = <T>(call: Call, { method, path, body }: Request): Promise<T> =>
    engineStep({ socketPath, code: 'RELOAD_FAILED', ...call }, (signal) =>
      engineCall<T>({ socketPath, method, path, signal, ...(body === undefined ? {} : { body }) }),
    );

  /** The container, or undefined when there is none of that name or id. */
  async function inspect(idOrName: string, call: Call): Promise<ContainerInspect | undefined> {
    try {
      return await api<ContainerInspect>(call, { method: 'GET', path: containerPath(idOrName, '/json') });
    } catch (error) {
      if (isAppError(error) && ((error.cause ?? {}) as EngineApiError).statusCode === 404) return undefined;
      throw error;
    }
  }

  async function inspectImage(ref: string, call: Call): Promise<ImageInspect | undefined> {
    try {
      return await api<ImageInspect>(call, { method: 'GET', path: `/images/${encodeURIComponent(ref)}/json` });
    } catch (error) {
      if (isAppError(error) && ((error.cause ?? {}) as EngineApiError).statusCode === 404) return undefined;
      throw error;
    }
  }

  /** Removes a container, never its volumes (an anonymous volume is the service's data). A container already gone is fine. */
  async function remove(id: string, call: Call): Promise<void> {
    try {
      await api(call, { method: 'DELETE', path: containerPath(id, '?force=true&v=false') });
    } catch (error) {
      if (isAppError(error) && ((error.cause ?? {}) as EngineApiError).statusCode === 404) return;
      throw error;
    }
  }

  const rename = (id: string, name: string, call: Call): Promise<void> =>
    api(call, { method: 'POST', path: containerPath(id, `/rename?name=${encodeURIComponent(name)}`) });
  // 304 (already running, already stopped) is not an error for the engine client either.
  const start = (id: string, call: Call): Promise<void> => api(call, { method: 'POST', path: containerPath(id, '/start') });

  /** A deadline on the injected clock; every call gets what is left of it. */
  function budget(timeoutMs: number): () => number {
    const deadline = clock.now() + timeoutMs;
    return () => Math.max(1, deadline - clock.now());
  }

  async function waitHealthy(id: string, input: { timeoutMs: number; stableMs: number }): Promise<void> {
    await driver.waitHealthy({ by: 'name', name: id }, input);
  }

  interface Restore {
    readonly name: string;
    readonly oldId: string;
    readonly wasRunning: boolean;
    /** The new container, when its create answered. */
    readonly newId?: string;
    /** A create was sent and no answer came (a timeout, a broken connection): it may have made the container. */
    readonly createUnknown: boolean;
    readonly timeoutMs: number;
    readonly redact?: (text: string) => string;
    readonly onStep?: (step: RecreateStep) => void | Promise<void>;
  }

  /**
   * Puts the old container back: the new one goes, the old one is started while still aside,
   * then renamed back. Started before the rename, so a crash in between leaves a running
   * container aside (repair renames it) rather than a stopped one under the name.
   */
  async function restore(r: Restore): Promise<void> {
    const left = budget(r.timeoutMs);
    const call = (what: string): Call => ({ what, timeoutMs: left(), ...(r.redact ? { redact: r.redact } : {}) });
    let newId = r.newId;
    if (newId === undefined && r.createUnknown) {
      // The name was free once the old container was aside, so a container under it is that create's.
      // After a refusal (a name taken meanwhile) nothing was made, and whatever holds the name is left alone.
      const found = await inspect(r.name, call(`inspect container ${r.name}`));
      if (found && found.Id !== r.oldId) newId = found.Id;
    }
    if (newId !== undefined) await remove(newId, call(`remove the new container ${r.name}`));
    await r.onStep?.('rollback-removed-new');
    const old = await inspect(r.oldId, call(`inspect the old container of ${r.name}`));
    if (!old) throw new AppError('RELOAD_FAILED', { details: `the old container of ${r.name} is gone`, data: { container: r.name } });
    if (r.wasRunning && !isRunning(old)) await start(r.oldId, call(`start the old container of ${r.name}`));
    await r.onStep?.('rollback-started-old');
    if (old.Name.replace(/^\//, '') !== r.name) await rename(r.oldId, r.name, call(`rename the old container back to ${r.name}`));
    await r.onStep?.('rollback-renamed-back');
  }

  /** Finishes or undoes one interrupted recreation of `name`; undefined when there is none. */
  async function repairOne(name: string, options: Required<RepairInput>): Promise<RepairOutcome | undefined> {
    const left = budget(options.timeoutMs);
    const call = (what: string): Call => ({ what, timeoutMs: left() });
    let aside: ContainerInspect | undefined;
    let wasRunning = true;
    for (const running of [true, false]) {
      aside = await inspect(asideName(name, running), call(`inspect container ${asideName(name, running)}`));
      if (aside) {
        wasRunning = running;
        break;
      }
    }
    if (!aside) return undefined;
    const current = await inspect(name, call(`inspect container ${name}`));
    // A new container that runs and turns healthy is the finished recreation; anything else
    // (not created, created but never started, failing) is undone. A new container of a stopped
    // one is undone too: its extra networks may not all be connected yet.
    if (current && current.Id !== aside.Id && wasRunning && isRunning(current)) {
      try {
        await waitHealthy(current.Id, { timeoutMs: options.healthTimeoutMs, stableMs: options.stableMs });
        // The wait had a budget of its own; the removal gets a fresh one.
        await remove(aside.Id, { what: `remove the old container of ${name}`, timeoutMs: options.timeoutMs });
        log.warn({ container: name }, 'an interrupted environment recreation was finished: the new container is healthy');
        return { container: name, action: 'finished', details: `container ${name}: the new container is healthy; the old one was removed` };
      } catch (error) {
        if (isAppError(error) && error.code === 'SERVICE_UNREACHABLE') throw error;
        log.warn({ container: name, error: failureText(error) }, 'the new container of an interrupted recreation is not healthy; restoring the old one');
      }
    }
    await restore({
      name,
      oldId: aside.Id,
      wasRunning,
      ...(current && current.Id !== aside.Id ? { newId: current.Id } : {}),
      createUnknown: false,
      // Fresh: a health wait may have used up the first budget.
      timeoutMs: options.timeoutMs,
    });
    log.warn({ container: name }, 'an interrupted environment recreation was undone: the old container is back');
    return { container: name, action: 'restored', details: `container ${name}: the old container is back under its name${wasRunning ? ' and running' : ''}` };
  }

  const repairDefaults = (options: RepairInput = {}): Required<RepairInput> => ({
    timeoutMs: options.timeoutMs ?? 30_000,
    healthTimeoutMs: options.healthTimeoutMs ?? 60_000,
    stableMs: options.stableMs ?? DEFAULT_STABLE_MS,
  });

  async function repairAll(options?: RepairInput): Promise<RepairOutcome[]> {
    const settings = repairDefaults(options);
    const all = await api<ContainerSummary[]>(
      { what: 'list containers', timeoutMs: defaultTimeoutMs },
      { method: 'GET', path: `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ name: ['confhub-old'] }))}` },
    );
    const names = new Set<string>();
    for (const summary of all) {
      for (const raw of summary.Names ?? []) {
        const parsed = parseAsideName(raw.replace(/^\//, ''));
        if (parsed) names.add(parsed.name);
      }
    }
    const outcomes: RepairOutcome[] = [];
    for (const name of [...names].sort()) {
      try {
        const outcome = await repairOne(name, settings);
        if (outcome) outcomes.push(outcome);
      } catch (error) {
        log.error({ container: name, error: failureText(error) }, 'an interrupted environment recreation could not be repaired');
        outcomes.push({ container: name, action: 'failed', details: failureText(error) });
      }
    }
    return outcomes;
  }

  async function recreate({ ref, env, timeoutMs, healthTimeoutMs, stableMs = DEFAULT_STABLE_MS, onStep }: RecreateInput): Promise<RecreateResult> {
    const phases: Partial<Record<RecreatePhase, number>> = {};
    let phaseStart = clock.now();
    const endPhase = async (phase: RecreatePhase, step: RecreateStep): Promise<void> => {
      phases[phase] = clock.now() - phaseStart;
      await onStep?.(step);
      phaseStart = clock.now();
    };
    const left = budget(timeoutMs);

    let resolved = await driver.resolve(ref, { timeoutMs: left() }).catch(async (error: unknown) => {
      // A crash between the stop and the start leaves two stopped containers with the service's
      // labels, the old one aside: once that is repaired, the label names one container again.
      // A name that is not there may be aside (a restore that failed): put back, it is there again.
      const ambiguous = isAppError(error) && (error.data.matches ?? 0) > 1;
      const absent = isAppError(error) && error.code === 'SERVICE_UNREACHABLE' && ref.by === 'name';
      if (!ambiguous && !absent) throw error;
      const repaired = absent
        ? await repairOne(ref.name, { ...repairDefaults(), timeoutMs: left(), healthTimeoutMs })
        : (await repairAll({ timeoutMs: left(), healthTimeoutMs }))[0];
      if (!repaired) throw error;
      return driver.resolve(ref, { timeoutMs: left() });
    });
    // An aside name found by a label, or an aside container left next to the name: a recreation
    // was interrupted; it is finished or undone before this one starts.
    const base = parseAsideName(resolved.name)?.name ?? resolved.name;
    const interrupted = await repairOne(base, { ...repairDefaults(), timeoutMs: left(), healthTimeoutMs });
    if (interrupted) resolved = await driver.resolve(ref, { timeoutMs: left() });
    const name = resolved.name;
    checkEnv(env, name);
    const plainCall = (what: string): Call => ({ what, timeoutMs: left() });
    const old = await inspect(resolved.id, plainCall(`inspect container ${name}`));
    if (!old) throw new AppError('SERVICE_UNREACHABLE', { details: `container ${name} is gone`, data: { container: name } });
    if (old.HostConfig.AutoRemove) {
      // Stopping it would delete it: a failure after the stop could not bring it back.
      throw new AppError('RELOAD_FAILED', {
        details: `container ${name} is removed by Docker when it stops (--rm): it cannot be recreated safely`,
        data: { container: name },
      });
    }
    const image = await inspectImage(old.Image, plainCall(`inspect the image of container ${name}`));
    if (!image) throw new AppError('RELOAD_FAILED', { details: `the image of container ${name} is gone`, data: { container: name } });
    const named = old.Config.Image ? await inspectImage(old.Config.Image, plainCall(`inspect the image of container ${name}`)) : undefined;
    // The same image, not whatever its tag names today: a recreation is no upgrade.
    const imageRef = named && named.Id === old.Image && old.Config.Image ? old.Config.Image : old.Image;
    const plan = planRecreate({ container: old, image, imageRef, env });
    if (plan.unchanged) {
      log.debug({ container: name }, 'the container already has this environment');
      return { container: name, recreated: false, id: old.Id, running: isRunning(old), phases: {}, warnings: [] };
    }
    // The engine's messages may quote what it was sent; no value reaches an error.
    const redact = redactionOf([...env.values(), ...(old.Config.Env ?? []).map((entry) => entry.slice(envName(entry).length + 1))]);
    const call = (what: string): Call => ({ what, timeoutMs: left(), redact });
    const wasRunning = isRunning(old);
    await endPhase('inspect', 'inspected');

    let step: RecreatePhase = 'rename';
    let newId: string | undefined;
    let createUnknown = false;
    try {
      await rename(old.Id, asideName(name, wasRunning), call(`rename container ${name} aside`));
      await endPhase('rename', 'renamed');
      step = 'create';
      const created = await api<{ Id: string }>(call(`create the new container ${name}`), {
        method: 'POST',
        path: `/containers/create?name=${encodeURIComponent(name)}`,
        body: plan.create,
      }).catch((error: unknown) => {
        createUnknown = !(isAppError(error) && ((error.cause ?? {}) as EngineApiError).statusCode !== undefined);
        throw error;
      });
      newId = created.Id;
      for (const { network, endpoint } of plan.connect) {
        await api(call(`connect the new container ${name} to network ${network}`), {
          method: 'POST',
          path: `/networks/${encodeURIComponent(network)}/connect`,
          body: { Container: newId, EndpointConfig: endpoint },
        });
      }
      await endPhase('create', 'created');
      if (wasRunning) {
        step = 'stop';
        const stopS = Math.min(old.Config.StopTimeout ?? DEFAULT_STOP_TIMEOUT_S, Math.max(0, Math.floor(left() / 1000) - 1));
        await api(call(`stop the old container ${name}`), { method: 'POST', path: containerPath(old.Id, `/stop?t=${stopS}`) });
        await endPhase('stop', 'stopped');
        step = 'start';
        await start(newId, call(`start the new container ${name}`));
        await endPhase('start', 'started');
        step = 'healthy';
        await waitHealthy(newId, { timeoutMs: healthTimeoutMs, stableMs });
        await endPhase('healthy', 'healthy');
      }
    } catch (error) {
      let restoreFailure: unknown;
      try {
        await restore({ name, oldId: old.Id, wasRunning, ...(newId ? { newId } : {}), createUnknown, timeoutMs, redact, ...(onStep ? { onStep } : {}) });
      } catch (failure) {
        restoreFailure = failure;
      }
      const outcome =
        restoreFailure === undefined
          ? `the old container is back under its name${wasRunning ? ' and running' : ''}`
          : `restoring the old container failed too (${failureText(restoreFailure)}); the next start repairs it`;
      log.error({ container: name, step, error: failureText(error), restored: restoreFailure === undefined }, 'environment recreation failed');
      const health = step === 'healthy' && isAppError(error) && error.code === 'HEALTH_FAILED';
      const code: ErrorCode = health ? 'HEALTH_FAILED' : 'RELOAD_FAILED';
      const data = health && isAppError(error) ? { container: name, ...pick(error.data, ['state', 'health']) } : { container: name };
      throw new AppError(code, {
        message: health ? `The recreated container ${name} is not healthy` : `Recreating container ${name} failed`,
        details: `recreating container ${name} with a new environment failed at ${step}: ${failureText(error)}; ${outcome}`,
        data,
        cause: error,
      });
    }

    const warnings: string[] = [];
    try {
      // The health wait had a budget of its own, which may have outlasted the steps' one.
      await remove(old.Id, { what: `remove the old container of ${name}`, timeoutMs: Math.max(left(), defaultTimeoutMs), redact });
    } catch (error) {
      // The service runs its new container; the old one stays aside and the next repair removes it.
      warnings.push(`the old container of ${name} could not be removed: ${failureText(error)}`);
    }
    await endPhase('remove', 'removed');
    log.info({ container: name, phases, managed: plan.managed.length }, 'container recreated with a new environment');
    return { container: name, recreated: true, id: newId, previousId: old.Id, running: wasRunning, phases, warnings };
  }

  return { recreate, repairRecreates: repairAll };
}

function pick<T extends object, K extends keyof T>(value: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (value[key] !== undefined) out[key] = value[key];
  return out;
}
