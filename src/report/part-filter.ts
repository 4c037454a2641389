/**
 * Sits between the (inflated) body and busboy and gives every part's header block a defined
 * meaning before busboy reads it. busboy skips some parts silently (no `Content-Disposition`, a
 * disposition other than `form-data`), refuses the whole form for others (a part with no header
 * at all, control bytes in a header), and cannot decode some charsets (the value is lost). Here:
 * - a part without headers, or without `Content-Disposition`, or with a disposition other than
 *   `form-data`/`attachment`/`inline`, is cut out of the stream and noted;
 * - `attachment` and `inline` are rewritten to `form-data` (so a named one is kept) and noted;
 * - control bytes in header lines become U+FFFD (names are decoded as UTF-8) and are noted;
 * - a declared charset busboy cannot decode correctly becomes `utf-8` and is noted;
 * - every part counts towards MAX_PARTS, dropped ones too.
 * Part data passes through untouched: only header blocks — the bytes between a boundary line and
 * the empty line after it, found exactly as busboy finds them — are ever rewritten.
 */
import { Transform, type TransformCallback } from 'node:stream';
import StreamSearch from 'streamsearch';

/** busboy's own bound on one part's header block; past it busboy refuses the form. */
const MAX_HEADER_BYTES = 16 * 1024;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
/** Charsets busboy decodes as declared; any other declared charset is decoded as UTF-8. */
const DECODABLE_CHARSETS = new Set([
  'utf-8', 'utf8', 'us-ascii', 'ascii', 'latin1', 'iso-8859-1', 'iso8859-1', 'iso88591', 'iso_8859-1',
  'iso_8859-1:1987', 'windows-1252', 'cp1252', 'x-cp1252', 'utf-16le', 'utf16le', 'ucs-2', 'ucs2',
]);
/**
 * A header block that `rewriteHeaderBlock` would return unchanged, matched in one step: a `form-data`
 * disposition, then at most a Content-Type without parameters (so no charset), no control bytes
 * and no line breaks but the one between them. Nearly every part a client sends looks like this.
 */
const PLAIN_HEADER_BLOCK = /^content-disposition:[ \t]*form-data[ \t]*(?:;[^\x00-\x08\x0a-\x1f\x7f]*)?(?:\r\ncontent-type:[^\x00-\x08\x0a-\x1f\x7f;]*)?$/i;
/** U+FFFD as UTF-8, written into a latin1 header string. */
const REPLACEMENT = '\u00ef\u00bf\u00bd';

type Mode = 'data' | 'dropping' | 'after-boundary' | 'header' | 'passthrough';

export interface PartFilterOptions {
  boundary: string;
  maxParts: number;
  onTooManyParts: () => Error;
}

const printable = (text: string) => text.replace(/[^\x21-\x7e]/g, '?').slice(0, 40);

/**
 * The filter itself, fed by hand: `write` the body's bytes in any cuts, then `end`; what busboy
 * should read comes out through `output`, synchronously. A body read whole goes through it in one
 * call; PartFilter wraps it as a stream.
 */
export class PartRewriter {
  /** What was changed or dropped, for the raw crash's `collector_notes`. */
  readonly notes: string[] = [];
  /** Parts handed on to busboy: each should come out as one field or file. */
  partsKept = 0;
  private partsSeen = 0;
  private mode: Mode = 'data';
  private readonly search: StreamSearch;
  private readonly boundaryLine: Buffer;
  private afterBoundary: number[] = [];
  private header: Buffer[] = [];
  private headerBytes = 0;
  /** The last bytes of the header held so far: a terminator may straddle two chunks. */
  private headerTail = Buffer.alloc(0);
  /** Bytes of the virtual CRLF fed first (as busboy does) still to be kept out of the output. */
  private virtualBytes = CRLF.length;
  private started = false;
  private wholeBody = false;
  private outputBytes = 0;
  /** False while every byte went out as it came in: the output is then the body itself. */
  changed = false;
  /**
   * Bytes of output up to the end of the first closing boundary line ("--boundary--"), or
   * undefined. busboy ignores what follows it, but only from its next write on: within the write
   * that closed the form it goes on reading parts, and one left open hangs it forever. So a
   * caller that writes more than one piece at once must cut the output here.
   */
  formBytes: number | undefined;
  /**
   * True once a header block could not be read (cut by a boundary, or too long) and the rest went
   * through as it came: then only the stream's own cuts (one write per piece of output) are
   * known to make busboy read it as it reads the stream.
   */
  gaveUp = false;
  /** Set once MAX_PARTS is crossed; what follows is still filtered, and the caller fails the form. */
  failure: Error | undefined;

  constructor(
    private readonly options: PartFilterOptions,
    private readonly emit: (bytes: Buffer) => void,
  ) {
    this.boundaryLine = Buffer.from(`\r\n--${options.boundary}`, 'latin1');
    this.search = new StreamSearch(this.boundaryLine, (isMatch, data, start, end, isDataSafe) => {
      if (data && end > start) this.onData(isDataSafe ? data.subarray(start, end) : Buffer.from(data.subarray(start, end)));
      if (isMatch) this.onBoundary();
    });
  }

  /** Feeds the next bytes of the body. */
  write(chunk: Buffer): void {
    if (!this.started) {
      // busboy searches for CRLF + "--boundary", and feeds a CRLF first so the first line matches.
      this.started = true;
      this.search.push(CRLF);
    }
    this.search.push(chunk);
  }

  /**
   * Feeds the whole body at once, instead of `write`: the boundaries are found with
   * Buffer.indexOf (native), far cheaper than the streaming search. Then `end`.
   */
  writeWhole(body: Buffer): void {
    if (this.started) throw new Error('writeWhole takes the whole body, before anything else');
    this.started = true;
    this.wholeBody = true;
    // As if a CRLF came first (see write), without copying the body behind one: a body that starts
    // with "--boundary" begins with a boundary line whose CRLF is that virtual one; otherwise the
    // virtual CRLF is data that `output` would skip, so it is neither fed nor skipped.
    let at = 0;
    if (body.subarray(0, this.boundaryLine.length - CRLF.length).equals(this.boundaryLine.subarray(CRLF.length))) {
      this.onBoundary();
      at = this.boundaryLine.length - CRLF.length;
    } else {
      this.virtualBytes = 0;
    }
    for (let found = body.indexOf(this.boundaryLine, at); found !== -1; found = body.indexOf(this.boundaryLine, at)) {
      if (found > at) this.onData(body.subarray(at, found));
      this.onBoundary();
      at = found + this.boundaryLine.length;
    }
    if (at < body.length) this.onData(body.subarray(at));
  }

  end(): void {
    if (!this.wholeBody) this.search.destroy();
    if (this.mode === 'after-boundary') this.output(Buffer.concat([this.boundaryLine, Buffer.from(this.afterBoundary)]));
    if (this.mode === 'header') this.output(this.heldHeader());
  }

  private output(bytes: Buffer): void {
    if (this.virtualBytes > 0) {
      const skip = Math.min(this.virtualBytes, bytes.length);
      this.virtualBytes -= skip;
      bytes = bytes.subarray(skip);
    }
    this.outputBytes += bytes.length;
    if (bytes.length > 0) this.emit(bytes);
  }

  private heldHeader(): Buffer {
    return Buffer.concat([this.boundaryLine, CRLF, ...this.header], this.boundaryLine.length + CRLF.length + this.headerBytes);
  }

  private onBoundary(): void {
    switch (this.mode) {
      case 'passthrough':
        this.output(this.boundaryLine);
        return;
      case 'after-boundary':
        // Two boundary lines in a row: the first one opened nothing.
        this.output(Buffer.concat([this.boundaryLine, Buffer.from(this.afterBoundary)]));
        break;
      case 'header':
        // A header block cut by a boundary: hand busboy the bytes as they came and stop interpreting.
        this.output(this.heldHeader());
        this.mode = 'passthrough';
        this.gaveUp = true;
        this.output(this.boundaryLine);
        return;
      default:
    }
    this.mode = 'after-boundary';
    this.afterBoundary = [];
  }

  private onData(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length) {
      switch (this.mode) {
        case 'data':
        case 'passthrough':
          this.output(at === 0 ? bytes : bytes.subarray(at));
          return;
        case 'dropping':
          return;
        case 'after-boundary': {
          this.afterBoundary.push(bytes[at++]!);
          if (this.afterBoundary.length < 2) break;
          const [first, second] = this.afterBoundary;
          if (first === 0x0d && second === 0x0a) {
            this.startPart();
          } else {
            // "--" closes the form; anything else is not a part: busboy treats both as data.
            this.output(Buffer.concat([this.boundaryLine, Buffer.from(this.afterBoundary)]));
            const closes = first === 0x2d && second === 0x2d;
            if (closes && this.formBytes === undefined) this.formBytes = this.outputBytes;
            this.mode = closes ? 'passthrough' : 'data';
          }
          break;
        }
        case 'header':
          at = this.readHeader(bytes, at);
          break;
      }
    }
  }

  private startPart(): void {
    this.partsSeen += 1;
    if (this.partsSeen > this.options.maxParts && !this.failure) this.failure = this.options.onTooManyParts();
    this.mode = 'header';
    this.header = [];
    this.headerBytes = 0;
    this.headerTail = Buffer.alloc(0);
  }

  /**
   * Takes header bytes from `bytes[at..]`; returns where the part's data begins (or the end).
   * Linear in the header's size however it is cut into chunks: only the new bytes and the last
   * three held ones are searched, and the block is joined once, when complete.
   */
  private readHeader(bytes: Buffer, at: number): number {
    const rest = bytes.subarray(at);
    const before = this.headerBytes;
    this.header.push(rest);
    this.headerBytes += rest.length;
    let blockEnd = -1;
    let dataStart = -1;
    if (this.headerByte(0) === 0x0d && this.headerByte(1) === 0x0a) {
      // An empty header block: a lone CRLF right after the boundary line's CRLF.
      blockEnd = 0;
      dataStart = 2;
    } else {
      const window = this.headerTail.length > 0 ? Buffer.concat([this.headerTail, rest]) : rest;
      const found = window.indexOf(HEADER_END);
      if (found !== -1) {
        blockEnd = before - this.headerTail.length + found;
        dataStart = blockEnd + HEADER_END.length;
      } else {
        this.headerTail = Buffer.from(window.subarray(Math.max(0, window.length - (HEADER_END.length - 1))));
      }
    }
    // busboy refuses a header block this long; let it see the bytes as they came and say so.
    // Decided on the block's length alone, so it does not matter how the body was cut.
    const tooLong = blockEnd === -1 ? this.headerBytes > MAX_HEADER_BYTES + HEADER_END.length : blockEnd > MAX_HEADER_BYTES;
    if (tooLong) {
      this.output(this.heldHeader());
      this.mode = 'passthrough';
      this.gaveUp = true;
      return bytes.length;
    }
    if (blockEnd === -1) return bytes.length;
    // Only the block: what is held past it is the part's data (a whole dump, for a body read whole).
    const block = Buffer.concat(this.header, blockEnd).toString('latin1');
    const rewritten = isPlainHeaderBlock(block) ? block : rewriteHeaderBlock(block, this.notes);
    if (rewritten !== block) this.changed = true;
    if (rewritten === undefined) {
      this.mode = 'dropping';
    } else {
      this.partsKept += 1;
      this.mode = 'data';
      this.output(Buffer.concat([this.boundaryLine, CRLF, Buffer.from(`${rewritten}\r\n\r\n`, 'latin1')]));
    }
    return at + (dataStart - before);
  }

  /** Byte `index` of the header held so far (undefined past its end). */
  private headerByte(index: number): number | undefined {
    for (const piece of this.header) {
      if (index < piece.length) return piece[index];
      index -= piece.length;
    }
    return undefined;
  }
}

/** True for a header block that `rewriteHeaderBlock` returns as it is (see PLAIN_HEADER_BLOCK). */
export const isPlainHeaderBlock = (block: string): boolean => PLAIN_HEADER_BLOCK.test(block);

/** A part's header block as busboy should read it, or undefined to drop the part; what it changed goes to `notes`. */
export function rewriteHeaderBlock(block: string, notes: string[]): string | undefined {
  if (block === '') {
    notes.push('dropped a part without headers');
    return undefined;
  }
  let lines = block.split('\r\n');
  if (lines.some((line) => /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(line))) {
    lines = lines.map((line) => line.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, REPLACEMENT));
    notes.push('replaced control characters in a part header with U+FFFD');
  }
  const dispositionAt = lines.findIndex((line) => /^content-disposition:/i.test(line));
  if (dispositionAt === -1) {
    notes.push('dropped a part without Content-Disposition');
    return undefined;
  }
  const disposition = /^(content-disposition:[ \t]*)([^;]*)(.*)$/is.exec(lines[dispositionAt]!)!;
  const type = disposition[2]!.trim().toLowerCase();
  if (type === 'attachment' || type === 'inline') {
    lines[dispositionAt] = `${disposition[1]}form-data${disposition[3]}`;
    notes.push(`read a Content-Disposition: ${type} part as form-data`);
  } else if (type !== 'form-data') {
    notes.push(`dropped a part with Content-Disposition: ${printable(type) || '(empty)'}`);
    return undefined;
  }
  const typeAt = lines.findIndex((line) => /^content-type:/i.test(line));
  if (typeAt !== -1) {
    lines[typeAt] = lines[typeAt]!.replace(/(;\s*charset=)("[^"]*"|[^;\s]*)/i, (whole, prefix: string, value: string) => {
      const charset = value.replace(/^"|"$/g, '').toLowerCase();
      if (DECODABLE_CHARSETS.has(charset)) return whole;
      notes.push(`decoded a part declared as charset ${printable(charset) || '(empty)'} as UTF-8`);
      return `${prefix}utf-8`;
    });
  }
  return lines.join('\r\n');
}

/** The part filter as a stream stage, between the gunzip and busboy. */
export class PartFilter extends Transform {
  private readonly rewriter: PartRewriter;

  constructor(options: PartFilterOptions) {
    super();
    this.rewriter = new PartRewriter(options, (bytes) => this.push(bytes));
  }

  get notes(): string[] {
    return this.rewriter.notes;
  }

  get partsKept(): number {
    return this.rewriter.partsKept;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.rewriter.write(chunk);
    done(this.rewriter.failure);
  }

  override _flush(done: TransformCallback): void {
    this.rewriter.end();
    done(this.rewriter.failure);
  }
}
