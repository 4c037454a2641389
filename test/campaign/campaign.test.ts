/**
 * The campaign, short (docs/RELIABILITY.md): CAMPAIGN_MINUTES (default 3) of kills, storage and
 * queue faults, operator actions and hostile traffic on one spool, with a fresh seed each run
 * (printed: `scripts/campaign --minutes 3 --seed S` replays its schedule), then heal, drain and
 * check every acknowledged crash. The report goes to CAMPAIGN_OUT when set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/collector-process.js';
import { pubsubSkipReason } from '../helpers/queues.js';
import { runCampaign } from './campaign.js';

const minutes = Number(process.env['CAMPAIGN_MINUTES'] ?? 3);
const seed = process.env['CAMPAIGN_SEED'] === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(process.env['CAMPAIGN_SEED']);

test(`I1, I3, I7, I8, I10, I11, I13: a ${minutes}-minute campaign (seed ${seed}) of every fault at once loses nothing it acknowledged and leaves nothing unannounced`, { timeout: (minutes * 60 + 900) * 1000 }, async () => {
  console.log(`# campaign seed ${seed}: replay with scripts/campaign --minutes ${minutes} --seed ${seed}`);
  const out = process.env['CAMPAIGN_OUT'] ?? join(tempDir('campaign-report'), 'report');
  const { report } = await runCampaign({ minutes, seed, out, queues: pubsubSkipReason() ? ['sqs', 'amqp'] : ['sqs', 'amqp', 'pubsub'] });
  console.log(
    `# seed ${seed}: ${report.lives} lives, ${report.kills} kills (${JSON.stringify(report.kills_by_moment)}), ${report.acked} acknowledged, ` +
      `${report.purged.total} purged, ${report.operator_actions} operator actions, storage faults ${JSON.stringify(report.storage_faults)}, report in ${out}`,
  );
  assert.deepEqual(report.problems, [], `seed ${seed}: scripts/campaign --minutes ${minutes} --seed ${seed} replays it; report in ${out}`);
  assert.equal(report.lost, 0);
  assert.equal(report.unannounced, 0);
  // The run did what it says: lives, kills of each kind, faults on both layers, load throughout.
  assert.ok(report.kills >= minutes * 10, `only ${report.kills} kills`);
  assert.ok((report.kills_by_ending['SIGKILL'] ?? 0) > 0 && (report.kills_by_ending['SIGTERM'] ?? 0) > 0, JSON.stringify(report.kills_by_ending));
  assert.ok(Object.keys(report.storage_faults).length >= 3, `storage faults ${JSON.stringify(report.storage_faults)}`);
  assert.ok(Object.keys(report.queue_faults).length >= 3, `queue faults ${JSON.stringify(report.queue_faults)}`);
  assert.ok(report.acked >= minutes * 100, `only ${report.acked} acknowledged`);
  assert.ok(report.operator_actions > 0 && report.hostile.sent > 0);
  assert.ok(report.final_drain.drained);
});
