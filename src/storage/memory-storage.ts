/**
 * A storage that keeps objects in memory: for tests and benchmarks that must not depend on a disk
 * or a server. It behaves as the others do (overwrites, confirms only what it stored, fails
 * storage-wide while `reachable` is false, refuses a dump whose bytes do not match the SHA-256
 * taken at receipt, as S3 does) and keeps every object until `objects` is cleared.
 */
import { sha256Hex } from '../sha256.js';
import { StorageCheckFailed, StorageError, type CrashStorage } from './storage.js';

export class MemoryStorage implements CrashStorage {
  readonly description = 'memory://';
  readonly objects = new Map<string, Buffer>();
  /** False: every request fails as an unreachable storage's would. */
  reachable = true;

  async put(key: string, body: Buffer, _contentType: string, sha256?: string): Promise<void> {
    if (!this.reachable) throw new StorageError(`PUT ${key}: storage unreachable`, 'storage', { outage: true });
    if (sha256 !== undefined && sha256Hex(body) !== sha256) throw new StorageError(`PUT ${key}: body does not match its SHA-256`, 'crash', { answered: true });
    this.objects.set(key, Buffer.from(body));
  }

  async get(key: string): Promise<Buffer | undefined> {
    return this.objects.get(key);
  }

  async checkReachable(): Promise<void> {
    if (!this.reachable) throw new StorageError('storage unreachable', 'storage', { outage: true });
  }

  async checkReadWrite(): Promise<string> {
    if (!this.reachable) throw new StorageCheckFailed('storage unreachable', 'unreachable');
    return 'memory: written, read and deleted';
  }

  destroy(): void {}
}
