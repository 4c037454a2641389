/**
 * The heap growth the collector sets at start-up (src/heap-growth.ts), in a real node process of
 * the Node version under test: V8 must know the flag (an unknown one is only complained about on
 * stderr, and nothing would be set), and a factor given on node's command line is left alone.
 * What the factor does to full collections under load is measured, not asserted (docs/OPERATIONS.md, bench).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('../../dist/heap-growth.js', import.meta.url));

function runGrowHeap(nodeArgs: string[]): { stdout: string; stderr: string; status: number | null } {
  const script = `import { growHeapForBuffers } from ${JSON.stringify(MODULE)}; console.log(growHeapForBuffers());`;
  const { stdout, stderr, status } = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { encoding: 'utf8' });
  return { stdout: stdout.trim(), stderr, status };
}

test('the collector sets V8\'s heap growth factor at start-up, and V8 knows the flag', () => {
  const { stdout, stderr, status } = runGrowHeap([]);
  assert.equal(status, 0);
  assert.equal(stdout, 'true');
  assert.equal(stderr, '', 'V8 complained about the flag');
});

test('a heap growth factor given on node\'s command line is left as given', () => {
  for (const given of [['--heap-growing-percent=50'], ['--heap_growing_percent=50']]) {
    const { stdout, status } = runGrowHeap(given);
    assert.equal(status, 0);
    assert.equal(stdout, 'false', given.join(' '));
  }
});
