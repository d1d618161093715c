/** A private dockerd for a bench (test/support/engines.ts), signalled if the bench dies before it stops it. */
import { startDockerd, type PrivateDockerd } from '../../test/support/engines.js';
import { log, onExit, signalPid } from './processes.js';

export async function startBenchDockerd(): Promise<{ engine: PrivateDockerd; stop: () => Promise<void> }> {
  log('starting a private dockerd');
  const engine = await startDockerd();
  const undo = onExit(() => signalPid(engine.pid, 'SIGTERM'));
  return {
    engine,
    async stop() {
      await engine.stop();
      undo();
    },
  };
}
