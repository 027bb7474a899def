// The import-direction check in `npm run lint` must fail on a wrong-way import, not pass
// because it sees no edges. Plants one in a copy of src/ and runs dependency-cruiser on it.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
// Inside the project, so that packages resolve from its node_modules.
const copy = mkdtempSync(join(root, '.depcheck-'));
afterAll(() => rmSync(copy, { recursive: true, force: true }));

const cruise = async (dir: string) => {
  const bin = join(root, 'node_modules/.bin/depcruise');
  try {
    const { stdout } = await promisify(execFile)(bin, ['src', '--config', '.dependency-cruiser.cjs'], { cwd: dir });
    return { code: 0, out: stdout };
  } catch (e) {
    const err = e as { code: number; stdout: string };
    return { code: err.code, out: err.stdout };
  }
};

describe('import layers', () => {
  it('passes on the tree as it is, and fails naming the rule on a planted wrong-way import', async () => {
    for (const f of ['src', '.dependency-cruiser.cjs', 'tsconfig.json', 'package.json'])
      cpSync(join(root, f), join(copy, f), { recursive: true });
    const clean = await cruise(copy);
    expect(clean.out).toMatch(/no dependency violations found \(\d+ modules, \d+ dependencies cruised\)/);
    expect(clean.code).toBe(0);

    const target = join(copy, 'src/core/encoding.ts');
    writeFileSync(target, `import type { Store } from '../store/store.js';\nexport type Planted = Store;\n${readFileSync(target, 'utf8')}`);
    const planted = await cruise(copy);
    expect(planted.code).not.toBe(0);
    expect(planted.out).toContain('core-must-not-import-store: src/core/encoding.ts → src/store/store.ts');
  });
});
