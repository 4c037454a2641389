/**
 * The model-based spool test from the command line, for long runs by hand (scripts/spool-model):
 *     node --import tsx test/model/cli.ts [--seed N] [--steps N (100000)] [--runs N (1)]
 * Runs `--runs` seeds from `--seed` on; prints each result on stderr and the failing sequence,
 * shortened, on stdout. Exit status 1 when any run failed.
 */
import { parseArgs } from 'node:util';
import { check } from './spool-model.js';

function wholeNumber(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    process.stderr.write(`spool-model: --${name} must be a whole number, got '${text}'\n`);
    process.exit(2);
  }
  return value;
}

const { values } = parseArgs({
  options: { seed: { type: 'string' }, steps: { type: 'string' }, runs: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  strict: true,
});
if (values.help) {
  process.stdout.write('usage: scripts/spool-model [--seed N (random)] [--steps N (100000)] [--runs N (1)]\n');
  process.exit(0);
}
const first = wholeNumber('seed', values.seed, Date.now() % 1_000_000);
const steps = wholeNumber('steps', values.steps, 100_000);
const runs = wholeNumber('runs', values.runs, 1);
let failed = 0;
for (let seed = first; seed < first + runs; seed++) {
  const started = Date.now();
  const result = await check(seed, steps);
  process.stderr.write(`spool-model: seed ${seed}, ${steps} steps: ${result.ok ? 'ok' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  if (!result.ok) {
    failed++;
    process.stdout.write(`${result.report}\n`);
  }
}
process.exit(failed === 0 ? 0 : 1);
