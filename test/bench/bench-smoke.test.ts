/**
 * Keeps the benchmark working: runs `scripts/bench --smoke --json` (tiny counts, under a minute)
 * as a child process against the built collector and the S3 endpoint of the test run, and checks
 * only that every row of the table came out with numbers. It asserts nothing about the numbers
 * themselves: a benchmark measures, it does not pass or fail on timings.
 *
 * Run it with the suite's environment: `scripts/run-tests test/bench/bench-smoke.test.ts`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { BenchResult } from './bench.js';
import { REPO } from './processes.js';

const execFileAsync = promisify(execFile);

const METRICS = ['n', 'seconds', 'crashesPerSecond', 'mbPerSecond', 'p50Ms', 'p99Ms', 'peakRssMiB', 'cpuPercent', 'otherCpuPercent'] as const;

test('bench --smoke runs every phase and reports a number in every row', { timeout: 300_000 }, async () => {
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', 'test/bench/cli.ts', '--smoke', '--json'], {
    cwd: REPO,
    env: process.env,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 290_000,
  });
  const result = JSON.parse(stdout) as BenchResult;

  assert.equal(result.mode, 'smoke');
  assert.ok(result.machine.cores >= 1, 'core count reported');
  const ids = result.rows.map((row) => row.id);
  for (const expected of [
    'peers.local.crashspool',
    'peers.local.antenna',
    'peers.latency.crashspool',
    'peers.latency.antenna',
    'peers.outage.crashspool',
    'peers.outage.antenna',
    'ingest.200k.collector',
    'ingest.200k.collector_80pct',
    'ingest.200k.collector_no_drain',
    'ingest.200k.collector_no_dedup',
    'ingest.200k.naive',
    'ingest.200k.bare',
    'ingest.5k.collector',
    'ingest.5k.collector_80pct',
    'ingest.5k.collector_no_drain',
    'ingest.5k.collector_no_dedup',
    'ingest.5k.naive',
    'ingest.5k.bare',
    'disk.sequential',
    'disk.collector.200k',
    'disk.collector_s3_down.200k',
    'drain.prefill',
    'drain.collector',
    'drain.raw',
    // With a queue to announce on (npm test starts scripts/local-queues).
    ...(process.env['SQS_QUEUE_URL'] ? ['drain.collector_publishing'] : []),
    ...(process.env['PUBSUB_EMULATOR_HOST'] ? ['drain.collector_publishing_pubsub'] : []),
    'restart',
  ]) {
    assert.ok(ids.includes(expected), `row ${expected} missing; rows: ${ids.join(', ')}`);
  }
  for (const row of result.rows) {
    const present = METRICS.filter((metric) => row[metric] !== undefined);
    assert.ok(present.length > 0, `row ${row.id} has no numbers`);
    for (const metric of present) {
      const value = row[metric];
      assert.ok(typeof value === 'number' && Number.isFinite(value) && value >= 0, `row ${row.id}: ${metric} is ${String(value)}`);
    }
  }
  for (const [name, value] of Object.entries(result.ratios)) {
    assert.ok(Number.isFinite(value) && value > 0, `ratio ${name} is ${value}`);
  }
});
