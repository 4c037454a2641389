/** How spool-inspect writes: plain tables for people, JSON for scripts. */
import { formatDuration } from '../duration.js';
export function write(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function writeJson(value: unknown): void {
  write(JSON.stringify(value, null, 2));
}

export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function ageSeconds(ms: number | null, now: number): number | null {
  return ms === null ? null : Math.max(0, Math.round((now - ms) / 1000));
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** One line, at most `max` characters: for error messages in tables. */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Left-aligned columns except those in `right`; the last column is not padded. */
export function table(header: string[], rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? '').length)));
  return all
    .map((row) =>
      row
        .map((cell, column) => {
          if (column === row.length - 1 && !right.has(column)) return cell;
          return right.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!);
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function keyValues(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([key]) => key.length));
  return pairs.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n');
}

export function ago(ms: number | null, now: number): string {
  return ms === null ? '-' : `${formatDuration(now - ms)} ago (${iso(ms)})`;
}
