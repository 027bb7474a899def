// The operations files in config/ against the running service and the README (Operations):
// the alert rules and the runbook's triage queries pass `promtool test rules`, every metric the
// Grafana dashboard, the alerts and the queries name is one a live registry exports, and the
// README lists the same metrics, alerts and queries as the files and the service.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REJECT_REASONS } from '../../src/obs/metrics.js';
import { Committer } from '../helpers/commits.js';
import { genesisRecord, put, signers } from '../helpers/fixtures.js';
import { isExported, metricNames, parseExposition, promtool, type Family } from '../helpers/prometheus.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

const ROOT = join(import.meta.dirname, '..', '..');
const PROMETHEUS_DIR = join(ROOT, 'config', 'prometheus');
const ALERTS = join(PROMETHEUS_DIR, 'registry-alerts.yml');
const ALERT_TESTS = join(PROMETHEUS_DIR, 'registry-alerts.test.yml');
const RUNBOOK_TESTS = join(PROMETHEUS_DIR, 'runbook.test.yml');
const DASHBOARD = join(ROOT, 'config', 'grafana', 'registry-dashboard.json');

const read = (path: string) => readFileSync(path, 'utf8');

/** A YAML scalar as written in these files: bare, or in single or double quotes. */
const scalar = (text: string): string => {
  const t = text.trim();
  if (t.startsWith("'")) return t.slice(1, -1).replaceAll("''", "'");
  if (t.startsWith('"')) return JSON.parse(t) as string;
  return t;
};

const alertRules = (): { name: string; expr: string }[] =>
  [...read(ALERTS).matchAll(/- alert: (\S+)\n(?:\s*#.*\n)*\s*expr: (.+)\n/g)].map((m) => ({ name: m[1]!, expr: scalar(m[2]!) }));

const runbookTestQueries = (): string[] => [...read(RUNBOOK_TESTS).matchAll(/- expr: (.+)\n/g)].map((m) => scalar(m[1]!));

/** The README's section `heading` (to the next heading of the same or a higher level). */
function readmeSection(heading: string): string {
  const text = read(join(ROOT, 'README.md'));
  const level = /^#+/.exec(heading)![0].length;
  const start = text.indexOf(`\n${heading}\n`);
  expect(start, `README has ${heading}`).toBeGreaterThan(-1);
  const rest = text.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`^#{1,${level}} `, 'm'));
  return end === -1 ? rest : rest.slice(0, end);
}

/** The rows of the first Markdown table in `section` (its header left out), as cells. */
function tableRows(section: string): string[][] {
  const lines = section.split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const end = lines.findIndex((l, i) => i > first && !l.startsWith('|'));
  return lines
    .slice(first, end === -1 ? undefined : end)
    .filter((l) => !/^\|[-| ]+\|$/.test(l))
    .slice(1)
    .map((l) =>
      l
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
}

interface Panel {
  type: string;
  title: string;
  id: number;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
}

const dashboard = () => JSON.parse(read(DASHBOARD)) as { title: string; uid: string; panels: Panel[] };
const dashboardExprs = (): { panel: string; expr: string }[] =>
  dashboard().panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

describe('alert rules and runbook queries', () => {
  it('are valid rules, and pass their promtool unit tests', () => {
    const checked = promtool(['check', 'rules', ALERTS]);
    expect(checked.output).toMatch(/SUCCESS: 6 rules found/);
    expect(checked.status).toBe(0);
    const tested = promtool(['test', 'rules', 'registry-alerts.test.yml', 'runbook.test.yml'], { cwd: PROMETHEUS_DIR });
    expect(tested.output).not.toMatch(/FAILED/);
    expect(tested.status, tested.output).toBe(0);
  });

  it('fail when a rule is broken: the tests are not vacuous', () => {
    const dir = mkdtempSync(join(tmpdir(), 'promtool-'));
    // The write-plane alert on instances that accept writes, instead of those that refuse them.
    const broken = read(ALERTS).replace('expr: registry_write_ready == 0', 'expr: registry_write_ready == 1');
    expect(broken).not.toBe(read(ALERTS));
    writeFileSync(join(dir, 'registry-alerts.yml'), broken);
    writeFileSync(join(dir, 'registry-alerts.test.yml'), read(ALERT_TESTS));
    const tested = promtool(['test', 'rules', 'registry-alerts.test.yml'], { cwd: dir });
    expect(tested.output).toMatch(/FAILED[\s\S]*RegistryWritePlaneUnready/);
    expect(tested.status).not.toBe(0);
  });

  it('test every alert, firing and quiet', () => {
    const tests = read(ALERT_TESTS);
    const names = alertRules().map((r) => r.name);
    expect(names).toEqual([
      'RegistryReadLatencyHigh',
      'RegistryCommitLatencyHigh',
      'RegistryStreamSubscribersLagging',
      'RegistryInvalidSignatures',
      'RegistryWritePlaneUnready',
      'RegistryCheckpointOverdue',
    ]);
    for (const name of names) {
      const cases = [...tests.matchAll(new RegExp(`alertname: ${name}\\n\\s*exp_alerts:(.*)\\n`, 'g'))].map((m) => m[1]!.trim());
      expect(cases, `${name}: a case where it stays quiet`).toContain('[]');
      expect(cases, `${name}: a case where it fires`).toContain('');
    }
  });

  it('the README lists every alert, and exactly the triage queries that runbook.test.yml checks', () => {
    const section = readmeSection('### Alerts and runbook');
    const alerts = tableRows(section).map((r) => r[0]!.replaceAll('`', ''));
    expect(alerts).toEqual(alertRules().map((r) => r.name));
    const queries = tableRows(readmeSection('#### Triage queries')).map((r) => {
      const m = /^`(.+)`$/.exec(r[1]!);
      expect(m, `a query in backticks: ${r[1]}`).not.toBeNull();
      return m![1]!.replaceAll('\\|', '|');
    });
    expect(queries.length).toBeGreaterThanOrEqual(10);
    expect([...queries].sort()).toEqual([...runbookTestQueries()].sort());
  });
});

describe('the Grafana dashboard', () => {
  it('is a dashboard with the three sections, distinct panel ids and a sound grid', () => {
    const d = dashboard();
    expect(d.uid).toBe('signed-registry');
    const rows = d.panels.filter((p) => p.type === 'row').map((p) => p.title);
    expect(rows).toEqual(['Service overview', 'Commit path', 'Audit and retention']);
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of d.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type !== 'row') expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
    const titles = d.panels.map((p) => p.title);
    for (const t of [
      'Read latency p95 / p99',
      'In flight',
      'Rejects by reason',
      'Commit latency',
      'Verify time per approval',
      'Approvals per commit',
      'Storage',
    ])
      expect(titles).toContain(t);
  });

  it('holds PromQL that promtool parses', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-'));
    // Grafana's variables, as Grafana would fill them in.
    const rules = dashboardExprs().map(({ expr }, i) => ({
      record: `dashboard:expr_${i}`,
      expr: expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*'),
    }));
    const yaml = `groups:\n  - name: dashboard\n    rules:\n${rules.map((r) => `      - record: ${r.record}\n        expr: ${JSON.stringify(r.expr)}\n`).join('')}`;
    writeFileSync(join(dir, 'dashboard.yml'), yaml);
    const checked = promtool(['check', 'rules', join(dir, 'dashboard.yml')]);
    expect(checked.status, checked.output).toBe(0);
    expect(checked.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });
});

describe('metric names against a live exposition', () => {
  let reg: TestRegistry;
  let families: Map<string, Family>;
  beforeAll(async () => {
    const keys = signers('alice', 'bob');
    reg = await startTestRegistry(genesisRecord('ops-config', keys, 1));
    await new Committer(() => reg.url, 'ops-config', keys[0]!).commit([put('svc-ops')]);
    await request(reg.url, 'GET', '/registry/head');
    families = parseExposition((await request(reg.url, 'GET', '/metrics')).text);
  });
  afterAll(() => reg.close());

  it('finds the names a query reads, and tells an unknown one', () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (route, le) (rate(request_latency_seconds_bucket{plane="read",instance=~"$instance"}[$__rate_interval])))',
      ),
    ).toEqual(['request_latency_seconds_bucket']);
    expect(metricNames('sum(rate(a_total[5m])) / sum(rate(b_total{status="committed"}[5m])) * 60 > 1 and on (instance) c')).toEqual([
      'a_total',
      'b_total',
      'c',
    ]);
    expect(isExported(families, 'request_latency_seconds_bucket')).toBe(true);
    expect(isExported(families, 'commit_latency_seconds_count')).toBe(true);
    expect(isExported(families, 'registry_head_version')).toBe(true);
    expect(isExported(families, 'registry_head_version_bucket')).toBe(false);
    expect(isExported(families, 'registry_checkpoint_age_seconds')).toBe(true);
    expect(isExported(families, 'registry_checkpoint_age')).toBe(false);
  });

  it('the dashboard, the alerts and the triage queries name only metrics the service exports', () => {
    const exprs = [
      ...dashboardExprs().map((e) => ({ where: `dashboard panel "${e.panel}"`, expr: e.expr })),
      ...alertRules().map((r) => ({ where: `alert ${r.name}`, expr: r.expr })),
      ...runbookTestQueries().map((q) => ({ where: 'runbook', expr: q })),
    ];
    const unknown = exprs.flatMap(({ where, expr }) =>
      metricNames(expr)
        .filter((n) => !isExported(families, n))
        .map((n) => `${where}: ${n}`),
    );
    expect(unknown).toEqual([]);
    // Every panel reads something.
    for (const { where, expr } of exprs) expect(metricNames(expr).length, `${where}: ${expr}`).toBeGreaterThan(0);
  });

  it('the README names every reason rejected_total counts', () => {
    const row = tableRows(readmeSection('### Metrics')).find((r) => r[0] === '`rejected_total`')!;
    const named = new Set([...row[3]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!));
    // The reasons given to RegistryError in the code, and those counted from the start.
    const inCode = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [...read(join(ROOT, 'src', f)).matchAll(/\breason: '([a-z][a-z_]*)'/g)].map((m) => m[1]!));
    const reasons = [...new Set([...inCode, ...REJECT_REASONS])];
    expect(reasons.length).toBeGreaterThan(REJECT_REASONS.length);
    expect(reasons.filter((r) => !named.has(r))).toEqual([]);
  });

  it('the README lists exactly the metrics the service exports', () => {
    const listed = tableRows(readmeSection('### Metrics'))
      .map((r) => r[0]!)
      .filter((c) => !c.includes('*'))
      .map((c) => c.replaceAll('`', ''));
    const own = [...families.keys()].filter((n) => !/^(process|nodejs)_/.test(n));
    expect([...listed].sort()).toEqual([...own].sort());
    // Each with the type the exposition gives it.
    for (const row of tableRows(readmeSection('### Metrics')).filter((r) => !r[0]!.includes('*')))
      expect(row[1], row[0]).toBe(families.get(row[0]!.replaceAll('`', ''))!.type);
  });
});
