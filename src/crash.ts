/**
 * The one value that flows from parse to spool to drain. A crash is held entirely in memory
 * between parse and commit (bounded by the request limits); after that it lives in the spool.
 */

export interface Dump {
  /** Sanitised dump name (the form field name), e.g. `upload_file_minidump`. */
  name: string;
  data: Buffer;
  /** The part's filename as sent, when known (Crashpad: `<report-uuid>.dmp`); not stored. */
  filename?: string;
  /** Where `data` starts in the inflated body, when the report came gzipped and was read whole. */
  offset?: number;
}

/** Annotations exactly as the client sent them (JSON `extra` values may be non-strings). */
export type Annotations = Record<string, unknown>;

/** What the request parser produces from one report. */
export interface ParsedReport {
  annotations: Annotations;
  dumps: Dump[];
  /** What the parser changed or dropped (odd parts, text cleaned), for `collector_notes`. */
  notes: string[];
  payload: 'multipart' | 'json';
  compressed: boolean;
  /** Bytes of the body as sent (before gunzip). */
  payloadSize: number;
  /**
   * The gzipped body as sent, when it was read whole and every dump's `offset` is known: the spool
   * can keep this instead of the (several times larger) dumps, and cut them out when uploading.
   */
  sentGzip?: Buffer;
}

export interface RawCrashMetadata {
  collector_notes: string[];
  dump_checksums: Record<string, string>;
  payload: 'multipart' | 'json';
  payload_compressed: '0' | '1';
  payload_size: number;
  throttle_rule: string;
  user_agent: string;
  /** The `name` of the upload token the report came with (UPLOAD_TOKENS). */
  upload_token?: string;
}

export type RawCrash = Annotations & {
  submitted_timestamp: string;
  uuid: string;
  version: 2;
  metadata: RawCrashMetadata;
};

export interface Crash {
  crashId: string;
  /** Milliseconds since the epoch, when the collector received it. */
  receivedAt: number;
  rawCrash: RawCrash;
  dumps: Dump[];
  /** ParsedReport.sentGzip, when nothing was removed from the annotations before storage. */
  sentGzip?: Buffer;
}

export function crashBytes(crash: Pick<Crash, 'dumps'>, rawCrashJson: string): number {
  return crash.dumps.reduce((sum, dump) => sum + dump.data.length, Buffer.byteLength(rawCrashJson));
}
