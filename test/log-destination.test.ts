/**
 * The log destination: one write at a time, a bounded buffer behind it, and every line that cannot
 * be written dropped and counted instead of thrown.
 */
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createLogDestination, createLogger, prettyLine, resolveLogFormat, type LogWriter } from '../src/log.js';
import { loadRuntimeConfig } from '../src/runtime-config.js';
import { eventually } from './support/wait.js';

type Callback = (error: NodeJS.ErrnoException | null, written: number) => void;

/** A writer whose writes complete only when the test says so. */
function heldWriter() {
  const calls: { buffer: Buffer; callback: Callback }[] = [];
  const writer: LogWriter = {
    write: (_fd, buffer, callback) => {
      calls.push({ buffer: Buffer.from(buffer), callback });
    },
    writeSync: (_fd, buffer) => buffer.length,
  };
  return { writer, calls };
}

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

describe('log destination', () => {
  it('when the destination is a full disk (/dev/full), then every line is dropped and counted, and nothing throws', async () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const drops: number[] = [];
      const destination = createLogDestination({ fd, onDrop: (lines) => drops.push(lines) });
      const logger = createLogger({ level: 'info', destination });
      for (let i = 0; i < 20; i++) logger.info({ i }, 'a line');
      await eventually('every line is counted', () => destination.dropped() === 20);
      expect(drops.reduce((a, b) => a + b, 0)).toBe(20);
    } finally {
      closeSync(fd);
    }
  });

  it('when the reader falls behind, then lines wait in a bounded buffer and the ones beyond it are dropped and counted', () => {
    const { writer, calls } = heldWriter();
    const destination = createLogDestination({ writer, maxBufferedChars: 100 });
    destination.write(`${'a'.repeat(49)}\n`);
    expect(calls).toHaveLength(1);
    // The first line is on its way; the next two fill the buffer, the rest do not fit.
    destination.write(`${'b'.repeat(49)}\n`);
    destination.write(`${'c'.repeat(49)}\n`);
    destination.write(`${'d'.repeat(49)}\n`);
    destination.write(`${'e'.repeat(49)}\n`);
    expect(destination.dropped()).toBe(2);
    calls[0]!.callback(null, 50);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.buffer.toString()).toBe(`${'b'.repeat(49)}\n${'c'.repeat(49)}\n`);
  });

  it('when a write fails (EPIPE), then its lines are counted and the next lines are written again', () => {
    const { writer, calls } = heldWriter();
    const destination = createLogDestination({ writer });
    destination.write('one\n');
    destination.write('two\n');
    destination.write('three\n');
    calls[0]!.callback(errno('EPIPE'), 0);
    expect(destination.dropped()).toBe(1);
    calls[1]!.callback(errno('EPIPE'), 0);
    expect(destination.dropped()).toBe(3);
    destination.write('four\n');
    calls[2]!.callback(null, 5);
    expect(calls.map((c) => c.buffer.toString())).toEqual(['one\n', 'two\nthree\n', 'four\n']);
    expect(destination.dropped()).toBe(3);
  });

  it('when a write is partial, then the rest is written next; a failure after it counts the line cut short', () => {
    const { writer, calls } = heldWriter();
    const destination = createLogDestination({ writer });
    destination.write('first line\n');
    destination.write('second\n');
    calls[0]!.callback(null, 6);
    expect(calls[1]!.buffer.toString()).toBe('line\n');
    calls[1]!.callback(null, 5);
    expect(calls[2]!.buffer.toString()).toBe('second\n');
    calls[2]!.callback(null, 3);
    calls[3]!.callback(errno('ENOSPC'), 0);
    expect(calls[3]!.buffer.toString()).toBe('ond\n');
    expect(destination.dropped()).toBe(1);
  });

  it('when pretty lines with stacks (several text lines each) are lost, then each log line is counted once', () => {
    const { writer, calls } = heldWriter();
    const destination = createLogDestination({ writer, format: 'pretty' });
    const failure = (n: number) =>
      `${JSON.stringify({ level: 50, time: '2026-01-01T12:00:00.000Z', msg: `failed ${n}`, err: { type: 'Error', message: 'm', stack: 'Error: m\n    at a\n    at b' } })}\n`;
    destination.write(failure(1));
    destination.write(failure(2));
    destination.write(failure(3));
    expect(calls[0]!.buffer.toString().split('\n').length).toBeGreaterThan(3);
    calls[0]!.callback(null, 10);
    calls[1]!.callback(errno('EPIPE'), 0);
    expect(destination.dropped()).toBe(1);
    calls[2]!.callback(errno('EPIPE'), 0);
    expect(destination.dropped()).toBe(3);
  });

  it('when the reader is busy (EAGAIN), then the same bytes are written again a moment later, none dropped', async () => {
    const { writer, calls } = heldWriter();
    const destination = createLogDestination({ writer });
    destination.write('line\n');
    calls[0]!.callback(errno('EAGAIN'), 0);
    await eventually('the write is tried again', () => calls.length === 2);
    expect(calls[1]!.buffer.toString()).toBe('line\n');
    calls[1]!.callback(null, 5);
    expect(destination.dropped()).toBe(0);
  });
});

describe('log lines for people', () => {
  it('when the format is pretty, then each JSON line becomes time, level, thread and module, message, fields; an error keeps its stack', () => {
    const line = prettyLine(
      `${JSON.stringify({ level: 40, time: '2026-12-05T12:00:01.123Z', service: 'confhub', thread: 'sync-worker', module: 'reconcile', action: 'docker restart app', attempts: 3, msg: 'the service is still unreachable' })}\n`,
    );
    expect(line).toBe('12:00:01.123 WARN  sync-worker reconcile: the service is still unreachable action="docker restart app" attempts=3\n');
    const failed = prettyLine(
      `${JSON.stringify({ level: 50, time: '2026-12-05T12:00:02.000Z', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' }, msg: 'failed' })}\n`,
    );
    expect(failed).toBe('12:00:02.000 ERROR failed\n    Error: boom\n        at x\n');
    expect(prettyLine('not json\n')).toBe('not json\n');
  });

  it('when CONFHUB_LOG_FORMAT is auto (the default), then a terminal gets lines for people and anything else JSON; json and pretty are taken as set', () => {
    expect(resolveLogFormat('auto', true)).toBe('pretty');
    expect(resolveLogFormat('auto', false)).toBe('json');
    expect(resolveLogFormat('json', true)).toBe('json');
    expect(resolveLogFormat('pretty', false)).toBe('pretty');
    expect(loadRuntimeConfig({ CONFHUB_DATA_DIR: '/data' }, '/').logFormat).toBe('auto');
    expect(() => loadRuntimeConfig({ CONFHUB_DATA_DIR: '/data', CONFHUB_LOG_FORMAT: 'xml' }, '/')).toThrow(/CONFHUB_LOG_FORMAT/);
  });

  it('when a destination is pretty, then what it writes is the pretty line', async () => {
    const written: string[] = [];
    const destination = createLogDestination({
      format: 'pretty',
      writer: {
        write: (_fd, buffer, callback) => {
          written.push(buffer.toString());
          callback(null, buffer.length);
        },
        writeSync: (_fd, buffer) => buffer.length,
      },
    });
    destination.write(`${JSON.stringify({ level: 30, time: '2026-12-05T12:00:03.000Z', msg: 'hello' })}\n`);
    await new Promise((resolve) => setImmediate(resolve));
    expect(written.join('')).toBe('12:00:03.000 INFO  hello\n');
  });
});
