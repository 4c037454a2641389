/**
 * Shutdown, restart recovery, retries and the spool lock, with real signals to a real collector
 * process and real Ceph RGW.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport, type Answer } from '../helpers/http-client.js';
import { makeReport, type ClientStyle, type Report } from '../helpers/multipart.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { expectedFrom, s3Target, storedProblem, waitUntilStored, type S3TestTarget } from '../helpers/stored-crashes.js';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { dumpKey, rawCrashKey } from '../../src/storage/storage-keys.js';
import { checksOf } from '../helpers/heartbeat.js';

/** An endpoint where nothing listens: every upload fails with ECONNREFUSED. */
const UNREACHABLE = { S3_ENDPOINT: 'http://127.0.0.1:9' };
const STYLES: ClientStyle[] = ['breakpad', 'crashpad', 'mozilla', 'electron'];

function reports(count: number): Report[] {
  const dumps = [...loadFixtureDumps().values()];
  return Array.from({ length: count }, (_, i) => makeReport(STYLES[i % STYLES.length]!, dumps[i % dumps.length]!, dumps[(i + 3) % dumps.length]));
}

/** Spools `count` crashes with storage unreachable, then kills the collector: a backlog on disk. */
async function spoolBacklog(spool: string, s3: S3TestTarget, count: number): Promise<Map<string, Report>> {
  const collector = await CollectorProcess.start({ SPOOL_DIR: spool, ...s3.env, ...UNREACHABLE });
  const posted = new Map<string, Report>();
  try {
    for (const report of reports(count)) posted.set(crashIdFrom(await postReport(collector.url, report)), report);
  } finally {
    await collector.stop();
  }
  return posted;
}

async function assertAllStored(s3: S3TestTarget, posted: Map<string, Report>): Promise<void> {
  for (const [crashId, report] of posted) assert.equal(await storedProblem(s3.reader, crashId, expectedFrom(report)), undefined, crashId);
}

test('SIGTERM with a backlog and S3 healthy: drains everything, then exits 0', async () => {
  const spool = tempDir('spool');
  const s3 = s3Target('term-healthy');
  const posted = await spoolBacklog(spool, s3, 40);

  const collector = await CollectorProcess.start({ SPOOL_DIR: spool, ...s3.env, DRAIN_CONCURRENCY: '1' });
  collector.kill('SIGTERM');
  const exit = await collector.exited;
  assert.deepEqual(exit, { code: 0, signal: null });

  const draining = collector.logs.find((line) => line.msg === 'shutdown: draining the spool until empty or deadline');
  assert.ok(draining && (draining['pending'] as number) > 0, 'there was a backlog when the shutdown began');
  const done = collector.logs.find((line) => typeof line.msg === 'string' && line.msg.startsWith('shutdown complete'));
  assert.equal(done?.['left_pending'], 0);
  assert.equal(done?.['emptied'], true);
  await assertAllStored(s3, posted);
});

test('I2, I8: SIGTERM with S3 unreachable: exits 0 within the deadline, keeps every crash, next start delivers them', async () => {
  const spool = tempDir('spool');
  const s3 = s3Target('term-down');
  const posted = await spoolBacklog(spool, s3, 12);

  const collector = await CollectorProcess.start({ SPOOL_DIR: spool, ...s3.env, ...UNREACHABLE, SHUTDOWN_DEADLINE_SECONDS: '2' });
  const signalled = Date.now();
  collector.kill('SIGTERM');
  assert.deepEqual(await collector.exited, { code: 0, signal: null });
  const took = Date.now() - signalled;
  assert.ok(took < 2000 + 1500, `exited after ${took} ms`);
  const done = collector.logs.find((line) => typeof line.msg === 'string' && line.msg.startsWith('shutdown complete'));
  assert.equal(done?.['left_pending'], posted.size, 'the spool keeps every crash');

  const next = await CollectorProcess.start({ SPOOL_DIR: spool, ...s3.env });
  try {
    for (const [crashId, report] of posted) await waitUntilStored(s3.reader, crashId, expectedFrom(report));
  } finally {
    await next.stop();
  }
});

/** Posts a report in two halves with a pause between, so it is in flight for `pauseMs`. */
function slowPost(baseUrl: string, report: Report, pauseMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${baseUrl}/submit`,
      { method: 'POST', headers: { 'Content-Type': report.contentType, 'Content-Length': String(report.body.length) }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (text: string) => (body += text));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    const half = Math.floor(report.body.length / 2);
    req.write(report.body.subarray(0, half));
    setTimeout(() => req.end(report.body.subarray(half)), pauseMs);
  });
}

test('requests in flight at SIGTERM are answered and their crashes stored; the process exits 0', async () => {
  const spool = tempDir('spool');
  const s3 = s3Target('term-inflight');
  const collector = await CollectorProcess.start({ SPOOL_DIR: spool, ...s3.env });
  const batch = reports(6).map((report) => report.gzip ? makeReport('breakpad', report.dumps['upload_file_minidump']!) : report);
  const answers = batch.map((report) => slowPost(collector.url, report, 700));
  await new Promise((resolve) => setTimeout(resolve, 250));
  collector.kill('SIGTERM');

  const settled = await Promise.all(answers);
  for (const answer of settled) assert.ok(answer.status === 200 || answer.status === 503, `${answer.status} ${answer.body}`);
  assert.deepEqual(await collector.exited, { code: 0, signal: null });
  const accepted = settled.filter((answer) => answer.status === 200);
  assert.ok(accepted.length > 0, 'in-flight requests were finished, not refused');
  for (const [index, answer] of settled.entries()) {
    if (answer.status === 200) assert.equal(await storedProblem(s3.reader, crashIdFrom(answer), expectedFrom(batch[index]!)), undefined);
  }
  // Once shutdown began, the listener is closed: a new connection is refused.
  await assert.rejects(fetch(`${collector.url}/__lbheartbeat__`));
});

test('the load balancer heartbeat turns 503 at once while requests are still taken during the LB grace', async () => {
  const s3 = s3Target('lb-grace');
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), ...s3.env, SHUTDOWN_LB_GRACE_SECONDS: '1.5' });
  assert.equal((await fetch(`${collector.url}/__lbheartbeat__`)).status, 200);
  collector.kill('SIGTERM');
  await collector.waitForLog((line) => line.msg === 'shutdown: load balancer health now 503');
  const lb = await fetch(`${collector.url}/__lbheartbeat__`, { headers: { Connection: 'close' } });
  assert.equal(lb.status, 503);
  const report = reports(1)[0]!;
  const crashId = crashIdFrom(await postReport(collector.url, report));
  assert.deepEqual(await collector.exited, { code: 0, signal: null });
  assert.equal(await storedProblem(s3.reader, crashId, expectedFrom(report)), undefined);
});

test('a second signal ends the shutdown at once and loses nothing acknowledged', async () => {
  const spool = tempDir('spool');
  const s3 = s3Target('second-signal');
  const posted = await spoolBacklog(spool, s3, 5);
  const collector = await CollectorProcess.start({ SPOOL_DIR: spool, ...s3.env, ...UNREACHABLE, SHUTDOWN_DEADLINE_SECONDS: '60' });
  collector.kill('SIGTERM');
  await collector.waitForLog((line) => line.msg === 'shutdown: draining the spool until empty or deadline');
  const signalled = Date.now();
  collector.kill('SIGINT');
  const exit = await collector.exited;
  assert.equal(exit.code, 1);
  assert.ok(Date.now() - signalled < 2000);

  const next = await CollectorProcess.start({ SPOOL_DIR: spool, ...s3.env });
  try {
    for (const [crashId, report] of posted) await waitUntilStored(s3.reader, crashId, expectedFrom(report));
  } finally {
    await next.stop();
  }
});

test('while storage is down, upload attempts stay bounded by the backoff and nothing is dead-lettered', async () => {
  const spool = tempDir('spool');
  const s3 = s3Target('backoff');
  const retry = { base: 0.2, max: 1 };
  const collector = await CollectorProcess.start({
    SPOOL_DIR: spool,
    ...s3.env,
    ...UNREACHABLE,
    DRAIN_CONCURRENCY: '8',
    DRAIN_MAX_ATTEMPTS: '2',
    DRAIN_RETRY_BASE_SECONDS: String(retry.base),
    DRAIN_RETRY_MAX_SECONDS: String(retry.max),
  });
  try {
    const started = Date.now();
    for (const report of reports(20)) crashIdFrom(await postReport(collector.url, report));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const text = await scrape(collector.url);
    const elapsed = Date.now() - started;

    // Each wait is at least half its ceiling; count how many such waits fit in the elapsed time.
    let allowed = 1;
    for (let spent = 0, n = 1; ; n += 1) {
      spent += Math.min(retry.max, retry.base * 2 ** (n - 1)) * 500;
      if (spent > elapsed) break;
      allowed += 1;
    }
    const attempts = metric(text, 'crashspool_upload_attempts_total', { outcome: 'storage_error' });
    assert.ok(attempts >= 1, 'uploads were attempted');
    assert.ok(attempts <= allowed, `${attempts} attempts in ${elapsed} ms; the backoff allows ${allowed}`);
    assert.equal(metric(text, 'crashspool_dead_lettered_total'), 0, 'an outage never dead-letters');
    const health = checksOf(await (await fetch(`${collector.url}/__heartbeat__`)).json()) as unknown as { spool_depth: { pending: number; dead: number } };
    assert.equal(health.spool_depth.pending, 20);
    assert.equal(health.spool_depth.dead, 0);
  } finally {
    await collector.stop();
  }
});

test('a crash S3 rejects permanently is dead-lettered after N attempts; the others keep flowing', async () => {
  const s3 = s3Target('dead-letter');
  const collector = await CollectorProcess.start({
    SPOOL_DIR: tempDir('spool'),
    ...s3.env,
    DRAIN_MAX_ATTEMPTS: '3',
    DRAIN_RETRY_BASE_SECONDS: '0.05',
    DRAIN_RETRY_MAX_SECONDS: '0.2',
  });
  try {
    // scripts/local-s3 sets rgw_max_put_size to 8 MiB: RGW answers 400 EntityTooLarge for this dump.
    const huge = Buffer.concat([Buffer.from('MDMP'), Buffer.alloc(9 * 1024 * 1024, 0x5a)]);
    const rejectedReport = makeReport('breakpad', huge);
    const deadId = crashIdFrom(await postReport(collector.url, rejectedReport));
    const fine = reports(8);
    const fineIds = [];
    for (const report of fine) fineIds.push(crashIdFrom(await postReport(collector.url, report)));

    const dead = await collector.waitForLog((line) => line.msg === 'crash dead-lettered; kept in the spool');
    assert.equal(dead['crash_id'], deadId);
    assert.equal(dead['attempts'], 3);
    assert.match(String(dead['error']), /EntityTooLarge/);
    for (const [index, crashId] of fineIds.entries()) await waitUntilStored(s3.reader, crashId, expectedFrom(fine[index]!));

    const text = await scrape(collector.url);
    assert.equal(metric(text, 'crashspool_dead_lettered_total'), 1);
    assert.equal(metric(text, 'crashspool_upload_attempts_total', { outcome: 'crash_error' }), 3);
    const answer = await fetch(`${collector.url}/__heartbeat__`);
    const document = (await answer.json()) as { status: string; checks: Record<string, string>; details: Record<string, { level: number; messages?: object }> };
    // Dockerflow: a dead letter is a warning, which does not fail the heartbeat.
    assert.equal(answer.status, 200);
    assert.equal(document.status, 'warning');
    assert.equal(document.checks['dead_letter'], 'warning');
    assert.equal(document.details['dead_letter']!.level, 30);
    assert.match(JSON.stringify(document.details['dead_letter']!.messages), /1 crashes dead-lettered/);
    const health = checksOf(document) as unknown as { spool_depth: { pending: number; dead: number } };
    assert.deepEqual([health.spool_depth.pending, health.spool_depth.dead], [0, 1], 'kept in the spool, not deleted');
    assert.equal(await s3.reader.get(`v1/raw_crash/20${deadId.slice(-6)}/${deadId}`), undefined);
  } finally {
    await collector.stop();
  }
});

test('I2, I6: dump bytes changed in the spool after the ack are refused by S3 (checksum from receipt), never stored, dead-lettered', async () => {
  const s3 = s3Target('tampered');
  const spool = tempDir('spool');
  const posted = await spoolBacklog(spool, s3, 2);
  const [tamperedId, intactId] = [...posted.keys()] as [string, string];
  const db = new Database(join(spool, 'spool.db'));
  const row = db
    .prepare('SELECT dumps.id AS id, dumps.data AS data FROM dumps JOIN crashes USING (seq) WHERE crash_id = ? ORDER BY dumps.id LIMIT 1')
    .get(tamperedId) as { id: number; data: Buffer };
  row.data[row.data.length - 1]! ^= 0xff;
  db.prepare('UPDATE dumps SET data = ? WHERE id = ?').run(row.data, row.id);
  db.close();

  const collector = await CollectorProcess.start({ SPOOL_DIR: spool, ...s3.env, DRAIN_MAX_ATTEMPTS: '2', DRAIN_RETRY_BASE_SECONDS: '0.05', DRAIN_RETRY_MAX_SECONDS: '0.1' });
  try {
    const dead = await collector.waitForLog((line) => line.msg === 'crash dead-lettered; kept in the spool');
    assert.equal(dead['crash_id'], tamperedId);
    assert.match(String(dead['error']), /XAmzContentSHA256Mismatch/);
    await waitUntilStored(s3.reader, intactId, expectedFrom(posted.get(intactId)!));
    assert.equal(await s3.reader.get(dumpKey(tamperedId, 'upload_file_minidump')), undefined, 'the changed dump was not stored');
    assert.equal(await s3.reader.get(rawCrashKey(tamperedId)), undefined, 'the crash is not complete in storage');
  } finally {
    await collector.stop();
  }
});

test('I5: a second collector on the same spool refuses to start; after the first is SIGKILLed it starts', async () => {
  const spool = tempDir('spool');
  const env = { SPOOL_DIR: spool, STORAGE_URL: `file://${tempDir('files')}` };
  const first = await CollectorProcess.start(env);
  try {
    await assert.rejects(CollectorProcess.start(env), /in use by another collector \(pid \d+\)/);
    first.kill('SIGKILL');
    await first.exited;
    const second = await CollectorProcess.start(env);
    await second.stop();
  } finally {
    await first.stop();
  }
});
