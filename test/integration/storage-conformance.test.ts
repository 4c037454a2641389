/**
 * One conformance suite that every storage backend passes (after Litestream's replica-client
 * tests): memory, files, and S3 against the local Ceph RGW. What the drainer relies on, whatever
 * the backend: an object reads back byte for byte once `put` resolved; a second put of a key
 * overwrites it; a dump whose bytes do not match the SHA-256 taken at receipt is refused as a
 * failure of that crash (where the backend can check it); an unreachable backend fails every
 * request as a failure of the storage, never of a crash (so an outage dead-letters nothing).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newCrashId } from '../../src/crash-id.js';
import { createLogger } from '../../src/logger.js';
import { sha256Hex } from '../../src/sha256.js';
import { FileStorage } from '../../src/storage/file-storage.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { S3Storage } from '../../src/storage/s3-storage.js';
import { dumpKey, dumpNamesKey, rawCrashKey } from '../../src/storage/storage-keys.js';
import { StorageError, type CrashStorage } from '../../src/storage/storage.js';
import { tempDir } from '../helpers/collector-process.js';
import { deletePrefix, fileReader, s3Settings, s3Target, type ObjectReader } from '../helpers/stored-crashes.js';

interface Backend {
  name: string;
  storage: CrashStorage;
  reader: ObjectReader;
  /** The same backend where nobody answers. */
  unreachable: CrashStorage;
  /** Whether the backend has the dump's SHA-256 checked before it stores it. */
  verifiesChecksums: boolean;
}

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

function memory(): Backend {
  const storage = new MemoryStorage();
  const unreachable = new MemoryStorage();
  unreachable.reachable = false;
  return { name: 'memory', storage, reader: storage, unreachable, verifiesChecksums: true };
}

function files(): Backend {
  const dir = tempDir('conformance-files');
  const blocked = join(tempDir('conformance-blocked'), 'file');
  writeFileSync(blocked, 'a file where the storage directory should be');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { name: 'file', storage: new FileStorage(dir), reader: fileReader(dir), unreachable: new FileStorage(join(blocked, 'crashes')), verifiesChecksums: false };
}

function s3(): Backend {
  const settings = s3Settings();
  const target = s3Target('conformance');
  cleanups.push(() => deletePrefix(target.client, target.env['STORAGE_URL']!));
  const options = (endpoint: string) => ({
    bucket: target.bucket,
    prefix: target.prefix,
    endpoint,
    timeouts: { connectMs: 2000, idleMs: 5000, requestMs: 10_000 },
    maxAttempts: 1,
    logger: createLogger('silent'),
  });
  return { name: 's3', storage: new S3Storage(options(settings.endpoint)), reader: target.reader, unreachable: new S3Storage(options('http://127.0.0.1:9')), verifiesChecksums: true };
}

for (const make of [memory, files, s3]) {
  const backend = make();
  const { storage, reader, unreachable } = backend;
  describe(`storage conformance: ${backend.name}`, () => {
    after(() => {
      storage.destroy();
      unreachable.destroy();
    });

    test('every layout key stores and reads back byte for byte', async () => {
      const crashId = newCrashId(new Date());
      const objects: [string, Buffer][] = [
        [dumpNamesKey(crashId), Buffer.from('["upload_file_minidump","upload_file_minidump_browser"]')],
        [dumpKey(crashId, 'upload_file_minidump'), randomBytes(70_000)],
        [dumpKey(crashId, 'upload_file_minidump_browser'), randomBytes(3)],
        [rawCrashKey(crashId), Buffer.from(JSON.stringify({ uuid: crashId }))],
      ];
      await Promise.all(objects.map(([key, body]) => storage.put(key, body, 'application/octet-stream')));
      for (const [key, body] of objects) assert.ok((await reader.get(key))?.equals(body), key);
    });

    test('a second put of a key overwrites it; the same bytes again change nothing', async () => {
      const key = dumpKey(newCrashId(new Date()), 'upload_file_minidump');
      await storage.put(key, Buffer.from('first'), 'application/octet-stream');
      await storage.put(key, Buffer.from('second'), 'application/octet-stream');
      assert.equal((await reader.get(key))?.toString(), 'second');
      await storage.put(key, Buffer.from('second'), 'application/octet-stream');
      assert.equal((await reader.get(key))?.toString(), 'second');
    });

    test('a dump with the SHA-256 taken at receipt is stored; with another one it is refused as a failure of that crash, and not stored', async (t) => {
      const body = randomBytes(1000);
      const good = dumpKey(newCrashId(new Date()), 'upload_file_minidump');
      await storage.put(good, body, 'application/octet-stream', sha256Hex(body));
      assert.ok((await reader.get(good))?.equals(body));
      if (!backend.verifiesChecksums) {
        t.diagnostic(`${backend.name} storage writes bytes as given: the spool's own checks are all there is`);
        return;
      }
      const bad = dumpKey(newCrashId(new Date()), 'upload_file_minidump');
      await assert.rejects(storage.put(bad, body, 'application/octet-stream', sha256Hex(Buffer.from('other bytes'))), (error: unknown) => {
        assert.ok(error instanceof StorageError, String(error));
        assert.equal(error.scope, 'crash');
        return true;
      });
      assert.equal(await reader.get(bad), undefined);
    });

    test('reachable: checkReachable resolves', async () => {
      await storage.checkReachable();
    });

    test('unreachable: checkReachable and put fail as the storage, never as a crash', async () => {
      const isStorageFailure = (error: unknown) => {
        assert.ok(error instanceof StorageError, String(error));
        assert.equal(error.scope, 'storage');
        return true;
      };
      await assert.rejects(unreachable.checkReachable(), isStorageFailure);
      await assert.rejects(unreachable.put(rawCrashKey(newCrashId(new Date())), Buffer.from('{}'), 'application/json'), isStorageFailure);
    });
  });
}
