import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Broker } from '../../../server/Broker';
import { packageRoot } from '../../../server/config/paths';
import { silentLogger } from '../../../server/log';
import { ProfileRegistry } from '../../../server/profiles/ProfileRegistry';
import { hangingDriver } from '../../helpers/imagelessBroker';
import { makeTempRepo } from '../../helpers/repos';

const cliEntry = () => path.join(packageRoot(), 'dist', 'cli.js');

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      'node',
      [cliEntry(), ...args],
      { env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * The built CLI against a real broker whose agents stay in `starting` (their VM never boots), for
 * what the CLI does with an agent that has not ended. Profiles: `plain` and a stand-in `demo`.
 * (`rm` and `cancel` of such an agent: test/server/cli/commands/agents.unit.test.ts.)
 */
describe('agentvm CLI with a live agent (unit)', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  let broker: Broker | undefined;
  let repo = '';
  let env: NodeJS.ProcessEnv = {};

  before(async function () {
    if (!fs.existsSync(cliEntry())) this.skip();

    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-broker-'));
    const profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-profiles-'));
    dirs.push(dataDir, profilesDir);
    for (const name of ['plain', 'demo']) {
      fs.writeFileSync(
        path.join(profilesDir, `${name}.json`),
        JSON.stringify({ name, command: 'true' }),
      );
    }
    broker = new Broker({
      dataDir,
      port: 0,
      logger: silentLogger,
      driver: hangingDriver,
      loadImage: () => ({
        key: 'test-image',
        kernelPath: '/nonexistent/kernel',
        initramfsPath: '/nonexistent/initramfs',
        rootfsPath: '/nonexistent/rootfs.ext4',
      }),
      profiles: new ProfileRegistry([profilesDir]),
      version: 'test',
    });
    const { url } = await broker.start();
    repo = makeTempRepo();
    dirs.push(repo);
    env = { AGENTVM_URL: url, AGENTVM_DATA_DIR: dataDir, AGENTVM_TOKEN: '', AGENTVM_PROFILE: '' };
  });

  after(async () => {
    await broker?.stop();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function delegateDetached(extraEnv: NodeJS.ProcessEnv = {}, args: string[] = []) {
    const run = await cli(['delegate', '--repo', repo, '--detach', ...args, 'fix the typo'], {
      ...env,
      ...extraEnv,
    });
    assert.equal(run.code, 0, run.stderr);
    return { ...run, id: run.stdout.trim() };
  }

  it('says when a delegation without --profile gets the scripted demo agent, and how to pick another', async () => {
    const run = await delegateDetached();
    assert.match(run.stderr, /profile demo/);
    assert.match(
      run.stderr,
      /^note: .*scripted demo agent.*--profile NAME.*AGENTVM_PROFILE.*agentvm profiles/m,
    );
  });

  it('takes the profile from AGENTVM_PROFILE, and prints no demo note then or with --profile demo', async () => {
    const fromEnv = await delegateDetached({ AGENTVM_PROFILE: 'plain' });
    assert.match(fromEnv.stderr, /profile plain/);
    assert.doesNotMatch(fromEnv.stderr, /scripted demo agent/);

    const asked = await delegateDetached({}, ['--profile', 'demo']);
    assert.match(asked.stderr, /profile demo/);
    assert.doesNotMatch(asked.stderr, /scripted demo agent/);
  });

  it('on Ctrl-C while following a delegation says the agent keeps running and how to follow or stop it, exit 130', async () => {
    const child = spawn(
      'node',
      [cliEntry(), 'delegate', '--repo', repo, '--profile', 'plain', 'do it'],
      {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let code: number | null;
    try {
      // The first timeline line is printed by the follower, so it is listening by then. The
      // agents of the tests above still wait to boot, so this one may stay queued: that is enough.
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          if (/\] state\s+queued/.test(stderr)) resolve();
        });
        void exited.then(() => reject(new Error(`delegate exited before following: ${stderr}`)));
      });
      child.kill('SIGINT');
      code = await Promise.race([
        exited,
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000)),
      ]);
    } finally {
      // Never leave the CLI behind, whatever happened above.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }

    assert.equal(code, 130, stderr);
    const id = /agent (\w+) queued/.exec(stderr)?.[1];
    assert.ok(id, stderr);
    assert.match(
      stderr,
      new RegExp(`agent ${id} keeps running.*agentvm logs -f ${id}.*agentvm cancel ${id}`),
    );
    const agent = JSON.parse((await cli(['ls', '--json'], env)).stdout) as {
      id: string;
      state: string;
    }[];
    assert.notEqual(agent.find((entry) => entry.id === id)?.state, 'cancelled');
  });
});
