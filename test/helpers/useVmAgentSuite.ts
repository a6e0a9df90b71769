import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDemoRepo, VmBroker } from './vmBroker';

/** A test profile: its JSON (its `name` names the file) and the files it installs, by file name. */
export interface TestProfile {
  profile: { name: string } & Record<string, unknown>;
  files?: Record<string, string>;
}

export interface VmAgentSuiteOptions {
  /** The agent the running test is about; its timeline and console are printed if the test fails. */
  agentId: () => string;
  /**
   * Test profiles, loaded after the shipped ones. Asked for in `before`, so they may use what the
   * suite's earlier `before` hooks set up.
   */
  profiles?: () => TestProfile[];
  /** Environment `{ env }` secret sources are read from (instead of process.env). */
  secretEnv?: NodeJS.ProcessEnv;
}

export interface VmAgentSuite {
  readonly harness: VmBroker;
  /** A fresh copy of the demo repository, made in `before`. */
  readonly demoRepo: string;
}

/**
 * Registers, in the calling `describe`, the hooks of a suite that runs agents on a real
 * {@link VmBroker}: `before` writes the test profiles, starts the broker and makes a demo
 * repository; `afterEach` describes the agent of a failed test; `after` stops the broker and
 * removes every directory it made.
 */
export function useVmAgentSuite(options: VmAgentSuiteOptions): VmAgentSuite {
  const profilesDir = options.profiles
    ? fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-test-profiles-'))
    : undefined;
  const harness = new VmBroker({ profilesDir, secretEnv: options.secretEnv });
  let demoRepo = '';

  before(async function () {
    this.timeout(30 * 60_000);
    if (profilesDir && options.profiles) writeProfiles(profilesDir, options.profiles());
    await harness.start();
    demoRepo = makeDemoRepo();
  });

  afterEach(async function () {
    const agentId = options.agentId();
    if (this.currentTest?.state === 'failed' && agentId) {
      console.error(`agent ${agentId} failed the test:\n${await harness.describe(agentId)}`);
    }
  });

  after(async () => {
    await harness.stop();
    if (profilesDir) fs.rmSync(profilesDir, { recursive: true, force: true });
    if (demoRepo) fs.rmSync(path.dirname(demoRepo), { recursive: true, force: true });
  });

  return {
    harness,
    get demoRepo() {
      return demoRepo;
    },
  };
}

function writeProfiles(profilesDir: string, profiles: TestProfile[]): void {
  for (const { profile, files = {} } of profiles) {
    for (const [name, content] of Object.entries(files)) {
      fs.writeFileSync(path.join(profilesDir, name), content);
    }
    fs.writeFileSync(path.join(profilesDir, `${profile.name}.json`), JSON.stringify(profile));
  }
}
