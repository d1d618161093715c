/**
 * Exact input only: what a client sends is stored as sent or refused, never repaired. Node and
 * Express repair quietly: invalid UTF-8 becomes U+FFFD, a malformed `%zz` in a query stays as
 * typed, a JSON object with a key twice keeps the last. Each of those is a 400 here, naming what
 * is wrong (never the value).
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { AppError } from '../core/errors.js';

const PERCENT = /%(?![0-9A-Fa-f]{2})/;

/** Why a query string is not exact percent-encoded UTF-8, or undefined. */
export function queryProblem(query: string): string | undefined {
  // Most queries encode nothing; node:http already refused raw bytes above 0x7f in the URL.
  if (!query.includes('%')) return undefined;
  if (PERCENT.test(query)) return 'The query string has a % that is not followed by two hex digits';
  for (const part of query.split('&')) {
    if (!part.includes('%')) continue;
    const bytes: number[] = [];
    for (let i = 0; i < part.length; i++) {
      if (part[i] === '%') {
        bytes.push(Number.parseInt(part.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        bytes.push(part.charCodeAt(i) & 0xff);
      }
    }
    if (!isUtf8(Buffer.from(bytes))) return 'The query string is not valid UTF-8 once percent-decoded';
  }
  return undefined;
}

/** Refuses a request whose query string is not exact (before any route reads it). */
export const exactQuery: RequestHandler = (req, _res, next) => {
  const at = req.url.indexOf('?');
  const problem = at === -1 ? undefined : queryProblem(req.url.slice(at + 1));
  next(problem ? new AppError('INVALID_REQUEST', { details: problem }) : undefined);
};

/**
 * The first key that appears twice in one JSON object of `text` (valid JSON), or undefined. Keys
 * compare as JSON.parse reads them, so `"a"` and `"\u0061"` are the same key.
 */
export function duplicateJsonKey(text: string): string | undefined {
  const stack: (Set<string> | null)[] = [];
  let i = 0;
  let expectKey = false;
  while (i < text.length) {
    const char = text[i]!;
    if (char === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      // Not JSON after all: the parser that runs next says so.
      if (end >= text.length) return undefined;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        let key: string;
        try {
          key = JSON.parse(text.slice(i, end + 1)) as string;
        } catch {
          return undefined;
        }
        if (top.has(key)) return key;
        top.add(key);
      }
      expectKey = false;
      i = end + 1;
      continue;
    }
    if (char === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (char === '[') {
      stack.push(null);
    } else if (char === '}' || char === ']') {
      stack.pop();
    } else if (char === ',') {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
    }
    i++;
  }
  return undefined;
}

/** Why a JSON body is not exact, or undefined. */
export function bodyProblem(body: Buffer): string | undefined {
  if (!isUtf8(body)) return 'The request body is not valid UTF-8';
  const key = duplicateJsonKey(body.toString('utf8'));
  // The key is a name the client sent, not a value: safe to name, cut short.
  return key === undefined ? undefined : `The request body has the key "${key.slice(0, 100)}" twice in one object`;
}

/** For express.json's `verify`: remembers a body's problem, for `refuseInexactBody` after parsing. */
/** The charset a request's Content-Type names, lowercased; undefined when it names none. */
function charsetOf(req: IncomingMessage): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
}

export function bodyChecker(): { verify: (req: IncomingMessage, res: unknown, body: Buffer) => void; refuse: RequestHandler } {
  const problems = new WeakMap<IncomingMessage, AppError>();
  return {
    verify(req, _res, body) {
      // The parser takes UTF-16 and UTF-32 too; confhub stores UTF-8 only.
      const charset = charsetOf(req);
      if (charset !== undefined && charset !== 'utf-8') {
        problems.set(req, new AppError('UNSUPPORTED_MEDIA_TYPE', { details: 'The request body must be UTF-8 JSON' }));
        return;
      }
      const problem = bodyProblem(body);
      if (problem) problems.set(req, new AppError('INVALID_REQUEST', { details: problem }));
    },
    refuse(req, _res, next) {
      next(problems.get(req));
    },
  };
}
