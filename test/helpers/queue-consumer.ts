/**
 * A consumer of a test queue that reads it all along, as Socorro's processor does, and checks each
 * message as it reads it: a crash ID whose raw crash is in storage already (I13: a crash is
 * announced only once it is stored). Messages starting "filler " are a test's own and skipped.
 *
 * A read pass that hangs (a request that never returns) is given up after `passTimeoutMs`, and the
 * queue is told (`abandon`), so that one stuck request cannot silence the consumer for the rest of
 * a run: what the pass held but had not yet counted comes back on the queue (SQS visibility
 * timeout, AMQP requeue on channel close, Pub/Sub ack deadline).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isCrashId } from '../../src/crash-id.js';
import { within } from '../../src/within.js';
import { rawCrashKey } from '../../src/storage/storage-keys.js';
import type { TestQueue } from './queues.js';
import type { ObjectReader } from './stored-crashes.js';

export interface ConsumerOptions {
  /** A read pass that takes longer is given up. */
  passTimeoutMs?: number;
  /** A storage read (the I13 check of one message) that takes longer says nothing of the message. */
  storageTimeoutMs?: number;
}

/** What the consumer did, for a report that must tell a stuck consumer from an unannounced crash. */
export interface ConsumerHealth {
  passes: number;
  failedPasses: number;
  abandonedPasses: number;
  lastError: string | undefined;
  lastPassAt: number | undefined;
}

export class QueueConsumer {
  readonly seen = new Map<string, number>();
  readonly problems: string[] = [];
  readonly health: ConsumerHealth = { passes: 0, failedPasses: 0, abandonedPasses: 0, lastError: undefined, lastPassAt: undefined };
  private paused = false;
  private stopped = false;
  private reading: Promise<void> = Promise.resolve();
  private readonly loop: Promise<void>;
  private readonly passTimeoutMs: number;
  private readonly storageTimeoutMs: number;

  constructor(
    private readonly queue: TestQueue,
    private readonly storage: ObjectReader,
    options: ConsumerOptions = {},
  ) {
    this.passTimeoutMs = options.passTimeoutMs ?? 30_000;
    this.storageTimeoutMs = options.storageTimeoutMs ?? 10_000;
    this.loop = this.run();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** Reads what is on the queue now, after any read under way (e.g. before the queue is deleted); how many messages it read. */
  readAll(): Promise<number> {
    const pass = this.reading.then(() => this.readOnce());
    this.reading = pass.then(() => undefined);
    return pass;
  }

  private async readOnce(): Promise<number> {
    const receiving = this.queue.receive();
    const received = await within(
      receiving.then(
        (bodies) => ({ bodies }),
        (error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }),
      ),
      this.passTimeoutMs,
    );
    this.health.passes += 1;
    if (received === 'timeout') {
      this.health.abandonedPasses += 1;
      this.health.lastError = `a read took over ${this.passTimeoutMs} ms and was given up`;
      // What it took off the queue if it ever returns still counts.
      receiving.then((bodies) => this.check(bodies)).catch(() => undefined);
      await this.queue.abandon?.().catch(() => undefined);
      return 0;
    }
    if ('error' in received) {
      // The queue is deleted or being declared again: read again in a moment.
      this.health.failedPasses += 1;
      this.health.lastError = received.error;
      return 0;
    }
    this.health.lastPassAt = Date.now();
    await this.check(received.bodies);
    return received.bodies.length;
  }

  private async check(bodies: string[]): Promise<void> {
    const crashIds: string[] = [];
    // Counted first, so that a storage check that hangs cannot lose a message already taken off the queue.
    for (const body of bodies) {
      if (body.startsWith('filler ')) continue;
      this.seen.set(body, (this.seen.get(body) ?? 0) + 1);
      if (isCrashId(body)) crashIds.push(body);
      else this.problems.push(`a message is not a crash ID: ${JSON.stringify(body.slice(0, 80))}`);
    }
    for (const crashId of crashIds) {
      // A storage read that fails or hangs says nothing of the message: it is counted, and checked again at the end.
      const stored = await within(
        this.storage.get(rawCrashKey(crashId)).then(
          (raw) => raw !== undefined,
          () => undefined,
        ),
        this.storageTimeoutMs,
      );
      if (stored === false) this.problems.push(`${crashId} announced before its raw crash was in storage`);
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.paused) await this.readAll();
      await sleep(100);
    }
  }

  /** One line on what this consumer did, `label` naming it. */
  describe(label: string, now = Date.now()): string {
    const { passes, failedPasses, abandonedPasses, lastError, lastPassAt } = this.health;
    const last = lastPassAt === undefined ? 'never read' : `last read ${((now - lastPassAt) / 1000).toFixed(1)} s ago`;
    return `${label} consumer: ${passes} read passes, ${failedPasses} failed, ${abandonedPasses} given up; ${last}; ${this.seen.size} crash IDs seen${lastError ? `; last error: ${lastError.slice(0, 200)}` : ''}`;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
