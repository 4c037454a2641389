/**
 * npm runs a dependency's install script only when package.json's `allowScripts` says so (advisory
 * in npm 11, where `npm ci` warns about every package not covered; enforced from npm 12). Every
 * package of the lockfile that has one must have a decision, so the README's `npm ci` neither warns
 * nor, later, silently skips building better-sqlite3. The reasons are in docs/DEVELOPMENT.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const read = (file: string) => JSON.parse(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8')) as Record<string, unknown>;

test('every dependency with an install script has a decision in allowScripts, with its reason in DEVELOPMENT.md', () => {
  const lock = read('package-lock.json') as { packages: Record<string, { hasInstallScript?: boolean }> };
  const allowed = (read('package.json')['allowScripts'] ?? {}) as Record<string, boolean>;
  const withScripts = Object.entries(lock.packages)
    .filter(([, entry]) => entry.hasInstallScript)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
  assert.ok(withScripts.includes('better-sqlite3'), 'better-sqlite3 builds in its install script');
  const decided = new Set(Object.keys(allowed).map((key) => key.replace(/(?<=.)@[^@]*$/, '')));
  assert.deepEqual(withScripts.filter((name) => !decided.has(name)), [], 'packages whose install scripts npm would warn about (npm install-scripts ls)');
  const development = readFileSync(new URL('../../docs/DEVELOPMENT.md', import.meta.url), 'utf8');
  for (const name of decided) assert.match(development, new RegExp(`\`${name}\`[^\\n]*install script`), `DEVELOPMENT.md says why ${name}'s install script runs`);
});
