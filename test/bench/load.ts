/**
 * The benchmark's load: Crashpad-style reports (annotations, then `upload_file_minidump`; the whole
 * multipart body gzipped; sent chunked, without Content-Length, one new connection per report) and
 * a closed-loop generator that keeps `concurrency` of them in flight.
 *
 * Dumps are built from the fixture minidumps' own bytes (slices of them, concatenated to the target
 * size), so they compress like real minidumps (~4–5× with gzip), not like zeros.
 */
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { multipart } from '../helpers/multipart.js';
import { seededRandom } from '../helpers/random.js';
import { postChunked, postTarget, type PostAnswer } from './crashpad-post.js';

export interface CorpusItem {
  /**
   * The gzipped multipart body without its `guid` part. Each post puts a fresh `guid` part in front
   * as a gzip member of its own (gzip streams may be concatenated), so no post repeats an earlier
   * report: the collector would answer a repeat with the first crash ID and store nothing.
   */
  body: Buffer;
  contentType: string;
  query: string;
  boundary: string;
  dumpBytes: number;
  /** The multipart body before gzip. */
  inflatedBytes: number;
}

export interface Corpus {
  name: string;
  items: CorpusItem[];
  /** Dump sizes: median, smallest, largest (bytes, before gzip). */
  medianDumpBytes: number;
  minDumpBytes: number;
  maxDumpBytes: number;
  /** Mean bytes on the wire per report (gzipped body). */
  meanWireBytes: number;
  /** Inflated / gzipped, over the whole corpus. */
  gzipRatio: number;
}

export interface SizeSpec {
  median: number;
  min: number;
  max: number;
  /** Spread of the log-normal size distribution (sigma of ln size). */
  sigma: number;
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
function probit(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  if (p > 1 - low) return -probit(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) / (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1);
}

/**
 * `count` dump sizes at evenly spaced quantiles of a log-normal distribution with the given median,
 * clipped to [min, max]: the corpus median is the requested one exactly, whatever the count.
 */
export function dumpSizes(spec: SizeSpec, count: number): number[] {
  const sizes: number[] = [];
  for (let i = 0; i < count; i++) {
    const z = probit((i + 0.5) / count);
    sizes.push(Math.round(Math.min(spec.max, Math.max(spec.min, spec.median * Math.exp(spec.sigma * z)))));
  }
  return sizes;
}

/**
 * Fixture minidump bytes concatenated to `size`: random slices of 4–32 KB from random fixtures.
 * stack_exhaustion.dmp is left out: it is one frame repeated (gzip ratio ~120×), unlike real dumps.
 */
function fixtureBytes(sources: Buffer[], size: number, random: () => number): Buffer {
  const pieces: Buffer[] = [];
  let length = 0;
  while (length < size) {
    const source = sources[Math.floor(random() * sources.length)]!;
    const want = Math.min(size - length, source.length, 4096 + Math.floor(random() * 28_672));
    const offset = Math.floor(random() * (source.length - want + 1));
    pieces.push(source.subarray(offset, offset + want));
    length += want;
  }
  const dump = Buffer.concat(pieces, size);
  dump.write('MDMP', 0, 'latin1');
  return dump;
}

/** Annotations as a Chrome/Electron Crashpad client sends them (about two dozen short fields). */
function crashpadAnnotations(random: () => number): Record<string, string> {
  const guid = randomBytes(16).toString('hex');
  const annotations: Record<string, string> = {
    prod: 'BenchApp',
    ver: '31.4.0',
    _productName: 'BenchApp',
    _version: '4.2.1',
    _companyName: 'Bench Inc.',
    plat: 'Linux',
    platform: 'linux',
    process_type: 'renderer',
    ptype: 'renderer',
    pid: String(1000 + Math.floor(random() * 60_000)),
    guid,
    channel: 'stable',
    lsb_release: 'Debian GNU/Linux 12 (bookworm)',
    osarch: 'x86_64',
    'num-experiments': '12',
    'variations': 'a1b2c3d4-e5f6a7b8,c9d0e1f2-a3b4c5d6,e7f8a9b0-c1d2e3f4',
    'url-chunk': 'https://example.com/app/index.html#/settings/profile',
    'v8-oom-detail': '',
    'switch-1': '--type=renderer',
    'switch-2': '--enable-crash-reporter=bench',
    'switch-3': '--lang=en-US',
    'switch-4': '--num-raster-threads=2',
    'total-discardable-memory-allocated': '4194304',
    'io_scheduler_async_stack': '0x55d4c0a1b2c3 0x55d4c0a1b4d5',
  };
  return annotations;
}

/** `count` distinct reports whose dump sizes follow `spec`. */
export function buildCorpus(name: string, spec: SizeSpec, count: number, seed = 1): Corpus {
  const random = seededRandom(seed);
  const sources = [...loadFixtureDumps()].filter(([file]) => file !== 'stack_exhaustion.dmp').map(([, data]) => data);
  const sizes = dumpSizes(spec, count);
  const items: CorpusItem[] = [];
  for (const size of sizes) {
    const { guid, ...annotations } = crashpadAnnotations(random);
    const boundary = `----crashspoolbench${randomBytes(12).toString('hex')}`;
    const built = multipart(
      [
        ...Object.entries(annotations).map(([field, value]) => ({ name: field, value })),
        { name: 'upload_file_minidump', filename: `${guid}.dmp`, data: fixtureBytes(sources, size, random) },
      ],
      boundary,
    );
    items.push({
      body: gzipSync(built.body),
      contentType: built.contentType,
      boundary,
      query: `?product=BenchApp&version=31.4.0&guid=${guid}`,
      dumpBytes: size,
      inflatedBytes: built.body.length,
    });
  }
  // Shuffled, so consecutive requests do not grow in size.
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  const sorted = [...sizes].sort((x, y) => x - y);
  const wire = items.reduce((sum, item) => sum + item.body.length, 0);
  const inflated = items.reduce((sum, item) => sum + item.inflatedBytes, 0);
  return {
    name,
    items,
    medianDumpBytes: sorted[Math.floor(sorted.length / 2)]!,
    minDumpBytes: sorted[0]!,
    maxDumpBytes: sorted[sorted.length - 1]!,
    meanWireBytes: wire / items.length,
    gzipRatio: inflated / wire,
  };
}

// ---- load generator ------------------------------------------------------------------------------

const CHUNK_BYTES = 16 * 1024;
const REQUEST_TIMEOUT_MS = 120_000;
/** A server that refuses everything stops the run instead of spinning until the deadline. */
const MAX_CONSECUTIVE_ERRORS = 200;

interface Outcome {
  startedAt: number;
  doneAt: number;
  accepted: boolean;
  status: string;
  wireBytes: number;
  inflatedBytes: number;
}

/** The item's body behind a `guid` part of its own: a report no earlier post sent. */
export function uniqueBody(item: CorpusItem): Buffer {
  const guidPart = `--${item.boundary}\r\nContent-Disposition: form-data; name="guid"\r\n\r\n${randomBytes(16).toString('hex')}\r\n`;
  return Buffer.concat([gzipSync(guidPart), item.body]);
}

/** One report over a fresh connection, chunked, as Crashpad sends it. Resolves with status and body. */
function postCrashpad(base: URL, item: CorpusItem): Promise<PostAnswer> {
  const headers = { 'Content-Type': item.contentType, 'Content-Encoding': 'gzip', 'User-Agent': 'Crashpad/0.8.0-bench' };
  return postChunked(postTarget(base, `/submit${item.query}`, headers), uniqueBody(item), CHUNK_BYTES, REQUEST_TIMEOUT_MS);
}

export interface LoadOptions {
  url: string;
  corpus: Corpus;
  concurrency: number;
  /** Either a fixed number of reports… */
  count?: number;
  /** …or a fixed time: `warmupMs` not counted, then `durationMs` measured. */
  durationMs?: number;
  warmupMs?: number;
  /**
   * Open loop: start reports at this fixed rate (whatever is still in flight), instead of
   * `concurrency` workers each waiting for its answer; latency then includes any queueing. The
   * rate ramps up from zero over the warm-up.
   */
  ratePerSecond?: number;
  /** Called when the measured window opens and closes (e.g. to read /proc counters). */
  onWindowStart?: () => void;
  onWindowEnd?: () => void;
}

export interface LoadResult {
  /** Every request made, warm-up included. */
  sent: number;
  /** Requests completed inside the measured window, and how many of them were accepted. */
  completed: number;
  accepted: number;
  /** Length of the measured window. */
  seconds: number;
  crashesPerSecond: number;
  /** Compressed bytes on the wire of accepted reports, per second (MB = 10^6 bytes). */
  wireMBPerSecond: number;
  /** The same reports' multipart bodies after gunzip, per second. */
  inflatedMBPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Anything but an accepted answer, by status or error code (the whole run, warm-up included). */
  failures: Record<string, number>;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * Closed loop: `concurrency` workers, each posting one report after the other. Accepted means
 * HTTP 200 with a `CrashID=bp-` body. Latency is client-side, from opening the connection to the
 * end of the answer.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const base = new URL(options.url);
  const items = options.corpus.items;
  const warmupMs = options.count === undefined ? (options.warmupMs ?? 0) : 0;
  const started = performance.now();
  const windowStart = started + warmupMs;
  const windowEnd = options.durationMs === undefined ? Number.POSITIVE_INFINITY : windowStart + options.durationMs;
  const outcomes: Outcome[] = [];
  const failures: Record<string, number> = {};
  let next = 0;
  let consecutiveErrors = 0;
  let aborted: Error | undefined;

  // Each window callback runs exactly once: by its timer, or at the end if the run finished first.
  let windowStarted = false;
  let windowEnded = false;
  const openWindow = () => {
    if (!windowStarted) options.onWindowStart?.();
    windowStarted = true;
  };
  const closeWindow = () => {
    openWindow();
    if (!windowEnded) options.onWindowEnd?.();
    windowEnded = true;
  };
  const startTimer = setTimeout(openWindow, warmupMs);
  const endTimer = Number.isFinite(windowEnd) ? setTimeout(closeWindow, windowEnd - started) : undefined;

  const done = () => (options.count !== undefined ? next >= options.count : performance.now() >= windowEnd);
  const postOne = async () => {
    const item = items[next++ % items.length]!;
    const startedAt = performance.now();
    let status: string;
    let accepted = false;
    try {
      const answer = await postCrashpad(base, item);
      accepted = answer.status === 200 && answer.body.startsWith('CrashID=bp-');
      status = accepted ? 'ok' : `HTTP ${answer.status} ${answer.body.trim().slice(0, 60)}`;
      consecutiveErrors = 0;
    } catch (error) {
      status = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      consecutiveErrors += 1;
      if (consecutiveErrors >= MAX_CONSECUTIVE_ERRORS) aborted = new Error(`load aborted: ${consecutiveErrors} errors in a row, last ${status}`);
    }
    if (!accepted) failures[status] = (failures[status] ?? 0) + 1;
    outcomes.push({ startedAt, doneAt: performance.now(), accepted, status, wireBytes: item.body.length, inflatedBytes: item.inflatedBytes });
  };
  const worker = async () => {
    while (!aborted && !done()) await postOne();
  };
  const scheduler = async () => {
    const perMs = options.ratePerSecond! / 1000;
    // The rate ramps up linearly over the warm-up (a cold process would otherwise start behind,
    // and at 80% load it catches up only slowly), then holds: n(t) = perMs·t²/2W, then perMs·(t − W/2).
    const rampedUntil = (perMs * warmupMs) / 2;
    const dueAt = (i: number) => (i < rampedUntil ? Math.sqrt((2 * warmupMs * i) / perMs) : warmupMs + (i - rampedUntil) / perMs);
    const inFlight: Promise<void>[] = [];
    for (let i = 0; !aborted && !done(); i += 1) {
      const due = started + dueAt(i);
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      inFlight.push(postOne());
    }
    await Promise.all(inFlight);
  };
  try {
    if (options.ratePerSecond !== undefined) await scheduler();
    else await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    clearTimeout(startTimer);
    clearTimeout(endTimer);
  }
  closeWindow();
  if (aborted) throw aborted;
  const finished = performance.now();

  const measuredEnd = Number.isFinite(windowEnd) ? windowEnd : finished;
  const inWindow = outcomes.filter((outcome) => outcome.doneAt >= windowStart && outcome.doneAt <= measuredEnd);
  const accepted = inWindow.filter((outcome) => outcome.accepted);
  const seconds = (measuredEnd - windowStart) / 1000;
  const latencies = accepted.map((outcome) => outcome.doneAt - outcome.startedAt).sort((x, y) => x - y);
  const sum = (key: 'wireBytes' | 'inflatedBytes') => accepted.reduce((total, outcome) => total + outcome[key], 0);
  return {
    sent: outcomes.length,
    completed: inWindow.length,
    accepted: accepted.length,
    seconds,
    crashesPerSecond: accepted.length / seconds,
    wireMBPerSecond: sum('wireBytes') / 1e6 / seconds,
    inflatedMBPerSecond: sum('inflatedBytes') / 1e6 / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    failures,
  };
}
