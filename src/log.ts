/**
 * pino JSON logs to stdout. Secrets never reach a log call by design (values and query strings
 * are not logged); the redaction list is the safety net for anything that slips through.
 */
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
  destination?: pino.DestinationStream;
}

export function createLogger({ level, destination }: CreateLoggerOptions): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'confhub' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
