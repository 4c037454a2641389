/**
 * A fixed number of mutated valid reports (flipped bytes, truncations, shuffled and duplicated
 * parts, inserted junk) against the real collector: no 5xx but 503, no crash, and every crash
 * acknowledged is stored whole (raw crash last, every listed dump present with its checksum).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { send } from '../helpers/http-client.js';
import { makeReport, type ClientStyle } from '../helpers/multipart.js';
import { fileReader } from '../helpers/stored-crashes.js';
import { seededRandom } from '../helpers/random.js';
import { dumpKey, dumpNamesKey, rawCrashKey } from '../../src/storage-keys.js';

const CASES = Number(process.env['FUZZ_CASES'] ?? 300);

function mutate(body: Buffer, boundary: string, random: () => number): { body: Buffer; how: string } {
  const pick = Math.floor(random() * 5);
  const copy = Buffer.from(body);
  switch (pick) {
    case 0: {
      const flips = 1 + Math.floor(random() * 8);
      for (let i = 0; i < flips; i += 1) { const at = Math.floor(random() * copy.length); copy[at] = copy[at]! ^ (1 << Math.floor(random() * 8)); }
      return { body: copy, how: `flip ${flips}` };
    }
    case 1: {
      const at = Math.floor(random() * copy.length);
      return { body: copy.subarray(0, at), how: `truncate at ${at}` };
    }
    case 2: {
      const separator = Buffer.from(`--${boundary}`);
      const parts: Buffer[] = [];
      let from = 0;
      for (let at = copy.indexOf(separator); at !== -1; at = copy.indexOf(separator, at + 1)) {
        if (at > from) parts.push(copy.subarray(from, at));
        from = at;
      }
      const tail = copy.subarray(from);
      parts.sort(() => random() - 0.5);
      return { body: Buffer.concat([...parts, tail]), how: 'shuffle parts' };
    }
    case 3: {
      const at = Math.floor(random() * copy.length);
      const junk = Buffer.from(random() < 0.5 ? `\r\n--${boundary}\r\n` : random().toString(36));
      return { body: Buffer.concat([copy.subarray(0, at), junk, copy.subarray(at)]), how: `insert at ${at}` };
    }
    default: {
      const start = Math.floor(random() * copy.length);
      const length = Math.floor(random() * 200);
      return { body: Buffer.concat([copy, copy.subarray(start, start + length)]), how: 'duplicate tail' };
    }
  }
}

test(`fuzz: ${CASES} mutated reports — no 5xx but 503, no crash, nothing half-stored`, async (t) => {
  const files = tempDir('files');
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${files}`, SPOOL_DURABILITY: 'normal' });
  const dumps = [...loadFixtureDumps().values()].filter((dump) => dump.length < 200_000);
  const styles: ClientStyle[] = ['breakpad', 'crashpad', 'mozilla', 'electron'];
  const seed = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed} (replay with FUZZ_SEED=${seed})`);
  const random = seededRandom(seed);
  const counts: Record<number, number> = {};
  const accepted: string[] = [];
  try {
    for (let i = 0; i < CASES; i += 1) {
      const style = styles[i % styles.length]!;
      const report = makeReport(style, dumps[Math.floor(random() * dumps.length)]!, dumps[0]);
      const boundary = /boundary=(.*)$/.exec(report.contentType)![1]!;
      const plain = report.gzip ? gunzipSync(report.body) : report.body;
      const { body: mutated, how } = mutate(plain, boundary, random);
      const body = report.gzip ? gzipSync(mutated) : mutated;
      const headers: Record<string, string> = { 'Content-Type': report.contentType };
      if (report.gzip) headers['Content-Encoding'] = 'gzip';
      const answer = await send(collector.url, body, { headers });
      counts[answer.status] = (counts[answer.status] ?? 0) + 1;
      assert.ok([200, 400, 413, 503].includes(answer.status), `case ${i} (${style}, ${how}): ${answer.status} ${answer.body}`);
      if (answer.status === 200) accepted.push(/CrashID=bp-(\S+)/.exec(answer.body)![1]!);
    }
    t.diagnostic(`statuses ${JSON.stringify(counts)}`);
    assert.equal(collector.child.exitCode, null, 'the collector is still running');

    const reader = fileReader(files);
    for (const crashId of accepted) {
      const deadline = Date.now() + 20_000;
      let raw = await reader.get(rawCrashKey(crashId));
      while (!raw && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        raw = await reader.get(rawCrashKey(crashId));
      }
      assert.ok(raw, `${crashId}: raw crash stored`);
      const rawCrash = JSON.parse(raw.toString()) as { metadata: { dump_checksums: Record<string, string> } };
      const names = JSON.parse((await reader.get(dumpNamesKey(crashId)))!.toString()) as string[];
      assert.deepEqual(names.sort(), Object.keys(rawCrash.metadata.dump_checksums).sort());
      for (const name of names) {
        const stored = await reader.get(dumpKey(crashId, name));
        assert.ok(stored, `${crashId}: dump ${name} stored`);
        assert.equal(createHash('sha256').update(stored).digest('hex'), rawCrash.metadata.dump_checksums[name]);
      }
    }
  } finally {
    await collector.stop();
  }
});
