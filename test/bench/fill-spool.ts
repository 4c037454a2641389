/**
 * Fills a spool directory with many small crashes, fast, through the collector's own code: the
 * built `dist/spool/schema.js` opens (and creates) the spool with its schema and pragmas, and
 * `dist/http/raw-crash.js` makes each raw crash as the collector does. Run `npm run build` first.
 *
 *     node --import tsx test/bench/fill-spool.ts --spool DIR [--count 100000] [--dump-bytes 1024]
 *
 * Prints one JSON line: {"count":…,"seconds":…,"bytes":…} (bytes: spool file size).
 * Rows go in with the same INSERTs the collector's writer makes, 5,000 crashes per transaction
 * (durability `normal`); then the spool is checkpointed and closed as the collector closes it.
 */
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type * as SpoolModule from '../../src/spool/schema.js';
import type * as RawCrashModule from '../../src/intake/raw-crash.js';
import type * as CrashModule from '../../src/crash.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';

const DIST = new URL('../../dist/', import.meta.url);
const BATCH = 5_000;

export interface FillResult {
  count: number;
  seconds: number;
  bytes: number;
}

export async function fillSpool(dir: string, count: number, dumpBytes: number): Promise<FillResult> {
  const spool = (await import(new URL('spool/schema.js', DIST).href)) as typeof SpoolModule;
  const rawCrash = (await import(new URL('intake/raw-crash.js', DIST).href)) as typeof RawCrashModule;
  const crashModule = (await import(new URL('crash.js', DIST).href)) as typeof CrashModule;
  const fixture = loadFixtureDumps().get('linux_raise_sigabrt.dmp')!;
  const dump = Buffer.alloc(dumpBytes);
  for (let at = 0; at < dumpBytes; at += fixture.length) fixture.copy(dump, at, 0, Math.min(fixture.length, dumpBytes - at));

  const started = performance.now();
  const db = spool.openSpoolDatabase(dir, { durability: 'normal', create: true });
  const insertCrash = db.prepare('INSERT INTO crashes (crash_id, received_at, raw_crash, dump_names, bytes) VALUES (?, ?, ?, ?, ?)');
  const insertDump = db.prepare('INSERT INTO dumps (seq, name, data) VALUES (?, ?, ?)');
  const insertBatch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const received: RawCrashModule.ReceivedReport = {
        report: {
          annotations: { ProductName: 'BenchApp', Version: '1.0', prod: 'BenchApp', ver: '1.0', seq: String(i) },
          dumps: [{ name: 'upload_file_minidump', data: dump }],
          notes: [],
          payload: 'multipart',
          compressed: true,
          payloadSize: dumpBytes,
        },
        receivedAt: new Date(),
        userAgent: 'fill-spool',
        query: {},
        removeKeys: [],
      };
      const crash = rawCrash.buildCrash(received, rawCrash.annotate(received), { rule: 'accept_everything', digit: 0 });
      const rawCrashJson = JSON.stringify(crash.rawCrash);
      const dumpNames = JSON.stringify(crash.dumps.map((d) => d.name));
      const { lastInsertRowid } = insertCrash.run(crash.crashId, crash.receivedAt, rawCrashJson, dumpNames, crashModule.crashBytes(crash, rawCrashJson));
      for (const d of crash.dumps) insertDump.run(lastInsertRowid, d.name, d.data);
    }
  });
  for (let from = 0; from < count; from += BATCH) insertBatch(from, Math.min(count, from + BATCH));
  spool.closeSpoolDatabase(db);
  return { count, seconds: (performance.now() - started) / 1000, bytes: statSync(join(dir, spool.SPOOL_FILE)).size };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { spool: { type: 'string' }, count: { type: 'string' }, 'dump-bytes': { type: 'string' } },
    strict: true,
  });
  if (!values.spool) {
    process.stderr.write('usage: node --import tsx test/bench/fill-spool.ts --spool DIR [--count 100000] [--dump-bytes 1024]\n');
    process.exit(2);
  }
  const result = await fillSpool(values.spool, Number(values.count ?? 100_000), Number(values['dump-bytes'] ?? 1024));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
