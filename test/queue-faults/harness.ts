/**
 * Queue faults against the real collector, the real queues (fauxqs speaking SQS, RabbitMQ, the
 * Pub/Sub emulator) and Ceph RGW, with a fault proxy in front of the queue (fault-proxy.ts with
 * sqs-replies.ts or pubsub-replies.ts for SQS and Pub/Sub, tcp-fault-proxy.ts for AMQP) — the announce leg's counterpart of the storage-fault suite. For each
 * queue kind, one collector lives through every scenario: the fault is switched on; crashes are
 * posted for `faultSeconds` while `/__heartbeat__` is sampled; the fault heals; every crash posted
 * meanwhile must be announced. A consumer reads the queue throughout, as Socorro's processor does,
 * and checks each message when it reads it: a crash ID whose raw crash is already in storage. At
 * the end a SIGTERM during a frozen queue must exit within the shutdown deadline, a restart
 * announces what was left, and every acknowledged crash must have been announced at least once,
 * by a collector that never exited on its own.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { FaultProxy, type FaultMode } from '../helpers/fault-proxy.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { checksOf } from '../helpers/heartbeat.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { makeReport } from '../helpers/multipart.js';
import { amqpQueue, pubsubQueue, queueSettings, sqsQueue, type AmqpTestQueue, type TestQueue } from '../helpers/queues.js';
import { pubsubReplies } from '../helpers/pubsub-replies.js';
import { QueueConsumer } from '../helpers/queue-consumer.js';
import { sqsReplies } from '../helpers/sqs-replies.js';
import { deletePrefix, s3Target } from '../helpers/stored-crashes.js';
import { TcpFaultProxy } from '../helpers/tcp-fault-proxy.js';

export type QueueKind = 'sqs' | 'amqp' | 'pubsub';

/** What a scenario can reach: the queue, and the proxy in front of it. */
export interface Rig {
  queue: TestQueue;
  http?: FaultProxy;
  tcp?: TcpFaultProxy;
  /** The consumer stops reading (the processors are down) until `resume`; `readAll` reads what is there now. */
  consumer: { pause(): void; resume(): void; readAll(): Promise<number> };
}

export interface QueueScenario {
  kind: QueueKind;
  name: string;
  /** Whether the queue takes nothing during the fault (the heartbeat must then fail). */
  outage: boolean;
  /** Switches the fault on; resolves with the heal. */
  inject(rig: Rig): Promise<() => Promise<void>>;
}

export interface ScenarioResult {
  kind: QueueKind;
  name: string;
  posted: number;
  /** Of the crashes posted during the fault, those announced before it healed. */
  announcedDuringFault: number;
  /** Stored crashes waiting for the queue when the fault healed. */
  waitingAtHeal: number;
  /** From the heal to the last of the scenario's crashes announced. */
  secondsToAnnounce: number;
  /** SQS: calls that reached the proxy during the fault; AMQP: not counted. */
  callsDuringFault: number | null;
  /** Heartbeat samples during the fault, and those whose queue check failed. */
  heartbeats: number;
  heartbeatFailing: number;
}

export interface QueueFaultResult {
  scenarios: ScenarioResult[];
  shutdown: { kind: QueueKind; seconds: number; deadlineSeconds: number; exitCode: number | null; leftStored: number }[];
  acknowledged: number;
  announced: number;
  repeats: number;
  /** crashspool_publish_failures_total by queue kind and reason, over all scenarios. */
  publishFailures: Record<string, number>;
  problems: string[];
}

export interface QueueFaultOptions {
  faultSeconds: number;
  kinds: QueueKind[];
  onProgress?: (line: string) => void;
}

const SHUTDOWN_DEADLINE_SECONDS = 2;
/** Announcing must resume this soon after a heal: the announcer's pause is at most 5 s, retries at most DRAIN_RETRY_MAX_SECONDS. */
const HEAL_SECONDS = 30;
/** The RabbitMQ queue's length limit (x-overflow: reject-publish): the "queue full" scenario fills it. */
const AMQP_MAX_LENGTH = 100;
const COLLECTOR_ENV = {
  SPOOL_DURABILITY: 'normal',
  DRAIN_RETRY_BASE_SECONDS: '0.5',
  DRAIN_RETRY_MAX_SECONDS: '5',
  // Refusals of one crash run through the whole fault; the dead letter has a test of its own.
  DRAIN_MAX_ATTEMPTS: '1000',
  PUBLISH_CONNECT_TIMEOUT_SECONDS: '1',
  PUBLISH_TIMEOUT_SECONDS: '2',
  SHUTDOWN_DEADLINE_SECONDS: String(SHUTDOWN_DEADLINE_SECONDS),
};

/** Crash IDs whose first hex digit is below 8: about half, refused by the "refuses some crashes" scenario. */
const someCrashes = (crashId: string) => parseInt(crashId[0]!, 16) < 8;

export function scenarios(kinds: readonly QueueKind[]): QueueScenario[] {
  const http = (kind: 'sqs' | 'pubsub', name: string, outage: boolean, mode: () => FaultMode): QueueScenario => ({
    kind,
    name,
    outage,
    async inject({ http: proxy }) {
      await proxy!.set(mode());
      return () => proxy!.set({ kind: 'pass' });
    },
  });
  const all: QueueScenario[] = [
    http('sqs', 'healthy', false, () => ({ kind: 'pass' })),
    http('sqs', 'refused (port closed)', true, () => ({ kind: 'refuse' })),
    http('sqs', 'frozen (no answer)', true, () => ({ kind: 'blackhole' })),
    http('sqs', 'cut mid-answer', true, () => ({ kind: 'cut', afterBytes: 30 })),
    http('sqs', 'answers 5xx', true, () => ({ kind: 'flaky', failRatio: 1 })),
    http('sqs', 'names entries never sent', false, sqsReplies.unknownId),
    http('sqs', 'accounts for none (200 {})', true, sqsReplies.accountsForNone),
    http('sqs', 'leaves one entry out', false, sqsReplies.dropsOne),
    http('sqs', 'answer not JSON', true, sqsReplies.garbage),
    http('sqs', 'refuses some crashes (sender fault)', false, () => sqsReplies.refuse(someCrashes)),
    http('pubsub', 'healthy', false, () => ({ kind: 'pass' })),
    http('pubsub', 'refused (port closed)', true, () => ({ kind: 'refuse' })),
    http('pubsub', 'frozen (no answer)', true, () => ({ kind: 'blackhole' })),
    http('pubsub', 'cut mid-answer', true, () => ({ kind: 'cut', afterBytes: 30 })),
    http('pubsub', 'answers 5xx', true, () => ({ kind: 'flaky', failRatio: 1 })),
    http('pubsub', 'accounts for none (200 {})', true, pubsubReplies.accountsForNone),
    http('pubsub', 'one message ID short', true, pubsubReplies.dropsOne),
    http('pubsub', 'answer not JSON', true, pubsubReplies.garbage),
    http('pubsub', 'refuses some crashes (INVALID_ARGUMENT)', false, () => pubsubReplies.refuse(someCrashes)),
    ...(['refused (port closed)', 'frozen (connection alive)'] as const).map(
      (name): QueueScenario => ({
        kind: 'amqp',
        name,
        outage: true,
        async inject({ tcp }) {
          await tcp!.set(name.startsWith('refused') ? 'refuse' : 'freeze');
          return () => tcp!.set('pass');
        },
      }),
    ),
    {
      kind: 'amqp',
      name: 'cut mid-confirm',
      outage: false,
      async inject({ tcp }) {
        const rearm = setInterval(() => tcp!.cutNextReply(), 200);
        tcp!.cutNextReply();
        return async () => clearInterval(rearm);
      },
    },
    {
      kind: 'amqp',
      name: 'queue deleted (unroutable)',
      outage: true,
      async inject({ queue, tcp, consumer }) {
        // Held at the proxy, no publish reaches the queue while the consumer takes what it holds:
        // the deletion destroys no announcement (a broker's loss is not the collector's).
        await tcp!.set('freeze');
        // What passed just before may still be routed: read until two passes 300 ms apart find nothing.
        for (let quiet = 0; quiet < 2; ) {
          await sleep(300);
          quiet = (await consumer.readAll()) === 0 ? quiet + 1 : 0;
        }
        await (queue as AmqpTestQueue).deleteQueue();
        await tcp!.set('pass');
        return () => (queue as AmqpTestQueue).declareQueue();
      },
    },
    {
      kind: 'amqp',
      name: `queue full (reject-publish, ${AMQP_MAX_LENGTH})`,
      outage: true,
      async inject({ queue, consumer }) {
        consumer.pause();
        await (queue as AmqpTestQueue).fill(AMQP_MAX_LENGTH);
        return async () => consumer.resume();
      },
    },
  ];
  return all.filter((scenario) => kinds.includes(scenario.kind));
}

export async function runQueueFaults(options: QueueFaultOptions): Promise<QueueFaultResult> {
  const progress = options.onProgress ?? (() => undefined);
  const result: QueueFaultResult = { scenarios: [], shutdown: [], acknowledged: 0, announced: 0, repeats: 0, publishFailures: {}, problems: [] };
  for (const kind of options.kinds) await runKind(kind, options, result, progress);
  return result;
}

async function runKind(kind: QueueKind, options: QueueFaultOptions, result: QueueFaultResult, progress: (line: string) => void): Promise<void> {
  const dumps = [...loadFixtureDumps().values()].filter((dump) => dump.length < 100_000);
  const spool = tempDir(`queue-faults-${kind}`);
  const target = s3Target(`queue-faults-${kind}`);
  const queue = kind === 'sqs' ? await sqsQueue() : kind === 'pubsub' ? await pubsubQueue() : await amqpQueue({ 'x-max-length': AMQP_MAX_LENGTH, 'x-overflow': 'reject-publish' });
  const http =
    kind === 'sqs' ? await FaultProxy.start(queueSettings().sqsEndpoint) : kind === 'pubsub' ? await FaultProxy.start(`http://${process.env['PUBSUB_EMULATOR_HOST']}`) : undefined;
  const tcp = kind === 'amqp' ? await TcpFaultProxy.start(Number(new URL(queueSettings().amqpUrl).port)) : undefined;
  const consumer = new QueueConsumer(queue, target.reader);
  const rig: Rig = { queue, consumer, ...(http ? { http } : {}), ...(tcp ? { tcp } : {}) };
  const env = { ...target.env, ...COLLECTOR_ENV, SPOOL_DIR: spool, ...(http ? queue.publishEnv(http.url) : queue.publishEnv(tcp!.port)) };
  const acked: string[] = [];
  let collector = await CollectorProcess.start(env);
  const post = async () => {
    const report = makeReport(acked.length % 2 === 0 ? 'breakpad' : 'crashpad', dumps[acked.length % dumps.length]!);
    const crashId = crashIdFrom(await postReport(collector.url, report));
    acked.push(crashId);
    return crashId;
  };
  const announced = (ids: readonly string[]) => ids.filter((crashId) => consumer.seen.has(crashId)).length;
  const untilAnnounced = async (ids: readonly string[], seconds: number) => {
    const deadline = Date.now() + seconds * 1000;
    while (announced(ids) < ids.length && Date.now() < deadline) await sleep(100);
    return announced(ids) === ids.length;
  };
  const stillRunning = (when: string) => {
    if (collector.child.exitCode !== null || collector.child.signalCode !== null) {
      result.problems.push(`${kind}: the collector exited ${when}: ${collector.stderr.slice(-500)} ${JSON.stringify(collector.logs.slice(-3))}`);
      return false;
    }
    return true;
  };

  try {
    for (const scenario of scenarios([kind])) {
      progress(`${kind}: ${scenario.name}`);
      const heal = await scenario.inject(rig);
      const callsBefore = http?.requests.length ?? 0;
      const posted: string[] = [];
      let heartbeats = 0;
      let heartbeatFailing = 0;
      const until = Date.now() + options.faultSeconds * 1000;
      while (Date.now() < until) {
        posted.push(await post());
        const answer = await fetch(`${collector.url}/__heartbeat__`, { headers: { Connection: 'close' } });
        heartbeats += 1;
        if (!checksOf(await answer.json())['queue']?.ok) heartbeatFailing += 1;
        await sleep(250);
      }
      const callsDuringFault = http ? http.requests.length - callsBefore : null;
      const announcedDuringFault = announced(posted);
      const waitingAtHeal = metric(await scrape(collector.url), 'crashspool_spool_crashes', { state: 'stored' });
      await heal();
      const healed = Date.now();
      const complete = await untilAnnounced(posted, HEAL_SECONDS);
      const row: ScenarioResult = {
        kind,
        name: scenario.name,
        posted: posted.length,
        announcedDuringFault,
        waitingAtHeal,
        secondsToAnnounce: (Date.now() - healed) / 1000,
        callsDuringFault,
        heartbeats,
        heartbeatFailing,
      };
      result.scenarios.push(row);
      progress(`  ${JSON.stringify(row)}`);
      if (!complete) result.problems.push(`${kind}: ${scenario.name}: ${posted.length - announced(posted)} of ${posted.length} crashes not announced ${HEAL_SECONDS} s after the heal`);
      if (scenario.outage && heartbeatFailing === 0) result.problems.push(`${kind}: ${scenario.name}: the heartbeat's queue check never failed`);
      if (!stillRunning(`during "${scenario.name}"`)) return;
    }

    // What every scenario above cost, as the collector counted it.
    const text = await scrape(collector.url);
    for (const reason of ['refused', 'timeout', 'denied', 'error', 'malformed', 'rejected', 'unroutable', 'nacked', 'unaccounted']) {
      const count = metric(text, 'crashspool_publish_failures_total', { reason });
      if (count > 0) result.publishFailures[`${kind}:${reason}`] = count;
    }

    // SIGTERM while the queue hangs: the deadline holds, and a restart announces what was left.
    progress(`${kind}: SIGTERM while the queue hangs`);
    if (http) await http.set({ kind: 'blackhole' });
    else await tcp!.set('freeze');
    const left = [await post(), await post(), await post()];
    const stopping = Date.now();
    collector.kill('SIGTERM');
    const exit = await Promise.race([collector.exited, sleep((SHUTDOWN_DEADLINE_SECONDS + 15) * 1000).then(() => undefined)]);
    const seconds = (Date.now() - stopping) / 1000;
    if (!exit) {
      result.problems.push(`${kind}: still running ${seconds} s after SIGTERM with a ${SHUTDOWN_DEADLINE_SECONDS} s deadline`);
      await collector.stop();
    }
    const complete = collector.logs.find((line) => String(line.msg).startsWith('shutdown complete'));
    result.shutdown.push({ kind, seconds, deadlineSeconds: SHUTDOWN_DEADLINE_SECONDS, exitCode: exit?.code ?? null, leftStored: Number(complete?.['left_stored'] ?? -1) });
    if (exit && exit.code !== 0) result.problems.push(`${kind}: exit ${exit.code} after SIGTERM`);
    if (http) await http.set({ kind: 'pass' });
    else await tcp!.set('pass');
    collector = await CollectorProcess.start(env);
    if (!(await untilAnnounced(left, HEAL_SECONDS))) result.problems.push(`${kind}: crashes left at SIGTERM not announced after the restart`);
    if (!(await untilAnnounced(acked, HEAL_SECONDS))) {
      const missing = acked.filter((crashId) => !consumer.seen.has(crashId));
      result.problems.push(`${kind}: ${missing.length} acknowledged crashes never announced, e.g. ${missing.slice(0, 3).join(', ')}`);
    }
    stillRunning('after the restart');
  } finally {
    await collector.stop();
    await consumer.stop();
    result.problems.push(...consumer.problems.map((problem) => `${kind}: ${problem}`));
    const unacknowledged = [...consumer.seen.keys()].filter((crashId) => !acked.includes(crashId));
    if (unacknowledged.length > 0) result.problems.push(`${kind}: announced but never acknowledged: ${unacknowledged.slice(0, 3).join(', ')}`);
    result.acknowledged += acked.length;
    result.announced += acked.filter((crashId) => consumer.seen.has(crashId)).length;
    result.repeats += [...consumer.seen.values()].reduce((sum, count) => sum + count - 1, 0);
    await http?.close();
    await tcp?.close();
    await queue.close();
    await deletePrefix(target.client, target.env['STORAGE_URL']!).catch(() => undefined);
  }
}

/** The scenarios as a table for people, one row each. */
export function table(result: QueueFaultResult): string {
  const header = ['queue', 'fault', 'posted', 'announced during', 'waiting at heal', 's to announce after heal', 'queue calls during', 'heartbeat failing'];
  const rows = result.scenarios.map((row) => [
    row.kind,
    row.name,
    String(row.posted),
    String(row.announcedDuringFault),
    String(row.waitingAtHeal),
    row.secondsToAnnounce.toFixed(1),
    row.callsDuringFault === null ? '-' : String(row.callsDuringFault),
    `${row.heartbeatFailing}/${row.heartbeats}`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
