/** system.ini for a bench's data dir: confhub's [sync] settings as the benches run it, and the targets. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A change is picked up 50 ms after the last write to config.ini (confhub's default is 100 ms). */
export const SYNC = { debounceMinMs: 50, debounceMaxMs: 500, pollIntervalMs: 2000 } as const;

export type IniKeys = Readonly<Record<string, string>>;

/**
 * Writes `<dataDir>/config/system.ini`: [sync] with SYNC's timings, a Docker socket that does not
 * exist (no bench target uses Docker) and the `sync` keys given, then a [target:NAME] per target.
 */
export function writeSystemIni(dataDir: string, title: string, targets: Readonly<Record<string, IniKeys>>, sync: IniKeys = {}): void {
  const configDir = join(dataDir, 'config');
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const section = (name: string, keys: IniKeys): string[] => [`[${name}]`, ...Object.entries(keys).map(([k, v]) => `${k} = ${v}`), ''];
  const syncKeys = {
    docker_socket: join(dataDir, 'no-docker-here.sock'),
    debounce_min_ms: String(SYNC.debounceMinMs),
    debounce_max_ms: String(SYNC.debounceMaxMs),
    poll_interval_ms: String(SYNC.pollIntervalMs),
    ...sync,
  };
  const lines = [`# ${title}`, ...section('sync', syncKeys), ...Object.entries(targets).flatMap(([name, keys]) => section(`target:${name}`, keys))];
  writeFileSync(join(configDir, 'system.ini'), lines.join('\n'));
}
