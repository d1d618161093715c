/** What the project says about itself: the license it declares is shipped, and the image is labelled with it. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, root), 'utf8');

describe('project metadata', () => {
  it('when package.json declares a license, then LICENSE holds that license and the image carries it and the version as OCI labels', () => {
    const pkg = JSON.parse(read('package.json')) as { name: string; version: string; license: string };
    expect(pkg.license).toBe('MIT');
    expect(read('LICENSE')).toMatch(/^MIT License\n/);
    const dockerfile = read('Dockerfile');
    // The runtime stage: the last FROM.
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runtime).toContain(`org.opencontainers.image.title="${pkg.name}"`);
    expect(runtime).toContain(`org.opencontainers.image.version="${pkg.version}"`);
    expect(runtime).toContain(`org.opencontainers.image.licenses="${pkg.license}"`);
    expect(runtime).toMatch(/COPY package\.json LICENSE \.\//);
  });
});
