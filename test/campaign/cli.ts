/**
 * The campaign from the command line (scripts/campaign builds first and starts the local S3 and
 * queues):
 *     node --import tsx test/campaign/cli.ts --minutes N [--seed S] [--out DIR] [--bucket B] [--power-cuts]
 * Prints the seed first, progress on stderr, then where the report is and its verdict. Exit status
 * 0 when every check passed, 1 otherwise.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { pubsubSkipReason } from '../helpers/queues.js';
import { fuseSkipReason } from '../power-loss/layer.js';
import { runCampaign } from './campaign.js';
import type { QueueKind } from './schedule.js';

const usage =
  'usage: scripts/campaign --minutes N [--seed S] [--out DIR] [--bucket B] [--power-cuts] [--keep-objects]\n' +
  '  --minutes N     how long the lives go on (then every fault heals and the spool is drained and checked)\n' +
  '  --seed S        the schedule (default: a fresh one, printed); the same seed replays the same lives\n' +
  '  --out DIR       where acked.jsonl, report.json, report.md, timeline.svg, schedule.jsonl go (default: a new directory under /tmp)\n' +
  '  --bucket B      drain into this bucket, whole (default: a fresh prefix in S3_TEST_BUCKET)\n' +
  '  --power-cuts    the spool on the power-loss layer (FUSE, root): some lives end in a power cut\n' +
  '  --keep-objects  leave the crashes in storage after a clean run (default: deleted; the test RGW keeps them in RAM)\n';

function fail(message: string): never {
  process.stderr.write(`campaign: ${message}\n${usage}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    minutes: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    bucket: { type: 'string' },
    'power-cuts': { type: 'boolean' },
    'keep-objects': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const minutes = Number(values.minutes);
if (values.minutes === undefined || !Number.isFinite(minutes) || minutes <= 0) fail(`--minutes takes a positive number, got '${values.minutes ?? ''}'`);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(values.seed);
if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) fail(`--seed takes an integer in [0, 2^32), got '${values.seed}'`);
if (values['power-cuts'] && fuseSkipReason()) fail(`--power-cuts: ${fuseSkipReason()}`);
const out = values.out ?? join(tmpdir(), `crashspool-campaign-${seed}-${Date.now()}`);
const queues: QueueKind[] = pubsubSkipReason() ? ['sqs', 'amqp'] : ['sqs', 'amqp', 'pubsub'];
if (queues.length < 3) process.stderr.write(`campaign: without Pub/Sub (${pubsubSkipReason()})\n`);

process.stdout.write(`campaign: seed ${seed} (replay: scripts/campaign --minutes ${minutes} --seed ${seed}${values['power-cuts'] ? ' --power-cuts' : ''})\n`);
const { report } = await runCampaign({
  minutes,
  seed,
  out,
  ...(values.bucket ? { bucket: values.bucket } : {}),
  powerCuts: values['power-cuts'] === true,
  keepObjects: values['keep-objects'] === true,
  queues,
  progress: (line) => process.stderr.write(`campaign: ${line}\n`),
});
process.stdout.write(
  `campaign: seed ${seed}: ${report.lives} lives, ${report.kills} kills, ${report.acked} acknowledged, ${report.lost} lost, ${report.unannounced} unannounced, ` +
    `${report.problems.length} problems\ncampaign: report in ${out}/report.md\n`,
);
for (const problem of report.problems.slice(0, 30)) process.stdout.write(`  problem: ${problem}\n`);
process.exit(report.problems.length === 0 ? 0 : 1);
