/**
 * The storage-fault suite from the command line, at any length (scripts/storage-faults builds
 * first and starts the local Ceph RGW):
 *     node --import tsx test/storage-faults/cli.ts [--crashes N (1000)] [--fault-seconds S (90)]
 * Prints each scenario's drain rates on stderr and a JSON summary on stdout; exit status 1 when
 * anything acknowledged is missing or wrong in S3, or a health probe took over 1 s.
 */
import { parseArgs } from 'node:util';
import { runStorageFaults } from './harness.js';
import { scenarios } from './scenarios.js';

const { values } = parseArgs({
  options: { crashes: { type: 'string' }, 'fault-seconds': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  strict: true,
});
if (values.help) {
  process.stdout.write('usage: scripts/storage-faults [--crashes N (1000)] [--fault-seconds S (90)]\n');
  process.exit(0);
}
const crashes = Number(values.crashes ?? 1000);
const faultSeconds = Number(values['fault-seconds'] ?? 90);
if (!Number.isInteger(crashes) || crashes < 1 || !(faultSeconds > 0)) {
  process.stderr.write('storage-faults: --crashes takes a positive integer, --fault-seconds a positive number\n');
  process.exit(2);
}
const result = await runStorageFaults({
  crashes,
  scenarios: scenarios(faultSeconds),
  shutdownCheck: true,
  onProgress: (line) => process.stderr.write(`storage-faults: ${line}\n`),
});
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
process.exit(result.problems.length === 0 && result.heartbeat.late === 0 ? 0 : 1);
