/**
 * A model-based test of the spool (after Vector's disk-buffer tests): a seeded generator drives the
 * real spool and a trivially correct in-memory model with the same random operations and compares
 * what each holds after every step.
 *
 * The real side goes through the functions the collector, the drain stage and spool-inspect use:
 * the spool writer thread (`SpoolWriter`: append with its dedup key, remove, markStored,
 * recordFailure of uploads and of announcements), the drain stage's reader connection
 * (`SpoolReader.due`, `stored`, `dumps`), and spool/operator/admin's `purge*` (with and without
 * `--unannounced`) and `requeue*` on an operator's connection of their own. `restart` closes everything cleanly and
 * opens it again; `kill` ends the writer thread at once with appends still queued (the model then
 * accepts either outcome for exactly those appends, and nothing else).
 *
 * The model is a list of crashes in arrival order, each pending, stored (in storage, waiting for the
 * queue) or dead with its attempts and next attempt time and whether storage has it, the dedup map
 * (report → crash ID), the drainer's in-flight uploads and the announcer's in-flight publishes. It
 * checks: the rows (order, state, attempts, due time, in storage) after every step; that `due` and
 * `stored` offer the oldest crashes the model says are due; that an upload reads its own crash's
 * dump bytes; that a repeat is answered with its first crash ID; that a remove or failure of a crash
 * purged meanwhile touches nothing; that a failure record touches only a crash in the state it is
 * of (an upload's: pending; an announcement's: stored); that a crash in storage and never announced
 * is purged only when the operator says so, and requeued to stored, not pending.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { gzipSync } from 'node:zlib';
import { newCrashId } from '../../src/crash-id.js';
import type { Crash } from '../../src/crash.js';
import { closeInspectedSpool, openSpoolForInspection } from '../../src/spool/operator/inspection.js';
import { purgeAllDead, purgeCrash, PurgeWouldLoseAnnouncement, requeueAllDead, requeueCrash } from '../../src/spool/operator/admin.js';
import type { StoredCrash } from '../../src/spool/runtime/reader.js';
import { closeSpoolDatabase, openSpoolDatabase, type CrashState, type SpooledCrash } from '../../src/spool/schema.js';
import { SpoolReader } from '../../src/spool/runtime/reader.js';
import { SpoolUsage } from '../../src/spool/runtime/usage.js';
import { SpoolWriter } from '../../src/spool/runtime/writer.js';
import { seededRandom } from '../helpers/random.js';

/** One step. Crashes are named by the report that made them (`report`), picks by index into what is there at run time. */
export type Op =
  | { op: 'append'; report: number }
  | { op: 'repeat'; report: number }
  | { op: 'start' }
  | { op: 'succeed'; pick: number }
  | { op: 'store'; pick: number }
  | { op: 'announce' }
  | { op: 'confirm'; pick: number }
  | { op: 'refuse'; pick: number }
  | { op: 'queueFail'; pick: number }
  | { op: 'fail'; pick: number }
  | { op: 'lateFailure'; pick: number }
  | { op: 'purge'; pick: number; unannounced: boolean }
  | { op: 'purgeUploading'; pick: number }
  | { op: 'purgeDead'; unannounced: boolean }
  | { op: 'requeue'; pick: number }
  | { op: 'requeueDead' }
  | { op: 'tick'; ms: number }
  | { op: 'restart' }
  | { op: 'kill'; reports: number[] };

export const MAX_ATTEMPTS = 3;
const RETRY_MS = 50;

/** Appends and removals about balance, so the spool stays small and the newest crash is often the one uploading. */
const WEIGHTS: [Op['op'], number][] = [
  ['append', 14],
  ['repeat', 4],
  ['start', 24],
  ['succeed', 9],
  ['store', 7],
  ['announce', 6],
  ['confirm', 4],
  ['refuse', 3],
  ['queueFail', 2],
  ['fail', 7],
  ['lateFailure', 2],
  ['purge', 3],
  ['purgeUploading', 5],
  ['purgeDead', 2],
  ['requeue', 3],
  ['requeueDead', 2],
  ['tick', 8],
  ['restart', 1],
  ['kill', 1],
];

/** `steps` operations from `seed`; the same seed gives the same operations. */
export function generate(seed: number, steps: number): Op[] {
  const random = seededRandom(seed);
  const total = WEIGHTS.reduce((sum, [, weight]) => sum + weight, 0);
  const int = (below: number) => Math.floor(random() * below);
  let reports = 0;
  const ops: Op[] = [];
  for (let step = 0; step < steps; step++) {
    let roll = random() * total;
    const kind = WEIGHTS.find(([, weight]) => (roll -= weight) < 0)![0];
    switch (kind) {
      case 'append':
        ops.push({ op: 'append', report: reports++ });
        break;
      case 'repeat':
        ops.push({ op: 'repeat', report: reports === 0 ? 0 : int(reports) });
        break;
      case 'tick':
        ops.push({ op: 'tick', ms: 1 + int(2 * RETRY_MS * MAX_ATTEMPTS) });
        break;
      case 'kill':
        ops.push({ op: 'kill', reports: Array.from({ length: int(4) }, () => reports++) });
        break;
      case 'purge':
        ops.push({ op: 'purge', pick: int(1 << 16), unannounced: random() < 0.5 });
        break;
      case 'purgeDead':
        ops.push({ op: 'purgeDead', unannounced: random() < 0.5 });
        break;
      case 'start':
      case 'announce':
      case 'requeueDead':
      case 'restart':
        ops.push({ op: kind });
        break;
      default:
        ops.push({ op: kind, pick: int(1 << 16) });
    }
  }
  return ops;
}

export function describe(op: Op): string {
  switch (op.op) {
    case 'append':
    case 'repeat':
      return `${op.op} report ${op.report}`;
    case 'tick':
      return `tick ${op.ms} ms`;
    case 'kill':
      return `kill with appends of reports [${op.reports.join(', ')}] queued`;
    case 'purge':
      return `purge #${op.pick}${op.unannounced ? ' --unannounced' : ''}`;
    case 'purgeDead':
      return `purge --all-dead${op.unannounced ? ' --unannounced' : ''}`;
    case 'start':
    case 'announce':
    case 'requeueDead':
    case 'restart':
      return op.op;
    default:
      return `${op.op} #${op.pick}`;
  }
}

interface ModelCrash {
  crashId: string;
  report: number;
  state: CrashState;
  attempts: number;
  nextAttemptAt: number;
  /** Storage confirmed every object (stored, or dead after the queue refused it). */
  inStorage: boolean;
  /** SHA-256 of each dump, in order. */
  dumps: string[];
}

interface Upload {
  /** The crash as the drainer read it when the upload started. */
  crash: SpooledCrash;
}

interface Row {
  crashId: string;
  state: CrashState;
  attempts: number;
  nextAttemptAt: number;
  inStorage: boolean;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** The crash a report makes: dumps of compressible bytes, every other one kept as a gzipped body with places in it. */
function crashOf(report: number, crashId: string, receivedAt: number): { crash: Crash; dumps: string[] } {
  const dumps = Array.from({ length: 1 + (report % 2) }, (_, index) => ({
    name: index === 0 ? 'upload_file_minidump' : 'upload_file_minidump_browser',
    data: Buffer.from(`report ${report} dump ${index} `.repeat(40 + (report % 7))),
  }));
  const checksums = dumps.map((dump) => sha256(dump.data));
  const crash: Crash = {
    crashId,
    receivedAt,
    rawCrash: {
      submitted_timestamp: new Date(receivedAt).toISOString(),
      uuid: crashId,
      version: 2,
      report: String(report),
      metadata: {
        collector_notes: [],
        dump_checksums: Object.fromEntries(dumps.map((dump, index) => [dump.name, checksums[index]!])),
        payload: 'multipart',
        payload_compressed: report % 3 === 0 ? '1' : '0',
        payload_size: 0,
        throttle_rule: 'accept_everything',
        user_agent: 'spool-model',
      },
    },
    dumps,
  };
  if (report % 3 === 0) {
    let offset = 0;
    crash.dumps = dumps.map((dump) => {
      const placed = { ...dump, offset };
      offset += dump.data.length;
      return placed;
    });
    crash.sentGzip = gzipSync(Buffer.concat(dumps.map((dump) => dump.data)));
  }
  return { crash, dumps: checksums };
}

/** The real spool: a writer thread, the drainer's reader connection, and operators' connections. */
class RealSpool {
  private constructor(
    readonly dir: string,
    readonly writer: SpoolWriter,
    readonly reader: SpoolReader,
  ) {}

  static async open(dir: string): Promise<RealSpool> {
    const db = openSpoolDatabase(dir, { durability: 'normal', create: true });
    const reader = new SpoolReader(db);
    const usage = new SpoolUsage(reader.stats().bytes, { dir, maxBytes: Number.MAX_SAFE_INTEGER, minFreeBytes: 0 });
    const writer = await SpoolWriter.start({
      dir,
      durability: 'normal',
      usage,
      reusableBytes: () => reader.reusableBytes(),
      onFatal: () => undefined,
      checkpoints: { everyBytes: 64 * 1024, eagerBelowFreeBytes: 0 },
    });
    return new RealSpool(dir, writer, reader);
  }

  rows(): Row[] {
    return (
      this.reader.db.prepare('SELECT crash_id, state, attempts, next_attempt_at, stored_at FROM crashes ORDER BY seq').all() as {
        crash_id: string;
        state: CrashState;
        attempts: number;
        next_attempt_at: number;
        stored_at: number | null;
      }[]
    ).map((row) => ({ crashId: row.crash_id, state: row.state, attempts: row.attempts, nextAttemptAt: row.next_attempt_at, inStorage: row.stored_at !== null }));
  }

  operator<T>(action: (spool: ReturnType<typeof openSpoolForInspection>) => T): T {
    const spool = openSpoolForInspection(this.dir, 'write');
    try {
      return action(spool);
    } finally {
      closeInspectedSpool(spool);
    }
  }

  async close(): Promise<void> {
    await this.writer.close();
    closeSpoolDatabase(this.reader.db);
  }

  /** Ends the writer thread at once, as a kill would: what it committed stays, what was queued may not. */
  async kill(): Promise<void> {
    await this.writer.abort();
    this.reader.db.close();
  }
}

export class ModelFailure extends Error {
  constructor(
    readonly step: number,
    message: string,
  ) {
    super(message);
  }
}

/** Runs `ops` against a fresh spool and the model; throws ModelFailure at the first difference. */
export async function run(ops: readonly Op[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'crashspool-model-'));
  let real = await RealSpool.open(dir);
  const crashIds = new Map<number, string>();
  const crashIdOf = (report: number) => {
    let crashId = crashIds.get(report);
    if (!crashId) crashIds.set(report, (crashId = newCrashId(new Date())));
    return crashId;
  };
  const model: ModelCrash[] = [];
  const dedup = new Map<number, string>();
  let uploads: Upload[] = [];
  let clock = 1_000_000;
  let step = 0;
  const fail = (message: string): never => {
    throw new ModelFailure(step, message);
  };
  const find = (crashId: string) => model.find((crash) => crash.crashId === crashId);
  const dedupKey = (report: number) => ({ identity: `report-${report}`, content: `content-${report}`, notBefore: 0 });

  const append = async (report: number): Promise<void> => {
    const crashId = crashIdOf(report);
    const { crash, dumps } = crashOf(report, crashId, clock);
    const earlier = dedup.get(report);
    const result = await real.writer.append(crash, dedupKey(report));
    if (earlier !== undefined) {
      if (result.duplicateOf !== earlier) fail(`report ${report} sent again: answered ${result.duplicateOf ?? 'as a new crash'}, expected ${earlier}`);
      return;
    }
    if (result.duplicateOf !== undefined) fail(`report ${report} (new) answered as a repeat of ${result.duplicateOf}`);
    dedup.set(report, crashId);
    model.push({ crashId, report, state: 'pending', attempts: 0, nextAttemptAt: 0, inStorage: false, dumps });
  };

  const pickUpload = (pick: number): Upload | undefined => (uploads.length === 0 ? undefined : uploads[pick % uploads.length]);
  const endUpload = (upload: Upload) => (uploads = uploads.filter((other) => other !== upload));
  /** The announcer's publishes in flight: crashes as it read them when the batch started. */
  let announcing: StoredCrash[] = [];
  const pickAnnouncing = (pick: number): StoredCrash | undefined => {
    const chosen = announcing.length === 0 ? undefined : announcing[pick % announcing.length];
    announcing = announcing.filter((other) => other !== chosen);
    return chosen;
  };
  /** What an announcement's failure record does to the model's crash, and whether the spool must say it found it. */
  const announceFailure = async (announced: StoredCrash, counted: boolean): Promise<void> => {
    const attempts = counted ? announced.attempts + 1 : announced.attempts;
    const failure = {
      stage: 'announce' as const,
      attempts,
      nextAttemptAt: clock + RETRY_MS * Math.max(1, attempts),
      error: `model queue failure ${attempts}`,
      dead: counted && attempts >= MAX_ATTEMPTS,
    };
    const found = await real.writer.recordFailure(announced, failure);
    const crash = find(announced.crashId);
    const expected = crash !== undefined && crash.state === 'stored';
    if (found !== expected) fail(`announce failure of ${announced.crashId} (${crash?.state ?? 'gone'}) said ${found ? 'recorded' : 'not there'}`);
    if (crash && found) Object.assign(crash, { attempts, nextAttemptAt: failure.nextAttemptAt, state: failure.dead ? 'dead' : 'stored' });
  };

  const apply = async (op: Op): Promise<void> => {
    switch (op.op) {
      case 'append':
      case 'repeat':
        return append(op.report);
      case 'start': {
        const expected = model.find(
          (crash) => crash.state === 'pending' && crash.nextAttemptAt <= clock && !uploads.some((upload) => upload.crash.crashId === crash.crashId),
        );
        const [due] = real.reader.due(clock, 1, new Set(uploads.map((upload) => upload.crash.seq)));
        if (due?.crashId !== expected?.crashId) fail(`due offered ${due?.crashId ?? 'nothing'}, the model expected ${expected?.crashId ?? 'nothing'}`);
        if (!due || !expected) return;
        const dumps = await real.reader.dumps(due);
        if (!dumps) return fail(`the upload of ${due.crashId} found it gone from the spool`);
        const read = dumps.map((dump) => sha256(dump.data));
        if (!isDeepStrictEqual(read, expected.dumps)) fail(`the upload of ${due.crashId} read other dump bytes (${read.length} dumps)`);
        uploads.push({ crash: due });
        return;
      }
      case 'succeed': {
        const upload = pickUpload(op.pick);
        if (!upload) return;
        endUpload(upload);
        const removed = await real.writer.remove(upload.crash);
        const index = model.findIndex((crash) => crash.crashId === upload.crash.crashId);
        if (removed !== index >= 0) fail(`remove of ${upload.crash.crashId} said ${removed ? 'removed' : 'not there'}`);
        if (index >= 0) model.splice(index, 1);
        return;
      }
      case 'store': {
        // Publishing: storage confirmed every object; the crash waits, stored, for the queue.
        const upload = pickUpload(op.pick);
        if (!upload) return;
        endUpload(upload);
        const rawCrashBytes = Buffer.byteLength(upload.crash.rawCrashJson);
        const stored = await real.writer.markStored({ ...upload.crash, rawCrashBytes });
        const crash = find(upload.crash.crashId);
        if (stored !== (crash !== undefined && crash.state === 'pending')) fail(`markStored of ${upload.crash.crashId} said ${stored ? 'stored' : 'not there'}`);
        if (crash && stored) Object.assign(crash, { state: 'stored', attempts: 0, nextAttemptAt: 0, inStorage: true });
        return;
      }
      case 'announce': {
        // The announcer takes the longest-waiting stored crashes that are due and not in flight.
        const busy = new Set(announcing.map((crash) => crash.seq));
        const expected = model.filter((crash) => crash.state === 'stored' && crash.nextAttemptAt <= clock && !announcing.some((other) => other.crashId === crash.crashId));
        const offered = real.reader.stored(clock, 4, busy);
        const offeredIds = offered.map((crash) => crash.crashId);
        if (!isDeepStrictEqual(offeredIds, expected.slice(0, 4).map((crash) => crash.crashId))) fail(`stored offered [${offeredIds.join(', ')}]`);
        for (const crash of offered) if ((await real.reader.dumps(crash)) === undefined) fail(`a stored crash ${crash.crashId} reads as gone`);
        announcing.push(...offered);
        return;
      }
      case 'confirm': {
        // The queue confirmed it: it leaves the spool, unless an operator purged it meanwhile.
        const announced = pickAnnouncing(op.pick);
        if (!announced) return;
        const removed = await real.writer.remove(announced);
        const index = model.findIndex((crash) => crash.crashId === announced.crashId);
        if (removed !== index >= 0) fail(`remove of published ${announced.crashId} said ${removed ? 'removed' : 'not there'}`);
        if (index >= 0) model.splice(index, 1);
        return;
      }
      case 'refuse': {
        // The queue refused it as its fault: an attempt counted, dead-lettered at the last.
        const announced = pickAnnouncing(op.pick);
        if (announced) await announceFailure(announced, true);
        return;
      }
      case 'queueFail': {
        // The queue's own trouble: noted on the crash, never counted.
        const announced = pickAnnouncing(op.pick);
        if (announced) await announceFailure(announced, false);
        return;
      }
      case 'lateFailure': {
        // A failure record for any crash, of either stage: only a crash in that stage's state takes it.
        if (model.length === 0) return;
        const crash = model[op.pick % model.length]!;
        const stage = op.pick % 2 === 0 ? 'upload' : 'announce';
        const [row] = real.reader.db.prepare('SELECT seq, crash_id AS crashId FROM crashes WHERE crash_id = ?').all(crash.crashId) as { seq: number; crashId: string }[];
        const failure = { stage, attempts: crash.attempts, nextAttemptAt: clock + RETRY_MS, error: 'late failure', dead: false } as const;
        const found = await real.writer.recordFailure(row!, failure);
        const takes = crash.state === (stage === 'upload' ? 'pending' : 'stored');
        if (found !== takes) fail(`a late ${stage} failure of ${crash.crashId} (${crash.state}) said ${found ? 'recorded' : 'not there'}`);
        if (found) crash.nextAttemptAt = failure.nextAttemptAt;
        return;
      }
      case 'fail': {
        const upload = pickUpload(op.pick);
        if (!upload) return;
        endUpload(upload);
        const attempts = upload.crash.attempts + 1;
        const failure = { stage: 'upload' as const, attempts, nextAttemptAt: clock + RETRY_MS * attempts, error: `model failure ${attempts}`, dead: attempts >= MAX_ATTEMPTS };
        const found = await real.writer.recordFailure(upload.crash, failure);
        const crash = find(upload.crash.crashId);
        if (found !== (crash !== undefined)) fail(`failure of ${upload.crash.crashId} said ${found ? 'recorded' : 'not there'}`);
        if (crash) Object.assign(crash, { attempts, nextAttemptAt: failure.nextAttemptAt, state: failure.dead ? 'dead' : 'pending' });
        return;
      }
      case 'purge':
      case 'purgeUploading': {
        const candidates = op.op === 'purge' ? model : model.filter((crash) => uploads.some((upload) => upload.crash.crashId === crash.crashId));
        if (candidates.length === 0) return;
        const crash = candidates[op.pick % candidates.length]!;
        const unannounced = op.op === 'purge' && op.unannounced;
        let purged;
        try {
          purged = real.operator((spool) => purgeCrash(spool, crash.crashId, op.op === 'purgeUploading' || unannounced, () => undefined));
        } catch (error) {
          if (!(error instanceof PurgeWouldLoseAnnouncement)) throw error;
          if (!crash.inStorage) fail(`purge of ${crash.crashId} (not in storage) refused as unannounced`);
          return;
        }
        if (crash.inStorage && op.op === 'purge' && !unannounced) fail(`purge of ${crash.crashId} (in storage, unannounced) went through without --unannounced`);
        if (purged.length !== 1 || purged[0]!.crashId !== crash.crashId) fail(`purge of ${crash.crashId} deleted ${JSON.stringify(purged)}`);
        model.splice(model.indexOf(crash), 1);
        return;
      }
      case 'purgeDead': {
        const purged = real.operator((spool) => purgeAllDead(spool, op.unannounced, () => undefined)).map((crash) => crash.crashId);
        const expected = model.filter((crash) => crash.state === 'dead' && (op.unannounced || !crash.inStorage)).map((crash) => crash.crashId);
        if (!isDeepStrictEqual(purged, expected)) fail(`purge --all-dead deleted [${purged.join(', ')}], expected [${expected.join(', ')}]`);
        for (const crashId of expected) model.splice(model.findIndex((crash) => crash.crashId === crashId), 1);
        return;
      }
      case 'requeue': {
        if (model.length === 0) return;
        const crash = model[op.pick % model.length]!;
        const result = real.operator((spool) => requeueCrash(spool, crash.crashId));
        const wasDead = crash.state === 'dead';
        if (!isDeepStrictEqual(result.requeued, wasDead ? [crash.crashId] : [])) fail(`requeue of ${crash.crashId}: ${JSON.stringify(result)}`);
        if (wasDead) Object.assign(crash, { state: crash.inStorage ? 'stored' : 'pending', attempts: 0, nextAttemptAt: 0 });
        return;
      }
      case 'requeueDead': {
        const requeued = real.operator((spool) => requeueAllDead(spool, 2)).requeued;
        const expected = model.filter((crash) => crash.state === 'dead');
        if (!isDeepStrictEqual(requeued, expected.map((crash) => crash.crashId))) fail(`requeue --all-dead requeued [${requeued.join(', ')}]`);
        for (const crash of expected) Object.assign(crash, { state: crash.inStorage ? 'stored' : 'pending', attempts: 0, nextAttemptAt: 0 });
        return;
      }
      case 'tick':
        clock += op.ms;
        return;
      case 'restart':
        await real.close();
        real = await RealSpool.open(dir);
        uploads = [];
        announcing = [];
        return;
      case 'kill': {
        const queued = op.reports.map((report) => {
          const crashId = crashIdOf(report);
          const { crash, dumps } = crashOf(report, crashId, clock);
          return { report, crashId, dumps, written: real.writer.append(crash, dedupKey(report)).catch(() => undefined) };
        });
        await real.kill();
        await Promise.all(queued.map((entry) => entry.written));
        real = await RealSpool.open(dir);
        uploads = [];
        announcing = [];
        // Each queued append either committed whole or not at all; the model takes what the spool says for these alone.
        const present = new Set(real.rows().map((row) => row.crashId));
        for (const entry of queued) {
          if (!present.has(entry.crashId) || dedup.has(entry.report)) continue;
          dedup.set(entry.report, entry.crashId);
          model.push({ crashId: entry.crashId, report: entry.report, state: 'pending', attempts: 0, nextAttemptAt: 0, inStorage: false, dumps: entry.dumps });
        }
        return;
      }
    }
  };

  try {
    for (; step < ops.length; step++) {
      await apply(ops[step]!);
      const rows = real.rows();
      const expected: Row[] = model.map(({ crashId, state, attempts, nextAttemptAt, inStorage }) => ({ crashId, state, attempts, nextAttemptAt, inStorage }));
      if (!isDeepStrictEqual(rows, expected)) {
        const missing = expected.filter((row) => !rows.some((other) => other.crashId === row.crashId)).map((row) => `${row.crashId} (report ${find(row.crashId)?.report})`);
        const extra = rows.filter((row) => !expected.some((other) => other.crashId === row.crashId)).map((row) => row.crashId);
        fail(
          `the spool differs from the model after "${describe(ops[step]!)}": ` +
            (missing.length > 0 ? `missing ${missing.join(', ')}; ` : '') +
            (extra.length > 0 ? `unexpected ${extra.join(', ')}; ` : '') +
            `spool ${JSON.stringify(rows)} model ${JSON.stringify(expected)}`,
        );
      }
    }
  } finally {
    await real.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The shortest sequence found (by removing chunks, then single steps, while it still fails) that
 * fails like `ops` does; at most `budget` runs.
 */
export async function shrink(ops: readonly Op[], budget = 300): Promise<{ ops: Op[]; failure: ModelFailure }> {
  const failureOf = async (candidate: readonly Op[]): Promise<ModelFailure | undefined> => {
    try {
      await run(candidate);
      return undefined;
    } catch (error) {
      if (error instanceof ModelFailure) return error;
      throw error;
    }
  };
  let failure = await failureOf(ops);
  if (!failure) throw new Error('the sequence to shrink does not fail');
  let current = ops.slice(0, failure.step + 1);
  let runs = 1;
  for (let chunk = Math.max(1, Math.floor(current.length / 2)); chunk >= 1 && runs < budget; chunk = Math.floor(chunk / 2)) {
    for (let start = 0; start < current.length && runs < budget; ) {
      const candidate = [...current.slice(0, start), ...current.slice(start + chunk)];
      runs++;
      const found = await failureOf(candidate);
      if (found) {
        current = candidate.slice(0, found.step + 1);
        failure = found;
      } else {
        start += chunk;
      }
    }
  }
  return { ops: current, failure };
}

/** Runs `steps` operations from `seed`; on a failure, shrinks it and says what failed, in order. */
export async function check(seed: number, steps: number): Promise<{ ok: true } | { ok: false; report: string }> {
  const ops = generate(seed, steps);
  try {
    await run(ops);
    return { ok: true };
  } catch (error) {
    if (!(error instanceof ModelFailure)) throw error;
    const shrunk = await shrink(ops);
    const lines = shrunk.ops.map((op, index) => `  ${String(index + 1).padStart(3)}. ${describe(op)}`);
    return {
      ok: false,
      report:
        `seed ${seed}: failed at step ${error.step + 1} of ${steps}: ${error.message}\n` +
        `shortened to ${shrunk.ops.length} steps:\n${lines.join('\n')}\n  -> ${shrunk.failure.message}`,
    };
  }
}
