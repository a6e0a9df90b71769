// The VS Code harness: installs code-server's VS Code (once), builds and packages the extension,
// installs the .vsix, starts a broker and the VS Code server, runs the `(vscode)` mocha suites
// inside the real extension host through Chromium, then the UI check with screenshots.
//
//   node scripts/vscode/run.mjs [--broker real|fake] [--skip-mocha] [--skip-ui] [--keep]
//
// Artifacts (vsix, logs, screenshots, test summary) go to .artifacts/vscode/.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { format } from 'node:util';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { freePort, git, httpStatus, sleep, startGroup, stopGroup, waitFor } from './server.mjs';
import { runUiCheck } from './ui-check.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, fallback) => {
  const index = argv.indexOf(name);
  return index >= 0 ? argv[index + 1] : fallback;
};
const brokerKind = option('--broker', process.env.AGENTVM_VSCODE_BROKER ?? 'real');
const mochaTimeoutMs = Number(process.env.AGENTVM_VSCODE_TIMEOUT_MS ?? 20 * 60_000);
const artifacts = path.join(root, '.artifacts', 'vscode');
fs.mkdirSync(artifacts, { recursive: true });

const log = (message) => process.stderr.write(`[vscode-harness] ${message}\n`);
const run = (command, args, options = {}) => {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}`);
};

const started = Date.now();
const processes = [];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-vscode-'));
let exitCode = 1;
try {
  // Tools, build, package.
  const prefix = execFileSync('bash', [path.join(root, 'scripts/vscode/install.sh')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .toString()
    .trim();
  const vscodeDir = path.join(prefix, 'node_modules/code-server/lib/vscode');
  if (brokerKind === 'real') run('node', ['scripts/build.mjs']);
  run('node', ['scripts/vscode/build-extension.mjs', '--tests']);
  const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
  const vsix = path.join(artifacts, `agentvm-${version}.vsix`);
  run('npx', [
    'vsce',
    'package',
    '--allow-missing-repository',
    '--skip-license',
    '--no-rewrite-relative-links',
    '-o',
    vsix,
  ]);
  log(`packaged ${vsix} (${Math.round(fs.statSync(vsix).size / 1024)} KiB)`);

  // A demo repository and a broker.
  const dirs = Object.fromEntries(
    ['tmp', 'extensions', 'broker'].map((name) => {
      const dir = path.join(work, name);
      fs.mkdirSync(dir, { recursive: true });
      return [name, dir];
    }),
  );
  const repo = path.join(work, 'demo-repo');
  run('sh', [path.join(root, 'scripts/make-demo-repo.sh'), repo], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const brokerData = process.env.AGENTVM_VSCODE_DATA_DIR ?? dirs.broker;
  if (brokerKind === 'real') {
    // The run shares the machine's guest image cache (the one `scripts/setup.sh` builds: building
    // one runs debootstrap); each run gets its own store, agents and token next to a link to it.
    const sharedData =
      process.env.AGENTVM_DATA_DIR ??
      path.join(process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share'), 'agentvm');
    const images = path.join(sharedData, 'images');
    fs.mkdirSync(images, { recursive: true });
    fs.mkdirSync(brokerData, { recursive: true });
    if (!fs.existsSync(path.join(brokerData, 'images')))
      fs.symlinkSync(images, path.join(brokerData, 'images'));
    const imageStarted = Date.now();
    run('node', [path.join(root, 'dist/cli.js'), 'image', 'build'], {
      env: { ...process.env, AGENTVM_DATA_DIR: brokerData },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    log(`guest image ready in ${Math.round((Date.now() - imageStarted) / 1000)} s`);
  }
  const brokerPort = await freePort();
  const brokerUrl = `http://127.0.0.1:${brokerPort}`;
  // A profile whose one secret comes from VS Code's SecretStorage (test/extension/secrets.vscode.test.ts).
  const profilesDir = path.join(work, 'profiles');
  fs.mkdirSync(path.join(profilesDir, 'vscode-secret'), { recursive: true });
  fs.writeFileSync(
    path.join(profilesDir, 'vscode-secret', 'profile.json'),
    JSON.stringify({
      name: 'vscode-secret',
      description: 'Reports whether the secret placeholder reached the VM (never the value).',
      command:
        'case "$DEMO_TOKEN" in agentvm-secret-*) echo "token: placeholder";; "") echo "token: none";; *) echo "token: something else";; esac',
      memoryMiB: 512,
      timeLimitMs: 300000,
      bootTimeoutMs: 120000,
      secrets: { DEMO_TOKEN: { source: { vscode: 'demo-token' }, hosts: ['example.invalid'] } },
    }),
  );
  const brokerEnv = {
    ...process.env,
    AGENTVM_DATA_DIR: brokerData,
    AGENTVM_PROFILES_DIR: profilesDir,
    TMPDIR: dirs.tmp,
  };
  const brokerLog = path.join(artifacts, 'broker.log');
  fs.writeFileSync(brokerLog, '');
  const broker =
    brokerKind === 'fake'
      ? startGroup(
          path.join(root, 'node_modules/.bin/tsx'),
          [
            'test/extension/support/fakeBroker.ts',
            '--port',
            String(brokerPort),
            '--data',
            brokerData,
          ],
          { env: brokerEnv, cwd: root, logFile: brokerLog },
        )
      : startGroup(
          'node',
          [path.join(root, 'dist/cli.js'), 'serve', '--port', String(brokerPort)],
          {
            env: brokerEnv,
            cwd: root,
            logFile: brokerLog,
          },
        );
  processes.push(broker);
  await waitFor(
    'the broker',
    async () => (await httpStatus(`${brokerUrl}/v1/health`)) === 200,
    60_000,
  );
  log(`${brokerKind} broker at ${brokerUrl} (data ${brokerData})`);

  // VS Code server with the packaged extension installed.
  const serverMain = path.join(vscodeDir, 'out/server-main.js');
  run(
    'node',
    [serverMain, '--install-extension', vsix, '--extensions-dir', dirs.extensions, '--force'],
    {
      env: { ...process.env, TMPDIR: dirs.tmp },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const installed = fs
    .readdirSync(dirs.extensions)
    .find((name) => name.startsWith('agentvm.agentvm-'));
  if (!installed) throw new Error('the .vsix did not install');
  const extensionDir = path.join(dirs.extensions, installed);

  const resultsFile = path.join(artifacts, 'mocha-results.json');
  fs.rmSync(resultsFile, { force: true });
  const serverEnv = {
    ...process.env,
    EXTENSIONS_GALLERY: '{}',
    TMPDIR: dirs.tmp,
    AGENTVM_DATA_DIR: brokerData,
    AGENTVM_TEST_REPO: repo,
    AGENTVM_TEST_BROKER_URL: brokerUrl,
    AGENTVM_TEST_RESULTS: resultsFile,
    AGENTVM_TEST_ROOT: root,
    AGENTVM_MOCHA_PATH: path.join(root, 'node_modules/mocha'),
  };
  const serverLog = path.join(artifacts, 'vscode-server.log');
  fs.writeFileSync(serverLog, '');

  /**
   * A VS Code server with its own user and server data. The UI check and the mocha run each get
   * one: a second workbench opened on the same server has come up without its workspace folders
   * (first the UI check's, later the mocha window's), failing tests for reasons not their own.
   */
  async function startVsCodeServer(name) {
    const userDir = path.join(work, `${name}-user`);
    const serverDir = path.join(work, `${name}-server`);
    // The server reads machine-scoped settings from <user-data-dir>/Machine/settings.json.
    const machineSettings = path.join(userDir, 'Machine', 'settings.json');
    fs.mkdirSync(path.dirname(machineSettings), { recursive: true });
    fs.mkdirSync(serverDir, { recursive: true });
    fs.writeFileSync(
      machineSettings,
      JSON.stringify({
        'agentvm.brokerUrl': brokerUrl,
        'agentvm.autoStartBroker': false,
        'workbench.startupEditor': 'none',
        'git.enabled': false,
        'remote.autoForwardPorts': false,
        'extensions.autoCheckUpdates': false,
        'security.workspace.trust.enabled': false,
      }),
    );
    const port = await freePort();
    fs.appendFileSync(serverLog, `--- ${name} server ---\n`);
    const server = startGroup(
      'node',
      [
        serverMain,
        '--accept-server-license-terms',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--without-connection-token',
        '--disable-workspace-trust',
        '--telemetry-level',
        'off',
        '--user-data-dir',
        userDir,
        '--server-data-dir',
        serverDir,
        '--extensions-dir',
        dirs.extensions,
      ],
      { env: serverEnv, cwd: root, logFile: serverLog },
    );
    processes.push(server);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      `the ${name} VS Code server`,
      async () => (await httpStatus(base)) === 200,
      60_000,
    );
    log(
      `${name} VS Code server at ${base} (${Math.round((Date.now() - started) / 1000)} s since start)`,
    );
    return { base, stop: () => stopGroup(server) };
  }

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  try {
    let uiOk = true;
    if (!flag('--skip-ui')) {
      const server = await startVsCodeServer('ui');
      uiOk = await runUiCheck({
        browser,
        base: server.base,
        repo,
        artifacts,
        brokerUrl,
        brokerData,
        log,
      });
      await server.stop();
    }
    let mochaOk = true;
    if (!flag('--skip-mocha')) {
      const server = await startVsCodeServer('mocha');
      mochaOk = await runMocha(browser, server.base, extensionDir, repo, resultsFile);
    }
    exitCode = mochaOk && uiOk ? 0 : 1;
  } finally {
    await browser.close();
  }
} catch (error) {
  log(`failed: ${error.stack ?? error}`);
  exitCode = 1;
} finally {
  for (const child of processes.reverse()) await stopGroup(child);
  if (flag('--keep')) log(`kept ${work}`);
  else fs.rmSync(work, { recursive: true, force: true });
  log(`finished in ${Math.round((Date.now() - started) / 1000)} s, exit ${exitCode}`);
}
process.exit(exitCode);

/** Opens the workbench with the test payload; resolves true when the suites pass. */
async function runMocha(browser, base, extensionDir, repo, resultsFile) {
  const remote = (p) => `vscode-remote://${new URL(base).host}${p}`;
  const payload = [
    ['extensionDevelopmentPath', remote(extensionDir)],
    ['extensionTestsPath', remote(path.join(root, 'dist/test-extension/index.js'))],
    ['skipWelcome', 'true'],
  ];
  // A multi-root workspace file: adding the review folder then edits the workspace in place,
  // whereas a single-folder window would first be turned into an untitled workspace.
  const workspaceFile = path.join(path.dirname(repo), 'mocha.code-workspace');
  fs.writeFileSync(workspaceFile, JSON.stringify({ folders: [{ path: repo }] }));
  const url = `${base}/?workspace=${encodeURIComponent(workspaceFile)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const output = fs.createWriteStream(path.join(artifacts, 'mocha-output.log'));
  let resolveExit;
  const exited = new Promise((resolve) => (resolveExit = resolve));
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const list = Array.isArray(args) ? args : [args];
    const line =
      typeof list[0] === 'string' ? format(...list) : list.map((a) => JSON.stringify(a)).join(' ');
    output.write(`${line}\n`);
    process.stderr.write(`  ${line}\n`);
  });
  await page.exposeFunction('codeAutomationExit', (code) => resolveExit(code));
  await page.goto(url);
  const code = await Promise.race([exited, sleep(mochaTimeoutMs).then(() => 'timeout')]);
  await page.screenshot({ path: path.join(artifacts, 'mocha-final.png') }).catch(() => undefined);
  output.end();
  await page.close();
  const summary = fs.existsSync(resultsFile)
    ? JSON.parse(fs.readFileSync(resultsFile, 'utf8'))
    : undefined;
  log(
    `mocha in the extension host: exit ${code}; ` +
      (summary
        ? `${summary.passed.length} passed, ${summary.failed.length} failed`
        : 'no summary written'),
  );
  return code === 0 && summary !== undefined && summary.failed.length === 0;
}
