/**
 * Child process for the crash tests of docker-recreate.test.ts: recreates one container and,
 * when it reaches the step named in argv, prints "at STEP" and waits there for ever, so the
 * parent can kill -9 it exactly at that boundary. Prints "done" or "failed CODE" when it is not
 * stopped.
 * Usage: node --import tsx test/reload/docker-recreate-child.ts <socketPath> <container> <step> <env JSON>
 */
import { createLogger } from '../../src/log.js';
import { createEnvRecreator, type RecreateStep } from '../../src/reload/docker-recreate.js';

const [socketPath = '', container = '', stopAt = '', envJson = '{}'] = process.argv.slice(2);
const recreator = createEnvRecreator({ socketPath, logger: createLogger({ level: 'silent' }), pollIntervalMs: 50 });

recreator
  .recreate({
    ref: { by: 'name', name: container },
    env: new Map(Object.entries(JSON.parse(envJson) as Record<string, string>)),
    timeoutMs: 20_000,
    healthTimeoutMs: 5_000,
    stableMs: 300,
    async onStep(step: RecreateStep) {
      if (step !== stopAt) return;
      process.stdout.write(`at ${step}\n`);
      // Held here until the parent's SIGKILL: the timer keeps the process alive.
      await new Promise(() => setInterval(() => undefined, 60_000));
    },
  })
  .then(
    () => process.stdout.write('done\n'),
    (error: { code?: string }) => process.stdout.write(`failed ${error.code ?? 'unknown'}\n`),
  );
