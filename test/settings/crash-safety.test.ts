import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeStaleTempFiles } from '../../src/fs/atomic-write.js';
import { parseIni } from '../../src/ini/document.js';

const shipped = readFileSync(new URL('../../config/config.ini', import.meta.url), 'utf8');
const dataDir = mkdtempSync(join(tmpdir(), 'confhub-crash-'));
const configPath = join(dataDir, 'config', 'config.ini');

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const payloadFor = (n: number): string => `p${n}-${'x'.repeat((n * 37) % 500)}`;

/** Runs the write loop until it acknowledged `acks` writes past `startAt`, then SIGKILLs it. */
function runAndKill(startAt: number, acks: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/write-loop.ts', dataDir, String(startAt)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lastAck = startAt - 1;
    let buffered = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) lastAck = Number(line.slice(4));
      // Kill at a point that is not aligned with a write: after a random extra delay.
      if (lastAck >= startAt + acks - 1 && !child.killed) setTimeout(() => child.kill('SIGKILL'), Math.random() * 5);
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(lastAck);
      else reject(new Error(`write loop exited with ${code}: ${stderr}`));
    });
  });
}

describe('crash safety of config.ini writes', () => {
  it('when the writer is killed with SIGKILL at random moments, then the file always parses and equals an acknowledged state (or the one in flight)', async () => {
    mkdirSync(join(dataDir, 'config'), { recursive: true });
    writeFileSync(configPath, `${shipped}\n[extra]\ncounter = 0\npayload = ${payloadFor(0)}\n`);
    let next = 1;
    for (let round = 0; round < 6; round++) {
      const lastAck = await runAndKill(next, 20 + Math.floor(Math.random() * 60));
      const doc = parseIni(readFileSync(configPath, 'utf8'));
      const counter = Number(doc.byName.get('extra')!.byKey.get('counter')!.value);
      expect([lastAck, lastAck + 1]).toContain(counter);
      expect(doc.byName.get('extra')!.byKey.get('payload')!.value).toBe(payloadFor(counter));
      // Everything but [extra] is the shipped file, byte for byte.
      expect(readFileSync(configPath, 'utf8').startsWith(shipped)).toBe(true);
      await removeStaleTempFiles(configPath);
      expect(readdirSync(join(dataDir, 'config')).filter((name) => name.endsWith('.confhub-tmp'))).toEqual([]);
      next = counter + 1;
    }
  }, 120_000);
});
