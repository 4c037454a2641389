/**
 * Runs generated hostile reports against the real collector (`node dist/main.js`) and checks,
 * for every case: the process is alive; the answer is `200 CrashID=bp-…`, `400`/`413`
 * `Discarded=…`, or `503` with Retry-After — never a reset, never another status; and at the end:
 * every acknowledged crash is in storage whole (dumps match the checksums taken at receipt, raw
 * crash valid JSON with well-formed strings), nothing else is stored, and every request is counted
 * as accepted or refused in the metrics.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { seededRandom } from '../helpers/random.js';
import { deletePrefix, fileReader, listKeys, s3Target, type ObjectReader } from '../helpers/stored-crashes.js';
import { dumpKey, dumpNamesKey, rawCrashKey } from '../../src/storage/storage-keys.js';
import { generateCase, type FuzzCase } from './generator.js';

export interface FuzzOptions {
  cases: number;
  seed: number;
  /** Run only this case number (from a failure message). */
  only?: number;
  concurrency?: number;
  /** Where the collector drains to: the local Ceph RGW (CI), or a directory (fast, for long runs). */
  storage: 's3' | 'file';
  onProgress?: (done: number) => void;
}

export interface FuzzResult {
  seed: number;
  cases: number;
  statuses: Record<string, number>;
  reasons: Record<string, number>;
  accepted: number;
  stored: number;
  failures: string[];
  seconds: number;
  /** Seconds spent posting, waiting for the drain, and checking storage. */
  phases: Record<string, number>;
}

export interface Reply {
  status: number;
  body: string;
  retryAfter?: string;
}

const CRASH_ID = /^CrashID=bp-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{6}[0-9]{6}\n$/;
const DISCARDED = /^Discarded=(malformed|too_large)_[a-z0-9_]+$/;

/** Each case gets its own seed, so a failure replays alone: `--seed S --only N`. */
export function caseRandom(seed: number, index: number): () => number {
  return seededRandom((Math.imul(seed, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
}

export function fuzzCase(seed: number, index: number, dumps: Buffer[]): FuzzCase {
  return generateCase(caseRandom(seed, index), dumps);
}

/** Sends one case over a fresh connection: in one write with Content-Length, or chunked in its pieces. */
export function postCase(port: number, testCase: FuzzCase): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...testCase.headers, Connection: 'close' };
    if (!testCase.chunks) headers['Content-Length'] = String(testCase.body.length);
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: testCase.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const retryAfter = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ...(retryAfter ? { retryAfter } : {}) });
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    if (!testCase.chunks) {
      req.end(testCase.body);
      return;
    }
    let at = 0;
    for (const size of testCase.chunks) {
      req.write(testCase.body.subarray(at, at + size));
      at += size;
    }
    req.end();
  });
}

/** Why an answer to a hostile request is not one the collector may give, or undefined. */
export function answerProblem(reply: Reply): string | undefined {
  if (reply.status === 200) return CRASH_ID.test(reply.body) ? undefined : `200 without a crash ID: ${JSON.stringify(reply.body)}`;
  if (reply.status === 400 || reply.status === 413) return DISCARDED.test(reply.body) ? undefined : `${reply.status} body ${JSON.stringify(reply.body)}`;
  if (reply.status === 503) return reply.retryAfter ? undefined : '503 without Retry-After';
  return `status ${reply.status} ${JSON.stringify(reply.body.slice(0, 200))}`;
}

/** Every string in a parsed raw crash is well-formed Unicode without NUL. */
function badString(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') {
    if (!value.isWellFormed()) return `${path} has a lone surrogate`;
    if (value.includes('\u0000')) return `${path} has a NUL`;
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const problem = badString(key, `${path} key ${JSON.stringify(key)}`) ?? badString(child, `${path}.${key}`);
      if (problem) return problem;
    }
  }
  return undefined;
}

/**
 * Why a crash stored from a hostile report is not whole, or undefined: its raw crash is JSON with
 * well-formed strings, and every dump it names matches the checksum taken at receipt.
 */
export async function checksumProblem(reader: ObjectReader, crashId: string): Promise<string | undefined> {
  const raw = await reader.get(rawCrashKey(crashId));
  if (!raw) return 'no raw crash';
  let rawCrash: { uuid?: string; metadata?: { dump_checksums?: Record<string, string> } };
  try {
    rawCrash = JSON.parse(raw.toString('utf8')) as typeof rawCrash;
  } catch {
    return 'raw crash is not JSON';
  }
  if (rawCrash.uuid !== crashId) return `raw crash uuid ${rawCrash.uuid}`;
  const strings = badString(rawCrash, 'raw_crash');
  if (strings) return strings;
  const namesJson = await reader.get(dumpNamesKey(crashId));
  if (!namesJson) return 'no dump_names';
  const names = JSON.parse(namesJson.toString('utf8')) as string[];
  const checksums = rawCrash.metadata?.dump_checksums ?? {};
  if (JSON.stringify([...names].sort()) !== JSON.stringify(Object.keys(checksums).sort())) return `dump_names ${namesJson.toString()} vs checksums`;
  for (const name of names) {
    const dump = await reader.get(dumpKey(crashId, name));
    if (!dump) return `no dump ${name}`;
    if (createHash('sha256').update(dump).digest('hex') !== checksums[name]) return `dump ${name} differs from its checksum`;
  }
  return undefined;
}

interface FuzzStorage {
  env: Record<string, string>;
  reader: ObjectReader;
  countRawCrashes(): Promise<number>;
  cleanUp(): Promise<void>;
}

function fuzzStorage(kind: FuzzOptions['storage']): FuzzStorage {
  if (kind === 's3') {
    const target = s3Target('fuzz');
    return {
      env: target.env,
      reader: target.reader,
      async countRawCrashes() {
        let count = 0;
        for await (const keys of listKeys(target.client, target.bucket, `${target.prefix}v1/raw_crash/`)) count += keys.length;
        return count;
      },
      // The test cluster keeps objects in memory: leave nothing behind.
      cleanUp: async () => void (await deletePrefix(target.client, target.env['STORAGE_URL']!)),
    };
  }
  const files = tempDir('fuzz-files');
  return {
    env: { STORAGE_URL: `file://${files}` },
    reader: fileReader(files),
    async countRawCrashes() {
      const root = join(files, 'v1', 'raw_crash');
      let count = 0;
      try {
        for (const day of readdirSync(root)) count += readdirSync(join(root, day)).length;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      return count;
    },
    cleanUp: async () => rmSync(files, { recursive: true, force: true }),
  };
}

async function waitForEmptySpool(collector: CollectorProcess, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let pending = Infinity;
  while (Date.now() < deadline) {
    pending = metric(await scrape(collector.url), 'crashspool_spool_crashes', { state: 'pending' });
    if (pending === 0) return 0;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return pending;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const started = Date.now();
  const storage = fuzzStorage(options.storage);
  const collector = await CollectorProcess.start({
    SPOOL_DIR: tempDir('fuzz-spool'),
    ...storage.env,
    SPOOL_DURABILITY: 'normal',
    // Small enough that the limits are crossed often, in every part and at every offset.
    MAX_BODY_BYTES: '256k',
    MAX_DECOMPRESSED_BYTES: '320k',
    MAX_PARTS: '12',
    // Reports without a dump are read whole, most with one stream: both ways are fuzzed.
    WHOLE_BODY_MAX_BYTES: '8k',
    MAX_ANNOTATIONS: '10',
    MAX_ANNOTATION_BYTES: '32k',
    MAX_DUMP_BYTES: '100k',
    MAX_TOTAL_DUMP_BYTES: '200k',
  });
  const dumps = [...loadFixtureDumps().values()].filter((dump) => dump.length < 200_000);
  const indices = options.only !== undefined ? [options.only] : Array.from({ length: options.cases }, (_, i) => i);
  const result: FuzzResult = { seed: options.seed, cases: indices.length, statuses: {}, reasons: {}, accepted: 0, stored: 0, failures: [], seconds: 0, phases: {} };
  const phase = (name: string, since: number) => (result.phases[name] = (Date.now() - since) / 1000);
  // A set: a case that repeats an earlier report is answered with the earlier crash ID (dedup).
  const acknowledged = new Set<string>();
  let next = 0;
  let done = 0;

  const worker = async () => {
    while (next < indices.length && result.failures.length < 20 && collector.child.exitCode === null && collector.child.signalCode === null) {
      const index = indices[next++]!;
      const testCase = fuzzCase(options.seed, index, dumps);
      const label = `case ${index} (replay: --seed ${options.seed} --only ${index}) [${testCase.steps.join(' | ')}]`;
      let reply: Reply;
      try {
        reply = await postCase(collector.port, testCase);
      } catch (error) {
        result.failures.push(`${label}: no answer: ${(error as Error).message}`);
        continue;
      }
      result.statuses[reply.status] = (result.statuses[reply.status] ?? 0) + 1;
      const reason = reply.status === 200 ? 'accepted' : reply.body.trim();
      result.reasons[reason] = (result.reasons[reason] ?? 0) + 1;
      const problem = answerProblem(reply);
      if (problem) result.failures.push(`${label}: ${problem}`);
      if (reply.status === 200 && !problem) acknowledged.add(/CrashID=bp-(\S+)/.exec(reply.body)![1]!);
      if (collector.child.exitCode !== null || collector.child.signalCode !== null) {
        result.failures.push(`${label}: the collector died: ${collector.stderr.slice(-2000)}`);
        break;
      }
      done += 1;
      if (done % 500 === 0) options.onProgress?.(done);
    }
  };

  try {
    await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
    phase('posting', started);
    const drainStarted = Date.now();
    if (collector.child.exitCode === null && collector.child.signalCode === null) {
      const metrics = await scrape(collector.url);
      const received = metric(metrics, 'crashspool_crashes_received_total');
      const accepted = [...metrics.matchAll(/^crashspool_crashes_accepted_total\{[^}]*\} (\S+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
      const rejected = [...metrics.matchAll(/^crashspool_crashes_rejected_total\{[^}]*\} (\S+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
      // A case that repeats an earlier report is answered with the earlier crash ID (dedup).
      const repeats = metric(metrics, 'crashspool_duplicate_reports_total');
      if (received !== done || accepted + rejected + repeats !== done) {
        result.failures.push(`metrics: ${received} received, ${accepted} accepted + ${rejected} refused + ${repeats} repeats, for ${done} requests answered`);
      }
      const unexpected = collector.logs.filter((line) => (line.level ?? 0) >= 50);
      for (const line of unexpected.slice(0, 5)) result.failures.push(`error logged: ${JSON.stringify(line).slice(0, 1500)}`);
      const left = await waitForEmptySpool(collector, 60_000);
      if (left !== 0) result.failures.push(`${left} crashes still pending after 60 s`);
    }
    phase('draining', drainStarted);
    const checkStarted = Date.now();
    result.accepted = acknowledged.size;
    const toCheck = [...acknowledged];
    const checker = async () => {
      for (let crashId = toCheck.pop(); crashId !== undefined; crashId = toCheck.pop()) {
        const problem = await checksumProblem(storage.reader, crashId);
        if (problem) result.failures.push(`acknowledged ${crashId}: ${problem}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, checker));
    result.stored = await storage.countRawCrashes();
    phase('checking', checkStarted);
    if (result.stored !== acknowledged.size) result.failures.push(`${result.stored} raw crashes stored for ${acknowledged.size} acknowledged`);
  } finally {
    await collector.stop();
    await storage.cleanUp();
  }
  result.seconds = (Date.now() - started) / 1000;
  return result;
}
