/**
 * The files in deploy/ are checked by the tools that will read them, not just written:
 * the systemd unit by `systemd-analyze verify` (Debian's systemd), and its timing against the
 * collector's own shutdown settings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tempDir } from '../helpers/collector-process.js';

const UNIT = new URL('../../deploy/crashspool.service', import.meta.url);

/** `Key=value` lines of a unit file (the last one of a key wins, as in systemd). */
function directives(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) found.set(match[1]!, [...(found.get(match[1]!) ?? []), match[2]!]);
  }
  return found;
}

test('systemd unit: systemd-analyze verify finds nothing to say', () => {
  // verify checks that ExecStart's binary exists: point it at this machine's node.
  const unit = readFileSync(UNIT, 'utf8').replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `);
  const file = join(tempDir('unit'), 'crashspool.service');
  writeFileSync(file, unit);
  const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  assert.equal(result.error, undefined, 'systemd-analyze runs (scripts/run-tests installs systemd)');
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr.trim(), '', 'no warnings either (unknown keys and bad values are only warnings)');
});

test('systemd unit: node is the main process, the spool is the only writable path, and systemd waits out the shutdown', () => {
  const unit = directives(readFileSync(UNIT, 'utf8'));
  const one = (key: string) => unit.get(key)?.at(-1);
  assert.match(one('ExecStart')!, /^\/usr\/bin\/node \S+\/dist\/main\.js$/);
  assert.equal(one('Type'), 'simple');
  assert.equal(one('Restart'), 'on-failure');
  const environment = new Map((unit.get('Environment') ?? []).map((pair) => pair.split('=', 2) as [string, string]));
  const spool = environment.get('SPOOL_DIR')!;
  assert.ok(spool.startsWith(`/var/lib/${one('StateDirectory')}/`), `SPOOL_DIR ${spool} is in the state directory`);
  assert.ok(spool.startsWith(one('ReadWritePaths')!), 'the spool is writable');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ProtectHome'), 'yes');
  const grace = Number(environment.get('SHUTDOWN_LB_GRACE_SECONDS'));
  const deadline = Number(environment.get('SHUTDOWN_DEADLINE_SECONDS'));
  const stop = Number(/^(\d+)s?$/.exec(one('TimeoutStopSec')!)![1]);
  assert.ok(stop > grace + deadline, `TimeoutStopSec ${stop} s > grace ${grace} s + deadline ${deadline} s`);
});
