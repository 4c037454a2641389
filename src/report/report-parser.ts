/**
 * Reads one crash report's body and drives busboy over it: headers checked, the body read whole
 * (up to WHOLE_BODY_MAX_BYTES as sent: inflated in one call, parsed in one pass) or streamed
 * through byte limits and gunzip, every limit enforced the moment it is crossed, so a hostile body
 * never gets buffered past the limits (I4). What the parts become is report-assembler.ts's job.
 * The result is held in memory until the spool commit; the limits bound how much.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { promisify } from 'node:util';
import { createGunzip, gunzip, gunzipSync } from 'node:zlib';
import busboy from 'busboy';
import type { ParsedReport } from '../crash.js';
import type { Reservation } from './memory-budget.js';
import { PartFilter, PartRewriter } from './part-filter.js';
import { ReportAssembler } from './report-assembler.js';
import { ClientGone, malformed, refusal, tooLarge, type ReportLimits } from './report-refusal.js';
import { readBodyStart } from './whole-body.js';


/**
 * Output buffer of the streaming gunzip. Each buffer filled is a round trip to the thread pool;
 * zlib's default (16 KiB) makes that overhead cost more CPU than inflating itself.
 */
const INFLATE_CHUNK_BYTES = 256 * 1024;
/**
 * A body read whole is inflated in one call when it inflates to at most this; one that inflates
 * further streams after all, with MAX_DECOMPRESSED_BYTES checked as it goes.
 */
const WHOLE_INFLATED_MAX_BYTES = 2 * 1024 * 1024;
/**
 * Up to this size as sent, a body is inflated on the event loop (a thread-pool round trip costs
 * more than inflating it); larger ones are inflated in the thread pool, off the event loop.
 */
const INFLATE_ON_LOOP_MAX_BYTES = 16 * 1024;
const gunzipInPool = promisify(gunzip);

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

function checkHeaders(headers: IncomingHttpHeaders, limits: ReportLimits): { gzip: boolean; boundary: string } {
  const contentType = headers['content-type'];
  if (!contentType) throw malformed('no_content_type');
  // Antenna also takes multipart/mixed at the top (parts are read the same way).
  if (!/^multipart\/(form-data|mixed)\s*(;|$)/i.test(contentType)) throw malformed('wrong_content_type');
  const boundary = /;\s*boundary=(?:"((?:[^"\\]|\\.)+)"|([^;\s]+))/i.exec(contentType);
  if (!boundary) throw malformed('no_boundary');

  // As Antenna: a body announced as empty (or not announced at all) is refused before anything else.
  const declared = headers['content-length'];
  const chunked = headers['transfer-encoding'] !== undefined;
  if (!chunked && (declared === undefined || Number(declared) === 0)) throw malformed('no_content_length');

  const encoding = (headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip' && encoding !== 'x-gzip') {
    throw malformed('unsupported_content_encoding');
  }
  if (declared !== undefined && Number(declared) > limits.maxBodyBytes) throw tooLarge('body');
  return { gzip: encoding !== 'identity', boundary: boundary[1]?.replace(/\\(.)/g, '$1') ?? boundary[2]! };
}

const noop = () => undefined;

/** busboy over the form; a top-level multipart/mixed body has form-data's syntax and is read as one. */
function formParser(headers: IncomingHttpHeaders, limits: ReportLimits): busboy.Busboy {
  try {
    return busboy({
      headers: { ...headers, 'content-type': headers['content-type']!.replace(/^\s*multipart\/mixed/i, 'multipart/form-data') },
      // Part names are decoded as UTF-8 (bytes that are not become U+FFFD), values too unless declared otherwise.
      defParamCharset: 'utf8',
      defCharset: 'utf8',
      limits: {
        parts: limits.maxParts,
        fields: limits.maxAnnotations,
        fieldSize: limits.maxAnnotationBytes,
        fileSize: limits.maxDumpBytes,
        headerPairs: 32,
      },
    });
  } catch {
    throw malformed('no_boundary');
  }
}

/**
 * Parses `body` as a crash report. Resolves with the report, or rejects with ReportRejected
 * (answer it), Overloaded (the in-flight memory budget is spent: 503) or ClientGone (the
 * connection is gone). Every byte it buffers is first taken from `memory`. Never destroys `body`
 * itself: the caller's HTTP layer still owns the connection and may answer on it.
 */
export async function parseReport(body: Readable, headers: IncomingHttpHeaders, limits: ReportLimits, memory?: Reservation): Promise<ParsedReport> {
  const { gzip, boundary } = checkHeaders(headers, limits);
  const parser = formParser(headers, limits);
  const assembler = new ReportAssembler(parser, limits, memory);
  const partsOptions = { boundary, maxParts: limits.maxParts, onTooManyParts: () => tooLarge('parts') };
  const gone = () => new ClientGone('client disconnected mid-upload');

  /** The form of a body read whole, in one pass: see PartRewriter.formBytes and gaveUp for the cuts. */
  const parseWhole = async (form: Buffer) => {
    memory?.take(form.length);
    const pieces: Buffer[] = [];
    const rewriter = new PartRewriter(partsOptions, (bytes) => pieces.push(bytes));
    rewriter.writeWhole(form);
    rewriter.end();
    if (rewriter.failure) throw refusal(rewriter.failure);
    try {
      if (rewriter.gaveUp) {
        await writeAll(parser, pieces);
      } else {
        const output = rewriter.changed ? Buffer.concat(pieces) : form;
        await writeAll(parser, [output.subarray(0, rewriter.formBytes ?? output.length)]);
      }
      await assembler.filesRead();
    } catch (error) {
      throw refusal(assembler.failure ?? error);
    }
    return rewriter;
  };

  /** The body through the stream stages, from what was read of it (`head`) on; returns its size as sent. */
  const parseStreamed = async (head: Buffer[], rest: Readable | undefined) => {
    const sent = new ByteLimit(limits.maxBodyBytes, () => tooLarge('body'));
    const inflated = new ByteLimit(limits.maxDecompressedBytes, () => tooLarge('decompressed_body'));
    const parts = new PartFilter(partsOptions);
    const clientGone = new Promise<never>((_resolve, reject) => {
      body.once('close', () => {
        if (!body.readableEnded) reject(gone());
      });
    });
    clientGone.catch(noop);

    for (const chunk of head) sent.write(chunk);
    if (rest) rest.pipe(sent);
    else sent.end();
    const stages: NodeJS.ReadWriteStream[] = gzip
      ? [sent, new Coalesce(INFLATE_CHUNK_BYTES / 4), createGunzip({ chunkSize: INFLATE_CHUNK_BYTES }), inflated, parts]
      : [sent, parts];
    try {
      await Promise.race([pipeline([...stages, parser] as unknown as [Readable, NodeJS.WritableStream]), clientGone]);
      await assembler.filesRead();
    } catch (error) {
      rest?.unpipe(sent);
      // A gzip error first: busboy's complaint about the cut-off form is only its consequence.
      if ((error as { code?: string }).code?.startsWith('Z_')) throw malformed('bad_gzip');
      throw refusal(assembler.failure ?? error);
    }
    return { parts, payloadSize: sent.bytes };
  };

  const start = await readBodyStart(body, Math.min(limits.wholeBodyMaxBytes, limits.maxBodyBytes), (bytes) => memory?.take(bytes), gone);
  let filtered: { notes: string[]; partsKept: number };
  let payloadSize: number;
  let sentGzip: Buffer | undefined;
  if ('whole' in start) {
    const form = await inflateWhole(start.whole, gzip, limits.maxDecompressedBytes);
    if (form !== undefined) {
      if (gzip) {
        assembler.locateIn = form;
        sentGzip = start.whole;
      }
      filtered = await parseWhole(form);
      payloadSize = start.whole.length;
    } else {
      ({ parts: filtered, payloadSize } = await parseStreamed([start.whole], undefined));
    }
  } else {
    ({ parts: filtered, payloadSize } = await parseStreamed(start.head, body));
  }
  if (assembler.failure) throw refusal(assembler.failure);
  return assembler.report({ filtered, compressed: gzip, payloadSize, ...(sentGzip ? { sentGzip } : {}) });
}

/**
 * The form inside a body read whole: the body itself, or inflated in one call. Undefined when it
 * inflates past WHOLE_INFLATED_MAX_BYTES (it then streams, where MAX_DECOMPRESSED_BYTES is checked).
 */
async function inflateWhole(body: Buffer, gzip: boolean, maxDecompressedBytes: number): Promise<Buffer | undefined> {
  if (!gzip) return body;
  const bound = Math.min(maxDecompressedBytes, WHOLE_INFLATED_MAX_BYTES);
  try {
    if (body.length <= INFLATE_ON_LOOP_MAX_BYTES) return gunzipSync(body, { maxOutputLength: bound });
    return await gunzipInPool(body, { maxOutputLength: bound, chunkSize: INFLATE_CHUNK_BYTES });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      if (bound === maxDecompressedBytes) throw tooLarge('decompressed_body');
      return undefined;
    }
    if (code?.startsWith('Z_')) throw malformed('bad_gzip');
    throw error;
  }
}

/** Writes `pieces` and the end to busboy; settles when it has read the whole form or failed. */
function writeAll(parser: busboy.Busboy, pieces: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    parser.on('error', reject);
    parser.once('finish', resolve);
    // Only a close without a finish fails the form: an Error made on every close costs a stack trace per report.
    parser.once('close', () => {
      if (!parser.writableFinished) reject(malformed('invalid_payload_structure'));
    });
    for (const piece of pieces) parser.write(piece);
    parser.end();
  });
}
