// Bundles every entry point with esbuild. Types are checked separately (`npm run typecheck`).
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const entries = [
  // [source, output, platform options]
  ['server/cli/main.ts', 'dist/cli.js'],
  ['guest/agent.ts', 'dist/guest/guest-agent.js'],
  ['guest/agentctl.ts', 'dist/guest/agentctl.js'],
  ['extension/src/extension.ts', 'dist/extension/extension.js', { external: ['vscode'] }],
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
    platform: 'node',
    target: 'node18',
    format: 'cjs',
    sourcemap: 'linked',
    // better-sqlite3 loads a native addon relative to its package; keep it in node_modules.
    external: ['better-sqlite3', ...(extra.external ?? [])],
    logLevel: 'warning',
  });
}
