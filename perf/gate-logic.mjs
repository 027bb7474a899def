// The perf gate's rules (perf/gate.mjs), as a pure function: a profile's baseline and the
// current measurement in, verdicts out. Tested in test/unit/perf/gate.test.ts.
//
// A baseline or a measurement: { profile, operations: { OP: { instructions, syscalls, fsyncs } },
// rss: { rssMiB }, metrics: { checked, present: [names] } } (any field may be missing: what was
// not measured is not compared).

/** The limits. Instructions and system calls per operation may rise 10%; RSS at the reference
 * load 15%; fsyncs per operation not at all: `fsyncs` is the measurement's resolution, not an
 * allowance. A commit's own fsyncs are whole numbers (2 per governance flow: the proposal's
 * transaction and the commit's, each syncing the WAL); SQLite's checkpoints add a share that
 * depends on where the measured commits fall between two checkpoints (0.01-0.08 per commit over
 * the gate's 80). 0.1 fails an extra fsync per commit, and one every ten commits. */
export const RULES = Object.freeze({ instructions: 0.1, syscalls: 0.1, fsyncs: 0.1, rss: 0.15 });

/** The metrics /metrics must expose (by family name; a common prefix such as `registry_` is
 * allowed), once the service has a /metrics endpoint. */
export const GOLDEN_METRICS = Object.freeze(['http_requests_total', 'request_latency_seconds', 'rejected_total', 'bus_lagged_total']);

/** Floating point's error in a ratio: 88,000 / 80,000 - 1 is 0.10000000000000009. */
const EPSILON = 1e-9;
const pct = (x) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;
const num = (x, digits = 0) =>
  x === undefined ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/**
 * Compares one profile's measurement with its baseline. `requireAll`: an operation of the
 * baseline that was not measured fails (a full gate run measures them all).
 * Returns { ok, verdicts: [{ profile, op, metric, baseline, current, change, limit, status, message }] }
 * with status 'ok', 'fail', 'skipped' or 'new'.
 */
export function compare(baseline, current, { rules = RULES, golden = GOLDEN_METRICS, requireAll = false } = {}) {
  const profile = baseline.profile ?? current.profile;
  const verdicts = [];
  const push = (v) => verdicts.push({ profile, ...v });
  const base = baseline.operations ?? {};
  const cur = current.operations ?? {};

  for (const [op, b] of Object.entries(base)) {
    const c = cur[op];
    if (!c) {
      push({
        op,
        metric: 'measured',
        status: requireAll ? 'fail' : 'skipped',
        message: `${profile} ${op}: not measured${requireAll ? ' (the baseline has it)' : ''}`,
      });
      continue;
    }
    // Instructions and system calls per operation: a relative limit.
    for (const [metric, limit, digits] of [
      ['instructions', rules.instructions, 0],
      ['syscalls', rules.syscalls, 2],
    ]) {
      if (b[metric] === undefined) continue;
      if (c[metric] === undefined) {
        push({
          op,
          metric,
          baseline: b[metric],
          status: requireAll ? 'fail' : 'skipped',
          message: `${profile} ${op}: ${metric} not measured`,
        });
        continue;
      }
      const change = b[metric] === 0 ? (c[metric] === 0 ? 0 : Infinity) : c[metric] / b[metric] - 1;
      const fail = change > limit + EPSILON;
      push({
        op,
        metric,
        baseline: b[metric],
        current: c[metric],
        change,
        limit,
        status: fail ? 'fail' : 'ok',
        message:
          `${profile} ${op}: ${metric}/op ${num(c[metric], digits)} against ${num(b[metric], digits)} ` +
          `(${Number.isFinite(change) ? pct(change) : 'from none'}; limit ${pct(limit)})${fail ? ': REGRESSION' : ''}`,
      });
    }
    // fsyncs per operation: no rise.
    if (b.fsyncs !== undefined) {
      if (c.fsyncs === undefined) {
        push({
          op,
          metric: 'fsyncs',
          baseline: b.fsyncs,
          status: requireAll ? 'fail' : 'skipped',
          message: `${profile} ${op}: fsyncs not measured`,
        });
      } else {
        const rise = c.fsyncs - b.fsyncs;
        const fail = rise > rules.fsyncs + EPSILON;
        push({
          op,
          metric: 'fsyncs',
          baseline: b.fsyncs,
          current: c.fsyncs,
          change: rise,
          limit: rules.fsyncs,
          status: fail ? 'fail' : 'ok',
          message:
            `${profile} ${op}: fsyncs/op ${num(c.fsyncs, 3)} against ${num(b.fsyncs, 3)} ` +
            `(${rise >= 0 ? '+' : ''}${num(rise, 3)}; no rise allowed)${fail ? ': REGRESSION' : ''}`,
        });
      }
    }
  }
  for (const op of Object.keys(cur))
    if (!base[op]) push({ op, metric: 'measured', status: 'new', message: `${profile} ${op}: not in the baseline (not compared)` });

  // RSS at the reference load.
  const bRss = baseline.rss?.rssMiB;
  const cRss = current.rss?.rssMiB;
  if (bRss !== undefined) {
    if (cRss === undefined)
      push({
        op: 'reference load',
        metric: 'rss',
        baseline: bRss,
        status: requireAll ? 'fail' : 'skipped',
        message: `${profile}: RSS not measured`,
      });
    else {
      const change = cRss / bRss - 1;
      const fail = change > rules.rss + EPSILON;
      push({
        op: 'reference load',
        metric: 'rss',
        baseline: bRss,
        current: cRss,
        change,
        limit: rules.rss,
        status: fail ? 'fail' : 'ok',
        message: `${profile} reference load: RSS ${num(cRss, 1)} MiB against ${num(bRss, 1)} MiB (${pct(change)}; limit ${pct(rules.rss)})${fail ? ': REGRESSION' : ''}`,
      });
    }
  }

  // Golden metrics, once the service has /metrics.
  const m = current.metrics;
  if (!m?.checked)
    push({ op: '/metrics', metric: 'golden', status: 'skipped', message: `${profile} /metrics: ${m?.why ?? 'not checked'}` });
  else {
    for (const name of golden) {
      const present = (m.present ?? []).some((p) => p === name || p.endsWith(`_${name}`));
      push({
        op: '/metrics',
        metric: 'golden',
        current: name,
        status: present ? 'ok' : 'fail',
        message: `${profile} /metrics: ${name} ${present ? 'present' : 'MISSING'}`,
      });
    }
  }
  return { ok: verdicts.every((v) => v.status !== 'fail'), verdicts };
}

/** The metric family names in a Prometheus text exposition (from # HELP / # TYPE lines and samples). */
export function metricNames(text) {
  const names = new Set();
  for (const line of text.split('\n')) {
    const m = /^# (?:HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line) ?? /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (m) names.add(m[1]);
  }
  return [...names];
}

/**
 * The functions whose cost per operation grew most: `baseline` and `current` map a function's
 * name to its self instructions per operation. The baseline keeps only functions at or above
 * `floor`; one it does not list counts as `floor` (the most it can have had), so that what grew
 * from below the floor is not overstated.
 * Returns up to `k` of { name, baseline, current, growth }, largest growth first.
 */
export function topGrowth(baseline = {}, current = {}, k = 10, floor = 0) {
  const rows = [];
  for (const name of new Set([...Object.keys(baseline), ...Object.keys(current)])) {
    const b = baseline[name] ?? floor;
    const c = current[name] ?? 0;
    if (c > b) rows.push({ name, baseline: b, current: c, growth: c - b });
  }
  return rows.sort((x, y) => y.growth - x.growth).slice(0, k);
}
