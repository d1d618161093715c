/**
 * A wait on the injected clock that, unlike core's sleep(), holds the process open: while
 * `confhub once` waits for a service to come back, nothing else keeps it running.
 */
import type { Clock } from '../core/clock.js';

export function pause(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.setTimeout(resolve, Math.max(0, ms));
  });
}
