/**
 * Directory creation that survives power loss. A new directory entry is durable only once its
 * parent directory is fsynced (POSIX; found by the power-loss layer): creating `a/b/c` fsyncs the
 * parent of every directory it created, top down.
 */
import { closeSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname, relative, resolve, sep } from 'node:path';

/** The directories a recursive mkdir created, from the first one down to `dir`. */
function createdChain(first: string | undefined, dir: string): string[] {
  if (first === undefined) return [];
  const top = resolve(first);
  const rest = relative(top, resolve(dir));
  const chain = [top];
  if (rest !== '') for (const part of rest.split(sep)) chain.push(`${chain[chain.length - 1]}${sep}${part}`);
  return chain;
}

export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function mkdirDurableSync(dir: string): void {
  for (const created of createdChain(mkdirSync(dir, { recursive: true }), dir)) fsyncDirSync(dirname(created));
}

export async function mkdirDurable(dir: string): Promise<void> {
  for (const created of createdChain(await mkdir(dir, { recursive: true }), dir)) await fsyncDir(dirname(created));
}
