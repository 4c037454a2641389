/**
 * The power-loss layer itself, driven through a real mount with node's fs: what survives a cut is
 * exactly what was fsynced (file data and size by the file's fsync, directory entries by the
 * directory's fsync), torn mode keeps part of the unsynced pages, and after the cut everything
 * fails with EIO. Then its teeth: SQLite in WAL mode on the layer loses committed rows with
 * `synchronous=OFF` and none with `synchronous=FULL`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers/collector-process.js';
import { cleanStaleMounts, fuseSkipReason, PowerLossLayer, type CutInfo, type CutMode } from './layer.js';

const PAGE = 4096;
const skip = fuseSkipReason();
if (skip) console.log(`# ${skip}`);

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `path`, fsyncs the file and its directory: durable. */
function writeDurable(path: string, data: Buffer | string): void {
  writeFileSync(path, data);
  fsyncPath(path);
  fsyncPath(join(path, '..'));
}

function expectEIO(action: () => unknown, what: string): void {
  assert.throws(action, (error: NodeJS.ErrnoException) => error.code === 'EIO', `${what} should fail with EIO`);
}

const layers: PowerLossLayer[] = [];
const dirs: string[] = [];

/** Mounts a fresh layer (on `backing`, or a new empty one), runs `body` on the mount point, cuts, unmounts. */
async function withLayer(
  body: (mnt: string, layer: PowerLossLayer) => Promise<void> | void,
  options: { backing?: string; mode?: CutMode; cut?: boolean } = {},
): Promise<{ backing: string; cut: CutInfo | undefined }> {
  const backing = options.backing ?? tempDir('powerloss-backing');
  dirs.push(backing);
  const layer = await PowerLossLayer.mount({ backing, seed: 1234 });
  layers.push(layer);
  let cut: CutInfo | undefined;
  try {
    await body(layer.mountpoint, layer);
    const stats = await layer.stats();
    cut = stats.cut ?? (options.cut === false ? undefined : await layer.cut(options.mode ?? 'drop'));
  } finally {
    await layer.unmount();
  }
  if (cut) assert.equal(cut.backing_matches, true, 'the layer self-check: backing == durable view');
  return { backing, cut };
}

describe('power-loss layer', { skip }, () => {
  before(async () => {
    await cleanStaleMounts();
  });

  after(async () => {
    for (const layer of layers) await layer.unmount();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('loses data written and closed but not fsynced; keeps fsynced data', async () => {
    const { backing } = await withLayer((mnt) => {
      writeDurable(join(mnt, 'kept'), 'durable v1');
      writeDurable(join(mnt, 'overwritten'), 'durable v1');
      // Written and closed, never fsynced:
      writeFileSync(join(mnt, 'overwritten'), 'new content, closed but not synced');
      writeFileSync(join(mnt, 'fresh'), 'never synced');
      const fd = openSync(join(mnt, 'kept'), 'a');
      writeSync(fd, ' + appended and fsynced');
      fsyncSync(fd);
      writeSync(fd, ' + appended, not synced');
      closeSync(fd);
      assert.equal(readFileSync(join(mnt, 'kept'), 'utf8'), 'durable v1 + appended and fsynced + appended, not synced');
    });
    assert.deepEqual(readdirSync(backing).sort(), ['kept', 'overwritten']);
    assert.equal(readFileSync(join(backing, 'kept'), 'utf8'), 'durable v1 + appended and fsynced');
    assert.equal(readFileSync(join(backing, 'overwritten'), 'utf8'), 'durable v1');
  });

  it('loses a create without a directory fsync, even when the file was fsynced', async () => {
    const { backing } = await withLayer((mnt) => {
      writeFileSync(join(mnt, 'created'), 'data');
      fsyncPath(join(mnt, 'created'));
      // A directory made durable inside a parent that never was: lost with its parent's entry.
      mkdirSync(join(mnt, 'sub'));
      writeDurable(join(mnt, 'sub', 'inner'), 'inner data');
    });
    assert.deepEqual(readdirSync(backing), []);
  });

  it('keeps a create after the directory fsync (and a nested one once every level is synced)', async () => {
    const { backing } = await withLayer((mnt) => {
      mkdirSync(join(mnt, 'sub'));
      writeDurable(join(mnt, 'sub', 'inner'), 'inner data');
      fsyncPath(mnt);
      writeFileSync(join(mnt, 'entry-only'), 'data never fsynced');
      fsyncPath(mnt);
    });
    assert.deepEqual(readdirSync(backing).sort(), ['entry-only', 'sub']);
    assert.equal(readFileSync(join(backing, 'sub', 'inner'), 'utf8'), 'inner data');
    // The entry is durable, the data was not: an empty file (as ext4 with delayed allocation leaves it).
    assert.equal(statSync(join(backing, 'entry-only')).size, 0);
  });

  it('loses a rename without a directory fsync; keeps it with one', async () => {
    const lost = await withLayer((mnt) => {
      writeDurable(join(mnt, 'a'), 'payload');
      renameSync(join(mnt, 'a'), join(mnt, 'b'));
      fsyncPath(join(mnt, 'b')); // the file's fsync does not make its new name durable
      assert.equal(existsSync(join(mnt, 'a')), false);
    });
    assert.deepEqual(readdirSync(lost.backing), ['a']);
    assert.equal(readFileSync(join(lost.backing, 'a'), 'utf8'), 'payload');

    const kept = await withLayer((mnt) => {
      writeDurable(join(mnt, 'a'), 'payload');
      writeDurable(join(mnt, 'b'), 'replaced');
      renameSync(join(mnt, 'a'), join(mnt, 'b'));
      fsyncPath(mnt);
    });
    assert.deepEqual(readdirSync(kept.backing), ['b']);
    assert.equal(readFileSync(join(kept.backing, 'b'), 'utf8'), 'payload');
  });

  it('undoes an unlink without a directory fsync', async () => {
    const { backing } = await withLayer((mnt) => {
      writeDurable(join(mnt, 'doomed'), 'still here');
      writeDurable(join(mnt, 'gone'), 'removed for good');
      unlinkSync(join(mnt, 'doomed'));
      unlinkSync(join(mnt, 'gone'));
      writeDurable(join(mnt, 'other'), 'x'); // syncs the directory: both unlinks durable now
      writeDurable(join(mnt, 'doomed'), 'recreated and synced');
      unlinkSync(join(mnt, 'doomed')); // not synced
    });
    assert.deepEqual(readdirSync(backing).sort(), ['doomed', 'other']);
    assert.equal(readFileSync(join(backing, 'doomed'), 'utf8'), 'recreated and synced');
  });

  it('undoes a truncate that was not fsynced; keeps one that was', async () => {
    const original = randomBytes(3 * PAGE + 100);
    const { backing } = await withLayer((mnt) => {
      writeDurable(join(mnt, 'undone'), original);
      writeDurable(join(mnt, 'done'), original);
      truncateSync(join(mnt, 'undone'), 100);
      truncateSync(join(mnt, 'done'), 100);
      fsyncPath(join(mnt, 'done'));
      // Grown again after the truncate: the zeros are not durable either.
      truncateSync(join(mnt, 'undone'), 5 * PAGE);
      assert.equal(statSync(join(mnt, 'undone')).size, 5 * PAGE);
    });
    assert.deepEqual(readFileSync(join(backing, 'undone')), original);
    assert.deepEqual(readFileSync(join(backing, 'done')), original.subarray(0, 100));
  });

  it('torn mode keeps some but not all unsynced pages', async () => {
    const pages = 64;
    const { backing, cut } = await withLayer(
      (mnt) => {
        writeDurable(join(mnt, 'f'), Buffer.alloc(pages * PAGE, 'A'));
        const fd = openSync(join(mnt, 'f'), 'r+');
        writeSync(fd, Buffer.alloc(pages * PAGE, 'B'), 0, pages * PAGE, 0);
        // and 16 pages past the durable end: a torn append
        writeSync(fd, Buffer.alloc(16 * PAGE, 'C'), 0, 16 * PAGE, pages * PAGE);
        closeSync(fd);
      },
      { mode: 'torn' },
    );
    const after = readFileSync(join(backing, 'f'));
    let newPages = 0;
    for (let page = 0; page < pages; page += 1) {
      const content = after.subarray(page * PAGE, (page + 1) * PAGE);
      const isNew = content.every((byte) => byte === 0x42);
      assert.ok(isNew || content.every((byte) => byte === 0x41), `page ${page} is all old or all new`);
      if (isNew) newPages += 1;
    }
    assert.ok(newPages > 0 && newPages < pages, `torn: ${newPages} of ${pages} overwritten pages kept`);
    assert.ok(cut!.kept_pages > 0 && cut!.dropped_pages > 0);
    assert.equal(cut!.kept_pages + cut!.dropped_pages, pages + 16);
    assert.ok(after.length >= pages * PAGE && after.length <= (pages + 16) * PAGE);
  });

  it('fails every operation with EIO after the cut', async () => {
    await withLayer(async (mnt, layer) => {
      writeDurable(join(mnt, 'f'), 'x');
      mkdirSync(join(mnt, 'd'));
      const fd = openSync(join(mnt, 'f'), 'r+');
      await layer.cut('drop');
      try {
        expectEIO(() => writeSync(fd, 'y', 0), 'write on an open file');
        expectEIO(() => fsyncSync(fd), 'fsync');
        expectEIO(() => openSync(join(mnt, 'f'), 'r'), 'open');
        expectEIO(() => readFileSync(join(mnt, 'f')), 'read');
        expectEIO(() => writeFileSync(join(mnt, 'new'), 'z'), 'create');
        expectEIO(() => readdirSync(mnt), 'readdir');
        expectEIO(() => mkdirSync(join(mnt, 'e')), 'mkdir');
        expectEIO(() => statSync(join(mnt, 'never-looked-up')), 'lookup');
        expectEIO(() => renameSync(join(mnt, 'f'), join(mnt, 'g')), 'rename');
      } finally {
        try {
          closeSync(fd);
        } catch {
          // close reports the failed flush (EIO) too
        }
      }
    });
  });

  it('cuts the power at the Nth write from the arming', async () => {
    const pages = 10;
    const { backing, cut } = await withLayer(async (mnt, layer) => {
      writeDurable(join(mnt, 'f'), Buffer.alloc(pages * PAGE, 'A'));
      await layer.arm(5, 'drop');
      const fd = openSync(join(mnt, 'f'), 'r+');
      let done = 0;
      try {
        for (let page = 0; page < pages; page += 1) {
          writeSync(fd, Buffer.alloc(PAGE, 'B'), 0, PAGE, page * PAGE);
          fsyncSync(fd);
          done += 1;
        }
      } catch (error) {
        assert.equal((error as NodeJS.ErrnoException).code, 'EIO');
      } finally {
        try {
          closeSync(fd);
        } catch {
          // EIO
        }
      }
      assert.equal(done, 4, 'the 5th write failed');
    });
    assert.equal(cut!.trigger.op, 'write');
    assert.equal(cut!.trigger.file, 'f');
    const after = readFileSync(join(backing, 'f'));
    assert.ok(after.subarray(0, 4 * PAGE).every((byte) => byte === 0x42), 'the four fsynced pages are durable');
    assert.ok(after.subarray(4 * PAGE).every((byte) => byte === 0x41), 'the rest is as before');
  });

  it('a clean unmount (no cut) makes everything durable', async () => {
    const { backing } = await withLayer(
      (mnt) => {
        mkdirSync(join(mnt, 'd'));
        writeFileSync(join(mnt, 'd', 'f'), 'synced at unmount');
      },
      { cut: false },
    );
    assert.equal(readFileSync(join(backing, 'd', 'f'), 'utf8'), 'synced at unmount');
  });

  describe('teeth: SQLite in WAL mode on the layer', () => {
    /**
     * Creates a WAL database durably (synchronous=FULL), switches to `synchronous`, arms a cut at
     * write `cutAt`, and commits one row per transaction until the cut. Returns the commits that
     * succeeded and the rows the backing copy holds afterwards.
     */
    async function insertUntilCut(synchronous: 'OFF' | 'FULL', cutAt: number, mode: CutMode) {
      let committed = 0;
      const { backing, cut } = await withLayer(async (mnt, layer) => {
        const db = new Database(join(mnt, 't.db'));
        try {
          db.pragma('journal_mode = WAL');
          db.pragma('synchronous = FULL');
          db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)');
          db.pragma(`synchronous = ${synchronous}`);
          const insert = db.prepare('INSERT INTO t (payload) VALUES (?)');
          await layer.arm(cutAt, mode);
          for (let i = 0; i < 100_000; i += 1) {
            try {
              insert.run(randomBytes(300));
            } catch (error) {
              assert.match((error as { code?: string }).code ?? '', /^SQLITE_IOERR/);
              break;
            }
            committed += 1;
          }
        } finally {
          try {
            db.close();
          } catch {
            // closing checkpoints, which fails after the cut
          }
        }
      });
      const db = new Database(join(backing, 't.db'));
      try {
        const integrity = db.pragma('integrity_check', { simple: true }) as string;
        let rows = -1;
        try {
          rows = (db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n;
        } catch {
          // table gone or unreadable: counts as losing everything
        }
        return { committed, rows, integrity, cut: cut! };
      } finally {
        db.close();
      }
    }

    it('synchronous=OFF loses committed rows at a cut', async () => {
      for (const cutAt of [300, 1500]) {
        const result = await insertUntilCut('OFF', cutAt, 'drop');
        console.log(`# OFF, cut at write ${cutAt}: committed ${result.committed}, rows after the cut ${result.rows}, integrity ${result.integrity}`);
        assert.ok(result.committed > 0);
        assert.ok(result.rows < result.committed, `OFF should lose rows: committed ${result.committed}, found ${result.rows}`);
      }
    });

    it('synchronous=FULL loses none (drop and torn cuts)', async () => {
      for (const [cutAt, mode] of [
        [300, 'drop'],
        [1501, 'drop'],
        [777, 'torn'],
        [2500, 'torn'],
      ] as const) {
        const result = await insertUntilCut('FULL', cutAt, mode);
        console.log(
          `# FULL, ${mode} cut at write ${cutAt} (in ${result.cut.trigger.file}): committed ${result.committed}, rows after the cut ${result.rows}, integrity ${result.integrity}`,
        );
        assert.ok(result.committed > 0);
        assert.equal(result.integrity, 'ok');
        // The failing statement may have committed before a later write (its checkpoint) failed.
        assert.ok(result.rows >= result.committed && result.rows <= result.committed + 1, `FULL lost rows: committed ${result.committed}, found ${result.rows}`);
      }
    });
  });
});
