import { settings } from './config.js';

/** The configuration table of docs/CONFIGURATION.md, generated from the schema so the two cannot drift. */
export function configTable(): string {
  const rows = Object.values(settings).map(
    (s) => `| \`${s.env}\` | ${s.default === '' ? '(empty)' : `\`${s.default}\``} | ${s.doc.replace(/\|/g, '\\|')} |`,
  );
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
