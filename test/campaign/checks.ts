/**
 * The campaign's end: with every fault healed, a last collector drains the spool to empty (dead
 * letters are requeued, as an operator would once the queue is back), then every promise is
 * checked against storage and the queues:
 * - every acknowledged crash not purged is in storage as sent (dumps byte for byte, annotations,
 *   raw crash) and was announced at least once;
 * - every purged crash is whole in storage or absent (no raw crash: Socorro never sees it);
 * - every announced crash ID has its raw crash in storage (the consumers also checked each message
 *   when they read it);
 * - no crash ID was answered for two different reports, and a retry got its first ID (traffic.ts);
 * - no collector life ended other than by the campaign's hand, and the last one exits 0 on SIGTERM;
 * - every request got an answer unless a kill cut it (traffic.ts).
 */
import { rawCrashKey } from '../../src/storage/storage-keys.js';
import { CollectorProcess } from '../helpers/collector-process.js';
import type { QueueConsumer } from '../helpers/queue-consumer.js';
import type { Run } from '../helpers/spool-inspect-cli.js';
import { storedProblem, type ObjectReader } from '../helpers/stored-crashes.js';
import { checksumProblem } from '../fuzz/harness.js';
import type { LifeRecord, Sample } from './campaign.js';
import type { Operator } from './operator.js';
import type { AckedCrash, Traffic } from './traffic.js';

export interface CheckInputs {
  env: Record<string, string>;
  port: number;
  spoolDir: string;
  spoolCounts: () => Omit<Sample, 'at'> | undefined;
  requeueDead: () => Promise<Run>;
  traffic: Traffic;
  operator: Operator;
  lives: LifeRecord[];
  /** Per queue kind, its consumer. */
  consumers: ReadonlyMap<string, QueueConsumer>;
  reader: ObjectReader;
  samples: Sample[];
  /** Per crash ID, what the collectors logged of it; the last collector adds its own. */
  evidence: Map<string, string[]>;
  /** The queue kind the last collector announces on. */
  finalQueue: string;
  progress: (line: string) => void;
}

export interface CampaignChecks {
  problems: string[];
  /** `consumersSeconds`: how long the consumers were waited for after the spool emptied. */
  finalDrain: { drained: boolean; seconds: number; requeueRuns: number; left: Omit<Sample, 'at'> | undefined; consumersSeconds: number };
  finalExit: { code: number | null; signal: string | null } | null;
  acked: number;
  purged: { total: number; whole: number; absent: number };
  /** Acknowledged, not purged, and not in storage as sent: crash ID → why. */
  lost: Record<string, string>;
  unannounced: string[];
  /** Every lost or unannounced crash with what the collectors logged of it (the problems list shows the first few). */
  unaccounted: { crash_id: string; problem: string; logged: string[] }[];
  announced: { ids: number; messages: number; duplicates: number; unacknowledged: number };
}

const DRAIN_LIMIT_MS = 10 * 60_000;
/** The consumers are waited for while they still read crash IDs new to them, until none came for this long... */
const ANNOUNCE_QUIET_MS = 60_000;
/** ...but no longer than this after the spool emptied. */
const ANNOUNCE_WAIT_LIMIT_MS = 10 * 60_000;
/** Keeps what a collector logged of each crash (accepted, uploaded, published...) under `label`. */
export function recordEvidence(evidence: Map<string, string[]>, label: string, logs: readonly Record<string, unknown>[]): void {
  for (const line of logs) {
    if (typeof line['crash_id'] !== 'string' || !/^(stored )?crash /.test(String(line['msg']))) continue;
    const lines = evidence.get(line['crash_id']) ?? [];
    lines.push(`${label}: ${String(line['msg'])}`);
    evidence.set(line['crash_id'], lines);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function eachLimited<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

/** Why the crash is not in storage as sent (hostile: as recorded at receipt), or undefined. */
function problemOf(reader: ObjectReader, crash: AckedCrash): Promise<string | undefined> {
  return (crash.expected ? storedProblem(reader, crash.crashId, crash.expected) : checksumProblem(reader, crash.crashId)).catch(
    (error: Error) => `reading it failed: ${error.message}`,
  );
}

export async function checkCampaign(inputs: CheckInputs): Promise<CampaignChecks> {
  const { traffic, operator, reader, progress } = inputs;
  const problems: string[] = [];
  for (const life of inputs.lives) if (life.unexpected) problems.push(`life ${life.index} (${life.ending} at ${life.moment}): ${life.unexpected}`);

  // The last collector: it must start on whatever the last life left, and drain it.
  const drainStart = Date.now();
  let final: CollectorProcess | undefined;
  try {
    final = await CollectorProcess.start(inputs.env, inputs.port, [], 120_000);
  } catch (error) {
    problems.push(`the last collector did not start: ${(error as Error).message.slice(0, 1000)}`);
  }
  let drained = false;
  let requeueRuns = 0;
  let left = inputs.spoolCounts();
  while (final && Date.now() - drainStart < DRAIN_LIMIT_MS) {
    left = inputs.spoolCounts();
    if (left) inputs.samples.push({ at: Date.now(), ...left });
    if (left && left.pending + left.stored + left.dead === 0) {
      drained = true;
      break;
    }
    if (left && left.dead > 0) {
      requeueRuns += 1;
      const run = await inputs.requeueDead();
      if (run.code !== 0) problems.push(`requeue --all-dead at the end: exit ${run.code}: ${run.stderr.slice(-300)}`);
    }
    await sleep(1000);
  }
  const finalDrain = { drained, seconds: (Date.now() - drainStart) / 1000, requeueRuns, left, consumersSeconds: 0 };
  if (final && !drained) problems.push(`the spool was not empty ${DRAIN_LIMIT_MS / 1000} s after every fault healed: ${JSON.stringify(left)}`);
  progress(`drained in ${finalDrain.seconds.toFixed(1)} s; waiting for the consumers`);

  for (const crashId of operator.purged) {
    const crash = traffic.acked.get(crashId);
    if (crash) crash.purged = true;
  }
  const acked = [...traffic.acked.values()];
  const seen = () => {
    const ids = new Map<string, number>();
    for (const consumer of inputs.consumers.values()) for (const [id, count] of consumer.seen) ids.set(id, (ids.get(id) ?? 0) + count);
    return ids;
  };
  // A last collector that drained a backlog published it in a burst the consumers read for a while.
  const waitStart = Date.now();
  let lastGrowth = waitStart;
  let seenBefore = -1;
  for (;;) {
    const ids = seen();
    if (!acked.some((crash) => !crash.purged && !ids.has(crash.crashId))) break;
    if (ids.size > seenBefore) {
      seenBefore = ids.size;
      lastGrowth = Date.now();
    }
    if (Date.now() - lastGrowth > ANNOUNCE_QUIET_MS || Date.now() - waitStart > ANNOUNCE_WAIT_LIMIT_MS) break;
    await sleep(500);
  }
  finalDrain.consumersSeconds = (Date.now() - waitStart) / 1000;
  progress(`waited ${finalDrain.consumersSeconds.toFixed(1)} s for the consumers`);

  let finalExit: CampaignChecks['finalExit'] = null;
  if (final) {
    recordEvidence(inputs.evidence, `the last collector (${inputs.finalQueue})`, final.logs);
    final.kill('SIGTERM');
    const exit = await Promise.race([final.exited, sleep(30_000).then(() => undefined)]);
    if (!exit) {
      problems.push('the last collector still ran 30 s after SIGTERM');
      await final.stop();
    } else {
      finalExit = { code: exit.code, signal: exit.signal };
      if (exit.code !== 0) problems.push(`the last collector exited ${exit.code ?? exit.signal} on SIGTERM: ${final.stderr.slice(-500)}`);
    }
  }

  progress(`checking ${acked.length} acknowledged crashes in storage`);
  const announcedIds = seen();
  const lost: Record<string, string> = {};
  const purged = { total: 0, whole: 0, absent: 0 };
  const unannounced: string[] = [];
  await eachLimited(acked, 16, async (crash) => {
    if (crash.purged) {
      purged.total += 1;
      let raw: Buffer | undefined;
      try {
        raw = await reader.get(rawCrashKey(crash.crashId));
      } catch (error) {
        problems.push(`purged ${crash.crashId}: reading its raw crash failed: ${(error as Error).message}`);
        return;
      }
      if (!raw) {
        purged.absent += 1;
        return;
      }
      const problem = await problemOf(reader, crash);
      if (problem) problems.push(`purged ${crash.crashId} is in storage, but not whole: ${problem}`);
      else purged.whole += 1;
      return;
    }
    const problem = await problemOf(reader, crash);
    if (problem) lost[crash.crashId] = problem;
    if (!announcedIds.has(crash.crashId)) unannounced.push(crash.crashId);
  });
  const story = (crashId: string) => {
    const crash = traffic.acked.get(crashId)!;
    return `${crash.style}, acknowledged in life ${crash.life}; logged: ${(inputs.evidence.get(crashId) ?? ['nothing']).join('; ')}`;
  };
  for (const [crashId, problem] of Object.entries(lost).slice(0, 20)) problems.push(`acknowledged ${crashId} lost: ${problem} (${story(crashId)})`);
  if (unannounced.length > 0) problems.push(`${unannounced.length} acknowledged crashes never announced`);
  for (const crashId of unannounced.slice(0, 10)) problems.push(`never announced: ${crashId} (${story(crashId)})`);
  // A consumer that stopped reading looks like unannounced crashes: say what each one did.
  if (unannounced.length > 0) for (const [kind, consumer] of inputs.consumers) problems.push(consumer.describe(kind));

  const unaccounted = [
    ...Object.entries(lost).map(([crashId, problem]) => ({ crash_id: crashId, problem: `lost: ${problem}` })),
    ...unannounced.map((crashId) => ({ crash_id: crashId, problem: 'never announced' })),
  ].map((entry) => ({ ...entry, logged: inputs.evidence.get(entry.crash_id) ?? [] }));

  // Announced but not acknowledged: spooled before a kill cut their answer. Each must be stored whole too.
  const unacknowledged = [...announcedIds.keys()].filter((crashId) => !traffic.acked.has(crashId));
  await eachLimited(unacknowledged, 16, async (crashId) => {
    const problem = await checksumProblem(reader, crashId).catch((error: Error) => `reading it failed: ${error.message}`);
    if (problem) problems.push(`${crashId} was announced but is not whole in storage: ${problem}`);
  });
  for (const consumer of inputs.consumers.values()) {
    await consumer.checked();
    problems.push(...consumer.problems);
  }

  for (const retry of traffic.retries.newIdAfterAck) {
    if (!operator.purged.has(retry.first)) problems.push(`a retry of the report answered ${retry.first} was answered ${retry.second} (I10)`);
  }
  problems.push(...traffic.problems, ...operator.problems.map((problem) => `operator: ${problem}`));

  const messages = [...announcedIds.values()].reduce((sum, count) => sum + count, 0);
  return {
    problems,
    finalDrain,
    finalExit,
    acked: acked.length,
    purged,
    lost,
    unannounced,
    unaccounted,
    announced: { ids: announcedIds.size, messages, duplicates: messages - announcedIds.size, unacknowledged: unacknowledged.length },
  };
}
