// Bundle the extension into dist/extension.js and copy the JSON Schemas it contributes.
import { build } from 'esbuild';
import { cpSync, mkdirSync } from 'node:fs';

mkdirSync('schemas', { recursive: true });
for (const name of ['floe.schema.json', 'platform.schema.json']) {
  cpSync(`../../schemas/${name}`, `schemas/${name}`);
}
await build({
  entryPoints: ['src/extension.ts'],
  bundle: true,
  outfile: 'dist/extension.js',
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['vscode'],
  sourcemap: false,
  minify: true,
  logLevel: 'warning',
});
