import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../runCli';

describe('agentvm template build (unit)', () => {
  let dataDir: string;

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-template-cli-'));
  });

  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('says that it reads profiles itself, in this shell, when the profile is unknown (regression: template build --profile mine pointed at the broker, whose AGENTVM_PROFILES_DIR had it)', async () => {
    const run = await runCli(['template', 'build', '--profile', 'mine'], {
      AGENTVM_DATA_DIR: dataDir,
      AGENTVM_PROFILES_DIR: undefined,
    });

    assert.equal(run.exitCode, 5, run.stderr);
    assert.match(run.stderr, /^error \[PROFILE_NOT_FOUND\]: no profile named "mine"/m);
    const hint = /^ {2}hint: (.*)$/m.exec(run.stderr)?.[1] ?? '';
    assert.match(hint, /template build reads the profiles itself/);
    assert.match(hint, /AGENTVM_PROFILES_DIR/);
    assert.doesNotMatch(hint, /where the broker runs/);
    assert.deepEqual(fs.readdirSync(dataDir), [], 'nothing was written to the data directory');
  });
});
