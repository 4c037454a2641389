/**
 * A seeded generator of hostile crash reports that knows the structure of multipart/form-data:
 * it starts from a valid report in one client's style, held as parts with raw header lines, and
 * mutates the structure — drops, duplicates and swaps header lines and parts, cuts `name=` and
 * `filename=` values, changes disposition types and charsets, inserts boundary-like text, nests
 * multipart, uses names such as `__proto__` — then, sometimes, the bytes, and finally the transport
 * (gzip, half-gzip, chunks split at awkward offsets). Every case is a pure function of its seed.
 */
import { gzipSync } from 'node:zlib';
import { rawMultipart as serialise, type RawPart } from '../helpers/multipart.js';

export interface FuzzCase {
  /** What was done, for the failure message. */
  steps: string[];
  headers: Record<string, string>;
  body: Buffer;
  /** Sizes of the pieces to write; undefined: one write with Content-Length. */
  chunks?: number[];
  path: string;
}

type Random = () => number;

const SPECIAL_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype', '__defineGetter__'];
const CHARSETS = ['utf-8', 'UTF-8', 'latin1', 'iso-8859-1', 'utf-16le', 'base64', 'x-unknown-charset', 'shift_jis', '"', '', 'utf-8; charset=ascii'];
const DISPOSITIONS = ['form-data', 'FORM-DATA', 'attachment', 'inline', 'file', 'x-bogus', ''];
const ENCODINGS = ['base64', 'quoted-printable', 'binary', '8bit', '7bit', 'x-gzip'];

const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const int = (random: Random, max: number) => Math.floor(random() * max);

function disposition(name: string | undefined, filename?: string): string {
  let line = 'Content-Disposition: form-data';
  if (name !== undefined) line += `; name="${name}"`;
  if (filename !== undefined) line += `; filename="${filename}"`;
  return line;
}

const textPart = (name: string, value: string | Buffer): RawPart => ({
  headers: [disposition(name)],
  body: Buffer.isBuffer(value) ? value : Buffer.from(value),
});

const filePart = (name: string, filename: string, data: Buffer, type = 'application/octet-stream'): RawPart => ({
  headers: [disposition(name, filename), `Content-Type: ${type}`],
  body: data,
});

function baseReport(random: Random, dumps: Buffer[]): { parts: RawPart[]; gzip: boolean; style: string } {
  const dump = pick(random, dumps);
  const guid = Math.floor(random() * 2 ** 48).toString(16).padStart(12, '0');
  switch (int(random, 4)) {
    case 0:
      return {
        style: 'breakpad',
        gzip: false,
        parts: [textPart('prod', 'FuzzApp'), textPart('ver', '1.0'), textPart('guid', guid), filePart('upload_file_minidump', 'minidump.dmp', dump)],
      };
    case 1:
      return {
        style: 'crashpad',
        gzip: true,
        parts: [textPart('prod', 'FuzzCrashpad'), textPart('ver', '2.0'), textPart('plat', 'Linux'), filePart('upload_file_minidump', `${guid}.dmp`, dump)],
      };
    case 2:
      return {
        style: 'electron',
        gzip: true,
        parts: [
          textPart('prod', 'Electron'),
          textPart('ver', '33.0.0'),
          textPart('_productName', 'FuzzElectron'),
          textPart('process_type', 'browser'),
          filePart('upload_file_minidump', `${guid}.dmp`, dump),
        ],
      };
    default: {
      const extra = { ProductName: 'Firefox', Version: '120.0', BuildID: '20231120000000', Nested: { list: [1, 2] } };
      return {
        style: 'mozilla',
        gzip: false,
        parts: [
          filePart('extra', 'extra.json', Buffer.from(JSON.stringify(extra)), 'application/json'),
          filePart('upload_file_minidump', 'content.dmp', dump),
          filePart('upload_file_minidump_browser', 'browser.dmp', pick(random, dumps)),
        ],
      };
    }
  }
}

/** Bytes that are not UTF-8, or are control characters, or NUL. */
function oddBytes(random: Random): Buffer {
  return Buffer.from(pick(random, [[0xff, 0xfe, 0x41], [0xc3, 0x28], [0x00], [0x41, 0x00, 0x42], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0x01, 0x1b, 0x7f], [0xc3, 0xa9]]));
}

type Mutation = (parts: RawPart[], random: Random, boundary: string) => string;

const someIndex = (random: Random, items: readonly unknown[]) => int(random, Math.max(1, items.length));

const mutations: Mutation[] = [
  function dropHeaderLine(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part || part.headers.length === 0) return 'no-op';
    const at = int(random, part.headers.length);
    return `drop header "${part.headers.splice(at, 1)[0]}"`;
  },
  function duplicateHeaderLine(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part || part.headers.length === 0) return 'no-op';
    const line = pick(random, part.headers);
    part.headers.splice(int(random, part.headers.length + 1), 0, line);
    return `duplicate header "${line}"`;
  },
  function swapHeaderLines(parts, random) {
    const a = parts[someIndex(random, parts)];
    const b = parts[someIndex(random, parts)];
    if (!a || !b || a.headers.length === 0 || b.headers.length === 0) return 'no-op';
    const i = int(random, a.headers.length);
    const j = int(random, b.headers.length);
    [a.headers[i], b.headers[j]] = [b.headers[j]!, a.headers[i]!];
    return 'swap header lines';
  },
  function removeAllHeaders(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    part.headers = [];
    return 'part without any header';
  },
  function onlyContentType(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    part.headers = [`Content-Type: ${pick(random, ['application/octet-stream', 'text/plain'])}`];
    return 'part with only Content-Type';
  },
  function cutNameValue(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    const cut = pick(random, ['name="', 'name=', 'name="up', 'name', 'filename="', 'filename=', 'filename']);
    part.headers = part.headers.map((line) =>
      /^content-disposition/i.test(line) ? line.replace(/(file)?name="[^"]*"?/, (whole) => (whole.startsWith('file') === cut.startsWith('file') ? cut : whole)) : line,
    );
    return `cut to ${cut}`;
  },
  function emptyOrMissingName(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    const form = pick(random, ['name=""', '', 'name=""; filename=""', 'filename="x.dmp"']);
    part.headers = part.headers.map((line) => (/^content-disposition/i.test(line) ? `Content-Disposition: form-data${form ? `; ${form}` : ''}` : line));
    return `disposition params "${form}"`;
  },
  function dispositionType(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    const type = pick(random, DISPOSITIONS);
    part.headers = part.headers.map((line) => line.replace(/^(content-disposition:\s*)[^;]*/i, `$1${type}`));
    return `disposition type "${type}"`;
  },
  function rfc5987Names(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    const form = pick(random, [`name*=utf-8''%C3%A9t%C3%A9`, `filename*=utf-8''r%C3%A9sum%C3%A9.dmp`, `name*=x-bogus''a`, `filename*=''`, `name*=utf-8''%ZZ`]);
    part.headers = part.headers.map((line) => (/^content-disposition/i.test(line) ? `${line}; ${form}` : line));
    return `rfc5987 ${form}`;
  },
  function charset(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    const value = pick(random, CHARSETS);
    const type = pick(random, ['text/plain', 'application/octet-stream', 'application/json']);
    part.headers = part.headers.filter((line) => !/^content-type/i.test(line));
    part.headers.push(`Content-Type: ${type}; charset=${value}`);
    return `charset ${type}; ${value}`;
  },
  function transferEncoding(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    const value = pick(random, ENCODINGS);
    part.headers.push(`Content-Transfer-Encoding: ${value}`);
    return `transfer encoding ${value}`;
  },
  function boundaryLikeText(parts, random, boundary) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    const text = pick(random, [`\r\n--${boundary}`, `--${boundary}--`, `\r\n--${boundary}x`, `\r\n--${boundary.slice(0, -1)}`, `\r\n--${boundary}\r\n\r\n`, `\r\n--${boundary}--\r\n`, `\r\n--${boundary} \r\n`]);
    const at = int(random, part.body.length + 1);
    part.body = Buffer.concat([part.body.subarray(0, at), Buffer.from(text), part.body.subarray(at)]);
    return `boundary-like text ${JSON.stringify(text)} at ${at}`;
  },
  function nestMultipart(parts, random) {
    const inner = `inner${int(random, 1e6)}`;
    const body = serialise([filePart('nested_dump', 'nested.dmp', Buffer.from('MDMPnested')), textPart('nested_field', 'v')], inner);
    parts.splice(int(random, parts.length + 1), 0, {
      headers: [pick(random, ['Content-Disposition: form-data; name="files"', 'Content-Disposition: form-data']), `Content-Type: multipart/mixed; boundary=${inner}`],
      body,
    });
    return 'nested multipart/mixed part';
  },
  function specialNames(parts, random) {
    const name = pick(random, SPECIAL_NAMES);
    const kind = int(random, 3);
    if (kind === 0) parts.unshift(textPart(name, 'polluted?'));
    else if (kind === 1) parts.push(filePart(name, 'x.dmp', Buffer.from('MDMPspecial')));
    else parts.unshift(filePart('extra', 'extra.json', Buffer.from(`{"${name}": {"polluted": true}, "ProductName": "P", "${name}x": "y"}`), 'application/json'));
    return `special name ${name} (${['annotation', 'dump', 'extra key'][kind]})`;
  },
  function oddBytesInName(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    const odd = oddBytes(random).toString('latin1');
    part.headers = part.headers.map((line) => line.replace(/name="/, `name="${odd}`));
    return `odd bytes in name ${JSON.stringify(odd)}`;
  },
  function oddBytesInValue(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    const at = int(random, part.body.length + 1);
    part.body = Buffer.concat([part.body.subarray(0, at), oddBytes(random), part.body.subarray(at)]);
    return `odd bytes in a value at ${at}`;
  },
  function dropPart(parts, random) {
    if (parts.length === 0) return 'no-op';
    parts.splice(int(random, parts.length), 1);
    return 'drop a part';
  },
  function duplicatePart(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    parts.splice(int(random, parts.length + 1), 0, { headers: [...part.headers], body: part.body });
    return 'duplicate a part';
  },
  function swapParts(parts, random) {
    if (parts.length < 2) return 'no-op';
    const i = int(random, parts.length);
    const j = int(random, parts.length);
    [parts[i], parts[j]] = [parts[j]!, parts[i]!];
    return 'swap parts';
  },
  function bareLineEndings(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part || part.headers.length < 2) return 'no-op';
    part.headers = [part.headers.join('\n')];
    return 'LF-only header line endings';
  },
  function longHeader(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    part.headers.push(`X-Long: ${'a'.repeat(pick(random, [1000, 16_500, 40_000]))}`);
    return 'long header line';
  },
  function emptyBody(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    part.body = Buffer.alloc(0);
    return 'empty part body';
  },
  function oddJsonExtra(parts, random) {
    const text = pick(random, ['[1,2]', '{"a":', '"str"', '{}', 'null', '{"ProductName":"\\u0000x","Email":"a@b"}', '{"a":{"b":{"c":{"d":1}}}}', '{"\\ud800":"lone"}']);
    parts.unshift(filePart('extra', 'extra.json', Buffer.from(text), 'application/json'));
    return `json extra ${text}`;
  },
  function manyParts(parts, random) {
    const count = 4 + int(random, 12);
    for (let i = 0; i < count; i += 1) parts.splice(int(random, parts.length + 1), 0, textPart(`many${i}`, 'v'));
    return `${count} more parts`;
  },
  function longValue(parts, random) {
    const length = pick(random, [20_000, 32_768, 32_769, 50_000]);
    parts.splice(int(random, parts.length + 1), 0, textPart('long', 'x'.repeat(length)));
    return `annotation of ${length} bytes`;
  },
  function bulkyDump(parts, random) {
    const length = pick(random, [80_000, 102_400, 102_401, 150_000, 400_000]);
    const data = random() < 0.5 ? Buffer.alloc(length) : Buffer.from(Array.from({ length }, () => int(random, 256)));
    parts.splice(int(random, parts.length + 1), 0, filePart(`bulk${int(random, 3)}`, 'bulk.dmp', data));
    return `dump of ${length} bytes`;
  },
  function headerGarbage(parts, random) {
    const part = parts[someIndex(random, parts)];
    if (!part) return 'no-op';
    const line = pick(random, ['no colon here', ': empty name', 'Bad Name: x', 'X-Nul: a\u0000b', 'Content-Disposition:', 'Content-Disposition: ;;;', 'Content-Disposition: form-data; name="a"; name="b"']);
    part.headers.splice(int(random, part.headers.length + 1), 0, line);
    return `header line ${JSON.stringify(line)}`;
  },
];

function byteMutation(body: Buffer, random: Random): { body: Buffer; step: string } {
  const copy = Buffer.from(body);
  switch (int(random, 4)) {
    case 0: {
      const flips = 1 + int(random, 8);
      for (let i = 0; i < flips; i += 1) {
        const at = int(random, copy.length);
        copy[at] = copy[at]! ^ (1 << int(random, 8));
      }
      return { body: copy, step: `flip ${flips} bits` };
    }
    case 1: {
      const at = int(random, copy.length);
      return { body: copy.subarray(0, at), step: `truncate at ${at}` };
    }
    case 2: {
      const at = int(random, copy.length);
      return { body: Buffer.concat([copy.subarray(0, at), oddBytes(random), copy.subarray(at)]), step: `insert bytes at ${at}` };
    }
    default: {
      const start = int(random, copy.length);
      return { body: Buffer.concat([copy, copy.subarray(start, start + int(random, 300))]), step: 'duplicate a tail' };
    }
  }
}

/** Chunk sizes that cut the body at awkward places: 1-byte pieces, pieces around CRLFs. */
function awkwardChunks(length: number, random: Random): number[] {
  const sizes: number[] = [];
  let left = length;
  const style = int(random, 3);
  while (left > 0) {
    const size = style === 0 ? 1 + int(random, 7) : style === 1 ? 1 + int(random, 4096) : pick(random, [1, 2, 3, 64, 1000, 16_384]);
    sizes.push(Math.min(size, left));
    left -= size;
    if (sizes.length > 2000) {
      sizes.push(left);
      break;
    }
  }
  return sizes.filter((size) => size > 0);
}

/** The case for one seed: reproducible from the seed alone. */
export function generateCase(random: Random, dumps: Buffer[]): FuzzCase {
  const base = baseReport(random, dumps);
  const boundary = pick(random, ['----crashspoolFuzz', 'X', 'XX', '---------------------------7e13971310878', 'with space']) + int(random, 1000);
  const steps = [base.style];
  const count = int(random, 4);
  for (let i = 0; i < count; i += 1) {
    const mutation = pick(random, mutations);
    steps.push(`${mutation.name}: ${mutation(base.parts, random, boundary)}`);
  }
  const close = random() > 0.05;
  if (!close) steps.push('no closing boundary');
  let body = serialise(base.parts, boundary, {
    close,
    ...(random() < 0.1 ? { preamble: 'preamble text\r\n' } : {}),
    ...(random() < 0.1 ? { epilogue: `--${boundary}\r\ntrailing junk` } : {}),
  });
  if (random() < 0.25) {
    const mutated = byteMutation(body, random);
    body = mutated.body;
    steps.push(mutated.step);
  }
  const contentType = boundary.includes(' ') ? `multipart/form-data; boundary="${boundary}"` : `multipart/form-data; boundary=${boundary}`;
  const headers: Record<string, string> = { 'Content-Type': contentType, 'User-Agent': `fuzz-${base.style}` };
  const transport = random();
  if (base.gzip || transport < 0.15) {
    if (random() < 0.05) {
      // Compresses to almost nothing: crosses MAX_DECOMPRESSED_BYTES before any other limit.
      body = Buffer.concat([Buffer.alloc(pick(random, [300_000, 400_000]), 0x20), body]);
      steps.push('inflating preamble');
    }
    headers['Content-Encoding'] = 'gzip';
    const zipped = gzipSync(body);
    const how = random();
    if (how < 0.1) {
      body = zipped.subarray(0, int(random, zipped.length));
      steps.push('half gzip (cut)');
    } else if (how < 0.15) {
      steps.push('gzip declared, plain sent');
    } else {
      body = zipped;
      steps.push('gzip');
    }
  }
  const chunked = base.style === 'crashpad' || base.style === 'electron' || random() < 0.3;
  const query = random() < 0.3 ? `?product=${pick(random, ['Q', '__proto__', 'constructor', '%FF%00', ''])}&guid=g` : '';
  return { steps, headers, body, path: `/submit${query}`, ...(chunked ? { chunks: awkwardChunks(body.length, random) } : {}) };
}
