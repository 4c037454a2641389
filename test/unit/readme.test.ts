import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { configTable } from '../../src/config-table.js';

test('the configuration table (docs/CONFIGURATION.md) is the one generated from the schema', () => {
  const page = readFileSync(new URL('../../docs/CONFIGURATION.md', import.meta.url), 'utf8');
  const match = /<!-- config-table:start -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(page);
  assert.ok(match, 'docs/CONFIGURATION.md has the config table markers');
  assert.equal(match[1], configTable(), 'regenerate with: npm run build && node scripts/config-table.mjs');
});

test('the README opens with the two commands a newcomer runs', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
  assert.match(firstBlock, /^npm ci && npm start/m);
  assert.match(firstBlock, /^npm ci && npm test/m);
});

test('every relative link in the README and docs/ leads to a file that exists', () => {
  const pages = ['README.md', ...readdirSync(new URL('../../docs/', import.meta.url)).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(new URL(`../../${page}`, import.meta.url), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      if (!existsSync(new URL(target!, new URL(`../../${page}`, import.meta.url)))) broken.push(`${page} → ${target}`);
    }
  }
  assert.deepEqual(broken, []);
});
