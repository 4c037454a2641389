/**
 * `npm run bench` (scripts/bench builds and starts the local S3 first):
 *
 *     node --import tsx test/bench/cli.ts [--smoke] [--json] [--save FILE] [--concurrency N] [--duration S]
 *         [--warmup S] [--drain-crashes N] [--drain-concurrency N] [--drain-rounds N] [--restart-crashes N] [--disk-mib N] [--only PHASES]
 *
 * Prints one table on stdout (with --json: the full result as JSON instead); progress on stderr.
 * Exit status 0 when every phase ran, 1 when one could not run, 2 on bad arguments.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FULL_SETTINGS, PHASES, runBench, SMOKE_SETTINGS, type BenchResult, type BenchSettings, type Phase, type Row } from './bench.js';

const USAGE = `usage: scripts/bench [--smoke] [--json] [options]
  --smoke                 tiny counts (< 60 s): checks the benchmark works, measures nothing worth quoting
  --json                  print the full result as JSON instead of the table
  --save FILE             also write the full result as JSON to FILE (to compare runs)
  --rounds N              interleaved rounds of the S3-down ingest comparisons (default ${FULL_SETTINGS.rounds})
  --concurrency N         reports in flight (default ${FULL_SETTINGS.concurrency})
  --duration S            measured seconds per ingest run (default ${FULL_SETTINGS.durationSeconds})
  --warmup S              unmeasured seconds before each (default ${FULL_SETTINGS.warmupSeconds})
  --ramp S                unmeasured seconds over which the 80%-of-max open loop ramps up (default ${FULL_SETTINGS.openLoopRampSeconds})
  --drain-crashes N       crashes pre-filled for the drain phase (default ${FULL_SETTINGS.drainCrashes})
  --drain-concurrency N   DRAIN_CONCURRENCY and raw loop concurrency (default ${FULL_SETTINGS.drainConcurrency})
  --drain-rounds N        interleaved rounds of the drain without PUBLISH_URL and with each local queue, SQS and Pub/Sub (default ${FULL_SETTINGS.drainRounds})
  --restart-crashes N     crashes spooled for the restart phase (default ${FULL_SETTINGS.restartCrashes})
  --disk-mib N            MiB written for the disk bandwidth (default ${FULL_SETTINGS.diskMiB})
  --peer-rounds N         rounds of crashspool vs Antenna's design, local and +latency (default ${FULL_SETTINGS.peers.rounds})
  --outage-rounds N       rounds of the outage run (default ${FULL_SETTINGS.peers.outageRounds})
  --outage-rate R         reports/s during the outage run (default ${FULL_SETTINGS.peers.outageRate})
  --only P[,P...]         run only these phases: ${PHASES.join(', ')} (default: all)
Needs S3_ENDPOINT, S3_TEST_BUCKET and AWS_* (scripts/bench starts the local Ceph RGW when unset).
`;

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

function number(name: string, text: string | undefined, fallback: number, integer: boolean): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) fail(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got '${text}'`);
  return value;
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      smoke: { type: 'boolean' },
      json: { type: 'boolean' },
      save: { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      ramp: { type: 'string' },
      'drain-crashes': { type: 'string' },
      'drain-rounds': { type: 'string' },
      'drain-concurrency': { type: 'string' },
      'restart-crashes': { type: 'string' },
      'disk-mib': { type: 'string' },
      only: { type: 'string' },
      rounds: { type: 'string' },
      'peer-rounds': { type: 'string' },
      'outage-rounds': { type: 'string' },
      'outage-rate': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }));
} catch (error) {
  fail((error as Error).message);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const base = values.smoke ? SMOKE_SETTINGS : FULL_SETTINGS;
const settings: BenchSettings = {
  ...base,
  rounds: number('rounds', values.rounds, base.rounds, true),
  concurrency: number('concurrency', values.concurrency, base.concurrency, true),
  durationSeconds: number('duration', values.duration, base.durationSeconds, false),
  warmupSeconds: values.warmup === '0' ? 0 : number('warmup', values.warmup, base.warmupSeconds, false),
  openLoopRampSeconds: values.ramp === '0' ? 0 : number('ramp', values.ramp, base.openLoopRampSeconds, false),
  drainCrashes: number('drain-crashes', values['drain-crashes'], base.drainCrashes, true),
  drainConcurrency: number('drain-concurrency', values['drain-concurrency'], base.drainConcurrency, true),
  drainRounds: number('drain-rounds', values['drain-rounds'], base.drainRounds, true),
  restartCrashes: number('restart-crashes', values['restart-crashes'], base.restartCrashes, true),
  diskMiB: number('disk-mib', values['disk-mib'], base.diskMiB, true),
  peers: {
    ...base.peers,
    rounds: number('peer-rounds', values['peer-rounds'], base.peers.rounds, true),
    outageRounds: number('outage-rounds', values['outage-rounds'], base.peers.outageRounds, true),
    outageRate: number('outage-rate', values['outage-rate'], base.peers.outageRate, false),
  },
  ...(values.only === undefined ? {} : { only: phases(values.only) }),
};

function phases(text: string): Phase[] {
  const names = text.split(',').map((name) => name.trim());
  for (const name of names) if (!(PHASES as readonly string[]).includes(name)) fail(`--only: unknown phase '${name}'`);
  return names as Phase[];
}

// ---- the table ---------------------------------------------------------------------------------

/** About three significant digits, without exponent notation. */
function fmt(value: number | undefined): string {
  if (value === undefined) return '—';
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 100) return Math.round(value).toLocaleString('en-US');
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

function kb(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.round(bytes / 1e3)} KB`;
}

function renderTable(result: BenchResult): string {
  const { machine, settings: s, corpora } = result;
  const big = corpora['200k']!;
  const small = corpora['5k']!;
  const lines = [
    `crashspool bench (${result.mode}), ${result.startedAt}, ${result.totalSeconds.toFixed(0)} s`,
    `machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB.toFixed(0)} GiB, Linux ${machine.kernel}, Node ${machine.node}, load average ${machine.loadAverageAtStart.toFixed(2)} at start; ` +
      'the collector, Ceph RGW and the load generator all share these cores',
    `load: Crashpad style (whole body gzipped, chunked, one new connection per report), ${s.concurrency} in flight, ` +
      `${s.durationSeconds} s measured after ${s.warmupSeconds} s warm-up; S3 ${result.s3Endpoint}`,
    `reports: ~200 KB = dumps ${kb(big.minDumpBytes)}..${kb(big.maxDumpBytes)}, median ${kb(big.medianDumpBytes)}, ` +
      `${kb(big.meanWireBytes)} mean on the wire (gzip ${big.gzipRatio.toFixed(1)}×); ` +
      `~5 KB = ${kb(small.minDumpBytes)}..${kb(small.maxDumpBytes)}, ${kb(small.meanWireBytes)} on the wire (gzip ${small.gzipRatio.toFixed(1)}×)`,
    '',
  ];
  const header = ['measurement', 'n', 'seconds', 'crashes/s', 'MB/s', 'p50 ms', 'p99 ms', 'peak RSS MiB', 'CPU %', 'other %', 'compared'];
  const body = result.rows.map((row: Row) => [
    row.label,
    row.n === undefined ? '—' : String(row.n),
    fmt(row.seconds),
    fmt(row.crashesPerSecond),
    fmt(row.mbPerSecond),
    fmt(row.p50Ms),
    fmt(row.p99Ms),
    fmt(row.peakRssMiB),
    fmt(row.cpuPercent),
    fmt(row.otherCpuPercent),
    row.compared ?? '',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => cells[column]!.length)));
  const render = (cells: string[]) =>
    cells
      .map((cell, column) => (column === 0 || column === cells.length - 1 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join(' | ')
      .trimEnd();
  lines.push(render(header), widths.map((width) => '-'.repeat(width)).join('-|-'), ...body.map(render));
  lines.push(
    '',
    'MB = 10^6 bytes. Ingest: MB/s = gzipped bytes on the wire of accepted reports; p50/p99 = client-side ack latency',
    '(connect → end of answer); n = accepted in the measured window. "× naive", "of bare Hono": crashes/s ratios.',
    `"S3 down" rows, "no dedup" and the naive peer run interleaved, ${s.rounds} round(s), each round in the reverse order of the one`,
    'before; their ratios are taken within each round and shown as the median (min–max); each row shows its median round.',
    `crashspool vs Antenna's design: ${s.peers.concurrency} in flight (the outage run: open loop at ${s.peers.outageRate}/s), ${s.peers.seconds} s per run,`,
    `alternating, ${s.peers.rounds} round(s) (outage: ${s.peers.outageRounds}); figures are medians; lost = answered non-200 or not at all (Crashpad`,
    'does not retry); "backlog empty" = crashspool\'s spool depth back to 0 (storage reached by every crash it acknowledged).',
    `"at 80% of max": open loop (reports start at a fixed rate whatever is in flight), after ${s.openLoopRampSeconds} s unmeasured in which the rate ramps up`,
    '(a fresh process needs ~4 s of load before V8 has compiled its request path; a queue built meanwhile would fill the p99).',
    '"S3 down": S3_ENDPOINT is a closed port, so the drainer pauses after one failed upload: the ingest path alone.',
    'The naive peer only stores (no drainer, no limits); bare Hono only reads the body.',
    'disk: collector writes = write_bytes of /proc/<pid>/io over the window (pages the process dirtied: WAL, checkpoints,',
    'deletes by the drainer), set against the disk row and against the inflated (gunzipped) multipart payload.',
    `drain: ${s.drainCrashes} crashes spooled (~200 KB), then uploaded to S3: collector from "collector started" to its last`,
    '"crash uploaded" log line (ms = per-crash upload time from its logs); raw loop = @aws-sdk/client-s3 PutObject, same',
    'objects (dump_names, dump, raw crash), same order and concurrency, plain PutObject (the SDK hashes each body for SigV4),',
    'run before and after the collector; its row shows the mean.',
    'restart: spawn → first "crash uploaded" log line. peak RSS = max of sampled VmRSS and the kernel\'s VmHWM.',
    'CPU % = the measured process over the measurement (100 = one core busy); other % = every other process but the load',
    'generator (the S3 server — and any unrelated work, which skews every number: compare rows with "other %" near 0).',
  );
  return `${lines.join('\n')}\n`;
}

try {
  const result = await runBench(values.smoke ? 'smoke' : 'full', settings, (line) => process.stderr.write(`bench: ${line}\n`));
  const json = `${JSON.stringify(result, null, 2)}\n`;
  if (values.save) writeFileSync(values.save, json);
  process.stdout.write(values.json ? json : renderTable(result));
} catch (error) {
  process.stderr.write(`bench: failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
}
