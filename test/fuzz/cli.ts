/**
 * The structure-aware fuzz run from the command line, for long runs by hand (scripts/fuzz builds
 * first):
 *     node --import tsx test/fuzz/cli.ts [--cases N (100000)] [--seed N] [--only CASE] [--concurrency N (4)] [--s3]
 * Prints progress on stderr and a JSON summary on stdout; exit status 1 when any case failed.
 */
import { parseArgs } from 'node:util';
import { runFuzz } from './harness.js';

function wholeNumber(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    process.stderr.write(`fuzz: --${name} must be a whole number, got '${text}'\n`);
    process.exit(2);
  }
  return value;
}

const { values } = parseArgs({
  options: {
    cases: { type: 'string' },
    seed: { type: 'string' },
    only: { type: 'string' },
    concurrency: { type: 'string' },
    s3: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write('usage: scripts/fuzz [--cases N (100000)] [--seed N] [--only CASE] [--concurrency N (4)] [--s3]\n  --s3  drain to the local Ceph RGW (S3_ENDPOINT) instead of a directory\n');
  process.exit(0);
}
const seed = wholeNumber('seed', values.seed, Date.now() % 1_000_000);
const cases = wholeNumber('cases', values.cases, 100_000);
process.stderr.write(`fuzz: seed ${seed}, ${cases} cases\n`);
const result = await runFuzz({
  cases,
  seed,
  concurrency: wholeNumber('concurrency', values.concurrency, 4),
  storage: values.s3 ? 's3' : 'file',
  ...(values.only !== undefined ? { only: wholeNumber('only', values.only, 0) } : {}),
  onProgress: (done) => process.stderr.write(`fuzz: ${done} cases\n`),
});
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
process.exit(result.failures.length === 0 ? 0 : 1);
