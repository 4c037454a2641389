/**
 * The queue-fault suite from the command line, at any length (scripts/queue-faults builds first and
 * starts the local Ceph RGW and queues):
 *     node --import tsx test/queue-faults/cli.ts [--fault-seconds S (30)] [--queue sqs|amqp|pubsub|all]
 * Prints progress on stderr, then the table of scenarios and a JSON summary on stdout; exit status 1
 * when anything acknowledged was not announced, a collector exited on its own, a shutdown missed its
 * deadline, or a queue outage left the heartbeat passing.
 */
import { parseArgs } from 'node:util';
import { pubsubSkipReason } from '../helpers/queues.js';
import { runQueueFaults, table, type QueueKind } from './harness.js';

const { values } = parseArgs({
  options: { 'fault-seconds': { type: 'string' }, queue: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  strict: true,
});
if (values.help) {
  process.stdout.write('usage: scripts/queue-faults [--fault-seconds S (30)] [--queue sqs|amqp|pubsub|all (all: Pub/Sub where its emulator runs)]\n');
  process.exit(0);
}
const faultSeconds = Number(values['fault-seconds'] ?? 30);
const queue = values.queue ?? 'all';
if (!(faultSeconds > 0) || !['sqs', 'amqp', 'pubsub', 'all'].includes(queue)) {
  process.stderr.write('queue-faults: --fault-seconds takes a positive number, --queue sqs, amqp, pubsub or all\n');
  process.exit(2);
}
const pubsubMissing = pubsubSkipReason();
if (pubsubMissing) process.stderr.write(`queue-faults: Pub/Sub left out: ${pubsubMissing}\n`);
const kinds: QueueKind[] = queue === 'all' ? ['sqs', 'amqp', ...(pubsubMissing ? [] : (['pubsub'] as const))] : [queue as QueueKind];
const result = await runQueueFaults({ faultSeconds, kinds, onProgress: (line) => process.stderr.write(`queue-faults: ${line}\n`) });
process.stdout.write(`${table(result)}\n\n${JSON.stringify({ ...result, scenarios: undefined }, null, 2)}\n`);
process.exit(result.problems.length === 0 ? 0 : 1);
