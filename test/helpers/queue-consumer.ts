/**
 * A consumer of a test queue that reads it all along, as Socorro's processor does, and checks each
 * message as it reads it: a crash ID whose raw crash is in storage already (I13: a crash is
 * announced only once it is stored). Messages starting "filler " are a test's own and skipped.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isCrashId } from '../../src/crash-id.js';
import { rawCrashKey } from '../../src/storage/storage-keys.js';
import type { TestQueue } from './queues.js';
import type { ObjectReader } from './stored-crashes.js';

export class QueueConsumer {
  readonly seen = new Map<string, number>();
  readonly problems: string[] = [];
  private paused = false;
  private stopped = false;
  private reading: Promise<void> = Promise.resolve();
  private readonly loop: Promise<void>;

  constructor(
    private readonly queue: TestQueue,
    private readonly storage: ObjectReader,
  ) {
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
    let bodies: string[];
    try {
      bodies = await this.queue.receive();
    } catch {
      return 0; // the queue is deleted or being declared again: read again in a moment
    }
    for (const body of bodies) {
      if (body.startsWith('filler ')) continue;
      this.seen.set(body, (this.seen.get(body) ?? 0) + 1);
      if (!isCrashId(body)) {
        this.problems.push(`a message is not a crash ID: ${JSON.stringify(body.slice(0, 80))}`);
        continue;
      }
      // A storage read that fails says nothing of the message: it is counted, and checked again at the end.
      const stored = await this.storage.get(rawCrashKey(body)).then(
        (raw) => raw !== undefined,
        () => undefined,
      );
      if (stored === false) this.problems.push(`${body} announced before its raw crash was in storage`);
    }
    return bodies.length;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.paused) await this.readAll();
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
