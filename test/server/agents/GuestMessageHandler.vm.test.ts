import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleRepository } from '../../../client/repoBundle';
import { makeDemoRepo, VmBroker } from '../../helpers/vmBroker';

/**
 * Runs in the guest as user agent: 300 progress requests straight to the agentctl socket as fast
 * as it can, one request of 5 MB, and reports what the guest agent answered.
 */
const floodScript = `
const net = require('node:net');
function call(line) {
  return new Promise((resolve) => {
    const socket = net.connect('/run/agentvm/agentctl.sock');
    let answer = '';
    socket.on('connect', () => socket.write(line));
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer.trim()));
  });
}
(async () => {
  let ok = 0;
  for (let index = 0; index < 300; index++) {
    const answer = await call(JSON.stringify({ type: 'progress', message: 'step ' + index }) + '\\n');
    if (answer === '{"type":"ok"}') ok++;
  }
  const huge = await call(JSON.stringify({ type: 'progress', message: 'x'.repeat(5000000) }) + '\\n');
  process.stdout.write(JSON.stringify({ ok, huge: JSON.parse(huge) }));
})();
`;

describe('agentctl progress floods and oversized messages (vm)', function () {
  this.timeout(15 * 60_000);
  const profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-flood-profiles-'));
  const harness = new VmBroker({ profilesDir });
  let demoRepo = '';
  let agentId = '';

  before(async function () {
    this.timeout(30 * 60_000);
    fs.writeFileSync(path.join(profilesDir, 'flood.js'), floodScript);
    const command = [
      'agentctl progress "$(printf %5000s | tr " " l)"; echo "long exit $?"',
      'agentctl progress "FLOOD $(node /opt/flood/flood.js)"',
    ].join('; ');
    const profile = {
      name: 'flood',
      command,
      memoryMiB: 256,
      timeLimitMs: 0,
      files: { '/opt/flood/flood.js': 'flood.js' },
    };
    fs.writeFileSync(path.join(profilesDir, 'flood.json'), JSON.stringify(profile));
    await harness.start();
    demoRepo = makeDemoRepo();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && agentId) {
      console.error(`agent ${agentId} failed the test:\n${await harness.describe(agentId)}`);
    }
  });

  after(async () => {
    await harness.stop();
    fs.rmSync(profilesDir, { recursive: true, force: true });
    if (demoRepo) fs.rmSync(path.dirname(demoRepo), { recursive: true, force: true });
  });

  it('refuses oversized messages in the guest and stores a bounded number of progress rows', async () => {
    const agent = await harness.client.createAgent({
      text: 'Flood the broker with progress.',
      profile: 'flood',
      repo: await bundleRepository(demoRepo),
    });
    agentId = agent.id;
    const finished = await harness.waitFor(agentId, ['done', 'failed']);

    const events = await harness.client.events(agentId);
    const output = events
      .filter((event) => event.kind === 'output')
      .map((event) => event.message)
      .join('');
    assert.match(output, /limit is 4096/, 'agentctl named the limit');
    assert.match(output, /long exit 2/, 'agentctl exited 2 on a message over the limit');

    const progress = events.filter((event) => event.kind === 'progress');
    const report = progress.find((event) => event.message.startsWith('FLOOD '));
    assert.ok(report, 'the flood script reported');
    const result = JSON.parse(report.message.slice('FLOOD '.length));
    assert.equal(result.ok, 300, 'every progress request was answered ok');
    assert.equal(result.huge.type, 'error');
    assert.match(result.huge.message, /the limit is/);

    assert.ok(progress.length < 300, `${progress.length} progress rows for 301 messages`);
    const steps = progress.filter((event) => event.message.startsWith('step '));
    assert.equal(steps.at(-1)?.message, 'step 299', 'the latest progress of the flood was kept');
    assert.ok(finished.lastProgress === null || finished.lastProgress.length <= 4200);
  });
});
