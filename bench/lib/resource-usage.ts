/**
 * CPU and memory of processes from /proc (Linux). CPU time is split between the server, the bench
 * process and everything else, so a run disturbed by other work on the machine shows as such.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { round } from './stats.js';

export interface ProcessStatus {
  rssKiB: number | null;
  /** Anonymous memory: the JS heaps of every thread, malloc, SQLite's cache. */
  rssAnonKiB: number | null;
  /** File-backed pages: mostly the node binary's own code, shared with every other node process. */
  rssFileKiB: number | null;
  peakRssKiB: number | null;
  threads: number | null;
}

export function processStatus(pid: number): ProcessStatus {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): number | null => {
      const match = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status);
      return match ? Number(match[1]) : null;
    };
    return { rssKiB: field('VmRSS'), rssAnonKiB: field('RssAnon'), rssFileKiB: field('RssFile'), peakRssKiB: field('VmHWM'), threads: field('Threads') };
  } catch {
    return { rssKiB: null, rssAnonKiB: null, rssFileKiB: null, peakRssKiB: null, threads: null };
  }
}

/**
 * utime + stime of a process (all its threads), in clock ticks; with `children`, plus the CPU of
 * its children that have exited and been waited for (cutime + cstime: the git processes it ran).
 */
export function processTicks(pid: number | 'self', children = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // After "(comm)", which may hold spaces: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]) + (children ? Number(fields[13]) + Number(fields[14]) : 0);
}

/**
 * CPU time of each thread of a process in nanoseconds, by thread id (the main thread's is the pid),
 * from the scheduler's own accounting (schedstat). Clock ticks are too coarse for an idle process:
 * a thread that wakes a hundred times a second for 70 µs shows as 0 or 1 tick a second.
 */
export function threadCpuNs(pid: number): Map<number, number> {
  const used = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      used.set(Number(tid), Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  // Not even the main thread: schedstat is missing here (a kernel without it, a sandboxed /proc).
  if (!used.has(pid)) throw new Error(`/proc/${pid}/task/${pid}/schedstat cannot be read; the idle CPU cannot be measured`);
  return used;
}

/** A process for sampleCpu: by pid, or with the CPU of the child processes it ran counted as its own. */
export type CpuProcess = number | 'self' | { readonly pid: number | 'self'; readonly children: true };

export function clockTicksPerSecond(): number {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
}

const CORES = cpus().length;

/** Other processes using more cores than this during a measurement make its numbers suspect. */
export const DISTURBED_OTHER_CORES = 0.2;

export interface CpuSample<Name extends string> {
  readonly machineBusy: number;
  readonly machineTotal: number;
  readonly ticks: Readonly<Record<Name, number>>;
}

/** Average cores used per named process (`<name>Cores`) and by all the others (`otherCores`). */
export type CpuShares<Name extends string> = { [K in `${Name}Cores`]: number } & { otherCores: number };

/** Machine-wide and per-process tick counters; null when /proc cannot be read. */
export function sampleCpu<Name extends string>(processes: Readonly<Record<Name, CpuProcess>>): CpuSample<Name> | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const busy = user + nice + system + irq + softirq + steal;
    const ticks = {} as Record<Name, number>;
    for (const name of Object.keys(processes) as Name[]) {
      const target: CpuProcess = processes[name];
      ticks[name] = typeof target === 'object' ? processTicks(target.pid, target.children) : processTicks(target);
    }
    return { machineBusy: busy, machineTotal: busy + idle + iowait, ticks };
  } catch {
    return null;
  }
}

export function cpuShares<Name extends string>(before: CpuSample<Name> | null, after: CpuSample<Name> | null): CpuShares<Name> | null {
  if (!before || !after) return null;
  const total = after.machineTotal - before.machineTotal;
  if (total <= 0) return null;
  const perCore = total / CORES;
  const shares: Record<string, number> = {};
  let named = 0;
  for (const name of Object.keys(after.ticks) as Name[]) {
    const cores = (after.ticks[name] - before.ticks[name]) / perCore;
    shares[`${name}Cores`] = round(cores, 2);
    named += cores;
  }
  shares.otherCores = round(Math.max(0, (after.machineBusy - before.machineBusy) / perCore - named), 2);
  return shares as CpuShares<Name>;
}

export function isDisturbed<T extends { otherCores: number }>(cpu: T | null | undefined): cpu is T {
  return cpu !== null && cpu !== undefined && cpu.otherCores > DISTURBED_OTHER_CORES;
}
