/**
 * Copies the WAL into the database file in the background: PASSIVE checkpoints, every few
 * milliseconds, on a connection of its own. The writer thread's commits then only append to the
 * WAL and never wait for a checkpoint's writes and fsyncs (SQLite lets a checkpoint and a writer
 * run at the same time in WAL mode). The writer keeps its own automatic checkpoint as a backstop,
 * so the WAL stays bounded even if this thread falls behind.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openSpoolDatabase, type Durability } from './spool.js';

export type CheckpointerMessage = { kind: 'ready' } | { kind: 'closed' } | { kind: 'error'; message: string };

const { dir, durability, intervalMs } = workerData as { dir: string; durability: Durability; intervalMs: number };
const port = parentPort!;
// Same durability as the writer: with `full`, a checkpoint fsyncs the WAL before copying it and
// the database file after, whichever connection runs it.
const db = openSpoolDatabase(dir, { durability, create: false });
let lastError: string | undefined;

const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    lastError = undefined;
  } catch (error) {
    const message = (error as Error).message;
    // Told once per distinct failure, not every few milliseconds.
    if (message !== lastError) port.postMessage({ kind: 'error', message } satisfies CheckpointerMessage);
    lastError = message;
  }
}, intervalMs);

port.on('message', (request: 'close') => {
  if (request !== 'close') return;
  clearInterval(timer);
  db.close();
  port.postMessage({ kind: 'closed' } satisfies CheckpointerMessage);
});
port.postMessage({ kind: 'ready' } satisfies CheckpointerMessage);
