import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { configTable } from '../../src/config-table.js';

test('the README configuration table is the one generated from the schema', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const match = /<!-- config-table:start -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme);
  assert.ok(match, 'README has the config table markers');
  assert.equal(match[1], configTable(), 'regenerate with: npm run build && node scripts/config-table.mjs');
});

test('the README opens with the two commands a newcomer runs', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
  assert.match(firstBlock, /^npm ci && npm start/m);
  assert.match(firstBlock, /^npm ci && npm test/m);
});
