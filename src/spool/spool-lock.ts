/**
 * I5: one collector (and so one drainer) per spool directory. The lock is an exclusive SQLite
 * transaction held open on `collector.lock` for the life of the process: SQLite takes a POSIX
 * fcntl lock, which the kernel drops when the process dies by any means, kill -9 included, so a
 * stale lock can never keep the next collector out (unlike a pid file, whose pid may be reused).
 */
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdirDurableSync } from '../durable-fs.js';
import { join } from 'node:path';

export const LOCK_FILE = 'collector.lock';
const PID_FILE = 'collector.pid';

export class SpoolLocked extends Error {}

export interface SpoolLock {
  release(): void;
}

export function lockSpool(dir: string): SpoolLock {
  mkdirDurableSync(dir);
  const db = new Database(join(dir, LOCK_FILE));
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      let holder = 'another process';
      try {
        holder = `pid ${readFileSync(join(dir, PID_FILE), 'utf8').trim()}`;
      } catch {
        // the pid file is informational only
      }
      throw new SpoolLocked(
        `spool directory ${dir} is in use by another collector (${holder}). ` +
          'Only one collector may drain a spool; stop the other one or use another SPOOL_DIR.',
      );
    }
    throw error;
  }
  writeFileSync(join(dir, PID_FILE), `${process.pid}\n`);
  return {
    release() {
      if (!db.open) return;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}
