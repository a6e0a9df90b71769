// Bundles every entry point with esbuild. Types are checked separately (`npm run typecheck`).
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const entries = [
  // [source, output, platform options]
  ['server/cli/main.ts', 'dist/cli.js'],
  // Minified: under TCG the guest's node spends seconds just parsing an 800 KB bundle at boot.
  ['guest/agent.ts', 'dist/guest/guest-agent.js', { minify: true }],
  ['guest/agentctl.ts', 'dist/guest/agentctl.js', { minify: true }],
  [
    'extension/src/extension.ts',
    'dist/extension/extension.js',
    { external: ['vscode', 'bufferutil', 'utf-8-validate'] },
  ],
  // The agent panel's front-end runs in the webview (a browser); its CSS is emitted next to it.
  [
    'extension/webviews/agent/main.ts',
    'dist/webviews/agent.js',
    { platform: 'browser', format: 'iife' },
  ],
];

const strict = process.env.AGENTVM_BUILD_STRICT !== '0';
for (const [source, outfile, extra = {}] of entries) {
  if (!existsSync(source)) {
    if (strict) throw new Error(`entry point ${source} is missing`);
    console.warn(`skip ${source} (missing)`);
    continue;
  }
  await build({
    entryPoints: [source],
    outfile,
    bundle: true,
    platform: extra.platform ?? 'node',
    target: extra.platform === 'browser' ? 'es2022' : 'node18',
    format: extra.format ?? 'cjs',
    sourcemap: 'linked',
    // better-sqlite3 loads a native addon relative to its package; keep it in node_modules.
    external: ['better-sqlite3', ...(extra.external ?? [])],
    minify: extra.minify ?? false,
    logLevel: 'warning',
  });
}
