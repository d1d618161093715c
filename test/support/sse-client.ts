/** A Server-Sent Events client for tests: connects, parses frames as they come, waits for one. */
import { request, type ClientRequest, type IncomingMessage } from 'node:http';

export interface SseFrame {
  id?: number;
  event: string;
  data: string;
}

export interface SseClient {
  readonly frames: SseFrame[];
  /** As EventSource keeps it: the last `id:` the stream sent, with or without data. */
  lastEventId(): number | undefined;
  /** Resolves with the first frame (already received or still to come) that matches. */
  next(matches: (frame: SseFrame) => boolean, timeoutMs?: number): Promise<SseFrame>;
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  close(): void;
}

export function connectSse(url: string, headers: Record<string, string>): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const frames: SseFrame[] = [];
    let lastId: number | undefined;
    const waiters = new Set<() => void>();
    let endedResolve: () => void = () => undefined;
    const ended = new Promise<void>((r) => (endedResolve = r));
    const req: ClientRequest = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        reject(new Error(`event stream answered ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const frame: SseFrame = { event: 'message', data: '' };
          let hasData = false;
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) {
              frame.id = Number(line.slice(4));
              lastId = frame.id;
            } else if (line.startsWith('event: ')) frame.event = line.slice(7);
            else if (line.startsWith('data: ')) {
              frame.data = line.slice(6);
              hasData = true;
            }
          }
          if (hasData) frames.push(frame);
        }
        for (const wake of [...waiters]) wake();
      });
      res.on('close', () => {
        endedResolve();
        for (const wake of [...waiters]) wake();
      });
      resolve({
        frames,
        lastEventId: () => lastId,
        ended,
        close: () => req.destroy(),
        next(matches, timeoutMs = 20_000) {
          return new Promise((found, fail) => {
            const check = (): boolean => {
              const frame = frames.find(matches);
              if (!frame) return false;
              waiters.delete(check);
              clearTimeout(timer);
              found(frame);
              return true;
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`no matching event; got ${JSON.stringify(frames.map((f) => f.event))}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}
