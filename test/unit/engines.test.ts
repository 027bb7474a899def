// Installing prints no engine warnings on the Node versions the project supports: every package
// in the lockfile accepts the lowest Node version package.json names, and the one running.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const semver = require('semver') as { satisfies(v: string, range: string): boolean; minVersion(range: string): { version: string } | null };

interface Lock {
  packages: Record<string, { engines?: { node?: string } | string[] }>;
}

describe('engines', () => {
  it('every locked package accepts the lowest supported Node and the running one', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } };
    const lowest = semver.minVersion(pkg.engines.node)!.version;
    const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as Lock;
    const refused: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      if (!path || range === undefined) continue;
      for (const node of [lowest, process.version])
        if (!semver.satisfies(node, range)) refused.push(`${path} wants node ${range}, not ${node}`);
    }
    expect(refused).toEqual([]);
  });
});
