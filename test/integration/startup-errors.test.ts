/**
 * A collector that cannot start says so in one line naming the setting and what to do, without a
 * stack trace, and exits with code 2 (which the systemd unit does not restart in a loop). The real
 * collector process, each time.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { MAIN, tempDir } from '../helpers/collector-process.js';

const isRoot = process.getuid?.() === 0;
const scratch: string[] = [];
const mounts: string[] = [];

after(() => {
  for (const mount of mounts) execFileSync('umount', [mount]);
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function dir(name: string): string {
  const made = tempDir(name);
  scratch.push(made);
  return made;
}

/** Runs the collector with `env`; asserts exit 2 and one line on stderr naming `setting`; returns that line. */
function cannotStart(setting: string, env: Record<string, string>, options: SpawnSyncOptions = {}): string {
  const result = spawnSync(process.execPath, [MAIN], {
    env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: '0', STORAGE_URL: `file://${dir('files')}`, ...env },
    encoding: 'utf8',
    timeout: 20_000,
    ...options,
  });
  const stderr = String(result.stderr);
  assert.equal(result.status, 2, `exit ${result.status} ${result.signal ?? ''}; stderr: ${stderr}`);
  assert.equal(stderr.trimEnd().split('\n').length, 1, `one line on stderr: ${stderr}`);
  assert.doesNotMatch(stderr, /\n\s+at |Error:/, 'no stack trace');
  assert.match(stderr, new RegExp(`^crashspool: ${setting}: `));
  return stderr.trim();
}

function listening(): Promise<Server & { port: number }> {
  const server = createServer();
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(Object.assign(server, { port: (server.address() as { port: number }).port }))));
}

test('I12: SPOOL_DIR that is a regular file: one line, exit 2', () => {
  const file = join(dir('spool-file'), 'spool');
  writeFileSync(file, 'not a directory');
  assert.match(cannotStart('SPOOL_DIR', { SPOOL_DIR: file }), /is not a directory/);
  assert.match(cannotStart('SPOOL_DIR', { SPOOL_DIR: join(file, 'below') }), /is not a directory/);
});

test('I12: SPOOL_DIR without write permission: one line naming the user and what to fix, exit 2', (t) => {
  const parent = dir('no-permission');
  if (isRoot) {
    // A checkout below a private directory (e.g. one made by mktemp -d) cannot be loaded by nobody.
    const readable = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(MAIN)}, require('fs').constants.R_OK)`], { uid: 65534, gid: 65534 });
    if (readable.status !== 0) {
      t.skip(`uid 65534 cannot read ${MAIN} (a parent directory of the checkout is private)`);
      return;
    }
    // As root, the collector run as nobody (uid 65534) in a root-owned 0700 directory.
    chmodSync(parent, 0o700);
    const line = cannotStart('SPOOL_DIR', { SPOOL_DIR: join(parent, 'spool') }, { uid: 65534, gid: 65534 });
    assert.match(line, /cannot create or write files in .* \(EACCES\): the collector \(uid 65534\) needs write access/);
    mkdirSync(join(parent, 'existing'), { mode: 0o755 });
    assert.match(cannotStart('SPOOL_DIR', { SPOOL_DIR: join(parent, 'existing') }, { uid: 65534, gid: 65534 }), /EACCES|SQLITE_CANTOPEN/);
  } else {
    chmodSync(parent, 0o500);
    assert.match(cannotStart('SPOOL_DIR', { SPOOL_DIR: join(parent, 'spool') }), /cannot create or write files/);
    chmodSync(parent, 0o700);
  }
});

test('I12: SPOOL_DIR on a read-only file system: one line, exit 2', (t) => {
  if (!isRoot) {
    t.skip('mounting a read-only tmpfs needs root');
    return;
  }
  const mount = dir('read-only');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', mount]);
  mounts.push(mount);
  assert.match(cannotStart('SPOOL_DIR', { SPOOL_DIR: mount }), /cannot create or write files in .* \(SQLITE_CANTOPEN|read-only file system/);
  assert.match(cannotStart('SPOOL_DIR', { SPOOL_DIR: join(mount, 'spool') }), /is on a read-only file system/);
});

test('I12: HOST that does not resolve or is not an address of this machine: one line, exit 2', () => {
  assert.match(cannotStart('HOST', { SPOOL_DIR: dir('spool'), HOST: 'no-such-host.invalid' }), /does not resolve \((ENOTFOUND|EAI_AGAIN)\)/);
  assert.match(cannotStart('HOST', { SPOOL_DIR: dir('spool'), HOST: '192.0.2.1' }), /is not an address of this machine \(EADDRNOTAVAIL\)/);
});

test('I12: PORT or METRICS_PORT in use: one line naming that setting, exit 2', async () => {
  const taken = await listening();
  try {
    assert.match(cannotStart('PORT', { SPOOL_DIR: dir('spool'), PORT: String(taken.port) }), /is in use \(EADDRINUSE\)/);
    assert.match(cannotStart('METRICS_PORT', { SPOOL_DIR: dir('spool'), METRICS_PORT: String(taken.port) }), /is in use \(EADDRINUSE\); .* set METRICS_PORT/);
  } finally {
    taken.close();
  }
});
