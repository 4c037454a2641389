/**
 * Power loss under load: the real collector with its spool on the power-loss layer
 * (SPOOL_DURABILITY=full), storage outside it, several clients posting; the power is cut at random
 * moments and at random writes (inside commits and checkpoints), in drop and torn modes. After each
 * cut a new collector starts on what was durable and drains it: every acknowledged crash must be in
 * storage byte for byte, and the spool must pass its integrity check (harness.ts).
 *
 * CI runs POWER_LOSS_CUTS (default 10) cuts; `node --import tsx test/power-loss/cli.ts --cuts 300`
 * (or POWER_LOSS_CUTS=300 with this file) runs more. POWER_LOSS_SEED repeats a run.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fuseSkipReason } from './layer.js';
import { rmSync } from 'node:fs';
import { runPowerLoss, type PowerLossResult } from './harness.js';

const skip = fuseSkipReason();
if (skip) console.log(`# ${skip}`);

const cuts = Number(process.env['POWER_LOSS_CUTS'] ?? 10);
const seed = process.env['POWER_LOSS_SEED'] === undefined ? undefined : Number(process.env['POWER_LOSS_SEED']);

describe('power loss (SPOOL_DURABILITY=full)', { skip }, () => {
  it(`I1: loses no acknowledged crash over ${cuts} power cuts`, async () => {
    const result = await runPowerLoss({
      cuts,
      ...(seed === undefined ? {} : { seed }),
      progress: (line) => console.log(`# ${line}`),
    });
    console.log(`# seed ${result.seed}, ${Math.round(result.durationMs / 100) / 10} s; cuts by place ${JSON.stringify(result.places)}, ` +
      `modes ${JSON.stringify(result.modes)}, triggers ${JSON.stringify(result.triggers)}`);
    assert.deepEqual(result.failedStarts, [], 'a collector must start on every durable spool and drain it');
    for (const record of result.perCut) {
      assert.ok(['ok', 'no spool yet'].includes(record.integrity), `cut ${record.round}: integrity_check: ${record.integrity}`);
    }
    assert.deepEqual(result.lostCrashes, [], `acknowledged crashes lost (seed ${result.seed}): ${JSON.stringify(result.lostCrashes.slice(0, 5))}`);
    assert.deepEqual(result.unexpected, []);
    assert.ok(result.acknowledged > cuts, `the load ran: ${result.acknowledged} acknowledged`);
    assert.ok(result.places['inside a commit'] + result.places['inside a checkpoint'] > 0, 'some cuts landed inside a commit or checkpoint');
  });
});

/** A run that lost crashes keeps its directories for inspection; these known-gap runs need not. */
function removeKept(result: PowerLossResult): void {
  for (const dir of [...result.backingDirs, result.storageDir]) if (dir) rmSync(dir, { recursive: true, force: true });
}

/**
 * Durability gaps the layer found: directories the collector creates must be durable too (the
 * parent of every created directory is fsynced, src/durable-fs.ts).
 */
describe('power loss: directories the collector creates', { skip }, () => {
  it(
    'a SPOOL_DIR the collector creates itself survives the cut',
    async () => {
      const result = await runPowerLoss({ cuts: 1, spoolSubdir: 'spool', mode: 'drop', trigger: 'time', minLoadMs: 1000, print: false, ...(seed === undefined ? {} : { seed }) });
      console.log(`# spool in a new subdirectory: ${result.summary}`);
      removeKept(result);
      assert.equal(result.lost, 0, `lost ${result.lost} of ${result.acknowledged}: ${JSON.stringify(result.lostCrashes.slice(0, 3))}`);
    },
  );

  it(
    'crashes uploaded to file:// storage survive the cut (storage on the layer too)',
    async () => {
      const result = await runPowerLoss({ cuts: 1, storage: 'layer', mode: 'drop', trigger: 'time', minLoadMs: 1000, print: false, ...(seed === undefined ? {} : { seed }) });
      console.log(`# file:// storage on the layer: ${result.summary}`);
      removeKept(result);
      assert.equal(result.lost, 0, `lost ${result.lost} of ${result.acknowledged}: ${JSON.stringify(result.lostCrashes.slice(0, 3))}`);
    },
  );
});
