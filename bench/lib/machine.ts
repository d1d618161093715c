/** What the numbers were measured on, and whether the machine was quiet when the bench started. */
import { statfsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { log } from './processes.js';
import { round } from './stats.js';

export interface MachineInfo {
  node: string;
  platform: string;
  arch: string;
  cpuModel: string;
  cpuCount: number;
  loadAverageAtStart: number[];
}

/** Call at the start: other work on the machine skews every number, so say so rather than guess. */
export function describeMachine(): MachineInfo {
  const loadAverageAtStart = loadavg().map((v) => round(v, 2));
  if ((loadAverageAtStart[0] ?? 0) > 0.5) {
    log(`note: 1-minute load average is ${loadAverageAtStart[0]} before starting; other work on this machine will skew the numbers`);
  }
  const list = cpus();
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cpuCount: list.length,
    loadAverageAtStart,
  };
}

/** The file system type of a directory, as far as it matters here (fsync on tmpfs is free). */
function fileSystemOf(dir: string): string {
  const known: Record<number, string> = {
    0xef53: 'ext2/3/4',
    0x01021994: 'tmpfs',
    0x58465342: 'xfs',
    0x9123683e: 'btrfs',
    0x794c7630: 'overlayfs',
    0x2fc12fc1: 'zfs',
  };
  try {
    const { type } = statfsSync(dir);
    return known[type] ?? `0x${type.toString(16)}`;
  } catch {
    return 'unknown';
  }
}

/** The data dir's file system, with a warning when fsync costs nothing there. */
export function dataDirFileSystem(dir: string, optimistic: string): string {
  const type = fileSystemOf(dir);
  if (type === 'tmpfs') log(`warning: the data dir is on tmpfs, where fsync costs nothing; ${optimistic} will be optimistic`);
  return type;
}
