/**
 * docs/INVARIANTS.md stays true: every source file it names exists; every test file it names for
 * an invariant exists and holds a test (or describe block) whose name starts with that invariant's
 * ID (`I7: …`, or `I2, I7: …`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOC = readFileSync(`${ROOT}docs/INVARIANTS.md`, 'utf8');

test('every source file docs/INVARIANTS.md names exists', () => {
  const named = [...DOC.matchAll(/`((?:[a-z-]+\/)?[a-z-]+\.ts)`/g)].map((match) => match[1]!).filter((path) => !path.startsWith('test/'));
  assert.ok(named.length > 20, `${named.length} source files named`);
  for (const path of new Set(named)) assert.ok(existsSync(`${ROOT}src/${path}`), `src/${path}`);
});

test('every invariant in docs/INVARIANTS.md names tests that exist and carry its ID', () => {
  const rows = DOC.split('\n').filter((line) => /^\| I\d+ \|/.test(line));
  assert.ok(rows.length >= 12, `${rows.length} invariants`);
  for (const row of rows) {
    const cells = row.split(' | ');
    const id = cells[0]!.replace('| ', '');
    const files = [...cells.at(-1)!.matchAll(/`(test\/[^`]+\.test\.ts)`/g)].map((match) => match[1]!);
    assert.ok(files.length > 0, `${id} names its tests`);
    const named = new RegExp(`\\b(?:test|it|describe)\\(\\s*['"\`](?:I\\d+, )*${id}[,:]`);
    for (const file of files) {
      assert.ok(existsSync(`${ROOT}${file}`), `${id}: ${file} exists`);
      assert.match(readFileSync(`${ROOT}${file}`, 'utf8'), named, `${id}: ${file} has a test named after it`);
    }
  }
});
