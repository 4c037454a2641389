/**
 * I5: one collector (and so one drainer) per spool directory. The lock is an exclusive SQLite
 * transaction held open on `collector.lock` for the life of the process: SQLite takes a POSIX
 * fcntl lock, which the kernel drops when the process dies by any means, kill -9 included, so a
 * stale lock can never keep the next collector out (unlike a pid file, whose pid may be reused).
 */
import Database from 'better-sqlite3';
import { accessSync, constants, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdirDurableSync } from '../durable-fs.js';
import { dirname, join, resolve } from 'node:path';

export const LOCK_FILE = 'collector.lock';
const PID_FILE = 'collector.pid';

export class SpoolLocked extends Error {}

/** The spool directory cannot be made or written: not a directory, read-only, no permission. */
export class SpoolDirUnusable extends Error {}

const uid = () => (process.getuid ? ` (uid ${process.getuid()})` : '');

/** One line saying what is wrong with the spool directory and what to do, from an fs or SQLite error. */
function unusableDir(dir: string, error: unknown): SpoolDirUnusable {
  const { code = '', message } = error as { code?: string; message: string };
  if (code === 'EEXIST' || code === 'ENOTDIR') {
    return new SpoolDirUnusable(`${dir} is not a directory; point it at a directory (it is created when missing)`);
  }
  if (code === 'EROFS') return new SpoolDirUnusable(`${dir} is on a read-only file system; the spool needs a writable, persistent disk`);
  if (['EACCES', 'EPERM'].includes(code) || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY')) {
    return new SpoolDirUnusable(
      `cannot create or write files in ${dir} (${code}): the collector${uid()} needs write access there; ` +
        'fix the directory\'s owner or permissions (or its read-only mount), or choose another directory',
    );
  }
  return new SpoolDirUnusable(`cannot use ${dir}: ${message}${code ? ` (${code})` : ''}`);
}

export interface SpoolLock {
  release(): void;
}

/**
 * A recursive mkdir on a read-only mount can fail with ENOENT; the nearest existing ancestor
 * tells the real reason (EROFS, EACCES).
 */
function whyNotCreated(dir: string, error: unknown): unknown {
  if ((error as { code?: string }).code !== 'ENOENT') return error;
  let ancestor = dirname(resolve(dir));
  while (!existsSync(ancestor) && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
  try {
    accessSync(ancestor, constants.W_OK);
  } catch (denied) {
    return denied;
  }
  return error;
}

/** Creates the directory when missing and takes its lock. Throws SpoolLocked, or SpoolDirUnusable naming what to fix. */
export function lockSpool(dir: string): SpoolLock {
  let db: Database.Database;
  try {
    try {
      mkdirDurableSync(dir);
    } catch (error) {
      throw whyNotCreated(dir, error);
    }
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    db = new Database(join(dir, LOCK_FILE));
  } catch (error) {
    throw unusableDir(dir, error);
  }
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
    throw unusableDir(dir, error);
  }
  try {
    writeFileSync(join(dir, PID_FILE), `${process.pid}\n`);
  } catch (error) {
    db.close();
    throw unusableDir(dir, error);
  }
  return {
    release() {
      if (!db.open) return;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}
