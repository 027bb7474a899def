// The README's configuration table is where an operator finds every knob: each setting has its
// row, with its environment variable and, for integers, its default as the code has it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, ENV_NAMES, type Config } from '../../src/config/config.js';

const readme = readFileSync('README.md', 'utf8');
const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
/** Config file key → the cells of its row. */
const rows = new Map<string, string[]>();
for (const line of section.split('\n')) {
  if (!line.startsWith('| ')) continue;
  const cells = line.split(' | ').map((c) => c.replace(/^\| |`| \|$/g, '').trim());
  if (cells[2]) rows.set(cells[2], cells);
}

describe('the README configuration table', () => {
  it('has a row for every setting, with its environment variable and its default', () => {
    const problems: string[] = [];
    for (const key of Object.keys(DEFAULTS) as (keyof Config)[]) {
      const row = rows.get(key);
      if (!row) {
        problems.push(`${key}: no row`);
        continue;
      }
      if (row[1] !== ENV_NAMES[key]) problems.push(`${key}: environment ${row[1]}, not ${ENV_NAMES[key]}`);
      const value = DEFAULTS[key];
      if (typeof value === 'number' && row[3] !== String(value)) problems.push(`${key}: default ${row[3]}, not ${value}`);
    }
    expect(problems).toEqual([]);
    expect(rows.size).toBeGreaterThanOrEqual(Object.keys(DEFAULTS).length);
  });
});
