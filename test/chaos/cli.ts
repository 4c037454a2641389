/**
 * The chaos harness from the command line, for long local runs (scripts/chaos builds first and
 * starts the local S3):
 *     node --import tsx test/chaos/cli.ts --kills 200 [--clients 4] [--seed N] [--json FILE]
 * Prints progress on stderr, then `acknowledged N, stored N, lost N` and a summary on stdout.
 * Exit status 0 when nothing acknowledged was lost and the run was clean, 1 otherwise.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { amqpQueue, pubsubQueue, sqsQueue } from '../helpers/queues.js';
import { runChaos, type ChaosResult } from './harness.js';

function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`chaos: --${name} must be a positive integer, got '${text}'\n`);
    process.exit(2);
  }
  return value;
}

const { values } = parseArgs({
  options: {
    kills: { type: 'string' },
    clients: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'string' },
    publish: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write(
    'usage: node --import tsx test/chaos/cli.ts [--kills N (200)] [--clients N (4)] [--seed N] [--publish sqs|amqp|pubsub] [--json FILE]\n' +
      '  --publish Q  announce every crash on a queue of scripts/local-queues (PUBLISH_URL) and check each acknowledged one was\n' +
      '  --json FILE  write the full details (every kill, every lost crash) as JSON\n',
  );
  process.exit(0);
}

const kills = positiveInteger('kills', values.kills, 200);
const clients = positiveInteger('clients', values.clients, 4);
const seed = values.seed === undefined ? undefined : positiveInteger('seed', values.seed, 0);
if (values.publish !== undefined && !['sqs', 'amqp', 'pubsub'].includes(values.publish)) {
  process.stderr.write(`chaos: --publish takes sqs, amqp or pubsub, got '${values.publish}'\n`);
  process.exit(2);
}
const queue =
  values.publish === undefined ? undefined : values.publish === 'sqs' ? await sqsQueue() : values.publish === 'amqp' ? await amqpQueue() : await pubsubQueue();
const started = Date.now();
const result: ChaosResult = await runChaos({
  kills,
  clients,
  ...(seed === undefined ? {} : { seed }),
  ...(queue ? { publish: queue } : {}),
  drainTimeoutMs: 300_000,
  progress: (line) => process.stderr.write(`chaos: ${line}\n`),
});
const { details } = result;
const summary = {
  seconds: Math.round((Date.now() - started) / 100) / 10,
  seed: details.seed,
  clients: details.clients,
  kills: result.kills,
  killCounts: details.killCounts,
  answers: { ...details.answers, unexpected: details.answers.unexpected.length },
  livesWithAcks: details.livesWithAcks,
  spooledUnacknowledged: details.spooledUnacknowledged,
  duplicateIds: details.duplicateIds,
  unexpectedExits: details.unexpectedExits,
  outage: details.outage,
  restartMs: details.restartMs,
  finalStart: details.finalStart,
  drain: details.drain,
  announce: details.announce && { ...details.announce, unannounced: details.announce.unannounced.slice(0, 20) },
  finalExit: details.finalExit,
  verifyMs: details.verifyMs,
  lostCrashes: details.lostCrashes.slice(0, 20),
};
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
if (values.json) writeFileSync(values.json, `${JSON.stringify(details, null, 2)}\n`);

const clean =
  result.lost === 0 &&
  result.kills === kills &&
  details.answers.unexpected.length === 0 &&
  details.unexpectedExits.length === 0 &&
  details.duplicateIds === 0 &&
  details.drain.drained &&
  (details.announce?.unannounced.length ?? 0) === 0 &&
  details.finalExit.code === 0;
await queue?.close();
process.exit(clean ? 0 : 1);
