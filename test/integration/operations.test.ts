/**
 * What monitoring sees: `/__heartbeat__` checks and `/metrics` on the real collector process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CollectorProcess, freePort, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport, send } from '../helpers/http-client.js';
import { makeReport } from '../helpers/multipart.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { httpHead, rawExchange, sleep } from '../helpers/raw-socket.js';
import { expectedFrom, s3Target, waitUntilStored } from '../helpers/stored-crashes.js';
import { rawCrashKey } from '../../src/storage/storage-keys.js';
import { checksOf } from '../helpers/heartbeat.js';

const dump = loadFixtureDumps().get('linux_null_dereference.dmp')!;
type Checks = Record<string, { ok: boolean } & Record<string, unknown>>;

async function heartbeat(url: string): Promise<{ status: number; checks: Checks }> {
  const answer = await fetch(`${url}/__heartbeat__`);
  return { status: answer.status, checks: checksOf(await answer.json()) as Checks };
}

test('heartbeat: 200 when healthy; 503 naming storage and spool age when storage is unreachable', async () => {
  const s3 = s3Target('heartbeat');
  const healthy = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), ...s3.env });
  try {
    const answer = await fetch(`${healthy.url}/__heartbeat__`);
    const document = (await answer.json()) as { status: string; checks: Record<string, string>; details: Record<string, { status: string; level: number }> };
    assert.equal(document.status, 'ok', 'Dockerflow: the worst of the checks');
    assert.ok(Object.values(document.checks).every((status) => status === 'ok'), JSON.stringify(document.checks));
    assert.ok(Object.values(document.details).every((detail) => detail.level === 0));
    const { status, checks } = await heartbeat(healthy.url);
    assert.equal(status, 200, JSON.stringify(checks));
    assert.deepEqual(Object.keys(checks).sort(), ['dead_letter', 'drainer', 'spool_age', 'spool_depth', 'spool_writable', 'storage']);
    assert.ok(Object.values(checks).every((check) => check.ok));
    assert.equal((await fetch(`${healthy.url}/__lbheartbeat__`)).status, 200);
  } finally {
    await healthy.stop();
  }

  const down = await CollectorProcess.start({
    SPOOL_DIR: tempDir('spool'),
    ...s3.env,
    S3_ENDPOINT: 'http://127.0.0.1:9',
    HEALTH_MAX_AGE_SECONDS: '1',
    HEALTH_MAX_PENDING: '1',
  });
  try {
    crashIdFrom(await postReport(down.url, makeReport('breakpad', dump)));
    crashIdFrom(await postReport(down.url, makeReport('breakpad', dump)));
    await sleep(2100);
    const { status, checks } = await heartbeat(down.url);
    assert.equal(status, 503);
    assert.equal(((await (await fetch(`${down.url}/__heartbeat__`)).json()) as { status: string }).status, 'error');
    assert.equal(checks['storage']!.ok, false);
    assert.match(String(checks['storage']!['error']), /ECONNREFUSED/);
    assert.equal(checks['spool_age']!.ok, false, 'the oldest pending crash is over the age threshold');
    assert.equal(checks['spool_depth']!.ok, false, 'more pending than HEALTH_MAX_PENDING');
    assert.equal(checks['spool_writable']!.ok, true);
    assert.equal((await fetch(`${down.url}/__lbheartbeat__`)).status, 200, 'the load balancer check stays cheap and up');
  } finally {
    await down.stop();
  }
});

test('acks come first: while a report is being received the drainer starts from one upload, and climbs to DRAIN_CONCURRENCY while the event loop has room', async () => {
  const s3 = s3Target('priority');
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), ...s3.env, DRAIN_CONCURRENCY: '4' });
  try {
    const limit = async () => (await heartbeat(collector.url)).checks['drainer']!['concurrency_limit'];
    assert.equal(await limit(), 4, 'idle: DRAIN_CONCURRENCY');

    const report = makeReport('breakpad', dump);
    const half = Math.floor(report.body.length / 2);
    const limitsSeen: number[] = [];
    const exchange = await rawExchange(collector.port, async (socket) => {
      socket.write(httpHead('/submit', { 'Content-Type': report.contentType, 'Content-Length': report.body.length, Connection: 'close' }));
      socket.write(report.body.subarray(0, half));
      await sleep(100);
      limitsSeen.push(Number(await limit()));
      // The collector is otherwise idle: one more upload per 250 ms tick.
      const climbedBy = Date.now() + 5000;
      while (limitsSeen.at(-1)! < 4 && Date.now() < climbedBy) {
        await sleep(100);
        limitsSeen.push(Number(await limit()));
      }
      socket.write(report.body.subarray(half));
    });
    assert.ok(limitsSeen[0]! <= 2, `receiving began: DRAIN_CONCURRENCY_WHILE_RECEIVING (1), at most one tick up; seen ${limitsSeen.join(',')}`);
    assert.equal(limitsSeen.at(-1), 4, `the loop had room: climbed to DRAIN_CONCURRENCY while the report was in flight; seen ${limitsSeen.join(',')}`);
    assert.ok(
      limitsSeen.every((value, i) => i === 0 || value >= limitsSeen[i - 1]!),
      `climbed step by step, never down on an idle loop: ${limitsSeen.join(',')}`,
    );
    const crashId = /CrashID=bp-([0-9a-f-]+)/.exec(exchange.response)?.[1];
    assert.ok(crashId, exchange.response);
    await waitUntilStored(s3.reader, crashId, expectedFrom(report));
    const idleBy = Date.now() + 5000;
    while ((await limit()) !== 4 && Date.now() < idleBy) await sleep(100);
    assert.equal(await limit(), 4, 'DRAIN_CONCURRENCY about a second after the last report');
  } finally {
    await collector.stop();
  }
});

test('I6: metrics move as crashes are posted, refused and drained', async () => {
  const root = tempDir('blocked');
  const blocker = join(root, 'blocker');
  writeFileSync(blocker, 'blocked');
  const collector = await CollectorProcess.start({
    SPOOL_DIR: tempDir('spool'),
    STORAGE_URL: `file://${join(blocker, 'crashes')}`,
    DRAIN_RETRY_BASE_SECONDS: '0.1',
    DRAIN_RETRY_MAX_SECONDS: '0.2',
  });
  try {
    const reports = [makeReport('breakpad', dump), makeReport('crashpad', dump), makeReport('mozilla', dump)];
    for (const report of reports) crashIdFrom(await postReport(collector.url, report));
    await send(collector.url, Buffer.from('x'), { headers: { 'Content-Type': 'text/plain' } });

    let text = await scrape(collector.url);
    assert.equal(metric(text, 'crashspool_crashes_received_total'), 4);
    assert.equal(metric(text, 'crashspool_crashes_accepted_total', { client: 'breakpad' }), 1);
    assert.equal(metric(text, 'crashspool_crashes_accepted_total', { client: 'crashpad' }), 1);
    assert.equal(metric(text, 'crashspool_crashes_accepted_total', { client: 'mozilla' }), 1);
    assert.equal(metric(text, 'crashspool_crashes_rejected_total', { reason: 'malformed_wrong_content_type' }), 1);
    assert.equal(metric(text, 'crashspool_received_bytes_total'), reports.reduce((sum, report) => sum + report.body.length, 0));
    assert.equal(metric(text, 'crashspool_ack_seconds_count'), 3);
    assert.equal(metric(text, 'crashspool_spool_crashes', { state: 'pending' }), 3);
    assert.ok(metric(text, 'crashspool_spool_bytes') > 3 * dump.length);
    assert.ok(metric(text, 'crashspool_upload_attempts_total', { outcome: 'storage_error' }) >= 1);

    rmSync(blocker);
    const deadline = Date.now() + 20_000;
    while (metric(text, 'crashspool_spool_crashes', { state: 'pending' }) > 0 && Date.now() < deadline) {
      await sleep(100);
      text = await scrape(collector.url);
    }
    assert.equal(metric(text, 'crashspool_spool_crashes', { state: 'pending' }), 0);
    assert.equal(metric(text, 'crashspool_spool_bytes'), 0);
    assert.equal(metric(text, 'crashspool_spool_oldest_age_seconds'), 0);
    assert.equal(metric(text, 'crashspool_upload_attempts_total', { outcome: 'ok' }), 3);
    assert.equal(metric(text, 'crashspool_upload_seconds_count'), 3);
  } finally {
    await collector.stop();
  }
});

test('METRICS_PORT serves /metrics apart from the public endpoint', async () => {
  const metricsPort = await freePort();
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${tempDir('files')}`, METRICS_PORT: String(metricsPort) });
  try {
    assert.equal((await fetch(`${collector.url}/metrics`)).status, 404);
    const text = await scrape(`http://127.0.0.1:${metricsPort}`);
    assert.match(text, /^# HELP crashspool_crashes_received_total/m);
  } finally {
    await collector.stop();
  }
});

test('logs are one JSON object per line, with crash_id wherever a crash is concerned', async () => {
  const files = tempDir('files');
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${files}` });
  try {
    const crashId = crashIdFrom(await postReport(collector.url, makeReport('electron', dump)));
    await collector.waitForLog((line) => line.msg === 'crash uploaded' && line['crash_id'] === crashId);
    const accepted = collector.logs.find((line) => line.msg === 'crash accepted' && line['crash_id'] === crashId)!;
    assert.equal(accepted['client'], 'electron');
    assert.ok((accepted['bytes'] as number) > 0);
  } finally {
    await collector.stop();
  }
  assert.ok(collector.logs.every((line) => !line['unparsed']), 'every stdout line is JSON');
});

test('only JSON lines on stdout and stderr while a backlog meets storage refusing connections for 10 s (process warnings included)', async () => {
  const collector = await CollectorProcess.start({
    SPOOL_DIR: tempDir('spool'),
    STORAGE_URL: 's3://refusing',
    S3_ENDPOINT: 'http://127.0.0.1:9',
    AWS_ACCESS_KEY_ID: 'x',
    AWS_SECRET_ACCESS_KEY: 'y',
    AWS_REGION: 'us-east-1',
    DRAIN_CONCURRENCY: '64',
    SHUTDOWN_DEADLINE_SECONDS: '1',
  });
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let posted = 0; posted < 25; posted++) crashIdFrom(await postReport(collector.url, makeReport('breakpad', dump)));
  }));
  await sleep(10_000);
  collector.kill('SIGTERM');
  await collector.exited;
  const stdoutNotJson = collector.logs.filter((line) => line['unparsed']).map((line) => line.msg);
  const stderrNotJson = collector.stderr.split('\n').filter((line) => line.trim() !== '').filter((line) => {
    try {
      JSON.parse(line);
      return false;
    } catch {
      return true;
    }
  });
  assert.deepEqual(stdoutNotJson, [], 'stdout: one JSON object per line');
  assert.deepEqual(stderrNotJson, [], 'stderr: one JSON object per line, or nothing');
  assert.ok(collector.countLogs('storage unavailable; draining paused') > 0, 'the outage was met');
  assert.ok(!collector.logs.some((line) => (line['warning'] as { name?: string } | undefined)?.name === 'MaxListenersExceededWarning'), 'no listener leak');
});

test('REMOVE_ANNOTATIONS strips personal data before storage and notes each removal', async () => {
  const files = tempDir('files');
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${files}`, REMOVE_ANNOTATIONS: 'email, guid' });
  try {
    const report = makeReport('breakpad', dump);
    const crashId = crashIdFrom(await postReport(collector.url, report));
    await collector.waitForLog((line) => line.msg === 'crash uploaded' && line['crash_id'] === crashId);
    const raw = JSON.parse(readFileSync(join(files, rawCrashKey(crashId)), 'utf8')) as Record<string, unknown> & {
      metadata: { collector_notes: string[] };
    };
    assert.ok(!('email' in raw) && !('guid' in raw), 'removed');
    assert.equal(raw['prod'], report.annotations['prod'], 'the rest is kept');
    assert.ok(raw.metadata.collector_notes.includes('Removed email from raw crash.'));
    assert.ok(raw.metadata.collector_notes.includes('Removed guid from raw crash.'));
  } finally {
    await collector.stop();
  }
});

test('HTTP/1.0 and Host-less requests (load-balancer checks, old clients) are answered normally', async () => {
  const files = tempDir('files');
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${files}` });
  try {
    // HAProxy's default `option httpchk`: HTTP/1.0, no Host header.
    const check = await rawExchange(collector.port, (socket) => void socket.write('GET /__lbheartbeat__ HTTP/1.0\r\n\r\n'), 5_000);
    assert.match(check.response, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nOK\n$/);
    assert.ok(check.closedByServer, 'HTTP/1.0 without keep-alive: closed after the answer');

    const report = makeReport('breakpad', dump);
    for (const version of ['1.0', '1.1']) {
      const head = `POST /submit HTTP/${version}\r\nContent-Type: ${report.contentType}\r\nContent-Length: ${report.body.length}\r\nConnection: close\r\n\r\n`;
      const posted = await rawExchange(collector.port, (socket) => void socket.write(Buffer.concat([Buffer.from(head), report.body])), 10_000);
      assert.match(posted.response, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nCrashID=bp-[0-9a-f-]+\n$/, `HTTP/${version} without Host`);
    }
  } finally {
    await collector.stop();
  }
});
