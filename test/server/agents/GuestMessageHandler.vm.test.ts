import assert from 'node:assert/strict';
import { bundleRepository } from '../../../client/repoBundle';
import { useVmAgentSuite } from '../../helpers/useVmAgentSuite';

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
  let agentId = '';
  const suite = useVmAgentSuite({
    agentId: () => agentId,
    profiles: () => [
      {
        profile: {
          name: 'flood',
          command: [
            'agentctl progress "$(printf %5000s | tr " " l)"; echo "long exit $?"',
            'agentctl progress "FLOOD $(node /opt/flood/flood.js)"',
          ].join('; '),
          memoryMiB: 256,
          timeLimitMs: 0,
          files: { '/opt/flood/flood.js': 'flood.js' },
        },
        files: { 'flood.js': floodScript },
      },
    ],
  });
  const { harness } = suite;

  it('refuses oversized messages in the guest and stores a bounded number of progress rows', async () => {
    const agent = await harness.client.createAgent({
      text: 'Flood the broker with progress.',
      profile: 'flood',
      repo: await bundleRepository(suite.demoRepo),
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
