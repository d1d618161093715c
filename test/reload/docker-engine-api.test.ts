/** The Docker Engine stream demultiplexer; the calls themselves run against a real dockerd in docker.test.ts. */
import { describe, expect, it } from 'vitest';
import { createDemuxer } from '../../src/reload/docker-engine-api.js';

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

describe('Docker stream demultiplexer', () => {
  it('when frames of stdout and stderr arrive split anywhere, then the payloads come out whole, in order, without headers', () => {
    const bytes = Buffer.concat([frame(1, 'hello '), frame(2, 'warning\n'), frame(1, ''), frame(1, 'world\n')]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const out: string[] = [];
      const demux = createDemuxer((payload) => out.push(payload.toString('utf8')));
      // One byte at a time after the cut, the rest in one chunk before it.
      demux(bytes.subarray(0, cut));
      for (let i = cut; i < bytes.length; i++) demux(bytes.subarray(i, i + 1));
      expect(out.join(''), `cut at ${cut}`).toBe('hello warning\nworld\n');
    }
  });
});
