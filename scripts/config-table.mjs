// Prints the configuration table of docs/CONFIGURATION.md from the schema in src/config.ts (run after `npm run build`).
import { configTable } from '../dist/config-table.js';

console.log(configTable());
