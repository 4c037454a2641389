/**
 * A retry is the same crash: the same report posted again gets its first crash ID and nothing new
 * is stored — right after the first, after the first was uploaded and left the spool, after a
 * restart, and in a retry storm with a kill -9 in the middle. Against the real collector process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport, type Answer } from '../helpers/http-client.js';
import { makeReport, multipart, type Report } from '../helpers/multipart.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { expectedFrom, fileReader, listKeys, s3Target, waitUntilStored } from '../helpers/stored-crashes.js';
import { sleep } from '../helpers/raw-socket.js';

const dumps = [...loadFixtureDumps().values()].filter((dump) => dump.length < 100_000);
const dump = dumps[0]!;
const INSPECT = new URL('../../scripts/spool-inspect', import.meta.url).pathname;

function storedCrashIds(files: string): string[] {
  const root = join(files, 'v1', 'raw_crash');
  try {
    return readdirSync(root).flatMap((day) => readdirSync(join(root, day)));
  } catch {
    return [];
  }
}

async function pending(collector: CollectorProcess): Promise<number> {
  return metric(await scrape(collector.url), 'crashspool_spool_crashes', { state: 'pending' });
}

/** A Crashpad report whose minidump is named after `uuid`, with `guid` and this dump. */
function crashpadReport(uuid: string, guid: string, data: Buffer): Report {
  const annotations = { prod: 'RetryApp', ver: '1.0', guid };
  const built = multipart([
    ...Object.entries(annotations).map(([name, value]) => ({ name, value })),
    { name: 'upload_file_minidump', filename: `${uuid}.dmp`, data },
  ]);
  return { style: 'breakpad', annotations, dumps: { upload_file_minidump: data }, ...built, gzip: false, query: '' };
}

test('the same report again: its first crash ID, stored once — at once, after the upload, after a restart', async () => {
  const files = tempDir('files');
  const spool = tempDir('spool');
  const env = { SPOOL_DIR: spool, STORAGE_URL: `file://${files}` };
  let collector = await CollectorProcess.start(env);
  try {
    const crashpad = makeReport('crashpad', dump);
    const breakpad = makeReport('breakpad', dump);
    for (const report of [crashpad, breakpad]) {
      const first = crashIdFrom(await postReport(collector.url, report));
      assert.equal(crashIdFrom(await postReport(collector.url, report)), first, `${report.style}: right after the first`);
      await waitUntilStored(fileReader(files), first, expectedFrom(report));
      const deadline = Date.now() + 10_000;
      while ((await pending(collector)) > 0 && Date.now() < deadline) await sleep(50);
      assert.equal(await pending(collector), 0, 'the first left the spool');
      assert.equal(crashIdFrom(await postReport(collector.url, report)), first, `${report.style}: after the upload`);
    }
    assert.equal(storedCrashIds(files).length, 2);
    const text = await scrape(collector.url);
    assert.equal(metric(text, 'crashspool_duplicate_reports_total'), 4);
    // The log line of the last answer may still be on its way through the pipe when the metric is read.
    const again = 'report received again: answered with its first crash ID, nothing stored';
    for (const deadline = Date.now() + 5_000; collector.countLogs(again) < 4 && Date.now() < deadline; ) await sleep(20);
    assert.equal(collector.countLogs(again), 4);

    collector.kill('SIGKILL');
    await collector.exited;
    collector = await CollectorProcess.start(env);
    for (const report of [crashpad, breakpad]) {
      const answer = crashIdFrom(await postReport(collector.url, report));
      assert.ok(storedCrashIds(files).includes(answer), `${report.style}: after a restart, the first ID`);
    }
    await sleep(500);
    assert.equal(storedCrashIds(files).length, 2, 'nothing new stored');

    const summary = JSON.parse(execFileSync(INSPECT, ['summary', '--json', '--no-check', '--spool', spool], { encoding: 'utf8' })) as {
      dedup_entries: number;
    };
    assert.equal(summary.dedup_entries, 2, 'spool-inspect shows the index size');
  } finally {
    await collector.stop();
  }
});

test('what is not the same report is a new crash: other guid, other dumps; the same report UUID with other bytes is noted on both', async () => {
  const files = tempDir('files');
  const spool = tempDir('spool');
  // Storage blocked at first (a file where its directory should be), so the first crash is still in the spool.
  const blocked = join(tempDir('blocked'), 'file');
  writeFileSync(blocked, 'storage blocked');
  let collector = await CollectorProcess.start({ SPOOL_DIR: spool, STORAGE_URL: `file://${join(blocked, 'crashes')}` });
  let first: string;
  let second: string;
  try {
    const breakpad = makeReport('breakpad', dump);
    const otherGuid = makeReport('breakpad', dump);
    assert.notEqual(crashIdFrom(await postReport(collector.url, otherGuid)), crashIdFrom(await postReport(collector.url, breakpad)));
    const otherDump = makeReport('breakpad', dumps[1]!);
    assert.notEqual(crashIdFrom(await postReport(collector.url, otherDump)), crashIdFrom(await postReport(collector.url, breakpad)));

    const uuid = '6c7c4b7e-2f39-4c59-9a55-7a3f1d2b9e10';
    first = crashIdFrom(await postReport(collector.url, crashpadReport(uuid, 'install-1', dumps[0]!)));
    second = crashIdFrom(await postReport(collector.url, crashpadReport(uuid, 'install-1', dumps[1]!)));
    assert.notEqual(second, first);
    assert.equal(crashIdFrom(await postReport(collector.url, crashpadReport(uuid, 'install-1', dumps[1]!))), second, 'the second is itself deduplicated');
  } finally {
    await collector.stop();
  }
  collector = await CollectorProcess.start({ SPOOL_DIR: spool, STORAGE_URL: `file://${files}` });
  try {
    const raws = await Promise.all(
      [first, second].map((id, index) =>
        waitUntilStored(fileReader(files), id, { annotations: { guid: 'install-1' }, dumps: { upload_file_minidump: dumps[index]! } }),
      ),
    );
    const notes = raws.map((raw) => (raw['metadata'] as { collector_notes: string[] }).collector_notes);
    assert.ok(notes[0]!.some((note) => note.includes('received again with other dumps') && note.includes(second)), JSON.stringify(notes[0]));
    assert.ok(notes[1]!.some((note) => note.includes('received before with other dumps') && note.includes(first)), JSON.stringify(notes[1]));
  } finally {
    await collector.stop();
  }
});

/** A report without a guid or report UUID (Breakpad's Windows sender without an install ID): product, version, comments and this dump. */
function plainReport(comments: string, data: Buffer): Report {
  const annotations = { ProductName: 'SameApp', Version: '1.0', Comments: comments };
  const built = multipart([
    ...Object.entries(annotations).map(([name, value]) => ({ name, value })),
    { name: 'upload_file_minidump', filename: 'minidump.dmp', data },
  ]);
  return { style: 'breakpad', annotations, dumps: { upload_file_minidump: data }, ...built, gzip: false, query: '' };
}

test('I10: the same dump, product and version with other annotations is another crash, stored with its own; the same report twice is one', async () => {
  const files = tempDir('files');
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${files}` });
  try {
    const first = plainReport('first crash', dump);
    const another = plainReport('another crash', dump);
    const firstId = crashIdFrom(await postReport(collector.url, first));
    const anotherId = crashIdFrom(await postReport(collector.url, another));
    assert.notEqual(anotherId, firstId, 'other annotations: another crash');
    assert.equal(crashIdFrom(await postReport(collector.url, first)), firstId, 'the same report again: its first crash ID');
    // The same annotations sent in another order are the same report.
    const reordered = multipart([
      { name: 'upload_file_minidump', filename: 'minidump.dmp', data: dump },
      ...Object.entries(another.annotations).reverse().map(([name, value]) => ({ name, value: String(value) })),
    ]);
    assert.equal(crashIdFrom(await postReport(collector.url, { ...another, ...reordered })), anotherId, 'the order of the parts does not matter');
    const stored = await Promise.all([
      waitUntilStored(fileReader(files), firstId, expectedFrom(first)),
      waitUntilStored(fileReader(files), anotherId, expectedFrom(another)),
    ]);
    assert.deepEqual(stored.map((raw) => raw['Comments']), ['first crash', 'another crash']);
    assert.equal(storedCrashIds(files).length, 2);
  } finally {
    await collector.stop();
  }
});

test('DEDUP_WINDOW: a repeat after the window is a new crash; 0 turns deduplication off', async () => {
  for (const [window, waitMs, same] of [['1s', 1500, false], ['0', 0, false], ['1h', 0, true]] as const) {
    const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${tempDir('files')}`, DEDUP_WINDOW: window });
    try {
      const report = makeReport('crashpad', dump);
      const first = crashIdFrom(await postReport(collector.url, report));
      await sleep(waitMs);
      assert.equal(crashIdFrom(await postReport(collector.url, report)) === first, same, `DEDUP_WINDOW=${window}`);
    } finally {
      await collector.stop();
    }
  }
});

test('retry storm: 50 reports posted 5 times each, concurrently, kill -9 in the middle: exactly 50 crashes, every retry answered with its first ID', async () => {
  const s3 = s3Target('retry-storm');
  const spool = tempDir('spool');
  const env = { SPOOL_DIR: spool, ...s3.env };
  let collector = await CollectorProcess.start(env);
  const reports = Array.from({ length: 50 }, (_, index) => makeReport('crashpad', dumps[index % dumps.length]!));
  const answered = reports.map(() => new Set<string>());
  let failedPosts = 0;
  try {
    const post = async (index: number): Promise<void> => {
      const target = collector;
      let answer: Answer;
      try {
        answer = await postReport(target.url, reports[index]!);
      } catch {
        // The node died under this post: a client retries later (after the restart).
        failedPosts += 1;
        while (target === collector) await sleep(50);
        return post(index);
      }
      answered[index]!.add(crashIdFrom(answer));
    };
    const posts = reports.flatMap((_, index) => Array.from({ length: 5 }, () => post(index)));
    const killed = (async () => {
      while (answered.reduce((sum, ids) => sum + ids.size, 0) < 15) await sleep(5);
      collector.kill('SIGKILL');
      await collector.exited;
      collector = await CollectorProcess.start(env);
    })();
    await Promise.all([...posts, killed]);

    for (const [index, ids] of answered.entries()) assert.equal(ids.size, 1, `report ${index}: answered ${[...ids].join(', ')}`);
    await Promise.all(reports.map((report, index) => waitUntilStored(s3.reader, [...answered[index]!][0]!, expectedFrom(report), 60_000)));
    let rawCrashes = 0;
    for await (const keys of listKeys(s3.client, s3.bucket, `${s3.prefix}v1/raw_crash/`)) rawCrashes += keys.length;
    assert.equal(rawCrashes, 50, `exactly 50 crashes stored (${failedPosts} posts failed at the kill and were retried)`);
  } finally {
    await collector.stop();
  }
});
