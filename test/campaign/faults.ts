/**
 * The faults a campaign switches on and off: storage through the fault proxy in front of Ceph RGW,
 * and each queue through its own proxy (the queue-fault suite's scenarios, reused as they are).
 * Every switch is recorded with its time, so the report can count and shade them.
 */
import { FaultProxy, type FaultMode } from '../helpers/fault-proxy.js';
import { QueueConsumer } from '../helpers/queue-consumer.js';
import { amqpQueue, pubsubQueue, queueSettings, sqsQueue } from '../helpers/queues.js';
import type { ObjectReader } from '../helpers/stored-crashes.js';
import { TcpFaultProxy } from '../helpers/tcp-fault-proxy.js';
import { scenarios, type QueueScenario, type Rig } from '../queue-faults/harness.js';
import type { FaultChange, QueueKind } from './schedule.js';

export const STORAGE_FAULTS: Record<string, FaultMode> = {
  'flaky 5xx (30%)': { kind: 'flaky', failRatio: 0.3, maxDelayMs: 100 },
  'flaky 5xx (90%)': { kind: 'flaky', failRatio: 0.9, maxDelayMs: 100 },
  'stored, then 500': { kind: 'stored-then-fail', failRatio: 0.5 },
  blackhole: { kind: 'blackhole' },
  'stall mid-answer': { kind: 'stall', afterBytes: 20 },
  'cut mid-answer': { kind: 'cut', afterBytes: 30 },
  'latency 300 ms': { kind: 'latency', ms: 300 },
  refused: { kind: 'refuse' },
};

/** The RabbitMQ queue's length limit (reject-publish), which the "queue full" fault fills. */
const AMQP_MAX_LENGTH = 100;

/** One switch of a fault, for the report and the timeline. */
export interface FaultSwitch {
  at: number;
  layer: 'storage' | `queue:${QueueKind}`;
  /** The fault switched on, or null when healed. */
  fault: string | null;
}

export class StorageFaults {
  active: string | null = null;
  readonly switches: FaultSwitch[] = [];
  readonly injected: Record<string, number> = {};
  /** Switches that failed (the proxy could not listen again, say). */
  readonly problems: string[] = [];
  private queue: Promise<void> = Promise.resolve();

  private constructor(readonly proxy: FaultProxy) {}

  static async start(upstream: string, port?: number): Promise<StorageFaults> {
    return new StorageFaults(await FaultProxy.start(upstream, port));
  }

  /** Switches in the order asked (a mid-life switch may be asked from a timer); never rejects. */
  apply(change: FaultChange): Promise<void> {
    this.queue = this.queue.then(() => this.switch(change)).catch((error: Error) => void this.problems.push(`switching storage to ${JSON.stringify(change)} failed: ${error.message}`));
    return this.queue;
  }

  /** Heals whatever is on, and makes sure the proxy forwards. */
  async healAll(): Promise<void> {
    await this.apply({ to: 'heal' });
    await this.proxy.set({ kind: 'pass' });
  }

  private async switch(change: FaultChange): Promise<void> {
    if (change.to === 'keep') return;
    const fault = change.to === 'heal' ? null : change.name;
    if (fault === this.active) return;
    await this.proxy.set(fault === null ? { kind: 'pass' } : STORAGE_FAULTS[fault]!);
    this.active = fault;
    this.switches.push({ at: Date.now(), layer: 'storage', fault });
    if (fault !== null) this.injected[fault] = (this.injected[fault] ?? 0) + 1;
  }

  async close(): Promise<void> {
    await this.proxy.close();
  }
}

/** One queue kind: the queue, the proxy in front of it, a consumer, and the fault now on. */
export class QueueRig {
  active: { scenario: QueueScenario; heal: () => Promise<void> } | null = null;
  readonly faults: Map<string, QueueScenario>;

  private constructor(
    readonly kind: QueueKind,
    readonly rig: Rig & { consumer: QueueConsumer },
    private readonly switches: FaultSwitch[],
    private readonly injected: Record<string, number>,
  ) {
    this.faults = new Map(scenarios([kind]).filter((scenario) => scenario.name !== 'healthy').map((scenario) => [scenario.name, scenario]));
  }

  /** `port`: the proxy's (it listens there again after a refusal). */
  static async start(kind: QueueKind, storage: ObjectReader, switches: FaultSwitch[], injected: Record<string, number>, port?: number): Promise<QueueRig> {
    const queue =
      kind === 'sqs' ? await sqsQueue() : kind === 'pubsub' ? await pubsubQueue() : await amqpQueue({ 'x-max-length': AMQP_MAX_LENGTH, 'x-overflow': 'reject-publish' });
    const consumer = new QueueConsumer(queue, storage);
    if (kind === 'amqp') {
      const tcp = await TcpFaultProxy.start(Number(new URL(queueSettings().amqpUrl).port), port);
      return new QueueRig(kind, { queue, consumer, tcp }, switches, injected);
    }
    const http = await FaultProxy.start(kind === 'sqs' ? queueSettings().sqsEndpoint : `http://${process.env['PUBSUB_EMULATOR_HOST']}`, port);
    return new QueueRig(kind, { queue, consumer, http }, switches, injected);
  }

  /** The collector's environment that announces here, through the proxy. */
  publishEnv(): Record<string, string> {
    return this.rig.http ? this.rig.queue.publishEnv(this.rig.http.url) : this.rig.queue.publishEnv(this.rig.tcp!.port);
  }

  async apply(change: FaultChange): Promise<void> {
    if (change.to === 'keep') return;
    const name = change.to === 'heal' ? null : change.name;
    if (name === (this.active?.scenario.name ?? null)) return;
    if (this.active) await this.active.heal();
    this.active = null;
    if (name !== null) {
      const scenario = this.faults.get(name)!;
      this.active = { scenario, heal: await scenario.inject(this.rig) };
      const key = `${this.kind}: ${name}`;
      this.injected[key] = (this.injected[key] ?? 0) + 1;
    }
    this.switches.push({ at: Date.now(), layer: `queue:${this.kind}`, fault: name });
  }

  async close(): Promise<void> {
    await this.apply({ to: 'heal' });
    await this.rig.consumer.stop();
    await this.rig.http?.close();
    await this.rig.tcp?.close();
    await this.rig.queue.close();
  }
}
