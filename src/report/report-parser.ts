/**
 * Streaming parse of one crash report: request body → (gunzip) → busboy, with every limit enforced
 * the moment it is crossed, so a hostile body never gets buffered past the limits (I4).
 * The result is held in memory until the spool commit; the limits bound how much.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { promisify } from 'node:util';
import { createGunzip, gunzip, gunzipSync } from 'node:zlib';
import busboy from 'busboy';
import type { Annotations, Dump, ParsedReport } from '../crash.js';
import { sanitizeDumpName } from '../dump-names.js';
import { Overloaded, type Reservation } from './memory-budget.js';
import { cleanJson, cleanText, findingNotes, noFindings, quoted, type TextFindings } from './annotation-text.js';
import { PartFilter, PartRewriter } from './part-filter.js';
import { readBodyStart } from './whole-body.js';

export interface ReportLimits {
  maxBodyBytes: number;
  maxDecompressedBytes: number;
  maxParts: number;
  maxAnnotations: number;
  maxAnnotationBytes: number;
  maxDumpBytes: number;
  maxTotalDumpBytes: number;
  /** Bodies up to this size as sent are read whole and parsed in one pass (WHOLE_BODY_MAX_BYTES). */
  wholeBodyMaxBytes: number;
}

/** A report refused with a clear answer; nothing of it is stored. */
export class ReportRejected extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly reason: string,
    /** Set when the refusal hides an unexpected error (a bug): logged with its stack. */
    readonly unexpected?: unknown,
  ) {
    super(`${status} ${reason}`);
  }

  /** The answer's reason as metrics and logs name it: `too_large_<limit>` or `malformed_<reason>`. */
  get metricReason(): string {
    return this.status === 413 ? `too_large_${this.reason}` : `malformed_${this.reason}`;
  }

  get body(): string {
    return `Discarded=${this.metricReason}`;
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

function jsonDepth(value: unknown, depth = 0): number {
  if (depth > JSON_MAX_DEPTH || value === null || typeof value !== 'object') return depth;
  let deepest = depth;
  for (const child of Object.values(value)) deepest = Math.max(deepest, jsonDepth(child, depth + 1));
  return deepest;
}

function parseJsonAnnotations(text: string, findings: TextFindings): Annotations {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed('invalid_json');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw malformed('invalid_json_value');
  if (jsonDepth(value) > JSON_MAX_DEPTH) throw malformed('invalid_json_nesting');
  return cleanJson(value, findings) as Annotations;
}

const isJson = (mimeType: string) => /^application\/json\b/i.test(mimeType);
/** Mozilla's annotations: one JSON document in a part named `extra`. */
const isJsonExtra = (name: string, mimeType: string) => name === 'extra' && isJson(mimeType);
const isMultipart = (mimeType: string) => /^multipart\//i.test(mimeType);
const isPlainText = (mimeType: string) => mimeType.toLowerCase() === 'text/plain';
/** Antenna's note for a part that is neither a text annotation nor an octet-stream dump. */
const unknownContentType = (name: string, mimeType: string) => `unknown content type: ${name} ${mimeType}`;
/** Transfer encodings that mean "as is"; any other is noted, and the bytes are kept as sent. */
const PLAIN_ENCODINGS = new Set(['7bit', '8bit', 'binary']);
const noop = () => undefined;

/**
 * Parses `body` as a crash report. Resolves with the report, or rejects with ReportRejected
 * (answer it), Overloaded (the in-flight memory budget is spent: 503) or ClientGone (the
 * connection is gone). Every byte it buffers is first taken from `memory`. Never destroys `body` itself: the caller's
 * HTTP layer still owns the connection and may answer on it.
 *
 * busboy calls the listeners below synchronously from inside its parser, outside this function's
 * promise: an exception escaping one of them would end the process. So each listener catches
 * everything and routes it to `fail`, which fails this request only.
 */
export async function parseReport(
  body: Readable,
  headers: IncomingHttpHeaders,
  limits: ReportLimits,
  memory?: Reservation,
): Promise<ParsedReport> {
  const { gzip, boundary } = checkHeaders(headers, limits);

  // Annotations are put together once every part is read, in the order the parts were sent: a
  // JSON extra replaces the form fields before it (as Antenna), but a JSON extra sent as a file
  // part is complete only after busboy may have handed over the fields that follow it.
  const formFields: { seq: number; name: string; value: string }[] = [];
  let jsonExtra: { seq: number; annotations: Annotations } | undefined;
  let partSeq = 0;
  const notes: string[] = [];
  let annotationCount = 0;
  let partEvents = 0;
  const dumps = new Map<string, Dump>();
  // Names are claimed when a part starts; its bytes arrive later.
  const dumpNamesSeen = new Set<string>();
  let totalDumpBytes = 0;
  let failure: Error | undefined;
  const pendingFiles = new Set<Promise<void>>();
  /** The inflated form of a gzipped body read whole: a dump that busboy handed over as its bytes is located in it. */
  let locateIn: Buffer | undefined;

  const partsOptions = { boundary, maxParts: limits.maxParts, onTooManyParts: () => tooLarge('parts') };
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      // busboy reads only form-data; a top-level multipart/mixed body has the same syntax.
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

  const fail = (error: unknown) => {
    if (failure) return;
    failure = error instanceof Error ? error : new Error(String(error));
    // Deferred: destroying busboy from inside one of its own event handlers makes it throw
    // (it keeps writing to the part it was parsing), which would be an uncaught exception.
    process.nextTick(() => parser.destroy(failure));
  };
  const guarded =
    <A extends unknown[]>(listener: (...args: A) => void) =>
    (...args: A) => {
      try {
        listener(...args);
      } catch (error) {
        fail(error);
      }
    };

  const noteEncoding = (name: string, encoding: string) => {
    if (!PLAIN_ENCODINGS.has(encoding)) notes.push(`part ${quoted(name)} declares Content-Transfer-Encoding ${quoted(encoding)}; kept as sent`);
  };

  const addJsonExtra = (seq: number, text: string) => {
    const findings = noFindings();
    const annotations = parseJsonAnnotations(text, findings);
    notes.push(...findingNotes(findings, 'the JSON extra part'));
    if (!jsonExtra || seq > jsonExtra.seq) jsonExtra = { seq, annotations };
  };

  const addFormField = (seq: number, name: string, value: string, mimeType: string) => {
    if (!isPlainText(mimeType)) notes.push(unknownContentType(name, mimeType));
    annotationCount += 1;
    if (annotationCount > limits.maxAnnotations) throw tooLarge('annotations');
    const findings = noFindings();
    const cleanName = cleanText(name, findings);
    formFields.push({ seq, name: cleanName, value: cleanText(value, findings) });
    notes.push(...findingNotes(findings, `annotation ${quoted(cleanName)}`));
  };

  parser.on(
    'field',
    guarded((name: string | undefined, value: string | undefined, info: busboy.FieldInfo) => {
      partEvents += 1;
      if (failure) return;
      if (info.valueTruncated) throw tooLarge('annotation_value');
      if (isMultipart(info.mimeType)) throw malformed('nested_multipart');
      if (!name) {
        notes.push('dropped a text part without a name');
        return;
      }
      if (value === undefined) {
        notes.push(`the value of ${quoted(name)} could not be decoded; stored empty`);
        value = '';
      }
      memory?.take(value.length);
      noteEncoding(name, info.encoding);
      partSeq += 1;
      if (isJsonExtra(name, info.mimeType)) addJsonExtra(partSeq, value);
      else addFormField(partSeq, name, value, info.mimeType);
    }),
  );

  // busboy makes a file of every part with a filename or of type application/octet-stream: those
  // are dumps (except Mozilla's JSON `extra`), and their bytes are kept exactly as sent.
  parser.on('file', (name: string | undefined, stream: Readable & { truncated?: boolean }, info: busboy.FileInfo) => {
    partEvents += 1;
    // First, before anything can throw: busboy reports a truncated body on each open file stream,
    // and an unhandled 'error' ends the process. The cause reaches us through the pipeline.
    stream.on('error', noop);
    try {
      if (failure) throw failure;
      readFile(name, stream, info);
    } catch (error) {
      fail(error);
      stream.resume();
    }
  });

  const readFile = (name: string | undefined, stream: Readable, info: busboy.FileInfo) => {
    if (isMultipart(info.mimeType)) throw malformed('nested_multipart');
    if (!name) {
      notes.push('dropped a file part without a name');
      stream.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    // Where the dump starts in `locateIn`, while every chunk is the next piece of it.
    let start: number | undefined;
    let located = locateIn !== undefined;
    const asJson = isJsonExtra(name, info.mimeType);
    const seq = ++partSeq;
    const dumpName = asJson ? name : sanitizeDumpName(name);
    if (dumpName === undefined) throw malformed('invalid_dump_name');
    if (!asJson) {
      // As Antenna: the last dump of a name is kept.
      if (dumpNamesSeen.has(dumpName)) notes.push(`dump ${quoted(dumpName)} sent more than once; the last one is kept`);
      dumpNamesSeen.add(dumpName);
    }
    noteEncoding(name, info.encoding);
    if (!asJson && info.mimeType.toLowerCase() !== 'application/octet-stream') notes.push(unknownContentType(name, info.mimeType));

    const done = new Promise<void>((resolve) => {
      stream.on('close', resolve);
      stream.on(
        'data',
        guarded((chunk: Buffer) => {
          if (failure) return;
          memory?.take(chunk.length);
          if (located) {
            const at = offsetWithin(locateIn!, chunk);
            if (at === undefined || (start !== undefined && at !== start + size)) located = false;
            else start ??= at;
          }
          size += chunk.length;
          if (asJson && size > limits.maxAnnotationBytes) throw tooLarge('annotation_value');
          if (!asJson) {
            totalDumpBytes += chunk.length;
            if (totalDumpBytes > limits.maxTotalDumpBytes) throw tooLarge('total_dumps');
          }
          chunks.push(chunk);
        }),
      );
      stream.on(
        'limit',
        guarded(() => fail(asJson ? tooLarge('annotation_value') : tooLarge('dump'))),
      );
      stream.on(
        'end',
        guarded(() => {
          resolve();
          if (failure) return;
          if (asJson) {
            addJsonExtra(seq, Buffer.concat(chunks).toString('utf8'));
          } else {
            let dump: Dump;
            if (located) {
              const offset = start ?? 0;
              dump = { name: dumpName, data: locateIn!.subarray(offset, offset + size), offset };
            } else {
              // Joining the chunks briefly holds the dump twice.
              memory?.take(size);
              dump = { name: dumpName, data: Buffer.concat(chunks, size) };
            }
            if (info.filename !== undefined) dump.filename = info.filename;
            dumps.set(dumpName, dump);
          }
        }),
      );
    });
    pendingFiles.add(done);
  };

  parser.on('partsLimit', guarded(() => fail(tooLarge('parts'))));
  parser.on('filesLimit', guarded(() => fail(tooLarge('parts'))));
  parser.on('fieldsLimit', guarded(() => fail(tooLarge('annotations'))));

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
      await Promise.all(pendingFiles);
    } catch (error) {
      throw refusal(failure ?? error);
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
      await Promise.all(pendingFiles);
    } catch (error) {
      rest?.unpipe(sent);
      // A gzip error first: busboy's complaint about the cut-off form is only its consequence.
      if ((error as { code?: string }).code?.startsWith('Z_')) throw malformed('bad_gzip');
      throw refusal(failure ?? error);
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
        locateIn = form;
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
  if (failure) throw refusal(failure);

  if (filtered.partsKept > partEvents) {
    notes.push(`dropped ${filtered.partsKept - partEvents} part(s) whose Content-Disposition could not be parsed`);
  }
  // No prototype: annotation names such as `__proto__` or `constructor` are ordinary keys.
  const annotations: Annotations = Object.assign(Object.create(null), jsonExtra?.annotations);
  for (const field of formFields) {
    if (!jsonExtra || field.seq > jsonExtra.seq) annotations[field.name] = field.value;
  }
  if (Object.keys(annotations).length === 0) throw malformed('no_annotations');
  if (jsonExtra && formFields.length > 0) notes.push('includes annotations in both json-encoded extra and formdata parts');
  const kept = [...dumps.values()];
  return {
    annotations,
    dumps: kept,
    notes: [...filtered.notes, ...notes],
    payload: jsonExtra ? 'json' : 'multipart',
    compressed: gzip,
    payloadSize,
    ...(sentGzip && kept.every((dump) => dump.offset !== undefined) ? { sentGzip } : {}),
  };
}

/** Where `chunk` lies in `form`, if it is a view of form's own bytes (not a copy). */
function offsetWithin(form: Buffer, chunk: Buffer): number | undefined {
  if (chunk.buffer !== form.buffer) return undefined;
  const at = chunk.byteOffset - form.byteOffset;
  return at >= 0 && at + chunk.length <= form.length ? at : undefined;
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

/**
 * What a failed parse is answered with. Errors of the request's own making pass as they are; a
 * multipart syntax error is `invalid_payload_structure`; anything else is a bug of ours, which
 * still fails this request only.
 */
function refusal(error: unknown): Error {
  if (error instanceof ReportRejected || error instanceof ClientGone || error instanceof Overloaded) return error;
  // busboy (1.6) reports a broken form with plain Errors and no code or class of their own, so
  // its message is all there is to tell them from a bug of ours.
  if (error instanceof Error && /^(Unexpected end of form|Malformed part header|Multipart:)/.test(error.message)) {
    return malformed('invalid_payload_structure');
  }
  return new ReportRejected(400, 'invalid_payload_structure', error);
}
