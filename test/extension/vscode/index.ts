/**
 * Entry point VS Code's extension host calls (`extensionTestsPath`): runs the bundled
 * `*.vscode.test.ts` suites with mocha 11 and writes a JSON summary for the runner.
 */
import fs from 'node:fs';
import path from 'node:path';

interface MochaRunner {
  on(event: string, listener: (test: { fullTitle(): string }, error?: Error) => void): void;
}
interface MochaInstance {
  addFile(file: string): void;
  run(done: (failures: number) => void): MochaRunner;
}

export function run(): Promise<void> {
  // mocha stays outside the bundle; the host resolves it from the repository's node_modules.
  const Mocha = require(process.env.AGENTVM_MOCHA_PATH ?? 'mocha') as new (
    options: object,
  ) => MochaInstance;
  const mocha = new Mocha({ ui: 'bdd', timeout: 600_000, color: false, reporter: 'spec' });
  mocha.addFile(path.join(__dirname, 'suites.js'));
  const summary: { passed: string[]; failed: { title: string; error: string }[] } = {
    passed: [],
    failed: [],
  };

  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      const out = process.env.AGENTVM_TEST_RESULTS;
      if (out) fs.writeFileSync(out, JSON.stringify(summary, null, 2));
      if (failures > 0) reject(new Error(`${failures} test(s) failed`));
      else resolve();
    });
    runner.on('pass', (test) => summary.passed.push(test.fullTitle()));
    runner.on('fail', (test, error) =>
      summary.failed.push({ title: test.fullTitle(), error: String(error?.stack ?? error) }),
    );
  });
}
