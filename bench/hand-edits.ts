/**
 * Hand edits beside API writes (npm run bench): the built confhub as shipped (its logs into a file,
 * the rate limit raised only so the write loop is not refused), a loop of API PUTs (one at a time,
 * over three keys) and a loop of real `sed -i` appending one key per edit, side by side. Two races,
 * each on a fresh confhub: an admin's script (sed, then 40 ms pause: about 20 edits a second) for
 * BENCH_RACE_SECONDS (default 60), then sed flat out for half as long. Then, once config.ini rests:
 *
 * - acknowledged API writes lost: a key whose final value is not its last acknowledged one;
 * - hand edits lost: `hand_N` keys missing from the final file, and how many of those losses the
 *   audit announced (`settings.hand_edit_lost`);
 * - how often confhub carried writes back: onto a copy sed saved from before a write
 *   (`settings.reapply`), and an edit written into the replaced file (`settings.merge`);
 * - PUT answers (200, 409 after five replans, other) and their latency.
 *
 * Results: bench/results/hand-edits.json and a Markdown summary on stdout.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseIni } from '../src/ini/document.js';
import { assertBuilt, startConfhub } from './lib/confhub.js';
import { describeMachine } from './lib/machine.js';
import { log, makeTempDir, runBench, sleep, stopServer } from './lib/processes.js';
import { budgetTable, fmt, markdownTable, RESULTS_DIR, writeResults, type Budget } from './lib/report.js';
import { summarize } from './lib/stats.js';

const SECONDS = Number(process.env.BENCH_RACE_SECONDS ?? 60);
const RESULTS_PATH = join(RESULTS_DIR, 'hand-edits.json');
const KEYS = [
  ['cockpit', 'port'],
  ['nginx_proxy_manager', 'listen_port'],
  ['console', 'port'],
] as const;

interface AuditEntry {
  action: string;
}

interface RaceResult {
  readonly seconds: number;
  /** Pause between two sed runs (0: as fast as sed goes). */
  readonly sedPauseMs: number;
  readonly api: { acknowledged: number; conflicts: number; other: number; latencyMs: ReturnType<typeof summarize>; lost: number; keysChecked: number };
  readonly hand: { edits: number; lost: number; announcedLost: number };
  readonly carried: { reapplied: number; mergedBack: number };
}

/** One race on a fresh confhub: PUTs one at a time against a sed -i loop. */
async function race(seconds: number, sedPauseMs: number): Promise<RaceResult> {
  const dataDir = makeTempDir('confhub-bench-race-');
  const logDir = makeTempDir('confhub-bench-race-logs-');
  const server = await startConfhub(dataDir, '/readyz', 60_000, { asShipped: { logFile: join(logDir, 'confhub.log'), rateLimitPerMinute: 1_000_000 } });
  const configPath = join(dataDir, 'config', 'config.ini');
  const headers = { 'x-api-key': server.apiKey };
  const stopFile = join(logDir, 'stop');
  try {
    log(`racing sed -i (pause ${sedPauseMs} ms) against API writes for ${seconds} s`);
    const pause = sedPauseMs > 0 ? `sleep ${sedPauseMs / 1000};` : '';
    const script = `i=0; while [ ! -e "$2" ]; do i=$((i+1)); sed -i "\\$a hand_$i = $i" "$1"; ${pause} done; echo $i`;
    const sed = spawn('bash', ['-c', script, 'race', configPath, stopFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    let sedOut = '';
    sed.stdout.on('data', (chunk: Buffer) => {
      sedOut += chunk.toString();
    });
    const sedDone = new Promise<void>((resolve) => sed.on('exit', () => resolve()));
    const last = new Map<string, string>();
    const latencies: number[] = [];
    const statuses = { ok: 0, conflict: 0, other: 0 };
    const endAt = performance.now() + seconds * 1000;
    for (let i = 0; performance.now() < endAt; i++) {
      const [section, key] = KEYS[i % KEYS.length]!;
      const value = String(20000 + (i % 40000));
      const started = performance.now();
      const res = await fetch(`${server.base}/api/v1/settings/${section}?key=${key}&value=${value}`, { method: 'PUT', headers });
      await res.arrayBuffer();
      latencies.push(performance.now() - started);
      if (res.status === 200) {
        statuses.ok++;
        last.set(`${section}.${key}`, value);
      } else if (res.status === 409) statuses.conflict++;
      else statuses.other++;
    }
    writeFileSync(stopFile, '');
    await sedDone;
    const handEdits = Number(sedOut.trim());
    // Rests: unchanged for a second (stale copies are recognised for 2 s after a write).
    let text = readFileSync(configPath, 'utf8');
    for (let quiet = 0; quiet < 10; ) {
      await sleep(100);
      const now = readFileSync(configPath, 'utf8');
      quiet = now === text ? quiet + 1 : 0;
      text = now;
    }
    const doc = parseIni(text);
    const present = new Set(doc.sections.flatMap((s) => s.entries.map((e) => e.keyLower)));
    const lostHand = Array.from({ length: handEdits }, (_v, i) => `hand_${i + 1}`).filter((k) => !present.has(k)).length;
    const lostApi = [...last].filter(([id, value]) => {
      const [section, key] = id.split('.') as [string, string];
      return doc.byName.get(section)?.byKey.get(key)?.value !== value;
    }).length;
    const entries: AuditEntry[] = [];
    for (let before: number | null | undefined; before !== null; ) {
      const page = (await (await fetch(`${server.base}/api/v1/audit?limit=1000${before ? `&before=${before}` : ''}`, { headers })).json()) as {
        entries: AuditEntry[];
        next: number | null;
      };
      entries.push(...page.entries);
      before = page.next;
    }
    const count = (action: string): number => entries.filter((e) => e.action === action).length;
    return {
      seconds,
      sedPauseMs,
      api: {
        acknowledged: statuses.ok,
        conflicts: statuses.conflict,
        other: statuses.other,
        latencyMs: summarize(latencies),
        lost: lostApi,
        keysChecked: last.size,
      },
      hand: { edits: handEdits, lost: lostHand, announcedLost: count('settings.hand_edit_lost') },
      carried: { reapplied: count('settings.reapply'), mergedBack: count('settings.merge') },
    };
  } finally {
    if (!existsSync(stopFile)) writeFileSync(stopFile, '');
    await stopServer(server);
  }
}

async function main(): Promise<void> {
  assertBuilt();
  // An admin's script (about 20 edits a second, the rate the problem was first measured at), then a flood.
  const races = [await race(SECONDS, 40), await race(Math.max(5, Math.round(SECONDS / 2)), 0)];
  const report = { machine: describeMachine(), races };
  const lostApi = races.reduce((n, r) => n + r.api.lost, 0);
  const unannounced = races.reduce((n, r) => n + Math.max(0, r.hand.lost - r.hand.announcedLost), 0);
  const budgets: Budget[] = [
    { name: 'acknowledged API writes lost', limit: '0', actual: String(lostApi), pass: lostApi === 0 },
    { name: 'hand edits lost without an announcement', limit: '0', actual: String(unannounced), pass: unannounced === 0 },
  ];
  const column = (r: RaceResult): string => `${r.seconds} s, sed ${r.sedPauseMs > 0 ? `+ ${r.sedPauseMs} ms pause` : 'flat out'}`;
  const markdown = [
    '### Hand edits beside API writes (sed -i vs. PUT, confhub as shipped)',
    '',
    ...markdownTable(['', ...races.map(column)], `l${'r'.repeat(races.length)}`, [
      ['API writes acknowledged', ...races.map((r) => r.api.acknowledged)],
      ['API writes refused 409 (file kept changing)', ...races.map((r) => r.api.conflicts)],
      ['PUT p50 / p99 (ms)', ...races.map((r) => `${fmt(r.api.latencyMs.p50)} / ${fmt(r.api.latencyMs.p99)}`)],
      ['acknowledged API writes lost', ...races.map((r) => r.api.lost)],
      ['hand edits (sed -i)', ...races.map((r) => r.hand.edits)],
      ['hand edits lost', ...races.map((r) => r.hand.lost)],
      ['… announced in the audit', ...races.map((r) => r.hand.announcedLost)],
      ['writes carried onto a stale sed copy (settings.reapply)', ...races.map((r) => r.carried.reapplied)],
      ['in-place edits merged back (settings.merge)', ...races.map((r) => r.carried.mergedBack)],
    ]),
    '',
    ...budgetTable(budgets),
  ].join('\n');
  writeResults(RESULTS_PATH, report, markdown);
}

runBench(main);
