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
import { inspect } from 'node:util';
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
  /** Storage reads of the I13 check at once. */
  checkConcurrency?: number;
}

/** What the consumer did, for a report that must tell a stuck consumer from an unannounced crash. */
export interface ConsumerHealth {
  passes: number;
  failedPasses: number;
  abandonedPasses: number;
  lastError: string | undefined;
  lastPassAt: number | undefined;
  /** When a crash ID not seen before was last read. */
  lastNewAt: number | undefined;
}

export class QueueConsumer {
  readonly seen = new Map<string, number>();
  readonly problems: string[] = [];
  readonly health: ConsumerHealth = { passes: 0, failedPasses: 0, abandonedPasses: 0, lastError: undefined, lastPassAt: undefined, lastNewAt: undefined };
  private paused = false;
  private stopped = false;
  private reading: Promise<void> = Promise.resolve();
  private readonly loop: Promise<void>;
  private readonly passTimeoutMs: number;
  private readonly storageTimeoutMs: number;
  private readonly checkConcurrency: number;
  /** Crash IDs read and counted, whose I13 check has not started. */
  private readonly toCheck: string[] = [];
  private readonly checkers = new Set<Promise<void>>();

  constructor(
    private readonly queue: TestQueue,
    private readonly storage: ObjectReader,
    options: ConsumerOptions = {},
  ) {
    this.passTimeoutMs = options.passTimeoutMs ?? 30_000;
    this.storageTimeoutMs = options.storageTimeoutMs ?? 10_000;
    this.checkConcurrency = options.checkConcurrency ?? 8;
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
        (error: unknown) => ({ error: error instanceof Error ? error.message : inspect(error, { breakLength: Infinity, depth: 2 }) }),
      ),
      this.passTimeoutMs,
    );
    this.health.passes += 1;
    if (received === 'timeout') {
      this.health.abandonedPasses += 1;
      this.health.lastError = `a read took over ${this.passTimeoutMs} ms and was given up`;
      // What it took off the queue if it ever returns still counts.
      receiving.then((bodies) => this.count(bodies)).catch(() => undefined);
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
    this.count(received.bodies);
    return received.bodies.length;
  }

  /**
   * Counts what a pass read, and leaves its storage checks to run beside the next passes: a
   * consumer that waited for them read no faster than storage answers, and fell minutes behind a
   * collector draining a backlog (the 1,053-kill run's "unannounced" crashes were still on the queue).
   */
  private count(bodies: string[]): void {
    for (const body of bodies) {
      if (body.startsWith('filler ')) continue;
      if (!this.seen.has(body)) this.health.lastNewAt = Date.now();
      this.seen.set(body, (this.seen.get(body) ?? 0) + 1);
      if (isCrashId(body)) this.toCheck.push(body);
      else this.problems.push(`a message is not a crash ID: ${JSON.stringify(body.slice(0, 80))}`);
    }
    while (this.checkers.size < this.checkConcurrency && this.toCheck.length > 0) {
      const checker: Promise<void> = this.checkQueued().finally(() => this.checkers.delete(checker));
      this.checkers.add(checker);
    }
  }

  private async checkQueued(): Promise<void> {
    for (let crashId = this.toCheck.shift(); crashId !== undefined; crashId = this.toCheck.shift()) {
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

  /** Resolves once every message counted so far has had its storage check (`problems` is then complete). */
  async checked(): Promise<void> {
    while (this.checkers.size > 0) await Promise.all(this.checkers);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.paused) await this.readAll();
      await sleep(100);
    }
  }

  /** One line on what this consumer did, `label` naming it. */
  describe(label: string, now = Date.now()): string {
    const { passes, failedPasses, abandonedPasses, lastError, lastPassAt, lastNewAt } = this.health;
    const ago = (at: number | undefined, what: string) => (at === undefined ? `never ${what}` : `${what} ${((now - at) / 1000).toFixed(1)} s ago`);
    const checks = this.toCheck.length + this.checkers.size;
    return `${label} consumer: ${passes} read passes, ${failedPasses} failed, ${abandonedPasses} given up; ${ago(lastPassAt, 'last read')}; ${this.seen.size} crash IDs seen, ${ago(lastNewAt, 'the last new one')}${checks > 0 ? `; ${checks} storage checks waiting` : ''}${lastError ? `; last error: ${lastError.slice(0, 200)}` : ''}`;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.checked();
  }
}
