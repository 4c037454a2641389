// Prints the README's configuration table from the schema in src/config.ts (run after `npm run build`).
import { configTable } from '../dist/config-table.js';

console.log(configTable());
