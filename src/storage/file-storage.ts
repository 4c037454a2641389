/**
 * The embedded default backend: the S3 key layout as files under a directory, so the collector
 * runs with no cloud account. Each object is written to a temporary file, fsynced and renamed, so
 * a reader never sees a partial object and a confirmed object survives power loss: the file and
 * its directory are fsynced, and so is the parent of every directory created on the way.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { StorageCheckFailed, StorageError, type CrashStorage } from './storage.js';
import { fsyncDir, mkdirDurable } from '../durable-fs.js';

/** Errors that concern one object only; everything else means the directory is unusable for now. */
const PER_OBJECT_CODES = new Set(['ENAMETOOLONG', 'EFBIG']);

export class FileStorage implements CrashStorage {
  readonly description: string;
  private readonly root: string;

  constructor(dir: string) {
    this.root = resolve(dir);
    this.description = `file://${this.root}`;
  }

  async put(key: string, body: Buffer): Promise<void> {
    const target = join(this.root, key);
    const temporary = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdirDurable(dirname(target));
      const handle = await open(temporary, 'w');
      try {
        await handle.writeFile(body);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, target);
      await fsyncDir(dirname(target));
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => undefined);
      const code = (error as NodeJS.ErrnoException).code ?? '';
      throw new StorageError(`writing ${target}: ${(error as Error).message}`, PER_OBJECT_CODES.has(code) ? 'crash' : 'storage', {
        cause: error,
      });
    }
  }

  /** File writes are short and local: nothing to cut. */
  destroy(): void {}

  async checkReadWrite(): Promise<string> {
    const probe = join(this.root, 'crashspool-check', randomBytes(8).toString('hex'));
    const body = randomBytes(32);
    try {
      await this.put(relative(this.root, probe), body);
      const read = await readFile(probe);
      if (!read.equals(body)) throw new Error('read back other bytes');
      await rm(dirname(probe), { recursive: true, force: true });
    } catch (error) {
      throw new StorageCheckFailed(`${(error as Error).message}; STORAGE_URL must name a directory this user can write`, 'setting');
    }
    return `${this.description}: a probe written, read back and deleted`;
  }

  async checkReachable(): Promise<void> {
    try {
      await mkdirDurable(this.root);
      await fsyncDir(this.root);
    } catch (error) {
      throw new StorageError(`storage directory ${this.root}: ${(error as Error).message}`, 'storage', { cause: error });
    }
  }
}
