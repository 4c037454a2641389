/**
 * Two ways the collector used to need a restart, against the real process:
 * - space freed by `scripts/spool-inspect purge` (another process) reopens acceptance within
 *   seconds, and the heartbeat's two numbers agree again;
 * - a client that keeps sending is not cut by the idle timeout when the collector itself was
 *   paused (SIGSTOP/SIGCONT: a frozen VM, a long GC) for longer than that timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { makeReport } from '../helpers/multipart.js';
import { checksOf } from '../helpers/heartbeat.js';

const CLI = fileURLToPath(new URL('../../scripts/spool-inspect', import.meta.url));
const dump = loadFixtureDumps().get('linux_null_dereference.dmp')!;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function purge(spool: string, crashId: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, ['purge', crashId, '--yes', '--spool', spool], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', resolve);
  });
}

async function heartbeat(collector: CollectorProcess) {
  return checksOf(await (await fetch(`${collector.url}/__heartbeat__`)).json()) as Record<string, { ok: boolean; bytes?: number; error?: string }>;
}

test('space freed by spool-inspect purge reopens acceptance without a restart', async () => {
  const root = tempDir('purge');
  writeFileSync(join(root, 'blocker'), 'storage is blocked for this test');
  const spool = tempDir('purge-spool');
  const collector = await CollectorProcess.start({
    SPOOL_DIR: spool,
    STORAGE_URL: `file://${join(root, 'blocker', 'crashes')}`,
    SPOOL_MAX_BYTES: '200k',
    DRAIN_RETRY_BASE_SECONDS: '30',
  });
  try {
    const accepted: string[] = [];
    let answer = await postReport(collector.url, makeReport('breakpad', dump));
    while (answer.status === 200) {
      accepted.push(crashIdFrom(answer));
      answer = await postReport(collector.url, makeReport('breakpad', dump));
    }
    assert.equal(answer.status, 503);
    assert.match(answer.body, /^Discarded=spool_full/);
    assert.ok(accepted.length >= 2, `${accepted.length} crashes filled the spool`);
    assert.equal((await heartbeat(collector))['spool_writable']!.ok, false);

    for (const crashId of accepted) assert.equal(await purge(spool, crashId), 0);
    const purgedAt = Date.now();
    let reopened = false;
    while (!reopened && Date.now() - purgedAt < 10_000) {
      answer = await postReport(collector.url, makeReport('breakpad', dump));
      reopened = answer.status === 200;
      if (!reopened) await sleep(250);
    }
    assert.ok(reopened, `accepting again within 10 s of the purge (last answer ${answer.status} ${answer.body})`);
    const checks = await heartbeat(collector);
    assert.equal(checks['spool_writable']!.ok, true, JSON.stringify(checks['spool_writable']));
    assert.equal(checks['spool_depth']!.bytes! < 200 * 1024, true);
  } finally {
    await collector.stop();
  }
});

test('a client that keeps sending is not cut by the idle timeout after the collector was paused', async () => {
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('pause-spool'), STORAGE_URL: `file://${tempDir('pause-files')}`, IDLE_TIMEOUT_SECONDS: '2' });
  try {
    const report = makeReport('breakpad', dump);
    const answers = Array.from({ length: 3 }, () =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${collector.url}/submit`, { method: 'POST', headers: { 'Content-Type': report.contentType }, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (text: string) => (body += text));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        // Keep sending through the pause: a piece every 200 ms for 6 s, then the rest.
        let at = 0;
        const piece = Math.ceil(report.body.length / 40);
        const timer = setInterval(() => {
          if (at + piece >= report.body.length || at > piece * 30) {
            clearInterval(timer);
            req.end(report.body.subarray(at));
            return;
          }
          req.write(report.body.subarray(at, at + piece));
          at += piece;
        }, 200);
      }),
    );
    await sleep(500);
    collector.kill('SIGSTOP');
    await sleep(4000);
    collector.kill('SIGCONT');
    for (const answer of await Promise.all(answers)) {
      assert.equal(answer.status, 200, `answered ${answer.status} ${answer.body}`);
      assert.match(answer.body, /^CrashID=bp-/);
    }
  } finally {
    collector.kill('SIGCONT');
    await collector.stop();
  }
});

test('a client that really stops sending is still cut by the idle timeout', async () => {
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('idle-spool'), STORAGE_URL: `file://${tempDir('idle-files')}`, IDLE_TIMEOUT_SECONDS: '1' });
  try {
    const report = makeReport('breakpad', dump);
    const started = Date.now();
    const outcome = await new Promise<string>((resolve) => {
      const req = request(`${collector.url}/submit`, { method: 'POST', headers: { 'Content-Type': report.contentType }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(`answered ${res.statusCode}`));
      });
      req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      req.write(report.body.subarray(0, 100));
    });
    assert.notEqual(outcome, 'answered 200');
    assert.ok(Date.now() - started < 5000, `cut after ${Date.now() - started} ms`);
  } finally {
    await collector.stop();
  }
});
