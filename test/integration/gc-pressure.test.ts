/**
 * Full garbage collections under a stream of ~200 KB reports, counted by the real collector
 * process itself (`crashspool_process_nodejs_gc_duration_seconds{kind="major"}`): with the heap
 * growth the collector sets at start-up, against the same load on a collector started with
 * V8's own choice (`node --heap-growing-percent=0`, which the collector then leaves alone).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { buildCorpus, runLoad } from '../bench/load.js';

const REPORTS = 1_500;

async function fullCollections(nodeArgs: string[]): Promise<{ major: number; accepted: number }> {
  const spoolDir = tempDir('gc-pressure');
  // Storage down: the load measures the ingest path alone.
  const collector = await CollectorProcess.start(
    {
      SPOOL_DIR: spoolDir,
      STORAGE_URL: 's3://unreachable/gc/',
      S3_ENDPOINT: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'x',
      AWS_REGION: 'us-east-1',
      DRAIN_RETRY_BASE_SECONDS: '600',
      DRAIN_RETRY_MAX_SECONDS: '600',
    },
    undefined,
    nodeArgs,
  );
  try {
    const corpus = buildCorpus('200k', { median: 200_000, min: 50_000, max: 1_000_000, sigma: 0.6 }, 32, 1);
    const before = metric(await scrape(collector.url), 'crashspool_process_nodejs_gc_duration_seconds_count', { kind: 'major' });
    const load = await runLoad({ url: `${collector.url}/submit`, corpus, concurrency: 16, count: REPORTS });
    const after = metric(await scrape(collector.url), 'crashspool_process_nodejs_gc_duration_seconds_count', { kind: 'major' });
    return { major: after - before, accepted: load.accepted };
  } finally {
    await collector.stop();
    rmSync(spoolDir, { recursive: true, force: true });
  }
}

test('~200 KB reports in flight set off far fewer full garbage collections than with V8\'s own heap growth', async () => {
  const v8Default = await fullCollections(['--heap-growing-percent=0']);
  const collector = await fullCollections([]);
  assert.equal(v8Default.accepted, REPORTS);
  assert.equal(collector.accepted, REPORTS);
  // The comparison means something only if the load makes V8 collect at all.
  assert.ok(v8Default.major >= 3, `V8's own heap growth: only ${v8Default.major} full collections in ${REPORTS} reports`);
  assert.ok(
    collector.major < v8Default.major,
    `full collections: ${collector.major} with the collector's heap growth, ${v8Default.major} with V8's own`,
  );
  console.log(`full collections in ${REPORTS} ~200 KB reports: ${collector.major} (collector), ${v8Default.major} (V8's own heap growth)`);
});
