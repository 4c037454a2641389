import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** Every minidump fixture by file name. */
export function loadFixtureDumps(): Map<string, Buffer> {
  const dumps = new Map<string, Buffer>();
  for (const name of readdirSync(FIXTURES_DIR).filter((file) => file.endsWith('.dmp')).sort()) {
    dumps.set(name, readFileSync(FIXTURES_DIR + name));
  }
  return dumps;
}
