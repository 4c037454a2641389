import { readFileSync } from 'node:fs';

export interface VersionInfo {
  version: string;
  commit: string;
  build_time: string;
}

/** Reads `build-info.json`, written next to the compiled code by `npm run build`. */
export function readVersionInfo(): VersionInfo {
  const fallback: VersionInfo = { version: 'unknown', commit: 'unknown', build_time: 'unknown' };
  try {
    const info = JSON.parse(readFileSync(new URL('./build-info.json', import.meta.url), 'utf8')) as Partial<VersionInfo>;
    return { ...fallback, ...info };
  } catch {
    return fallback;
  }
}
