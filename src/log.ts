/**
 * pino JSON logs to stdout. Secrets never reach a log call by design (values and query strings
 * are not logged); the redaction list is the safety net for anything that slips through.
 *
 * A log line is never worth the process: stdout may be a pipe whose reader is gone (EPIPE), a
 * file on a full disk (ENOSPC), or a reader too slow to keep up. pino's own destination re-emits
 * such an error where nothing catches it, and at exit retries it forever, so confhub writes its
 * lines itself: a bounded buffer, one write at a time, and a line that cannot be written is
 * dropped and counted (`confhub_log_lines_dropped_total`), while the process goes on serving.
 */
import { write as fsWrite, writeSync } from 'node:fs';
import { pino, type Logger } from 'pino';

export const REDACT_PATHS = [
  'apiKey',
  'key',
  'password',
  'value',
  'headers["x-api-key"]',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'req.headers.authorization',
  '*.apiKey',
  '*.password',
  '*.value',
];

export interface CreateLoggerOptions {
  level: string;
  /** Default: a log destination on stdout (createLogDestination). */
  destination?: pino.DestinationStream;
}

export function createLogger({ level, destination }: CreateLoggerOptions): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'confhub' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(options, destination ?? (level === 'silent' ? SILENT : createLogDestination()));
}

const SILENT: pino.DestinationStream = { write: () => undefined };

/** What a log destination writes with; tests pass failing ones. */
export interface LogWriter {
  write(fd: number, buffer: Buffer, callback: (error: NodeJS.ErrnoException | null, written: number) => void): void;
  writeSync(fd: number, buffer: Buffer): number;
}

const FS_WRITER: LogWriter = {
  write: (fd, buffer, callback) => fsWrite(fd, buffer, 0, buffer.length, null, callback),
  writeSync: (fd, buffer) => writeSync(fd, buffer),
};

export interface LogDestinationOptions {
  /** Default 1 (stdout; a worker thread writes to it directly too). */
  fd?: number;
  /**
   * Characters of lines waiting for the destination, at most; lines beyond are dropped. A stalled
   * reader costs this much memory, never more. Default 1 MiB.
   */
  maxBufferedChars?: number;
  /** Told of every line dropped (never logs: that would only add lines to drop). */
  onDrop?: (lines: number) => void;
  /** `pretty`: each JSON line turned into one for people (a terminal). Default `json`. */
  format?: 'json' | 'pretty';
  writer?: LogWriter;
}

export interface LogDestination extends pino.DestinationStream {
  /** Lines dropped since this destination was made. */
  dropped(): number;
}

/** A destination busy with the reader's EAGAIN tries again this much later. */
const EAGAIN_RETRY_MS = 10;

/**
 * Lines on their way to the destination: their bytes, and where each log line ends in them. A
 * pretty line with a stack spans several text lines but is one line of the log, counted once.
 */
interface Batch {
  readonly bytes: Buffer;
  readonly ends: readonly number[];
}

function batchOf(lines: readonly string[]): Batch {
  const bytes = Buffer.from(lines.join(''), 'utf8');
  const ends: number[] = [];
  let end = 0;
  for (const line of lines) {
    end += Buffer.byteLength(line, 'utf8');
    ends.push(end);
  }
  return { bytes, ends };
}

/** Log lines not wholly written when `written` bytes of the batch were: a line cut short counts. */
function linesAfter(batch: Batch, written: number): number {
  return batch.ends.filter((end) => end > written).length;
}

export function createLogDestination({
  fd = 1,
  maxBufferedChars = 1024 * 1024,
  onDrop,
  writer = FS_WRITER,
  format = 'json',
}: LogDestinationOptions = {}): LogDestination {
  let pending: string[] = [];
  let pendingChars = 0;
  let writing = false;
  let dropped = 0;
  let exitHooked = false;

  function drop(lines: number): void {
    if (lines === 0) return;
    dropped += lines;
    try {
      onDrop?.(lines);
    } catch {
      // Counting must not become the failure it counts.
    }
  }

  function take(): Batch {
    const batch = batchOf(pending);
    pending = [];
    pendingChars = 0;
    return batch;
  }

  function next(): void {
    if (pending.length === 0) return;
    writing = true;
    send(take(), 0);
  }

  function send(batch: Batch, from: number): void {
    writer.write(fd, batch.bytes.subarray(from), (error, written) => {
      if (error?.code === 'EAGAIN') {
        setTimeout(() => send(batch, from), EAGAIN_RETRY_MS).unref();
        return;
      }
      if (error) {
        // EPIPE, ENOSPC, EIO…: these lines are lost; the next ones try again.
        drop(linesAfter(batch, from));
        writing = false;
        next();
        return;
      }
      if (from + written < batch.bytes.length) {
        send(batch, from + written);
        return;
      }
      writing = false;
      next();
    });
  }

  /** At exit the event loop is gone: what waits is written now, once, and dropped if that fails. */
  function flushAtExit(): void {
    if (pending.length === 0) return;
    const batch = take();
    let from = 0;
    try {
      while (from < batch.bytes.length) from += writer.writeSync(fd, batch.bytes.subarray(from));
    } catch {
      drop(linesAfter(batch, from));
    }
  }

  return {
    write(json: string): void {
      const line = format === 'pretty' ? prettyLine(json) : json;
      if (pendingChars + line.length > maxBufferedChars) {
        drop(1);
        return;
      }
      pending.push(line);
      pendingChars += line.length;
      if (!exitHooked) {
        exitHooked = true;
        process.once('exit', flushAtExit);
      }
      if (!writing) next();
    },
    dropped: () => dropped,
  };
}

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Shown in front of the message, or left out (the same on every line). */
const HEAD_FIELDS = new Set(['time', 'level', 'msg', 'service', 'module', 'thread', 'err']);

function shown(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}

/**
 * One pino JSON line as a person reads it: `12:00:01.123 WARN  sync-worker reconcile: message
 * key=value …`, an error's stack on the lines below. A line that is not JSON passes as it is.
 */
export function prettyLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : '';
  const level = (LEVEL_NAMES[entry.level as number] ?? String(entry.level)).padEnd(5);
  const where = [entry.thread, entry.module].filter((part) => typeof part === 'string').join(' ');
  const fields = Object.entries(entry)
    .filter(([name]) => !HEAD_FIELDS.has(name))
    .map(([name, value]) => `${name}=${shown(value)}`);
  const err = entry.err as { type?: string; message?: string; stack?: string } | undefined;
  const stack = err?.stack ? `\n    ${err.stack.split('\n').join('\n    ')}` : err?.message ? `\n    ${err.type ?? 'Error'}: ${err.message}` : '';
  return `${[time, level, where ? `${where}:` : '', String(entry.msg ?? '')].filter(Boolean).join(' ')}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}${stack}\n`;
}

/** `auto` (CONFHUB_LOG_FORMAT's default): lines for people on a terminal, JSON lines for a collector. */
export function resolveLogFormat(format: 'json' | 'pretty' | 'auto', stdoutIsTerminal = process.stdout.isTTY === true): 'json' | 'pretty' {
  return format === 'auto' ? (stdoutIsTerminal ? 'pretty' : 'json') : format;
}
