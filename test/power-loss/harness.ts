/**
 * The power-loss harness behind I1 "ack ⇒ durable" with `SPOOL_DURABILITY=full` (docs/INVARIANTS.md).
 *
 * Each round mounts the power-loss layer (powerloss_fs.py: a page cache that keeps only what was
 * fsynced) over the spool's backing directory and runs the real collector (`node dist/main.js`)
 * with SPOOL_DIR on the mount and storage OUTSIDE the layer (a `file://` directory, or S3), while
 * several clients post crash reports. Then the power is cut — at a random moment, or at a random
 * write so the cut lands inside a commit or a WAL checkpoint — in `drop` mode (everything unsynced
 * is gone) or `torn` mode (a random half of the unsynced 4 KiB pages reach the disk). The collector
 * is SIGKILLed (the machine is off), the layer unmounted, and the backing directory then holds
 * exactly what was durable. A copy of it must pass `PRAGMA integrity_check`; a new collector must
 * start on the backing directory itself (it checks the spool and refuses a damaged one) and drain
 * it; every crash acknowledged so far must then be in storage, byte for byte. The next round
 * mounts the layer over the same backing directory, so most rounds start from a used spool; every
 * FRESH_SPOOL_EVERY-th round starts from an empty directory, and half of those cut the power while
 * the collector creates its spool.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { CollectorProcess, freePort, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { makeReport, type ClientStyle } from '../helpers/multipart.js';
import { expectedFrom, fileReader, s3Target, storedProblem, type Expected, type ObjectReader } from '../helpers/stored-crashes.js';
import { cleanStaleMounts, PowerLossLayer, type CutInfo, type CutMode } from './layer.js';
import { seededRandom } from '../helpers/random.js';
import { checkSpoolCopy } from '../helpers/spool-copy.js';
import { checksOf } from '../helpers/heartbeat.js';

const STYLES: ClientStyle[] = ['breakpad', 'crashpad', 'mozilla', 'electron'];
const FRESH_SPOOL_EVERY = 5;
/** Writes a collector makes while creating a new spool (measured: 44). */
const SPOOL_CREATION_WRITES = 44;

export interface PowerLossOptions {
  cuts: number;
  /** Concurrent posting clients. Default 4. */
  clients?: number;
  seed?: number;
  /** SPOOL_DURABILITY of the collectors. Default `full`. */
  durability?: 'full' | 'normal';
  /**
   * `file` (default): a directory outside the layer; `s3`: the local RGW (S3_ENDPOINT etc.);
   * `layer`: a `file://` directory ON the layer (`<mount>/crashes`), so the power cut hits the
   * storage too — the test of FileStorage's own durability.
   */
  storage?: 'file' | 's3' | 'layer';
  /** Every cut in this mode (default: drop or torn at random). */
  mode?: CutMode;
  /** Every cut by this trigger (default: at random; start-up cuts only on fresh spools). */
  trigger?: Trigger;
  /** Largest fixture dump used (bytes); the Python layer is slow on big commits. Default 100 KB. */
  maxDumpBytes?: number;
  /** How long the load runs at most before a time cut, ms. Default 2000. */
  maxLoadMs?: number;
  /** Time cuts come no earlier than this into the load, ms. Default 50. */
  minLoadMs?: number;
  /**
   * Put SPOOL_DIR in this subdirectory of the mount, which the collector creates itself (as it
   * does for a SPOOL_DIR that does not exist yet). Default: the mount's root.
   */
  spoolSubdir?: string;
  progress?: (line: string) => void;
  /** Print the `power cuts N: ...` line. Default true. */
  print?: boolean;
  /** Delete the backing and storage directories after a run that lost nothing. Default true. */
  cleanUp?: boolean;
}

/** A random moment, a random write, or a random write to spool.db (aimed at a WAL checkpoint). */
export type Trigger = 'time' | 'writes' | 'checkpoint writes' | 'start-up writes';

export type CutPlace = 'during start-up' | 'inside a commit' | 'inside a checkpoint' | 'between commits';

export interface CutRecord {
  round: number;
  mode: CutMode;
  trigger: Trigger;
  place: CutPlace;
  /** The file of the write that triggered the cut (write-count cuts), or of the last write. */
  file: string | undefined;
  /** Unsynced pages per file at the cut. */
  unsynced: Record<string, number>;
  keptPages: number;
  droppedPages: number;
  acknowledgedThisRound: number;
  /**
   * Answers clients got after the harness saw the cut, status → count. A 200 here was committed
   * before the cut and answered just after; every one is verified like the rest.
   */
  answersAfterCut: Record<string, number>;
  /** Crashes in the backing copy's spool after the cut. */
  spooledAfterCut: number;
  integrity: string;
  drainMs: number;
}

export interface LostCrash {
  crashId: string;
  round: number;
  problem: string;
  /** Its row in the backing copy right after the cut, if any. */
  inSpoolAfterCut: boolean;
  /** It was acknowledged after the round's cut (the collector answered 200 with the power off). */
  ackedAfterCut: boolean;
}

export interface PowerLossResult {
  cuts: number;
  acknowledged: number;
  stored: number;
  lost: number;
  seed: number;
  durability: 'full' | 'normal';
  durationMs: number;
  places: Record<CutPlace, number>;
  modes: Record<CutMode, number>;
  triggers: Record<Trigger, number>;
  perCut: CutRecord[];
  lostCrashes: LostCrash[];
  /** Non-ack answers before the cuts that are neither 503 nor a refused connection: each is a bug. */
  unexpected: { status: number; body: string }[];
  /** Drain collectors that failed to start on a backing directory (damaged spool?). */
  failedStarts: string[];
  backingDirs: string[];
  storageDir: string;
  summary: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const pick = <T>(rng: () => number, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;

function placeOf(cut: CutInfo, collectorUp: boolean): CutPlace {
  if (!collectorUp) return 'during start-up';
  const files = cut.unsynced_files;
  if ((files['spool.db']?.pages ?? 0) > 0) return 'inside a checkpoint';
  if ((files['spool.db-wal']?.pages ?? 0) > 0) return 'inside a commit';
  return 'between commits';
}

interface Heartbeat {
  spool_depth?: { pending?: number; dead?: number };
  drainer?: { uploading?: number };
}

/** Waits until the collector's spool has nothing pending and nothing uploading. */
async function untilDrained(collector: CollectorProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const answer = await fetch(`${collector.url}/__heartbeat__`, { headers: { Connection: 'close' } });
      const health = checksOf(await answer.json()) as unknown as Heartbeat;
      if (health.spool_depth?.pending === 0 && health.drainer?.uploading === 0) return true;
    } catch {
      // not answering yet
    }
    await sleep(50);
  }
  return false;
}

export async function runPowerLoss(options: PowerLossOptions): Promise<PowerLossResult> {
  const began = Date.now();
  const cuts = options.cuts;
  if (!Number.isInteger(cuts) || cuts < 1) throw new Error(`cuts must be a positive integer, got ${cuts}`);
  const clients = options.clients ?? 4;
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  const durability = options.durability ?? 'full';
  const maxLoadMs = options.maxLoadMs ?? 2000;
  const minLoadMs = Math.min(options.minLoadMs ?? 50, maxLoadMs);
  const progress = options.progress ?? (() => {});
  const rng = seededRandom(seed);

  await cleanStaleMounts();
  const dumps = [...loadFixtureDumps().values()].filter((dump) => dump.length <= (options.maxDumpBytes ?? 100_000));
  let backing = tempDir('powerloss-spool');
  const backings = [backing];
  const s3 = options.storage === 's3' ? s3Target('powerloss') : undefined;
  const onLayer = options.storage === 'layer';
  const storageDir = s3 || onLayer ? '' : tempDir('powerloss-storage');
  /** Where the crashes are, for a collector whose spool root (mount or backing) is `root`. */
  const storageEnv = (root: string): Record<string, string> =>
    s3 ? s3.env : { STORAGE_URL: `file://${onLayer ? join(root, 'crashes') : storageDir}` };
  const readerFor = (root: string): ObjectReader => (s3 ? s3.reader : fileReader(onLayer ? join(root, 'crashes') : storageDir));
  const env = (root: string): Record<string, string> => ({
    SPOOL_DIR: options.spoolSubdir ? join(root, options.spoolSubdir) : root,
    SPOOL_DURABILITY: durability,
    ...storageEnv(root),
    DRAIN_RETRY_BASE_SECONDS: '0.1',
    DRAIN_RETRY_MAX_SECONDS: '1',
    // The production default (64m) would rarely checkpoint under this light load: every MiB
    // instead, so cuts land inside checkpoints too.
    SPOOL_CHECKPOINT_BYTES: '1m',
  });

  const acked = new Map<string, { expected: Expected; round: number; afterCut: boolean }>();
  const perCut: CutRecord[] = [];
  const unexpected: PowerLossResult['unexpected'] = [];
  const failedStarts: string[] = [];
  const lostCrashes: LostCrash[] = [];
  /** Writes per second through the layer while loaded (all, and to spool.db), to aim write-count cuts into the load. */
  let writeRate = 4000;
  let checkpointWriteRate = 400;

  for (let round = 0; round < cuts; round += 1) {
    const drawMode: CutMode = rng() < 0.5 ? 'torn' : 'drop';
    const mode = options.mode ?? drawMode;
    const fresh = round > 0 && round % FRESH_SPOOL_EVERY === 0;
    if (fresh) {
      backing = tempDir('powerloss-spool');
      backings.push(backing);
    }
    const draw = rng();
    let trigger: Trigger = draw < 1 / 3 ? 'time' : draw < 2 / 3 ? 'writes' : 'checkpoint writes';
    if ((fresh || round === 0) && rng() < 0.5) trigger = 'start-up writes';
    if (options.trigger) trigger = options.trigger;
    const layer = await PowerLossLayer.mount({ backing, seed: Math.floor(rng() * 2 ** 32) });
    let collector: CollectorProcess | undefined;
    let stopping = false;
    let cutSeen = false;
    let ackedThisRound = 0;
    const answersAfterCut: Record<string, number> = {};
    const loops: Promise<void>[] = [];
    let loadStarted = Date.now();
    let cutAt = Date.now();
    let writesAtLoad = 0;
    let checkpointWritesAtLoad = 0;
    try {
      // Write-count cuts are armed before the collector starts: a few land in its start-up.
      if (trigger === 'start-up writes') await layer.arm(1 + Math.floor(rng() * SPOOL_CREATION_WRITES), mode);
      if (trigger === 'writes') await layer.arm(1 + Math.floor(rng() * writeRate * (maxLoadMs / 1000)), mode);
      if (trigger === 'checkpoint writes') await layer.arm(1 + Math.floor(rng() * checkpointWriteRate * (maxLoadMs / 1000)), mode, 'spool.db');
      const port = await freePort();
      try {
        collector = await CollectorProcess.start(env(layer.mountpoint), port);
      } catch (error) {
        const stats = await layer.stats();
        if (!stats.cut) throw error; // it should have started: the power was still on
      }
      loadStarted = Date.now();
      const atLoad = await layer.stats();
      writesAtLoad = atLoad.writes;
      checkpointWritesAtLoad = atLoad.writes_by_file['spool.db'] ?? 0;
      const url = `http://127.0.0.1:${port}`;
      const client = async (index: number) => {
        const clientRng = seededRandom(seed + round * 1000 + index);
        while (!stopping) {
          const report = makeReport(pick(clientRng, STYLES), pick(clientRng, dumps), pick(clientRng, dumps));
          let answer;
          try {
            answer = await postReport(url, report);
          } catch {
            await sleep(10);
            continue;
          }
          if (cutSeen) {
            const key = String(answer.status);
            answersAfterCut[key] = (answersAfterCut[key] ?? 0) + 1;
          }
          if (answer.status === 200) {
            let crashId: string;
            try {
              crashId = crashIdFrom(answer);
            } catch {
              unexpected.push({ status: answer.status, body: answer.body.slice(0, 200) });
              continue;
            }
            acked.set(crashId, { expected: expectedFrom(report), round, afterCut: cutSeen });
            ackedThisRound += 1;
          } else if (answer.status !== 503 && !cutSeen) {
            unexpected.push({ status: answer.status, body: answer.body.slice(0, 200) });
          } else {
            await sleep(10);
          }
        }
      };
      if (collector) for (let i = 0; i < clients; i += 1) loops.push(client(i));

      // Wait for the armed cut, or cut at a random moment of the load.
      const timeCutAt = loadStarted + (trigger === 'time' ? minLoadMs + rng() * (maxLoadMs - minLoadMs) : maxLoadMs * 3);
      for (;;) {
        const stats = await layer.stats();
        if (stats.cut) break;
        if (Date.now() >= timeCutAt) {
          trigger = 'time'; // (an armed write-count cut that the load never reached falls back to this)
          await layer.cut(mode);
          break;
        }
        await sleep(5);
      }
      cutSeen = true;
      cutAt = Date.now();
      // Let the collector answer what it was doing when the power went: nothing more may be acknowledged.
      await sleep(150);
    } finally {
      stopping = true;
      if (collector) await collector.stop();
      await Promise.all(loops);
      const stats = await layer.stats().catch(() => undefined);
      await layer.unmount();
      if (stats?.cut) {
        const loadSeconds = (cutAt - loadStarted) / 1000;
        if (collector && stats.cut.at_write > writesAtLoad && loadSeconds > 0.3) {
          writeRate = Math.max(200, (stats.cut.at_write - writesAtLoad) / loadSeconds);
          checkpointWriteRate = Math.max(20, ((stats.writes_by_file['spool.db'] ?? 0) - checkpointWritesAtLoad) / loadSeconds);
        }
        const cut = stats.cut;
        const unsynced: Record<string, number> = {};
        for (const [file, info] of Object.entries(cut.unsynced_files)) unsynced[file] = info.pages;
        perCut.push({
          round,
          mode: cut.mode,
          trigger,
          place: placeOf(cut, collector !== undefined && cut.at_write > writesAtLoad),
          file: cut.trigger.file ?? cut.last_write?.file,
          unsynced,
          keptPages: cut.kept_pages,
          droppedPages: cut.dropped_pages,
          acknowledgedThisRound: ackedThisRound,
          answersAfterCut,
          spooledAfterCut: 0,
          integrity: '',
          drainMs: 0,
        });
        if (!cut.backing_matches) throw new Error(`round ${round}: the layer's backing directory does not match its durable view`);
      }
    }
    const record = perCut[perCut.length - 1];
    if (record?.round !== round) throw new Error(`round ${round}: the layer reported no power cut`);

    // The machine comes back: check a copy of what was durable, then drain it with a new collector.
    const check = checkSpoolCopy(options.spoolSubdir ? join(backing, options.spoolSubdir) : backing);
    record.integrity = check.integrity;
    record.spooledAfterCut = check.crashIds.size;
    const drainStart = Date.now();
    let drainer: CollectorProcess | undefined;
    try {
      drainer = await CollectorProcess.start(env(backing));
    } catch (error) {
      failedStarts.push(`round ${round}: ${(error as Error).message.slice(0, 500)}`);
    }
    if (drainer) {
      const drained = await untilDrained(drainer, 60_000);
      drainer.kill('SIGTERM');
      const exit = await drainer.exited;
      if (!drained || exit.code !== 0) failedStarts.push(`round ${round}: drained ${drained}, exit ${exit.code ?? exit.signal}: ${drainer.stderr.slice(-300)}`);
    }
    record.drainMs = Date.now() - drainStart;

    // Every crash acknowledged in this round must be stored now, byte for byte.
    const roundEntries = [...acked.entries()].filter(([, entry]) => entry.round === round);
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < roundEntries.length) {
          const [crashId, entry] = roundEntries[next++]!;
          let problem: string | undefined;
          try {
            problem = await storedProblem(readerFor(backing), crashId, entry.expected);
          } catch (error) {
            problem = `reading it failed: ${(error as Error).message}`;
          }
          if (problem !== undefined) {
            lostCrashes.push({ crashId, round, problem, inSpoolAfterCut: check.crashIds.has(crashId), ackedAfterCut: entry.afterCut });
          }
        }
      }),
    );
    const line =
      `cut ${round + 1}/${cuts}: ${record.mode} by ${record.trigger} ${record.place}` +
      ` (${record.file ?? '-'}; unsynced ${JSON.stringify(record.unsynced)}), acked ${record.acknowledgedThisRound},` +
      ` spooled after cut ${record.spooledAfterCut}, integrity ${record.integrity}, lost so far ${lostCrashes.length}`;
    progress(line);
  }

  const acknowledged = acked.size;
  const lost = lostCrashes.length;
  const count = <K extends string>(keys: readonly K[], of: (record: CutRecord) => K) =>
    Object.fromEntries(keys.map((key) => [key, perCut.filter((record) => of(record) === key).length])) as Record<K, number>;
  const places = count(['inside a commit', 'inside a checkpoint', 'between commits', 'during start-up'] as const, (r) => r.place);
  const modes = count(['drop', 'torn'] as const, (r) => r.mode);
  const triggers = count(['time', 'writes', 'checkpoint writes', 'start-up writes'] as const, (r) => r.trigger);
  const summary = `power cuts ${cuts}: acknowledged ${acknowledged}, stored ${acknowledged - lost}, lost ${lost}`;
  if (options.print ?? true) console.log(summary);
  if (lost === 0 && failedStarts.length === 0 && (options.cleanUp ?? true)) {
    for (const dir of backings) rmSync(dir, { recursive: true, force: true });
    if (storageDir) rmSync(storageDir, { recursive: true, force: true });
  }
  s3?.client.destroy();
  return {
    cuts,
    acknowledged,
    stored: acknowledged - lost,
    lost,
    seed,
    durability,
    durationMs: Date.now() - began,
    places,
    modes,
    triggers,
    perCut,
    lostCrashes,
    unexpected,
    failedStarts,
    backingDirs: backings,
    storageDir,
    summary,
  };
}
