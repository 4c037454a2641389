/**
 * The structure-aware fuzz run in CI: FUZZ_CASES (2,000) generated hostile reports against the
 * real collector, which drains to the local Ceph RGW. A failure names its case and seed; replay it with
 * `scripts/fuzz --seed S --only N`, or run 100,000+ cases by hand with `scripts/fuzz --cases 100000`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from './harness.js';

const CASES = Number(process.env['FUZZ_CASES'] ?? 2000);
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000);

test(`I11: structure-aware fuzz: ${CASES} hostile reports, the collector answers each and stores only what it acknowledged`, async (t) => {
  t.diagnostic(`seed ${SEED} (replay with FUZZ_SEED=${SEED}, or one case with scripts/fuzz --seed ${SEED} --only N)`);
  const result = await runFuzz({ cases: CASES, seed: SEED, storage: 's3' });
  t.diagnostic(`statuses ${JSON.stringify(result.statuses)}; accepted ${result.accepted}, stored ${result.stored}; ${result.seconds.toFixed(1)} s (${JSON.stringify(result.phases)})`);
  t.diagnostic(`answers ${JSON.stringify(result.reasons)}`);
  assert.deepEqual(result.failures, [], `seed ${SEED}: ${result.failures.length} failures`);
  assert.ok(result.accepted > CASES / 10, `a fair share of cases is accepted (${result.accepted}), so storage is checked too`);
  assert.ok(result.cases - result.accepted > CASES / 10, 'a fair share of cases is refused');
});
