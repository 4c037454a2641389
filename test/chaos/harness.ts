/**
 * The chaos harness behind "no acknowledged crash is ever lost" (I1, I3, I8 in docs/INVARIANTS.md).
 *
 * Several clients post crash reports (the fixture dumps plus a few large ones, in all four client
 * styles) to one collector port as fast as they can, while a killer SIGKILLs the collector after a
 * random 50–600 ms of life and restarts it on the same port and spool, over and over. Every other
 * life counts those milliseconds from its first acknowledgement rather than from its start, so half
 * the kills hit a collector that is taking crashes however slow the machine (a fresh process needs
 * ~40–270 ms to its first ack here), and the other half can still land in start-up and recovery. Around the
 * middle of the run radosgw is stopped for a couple of kills (an S3 outage: the collector keeps
 * acknowledging into its spool) and started again. Kills therefore land mid-request, mid-commit,
 * mid-upload and mid-delete by chance; each kill records what the collector was doing, as far as
 * its logs and the clients show it.
 *
 * An acknowledged crash is an HTTP 200 with `CrashID=bp-<id>`; connection errors and 503s while
 * the collector is down are expected and only retried. At the end a final collector drains the
 * spool and every acknowledged crash ID is read back from S3: dump_names, every dump byte for byte,
 * and the raw crash. Anything missing is reported with the evidence found for it (which collector
 * acknowledged it, whether one logged its upload, what the spool still says about it).
 *
 * With `publish` (a queue of scripts/local-queues), every collector announces on it (PUBLISH_URL),
 * so kills also land mid-publish and between storage and the queue; at the end every acknowledged
 * crash must also have been announced at least once (I13), and nothing unacknowledged beyond the
 * requests cut by kills.
 *
 * Needs the local Ceph RGW (scripts/local-s3) in the environment: S3_ENDPOINT, S3_TEST_BUCKET,
 * AWS_*, and LOCAL_S3_* to select the cluster whose radosgw is stopped and started.
 */
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { CollectorProcess, freePort, tempDir, type LogLine } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { makeReport, type ClientStyle, type Report } from '../helpers/multipart.js';
import { deletePrefix, expectedFrom, s3Target, storedProblems, type Expected } from '../helpers/stored-crashes.js';
import { seededRandom } from '../helpers/random.js';
import { checkSpoolCopy } from '../helpers/spool-copy.js';
import { checksOf } from '../helpers/heartbeat.js';
import type { TestQueue } from '../helpers/queues.js';

const LOCAL_S3 = fileURLToPath(new URL('../../scripts/local-s3', import.meta.url));
const STYLES: ClientStyle[] = ['breakpad', 'crashpad', 'mozilla', 'electron'];
const run = promisify(execFile);

export interface ChaosOptions {
  /** SIGKILLs of the collector. */
  kills: number;
  /** Concurrent posting clients. Default 4. */
  clients?: number;
  /** Seed of the random kill delays and report mix; random (and reported) when not given. */
  seed?: number;
  /**
   * Each collector lives a random time in [minLifeMs, maxLifeMs] before its SIGKILL, counted from its
   * start (even lives) or from its first acknowledgement (odd lives). Default 50–600.
   */
  minLifeMs?: number;
  maxLifeMs?: number;
  /** Stop radosgw once, around the middle, for this many kills (0: no outage). Default 2. */
  outageKills?: number;
  /** Share of reports carrying a large (2–4 MiB) dump instead of a fixture. Default 0.05. */
  largeShare?: number;
  /** How long an odd life may take to acknowledge its first crash before it is killed anyway. Default 10 s. */
  firstAckTimeoutMs?: number;
  /** How long the final collector may take to empty the spool. Default 120 s. */
  drainTimeoutMs?: number;
  /** Crashes verified in S3 at the same time. Default 8. */
  verifyConcurrency?: number;
  /** Extra collector environment (e.g. SPOOL_DURABILITY). */
  collectorEnv?: Record<string, string>;
  /** Announce on this queue (PUBLISH_URL) and check at the end that every acknowledged crash was. */
  publish?: TestQueue;
  /** Progress lines (kills, outage); default: none. */
  progress?: (line: string) => void;
  /** Print the `acknowledged N, stored N, lost N` line (console.log). Default true. */
  print?: boolean;
  /**
   * After a run that lost nothing, delete its spool directory and its S3 objects (a memstore OSD
   * keeps them in RAM: hundreds of kills leave a few GB). Kept whenever something was lost. Default true.
   */
  cleanUp?: boolean;
}

/** What the collector was doing when one SIGKILL hit it. */
export interface KillRecord {
  index: number;
  /** How long this collector had been up (ms) when killed. */
  lifeMs: number;
  /** Crashes this collector acknowledged (answers that reached a client). */
  acknowledged: number;
  /** From its start (the `collector started` line) to its first acknowledgement, if any (ms). */
  firstAckMs: number | null;
  /** Client requests outstanding at the kill (connecting, sending, being parsed or committed, or the reply on its way). */
  requestsInFlight: number;
  /** Requests the kill cut off: they failed with a reset or hang-up (not a refused connection). */
  requestsCut: number;
  /** `crash accepted` log lines (commits acknowledged) in the 100 ms before the kill. */
  acceptedLast100ms: number;
  /** `crash uploaded` log lines (uploads confirmed and deleted from the spool) in the 100 ms before the kill. */
  uploadedLast100ms: number;
  /** Crashes this collector had in its spool by its logs: pending at start + accepted − uploaded. */
  spoolBacklog: number;
  /** radosgw was stopped at the kill. */
  storageDown: boolean;
}

export interface LostCrash {
  crashId: string;
  problem: string;
  /** Collector lifetime (index) whose answer acknowledged it. */
  acknowledgedBy: number;
  /** Every log line that names it, with the lifetime that wrote it. */
  logs: { lifetime: number; msg: string | undefined; time: unknown }[];
  /** Its row in the final spool, if it is still there. */
  spoolRow: unknown;
}

export interface ChaosDetails {
  seed: number;
  clients: number;
  durationMs: number;
  spoolDir: string;
  storageUrl: string;
  killCounts: {
    /** Kills that cut off at least one client request (a reset or hang-up after it was accepted). */
    midRequest: number;
    /** Kills with at least one client request outstanding. */
    withRequestsOutstanding: number;
    /** Kills within 100 ms of an acknowledged commit. */
    afterRecentAccept: number;
    /** Kills while the drainer had crashes to upload and storage was up (uploads/deletes in flight). */
    midUpload: number;
    /** Kills within 100 ms of a confirmed upload + delete. */
    afterRecentUpload: number;
    /** Kills while radosgw was stopped. */
    duringStorageOutage: number;
  };
  perKill: KillRecord[];
  answers: {
    acknowledged: number;
    /** 503 answers (e.g. overloaded, spool full): refused, not acknowledged. */
    unavailable: number;
    /** Requests that got no answer (collector down or killed): code → count. */
    connectionErrors: Record<string, number>;
    /** Answers that are neither an ack nor a 503: every one is a bug. */
    unexpected: { status: number; body: string }[];
  };
  /** Collector lives (of kills + 1) that acknowledged at least one crash: the load ran throughout. */
  livesWithAcks: number;
  /** Crashes the collectors logged as accepted whose answer never reached a client (killed before). */
  spooledUnacknowledged: number;
  /** Crash IDs acknowledged twice. */
  duplicateIds: number;
  /** Collectors that exited without being killed (each one is a bug). */
  unexpectedExits: { lifetime: number; code: number | null; signal: string | null; stderr: string }[];
  outage: { atKill: number; kills: number; stopMs: number; startMs: number } | undefined;
  restartMs: { min: number; median: number; max: number };
  /**
   * `integrity`: PRAGMA integrity_check of a copy of the spool the last kill left (the collector's
   * own start-up check is skipped above 256 MiB, which a long run's backlog can reach).
   */
  finalStart: { pending: number; dead: number; integrityCheckSkipped: boolean; integrity: string };
  drain: { drained: boolean; ms: number; dead: number };
  /** With `publish`: acknowledged crashes never announced, messages read, and repeats among them. */
  announce?: { unannounced: string[]; messages: number; repeats: number; unacknowledged: number };
  finalExit: { code: number | null; signal: string | null };
  verifyMs: number;
  lostCrashes: LostCrash[];
}

export interface ChaosResult {
  acknowledged: number;
  stored: number;
  lost: number;
  kills: number;
  details: ChaosDetails;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits for `promise` or `ms`, whichever comes first. */
async function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
const pick = <T>(rng: () => number, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;

async function localS3(command: 'stop-rgw' | 'start-rgw' | 'status'): Promise<number> {
  const started = Date.now();
  // The inherited environment selects the cluster (LOCAL_S3_DIR, LOCAL_S3_PORT, LOCAL_S3_MON_PORT).
  await run(LOCAL_S3, [command], { env: process.env, timeout: 180_000 });
  return Date.now() - started;
}

async function rgwAnswers(): Promise<boolean> {
  try {
    await localS3('status');
    return true;
  } catch {
    return false;
  }
}

interface Acked {
  expected: Expected;
  lifetime: number;
}

interface Heartbeat {
  spool_depth?: { pending?: number; dead?: number };
  drainer?: { uploading?: number };
  queue?: { waiting?: number };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const began = Date.now();
  const kills = options.kills;
  if (!Number.isInteger(kills) || kills < 1) throw new Error(`kills must be a positive integer, got ${kills}`);
  const clients = options.clients ?? 4;
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  const minLife = options.minLifeMs ?? 50;
  const maxLife = options.maxLifeMs ?? 600;
  const firstAckTimeout = options.firstAckTimeoutMs ?? 10_000;
  const outageKills = Math.min(options.outageKills ?? 2, kills);
  const largeShare = options.largeShare ?? 0.05;
  const progress = options.progress ?? (() => {});
  const rng = seededRandom(seed);

  // Report material: every fixture (11 KB – 1 MB) and two large dumps built from them.
  const fixtures = [...loadFixtureDumps().values()];
  const all = Buffer.concat(fixtures);
  const large = [2, 4].map((mib) => {
    const parts: Buffer[] = [];
    for (let size = 0; size < mib * 1024 * 1024; size += all.length) parts.push(all);
    return Buffer.concat(parts).subarray(0, mib * 1024 * 1024);
  });

  // The outage stops the radosgw that LOCAL_S3_* select: it must be the one S3_ENDPOINT names.
  const rgwEndpoint = `http://127.0.0.1:${process.env['LOCAL_S3_PORT'] ?? '7480'}`;
  if (outageKills > 0 && process.env['S3_ENDPOINT']?.replace(/\/+$/, '') !== rgwEndpoint) {
    throw new Error(
      `S3_ENDPOINT is ${process.env['S3_ENDPOINT'] ?? '(unset)'} but scripts/local-s3 would stop the radosgw at ${rgwEndpoint}: ` +
        'set LOCAL_S3_DIR/LOCAL_S3_PORT/LOCAL_S3_MON_PORT to the cluster S3_ENDPOINT points at (eval "$(scripts/local-s3 start)" with them).',
    );
  }

  const spoolDir = tempDir('chaos-spool');
  const s3 = s3Target('chaos');
  const port = await freePort();
  const env: Record<string, string> = {
    SPOOL_DIR: spoolDir,
    ...s3.env,
    DRAIN_RETRY_BASE_SECONDS: '0.1',
    DRAIN_RETRY_MAX_SECONDS: '1',
    ...options.collectorEnv,
    ...(options.publish ? options.publish.publishEnv() : {}),
  };

  const acked = new Map<string, Acked>();
  const answers: ChaosDetails['answers'] = { acknowledged: 0, unavailable: 0, connectionErrors: {}, unexpected: [] };
  let duplicateIds = 0;
  const lifetimes: CollectorProcess[] = [];
  /** Per lifetime: when it started, its acknowledgements and when the first one came. */
  const lives: { startedAt: number; acks: number; firstAckAt: number | null; firstAck: Promise<void>; acknowledged: () => void }[] = [];
  const restartMs: number[] = [];
  const perKill: KillRecord[] = [];
  const unexpectedExits: ChaosDetails['unexpectedExits'] = [];
  let outage: ChaosDetails['outage'];
  let storageDown = false;
  let requestsInFlight = 0;
  /** Requests that failed other than by a refused connection: each one was cut off by a kill. */
  let requestsCut = 0;
  let stopping = false;
  const url = `http://127.0.0.1:${port}`;

  const start = async (): Promise<CollectorProcess> => {
    const t0 = Date.now();
    const collector = await CollectorProcess.start(env, port);
    restartMs.push(Date.now() - t0);
    lifetimes.push(collector);
    let acknowledged = () => {};
    const firstAck = new Promise<void>((resolve) => (acknowledged = resolve));
    lives.push({ startedAt: Date.now(), acks: 0, firstAckAt: null, firstAck, acknowledged });
    return collector;
  };

  const client = async (index: number) => {
    const clientRng = seededRandom(seed + 1 + index);
    while (!stopping) {
      const style = pick(clientRng, STYLES);
      const dump = clientRng() < largeShare ? pick(clientRng, large) : pick(clientRng, fixtures);
      const report: Report = makeReport(style, dump, pick(clientRng, fixtures));
      requestsInFlight += 1;
      let answer;
      try {
        answer = await postReport(url, report);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        answers.connectionErrors[code] = (answers.connectionErrors[code] ?? 0) + 1;
        if (code !== 'ECONNREFUSED') requestsCut += 1;
        await sleep(20 + clientRng() * 40);
        continue;
      } finally {
        requestsInFlight -= 1;
      }
      if (answer.status === 503) {
        answers.unavailable += 1;
        await sleep(20 + clientRng() * 40);
        continue;
      }
      let crashId: string;
      try {
        crashId = crashIdFrom(answer);
      } catch {
        answers.unexpected.push({ status: answer.status, body: answer.body.slice(0, 200) });
        continue;
      }
      answers.acknowledged += 1;
      if (acked.has(crashId)) duplicateIds += 1;
      // Keep what verification needs, not the body: dumps are shared fixture buffers.
      acked.set(crashId, { expected: expectedFrom(report), lifetime: lifetimes.length - 1 });
      const life = lives.at(-1)!;
      life.acks += 1;
      life.firstAckAt ??= Date.now();
      life.acknowledged();
    }
  };

  /** What the running collector is doing right now, by its logs and the clients. */
  const snapshot = (index: number, collector: CollectorProcess, life: number): KillRecord => {
    const now = Date.now();
    let accepted = 0;
    let uploaded = 0;
    let acceptedRecent = 0;
    let uploadedRecent = 0;
    let pendingAtStart = 0;
    for (const line of collector.logs) {
      // pino writes `time` as ISO 8601 here (or epoch ms with its default timestamp).
      const time = typeof line['time'] === 'string' ? Date.parse(line['time']) : Number(line['time']);
      const recent = now - time <= 100;
      if (line.msg === 'collector started') pendingAtStart = Number(line['pending'] ?? 0);
      else if (line.msg === 'crash accepted') {
        accepted += 1;
        if (recent) acceptedRecent += 1;
      } else if (line.msg === 'crash uploaded') {
        uploaded += 1;
        if (recent) uploadedRecent += 1;
      }
    }
    return {
      index,
      lifeMs: life,
      acknowledged: 0,
      firstAckMs: null,
      requestsInFlight,
      requestsCut: 0,
      acceptedLast100ms: acceptedRecent,
      uploadedLast100ms: uploadedRecent,
      spoolBacklog: Math.max(0, pendingAtStart + accepted - uploaded),
      storageDown,
    };
  };

  const outageAt = outageKills > 0 ? Math.max(0, Math.floor(kills / 2) - Math.floor(outageKills / 2)) : -1;
  let collector = await start();
  const clientLoops = Array.from({ length: clients }, (_, i) => client(i));
  try {
    for (let k = 0; k < kills; k += 1) {
      if (k === outageAt) {
        progress(`kill ${k}: stopping radosgw (S3 outage for ${outageKills} kills)`);
        outage = { atKill: k, kills: outageKills, stopMs: await localS3('stop-rgw'), startMs: 0 };
        storageDown = true;
      }
      if (outage && storageDown && k === outage.atKill + outage.kills) {
        progress(`kill ${k}: starting radosgw`);
        outage.startMs = await localS3('start-rgw');
        storageDown = false;
      }
      // Live a random while, counted from now (a stop-rgw above may have taken a while) or, every
      // other life, from the first acknowledgement.
      const lifeTarget = minLife + rng() * (maxLife - minLife);
      const lifeStart = Date.now();
      if (k % 2 === 1) await withTimeout(lives.at(-1)!.firstAck, firstAckTimeout);
      await sleep(lifeTarget);
      if (collector.child.exitCode !== null || collector.child.signalCode !== null) {
        const exit = await collector.exited;
        unexpectedExits.push({ lifetime: lifetimes.length - 1, code: exit.code, signal: exit.signal, stderr: collector.stderr.slice(-2000) });
      } else {
        const record = snapshot(k, collector, Date.now() - lifeStart);
        perKill.push(record);
        const cutBefore = requestsCut;
        // Requests it cut fail as their sockets close, well before the next collector is up.
        const life = lives.at(-1)!;
        void collector.exited
          .then(() => sleep(50))
          .then(() => {
            record.requestsCut = requestsCut - cutBefore;
            record.acknowledged = life.acks;
            record.firstAckMs = life.firstAckAt === null ? null : life.firstAckAt - life.startedAt;
          });
        collector.kill('SIGKILL');
        const exit = await collector.exited;
        if (exit.signal !== 'SIGKILL') {
          unexpectedExits.push({ lifetime: lifetimes.length - 1, code: exit.code, signal: exit.signal, stderr: collector.stderr.slice(-2000) });
        }
      }
      if ((k + 1) % 10 === 0 || k + 1 === kills) {
        progress(`kill ${k + 1}/${kills}: ${acked.size} acknowledged so far`);
      }
      // Every restart opens the spool a kill left behind and checks its integrity, or refuses to start.
      if (k + 1 < kills) collector = await start();
    }
  } finally {
    stopping = true;
    await Promise.all(clientLoops);
    if (storageDown || !(await rgwAnswers())) {
      progress('starting radosgw');
      const ms = await localS3('start-rgw');
      if (outage && storageDown) outage.startMs = ms;
      storageDown = false;
    }
    if (collector.child.exitCode === null && collector.child.signalCode === null) await collector.stop();
  }

  // The final collector: must start on the last kill's spool, report it fine, and drain it.
  const { integrity } = checkSpoolCopy(spoolDir);
  const final = await start();
  const started = final.logs.find((line) => line.msg === 'collector started')!;
  const finalStart = {
    pending: Number(started['pending'] ?? -1),
    dead: Number(started['dead'] ?? -1),
    integrityCheckSkipped: final.logs.some((line) => String(line.msg).startsWith('spool is large: integrity check skipped')),
    integrity,
  };
  progress(`final collector: ${finalStart.pending} crashes pending at start; draining`);
  const drainStart = Date.now();
  const drainDeadline = drainStart + (options.drainTimeoutMs ?? 120_000);
  let drained = false;
  let deadAtEnd = -1;
  while (Date.now() < drainDeadline) {
    try {
      const answer = await fetch(`${final.url}/__heartbeat__`, { headers: { Connection: 'close' } });
      const health = checksOf(await answer.json()) as unknown as Heartbeat;
      deadAtEnd = health.spool_depth?.dead ?? -1;
      if (health.spool_depth?.pending === 0 && health.drainer?.uploading === 0 && (!options.publish || health.queue?.waiting === 0)) {
        drained = true;
        break;
      }
    } catch {
      // not answering yet: try again
    }
    await sleep(200);
  }
  const drain = { drained, ms: Date.now() - drainStart, dead: deadAtEnd };
  const announce = options.publish && (await readAnnouncements(options.publish, new Set(acked.keys())));

  // Verify every acknowledged crash in S3, byte for byte.
  const verifyStart = Date.now();
  const entries = [...acked.entries()].map(([crashId, { expected }]): [string, Expected] => [crashId, expected]);
  const problems = await storedProblems(s3.reader, entries, options.verifyConcurrency ?? 8);
  const verifyMs = Date.now() - verifyStart;

  // Stop the final collector gracefully: it must exit 0 with nothing left.
  final.kill('SIGTERM');
  let exitTimer: NodeJS.Timeout | undefined;
  const finalExit = await Promise.race([
    final.exited,
    new Promise<undefined>((resolve) => (exitTimer = setTimeout(() => resolve(undefined), 60_000))),
  ]);
  clearTimeout(exitTimer);
  if (!finalExit) await final.stop();

  // Evidence for every lost crash.
  const lostCrashes: LostCrash[] = [];
  if (problems.size > 0) {
    let spool: Database.Database | undefined;
    const file = join(spoolDir, 'spool.db');
    if (existsSync(file)) spool = new Database(file, { readonly: true, fileMustExist: true });
    const row = spool?.prepare('SELECT seq, state, attempts, next_attempt_at, last_error, received_at FROM crashes WHERE crash_id = ?');
    for (const [crashId, problem] of problems) {
      const logs: LostCrash['logs'] = [];
      lifetimes.forEach((collectorProcess, lifetime) => {
        for (const line of collectorProcess.logs) if (line['crash_id'] === crashId) logs.push({ lifetime, msg: line.msg, time: line['time'] });
      });
      lostCrashes.push({ crashId, problem, acknowledgedBy: acked.get(crashId)!.lifetime, logs, spoolRow: row?.get(crashId) ?? null });
    }
    spool?.close();
  }

  const acceptedIds = new Set<string>();
  for (const collectorProcess of lifetimes) {
    for (const line of collectorProcess.logs as LogLine[]) if (line.msg === 'crash accepted') acceptedIds.add(String(line['crash_id']));
  }
  let spooledUnacknowledged = 0;
  for (const id of acceptedIds) if (!acked.has(id)) spooledUnacknowledged += 1;

  if (problems.size === 0 && (options.cleanUp ?? true)) {
    rmSync(spoolDir, { recursive: true, force: true });
    try {
      const deleted = await deletePrefix(s3.client, env['STORAGE_URL'] ?? '');
      progress(`cleaned up: spool directory and ${deleted} S3 objects deleted`);
    } catch (error) {
      progress(`could not delete the run's S3 objects: ${(error as Error).message}`);
    }
  }
  s3.client.destroy();

  const sorted = [...restartMs].sort((a, b) => a - b);
  const acknowledged = acked.size;
  const lost = problems.size;
  const stored = acknowledged - lost;
  const details: ChaosDetails = {
    seed,
    clients,
    durationMs: Date.now() - began,
    spoolDir,
    storageUrl: env['STORAGE_URL'] ?? '',
    killCounts: {
      midRequest: perKill.filter((kill) => kill.requestsCut > 0).length,
      withRequestsOutstanding: perKill.filter((kill) => kill.requestsInFlight > 0).length,
      afterRecentAccept: perKill.filter((kill) => kill.acceptedLast100ms > 0).length,
      midUpload: perKill.filter((kill) => !kill.storageDown && (kill.spoolBacklog > 0 || kill.uploadedLast100ms > 0)).length,
      afterRecentUpload: perKill.filter((kill) => kill.uploadedLast100ms > 0).length,
      duringStorageOutage: perKill.filter((kill) => kill.storageDown).length,
    },
    perKill,
    answers,
    livesWithAcks: new Set([...acked.values()].map((entry) => entry.lifetime)).size,
    spooledUnacknowledged,
    duplicateIds,
    unexpectedExits,
    outage,
    restartMs: { min: sorted[0] ?? 0, median: sorted[Math.floor(sorted.length / 2)] ?? 0, max: sorted.at(-1) ?? 0 },
    finalStart,
    drain,
    ...(announce ? { announce } : {}),
    finalExit: finalExit ? { code: finalExit.code, signal: finalExit.signal } : { code: null, signal: 'SIGKILL (no exit within 60 s of SIGTERM)' },
    verifyMs,
    lostCrashes,
  };
  if (options.print ?? true) console.log(`acknowledged ${acknowledged}, stored ${stored}, lost ${lost}`);
  return { acknowledged, stored, lost, kills: perKill.length, details };
}

/** Reads the queue until every acknowledged crash was announced, or 30 s passed without a new message. */
async function readAnnouncements(queue: TestQueue, acked: ReadonlySet<string>): Promise<NonNullable<ChaosDetails['announce']>> {
  const seen = new Map<string, number>();
  let quietSince = Date.now();
  while ([...acked].some((crashId) => !seen.has(crashId)) && Date.now() - quietSince < 30_000) {
    const bodies = await queue.receive();
    if (bodies.length > 0) quietSince = Date.now();
    for (const body of bodies) seen.set(body, (seen.get(body) ?? 0) + 1);
    await sleep(200);
  }
  const messages = [...seen.values()].reduce((sum, count) => sum + count, 0);
  return {
    unannounced: [...acked].filter((crashId) => !seen.has(crashId)),
    messages,
    repeats: messages - seen.size,
    unacknowledged: [...seen.keys()].filter((crashId) => !acked.has(crashId)).length,
  };
}
