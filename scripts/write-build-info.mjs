// Writes dist/build-info.json for /__version__ (Dockerflow: source, version, commit, build).
// A CI system may set SOURCE_URL, GIT_COMMIT and BUILD_URL; otherwise they come from
// package.json and git, and `build` names the time of the build.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

function git(...args) {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined; // not a git checkout
  }
}

const repository = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
const info = {
  source: process.env.SOURCE_URL || repository || git('remote', 'get-url', 'origin') || 'unknown',
  version: pkg.version,
  commit: process.env.GIT_COMMIT || git('rev-parse', 'HEAD') || 'unknown',
  build: process.env.BUILD_URL || `built ${new Date().toISOString()}`,
};
mkdirSync(new URL('../dist/', import.meta.url), { recursive: true });
writeFileSync(new URL('../dist/build-info.json', import.meta.url), `${JSON.stringify(info, null, 2)}\n`);
