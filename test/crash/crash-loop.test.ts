// The crash loop (issue 15, item 4): SIGKILL `registry serve` at random moments during a stream
// of governed commits, restart it on the same file, and check after each restart that every
// acknowledged commit is there with its hash, that nothing unacknowledged is half there, and
// that the start's tamper pass and `registry verify --db` find nothing. Three modes: plain
// commits, kills while checkpoints are built, kills while old commits are pruned
// (test/crash/loop.ts says what each does and checks).
//
//   npm test                 8 + 6 + 6 trials (CI)
//   npm run test:crash       200 trials in each mode (the nightly)
//   CRASH_TRIALS=N CRASH_MODES=commits,pruning CRASH_SEED=S npx vitest run test/crash
//                            N trials of the modes named, with the random choices of seed S
//                            (every run prints its seed). CRASH_VERIFY=fast|strict: how
//                            `registry verify` checks signatures after each restart (default:
//                            strict up to 50 trials); CRASH_VERBOSE=1: a line per trial;
//                            CRASH_KEEP=1: keep the database files.
import { describe, expect, it } from 'vitest';
import { crashLoop, MODES, seedFromEnv, type Mode } from './loop.js';

const CI_TRIALS: Record<Mode, number> = { commits: 8, checkpointing: 6, pruning: 6 };

const env = process.env;
const seed = seedFromEnv(env);
const modes = (env.CRASH_MODES ? env.CRASH_MODES.split(',') : Object.keys(MODES)) as Mode[];
for (const m of modes) if (!(m in MODES)) throw new Error(`CRASH_MODES: unknown mode ${m} (${Object.keys(MODES).join(', ')})`);
const trialsOf = (mode: Mode): number => {
  if (!env.CRASH_TRIALS) return CI_TRIALS[mode];
  const n = Number(env.CRASH_TRIALS);
  if (!Number.isInteger(n) || n < 1) throw new Error(`CRASH_TRIALS must be a positive integer: ${env.CRASH_TRIALS}`);
  return n;
};
if (env.CRASH_VERIFY && env.CRASH_VERIFY !== 'fast' && env.CRASH_VERIFY !== 'strict')
  throw new Error(`CRASH_VERIFY must be fast or strict: ${env.CRASH_VERIFY}`);

console.log(`crash loop: CRASH_SEED=${seed} (set it to replay these choices)`);

describe('crash loop: SIGKILL at random moments, restart, check', () => {
  for (const mode of modes) {
    const trials = trialsOf(mode);
    // A trial takes 2–5 s here; the log grows with the trials, and each restart verifies all of it.
    it(`${mode}: ${trials} trials`, { timeout: 60_000 + trials * 20_000 }, async () => {
      const report = await crashLoop({
        mode,
        trials,
        seed,
        fastVerify: env.CRASH_VERIFY ? env.CRASH_VERIFY === 'fast' : undefined,
        log: env.CRASH_VERBOSE ? (l) => console.log(l) : undefined,
      });
      console.log(
        `crash loop ${mode}: ${report.trials} trials in ${report.seconds.toFixed(1)} s, seed ${report.seed}; ` +
          `${report.acknowledged} commits acknowledged, head ${report.head}; kills with requests in flight ${report.midStream}, ` +
          `during a start ${report.startKills}` +
          (MODES[mode].checkpoints ? `, mid-checkpoint ${report.midCheckpoint}; latest checkpoint ${report.checkpoint ?? 'none'}` : '') +
          (MODES[mode].mayPrune ? `, ${report.pruned} versions pruned` : '') +
          `; unanswered submissions found whole ${report.outcomes.submissionsWhole}, absent ${report.outcomes.submissionsAbsent}; ` +
          `unanswered approvals counted ${report.outcomes.approvalsCounted}, not ${report.outcomes.approvalsNot}`,
      );
      expect(report.acknowledged).toBeGreaterThan(0);
      // Most kills must land while requests are in flight, or the loop tests little.
      expect(report.midStream).toBeGreaterThanOrEqual(Math.ceil(trials / 2));
      if (MODES[mode].checkpoints) expect(report.checkpoint).toBeDefined();
      // About half the kills of the checkpointing mode land in a checkpoint's build or drop.
      if (mode === 'checkpointing' && trials >= 20) expect(report.midCheckpoint).toBeGreaterThan(0);
      if (mode === 'pruning') expect(report.pruned).toBeGreaterThan(0);
    });
  }
});
