/** The settings store's write queue: every write queued lands, whenever it is queued. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeEach(async () => {
  h = await createHarness();
});
afterEach(async () => {
  await h.close();
});

const actor = { type: 'system', id: 'test' } as const;
const port = (value: string) => ({ changes: [{ section: 'cockpit', key: 'port', value }], actor });

/** Settles with the write's outcome, or 'stranded' if it does not land within a generous time. */
function within(write: Promise<unknown>, ms = 5000): Promise<unknown> {
  return Promise.race([write.then(() => 'landed'), new Promise((resolve) => setTimeout(() => resolve('stranded'), ms))]);
}

describe('settings store queue', () => {
  it('when a write is queued by the code resumed by the previous write, as the queue winds down, then it lands too', async () => {
    // As at start-up: a step awaits its write and returns, and the next step writes at once. Its
    // write is queued one hop after the first one settled: while the drain has just found the
    // queue empty, before anything else ran.
    const step = async (value: string): Promise<void> => {
      await h.settings.update(port(value));
    };
    const second = step('9101').then(() => h.settings.update(port('9102')));
    expect(await within(second)).toBe('landed');
    expect(h.readConfig()).toContain('port = 9102');
    const third = step('9103').then(() => step('9104').then(() => h.settings.update(port('9105'))));
    expect(await within(third)).toBe('landed');
    expect(h.readConfig()).toContain('port = 9105');
  });
});
