// Bundles the extension, its webview front-end and the extension-host test suites with esbuild.
// The full build (scripts/build.mjs) has the same extension entries; this one builds only what
// the VS Code harness needs, so it works while other entry points are half-written.
import { build } from 'esbuild';

const common = { bundle: true, sourcemap: 'linked', logLevel: 'warning' };
const nodeExternal = ['vscode', 'bufferutil', 'utf-8-validate', 'better-sqlite3'];

await build({
  ...common,
  entryPoints: ['extension/src/extension.ts'],
  outfile: 'dist/extension/extension.js',
  minify: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  external: nodeExternal,
});
await build({
  ...common,
  entryPoints: ['extension/webviews/agent/main.ts'],
  outfile: 'dist/webviews/agent.js',
  minify: true,
  platform: 'browser',
  target: 'es2022',
  format: 'iife',
});
if (process.argv.includes('--tests')) {
  for (const [entry, out] of [
    ['test/extension/vscode/index.ts', 'dist/test-extension/index.js'],
    ['test/extension/vscode/suites.ts', 'dist/test-extension/suites.js'],
  ]) {
    await build({
      ...common,
      entryPoints: [entry],
      outfile: out,
      platform: 'node',
      target: 'node18',
      format: 'cjs',
      external: [...nodeExternal, 'mocha'],
    });
  }
}
