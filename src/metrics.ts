/**
 * Prometheus metrics (GET /metrics, text format): HTTP requests by route and status, sync runs by
 * outcome, how long a change takes to reach the services, reloads by target and result, rollbacks,
 * whether config.ini is valid, worker restarts, log lines dropped, WebSocket clients, and the
 * process's own (CPU, memory, event loop).
 * Route labels are the route patterns (`/api/v1/settings/:section`), never paths or values, so
 * the number of series stays bounded and nothing a client sends ends up in a label.
 */
import { performance } from 'node:perf_hooks';
import type { Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ReconcileResult, RunSource } from './targets/outcome.js';

/** About 24.8 days: prom-client enables the histogram, which then takes no sample in practice. */
const NEVER_MS = 2 ** 31 - 1;
const LAG_HISTOGRAM_SERIES = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'].map((s) => `nodejs_eventloop_lag_${s}_seconds`);
/**
 * prom-client's gauges of the sum over types: a `_total` suffix means a counter to Prometheus
 * (promtool refuses them), and `sum(nodejs_active_handles)` of the by-type gauge is the same number.
 */
const ACTIVE_SUMS = ['handles', 'requests', 'resources'].map((kind) => `nodejs_active_${kind}_total`);

/** Target errors that stopped it before any reload was tried. */
const NOT_A_RELOAD: ReadonlySet<string> = new Set(['RENDER_FAILED', 'CHECK_FAILED', 'WRITE_FAILED', 'INSUFFICIENT_STORAGE']);

/** Reload failures by what went wrong; anything else that stopped a reload is `failed`. */
const RELOAD_RESULTS: Readonly<Record<string, string>> = { SERVICE_UNREACHABLE: 'unreachable', HEALTH_FAILED: 'unhealthy', TIMEOUT: 'timeout' };

export interface AnsweredRequest {
  readonly req: Request;
  readonly res: Response;
  /** From the request's arrival until its answer was handed to the operating system. */
  readonly seconds: number;
}

export interface MetricsSources {
  sourceValid(): boolean;
  workerRestarts(): number;
  /** The targets system.ini declares: their reload counters start at 0, so rate() works before the first reload. */
  targets?: readonly string[];
  /** Lines the main thread's log destination dropped so far. */
  logLinesDropped(): number;
  /** Undelivered webhook messages and the age of the oldest. */
  webhookQueue?: () => { pending: number; oldestAgeSeconds: number };
  /** Clients of the WebSocket channel now. */
  websocketClients?(): number;
}

const WEBHOOK_KINDS = ['standard', 'slack', 'discord', 'wecom', 'dingtalk', 'feishu'];
const DELIVERY_RESULTS = ['delivered', 'retried', 'failed', 'blocked'];

export function createMetrics() {
  const registry = new Registry();
  // prom-client's event loop delay percentiles come from a histogram whose timer wakes the main
  // thread at each sample: at its default 10 ms that alone is 0.7 % of a core while confhub idles,
  // and a coarser rate shifts every value by the rate (each sample is the whole interval). So its
  // timer is set to (almost) never fire and those series are dropped; nodejs_eventloop_lag_seconds
  // (one setImmediate's delay, taken at each scrape) stays, beside the time the event loop was
  // busy, which costs nothing between scrapes (rate() of it is the loop's utilization).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: NEVER_MS });
  for (const name of [...LAG_HISTOGRAM_SERIES, ...ACTIVE_SUMS]) registry.removeSingleMetric(name);
  let busyCounted = 0;
  new Counter({
    name: 'confhub_event_loop_busy_seconds_total',
    help: 'Time the main thread event loop spent working (not waiting for events), in seconds',
    registers: [registry],
    collect() {
      const busy = performance.eventLoopUtilization().active / 1000;
      this.inc(Math.max(0, busy - busyCounted));
      busyCounted = Math.max(busyCounted, busy);
    },
  });
  const httpRequests = new Counter({
    name: 'confhub_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'confhub_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by route pattern',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [registry],
  });
  const syncRuns = new Counter({
    name: 'confhub_sync_runs_total',
    help: 'Sync runs of the worker, by what started them and their outcome',
    labelNames: ['source', 'outcome'] as const,
    registers: [registry],
  });
  const propagation = new Histogram({
    name: 'confhub_propagation_seconds',
    help: 'From an API write of config.ini until the worker finished applying it to the services',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const runDuration = new Histogram({
    name: 'confhub_sync_run_duration_seconds',
    help: 'Duration of one sync run (render, write, reload, verify)',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const reloads = new Counter({
    name: 'confhub_reloads_total',
    help: 'Service reloads, by target and result (ok, failed, unhealthy, unreachable, timeout)',
    labelNames: ['target', 'result'] as const,
    registers: [registry],
  });
  const rollbacks = new Counter({
    name: 'confhub_rollbacks_total',
    help: 'Rollbacks of config.ini: automatic (a revision failed) or requested (POST /settings/rollback)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  let sources: MetricsSources | undefined;
  new Gauge({
    name: 'confhub_source_valid',
    help: '1 when config.ini is valid and its secrets open, 0 otherwise',
    registers: [registry],
    collect() {
      this.set(sources ? (sources.sourceValid() ? 1 : 0) : 0);
    },
  });
  new Gauge({
    name: 'confhub_ws_clients',
    help: 'Clients connected to the WebSocket channel (GET /api/v1/ws) with an accepted key',
    registers: [registry],
    collect() {
      this.set(sources?.websocketClients?.() ?? 0);
    },
  });
  let restartsCounted = 0;
  new Counter({
    name: 'confhub_worker_restarts_total',
    help: 'Times the sync worker thread was restarted since confhub started',
    registers: [registry],
    collect() {
      const restarts = sources?.workerRestarts() ?? 0;
      this.inc(Math.max(0, restarts - restartsCounted));
      restartsCounted = Math.max(restartsCounted, restarts);
    },
  });
  // Present at 0 from the start: a rate over a series that appears only with its first event
  // misses that event.
  for (const kind of ['automatic', 'requested']) rollbacks.inc({ kind }, 0);

  let mainDropsCounted = 0;
  const logLinesDropped = new Counter({
    name: 'confhub_log_lines_dropped_total',
    help: 'Log lines not written because stdout failed (a reader gone, a full disk) or fell too far behind, by thread',
    labelNames: ['thread'] as const,
    registers: [registry],
    collect() {
      const dropped = sources?.logLinesDropped() ?? 0;
      this.inc({ thread: 'main' }, Math.max(0, dropped - mainDropsCounted));
      mainDropsCounted = Math.max(mainDropsCounted, dropped);
    },
  });
  logLinesDropped.inc({ thread: 'worker' }, 0);

  const webhookDeliveries = new Counter({
    name: 'confhub_webhook_deliveries_total',
    help: 'Webhook delivery attempts, by endpoint kind and result (delivered, retried, failed: given up or refused, blocked: an address not allowed)',
    labelNames: ['kind', 'result'] as const,
    registers: [registry],
  });
  for (const kind of WEBHOOK_KINDS) for (const result of DELIVERY_RESULTS) webhookDeliveries.inc({ kind, result }, 0);
  new Gauge({
    name: 'confhub_webhook_queue_depth',
    help: 'Webhook messages not yet delivered (waiting, being retried or gathering a burst)',
    registers: [registry],
    collect() {
      this.set(sources?.webhookQueue?.().pending ?? 0);
    },
  });
  new Gauge({
    name: 'confhub_webhook_oldest_undelivered_seconds',
    help: 'Age of the oldest webhook message not yet delivered, in seconds (0 when none waits)',
    registers: [registry],
    collect() {
      this.set(sources?.webhookQueue?.().oldestAgeSeconds ?? 0);
    },
  });

  return {
    contentType: registry.contentType,
    text: () => registry.metrics(),

    /** Wired once the sync service exists. */
    observe(next: MetricsSources): void {
      sources = next;
      for (const target of next.targets ?? []) for (const result of ['ok', 'failed', ...Object.values(RELOAD_RESULTS)]) reloads.inc({ target, result }, 0);
    },

    /**
     * One answered request, counted under its route pattern (`unmatched` when no route took it).
     * Called from the request context's one `finish` listener rather than a listener of its own.
     */
    httpRequest({ req, res, seconds }: AnsweredRequest): void {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      httpDuration.observe({ route }, seconds);
    },

    /** One run the worker reported; `writtenAt` is when an API write made its revision. */
    run(input: { source: RunSource; result: ReconcileResult; startedAt: number; finishedAt: number; writtenAt?: number }): void {
      const { result } = input;
      syncRuns.inc({ source: input.source, outcome: result.outcome });
      runDuration.observe(Math.max(0, input.finishedAt - input.startedAt) / 1000);
      if (input.writtenAt !== undefined && (result.outcome === 'applied' || result.outcome === 'unchanged')) {
        propagation.observe(Math.max(0, input.finishedAt - input.writtenAt) / 1000);
      }
      for (const target of result.targets) {
        const attempted = target.reloaded || (target.error !== null && !NOT_A_RELOAD.has(target.error.code));
        if (!attempted) continue;
        reloads.inc({ target: target.target, result: target.error ? (RELOAD_RESULTS[target.error.code] ?? 'failed') : 'ok' });
      }
      if (result.outcome === 'rolled_back') rollbacks.inc({ kind: 'automatic' });
    },

    /** A skipped revision (already in effect, or failed before). */
    skipped(outcome: 'unchanged' | 'failed'): void {
      syncRuns.inc({ source: 'change', outcome });
    },

    /** Lines the sync worker's log destination dropped since its last report. */
    workerLogLinesDropped(lines: number): void {
      logLinesDropped.inc({ thread: 'worker' }, lines);
    },

    rollbackRequested(): void {
      rollbacks.inc({ kind: 'requested' });
    },

    webhookDelivery({ kind, result }: { kind: string; result: string }): void {
      webhookDeliveries.inc({ kind, result });
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
