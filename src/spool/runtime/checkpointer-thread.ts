/**
 * Copies the WAL into the database file in the background, on a connection of its own, so the
 * writer thread's commits only append to the WAL and never wait for a checkpoint's writes and
 * fsyncs (SQLite lets a checkpoint and a writer run at the same time in WAL mode).
 *
 * It checkpoints when told (`checkpoint`: the collector counted enough bytes committed since the
 * last one, or the spool went quiet; see writer.ts) — rarely, because a checkpoint copies
 * each page's newest version only once: pages the drainer freed and new crashes reused are
 * rewritten many times in the WAL but copied once, where checkpointing every few milliseconds
 * wrote every crash twice. While the file system is short of space it checkpoints every tick
 * instead, as a long WAL is space the drainer's deletes cannot give back. The writer keeps its
 * own automatic checkpoint as a backstop, so the WAL stays bounded even if this thread fails.
 */
import { statfsSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { openSpoolDatabase, type Durability } from '../schema.js';

export type CheckpointerMessage = { kind: 'ready' } | { kind: 'closed' } | { kind: 'error'; message: string };
export type CheckpointerRequest = 'checkpoint' | 'close';

export interface CheckpointerData {
  dir: string;
  durability: Durability;
  /** How often to look at the file system's free space. */
  intervalMs: number;
  /** Below this much free space, checkpoint every tick. */
  eagerBelowFreeBytes: number;
}

const { dir, durability, intervalMs, eagerBelowFreeBytes } = workerData as CheckpointerData;
const port = parentPort!;
// Same durability as the writer: with `full`, a checkpoint fsyncs the WAL before copying it and
// the database file after, whichever connection runs it.
const db = openSpoolDatabase(dir, { durability, create: false });
let lastError: string | undefined;

function checkpoint(): void {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    lastError = undefined;
  } catch (error) {
    const message = (error as Error).message;
    // Told once per distinct failure, not every few milliseconds.
    if (message !== lastError) port.postMessage({ kind: 'error', message } satisfies CheckpointerMessage);
    lastError = message;
  }
}

function diskIsTight(): boolean {
  try {
    const fs = statfsSync(dir);
    return fs.bavail * fs.bsize < eagerBelowFreeBytes;
  } catch {
    return true;
  }
}

const timer = setInterval(() => {
  if (diskIsTight()) checkpoint();
}, intervalMs);

port.on('message', (request: CheckpointerRequest) => {
  if (request === 'checkpoint') {
    checkpoint();
    return;
  }
  if (request !== 'close') return;
  clearInterval(timer);
  db.close();
  port.postMessage({ kind: 'closed' } satisfies CheckpointerMessage);
});
port.postMessage({ kind: 'ready' } satisfies CheckpointerMessage);
