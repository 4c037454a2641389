import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdirDurable, mkdirDurableSync } from '../../src/durable-fs.js';

// Whether the parents are really fsynced is proven on the power-loss layer (test/power-loss).
test('durable mkdir creates every missing level and accepts existing ones', async () => {
  const root = mkdtempSync(join(tmpdir(), 'durable-'));
  mkdirDurableSync(join(root, 'a', 'b', 'c'));
  assert.ok(statSync(join(root, 'a', 'b', 'c')).isDirectory());
  mkdirDurableSync(join(root, 'a', 'b', 'c'));
  await mkdirDurable(join(root, 'a', 'x', 'y'));
  assert.ok(existsSync(join(root, 'a', 'x', 'y')));
  await mkdirDurable(join(root, 'a'));
});
