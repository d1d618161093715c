/**
 * The propagation benchmark's report (bench/propagation.ts measures): each latency split at its
 * run's start from confhub's sync_runs, the budgets, the JSON and its Markdown summary.
 */
import type { MachineInfo } from './lib/machine.js';
import { budgetTable, disturbedNote, fmt, fmtMiB, markdownTable, type Budget } from './lib/report.js';
import { isDisturbed } from './lib/resource-usage.js';
import { countBy, round, summarize, type Summary } from './lib/stats.js';
import type { FileDetector, Measured, RunRow, Sample, ScenarioRun } from './propagation.js';

const BUDGETS = { fileP99BeyondDebounceMs: 100, idleCpuPercentMax: 1, rssMaxMiB: 120 } as const;

type RunTarget = { target: string; changed: boolean; reloaded: boolean };
const targetsOf = (row: RunRow): RunTarget[] => JSON.parse(row.targets) as RunTarget[];

/** Each latency split at its run's start (sync_runs, joined by revision). */
function breakdown(samples: readonly Sample[], byRevision: Map<string, RunRow>) {
  const t0ToRun: number[] = [];
  const eventToRun: number[] = [];
  const runToT1: number[] = [];
  const run: number[] = [];
  const targetsWritten: Record<string, number> = {};
  const targetsReloaded: Record<string, number> = {};
  let joined = 0;
  for (const sample of samples) {
    const row = byRevision.get(sample.revision);
    if (!row) continue;
    joined++;
    t0ToRun.push(row.started_at - sample.t0Wall);
    if (sample.configEventMs !== null) eventToRun.push(row.started_at - (sample.t0Wall + sample.configEventMs));
    runToT1.push(sample.t1Wall - row.started_at);
    run.push(row.finished_at - row.started_at);
    for (const t of targetsOf(row)) {
      if (t.changed) targetsWritten[t.target] = (targetsWritten[t.target] ?? 0) + 1;
      if (t.reloaded) targetsReloaded[t.target] = (targetsReloaded[t.target] ?? 0) + 1;
    }
  }
  return {
    joined,
    /** t0 → the worker's run started (chokidar event, debounce, the read, parse + validate). */
    t0ToRunStartMs: summarize(t0ToRun),
    ...(eventToRun.length > 0 ? { configEventToRunStartMs: summarize(eventToRun) } : {}),
    /** Render, stage with fsync, rename; for the pid: the reload until RUNNING. */
    runStartToT1Ms: summarize(runToT1),
    /** For the pid this includes health auto's stable wait. */
    runMs: summarize(run),
    targetsWritten,
    targetsReloaded,
  };
}

type Detail = { t0SinceReadyMs: number; t0ToRunStartMs: number | null }[];

/**
 * The changes whose run started more than 20 ms after the median, and the shortest arc of
 * confhub's content-poll cycle holding their t0s: a small arc means one phase of the poll
 * delayed them, a spread means something else did.
 */
function slowPickups(detail: Detail, cycleMs: number) {
  const median = summarize(detail.flatMap((d) => (d.t0ToRunStartMs === null ? [] : [d.t0ToRunStartMs]))).p50;
  const thresholdMs = round(median + 20, 1);
  const slow = detail.flatMap(({ t0SinceReadyMs, t0ToRunStartMs: ms }) => (ms !== null && ms > thresholdMs ? [{ t0SinceReadyMs, extra: ms - median }] : []));
  let phaseSpanMs: number | null = null;
  if (slow.length > 0) {
    const phases = slow.map((d) => ((d.t0SinceReadyMs % cycleMs) + cycleMs) % cycleMs).sort((a, b) => a - b);
    let largestGap = cycleMs - phases[phases.length - 1]! + phases[0]!;
    for (let i = 1; i < phases.length; i++) largestGap = Math.max(largestGap, phases[i]! - phases[i - 1]!);
    phaseSpanMs = slow.length === 1 ? 0 : cycleMs - largestGap;
  }
  return { thresholdMs, count: slow.length, phaseSpanMs, extraMs: summarize(slow.map((d) => d.extra)) };
}

/**
 * How busy the slow sibling was: its program's starts (logged by the program itself) and, from
 * sync_runs, how many of the scenario's revisions its lane ran or went past (latest wins).
 */
function siblingReport(run: Measured['apiSlow'], byRevision: Map<string, RunRow>, target: string) {
  const rows = run.samples.flatMap((s) => byRevision.get(s.revision) ?? []);
  const outcomes = rows.map((row) => targetsOf(row).find((t) => t.target === target));
  const ran = outcomes.filter((t) => t !== undefined).length;
  return {
    ...run.sibling,
    revisionsRunBySibling: ran,
    revisionsRestartingSibling: outcomes.filter((t) => t?.reloaded).length,
    revisionsSiblingWentPast: rows.length - ran,
  };
}

export function buildReport(machine: MachineInfo, m: Measured) {
  const { sync, supervisorProgram: program, slowSiblingProgram: slow, detectors } = m.settings;
  const byRevision = new Map<string, RunRow>();
  for (const row of m.rows) if (!byRevision.has(row.revision)) byRevision.set(row.revision, row);
  const latencyScenario = (
    [name, description, t0, t1, detector]: [string, string, string, string, string],
    run: ScenarioRun<Sample>,
    fileOnly: { detectedBy?: Record<string, number>; configEventRelativeToT0Ms?: Summary; slowSibling?: ReturnType<typeof siblingReport> },
  ) => {
    const latencyMs = summarize(run.samples.map((s) => s.latencyMs));
    const samplesDetail: Detail = run.samples.map((s) => {
      const row = byRevision.get(s.revision);
      return { t0SinceReadyMs: Math.round(s.t0Wall - m.readyWall), t0ToRunStartMs: row ? round(row.started_at - s.t0Wall, 1) : null };
    });
    return {
      name,
      description,
      changes: run.samples.length,
      t0,
      t1,
      detector,
      latencyMs,
      p99MinusDebounceMinMs: round(latencyMs.p99 - sync.debounce_min_ms, 2),
      ...fileOnly,
      outcomes: countBy(run.samples, (s) => s.outcome ?? byRevision.get(s.revision)?.outcome ?? 'no run recorded'),
      breakdown: breakdown(run.samples, byRevision),
      cpu: run.cpu,
      durationSeconds: round(run.durationSeconds, 1),
      samplesMs: run.samples.map((s) => round(s.latencyMs, 2)),
      /** Per sample: t0 since /readyz (its place in the content-poll cycle) and t0 → run start. */
      samplesDetail,
      slowPickups: slowPickups(samplesDetail, sync.poll_interval_ms),
    };
  };
  const fileScenarioReport = (
    [name, description, t0, t1]: [string, string, string, string],
    run: ScenarioRun<Sample & { detectedBy: FileDetector }>,
    slowSibling?: ReturnType<typeof siblingReport>,
  ) =>
    latencyScenario([name, description, t0, t1, `fs.watch on the output's directory + ${detectors.filePollMs} ms poll`], run, {
      detectedBy: countBy(run.samples, (s) => s.detectedBy),
      configEventRelativeToT0Ms: summarize(run.samples.flatMap((s) => (s.configEventMs === null ? [] : [s.configEventMs]))),
      ...(slowSibling ? { slowSibling } : {}),
    });
  const fileT1 = 'the file target\'s output holds "value = V\\n"';
  const slowT1 = `the output of ${slow.beside} (reload none) holds "shared = V\\n"`;
  const slowSetup = `target ${slow.beside} (reload none) and target ${slow.target} (supervisor:restart:${slow.name}, startsecs = ${slow.startsecs}, health auto) both read bench.shared; the next change goes out ${m.settings.changes.slowSiblingGapMs} ms after the file holds this one, ${slow.target} not waited for`;
  const apiSlow = fileScenarioReport(
    ['API PUT → file written, slow sibling', `PUT /api/v1/settings/bench?key=shared&value=V; ${slowSetup}`, 'the PUT answer arrived', slowT1],
    m.apiSlow,
    siblingReport(m.apiSlow, byRevision, slow.target),
  );
  const handSlow = fileScenarioReport(
    [
      'hand write → file written, slow sibling',
      `config.ini replaced (temp file, fsync, rename), bench.shared changed; ${slowSetup}`,
      'rename(2) returned',
      slowT1,
    ],
    m.handSlow,
    siblingReport(m.handSlow, byRevision, slow.target),
  );
  const scenarios = [
    fileScenarioReport(['API PUT → file written', 'PUT /api/v1/settings/bench?key=value&value=V', 'the PUT answer arrived', fileT1], m.api),
    fileScenarioReport(['hand write → file written', 'config.ini replaced by this process: temp file, fsync, rename', 'rename(2) returned', fileT1], m.hand),
    latencyScenario(
      [
        `API PUT → ${program.name} RUNNING with a new pid`,
        `PUT /api/v1/settings/bench?key=restart&value=V; target prog reloads supervisor:restart:${program.name}, health auto`,
        'the PUT answer arrived',
        `supervisord's getProcessInfo(${program.name}) answers a new pid in state RUNNING (startsecs = ${program.startsecs})`,
        `getProcessInfo every ${detectors.pidPollMs} ms`,
      ],
      m.pid,
      {},
    ),
    apiSlow,
    handSlow,
  ];
  const slowBudgetMs = BUDGETS.fileP99BeyondDebounceMs + sync.debounce_min_ms;

  const { noop, idle } = m;
  const noopRuns = m.rows.filter((r) => r.started_at >= noop.windowStartWall && r.started_at <= noop.windowEndWall);
  const changedSomething = noopRuns.filter((r) => r.outcome !== 'unchanged' || targetsOf(r).some((t) => t.changed || t.reloaded)).length;
  const writes = [noop.fileOutputUnchanged, noop.progOutputUnchanged, noop.configIniUnchanged].filter((same) => !same).length;
  const reloads = (noop.pidAfter !== noop.pidBefore ? 1 : 0) + noopRuns.reduce((sum, r) => sum + targetsOf(r).filter((t) => t.reloaded).length, 0);
  const auditInWindow = Object.fromEntries(m.auditRows.map((a) => [`${a.action}:${a.result}`, a.n]));
  const rssMiB = (idle.rssKiB ?? NaN) / 1024;
  const budgets: Budget[] = [
    ...scenarios.slice(0, 2).map((s) => ({
      name: `${s.name}: p99 − debounce_min_ms`,
      limit: `≤ ${BUDGETS.fileP99BeyondDebounceMs} ms`,
      actual: `${fmt(s.p99MinusDebounceMinMs)} ms (p99 ${fmt(s.latencyMs.p99)} ms)`,
      pass: s.p99MinusDebounceMinMs <= BUDGETS.fileP99BeyondDebounceMs,
    })),
    ...[apiSlow, handSlow].map((s) => ({
      name: `${s.name}: p99`,
      limit: `≤ ${slowBudgetMs} ms (${BUDGETS.fileP99BeyondDebounceMs} ms + debounce_min_ms)`,
      actual: `${fmt(s.latencyMs.p99)} ms (${s.slowSibling!.startsDuringChanges} restarts of ${slow.name} meanwhile)`,
      pass: s.latencyMs.p99 <= slowBudgetMs,
    })),
    { name: 'no-op PUTs: writes', limit: '0', actual: String(writes), pass: writes === 0 },
    { name: 'no-op PUTs: reloads', limit: '0', actual: String(reloads), pass: reloads === 0 },
    {
      name: 'no-op PUTs: sync runs that changed something',
      limit: '0',
      actual: `${changedSomething} (of ${noopRuns.length} runs)`,
      pass: changedSomething === 0,
    },
    {
      name: `idle CPU, whole process, from ${idle.settleSeconds} s after the load to ${fmt(idle.seconds, 0)} s`,
      limit: `< ${BUDGETS.idleCpuPercentMax} %`,
      actual: `${fmt(idle.steadyPercent ?? NaN, 3)} % (the first ${idle.settleSeconds} s, with the collection after the load: ${fmt(idle.settlePercent ?? NaN, 3)} %)`,
      pass: idle.steadyPercent !== null && idle.steadyPercent < BUDGETS.idleCpuPercentMax,
    },
    { name: 'idle RSS', limit: `≤ ${BUDGETS.rssMaxMiB} MiB`, actual: `${fmt(rssMiB, 1)} MiB`, pass: Number.isFinite(rssMiB) && rssMiB <= BUDGETS.rssMaxMiB },
  ];

  return {
    date: new Date().toISOString(),
    machine,
    settings: m.settings,
    scenarios,
    pid: {
      startsecs: program.startsecs,
      oldGoneMs: summarize(m.pid.samples.flatMap((s) => (s.oldGoneMs === null ? [] : [s.oldGoneMs]))),
      /** supervisord's startsecs, as seen by getProcessInfo. */
      newPidToRunningMs: summarize(m.pid.samples.flatMap((s) => (s.newPidMs === null ? [] : [s.latencyMs - s.newPidMs]))),
      newProcessReadNewFile: m.pid.samples.filter((s) => s.sawNewFile).length,
      pollsPerChange: summarize(m.pid.samples.map((s) => s.polls)),
      note:
        "run start → run end includes confhub's supervisord restart (stopProcess + startProcess with wait, the latter returning after startsecs) and health auto (the new pid stable for 1 s, polled every 150 ms). " +
        "Observer effect: while another client calls getProcessInfo every <= ~25 ms (this bench, every BENCH_PID_POLL_MS), supervisord 4.2.5 answers startProcess(wait=true) about 1 s late, which lengthens confhub's run by ~1 s but not t1 (RUNNING is reached startsecs after the spawn either way).",
    },
    slowSibling: {
      program: slow.name,
      startsecs: slow.startsecs,
      budgetP99Ms: slowBudgetMs,
      api: { p99Ms: apiSlow.latencyMs.p99, pass: apiSlow.latencyMs.p99 <= slowBudgetMs, ...apiSlow.slowSibling! },
      hand: { p99Ms: handSlow.latencyMs.p99, pass: handSlow.latencyMs.p99 <= slowBudgetMs, ...handSlow.slowSibling! },
    },
    noop: { ...noop, syncRunsInWindow: noopRuns.length, syncRunsThatChangedSomething: changedSomething, writes, reloads, auditInWindow },
    idle,
    rssTrace: m.rssTrace,
    syncRuns: {
      total: m.rows.length,
      bySourceAndOutcome: countBy(m.rows, (r) => `${r.source}:${r.outcome}`),
      expected: 1 + m.api.samples.length + m.hand.samples.length + m.pid.samples.length + m.apiSlow.samples.length + m.handSlow.samples.length,
      note: 'expected = 1 startup run + one run per change of scenarios 1-5 (in 4-5 the sibling lane goes past most revisions, the file lane runs each); no-op PUTs should add none',
    },
    budgets,
    valid:
      scenarios.every((s) => Object.keys(s.outcomes).every((o) => o === 'applied')) &&
      m.pid.samples.every((s) => s.sawNewFile) &&
      m.apiSlow.sibling.caughtUp &&
      m.handSlow.sibling.caughtUp &&
      Object.keys(noop.statuses).every((s) => s === '200'),
    disturbed: [...scenarios.map((s) => s.cpu), noop.cpu, idle.machine].some(isDisturbed),
  };
}

export function markdown(report: ReturnType<typeof buildReport>): string {
  const { sync, detectors, changes, dataDirFileSystem } = report.settings;
  const { machine, pid, noop: n, idle, slowSibling: sib } = report;
  const rows = report.scenarios.map((s) => {
    const detected = s.detectedBy
      ? Object.entries(s.detectedBy)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')
      : s.detector;
    return [s.name, s.changes, ...[s.latencyMs.p50, s.latencyMs.p90, s.latencyMs.p99, s.latencyMs.max, s.p99MinusDebounceMinMs].map((v) => fmt(v)), detected];
  });
  const p50p99 = (x: Summary | undefined): string => (x ? `${fmt(x.p50)} / ${fmt(x.p99)}` : 'n/a');
  const splitRows = report.scenarios.map(({ name, breakdown: b }) => [
    name,
    ...[b.configEventToRunStartMs, b.t0ToRunStartMs, b.runStartToT1Ms, b.runMs].map(p50p99),
  ]);
  const slowPickupLines = report.scenarios
    .filter((s) => s.detectedBy !== undefined)
    .flatMap(({ name, changes: total, slowPickups: slow }) => {
      if (slow.count === 0) return [`${name}: no run started more than 20 ms later than the median.`, ''];
      const verdict =
        slow.count >= 3 && slow.phaseSpanMs !== null && slow.phaseSpanMs <= 200
          ? 'one phase of the cycle: the content poll is involved (it may only start a debounce when none is pending; bunching here points at a regression of that)'
          : slow.count < 3
            ? 'too few to tell whether the content poll delayed them'
            : 'spread over the cycle: not the poll';
      return [
        `${name}: ${slow.count} of ${total} runs started > ${fmt(slow.thresholdMs)} ms after t0 (median + 20 ms; extra p50 ${fmt(slow.extraMs.p50)}, max ${fmt(slow.extraMs.max)} ms); ` +
          `their t0s lie within ${fmt(slow.phaseSpanMs, 0)} ms of confhub's ${sync.poll_interval_ms} ms content-poll cycle (${verdict}).`,
        '',
      ];
    });
  const disturbed = [...report.scenarios.map((s) => [s.name, s.cpu] as const), ['no-op', n.cpu] as const, ['idle', idle.machine] as const].flatMap(
    ([name, cpu]) => (isDisturbed(cpu) ? [`${name} (${cpu.otherCores} cores)`] : []),
  );
  return [
    `### Propagation benchmark (${report.date.slice(0, 10)}, Node ${machine.node}, ${machine.cpuCount} × ${machine.cpuModel})`,
    '',
    `confhub from dist/ as shipped (log level and failed-authentication limit; logs into a file; the request limit raised for the bench's status poll), data dir on ${dataDirFileSystem}; ` +
      `[sync] debounce_min_ms = ${sync.debounce_min_ms}, debounce_max_ms = ${sync.debounce_max_ms}, poll_interval_ms = ${sync.poll_interval_ms}. ` +
      `In the first three scenarios changes are sequential: each waits until confhub finished the previous run. ` +
      `t0 = the PUT's answer (no ?wait) or the return of rename(2) for a hand write; "file written" = the target's output holds the new bytes ` +
      `(fs.watch on its directory plus a ${detectors.filePollMs} ms poll); "new pid" = supervisord's getProcessInfo ` +
      `(every ${detectors.pidPollMs} ms) shows a new pid in RUNNING, which includes startsecs = ${pid.startsecs} s. ` +
      `The pid scenario uses ${changes.apiToPid} changes (each restart takes > 2 s). ` +
      `In the two "slow sibling" scenarios one key feeds a reload-none file target and a target restarting supervisord program ${sib.program} ` +
      `(startsecs = ${sib.startsecs}, health auto: > 3 s per restart); the next change goes out ${changes.slowSiblingGapMs} ms after the file holds the previous one, ` +
      `never waiting for ${sib.program}, so its restarts overlap the changes all the time.`,
    '',
    ...markdownTable(['Scenario', 'changes', 'p50 (ms)', 'p90 (ms)', 'p99 (ms)', 'max (ms)', 'p99 − debounce_min (ms)', 'detected by'], 'lrrrrrrl', rows),
    '',
    "Where the time goes, p50 / p99 in ms (run start and end from confhub's sync_runs table, joined by revision; ±1 ms):",
    '',
    ...markdownTable(['Scenario', 'config.ini event → run start', 't0 → run start', 'run start → t1', 'run start → run end'], 'lrrrr', splitRows),
    '',
    `For the slow-sibling rows, "run start → run end" lasts until every lane finished the revision or went past it, the sibling's restart included. ` +
      `"run start" is taken after the debounce (${sync.debounce_min_ms} ms of quiet), the read (once when the file is settled, else until two reads 15 ms apart agree) and parse + validate; ` +
      `"run start → t1" for a file is render + temp file + fsync + rename; for the pid it is the supervisord restart: ` +
      `t0 → old pid gone p50 ${fmt(pid.oldGoneMs.p50)} ms, new pid → RUNNING p50 ${fmt(pid.newPidToRunningMs.p50)} ms (startsecs). ` +
      `The new process read the new file in ${pid.newProcessReadNewFile}/${changes.apiToPid} restarts. ` +
      `Observer effect: while a client polls getProcessInfo this often, supervisord answers confhub's startProcess(wait=true) ~1 s late, so the pid row's run end is ~1 s longer than unobserved; t1 is not affected.`,
    '',
    ...slowPickupLines,
    ...(['api', 'hand'] as const).flatMap((kind) => {
      const s = sib[kind];
      return [
        `Slow sibling, ${kind === 'api' ? 'API PUT' : 'hand write'}: p99 ${fmt(s.p99Ms)} ms against ${sib.budgetP99Ms} ms (${s.pass ? 'pass' : '**FAIL**'}); ` +
          `${sib.program} started ${s.startsDuringChanges} times between the first and the last change (${s.startsUntilCaughtUp} until it caught up, ${fmt(s.tailMs / 1000, 1)} s after the last change; pid ${s.pidBefore} → ${s.pidAfter}), ` +
          `${s.changesWhileStarting} of the changes were sent while a new ${sib.program} process was within its startsecs; ` +
          `its lane ran ${s.revisionsRunBySibling} of the revisions (${s.revisionsRestartingSibling} restarts) and went past ${s.revisionsSiblingWentPast} (latest wins); ` +
          `it ${s.caughtUp ? 'read the last value at its last start' : '**did not read the last value**'}.`,
        '',
      ];
    }),
    `No-op: ${n.puts} PUTs of the stored values (answers ${Object.entries(n.statuses)
      .map(([k, v]) => `${v} × ${k}`)
      .join(', ')}, ${n.distinctRevisions} distinct revision) ` +
      `then ${fmt(n.settleMs / 1000, 1)} s quiet: ${n.syncRunsInWindow} sync runs (${n.syncRunsThatChangedSomething} that changed something), ` +
      `${n.writes} writes (outputs and config.ini: inode, mtime, ctime, size ${n.writes === 0 ? 'unchanged' : 'CHANGED'}), ${n.reloads} reloads (pid ${n.pidBefore} → ${n.pidAfter}); ` +
      `audit: ${
        Object.entries(n.auditInWindow)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ') || 'none'
      }.`,
    '',
    `Idle ${fmt(idle.seconds, 1)} s: confhub process CPU ${fmt(idle.cpuPercent ?? NaN, 3)} % (first ${idle.settleSeconds} s ${fmt(idle.settlePercent ?? NaN, 3)} %, ` +
      `then ${fmt(idle.steadyPercent ?? NaN, 3)} %; ${idle.cpuTicks} ticks at ${idle.clockTicksPerSecond} Hz), ` +
      `RSS ${fmtMiB(idle.rssKiB)} MiB = ${fmtMiB(idle.rssAnonKiB)} anonymous + ${fmtMiB(idle.rssFileKiB)} file-backed ` +
      `(peak ${fmtMiB(idle.peakRssKiB)} MiB; ${fmtMiB(idle.rssAtReadyKiB)} MiB right after start), ${idle.threads ?? 'n/a'} threads. ` +
      `sync_runs: ${report.syncRuns.total} runs for ${report.syncRuns.expected} expected.`,
    '',
    ...disturbedNote(disturbed),
    ...budgetTable(report.budgets),
  ].join('\n');
}
