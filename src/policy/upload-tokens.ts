/**
 * `UPLOAD_TOKENS`: who may post. Crashpad can send no headers of its own, only a URL, so a token
 * comes as `?token=` (or `Authorization: Bearer …` from clients that can). Each entry names a
 * sender, the products it may post, its rate and whether it may choose crash IDs.
 *
 *   {"tokens": [{"token": "…", "name": "electron-app", "products": ["MyApp"], "max_per_minute": 600, "may_set_crash_id": false}]}
 *
 * Tokens are compared as SHA-256 digests in constant time, against every entry, so the time an
 * answer takes tells nothing about how close a guess was.
 */
import { timingSafeEqual } from 'node:crypto';
import { sha256Bytes } from '../sha256.js';
import { parseListDocument, readListFile } from './list-file.js';

export class UploadTokensError extends Error {}

export interface UploadToken {
  /** Stored as `metadata.upload_token` and logged; the token itself never is. */
  name: string;
  /** Products (`ProductName`) this sender may post; undefined: any. */
  products?: ReadonlySet<string>;
  maxPerMinute?: number;
  maySetCrashId: boolean;
}

interface Entry extends UploadToken {
  digest: Buffer;
}

const FIELDS = new Set(['token', 'name', 'products', 'max_per_minute', 'may_set_crash_id']);
const MIN_TOKEN_LENGTH = 16;

function entry(spec: unknown, index: number, names: Set<string>, digests: Set<string>): Entry {
  const where = (field: string) => `token #${index + 1}${field ? ` field "${field}"` : ''}`;
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new UploadTokensError(`${where('')}: expected an object`);
  const record = spec as Record<string, unknown>;
  for (const field of Object.keys(record)) {
    if (!FIELDS.has(field)) throw new UploadTokensError(`${where(field)}: unknown field; expected ${[...FIELDS].join(', ')}`);
  }
  const { token, name, products, max_per_minute: maxPerMinute, may_set_crash_id: maySetCrashId } = record;
  if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || /[\s,]/.test(token)) {
    throw new UploadTokensError(`${where('token')}: expected a string of at least ${MIN_TOKEN_LENGTH} characters without spaces`);
  }
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    throw new UploadTokensError(`${where('name')}: expected 1-64 letters, digits, '_', '.', '-'`);
  }
  if (names.has(name)) throw new UploadTokensError(`${where('name')}: "${name}" is used by an earlier token`);
  const digest = sha256Bytes(token);
  if (digests.has(digest.toString('hex'))) throw new UploadTokensError(`${where('token')}: the same token as an earlier entry`);
  names.add(name);
  digests.add(digest.toString('hex'));
  if (products !== undefined && (!Array.isArray(products) || products.length === 0 || !products.every((p) => typeof p === 'string'))) {
    throw new UploadTokensError(`${where('products')}: expected a non-empty list of product names`);
  }
  if (maxPerMinute !== undefined && (typeof maxPerMinute !== 'number' || !Number.isInteger(maxPerMinute) || maxPerMinute < 1)) {
    throw new UploadTokensError(`${where('max_per_minute')}: expected a whole number of at least 1`);
  }
  if (maySetCrashId !== undefined && typeof maySetCrashId !== 'boolean') {
    throw new UploadTokensError(`${where('may_set_crash_id')}: expected true or false`);
  }
  return {
    name,
    digest,
    maySetCrashId: maySetCrashId ?? false,
    ...(products ? { products: new Set(products as string[]) } : {}),
    ...(maxPerMinute !== undefined ? { maxPerMinute } : {}),
  };
}

export function parseUploadTokens(json: string, source: string): Entry[] {
  const tokens = parseListDocument(json, source, 'tokens', (message) => new UploadTokensError(message));
  const names = new Set<string>();
  const digests = new Set<string>();
  try {
    return tokens.map((spec, index) => entry(spec, index, names, digests));
  } catch (error) {
    throw new UploadTokensError(`${source}: ${(error as Error).message}`);
  }
}

/** The tokens file, re-readable (SIGHUP) while requests use the entries read before. */
export class UploadTokens {
  private constructor(
    readonly file: string,
    private entries: readonly Entry[],
  ) {}

  /** Reads and checks `file`; throws UploadTokensError naming the file, entry and field. */
  static load(file: string): UploadTokens {
    return new UploadTokens(file, UploadTokens.read(file));
  }

  private static read(file: string): Entry[] {
    const json = readListFile(file, 'tokens', (message) => new UploadTokensError(message));
    return parseUploadTokens(json, file);
  }

  get size(): number {
    return this.entries.length;
  }

  /** Reads the file again; on any problem the entries stay as they were and the error is thrown. */
  reload(): void {
    this.entries = UploadTokens.read(this.file);
  }

  /** The entry `presented` belongs to, or undefined. Compares with every entry, each in constant time. */
  find(presented: string | undefined): UploadToken | undefined {
    if (presented === undefined || presented === '') return undefined;
    const digest = sha256Bytes(presented);
    let found: Entry | undefined;
    for (const candidate of this.entries) {
      if (timingSafeEqual(candidate.digest, digest) && !found) found = candidate;
    }
    return found;
  }
}

/** The token a request presents: `Authorization: Bearer …` or the `token` URL query parameter. */
export function presentedToken(authorization: string | undefined, query: URLSearchParams): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return bearer?.[1] ?? query.get('token') ?? undefined;
}
