/**
 * The campaign's schedule: one plan per collector life, drawn from the seed alone. Which faults
 * are switched on, how the life ends, at what moment, and what the operator does are decided
 * here; only how long a trigger takes to come depends on the machine. The same seed therefore
 * replays the same sequence of lives (a shorter run is a prefix of a longer one), and each plan
 * is written to `schedule.jsonl` so that two runs can be compared line by line.
 */
import { seededRandom } from '../helpers/random.js';

export type QueueKind = 'sqs' | 'amqp' | 'pubsub';
export type Ending = 'SIGKILL' | 'SIGTERM' | 'power cut';
/**
 * When the ending comes: during start-up (before or while the spool is opened and recovered),
 * right after a commit is acknowledged, as an upload reaches storage, as a publish reaches the
 * queue, as a WAL checkpoint writes the spool's main file, or at any instant.
 */
export type Moment = 'start-up' | 'ack' | 'upload' | 'publish' | 'checkpoint' | 'any time';
export type OperatorAction = 'summary' | 'list' | 'show' | 'export' | 'requeue dead' | 'purge pending' | 'purge stored';

/** Switch a layer's fault: keep what is on, heal it, or switch this fault on. */
export type FaultChange = { to: 'keep' } | { to: 'heal' } | { to: 'fault'; name: string };

export interface LifePlan {
  index: number;
  /** The queue this life announces on; the kinds take turns in segments of several lives. */
  queue: QueueKind;
  queueFault: FaultChange;
  storageFault: FaultChange;
  /** A second storage switch during the life, this many ms after it is ready. */
  storageMidLife?: { atMs: number; change: FaultChange };
  ending: Ending;
  moment: Moment;
  /** From ready to arming the trigger (start-up: from spawn to the ending), ms. */
  settleMs: number;
  /** Extra wait after the trigger fires, ms (0–5): lands a little inside what it announced. */
  afterTriggerMs: number;
  operator: { atMs: number; action: OperatorAction }[];
  /** After the life: `spool-inspect drain` on the stopped node's spool, for this long at most. */
  drainSeconds?: number;
}

export interface ScheduleOptions {
  queues: readonly QueueKind[];
  storageFaults: readonly string[];
  queueFaults: Readonly<Record<QueueKind, readonly string[]>>;
  powerCuts: boolean;
}

const MOMENTS: Moment[] = ['start-up', 'ack', 'upload', 'publish', 'checkpoint', 'any time'];
const ACTIONS: [OperatorAction, number][] = [
  ['summary', 3],
  ['list', 3],
  ['show', 2],
  ['export', 2],
  ['requeue dead', 2],
  ['purge pending', 2],
  ['purge stored', 1],
];

/** The plans of a campaign, life after life, for as long as it is asked. */
export function* schedule(seed: number, options: ScheduleOptions): Generator<LifePlan> {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const between = (low: number, high: number) => Math.floor(low + random() * (high - low));
  const weighted = <T>(entries: readonly [T, number][]): T => {
    let roll = random() * entries.reduce((sum, [, weight]) => sum + weight, 0);
    for (const [item, weight] of entries) if ((roll -= weight) < 0) return item;
    return entries.at(-1)![0];
  };
  const change = (faults: readonly string[], faultShare: number, healShare: number): FaultChange => {
    const roll = random();
    if (roll < faultShare) return { to: 'fault', name: pick(faults) };
    return roll < faultShare + healShare ? { to: 'heal' } : { to: 'keep' };
  };

  let segment = 0;
  let segmentLeft = 0;
  for (let index = 0; ; index += 1) {
    if (segmentLeft === 0) {
      segmentLeft = between(6, 16);
      if (index > 0) segment += 1;
    }
    segmentLeft -= 1;
    const queue = options.queues[segment % options.queues.length]!;
    const ending: Ending = options.powerCuts && random() < 0.1 ? 'power cut' : random() < 0.22 ? 'SIGTERM' : 'SIGKILL';
    const moment = pick(MOMENTS);
    const settleMs = moment === 'start-up' ? between(0, 400) : between(100, 1200);
    const storageFault = change(options.storageFaults, 0.4, 0.35);
    const midLife = random() < 0.25 ? { atMs: between(50, 1000), change: change(options.storageFaults, 0.6, 0.4) } : undefined;
    const operator = Array.from({ length: between(0, 3) }, () => ({ atMs: between(0, 1500), action: weighted(ACTIONS) }));
    const drain = random() < 0.08 ? between(1, 4) : undefined;
    yield {
      index,
      queue,
      queueFault: change(options.queueFaults[queue], 0.4, 0.35),
      storageFault,
      ...(midLife ? { storageMidLife: midLife } : {}),
      ending,
      moment,
      settleMs,
      afterTriggerMs: between(0, 6),
      operator,
      ...(drain !== undefined ? { drainSeconds: drain } : {}),
    };
  }
}
