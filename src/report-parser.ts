/**
 * Streaming parse of one crash report: request body → (gunzip) → busboy, with every limit enforced
 * the moment it is crossed, so a hostile body never gets buffered past the limits (I4).
 * The result is held in memory until the spool commit; the limits bound how much.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { createGunzip } from 'node:zlib';
import busboy from 'busboy';
import type { Annotations, Dump, ParsedReport } from './crash.js';
import { sanitizeDumpName } from './storage-keys.js';
import type { Reservation } from './memory-budget.js';

export interface ReportLimits {
  maxBodyBytes: number;
  maxDecompressedBytes: number;
  maxParts: number;
  maxAnnotations: number;
  maxAnnotationBytes: number;
  maxDumpBytes: number;
  maxTotalDumpBytes: number;
}

/** A report refused with a clear answer; nothing of it is stored. */
export class ReportRejected extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly reason: string,
  ) {
    super(`${status} ${reason}`);
  }

  get body(): string {
    return this.status === 413 ? `Discarded=too_large_${this.reason}` : `Discarded=malformed_${this.reason}`;
  }
}

/** The client went away before the body was complete; there is nobody to answer. */
export class ClientGone extends Error {}

const malformed = (reason: string) => new ReportRejected(400, reason);
const tooLarge = (reason: string) => new ReportRejected(413, reason);

const JSON_MAX_DEPTH = 32;
/**
 * Output buffer of the streaming gunzip. Each buffer filled is a round trip to the thread pool;
 * zlib's default (16 KiB) makes that overhead cost more CPU than inflating itself.
 */
const INFLATE_CHUNK_BYTES = 256 * 1024;

/**
 * Joins small chunks (HTTP chunked bodies arrive in pieces of a few KiB) into pieces of at least
 * `size` bytes, so the gunzip stage makes one thread-pool round trip per piece instead of per chunk.
 */
class Coalesce extends Transform {
  private held: Buffer[] = [];
  private heldBytes = 0;
  constructor(private readonly size: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes >= this.size) this.release();
    done();
  }
  override _flush(done: TransformCallback): void {
    this.release();
    done();
  }
  private release(): void {
    if (this.heldBytes === 0) return;
    this.push(this.held.length === 1 ? this.held[0] : Buffer.concat(this.held, this.heldBytes));
    this.held = [];
    this.heldBytes = 0;
  }
}

/** Counts bytes through it and fails the stream once more than `max` have passed. */
class ByteLimit extends Transform {
  bytes = 0;
  constructor(
    private readonly max: number,
    private readonly onExceeded: () => Error,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.max) done(this.onExceeded());
    else done(null, chunk);
  }
}

function checkHeaders(headers: IncomingHttpHeaders, limits: ReportLimits): { gzip: boolean } {
  const contentType = headers['content-type'];
  if (!contentType) throw malformed('no_content_type');
  if (!/^multipart\/form-data\s*(;|$)/i.test(contentType)) throw malformed('wrong_content_type');
  if (!/;\s*boundary=("[^"]+"|[^;\s]+)/i.test(contentType)) throw malformed('no_boundary');

  const encoding = (headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip' && encoding !== 'x-gzip') {
    throw malformed('unsupported_content_encoding');
  }
  const declared = headers['content-length'];
  if (declared !== undefined && Number(declared) > limits.maxBodyBytes) throw tooLarge('body');
  return { gzip: encoding !== 'identity' };
}

function jsonDepth(value: unknown, depth = 0): number {
  if (depth > JSON_MAX_DEPTH || value === null || typeof value !== 'object') return depth;
  let deepest = depth;
  for (const child of Object.values(value)) deepest = Math.max(deepest, jsonDepth(child, depth + 1));
  return deepest;
}

function parseJsonAnnotations(text: string): Annotations {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed('invalid_json');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw malformed('invalid_json_value');
  if (jsonDepth(value) > JSON_MAX_DEPTH) throw malformed('invalid_json_nesting');
  return value as Annotations;
}

const isJson = (mimeType: string) => /^application\/json\b/i.test(mimeType);

/**
 * Parses `body` as a crash report. Resolves with the report, or rejects with ReportRejected
 * (answer it), Overloaded (the in-flight memory budget is spent: 503) or ClientGone (the
 * connection is gone). Every byte it buffers is first taken from `memory`. Never destroys `body` itself: the caller's
 * HTTP layer still owns the connection and may answer on it.
 */
export async function parseReport(
  body: Readable,
  headers: IncomingHttpHeaders,
  limits: ReportLimits,
  memory?: Reservation,
): Promise<ParsedReport> {
  const { gzip } = checkHeaders(headers, limits);

  const annotations: Annotations = {};
  let annotationCount = 0;
  let jsonPayload = false;
  const dumps = new Map<string, Dump>();
  // Names are claimed when a part starts; its bytes arrive later.
  const dumpNamesSeen = new Set<string>();
  let totalDumpBytes = 0;
  let failure: Error | undefined;
  const pendingFiles = new Set<Promise<void>>();

  const sent = new ByteLimit(limits.maxBodyBytes, () => tooLarge('body'));
  const inflated = new ByteLimit(limits.maxDecompressedBytes, () => tooLarge('decompressed_body'));
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers,
      limits: {
        parts: limits.maxParts,
        fields: limits.maxAnnotations,
        fieldSize: limits.maxAnnotationBytes,
        fileSize: limits.maxDumpBytes,
        fieldNameSize: 256,
        headerPairs: 32,
      },
    });
  } catch {
    throw malformed('no_boundary');
  }

  const fail = (error: Error) => {
    if (failure) return;
    failure = error;
    // Deferred: destroying busboy from inside one of its own event handlers makes it throw
    // (it keeps writing to the part it was parsing), which would be an uncaught exception.
    process.nextTick(() => parser.destroy(error));
  };

  const addAnnotation = (name: string, value: string, mimeType: string) => {
    if (name === 'extra' && isJson(mimeType)) {
      Object.assign(annotations, parseJsonAnnotations(value));
      jsonPayload = true;
      return;
    }
    annotationCount += 1;
    if (annotationCount > limits.maxAnnotations) throw tooLarge('annotations');
    annotations[name] = value;
  };

  parser.on('field', (name, value, info) => {
    if (failure) return;
    try {
      memory?.take(value.length);
      if (info.valueTruncated) throw tooLarge('annotation_value');
      if (info.nameTruncated) throw malformed('annotation_name');
      addAnnotation(name, value, info.mimeType);
    } catch (error) {
      fail(error as Error);
    }
  });

  // busboy makes a file of every part with a filename or of type application/octet-stream: those
  // are dumps (except Mozilla's JSON `extra`), and their bytes are kept exactly as sent.
  parser.on('file', (name, stream, info) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const asJson = name === 'extra' && isJson(info.mimeType);
    const dumpName = asJson ? name : sanitizeDumpName(name);
    if (dumpName === undefined) fail(malformed('invalid_dump_name'));
    else if (!asJson && dumpNamesSeen.has(dumpName)) fail(malformed('duplicate_dump_name'));
    else if (!asJson) dumpNamesSeen.add(dumpName);

    const done = new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        if (failure) return;
        try {
          memory?.take(chunk.length);
        } catch (error) {
          return fail(error as Error);
        }
        size += chunk.length;
        if (asJson && size > limits.maxAnnotationBytes) return fail(tooLarge('annotation_value'));
        if (!asJson) {
          totalDumpBytes += chunk.length;
          if (totalDumpBytes > limits.maxTotalDumpBytes) return fail(tooLarge('total_dumps'));
        }
        chunks.push(chunk);
      });
      stream.on('limit', () => fail(asJson ? tooLarge('annotation_value') : tooLarge('dump')));
      // busboy reports a truncated body on each open file stream; an unhandled one kills the process.
      stream.on('error', () => fail(malformed('invalid_payload_structure')));
      stream.on('close', resolve);
      stream.on('end', () => {
        if (!failure && dumpName !== undefined) {
          try {
            if (asJson) addAnnotation(name, Buffer.concat(chunks).toString('utf8'), info.mimeType);
            else {
              // Joining the chunks briefly holds the dump twice.
              memory?.take(size);
              dumps.set(dumpName, { name: dumpName, data: Buffer.concat(chunks, size) });
            }
          } catch (error) {
            fail(error as Error);
          }
        }
        resolve();
      });
    });
    pendingFiles.add(done);
  });

  parser.on('partsLimit', () => fail(tooLarge('parts')));
  parser.on('filesLimit', () => fail(tooLarge('parts')));
  parser.on('fieldsLimit', () => fail(tooLarge('annotations')));

  const clientGone = new Promise<never>((_resolve, reject) => {
    body.once('close', () => {
      if (!body.readableEnded) reject(new ClientGone('client disconnected mid-upload'));
    });
  });
  clientGone.catch(() => undefined);

  body.pipe(sent);
  const stages: NodeJS.ReadWriteStream[] = gzip
    ? [sent, new Coalesce(INFLATE_CHUNK_BYTES / 4), createGunzip({ chunkSize: INFLATE_CHUNK_BYTES }), inflated]
    : [sent];
  try {
    await Promise.race([pipeline([...stages, parser] as unknown as [Readable, NodeJS.WritableStream]), clientGone]);
    await Promise.all(pendingFiles);
  } catch (error) {
    body.unpipe(sent);
    // A gzip error first: busboy's complaint about the cut-off form is only its consequence.
    if ((error as { code?: string }).code?.startsWith('Z_')) throw malformed('bad_gzip');
    if (failure) throw failure;
    if (error instanceof ReportRejected || error instanceof ClientGone) throw error;
    throw malformed('invalid_payload_structure');
  }
  if (failure) throw failure;

  if (Object.keys(annotations).length === 0) throw malformed('no_annotations');
  return {
    annotations,
    dumps: [...dumps.values()],
    payload: jsonPayload ? 'json' : 'multipart',
    compressed: gzip,
    payloadSize: sent.bytes,
  };
}
