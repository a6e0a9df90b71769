import assert from 'node:assert/strict';
import {
  hostToWebviewSchema,
  webviewStateSchema,
  webviewToHostSchema,
} from '../../../../extension/src/webview/messages';
import { anAgent } from '../../../helpers/anAgent';

describe('webview messages (unit)', () => {
  it('accepts the ready handshake and typed requests from the webview', () => {
    assert.equal(webviewToHostSchema.safeParse({ type: 'ready' }).success, true);
    const resume = webviewToHostSchema.parse({
      type: 'request',
      id: 3,
      request: { method: 'resume', answer: 'yes' },
    });
    assert.deepEqual(resume, {
      type: 'request',
      id: 3,
      request: { method: 'resume', answer: 'yes' },
    });
  });

  it('accepts the request the "Open pull request" button sends', () => {
    const parsed = webviewToHostSchema.parse({
      type: 'request',
      id: 4,
      request: { method: 'openPullRequest' },
    });
    assert.deepEqual(parsed, { type: 'request', id: 4, request: { method: 'openPullRequest' } });
  });

  it('rejects requests with unknown methods or missing fields', () => {
    assert.equal(
      webviewToHostSchema.safeParse({ type: 'request', id: 1, request: { method: 'rm -rf' } })
        .success,
      false,
    );
    assert.equal(
      webviewToHostSchema.safeParse({ type: 'request', id: 1, request: { method: 'resume' } })
        .success,
      false,
    );
    assert.equal(
      webviewToHostSchema.safeParse({ type: 'request', id: 'x', request: { method: 'cancel' } })
        .success,
      false,
    );
  });

  it('carries a full agent in init and validates it', () => {
    const init = { type: 'init', agent: anAgent(), events: [], changes: null };
    assert.equal(hostToWebviewSchema.safeParse(init).success, true);
    const broken = { ...init, agent: { ...anAgent(), state: 'sleeping' } };
    assert.equal(hostToWebviewSchema.safeParse(broken).success, false);
  });

  it('restores state with an empty draft when an older state has none', () => {
    assert.deepEqual(webviewStateSchema.parse({ agentId: 'a1' }), {
      agentId: 'a1',
      answerDraft: '',
    });
    assert.equal(webviewStateSchema.safeParse(undefined).success, false);
  });
});
