import { createHash } from 'node:crypto';

/** SHA-256 of `data` as lowercase hex (dump checksums, as in `metadata.dump_checksums`). */
export const sha256Hex = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

/** SHA-256 of `data` as bytes (for constant-time comparison). */
export const sha256Bytes = (data: Uint8Array | string): Buffer => createHash('sha256').update(data).digest();
