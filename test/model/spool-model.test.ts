/**
 * The model-based test of the spool in CI: MODEL_STEPS (2,500) random operations from each of two
 * seeds (a fixed one and one of the day, MODEL_SEEDS to choose), against the real spool and the model (test/model/spool-model.ts). A failure prints the
 * seed and the shortened sequence; replay it, or run far more by hand, with
 * `scripts/spool-model --seed S --steps N`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check } from './spool-model.js';

const STEPS = Number(process.env['MODEL_STEPS'] ?? 2500);
const SEEDS = (process.env['MODEL_SEEDS'] ?? `1,${Date.now() % 1_000_000}`).split(',').map(Number);

for (const seed of SEEDS) {
  test(`I2, I7, I13: against a model, ${STEPS} random spool operations (seed ${seed}) leave the spool as the model says`, async (t) => {
    t.diagnostic(`replay with scripts/spool-model --seed ${seed} --steps ${STEPS}`);
    const result = await check(seed, STEPS);
    assert.ok(result.ok, result.ok ? '' : result.report);
  });
}
