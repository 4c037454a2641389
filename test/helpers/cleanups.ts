/**
 * What a test file makes — spool directories, key prefixes in the test bucket, processes, proxies,
 * queues — undone in reverse order after its last test (`after` of node:test).
 */
import { after } from 'node:test';
import { rmSync } from 'node:fs';
import { tempDir } from './collector-process.js';
import { deletePrefix, s3Target, type S3TestTarget } from './stored-crashes.js';

export class Cleanups {
  private readonly undo: (() => unknown)[] = [];

  constructor() {
    after(async () => {
      for (const step of this.undo.reverse()) await step();
    });
  }

  add(step: () => unknown): void {
    this.undo.push(step);
  }

  /** `thing`, closed (or stopped) at the end. */
  keep<T extends { close(): Promise<void> } | { stop(): Promise<void> }>(thing: T): T {
    this.undo.push(() => ('close' in thing ? thing.close() : thing.stop()));
    return thing;
  }

  /** A fresh spool directory and key prefix in the test bucket, both removed at the end. */
  fresh(name: string): { spool: string; target: S3TestTarget } {
    const spool = tempDir(name);
    const target = s3Target(name);
    this.undo.push(() => rmSync(spool, { recursive: true, force: true }), () => deletePrefix(target.client, target.env['STORAGE_URL']!));
    return { spool, target };
  }
}
