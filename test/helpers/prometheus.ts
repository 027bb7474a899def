// Reading the Prometheus text exposition, naming the metrics a PromQL expression reads, and
// running promtool (Debian's `prometheus` package; .ci/run installs it). A test that needs
// promtool fails when it is missing: it is never skipped.
import { spawnSync } from 'node:child_process';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const SUFFIXES = ['_bucket', '_sum', '_count'];

/** The families of an exposition, by name; each sample goes to the family it belongs to. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') family(meta[2]!).type = meta[3]!;
      else family(meta[2]!).help = meta[3]!;
      continue;
    }
    const m = SAMPLE_RE.exec(line);
    if (!m) throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(LABEL_RE)) labels[k!] = v!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const base = families.has(name)
      ? name
      : (SUFFIXES.map((s) => (name.endsWith(s) ? name.slice(0, -s.length) : '')).find((b) => families.has(b)) ?? name);
    family(base).samples.push({ name, labels, value: Number(m[3]) });
  }
  return families;
}

/** The value of the one sample named `name` whose labels include `labels`; 0 when there is none. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const base = families.has(name)
    ? name
    : SUFFIXES.map((s) => (name.endsWith(s) ? name.slice(0, -s.length) : '')).find((b) => families.has(b));
  const found = (base === undefined ? [] : families.get(base)!.samples).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value ?? 0;
}

/** Whether `name` is exported: a family of the exposition, or a histogram's _bucket/_sum/_count
 * (a summary's _sum/_count). */
export function isExported(families: Map<string, Family>, name: string): boolean {
  if (families.has(name)) return true;
  return SUFFIXES.some((s) => {
    if (!name.endsWith(s)) return false;
    const f = families.get(name.slice(0, -s.length));
    return f !== undefined && (f.type === 'histogram' || (f.type === 'summary' && s !== '_bucket'));
  });
}

/** Words of PromQL that are not metric names where they stand (functions are told apart by the
 * parenthesis that follows them). */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'atan2',
  'inf',
  'nan',
]);

/** The metric names a PromQL expression reads (Grafana's $variables allowed). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?\w+\}?/g, ' '); // Grafana variables
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] !== undefined || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

export interface PromtoolResult {
  status: number;
  output: string;
}

/** Runs promtool; throws (the test fails) when it is not installed. */
export function promtool(args: string[], options: { input?: string; cwd?: string } = {}): PromtoolResult {
  const r = spawnSync('promtool', args, { input: options.input, cwd: options.cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      missing
        ? 'promtool is not installed: it comes with Debian\'s "prometheus" package (apt-get install prometheus), which .ci/run installs'
        : r.error.message,
    );
  }
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}`.trim() };
}
