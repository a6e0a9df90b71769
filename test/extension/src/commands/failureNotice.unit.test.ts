import assert from 'node:assert/strict';
import { AgentvmError } from '../../../../protocol/errors';
import { failureNotice } from '../../../../extension/src/commands/failureNotice';

describe('failureNotice (unit)', () => {
  it('tells the editor user about the agentvm.brokerUrl setting, not the CLI variable', () => {
    const notice = failureNotice(
      new AgentvmError('BROKER_UNREACHABLE', 'no broker answers at http://127.0.0.1:7878'),
    );
    assert.match(
      notice.text,
      /^no broker answers at http:\/\/127\.0\.0\.1:7878 \(BROKER_UNREACHABLE\)\. /,
    );
    assert.match(notice.text, /agentvm\.brokerUrl/);
    assert.doesNotMatch(notice.text, /AGENTVM_URL/);
    assert.deepEqual(
      notice.actions.map((action) => action.title),
      ['Open settings', 'Show log'],
    );
  });

  for (const code of ['BROKER_CONNECTION_LOST', 'BROKER_TIMEOUT'] as const) {
    it(`says, for a broker that hung up or went quiet mid-request (${code}), to check the Agents view, not \`agentvm ls\``, () => {
      const notice = failureNotice(new AgentvmError(code, 'the broker gave no answer'));
      assert.match(notice.text, /Agents view/);
      assert.doesNotMatch(notice.text, /agentvm ls/);
      assert.deepEqual(
        notice.actions.map((action) => action.title),
        ['Refresh agents', 'Show log'],
      );
    });
  }

  it('offers Sign in for a refused token', () => {
    const notice = failureNotice(new AgentvmError('UNAUTHORIZED', 'bad token'));
    assert.doesNotMatch(notice.text, /AGENTVM_TOKEN/);
    assert.deepEqual(notice.actions[0], { title: 'Sign in', command: 'agentvm.signIn' });
  });

  it("keeps an error's own hint, which knows more than the registry's", () => {
    const notice = failureNotice(
      new AgentvmError(
        'BROKER_UNREACHABLE',
        'the started broker did not answer',
        'See broker.log.',
      ),
    );
    assert.equal(
      notice.text,
      'the started broker did not answer (BROKER_UNREACHABLE). See broker.log.',
    );
    assert.deepEqual(
      notice.actions.map((action) => action.title),
      ['Show log'],
    );
  });

  it('shows the registry hint where it suits the editor (IMAGE_MISSING)', () => {
    const notice = failureNotice(new AgentvmError('IMAGE_MISSING', 'no guest image'));
    assert.equal(
      notice.text,
      'no guest image (IMAGE_MISSING). Build the guest image with `agentvm image build`.',
    );
  });

  it('makes a link in a message from the VM inert', () => {
    const notice = failureNotice(
      new AgentvmError('GUEST_ERROR', 'EIO: [retry](command:workbench.action.reloadWindow)'),
    );
    assert.doesNotMatch(notice.text, /\]\(command:/);
  });

  it('names an unexpected error INTERNAL', () => {
    assert.equal(failureNotice(new Error('boom')).text, 'boom (INTERNAL)');
  });
});
