// Types of perf/gate-logic.mjs, for test/unit/perf/gate.test.ts.
export interface Rules {
  instructions: number;
  syscalls: number;
  fsyncs: number;
  rss: number;
}
export const RULES: Readonly<Rules>;
export const GOLDEN_METRICS: readonly string[];

export interface OperationFigures {
  instructions?: number;
  syscalls?: number;
  fsyncs?: number;
}
export interface Measurement {
  profile?: string;
  operations?: Record<string, OperationFigures>;
  rss?: { rssMiB?: number };
  metrics?: { checked: boolean; present?: string[]; why?: string };
}
export interface Verdict {
  profile: string | undefined;
  op: string;
  metric: string;
  baseline?: number;
  current?: number | string;
  change?: number;
  limit?: number;
  status: 'ok' | 'fail' | 'skipped' | 'new';
  message: string;
}
export function compare(
  baseline: Measurement,
  current: Measurement,
  options?: { rules?: Rules; golden?: readonly string[]; requireAll?: boolean },
): { ok: boolean; verdicts: Verdict[] };
export function metricNames(text: string): string[];
export function topGrowth(
  baseline?: Record<string, number>,
  current?: Record<string, number>,
  k?: number,
  floor?: number,
): { name: string; baseline: number; current: number; growth: number }[];
