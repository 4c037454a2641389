/**
 * Puts a report together from what busboy hands over, part by part: annotations (form fields, or
 * Mozilla's JSON `extra`), dumps (bytes as sent), the notes on anything odd, and every limit per
 * part and in total, checked as the bytes arrive (I4). Every byte held is first taken from the
 * request's memory reservation.
 *
 * busboy calls these listeners synchronously from inside its parser, outside any promise of the
 * request: an exception escaping one of them would end the process. So each listener catches
 * everything and routes it to `fail`, which fails this request only (I11).
 */
import type { Readable } from 'node:stream';
import type busboy from 'busboy';
import type { Annotations, Dump, ParsedReport } from '../crash.js';
import { sanitizeDumpName } from '../dump-names.js';
import { cleanJson, cleanText, findingNotes, noFindings, quoted, type TextFindings } from './annotation-text.js';
import type { Reservation } from './memory-budget.js';
import { malformed, tooLarge, type ReportLimits } from './report-refusal.js';

const JSON_MAX_DEPTH = 32;

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

/** Where `chunk` lies in `form`, if it is a view of form's own bytes (not a copy). */
function offsetWithin(form: Buffer, chunk: Buffer): number | undefined {
  if (chunk.buffer !== form.buffer) return undefined;
  const at = chunk.byteOffset - form.byteOffset;
  return at >= 0 && at + chunk.length <= form.length ? at : undefined;
}

/** What the body driver knows once the whole form was read. */
export interface FormRead {
  /** The part filter's notes and how many parts it let through. */
  filtered: { notes: string[]; partsKept: number };
  compressed: boolean;
  payloadSize: number;
  /** The body as sent, when it was gzipped and read whole (every dump is then a place in it). */
  sentGzip?: Buffer;
}

export class ReportAssembler {
  // Annotations are put together once every part is read, in the order the parts were sent: a
  // JSON extra replaces the form fields before it (as Antenna), but a JSON extra sent as a file
  // part is complete only after busboy may have handed over the fields that follow it.
  private readonly formFields: { seq: number; name: string; value: string }[] = [];
  private jsonExtra: { seq: number; annotations: Annotations } | undefined;
  private partSeq = 0;
  private readonly notes: string[] = [];
  private annotationCount = 0;
  /** Parts busboy handed over, dropped ones too. */
  private partEvents = 0;
  private readonly dumps = new Map<string, Dump>();
  /** Names are claimed when a part starts; its bytes arrive later. */
  private readonly dumpNamesSeen = new Set<string>();
  private totalDumpBytes = 0;
  private readonly pendingFiles = new Set<Promise<void>>();
  /** The first failure; the rest of the form is ignored. */
  failure: Error | undefined;
  /** The inflated form of a gzipped body read whole: a dump that busboy handed over as its bytes is located in it. */
  locateIn: Buffer | undefined;

  constructor(
    private readonly parser: busboy.Busboy,
    private readonly limits: ReportLimits,
    private readonly memory: Reservation | undefined,
  ) {
    parser.on('field', this.guarded(this.onField));
    parser.on('file', this.onFile);
    parser.on('partsLimit', this.guarded(() => this.fail(tooLarge('parts'))));
    parser.on('filesLimit', this.guarded(() => this.fail(tooLarge('parts'))));
    parser.on('fieldsLimit', this.guarded(() => this.fail(tooLarge('annotations'))));
  }

  fail(error: unknown): void {
    if (this.failure) return;
    this.failure = error instanceof Error ? error : new Error(String(error));
    // Deferred: destroying busboy from inside one of its own event handlers makes it throw
    // (it keeps writing to the part it was parsing), which would be an uncaught exception.
    process.nextTick(() => this.parser.destroy(this.failure));
  }

  /** Settles once every file part busboy opened has ended. */
  filesRead(): Promise<unknown> {
    return Promise.all(this.pendingFiles);
  }

  /** The report, once the whole form was read without a failure. */
  report(read: FormRead): ParsedReport {
    if (read.filtered.partsKept > this.partEvents) {
      this.notes.push(`dropped ${read.filtered.partsKept - this.partEvents} part(s) whose Content-Disposition could not be parsed`);
    }
    // No prototype: annotation names such as `__proto__` or `constructor` are ordinary keys.
    const annotations: Annotations = Object.assign(Object.create(null), this.jsonExtra?.annotations);
    for (const field of this.formFields) {
      if (!this.jsonExtra || field.seq > this.jsonExtra.seq) annotations[field.name] = field.value;
    }
    if (Object.keys(annotations).length === 0) throw malformed('no_annotations');
    if (this.jsonExtra && this.formFields.length > 0) this.notes.push('includes annotations in both json-encoded extra and formdata parts');
    const kept = [...this.dumps.values()];
    return {
      annotations,
      dumps: kept,
      notes: [...read.filtered.notes, ...this.notes],
      payload: this.jsonExtra ? 'json' : 'multipart',
      compressed: read.compressed,
      payloadSize: read.payloadSize,
      ...(read.sentGzip && kept.every((dump) => dump.offset !== undefined) ? { sentGzip: read.sentGzip } : {}),
    };
  }

  private guarded<A extends unknown[]>(listener: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        listener.apply(this, args);
      } catch (error) {
        this.fail(error);
      }
    };
  }

  private noteEncoding(name: string, encoding: string): void {
    if (!PLAIN_ENCODINGS.has(encoding)) this.notes.push(`part ${quoted(name)} declares Content-Transfer-Encoding ${quoted(encoding)}; kept as sent`);
  }

  private addJsonExtra(seq: number, text: string): void {
    const findings = noFindings();
    const annotations = parseJsonAnnotations(text, findings);
    this.notes.push(...findingNotes(findings, 'the JSON extra part'));
    if (!this.jsonExtra || seq > this.jsonExtra.seq) this.jsonExtra = { seq, annotations };
  }

  private addFormField(seq: number, name: string, value: string, mimeType: string): void {
    if (!isPlainText(mimeType)) this.notes.push(unknownContentType(name, mimeType));
    this.annotationCount += 1;
    if (this.annotationCount > this.limits.maxAnnotations) throw tooLarge('annotations');
    const findings = noFindings();
    const cleanName = cleanText(name, findings);
    this.formFields.push({ seq, name: cleanName, value: cleanText(value, findings) });
    this.notes.push(...findingNotes(findings, `annotation ${quoted(cleanName)}`));
  }

  private onField(name: string | undefined, value: string | undefined, info: busboy.FieldInfo): void {
    this.partEvents += 1;
    if (this.failure) return;
    if (info.valueTruncated) throw tooLarge('annotation_value');
    if (isMultipart(info.mimeType)) throw malformed('nested_multipart');
    if (!name) {
      this.notes.push('dropped a text part without a name');
      return;
    }
    if (value === undefined) {
      this.notes.push(`the value of ${quoted(name)} could not be decoded; stored empty`);
      value = '';
    }
    this.memory?.take(value.length);
    this.noteEncoding(name, info.encoding);
    this.partSeq += 1;
    if (isJsonExtra(name, info.mimeType)) this.addJsonExtra(this.partSeq, value);
    else this.addFormField(this.partSeq, name, value, info.mimeType);
  }

  // busboy makes a file of every part with a filename or of type application/octet-stream: those
  // are dumps (except Mozilla's JSON `extra`), and their bytes are kept exactly as sent.
  private readonly onFile = (name: string | undefined, stream: Readable & { truncated?: boolean }, info: busboy.FileInfo): void => {
    this.partEvents += 1;
    // First, before anything can throw: busboy reports a truncated body on each open file stream,
    // and an unhandled 'error' ends the process. The cause reaches us through the pipeline.
    stream.on('error', noop);
    try {
      if (this.failure) throw this.failure;
      this.readFile(name, stream, info);
    } catch (error) {
      this.fail(error);
      stream.resume();
    }
  };

  private readFile(name: string | undefined, stream: Readable, info: busboy.FileInfo): void {
    if (isMultipart(info.mimeType)) throw malformed('nested_multipart');
    if (!name) {
      this.notes.push('dropped a file part without a name');
      stream.resume();
      return;
    }
    const { limits, memory } = this;
    const chunks: Buffer[] = [];
    let size = 0;
    // Where the dump starts in `locateIn`, while every chunk is the next piece of it.
    let start: number | undefined;
    const locateIn = this.locateIn;
    let located = locateIn !== undefined;
    const asJson = isJsonExtra(name, info.mimeType);
    const seq = ++this.partSeq;
    const dumpName = asJson ? name : sanitizeDumpName(name);
    if (dumpName === undefined) throw malformed('invalid_dump_name');
    if (!asJson) {
      // As Antenna: the last dump of a name is kept.
      if (this.dumpNamesSeen.has(dumpName)) this.notes.push(`dump ${quoted(dumpName)} sent more than once; the last one is kept`);
      this.dumpNamesSeen.add(dumpName);
    }
    this.noteEncoding(name, info.encoding);
    if (!asJson && info.mimeType.toLowerCase() !== 'application/octet-stream') this.notes.push(unknownContentType(name, info.mimeType));

    const done = new Promise<void>((resolve) => {
      stream.on('close', resolve);
      stream.on(
        'data',
        this.guarded((chunk: Buffer) => {
          if (this.failure) return;
          memory?.take(chunk.length);
          if (located) {
            const at = offsetWithin(locateIn!, chunk);
            if (at === undefined || (start !== undefined && at !== start + size)) located = false;
            else start ??= at;
          }
          size += chunk.length;
          if (asJson && size > limits.maxAnnotationBytes) throw tooLarge('annotation_value');
          if (!asJson) {
            this.totalDumpBytes += chunk.length;
            if (this.totalDumpBytes > limits.maxTotalDumpBytes) throw tooLarge('total_dumps');
          }
          chunks.push(chunk);
        }),
      );
      stream.on(
        'limit',
        this.guarded(() => this.fail(asJson ? tooLarge('annotation_value') : tooLarge('dump'))),
      );
      stream.on(
        'end',
        this.guarded(() => {
          resolve();
          if (this.failure) return;
          if (asJson) {
            this.addJsonExtra(seq, Buffer.concat(chunks).toString('utf8'));
            return;
          }
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
          this.dumps.set(dumpName, dump);
        }),
      );
    });
    this.pendingFiles.add(done);
  }
}
