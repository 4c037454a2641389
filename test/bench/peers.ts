/**
 * crashspool against Antenna's design (antenna-peer.ts: save to storage, then answer), same load,
 * same run, against the same Ceph RGW, in three storage conditions:
 *
 * - `local`: the RGW as it is;
 * - `latency`: through delay-proxy.ts adding `latencyMs` to every request (a cloud region's round trip);
 * - `outage`: through the proxy, storage gone (connections reset) for the middle half of the run,
 *   under an open-loop load of `outageRate` reports/s: what each design loses (a non-200 answer is a
 *   lost crash: Crashpad does not retry), and how long crashspool needs to empty its backlog once
 *   storage is back.
 *
 * The two designs alternate (A B, B A, …) and each figure is the median of the rounds with its range.
 * crashspool runs with its defaults (SPOOL_DURABILITY=full, draining during the load).
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { deletePrefix, type S3Endpoint } from './baselines.js';
import { heartbeat, s3Env, spread } from './bench-helpers.js';
import { runLoad, type Corpus, type LoadResult } from './load.js';
import { ServerProcess } from './processes.js';
import type { Row } from './bench.js';

export interface PeerSettings {
  /** Rounds of the `local` and `latency` conditions, and of the (longer) outage. */
  rounds: number;
  outageRounds: number;
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
  latencyMs: number;
  outageRate: number;
  /** Whole outage run; storage is down for its middle half. */
  outageRunSeconds: number;
  /** Longest wait for crashspool's backlog to empty after a run. */
  drainWaitSeconds: number;
}

type Design = 'crashspool' | 'antenna';
type Condition = 'local' | 'latency' | 'outage';

interface Measured {
  load: LoadResult;
  lost: number;
  /** crashspool only: seconds from storage back (or the load's end) until the spool was empty; NaN if it was not within the wait. */
  drainSeconds?: number;
  pendingPeak?: number;
}

interface Stage {
  s3: S3Endpoint;
  runPrefix: string;
  corpus: Corpus;
  settings: PeerSettings;
  progress: (line: string) => void;
  /** Keeps track of children so the bench stops them if it fails half-way. */
  started: <T extends { stop(): Promise<void> }>(child: Promise<T>) => Promise<T>;
  stopped: (child: { stop(): Promise<void> }) => Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function countFailures(load: LoadResult): number {
  return Object.values(load.failures).reduce((sum, count) => sum + count, 0);
}

/** Polls the collector's spool depth until it is empty (or `deadline`), keeping the peak. */
async function watchBacklog(url: string, from: () => number | undefined, deadline: () => number) {
  let peak = 0;
  let emptyAt: number | undefined;
  while (Date.now() < deadline()) {
    const { pending } = await heartbeat(url);
    if (Number.isFinite(pending)) peak = Math.max(peak, pending);
    const since = from();
    if (since !== undefined && pending === 0) {
      emptyAt = Date.now();
      break;
    }
    await sleep(200);
  }
  return { peak, emptyAt };
}

async function runOne(stage: Stage, design: Design, condition: Condition, proxy: ServerProcess | undefined, round: number): Promise<Measured> {
  const { s3, settings } = stage;
  const endpoint = proxy ? proxy.url : s3.endpoint;
  const prefix = `${stage.runPrefix}peers-${condition}-${design}-${round}-${randomBytes(2).toString('hex')}/`;
  const outage = condition === 'outage';
  let spoolDir: string | undefined;
  const server =
    design === 'crashspool'
      ? await stage.started(CollectorProcess.start({ SPOOL_DIR: (spoolDir = tempDir('bench-peers')), SPOOL_DURABILITY: 'full', ...s3Env({ ...s3, endpoint }, prefix) }))
      : await stage.started(
          ServerProcess.start('./antenna-peer.ts', {
            S3_ENDPOINT: endpoint,
            S3_BUCKET: s3.bucket,
            S3_PREFIX: prefix,
            AWS_ACCESS_KEY_ID: s3.accessKeyId,
            AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
            AWS_REGION: s3.region,
          }),
        );
  const timers: NodeJS.Timeout[] = [];
  let storageBackAt: number | undefined;
  let loadEndedAt: number | undefined;
  try {
    const durationMs = (outage ? settings.outageRunSeconds : settings.seconds) * 1000;
    const onWindowStart = () => {
      if (!outage) return;
      timers.push(setTimeout(() => proxy!.child.kill('SIGUSR1'), durationMs / 4));
      timers.push(
        setTimeout(() => {
          proxy!.child.kill('SIGUSR2');
          storageBackAt = Date.now();
        }, (3 * durationMs) / 4),
      );
    };
    const watching =
      design === 'crashspool'
        ? watchBacklog(
            server.url,
            () => (outage ? storageBackAt : loadEndedAt),
            () => (loadEndedAt ?? Number.POSITIVE_INFINITY) + settings.drainWaitSeconds * 1000,
          )
        : undefined;
    const load = await runLoad({
      url: server.url,
      corpus: stage.corpus,
      concurrency: settings.concurrency,
      durationMs,
      warmupMs: settings.warmupSeconds * 1000,
      ...(outage ? { ratePerSecond: settings.outageRate } : {}),
      onWindowStart,
    }).finally(() => {
      loadEndedAt = Date.now();
    });
    const backlog = await watching;
    const start = outage ? storageBackAt : loadEndedAt;
    return {
      load,
      lost: countFailures(load),
      ...(backlog
        ? { pendingPeak: backlog.peak, drainSeconds: backlog.emptyAt !== undefined && start !== undefined ? Math.max(0, backlog.emptyAt - start) / 1000 : Number.NaN }
        : {}),
    };
  } finally {
    for (const timer of timers) clearTimeout(timer);
    if (outage) proxy!.child.kill('SIGUSR2');
    await stage.stopped(server);
    if (spoolDir) rmSync(spoolDir, { recursive: true, force: true });
    // The local RGW keeps objects in memory (8 GiB): each run's go as soon as it ends.
    await deletePrefix(s3, prefix);
  }
}

const LABELS: Record<Condition, (settings: PeerSettings) => string> = {
  local: () => 'local RGW',
  latency: (s) => `RGW +${s.latencyMs} ms per request`,
  outage: (s) => `${s.outageRunSeconds / 2} s outage in ${s.outageRunSeconds} s, ${s.outageRate}/s`,
};

/** Rows `peers.<condition>.<design>`; ratios `peers_<condition>_crashspool_vs_antenna` (accepted/s). */
export async function runPeerComparison(stage: Stage): Promise<{ rows: Row[]; ratios: Record<string, number> }> {
  const { settings, s3 } = stage;
  const rows: Row[] = [];
  const ratios: Record<string, number> = {};
  const upstream = new URL(s3.endpoint);
  for (const condition of ['local', 'latency', 'outage'] as const) {
    const proxy =
      condition === 'local'
        ? undefined
        : await stage.started(
            ServerProcess.start('./delay-proxy.ts', { UPSTREAM: `${upstream.hostname}:${upstream.port}`, DELAY_MS: String(condition === 'latency' ? settings.latencyMs : 0) }),
          );
    const results: Record<Design, Measured[]> = { crashspool: [], antenna: [] };
    try {
      const rounds = condition === 'outage' ? settings.outageRounds : settings.rounds;
      for (let round = 0; round < rounds; round++) {
        const order: Design[] = round % 2 === 0 ? ['crashspool', 'antenna'] : ['antenna', 'crashspool'];
        for (const design of order) {
          stage.progress(`peers, ${LABELS[condition](settings)}: ${design}, round ${round + 1} of ${rounds}`);
          const measured = await runOne(stage, design, condition, proxy, round);
          results[design].push(measured);
          const drain = measured.drainSeconds === undefined ? '' : `; backlog peak ${measured.pendingPeak}, empty ${measured.drainSeconds.toFixed(1)} s after ${condition === 'outage' ? 'storage came back' : 'the load'}`;
          stage.progress(`  ${measured.load.crashesPerSecond.toFixed(1)}/s, p50 ${measured.load.p50Ms.toFixed(0)} ms, p99 ${measured.load.p99Ms.toFixed(0)} ms, lost ${measured.lost}${drain}`);
        }
      }
    } finally {
      if (proxy) await stage.stopped(proxy);
    }
    const rate = (design: Design) => results[design].map((m) => m.load.crashesPerSecond);
    const perRound = results.crashspool.map((m, i) => m.load.crashesPerSecond / results.antenna[i]!.load.crashesPerSecond);
    ratios[`peers_${condition}_crashspool_vs_antenna`] = spread(perRound).median;
    for (const design of ['crashspool', 'antenna'] as const) {
      const runs = results[design];
      const median = (pick: (m: Measured) => number) => spread(runs.map(pick)).median;
      const { min, max } = spread(rate(design));
      const lost = runs.reduce((sum, m) => sum + m.lost, 0);
      const sent = runs.reduce((sum, m) => sum + m.load.sent, 0);
      const notes = [`${min.toFixed(0)}–${max.toFixed(0)}/s over ${runs.length} round${runs.length === 1 ? '' : 's'}`];
      if (design === 'crashspool') notes.unshift(`${spread(perRound).median.toFixed(2)}× Antenna's design (${spread(perRound).min.toFixed(2)}–${spread(perRound).max.toFixed(2)})`);
      if (design === 'crashspool') {
        const drains = runs.map((m) => m.drainSeconds ?? Number.NaN);
        const peak = Math.max(...runs.map((m) => m.pendingPeak ?? 0));
        const when = condition === 'outage' ? 'storage came back' : 'the load stopped';
        notes.push(
          drains.every(Number.isFinite)
            ? `backlog (peak ${peak}) empty ${spread(drains).median.toFixed(1)} s after ${when} (${spread(drains).min.toFixed(1)}–${spread(drains).max.toFixed(1)})`
            : `backlog (peak ${peak}) NOT empty within ${settings.drainWaitSeconds} s after the load in ${drains.filter((d) => !Number.isFinite(d)).length} round(s)`,
        );
      }
      const failures: Record<string, number> = {};
      for (const m of runs) for (const [status, count] of Object.entries(m.load.failures)) failures[status] = (failures[status] ?? 0) + count;
      rows.push({
        id: `peers.${condition}.${design}`,
        failures,
        label: `${LABELS[condition](settings)}: ${design === 'crashspool' ? 'crashspool' : "Antenna's design"}`,
        n: runs.reduce((sum, m) => sum + m.load.accepted, 0),
        seconds: median((m) => m.load.seconds),
        crashesPerSecond: median((m) => m.load.crashesPerSecond),
        p50Ms: median((m) => m.load.p50Ms),
        p99Ms: median((m) => m.load.p99Ms),
        compared: `lost ${lost} of ${sent}; ${notes.join('; ')}`,
        extra: { lost, sent, ...(design === 'crashspool' ? { drainSecondsMedian: spread(runs.map((m) => m.drainSeconds ?? Number.NaN)).median } : {}) },
      });
    }
  }
  return { rows, ratios };
}
