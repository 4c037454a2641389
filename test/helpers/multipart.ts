/**
 * Builds crash report bodies the way real clients do (Crashpad, Breakpad, Electron, Mozilla: see the part table in docs/PROTOCOL.md), for tests and benchmarks.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export type Part =
  | { name: string; value: string; contentType?: string }
  | { name: string; filename: string; data: Buffer; contentType?: string };

export interface Body {
  contentType: string;
  body: Buffer;
}

export function multipart(parts: Part[], boundary = `----crashspool${randomBytes(12).toString('hex')}`): Body {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if ('filename' in part) head += `; filename="${part.filename}"`;
    head += '\r\n';
    const type = part.contentType ?? ('filename' in part ? 'application/octet-stream' : undefined);
    if (type) head += `Content-Type: ${type}\r\n`;
    chunks.push(Buffer.from(`${head}\r\n`), 'filename' in part ? part.data : Buffer.from(part.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

/** A part as raw header lines (without their CRLF) and a body: for shapes no client library sends. */
export interface RawPart {
  headers: string[];
  body: Buffer;
}

/** A multipart body from raw parts; header lines are written as latin1, so any byte can be sent. */
export function rawMultipart(parts: RawPart[], boundary: string, options: { close?: boolean; preamble?: string; epilogue?: string } = {}): Buffer {
  const chunks: Buffer[] = [Buffer.from(options.preamble ?? '')];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n${part.headers.map((line) => `${line}\r\n`).join('')}\r\n`, 'latin1'), part.body, Buffer.from('\r\n'));
  }
  if (options.close !== false) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  chunks.push(Buffer.from(options.epilogue ?? ''));
  return Buffer.concat(chunks);
}

export type ClientStyle = 'breakpad' | 'crashpad' | 'mozilla' | 'electron';

export interface Report {
  style: ClientStyle;
  /** Annotations as they should appear in the raw crash. */
  annotations: Record<string, unknown>;
  /** Dumps by (sanitised) name. */
  dumps: Record<string, Buffer>;
  contentType: string;
  body: Buffer;
  gzip: boolean;
  /** Query string Crashpad appends, e.g. `?product=x`. */
  query: string;
}

/** A report in the given client style carrying `dump` (and for Mozilla a second, browser dump). */
export function makeReport(style: ClientStyle, dump: Buffer, secondDump?: Buffer): Report {
  const guid = randomBytes(16).toString('hex');
  switch (style) {
    case 'breakpad': {
      const annotations = { prod: 'TestApp', ver: '1.2.3', guid, ptime: '42', email: 'nobody@example.com' };
      const built = multipart([
        ...Object.entries(annotations).map(([name, value]) => ({ name, value })),
        { name: 'upload_file_minidump', filename: 'minidump.dmp', data: dump },
      ]);
      return { style, annotations, dumps: { upload_file_minidump: dump }, ...built, gzip: false, query: '' };
    }
    case 'crashpad':
    case 'electron': {
      const annotations: Record<string, string> =
        style === 'electron'
          ? { prod: 'Electron', ver: '33.0.0', _productName: 'TestElectronApp', _version: '4.5.6', platform: 'linux', process_type: 'browser', guid }
          : { prod: 'TestCrashpadApp', ver: '2.0', plat: 'Linux', guid };
      const built = multipart([
        ...Object.entries(annotations).map(([name, value]) => ({ name, value })),
        // Crashpad names the minidump after its report UUID, the same on every retry.
        { name: 'upload_file_minidump', filename: `${randomUUID()}.dmp`, data: dump },
      ]);
      return {
        style,
        annotations,
        dumps: { upload_file_minidump: dump },
        contentType: built.contentType,
        body: gzipSync(built.body),
        gzip: true,
        query: `?product=${annotations['prod']}&version=${annotations['ver']}&guid=${guid}`,
      };
    }
    case 'mozilla': {
      const extra = { ProductName: 'Firefox', Version: '120.0', BuildID: '20231120000000', ReleaseChannel: 'release', Nested: { list: [1, 2, 3] } };
      // Firefox sends no install guid: two of its reports are the same report (deduplicated) when
      // their dumps are. Two real crashes never share dump bytes; two uses of a fixture would.
      dump = Buffer.concat([dump, randomBytes(16)]);
      const second = Buffer.concat([secondDump ?? dump, randomBytes(16)]);
      const built = multipart([
        { name: 'extra', filename: 'extra.json', data: Buffer.from(JSON.stringify(extra)), contentType: 'application/json' },
        { name: 'upload_file_minidump', filename: 'content.dmp', data: dump },
        { name: 'upload_file_minidump_browser', filename: 'browser.dmp', data: second },
      ]);
      return {
        style,
        annotations: extra,
        dumps: { upload_file_minidump: dump, upload_file_minidump_browser: second },
        ...built,
        gzip: false,
        query: '',
      };
    }
  }
}
