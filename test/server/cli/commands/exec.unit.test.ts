import assert from 'node:assert/strict';
import type { ExecResult } from '../../../../protocol/guestResults';
import { startFakeVmBroker, type FakeVmBroker } from '../../../helpers/fakeVmDriver';
import { until } from '../../../helpers/until';
import { runCli } from '../runCli';

describe('agentvm exec (unit)', function () {
  this.timeout(30_000);
  let harness: FakeVmBroker;

  beforeEach(async () => {
    harness = await startFakeVmBroker('agentvm-cli-exec', {
      plain: { name: 'plain', command: 'true' },
    });
  });

  afterEach(async () => {
    await harness.stop();
  });

  it("writes the command's output byte for byte (regression: bytes that are not UTF-8 came back as U+FFFD)", async () => {
    const id = await harness.delegate('plain');
    const { manager } = harness.broker;
    await until(() => manager.get(id, '', true).state === 'running', 'the agent runs');
    const vm = harness.driver.vms[0]!;
    const written = { stdout: Buffer.from([0xff, 0xd8, 0x00, 0x41, 0xe9]), stderr: 'warning\n' };

    const run = await runCli(
      ['exec', id, '--', 'cat', 'photo.jpg'],
      { AGENTVM_URL: harness.url, AGENTVM_TOKEN: harness.token },
      async () => {
        await until(() => vm.requests.length > 0, 'the exec reaches the guest');
        const { request, answer } = vm.requests[0]!;
        assert.equal(request.op, 'exec');
        // Answered as the guest agent does: in the encoding the request asked for.
        const base64 = request.op === 'exec' && request.outputEncoding === 'base64';
        const encode = (data: Buffer | string) =>
          Buffer.from(data).toString(base64 ? 'base64' : 'utf8');
        const result: ExecResult = {
          code: 0,
          signal: null,
          stdout: encode(written.stdout),
          stderr: encode(written.stderr),
          truncated: false,
          timedOut: false,
          ...(base64 && { outputEncoding: 'base64' as const }),
        };
        answer(result);
      },
    );

    assert.equal(run.exitCode, 0, run.stderr);
    assert.deepEqual(run.stdoutBytes, written.stdout);
    assert.equal(run.stderr, 'warning\n');
  });
});
