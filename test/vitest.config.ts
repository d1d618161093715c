import { fileURLToPath } from 'node:url';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * The container suite (image build, several container starts) is the longest file by minutes:
 * it starts first, so the other files run on the second worker meanwhile instead of after it.
 */
class ContainerSuiteFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isContainer = (spec: TestSpecification): boolean => spec.moduleId.includes('/test/container/');
    return [...sorted.filter(isContainer), ...sorted.filter((spec) => !isContainer(spec))];
  }
}

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    // Vitest's default is one worker per core but one: on two cores, one file at a time, and the
    // container suite's minutes of image build and container starts (mostly waiting on dockerd)
    // would come on top of every other file's.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    sequence: { sequencer: ContainerSuiteFirst },
  },
});
