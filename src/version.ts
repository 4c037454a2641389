import { readFileSync } from 'node:fs';

/** Dockerflow's `/__version__` document: these four keys and nothing else. */
export interface VersionInfo {
  source: string;
  version: string;
  commit: string;
  build: string;
}

const KEYS = ['source', 'version', 'commit', 'build'] as const;

/** Reads `build-info.json`, written next to the compiled code by `npm run build`. */
export function readVersionInfo(): VersionInfo {
  let written: Record<string, unknown> = {};
  try {
    written = JSON.parse(readFileSync(new URL('./build-info.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  } catch {
    // not built by `npm run build`: every key "unknown"
  }
  const value = (key: (typeof KEYS)[number]) => (typeof written[key] === 'string' ? (written[key] as string) : 'unknown');
  return { source: value('source'), version: value('version'), commit: value('commit'), build: value('build') };
}
