/**
 * How both threads turn config.ini's bytes into text and a revision id, so they always agree:
 * strict UTF-8 (invalid bytes are an error, never U+FFFD in a service file) and a BOM kept as
 * part of the text (it is written back byte for byte). The revision is the sha256 of the bytes.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../core/errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function decodeText(bytes: Uint8Array, label: string): string {
  try {
    return utf8.decode(bytes);
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', { message: `${label} is invalid`, details: `${label} is not valid UTF-8`, cause });
  }
}

export function revisionOf(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
