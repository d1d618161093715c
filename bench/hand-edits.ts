/**
 * Hand edits beside API writes (npm run bench): the built confhub as shipped (its logs into a file,
 * the rate limit raised only so the write loop is not refused), a loop of API PUTs (one at a time,
 * over three keys) and a loop of real `sed -i` appending one key per edit, side by side for
 * BENCH_RACE_SECONDS (default 60). Then, once config.ini rests:
 *
 * - acknowledged API writes lost: a key whose final value is not its last acknowledged one;
 * - hand edits lost: `hand_N` keys missing from the final file, and how many of those losses the
 *   audit announced (`settings.hand_edit_lost`);
 * - how often confhub carried writes back: onto a copy sed saved from before an API write
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

async function main(): Promise<void> {
  assertBuilt();
  const dataDir = makeTempDir('confhub-bench-race-');
  const logDir = makeTempDir('confhub-bench-race-logs-');
  const server = await startConfhub(dataDir, '/readyz', 60_000, { asShipped: { logFile: join(logDir, 'confhub.log'), rateLimitPerMinute: 1_000_000 } });
  const configPath = join(dataDir, 'config', 'config.ini');
  const headers = { 'x-api-key': server.apiKey };
  const stopFile = join(logDir, 'stop');
  try {
    log(`racing sed -i against API writes for ${SECONDS} s`);
    const script = `i=0; while [ ! -e "$2" ]; do i=$((i+1)); sed -i "\\$a hand_$i = $i" "$1"; done; echo $i`;
    const sed = spawn('bash', ['-c', script, 'race', configPath, stopFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    let sedOut = '';
    sed.stdout.on('data', (chunk: Buffer) => {
      sedOut += chunk.toString();
    });
    const sedDone = new Promise<void>((resolve) => sed.on('exit', () => resolve()));
    const last = new Map<string, string>();
    const latencies: number[] = [];
    const statuses = { ok: 0, conflict: 0, other: 0 };
    const endAt = performance.now() + SECONDS * 1000;
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
    const report = {
      machine: describeMachine(),
      seconds: SECONDS,
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
    const budgets: Budget[] = [
      { name: 'acknowledged API writes lost', limit: '0', actual: String(lostApi), pass: lostApi === 0 },
      {
        name: 'hand edits lost without an announcement',
        limit: '0',
        actual: String(Math.max(0, lostHand - report.hand.announcedLost)),
        pass: lostHand <= report.hand.announcedLost,
      },
    ];
    const markdown = [
      `### Hand edits beside API writes (${SECONDS} s, sed -i vs. PUT)`,
      '',
      ...markdownTable(['', 'count'], 'lr', [
        ['API writes acknowledged', statuses.ok],
        ['API writes refused 409 (file kept changing)', statuses.conflict],
        ['PUT p50 / p99 (ms)', `${fmt(report.api.latencyMs.p50)} / ${fmt(report.api.latencyMs.p99)}`],
        ['acknowledged API writes lost', lostApi],
        ['hand edits (sed -i)', handEdits],
        ['hand edits lost', lostHand],
        ['… announced in the audit', report.hand.announcedLost],
        ['writes carried onto a stale sed copy (settings.reapply)', report.carried.reapplied],
        ['in-place edits merged back (settings.merge)', report.carried.mergedBack],
      ]),
      '',
      ...budgetTable(budgets),
    ].join('\n');
    writeResults(RESULTS_PATH, report, markdown, [dataDir, logDir]);
  } finally {
    if (!existsSync(stopFile)) writeFileSync(stopFile, '');
    await stopServer(server);
  }
}

runBench(main);
