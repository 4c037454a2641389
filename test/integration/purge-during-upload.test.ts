/**
 * I7 a crash's row identity is never reused: an operator's purge of a crash whose upload is in
 * flight must not touch any other crash. Reproduces the race found from outside the process: a real
 * collector in front of a slow Ceph RGW (every request held 2 s by a proxy, so uploads are in
 * flight), crash B purged with the real `scripts/spool-inspect` while B uploads, then crash C
 * posted. Before the fix C took B's row number and B's finished upload deleted C from the spool
 * (8 of 8 trials): acknowledged, never stored.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { makeReport } from '../helpers/multipart.js';
import { inspect } from '../helpers/spool-inspect-cli.js';
import { deletePrefix, expectedFrom, s3Settings, s3Target, storedProblem, waitUntilStored } from '../helpers/stored-crashes.js';

const STORAGE_DELAY_MS = 2000;

async function until(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const spoolRows = (dir: string) => {
  const db = new Database(`${dir}/spool.db`, { readonly: true });
  try {
    return db.prepare('SELECT crash_id FROM crashes').pluck().all() as string[];
  } finally {
    db.close();
  }
};

let proxy: FaultProxy;
const target = s3Target('purge-race');
const dirs: string[] = [];

before(async () => {
  proxy = await FaultProxy.start(s3Settings().endpoint);
});

after(async () => {
  await proxy.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await deletePrefix(target.client, target.env['STORAGE_URL']!);
});

test('I7: purging a crash while it uploads leaves every other crash alone; the next crash reaches storage', async () => {
  const spool = tempDir('purge-race');
  dirs.push(spool);
  await proxy.set({ kind: 'latency', ms: STORAGE_DELAY_MS });
  const collector = await CollectorProcess.start({ ...target.env, S3_ENDPOINT: proxy.url, SPOOL_DIR: spool, DRAIN_CONCURRENCY_WHILE_RECEIVING: '4' });
  try {
    const dump = loadFixtureDumps().get('minidump2.dmp')!;
    const [a, b, c] = [makeReport('breakpad', dump), makeReport('breakpad', dump), makeReport('breakpad', dump)];
    // Same dump bytes: only the annotations (guid) tell these reports apart.
    const idA = crashIdFrom(await postReport(collector.url, a));
    const idB = crashIdFrom(await postReport(collector.url, b));
    await until(`B's upload is in flight`, () => proxy.requests.some((request) => request.method === 'PUT' && request.path.includes(idB)));

    const purge = await inspect('purge', idB, '--spool', spool, '--yes');
    assert.equal(purge.code, 0, purge.stderr);
    assert.match(purge.stderr, /crash purged by operator/);

    const idC = crashIdFrom(await postReport(collector.url, c));
    assert.ok(spoolRows(spool).includes(idC), 'C is spooled when acknowledged');

    await waitUntilStored(target.reader, idA, expectedFrom(a), 30_000);
    await waitUntilStored(target.reader, idC, expectedFrom(c), 30_000);
    await until('the spool is empty', () => spoolRows(spool).length === 0);
    // B's upload had read it before the purge: it goes on and stores B whole, then finds B gone
    // from the spool and deletes nothing.
    assert.equal(await storedProblem(target.reader, idB, expectedFrom(b)), undefined);
    const gone = await collector.waitForLog((line) => line.msg === 'crash left the spool while it was being uploaded (purged); nothing else removed');
    assert.equal(gone['crash_id'], idB);
  } finally {
    await proxy.set({ kind: 'pass' });
    await collector.stop();
  }
});
