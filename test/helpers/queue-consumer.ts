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

  /** Reads what is on the queue now, after any read under way (e.g. before the queue is deleted). */
  readAll(): Promise<void> {
    this.reading = this.reading.then(() => this.readOnce());
    return this.reading;
  }

  private async readOnce(): Promise<void> {
    try {
      for (const body of await this.queue.receive()) {
        if (body.startsWith('filler ')) continue;
        if (!isCrashId(body)) this.problems.push(`a message is not a crash ID: ${JSON.stringify(body.slice(0, 80))}`);
        else if (!(await this.storage.get(rawCrashKey(body)))) this.problems.push(`${body} announced before its raw crash was in storage`);
        this.seen.set(body, (this.seen.get(body) ?? 0) + 1);
      }
    } catch {
      // The queue is deleted or being declared again: read again in a moment.
    }
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
