// Writes dist/build-info.json for /__version__ (Dockerflow: source, version, commit, build).
// `source` and `build` are URLs or "unknown", never a local path: SOURCE_URL, else package.json's
// repository, else git's origin when it is a URL; BUILD_URL, else the CI system's own variables
// (GitHub Actions, GitLab CI, CircleCI, Jenkins). GIT_COMMIT, else git.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const env = process.env;

function git(...args) {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined; // not a git checkout
  }
}

/** An https URL for a repository address (https, git@host:path, git+https), or undefined for a local path. */
function repositoryUrl(address) {
  if (!address) return undefined;
  const scp = /^git@([^:]+):(.+?)(\.git)?$/.exec(address);
  if (scp) return `https://${scp[1]}/${scp[2]}`;
  const url = address.replace(/^git\+/, '').replace(/\.git$/, '');
  return /^https?:\/\//.test(url) ? url : undefined;
}

const ciBuildUrl =
  (env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID && `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`) ||
  env.CI_JOB_URL ||
  env.CIRCLE_BUILD_URL ||
  undefined;

const repository = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
const info = {
  source: env.SOURCE_URL || repositoryUrl(repository) || repositoryUrl(git('remote', 'get-url', 'origin')) || 'unknown',
  version: pkg.version,
  commit: env.GIT_COMMIT || git('rev-parse', 'HEAD') || 'unknown',
  build: env.BUILD_URL || ciBuildUrl || 'unknown',
};
mkdirSync(new URL('../dist/', import.meta.url), { recursive: true });
writeFileSync(new URL('../dist/build-info.json', import.meta.url), `${JSON.stringify(info, null, 2)}\n`);
