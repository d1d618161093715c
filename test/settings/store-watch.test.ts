/**
 * Reads of config.ini that skip the stat while its directory reports no change: what a read
 * sees with events, without them (the bound), and when the watch cannot start.
 */
import { renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { createIniFileReader, type DirectoryListener, type WatchOptions } from '../../src/settings/store.js';
import { createHarness, type Harness } from '../support/harness.js';
import { tempDirs } from '../support/temp-dirs.js';

const newDir = tempDirs('confhub-store-watch-');

/** Writes config.ini with this cockpit port through a rename, dated a minute back (past the racy window). */
function replace(path: string, port: number): void {
  writeFileSync(`${path}.tmp`, `[cockpit]\nport = ${port}\n`);
  const past = new Date(Date.now() - 60_000);
  utimesSync(`${path}.tmp`, past, past);
  renameSync(`${path}.tmp`, path);
}

const portOf = (reader: ReturnType<typeof createIniFileReader>): string | undefined => reader.read().doc.byName.get('cockpit')?.byKey.get('port')?.value;

/** A reader whose directory events and clock the test drives. */
function drivenReader({ subscribe = true }: { subscribe?: boolean } = {}) {
  const path = join(newDir(), 'config.ini');
  replace(path, 9001);
  let time = 1_000_000;
  let listener: DirectoryListener | undefined;
  const watch: WatchOptions = {
    maxAgeMs: 100,
    now: () => time,
    watchDirectory: (_dir, given) => {
      if (!subscribe) throw new Error('no inotify watches left');
      listener = given;
      return { close: () => undefined };
    },
  };
  const reader = createIniFileReader({ path, label: 'config.ini', schema: CONFIG_SCHEMA, watch });
  return {
    path,
    reader,
    report: (name: string | null) => listener?.changed(name),
    fail: () => listener?.failed(),
    advance: (ms: number) => {
      time += ms;
    },
  };
}

describe('reads of a watched config.ini', () => {
  it('when the file changes with no event yet, then reads keep the checked snapshot until its event, and an event for another file changes nothing', () => {
    const { path, reader, report } = drivenReader();
    expect(portOf(reader)).toBe('9001');
    replace(path, 9002);
    expect(portOf(reader)).toBe('9001');
    report('other.ini');
    expect(portOf(reader)).toBe('9001');
    report('config.ini');
    expect(portOf(reader)).toBe('9002');
    replace(path, 9003);
    report(null);
    expect(portOf(reader)).toBe('9003');
  });

  it('when no event ever comes (a share that sends none), then a change is seen once the last check is 100 ms old', () => {
    const { path, reader, advance } = drivenReader();
    expect(portOf(reader)).toBe('9001');
    replace(path, 9002);
    advance(99);
    expect(portOf(reader)).toBe('9001');
    advance(1);
    expect(portOf(reader)).toBe('9002');
  });

  it('when the watch cannot start, stops or is closed, then every read checks the file', () => {
    const unwatched = drivenReader({ subscribe: false });
    expect(portOf(unwatched.reader)).toBe('9001');
    replace(unwatched.path, 9002);
    expect(portOf(unwatched.reader)).toBe('9002');

    const stopped = drivenReader();
    expect(portOf(stopped.reader)).toBe('9001');
    stopped.fail();
    replace(stopped.path, 9002);
    expect(portOf(stopped.reader)).toBe('9002');
    replace(stopped.path, 9003);
    expect(portOf(stopped.reader)).toBe('9003');

    const closed = drivenReader();
    expect(portOf(closed.reader)).toBe('9001');
    closed.reader.close();
    replace(closed.path, 9002);
    expect(portOf(closed.reader)).toBe('9002');
  });
});

describe('hand edits through the API of confhub as shipped (the directory watched with fs.watch)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('when config.ini is edited by hand, in place or replaced as editors do, then each next GET shows the edit', async () => {
    h = await createHarness();
    const harness = h;
    const get = () => request(harness.app).get('/api/v1/settings/cockpit').set('x-api-key', harness.apiKey);
    expect((await get()).body).toEqual({ port: 9090 });
    await new Promise((resolve) => setTimeout(resolve, 150)); // past the racy window: reads are served from the cache
    let port = 9090;
    for (let i = 0; i < 20; i++) {
      const previous = port;
      port = 9100 + i;
      const text = harness.readConfig().replace(`port = ${previous}\n`, `port = ${port}\n`);
      if (i % 2 === 0) harness.writeConfig(text);
      else {
        writeFileSync(`${harness.config.configPath}.edit`, text);
        renameSync(`${harness.config.configPath}.edit`, harness.config.configPath);
      }
      expect((await get()).body).toEqual({ port });
    }
  });
});
