/**
 * The settings files an operator writes (THROTTLE_RULES, UPLOAD_TOKENS) share one shape, a JSON
 * object whose one key holds a list, and one way of failing: a message that names the file.
 * `fail` makes the caller's own error class from the message.
 */
import { readFileSync } from 'node:fs';

/** The text of `file`, or `<file>: cannot read the <key> file (<code>)`. */
export function readListFile(file: string, key: string, fail: (message: string) => Error): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw fail(`${file}: cannot read the ${key} file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/** The list under `key` of a document `{"<key>": [ … ]}` with nothing else; `source` names the file in messages. */
export function parseListDocument(json: string, source: string, key: string, fail: (message: string) => Error): unknown[] {
  let document: unknown;
  try {
    document = JSON.parse(json);
  } catch (error) {
    throw fail(`${source}: not valid JSON: ${(error as Error).message}`);
  }
  const list = typeof document === 'object' && document !== null && !Array.isArray(document) ? (document as Record<string, unknown>)[key] : undefined;
  if (!Array.isArray(list) || Object.keys(document as object).length !== 1) throw fail(`${source}: expected {"${key}": [ … ]} and nothing else`);
  return list;
}
