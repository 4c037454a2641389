/**
 * The benchmark (issue 6): real processes on loopback, measured in one run.
 *
 * 1. Durable ingest: the built collector (`node dist/main.js`, SPOOL_DURABILITY=full, draining to
 *    S3 at the same time) under Crashpad-style load, for ~200 KB and ~5 KB dumps.
 * 2. The same load against the naive peer (naive-peer.ts) and 3. a bare Hono server (bare-hono.ts);
 *    plus the disk's sequential write bandwidth, against which the collector's own disk writes
 *    (/proc/<pid>/io write_bytes) are set.
 * 4. Drain: a spool pre-filled with storage unreachable, drained by the collector, against a raw
 *    PutObject loop uploading the same objects.
 * 5. Restart: start → first upload with a spool of 100k small crashes.
 * 6. Peak RSS of every server process in every phase.
 *
 * It measures; it asserts nothing about timings. Throws only when a phase could not run at all.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { s3Settings } from '../helpers/stored-crashes.js';
import { deletePrefix, diskWriteMBPerSecond, rawPutLoop, type S3Endpoint } from './baselines.js';
import { buildCorpus, runLoad, type Corpus, type LoadResult } from './load.js';
import { CpuWindow, REPO, RssSampler, ServerProcess, writtenBytes } from './processes.js';
import { describeSpread, heartbeat, logTime, s3Env, spread } from './bench-helpers.js';
import { runPeerComparison, type PeerSettings } from './peers.js';
import { PurgeQueueCommand, SQSClient } from '@aws-sdk/client-sqs';

/** Empties the bench's queue: what the drain with publishing announced is read by nobody. */
async function purgeQueue(queueUrl: string): Promise<void> {
  const client = new SQSClient({ endpoint: new URL(queueUrl).origin, region: 'us-east-1', credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  try {
    await client.send(new PurgeQueueCommand({ QueueUrl: queueUrl }));
  } finally {
    client.destroy();
  }
}

/**
 * A Pub/Sub topic of the bench's own on the emulator (PUBSUB_EMULATOR_HOST), with no subscription:
 * Pub/Sub confirms each message and keeps none, as the SQS queue is purged. Undefined without one.
 */
async function benchTopic(): Promise<{ name: string; host: string; remove(): Promise<void> } | undefined> {
  const host = process.env['PUBSUB_EMULATOR_HOST'];
  if (!host) return undefined;
  const name = `projects/crashspool-test/topics/crashspool-bench-${process.pid}-${Date.now()}`;
  const response = await fetch(`http://${host}/v1/${name}`, { method: 'PUT' });
  if (!response.ok) throw new Error(`creating ${name} on the Pub/Sub emulator: ${response.status} ${await response.text()}`);
  return { name, host, remove: async () => void (await fetch(`http://${host}/v1/${name}`, { method: 'DELETE' }).catch(() => undefined)) };
}

const execFileAsync = promisify(execFile);

export interface BenchSettings {
  /** Interleaved rounds of the S3-down ingest comparisons (collector, no dedup index, naive peer). */
  rounds: number;
  /** Reports in flight at once (closed loop, one new connection per report). */
  concurrency: number;
  /** Measured seconds per ingest run, after `warmupSeconds` not counted. */
  durationSeconds: number;
  warmupSeconds: number;
  /**
   * Unmeasured seconds over which the open-loop run (80% of the maximum) ramps its rate up. A
   * fresh collector needs ~4 s of load before V8 has compiled its request path (~5 KB reports:
   * 1.7 ms of HTTP-thread CPU each in its second second, 1.0 ms from the fifth); at 80% of the
   * warm maximum, a queue built in those seconds outlasts a short warm-up and fills the p99.
   */
  openLoopRampSeconds: number;
  /** Distinct report bodies per corpus. */
  corpusSize: number;
  /** Crashes pre-filled for the drain phase, and crashes uploaded at once. */
  drainCrashes: number;
  drainConcurrency: number;
  /** Interleaved rounds of the drain without and with publishing (the latter when a queue runs). */
  drainRounds: number;
  /** Crashes in the spool for the restart phase, and each one's dump size. */
  restartCrashes: number;
  restartDumpBytes: number;
  /** MiB written for the disk bandwidth. */
  diskMiB: number;
  /** crashspool against Antenna's design (peers.ts). */
  peers: PeerSettings;
  /** Phases to run (all when absent): see PHASES. */
  only?: Phase[];
}

/** The ack p99 the open loop at 80% of the collector's maximum is held to. */
const P99_TARGET_MS = 100;

export const PHASES = ['peers', 'ingest-200k', 'ingest-5k', 'disk', 'drain', 'restart'] as const;
export type Phase = (typeof PHASES)[number];

export const FULL_SETTINGS: BenchSettings = {
  rounds: 3,
  concurrency: 50,
  durationSeconds: 15,
  warmupSeconds: 2,
  openLoopRampSeconds: 6,
  corpusSize: 64,
  drainCrashes: 2000,
  drainConcurrency: 8,
  drainRounds: 3,
  restartCrashes: 100_000,
  restartDumpBytes: 1024,
  diskMiB: 512,
  peers: { rounds: 3, outageRounds: 3, concurrency: 16, seconds: 20, warmupSeconds: 2, latencyMs: 50, outageRate: 50, outageRunSeconds: 60, drainWaitSeconds: 240 },
};

/** Tiny counts: keeps every code path working (CI), measures nothing worth quoting. */
export const SMOKE_SETTINGS: BenchSettings = {
  rounds: 1,
  concurrency: 8,
  durationSeconds: 1.5,
  warmupSeconds: 0.5,
  openLoopRampSeconds: 0.5,
  corpusSize: 16,
  drainCrashes: 40,
  drainConcurrency: 8,
  drainRounds: 1,
  restartCrashes: 2000,
  restartDumpBytes: 1024,
  diskMiB: 32,
  peers: { rounds: 1, outageRounds: 1, concurrency: 4, seconds: 1.5, warmupSeconds: 0.5, latencyMs: 50, outageRate: 10, outageRunSeconds: 4, drainWaitSeconds: 60 },
};

/** One line of the table. Every metric present is a finite number; absent means not applicable. */
export interface Row {
  id: string;
  label: string;
  /** Crashes (or requests) counted. */
  n?: number;
  /** Length of the measurement (for `restart`: process start → first upload). */
  seconds?: number;
  crashesPerSecond?: number;
  /** MB/s (10^6 bytes): on the wire for ingest, written for disk rows, uploaded for drain rows. */
  mbPerSecond?: number;
  p50Ms?: number;
  p99Ms?: number;
  peakRssMiB?: number;
  /** CPU of the measured process over the measurement, percent of one core (>100: several threads). */
  cpuPercent?: number;
  /**
   * CPU of everything but the measured process and the load generator over the measurement,
   * percent of one core: the S3 server, and any other work on the machine that skews the numbers.
   */
  otherCpuPercent?: number;
  /** Human-readable comparison for the table. */
  compared?: string;
  /** Further numbers, for --json. */
  extra?: Record<string, number>;
  /** Failures by status or error (for --json; summed into `compared`). */
  failures?: Record<string, number>;
}

export interface BenchResult {
  mode: 'full' | 'smoke';
  startedAt: string;
  totalSeconds: number;
  machine: { cores: number; cpu: string; memoryGiB: number; kernel: string; node: string; loadAverageAtStart: number };
  settings: BenchSettings;
  s3Endpoint: string;
  corpora: Record<string, { medianDumpBytes: number; minDumpBytes: number; maxDumpBytes: number; meanWireBytes: number; gzipRatio: number }>;
  rows: Row[];
  /** The ratios the issue asks for, by name (also shown in the table's `compared` column). */
  ratios: Record<string, number>;
}

const MiB = 1024 * 1024;

/** What one ingest run under load measured. */
interface Measurement {
  load: LoadResult;
  peakRssMiB: number;
  cpu: CpuWindow;
  diskWriteMBPerSecond: number;
}

const VARIANT_LABELS = {
  withDedup: 'collector (SPOOL_DURABILITY=full, S3 unreachable: nothing drained)',
  noDedup: 'collector (the same, DEDUP_WINDOW=0: no dedup index)',
  naive: 'naive peer (formData + better-sqlite3 FULL)',
};

/** The run with the median rate (the lower middle one of an even count): the row shown for a set of rounds. */
function medianRun<T extends { load: LoadResult }>(runs: T[]): T {
  return medianBy(runs, (run) => run.load.crashesPerSecond);
}

function medianBy<T>(runs: T[], rate: (run: T) => number): T {
  const sorted = [...runs].sort((x, y) => rate(x) - rate(y));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** "rounds 280, 301, 295/s". */
function rangeOf(rates: number[]): string {
  return `round${rates.length === 1 ? '' : 's'} ${rates.map((rate) => rate.toFixed(0)).join(', ')}/s`;
}

function sumFailures(failures: Record<string, number>): number {
  return Object.values(failures).reduce((sum, count) => sum + count, 0);
}

function loadRow(id: string, label: string, load: LoadResult, peakRssMiB: number, cpu: CpuWindow, extra: Record<string, number> = {}): Row {
  return {
    id,
    label,
    n: load.accepted,
    seconds: load.seconds,
    crashesPerSecond: load.crashesPerSecond,
    mbPerSecond: load.wireMBPerSecond,
    p50Ms: load.p50Ms,
    p99Ms: load.p99Ms,
    peakRssMiB,
    cpuPercent: cpu.processPercent,
    otherCpuPercent: cpu.otherPercent,
    extra: {
      inflatedMBPerSecond: load.inflatedMBPerSecond,
      loadGeneratorCpuPercent: cpu.loadGeneratorPercent,
      machineBusyPercent: cpu.machinePercent,
      ...extra,
    },
    failures: load.failures,
  };
}

export async function runBench(mode: 'full' | 'smoke', settings: BenchSettings, progress: (line: string) => void): Promise<BenchResult> {
  const began = performance.now();
  // Other work on the machine skews every number: shown in the header.
  const loadAverageAtStart = loadavg()[0]!;
  const s3: S3Endpoint = s3Settings();
  const runPrefix = `bench-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}/`;
  const rows: Row[] = [];
  const ratios: Record<string, number> = {};
  const running = new Set<{ stop(): Promise<void> }>();
  const scratch: string[] = [];
  const scratchDir = (name: string) => {
    const dir = tempDir(`bench-${name}`);
    scratch.push(dir);
    return dir;
  };

  progress('building report corpora');
  const corpora: Corpus[] = [
    buildCorpus('200k', { median: 200_000, min: 50_000, max: 1_000_000, sigma: 0.6 }, settings.corpusSize, 1),
    buildCorpus('5k', { median: 5_000, min: 3_000, max: 8_000, sigma: 0.25 }, settings.corpusSize, 2),
  ];
  const big = corpora[0]!;
  const runs = (phase: Phase) => settings.only === undefined || settings.only.includes(phase);
  const measured = { durationMs: settings.durationSeconds * 1000, warmupMs: settings.warmupSeconds * 1000 };

  /** Runs the load against a server process, sampling its RSS and disk writes over the window. */
  const measure = async (pid: number, url: string, corpus: Corpus, ratePerSecond?: number) => {
    const rss = new RssSampler(pid);
    const cpu = new CpuWindow(pid);
    let writtenAtStart = Number.NaN;
    let writtenAtEnd = Number.NaN;
    try {
      const load = await runLoad({
        url,
        corpus,
        concurrency: settings.concurrency,
        ...measured,
        ...(ratePerSecond === undefined ? {} : { ratePerSecond, warmupMs: settings.openLoopRampSeconds * 1000 }),
        onWindowStart: () => {
          writtenAtStart = writtenBytes(pid);
          cpu.start();
        },
        onWindowEnd: () => {
          writtenAtEnd = writtenBytes(pid);
          cpu.end();
        },
      });
      const diskWriteMBPerSecond = (writtenAtEnd - writtenAtStart) / 1e6 / load.seconds;
      return { load, peakRssMiB: rss.stop(), cpu, diskWriteMBPerSecond };
    } finally {
      rss.stop();
    }
  };

  const started = async <T extends { stop(): Promise<void> }>(starting: Promise<T>): Promise<T> => {
    const child = await starting;
    running.add(child);
    return child;
  };
  const stopped = async (child: { stop(): Promise<void> }) => {
    await child.stop();
    running.delete(child);
  };

  try {
    // ---- 0: crashspool against Antenna's design -------------------------------------------------
    if (runs('peers')) {
      const peers = await runPeerComparison({ s3, runPrefix, corpus: big, settings: settings.peers, progress, started, stopped });
      rows.push(...peers.rows);
      Object.assign(ratios, peers.ratios);
    }

    // ---- 1–3: ingest, the naive peer and bare Hono, for both report sizes ----------------------
    const ingest: Record<string, { collector: Row; collectorWriteMBps: number; noDrain: Row; noDrainWriteMBps: number }> = {};
    /** The collector with SPOOL_DURABILITY=full, draining to S3 during the load or (`s3Down`) not. */
    const collectorIngest = async (corpus: Corpus, s3Down: boolean, ratePerSecond?: number, env: Record<string, string> = {}) => {
      const spoolDir = scratchDir(`ingest-${corpus.name}`);
      const storage = s3Down
        ? { ...s3Env({ ...s3, endpoint: 'http://127.0.0.1:9' }, `${runPrefix}unreachable/`), DRAIN_RETRY_BASE_SECONDS: '600', DRAIN_RETRY_MAX_SECONDS: '600' }
        : s3Env(s3, `${runPrefix}ingest-${corpus.name}/`);
      const collector = await started(CollectorProcess.start({ SPOOL_DIR: spoolDir, SPOOL_DURABILITY: 'full', ...storage, ...env }));
      const measurement = await measure(collector.child.pid!, collector.url, corpus, ratePerSecond);
      const after = await heartbeat(collector.url);
      await stopped(collector);
      rmSync(spoolDir, { recursive: true, force: true });
      // The local RGW keeps objects in memory (8 GiB): each run's go as soon as it ends.
      if (!s3Down) await deletePrefix(s3, `${runPrefix}ingest-${corpus.name}/`);
      return { ...measurement, after };
    };

    for (const corpus of corpora) {
      if (!runs(`ingest-${corpus.name}` as Phase)) continue;
      const size = `~${corpus.name.replace('k', ' KB')}`;

      progress(`ingest ${size}: collector (SPOOL_DURABILITY=full, draining to S3)`);
      const c = await collectorIngest(corpus, false);
      const collectorRow = loadRow(`ingest.${corpus.name}.collector`, `ingest ${size}: collector (full, draining)`, c.load, c.peakRssMiB, c.cpu, {
        diskWriteMBPerSecond: c.diskWriteMBPerSecond,
        uploadedDuringRun: c.after.uploaded,
        pendingAtEnd: c.after.pending,
      });
      progress(`  ${c.load.crashesPerSecond.toFixed(1)} crashes/s, p99 ${c.load.p99Ms.toFixed(0)} ms; uploaded ${c.after.uploaded}, pending ${c.after.pending}`);

      const targetRate = Math.max(1, Math.round(0.8 * c.load.crashesPerSecond));
      progress(`ingest ${size}: collector at 80% of its maximum (${targetRate}/s, open loop, draining)`);
      const r = await collectorIngest(corpus, false, targetRate);
      const rateRow = loadRow(`ingest.${corpus.name}.collector_80pct`, `ingest ${size}: collector at 80% of max`, r.load, r.peakRssMiB, r.cpu, {
        targetPerSecond: targetRate,
      });
      rateRow.compared = `open loop at ${targetRate}/s (0.8 × the row above), draining; ack p99 target ≤ ${P99_TARGET_MS} ms`;
      // The maximum comes from one run, and this machine's speed drifts by tens of percent within
      // minutes: an offered rate the collector did not keep up with measures a queue, and says so.
      if (r.load.crashesPerSecond < 0.97 * targetRate) {
        rateRow.compared += `; OVERLOADED: kept up with ${r.load.crashesPerSecond.toFixed(0)} of ${targetRate}/s, so the latencies are a growing queue`;
      } else if (r.load.p50Ms > P99_TARGET_MS) {
        // Kept up, but with a queue standing all along: this rate was its whole capacity by then.
        rateRow.compared += `; SATURATED: even the median ack took ${r.load.p50Ms.toFixed(0)} ms, so this rate was all the machine then gave and the latencies are a standing queue`;
      }
      ratios[`ingest_${corpus.name}_p99_ms_at_80pct`] = r.load.p99Ms;
      progress(`  ${r.load.crashesPerSecond.toFixed(1)} crashes/s, p50 ${r.load.p50Ms.toFixed(0)} ms, p99 ${r.load.p99Ms.toFixed(0)} ms`);

      // S3 down (the ingest path alone), without the dedup index, and the naive peer, interleaved:
      // a run right after another one is slower by itself and the machine drifts, so each round
      // reverses the order and every ratio is taken within a round, then the median of the rounds.
      const variants = {
        withDedup: () => collectorIngest(corpus, true),
        noDedup: () => collectorIngest(corpus, true, undefined, { DEDUP_WINDOW: '0' }),
        naive: async () => {
          const naiveDir = scratchDir(`naive-${corpus.name}`);
          const naive = await started(ServerProcess.start('./naive-peer.ts', { NAIVE_DB_DIR: naiveDir }));
          const measurement = await measure(naive.pid, naive.url, corpus);
          await stopped(naive);
          rmSync(naiveDir, { recursive: true, force: true });
          return measurement;
        },
      };
      type Variant = keyof typeof variants;
      const measured: Record<Variant, Measurement[]> = { withDedup: [], noDedup: [], naive: [] };
      for (let round = 0; round < settings.rounds; round++) {
        const order: Variant[] = round % 2 === 0 ? ['withDedup', 'noDedup', 'naive'] : ['naive', 'noDedup', 'withDedup'];
        for (const variant of order) {
          progress(`ingest ${size}, round ${round + 1} of ${settings.rounds}: ${VARIANT_LABELS[variant]}`);
          const m = await variants[variant]();
          measured[variant].push(m);
          progress(`  ${m.load.crashesPerSecond.toFixed(1)} crashes/s, p99 ${m.load.p99Ms.toFixed(0)} ms`);
        }
      }
      const perRound = (a: Variant, b: Variant) => measured[a].map((m, i) => m.load.crashesPerSecond / measured[b][i]!.load.crashesPerSecond);
      const noDrainVsNaive = perRound('withDedup', 'naive');
      const withVsWithout = perRound('withDedup', 'noDedup');
      const d = medianRun(measured.withDedup);
      const u = medianRun(measured.noDedup);
      const n = medianRun(measured.naive);

      progress(`ingest ${size}: bare Hono (read body, answer 200)`);
      const bare = await started(ServerProcess.start('./bare-hono.ts'));
      const b = await measure(bare.pid, bare.url, corpus);
      await stopped(bare);
      progress(`  ${b.load.crashesPerSecond.toFixed(1)} crashes/s`);

      const rates = (variant: Variant) => measured[variant].map((m) => m.load.crashesPerSecond);
      const noDrainRow = loadRow(`ingest.${corpus.name}.collector_no_drain`, `ingest ${size}: collector (full, S3 down)`, d.load, d.peakRssMiB, d.cpu, {
        diskWriteMBPerSecond: d.diskWriteMBPerSecond,
      });
      const noDedupRow = loadRow(`ingest.${corpus.name}.collector_no_dedup`, `ingest ${size}: collector (full, S3 down, no dedup)`, u.load, u.peakRssMiB, u.cpu);
      const naiveRow = loadRow(`ingest.${corpus.name}.naive`, `ingest ${size}: naive peer`, n.load, n.peakRssMiB, n.cpu, {
        diskWriteMBPerSecond: n.diskWriteMBPerSecond,
      });
      const bareRow = loadRow(`ingest.${corpus.name}.bare`, `ingest ${size}: bare Hono`, b.load, b.peakRssMiB, b.cpu);
      ingest[corpus.name] = { collector: collectorRow, collectorWriteMBps: c.diskWriteMBPerSecond, noDrain: noDrainRow, noDrainWriteMBps: d.diskWriteMBPerSecond };

      const key = (name: string) => `ingest_${corpus.name}_${name}`;
      const naiveRate = spread(rates('naive')).median;
      const bareRate = b.load.crashesPerSecond;
      ratios[key('collector_no_drain_vs_naive')] = spread(noDrainVsNaive).median;
      ratios[key('collector_no_drain_vs_no_dedup')] = spread(withVsWithout).median;
      ratios[key('collector_vs_naive')] = c.load.crashesPerSecond / naiveRate;
      ratios[key('collector_vs_bare_hono')] = c.load.crashesPerSecond / bareRate;
      ratios[key('collector_no_drain_vs_bare_hono')] = d.load.crashesPerSecond / bareRate;
      collectorRow.compared =
        `${ratios[key('collector_vs_naive')]!.toFixed(2)}× the naive median, ${ratios[key('collector_vs_bare_hono')]!.toFixed(3)} of bare Hono; ` +
        `drainer uploaded ${c.after.uploaded}, ${c.after.pending} pending at end`;
      noDrainRow.compared =
        `${describeSpread(noDrainVsNaive)} naive; ${rangeOf(rates('withDedup'))}; ` +
        `${ratios[key('collector_no_drain_vs_bare_hono')]!.toFixed(3)} of bare Hono; disk writes ${d.diskWriteMBPerSecond.toFixed(1)} MB/s`;
      noDedupRow.compared = `${rangeOf(rates('noDedup'))}; with the index ${describeSpread(withVsWithout, 3)} of this: the index costs ${(100 * (1 - spread(withVsWithout).median)).toFixed(1)}% (target < 5%)`;
      naiveRow.compared = `${rangeOf(rates('naive'))}; no drainer; disk writes ${n.diskWriteMBPerSecond.toFixed(1)} MB/s (4 KiB pages)`;
      bareRow.compared = 'ceiling: HTTP + body only';
      rows.push(collectorRow, rateRow, noDrainRow, noDedupRow, naiveRow, bareRow);
    }

    // ---- 3b: the disk, and the collector's writes against it ------------------------------------
    if (runs('disk')) {
      progress(`disk: ${settings.diskMiB} MiB sequential, fdatasync every 8 MiB`);
      const diskMBps = diskWriteMBPerSecond(tmpdir(), settings.diskMiB);
      rows.push({ id: 'disk.sequential', label: 'disk: sequential write, fdatasync/8 MiB', seconds: (settings.diskMiB * MiB) / 1e6 / diskMBps, mbPerSecond: diskMBps, compared: 'ceiling: spool file system' });
      for (const corpus of corpora) {
        if (!ingest[corpus.name]) continue;
        const measured = ingest[corpus.name]!;
        const size = `~${corpus.name.replace('k', ' KB')}`;
        for (const [suffix, row, writeMBps, what] of [
          ['', measured.collector, measured.collectorWriteMBps, 'draining'],
          ['_s3_down', measured.noDrain, measured.noDrainWriteMBps, 'S3 down'],
        ] as const) {
          const inflated = row.extra!['inflatedMBPerSecond']!;
          const vsDisk = (ratios[`ingest_${corpus.name}_collector${suffix}_disk_write_vs_disk`] = writeMBps / diskMBps);
          const vsPayload = (ratios[`ingest_${corpus.name}_collector${suffix}_disk_write_vs_payload`] = writeMBps / inflated);
          rows.push({
            id: `disk.collector${suffix}.${corpus.name}`,
            label: `disk: collector writes, ingest ${size} (${what})`,
            seconds: row.seconds!,
            mbPerSecond: writeMBps,
            extra: { inflatedPayloadMBPerSecond: inflated },
            compared: `${vsDisk.toFixed(3)} of disk; ${vsPayload.toFixed(2)}× the inflated payload (${inflated.toFixed(1)} MB/s; target ≤ 2.0× at ~200 KB)`,
          });
        }
      }
    }

    // ---- 4: drain -------------------------------------------------------------------------------
    if (runs('drain')) {
      progress(`drain: pre-filling ${settings.drainCrashes} crashes (~200 KB; SPOOL_DURABILITY=normal, storage unreachable)`);
      const drainDir = scratchDir('drain');
      const filler = await started(
        CollectorProcess.start({
          SPOOL_DIR: drainDir,
          SPOOL_DURABILITY: 'normal',
          ...s3Env({ ...s3, endpoint: 'http://127.0.0.1:9' }, `${runPrefix}unreachable/`),
          DRAIN_RETRY_BASE_SECONDS: '600',
          DRAIN_RETRY_MAX_SECONDS: '600',
        }),
      );
      const fillRss = new RssSampler(filler.child.pid!);
      const fillCpu = new CpuWindow(filler.child.pid!);
      const fill = await runLoad({
        url: filler.url,
        corpus: big,
        concurrency: settings.concurrency,
        count: settings.drainCrashes,
        onWindowStart: () => fillCpu.start(),
        onWindowEnd: () => fillCpu.end(),
      });
      const fillPeak = fillRss.stop();
      await stopped(filler); // SIGKILL: `normal` commits survive it
      if (fill.accepted !== settings.drainCrashes) {
        throw new Error(`drain pre-fill: ${fill.accepted} of ${settings.drainCrashes} accepted: ${JSON.stringify(fill.failures)}`);
    }
    const fillRow = loadRow('drain.prefill', 'drain pre-fill: collector (normal, S3 down)', fill, fillPeak, fillCpu);
    fillRow.compared = 'ingest without fsync or drainer, then SIGKILL';
    rows.push(fillRow);

    // The raw loop runs before and after the collector (on a copy of the spool), and its mean is
    // the baseline: the S3 server's speed drifts between runs (measured: 143/s before, 174/s after).
    // With queues to announce on (scripts/local-queues: SQS_QUEUE_URL, PUBSUB_EMULATOR_HOST), each
    // round drains a copy of the same spool without PUBLISH_URL and with each queue, in an order
    // that rotates from round to round: the cost of publishing to the drain rate is the ratio
    // within a round, its median over the rounds.
    const queueUrl = process.env['SQS_QUEUE_URL'];
    const pubsubTopic = await benchTopic();
    const copyOfSpool = (name: string) => {
      const dir = scratchDir(name);
      for (const file of ['spool.db', 'spool.db-wal', 'spool.db-shm']) if (existsSync(join(drainDir, file))) copyFileSync(join(drainDir, file), join(dir, file));
      return dir;
    };
    const rawCpu = new CpuWindow(process.pid);
    const rawLoop = async (dir: string, prefix: string) => {
      progress(`drain: raw PutObject loop, ${settings.drainConcurrency} crashes at a time`);
      rawCpu.start();
      const result = await rawPutLoop(s3, dir, `${runPrefix}${prefix}`, settings.drainConcurrency);
      rawCpu.end();
      progress(`  ${result.crashesPerSecond.toFixed(1)} crashes/s`);
      await deletePrefix(s3, `${runPrefix}${prefix}`);
      return { result, cpu: { process: rawCpu.processPercent, other: rawCpu.otherPercent, machine: rawCpu.machinePercent } };
    };
    const rawBefore = await rawLoop(drainDir, 'raw-before/');

    type DrainMode = 'plain' | 'sqs' | 'pubsub';
    const QUEUE_NAME: Record<Exclude<DrainMode, 'plain'>, string> = { sqs: 'SQS', pubsub: 'Pub/Sub' };
    const publishEnv = (mode: DrainMode): Record<string, string> =>
      mode === 'sqs' ? { PUBLISH_URL: `sqs:${queueUrl}` } : mode === 'pubsub' ? { PUBLISH_URL: `pubsub:${pubsubTopic!.name}`, PUBSUB_EMULATOR_HOST: pubsubTopic!.host } : {};
    /** One drain of a copy of the pre-filled spool, to its last upload (or, publishing, its last confirmed announcement). */
    const drainOnce = async (mode: DrainMode, round: number) => {
      const publishing = mode !== 'plain';
      const dir = copyOfSpool(`drain-${mode}`);
      const prefix = `${runPrefix}drain-${mode}-${round}/`;
      progress(`drain round ${round + 1} of ${settings.drainRounds}: collector${publishing ? ` with PUBLISH_URL (${QUEUE_NAME[mode]})` : ''}, DRAIN_CONCURRENCY=${settings.drainConcurrency}`);
      const collector = await started(
        CollectorProcess.start({
          SPOOL_DIR: dir,
          SPOOL_DURABILITY: 'full',
          DRAIN_CONCURRENCY: String(settings.drainConcurrency),
          ...publishEnv(mode),
          ...s3Env(s3, prefix),
        }),
      );
      const done = publishing ? 'crash published' : 'crash uploaded';
      const rss = new RssSampler(collector.child.pid!);
      const cpu = new CpuWindow(collector.child.pid!);
      cpu.start();
      const deadline = Date.now() + Math.max(120_000, settings.drainCrashes * 100);
      while (collector.countLogs(done) < settings.drainCrashes && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      const peak = rss.stop();
      cpu.end();
      const state = await heartbeat(collector.url);
      await stopped(collector);
      const finished = collector.logs.filter((line) => line.msg === done);
      const uploads = collector.logs.filter((line) => line.msg === 'crash uploaded');
      if (finished.length < settings.drainCrashes) throw new Error(`drain${publishing ? ' with publishing' : ''}: only ${finished.length} of ${settings.drainCrashes} before the deadline`);
      if (mode === 'sqs') await purgeQueue(queueUrl!);
      await deletePrefix(s3, prefix);
      rmSync(dir, { recursive: true, force: true });
      const startedAt = logTime(collector.logs.find((line) => line.msg === 'collector started')!);
      const seconds = (Math.max(...finished.map(logTime)) - startedAt) / 1000;
      progress(`  ${(finished.length / seconds).toFixed(1)} crashes/s`);
      return {
        n: finished.length,
        seconds,
        rate: finished.length / seconds,
        bytes: uploads.reduce((sum, line) => sum + Number(line['bytes'] ?? 0), 0),
        uploadMs: uploads.map((line) => Number(line['ms'])).sort((x, y) => x - y),
        uploadedSeconds: (Math.max(...uploads.map(logTime)) - startedAt) / 1000,
        peak,
        cpu,
        pendingAtEnd: state.pending,
      };
    };
    const modes: DrainMode[] = ['plain', ...(queueUrl ? (['sqs'] as const) : []), ...(pubsubTopic ? (['pubsub'] as const) : [])];
    const runsOf: Record<DrainMode, Awaited<ReturnType<typeof drainOnce>>[]> = { plain: [], sqs: [], pubsub: [] };
    for (let round = 0; round < settings.drainRounds; round++) {
      for (let turn = 0; turn < modes.length; turn++) {
        const mode = modes[(round + turn) % modes.length]!;
        runsOf[mode].push(await drainOnce(mode, round));
      }
    }
    await pubsubTopic?.remove();
    const plainRuns = runsOf.plain;
    const rawAfter = await rawLoop(copyOfSpool('drain-raw'), 'raw-after/');
    const raw = {
      crashes: rawBefore.result.crashes,
      seconds: (rawBefore.result.seconds + rawAfter.result.seconds) / 2,
      crashesPerSecond: (rawBefore.result.crashesPerSecond + rawAfter.result.crashesPerSecond) / 2,
      mbPerSecond: (rawBefore.result.mbPerSecond + rawAfter.result.mbPerSecond) / 2,
    };
    const plain = medianBy(plainRuns, (run) => run.rate);
    ratios['drain_collector_vs_raw_put_loop'] = plain.rate / raw.crashesPerSecond;
    rows.push(
      {
        id: 'drain.collector',
        label: `drain: collector, DRAIN_CONCURRENCY=${settings.drainConcurrency}`,
        n: plain.n,
        seconds: plain.seconds,
        crashesPerSecond: plain.rate,
        mbPerSecond: plain.bytes / 1e6 / plain.seconds,
        p50Ms: plain.uploadMs[Math.ceil(plain.uploadMs.length * 0.5) - 1]!,
        p99Ms: plain.uploadMs[Math.ceil(plain.uploadMs.length * 0.99) - 1]!,
        peakRssMiB: plain.peak,
        cpuPercent: plain.cpu.processPercent,
        otherCpuPercent: plain.cpu.otherPercent,
        extra: { pendingAtEnd: plain.pendingAtEnd, machineBusyPercent: plain.cpu.machinePercent },
        compared: `${ratios['drain_collector_vs_raw_put_loop'].toFixed(2)} of the raw loop; ${rangeOf(plainRuns.map((run) => run.rate))}; start → spool empty; ms = per-crash upload`,
      },
      {
        id: 'drain.raw',
        label: `drain: raw PutObject loop, ${settings.drainConcurrency} at a time`,
        n: raw.crashes,
        seconds: raw.seconds,
        crashesPerSecond: raw.crashesPerSecond,
        mbPerSecond: raw.mbPerSecond,
        cpuPercent: (rawBefore.cpu.process + rawAfter.cpu.process) / 2,
        otherCpuPercent: (rawBefore.cpu.other + rawAfter.cpu.other) / 2,
        extra: {
          machineBusyPercent: (rawBefore.cpu.machine + rawAfter.cpu.machine) / 2,
          beforeCrashesPerSecond: rawBefore.result.crashesPerSecond,
          afterCrashesPerSecond: rawAfter.result.crashesPerSecond,
        },
        compared:
          `ceiling: mean of runs before (${rawBefore.result.crashesPerSecond.toFixed(0)}/s) and after (${rawAfter.result.crashesPerSecond.toFixed(0)}/s) ` +
          'the collector; same objects and order, no spool writes (CPU: the bench process)',
      },
    );
    for (const mode of ['sqs', 'pubsub'] as const) {
      const publishRuns = runsOf[mode];
      if (publishRuns.length === 0) continue;
      const perRound = publishRuns.map((run, round) => run.rate / plainRuns[round]!.rate);
      const publishing = medianBy(publishRuns, (run) => run.rate);
      ratios[mode === 'sqs' ? 'drain_publishing_vs_not' : `drain_publishing_${mode}_vs_not`] = spread(perRound).median;
      rows.push({
        id: mode === 'sqs' ? 'drain.collector_publishing' : `drain.collector_publishing_${mode}`,
        label: `drain: collector with PUBLISH_URL (${QUEUE_NAME[mode]}), DRAIN_CONCURRENCY=${settings.drainConcurrency}`,
        n: publishing.n,
        seconds: publishing.seconds,
        crashesPerSecond: publishing.rate,
        cpuPercent: publishing.cpu.processPercent,
        otherCpuPercent: publishing.cpu.otherPercent,
        extra: { uploadedSeconds: publishing.uploadedSeconds, ratioMin: Math.min(...perRound), ratioMax: Math.max(...perRound) },
        compared:
          `${describeSpread(perRound)} of the collector without publishing, within each round (${rangeOf(publishRuns.map((run) => run.rate))}); start → spool empty (every ID confirmed by the queue); ` +
          `last upload after ${publishing.uploadedSeconds.toFixed(1)} s`,
      });
    }
    rmSync(drainDir, { recursive: true, force: true });
    }

    // ---- 5: restart with a big spool ----------------------------------------------------------
    if (runs('restart')) {
      progress(`restart: filling a spool with ${settings.restartCrashes} crashes of ${settings.restartDumpBytes} B (dist/spool/schema.js)`);
      const restartDir = scratchDir('restart');
      const filled = await execFileAsync(
        process.execPath,
        ['--import', 'tsx', 'test/bench/fill-spool.ts', '--spool', restartDir, '--count', String(settings.restartCrashes), '--dump-bytes', String(settings.restartDumpBytes)],
        { cwd: REPO, maxBuffer: 1024 * 1024 },
      );
      const fillResult = JSON.parse(filled.stdout) as { count: number; seconds: number; bytes: number };
      progress(`  ${fillResult.count} crashes, ${(fillResult.bytes / MiB).toFixed(0)} MiB in ${fillResult.seconds.toFixed(1)} s; starting the collector`);
      const spawnedAt = Date.now();
      const restarted = await started(CollectorProcess.start({ SPOOL_DIR: restartDir, SPOOL_DURABILITY: 'full', ...s3Env(s3, `${runPrefix}restart/`) }));
      const restartRss = new RssSampler(restarted.child.pid!);
      const firstUpload = await restarted.waitForLog((line) => line.msg === 'crash uploaded', 120_000);
      const restartPeak = restartRss.stop();
      await stopped(restarted);
      rmSync(restartDir, { recursive: true, force: true });
      const listening = (logTime(restarted.logs.find((line) => line.msg === 'collector started')!) - spawnedAt) / 1000;
      const checkSkipped = restarted.logs.some((line) => String(line.msg).includes('integrity check skipped'));
      rows.push({
        id: 'restart',
        label: `restart: ${settings.restartCrashes} spooled → first upload`,
        n: settings.restartCrashes,
        seconds: (logTime(firstUpload) - spawnedAt) / 1000,
        peakRssMiB: restartPeak,
        extra: { listeningSeconds: listening, spoolMiB: fillResult.bytes / MiB, fillSeconds: fillResult.seconds },
        compared: `listening after ${listening.toFixed(2)} s; spool ${(fillResult.bytes / MiB).toFixed(0)} MiB, integrity check ${checkSkipped ? 'skipped (large)' : 'ran'}`,
      });
    }
  } finally {
    for (const child of running) await child.stop().catch(() => undefined);
    for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
    progress(`removing the run's objects under s3://${s3.bucket}/${runPrefix}`);
    await deletePrefix(s3, runPrefix).catch((error: Error) => progress(`  could not remove them: ${error.message}`));
  }

  for (const row of rows) {
    const failed = row.failures ? sumFailures(row.failures) : 0;
    if (failed > 0) row.compared = `${row.compared ?? ''}; ${failed} NOT accepted: ${JSON.stringify(row.failures)}`;
  }
  const cpuList = cpus();
  return {
    mode,
    startedAt: new Date(Date.now() - (performance.now() - began)).toISOString(),
    totalSeconds: (performance.now() - began) / 1000,
    machine: {
      cores: availableParallelism(),
      cpu: cpuList[0]?.model ?? 'unknown',
      memoryGiB: totalmem() / 1024 ** 3,
      kernel: release(),
      node: process.version,
      loadAverageAtStart,
    },
    settings,
    s3Endpoint: s3.endpoint,
    corpora: Object.fromEntries(
      corpora.map((corpus) => [
        corpus.name,
        {
          medianDumpBytes: corpus.medianDumpBytes,
          minDumpBytes: corpus.minDumpBytes,
          maxDumpBytes: corpus.maxDumpBytes,
          meanWireBytes: corpus.meanWireBytes,
          gzipRatio: corpus.gzipRatio,
        },
      ]),
    ),
    rows,
    ratios,
  };
}
