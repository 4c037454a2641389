/**
 * Storage faults against the real collector and the real S3 server (Ceph RGW) behind the fault
 * proxy. Each scenario: with storage refusing connections, post a backlog of crashes (all
 * acknowledged); switch the proxy to the fault; watch for `faultSeconds` (or until drained); heal;
 * wait until the spool is empty. Throughout, `/__heartbeat__` and `/__lbheartbeat__` are polled and
 * must answer within 1 s. At the end every acknowledged crash is checked in S3 byte for byte, and
 * no raw crash is stored without its dumps. Drain rates come from the collector's own
 * `crash uploaded` log lines.
 */
import { CollectorProcess, tempDir, type LogLine } from '../helpers/collector-process.js';
import { FaultProxy, type FaultMode } from '../helpers/fault-proxy.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { makeReport } from '../helpers/multipart.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { deletePrefix, expectedFrom, listKeys, s3Settings, s3Target, storedProblem, type Expected, type S3TestTarget } from '../helpers/stored-crashes.js';

export interface Scenario {
  name: string;
  mode: FaultMode;
  /** How long the fault lasts; 0: until the backlog is drained (rate scenarios). */
  faultSeconds: number;
}

export interface ScenarioResult {
  name: string;
  acknowledged: number;
  /** Uploads while the fault was on, and their rate (per second of fault, or of draining). */
  uploadsDuringFault: number;
  rateDuringFault: number;
  /** Seconds from healing to an empty spool, and the upload rate then. */
  secondsToDrainAfterHeal: number;
  rateAfterHeal: number;
}

export interface FaultRunOptions {
  crashes: number;
  scenarios: Scenario[];
  /** SIGTERM during a blackhole at the end: the shutdown deadline must hold. */
  shutdownCheck: boolean;
  onProgress?: (line: string) => void;
}

export interface FaultRunResult {
  scenarios: ScenarioResult[];
  heartbeat: { probes: number; slowest_ms: number; late: number; failed: number };
  shutdown?: { seconds: number; deadlineSeconds: number; exitCode: number | null };
  acknowledged: number;
  stored: number;
  problems: string[];
}

const SHUTDOWN_DEADLINE_SECONDS = 4;
const COLLECTOR_ENV = {
  SPOOL_DURABILITY: 'normal',
  // DRAIN_CONCURRENCY as shipped (32): with 8, a healthy drain (fast since checkpoints became
  // rare) outran one whose 30% of requests wait out a retry, and the two rates measured latency.
  DRAIN_RETRY_BASE_SECONDS: '0.2',
  DRAIN_RETRY_MAX_SECONDS: '1',
  STORAGE_CONNECT_TIMEOUT_SECONDS: '1',
  STORAGE_IDLE_TIMEOUT_SECONDS: '2',
  STORAGE_REQUEST_TIMEOUT_SECONDS: '5',
  SHUTDOWN_DEADLINE_SECONDS: String(SHUTDOWN_DEADLINE_SECONDS),
  LOG_LEVEL: 'info',
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls both health endpoints every 200 ms with a 1 s limit; records the slowest answer. */
class HealthWatch {
  probes = 0;
  slowestMs = 0;
  late = 0;
  failed = 0;
  private running = true;
  /** Off while the collector is deliberately down (shutdown and restart). */
  paused = false;
  private readonly done: Promise<void>;

  constructor(private readonly url: () => string) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      for (const path of this.paused ? [] : ['/__heartbeat__', '/__lbheartbeat__']) {
        const started = performance.now();
        try {
          const answer = await fetch(`${this.url()}${path}`, { signal: AbortSignal.timeout(1000) });
          await answer.text();
          if (answer.status !== 200 && answer.status !== 503) this.failed += 1;
        } catch (error) {
          if ((error as Error).name === 'TimeoutError') this.late += 1;
          else this.failed += 1;
        }
        this.probes += 1;
        this.slowestMs = Math.max(this.slowestMs, performance.now() - started);
      }
      await sleep(200);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

function uploadTimes(logs: LogLine[], from: number, to = Infinity): number[] {
  return logs
    .filter((line) => line.msg === 'crash uploaded')
    .map((line) => Date.parse(line['time'] as string))
    .filter((time) => time >= from && time <= to);
}

/**
 * The steady upload rate: uploads per second from the first upload until 80% of them were done.
 * The last crashes of a backlog are the ones that failed most often and wait out their retry
 * delays; with a backlog of a hundred crashes that tail would decide the number.
 */
function rate(times: number[], fallbackSpanMs: number): number {
  if (times.length < 5) return times.length / Math.max(fallbackSpanMs / 1000, 0.001);
  const steady = Math.ceil(times.length * 0.8);
  return (steady - 1) / Math.max((times[steady - 1]! - times[0]!) / 1000, 0.001);
}

async function pendingCrashes(collector: CollectorProcess): Promise<number> {
  return metric(await scrape(collector.url), 'crashspool_spool_crashes', { state: 'pending' });
}

async function waitForEmpty(collector: CollectorProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await pendingCrashes(collector)) === 0) return true;
    await sleep(100);
  }
  return false;
}

export async function runStorageFaults(options: FaultRunOptions): Promise<FaultRunResult> {
  const progress = options.onProgress ?? (() => undefined);
  const proxy = await FaultProxy.start(s3Settings().endpoint);
  const target: S3TestTarget = s3Target('faults');
  const spoolDir = tempDir('faults-spool');
  const env = { SPOOL_DIR: spoolDir, ...target.env, S3_ENDPOINT: proxy.url, ...COLLECTOR_ENV };
  let collector = await CollectorProcess.start(env);
  const health = new HealthWatch(() => collector.url);
  const dumps = [...loadFixtureDumps().values()].filter((dump) => dump.length < 120_000);
  const expected = new Map<string, Expected>();
  const result: FaultRunResult = { scenarios: [], heartbeat: { probes: 0, slowest_ms: 0, late: 0, failed: 0 }, acknowledged: 0, stored: 0, problems: [] };

  const postBacklog = async () => {
    let next = 0;
    const client = async () => {
      while (next < options.crashes) {
        next += 1;
        const report = makeReport(next % 3 === 0 ? 'mozilla' : 'crashpad', dumps[next % dumps.length]!, dumps[(next + 1) % dumps.length]);
        const crashId = crashIdFrom(await postReport(collector.url, report));
        expected.set(crashId, expectedFrom(report));
      }
    };
    await Promise.all(Array.from({ length: 8 }, client));
  };

  try {
    for (const scenario of options.scenarios) {
      await proxy.set({ kind: 'refuse' });
      await postBacklog();
      // The drainer has seen the refusal; let it go quiet so the switch starts from a paused drainer.
      await sleep(300);
      const faultStart = Date.now();
      await proxy.set(scenario.mode);
      progress(`${scenario.name}: ${options.crashes} crashes spooled, fault on`);
      let faultEnd: number;
      if (scenario.faultSeconds > 0) {
        await sleep(scenario.faultSeconds * 1000);
        faultEnd = Date.now();
      } else {
        if (!(await waitForEmpty(collector, 120_000))) result.problems.push(`${scenario.name}: backlog not drained within 120 s under the fault`);
        faultEnd = Date.now();
      }
      const during = uploadTimes(collector.logs, faultStart, faultEnd);
      await proxy.set({ kind: 'pass' });
      const healedAt = Date.now();
      if (!(await waitForEmpty(collector, 120_000))) result.problems.push(`${scenario.name}: spool not empty 120 s after healing`);
      const emptyAt = Date.now();
      const after = uploadTimes(collector.logs, healedAt);
      const scenarioResult: ScenarioResult = {
        name: scenario.name,
        acknowledged: options.crashes,
        uploadsDuringFault: during.length,
        rateDuringFault: Math.round(rate(during, faultEnd - faultStart) * 10) / 10,
        secondsToDrainAfterHeal: Math.round((emptyAt - healedAt) / 100) / 10,
        rateAfterHeal: Math.round(rate(after, emptyAt - healedAt) * 10) / 10,
      };
      result.scenarios.push(scenarioResult);
      progress(`${scenario.name}: ${JSON.stringify(scenarioResult)} proxy ${JSON.stringify(proxy.counts)}`);
    }

    if (options.shutdownCheck) {
      await proxy.set({ kind: 'refuse' });
      await postBacklog();
      await proxy.set({ kind: 'blackhole' });
      await sleep(1500);
      health.paused = true;
      const started = Date.now();
      collector.kill('SIGTERM');
      const exit = await collector.exited;
      result.shutdown = { seconds: (Date.now() - started) / 1000, deadlineSeconds: SHUTDOWN_DEADLINE_SECONDS, exitCode: exit.code };
      progress(`shutdown during a blackhole: ${JSON.stringify(result.shutdown)}`);
      await proxy.set({ kind: 'pass' });
      collector = await CollectorProcess.start(env);
      health.paused = false;
      if (!(await waitForEmpty(collector, 120_000))) result.problems.push('after the restart: spool not empty within 120 s');
    }
  } finally {
    await health.stop();
    await collector.stop();
    await proxy.close();
  }
  result.heartbeat = { probes: health.probes, slowest_ms: Math.round(health.slowestMs), late: health.late, failed: health.failed };

  result.acknowledged = expected.size;
  const checks = [...expected.entries()];
  const checker = async () => {
    for (let entry = checks.pop(); entry; entry = checks.pop()) {
      const problem = await storedProblem(target.reader, entry[0], entry[1]);
      if (problem) result.problems.push(`acknowledged ${entry[0]}: ${problem}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, checker));
  for await (const keys of listKeys(target.client, target.bucket, `${target.prefix}v1/raw_crash/`)) {
    for (const key of keys) {
      const crashId = key.split('/').pop()!;
      result.stored += 1;
      if (!expected.has(crashId)) result.problems.push(`raw crash ${crashId} stored but never acknowledged`);
    }
  }
  if (result.problems.length === 0) await deletePrefix(target.client, target.env['STORAGE_URL']!);
  return result;
}
