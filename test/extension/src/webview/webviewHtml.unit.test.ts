import assert from 'node:assert/strict';
import {
  createNonce,
  escapeHtml,
  webviewPage,
} from '../../../../extension/src/webview/webviewHtml';

describe('webviewHtml (unit)', () => {
  const page = webviewPage({
    cspSource: 'https://file+.vscode-resource.example',
    nonce: 'n0nce',
    scriptUri: 'https://res/agent.js',
    styleUri: 'https://res/agent.css',
    title: 'Fix <b>it</b>',
  });
  const csp = /content="([^"]+)"/.exec(page)?.[1] ?? '';

  it('denies everything by default and allows scripts only by nonce', () => {
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'nonce-n0nce'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(page, /<script nonce="n0nce" src="https:\/\/res\/agent.js">/);
  });

  it('allows styles only from the webview resource origin, with no inline styles', () => {
    assert.match(csp, /style-src https:\/\/file\+\.vscode-resource\.example(;|$)/);
    assert.doesNotMatch(page, /style=|<style/);
  });

  it('escapes the title', () => {
    assert.match(page, /<title>Fix &#60;b&#62;it&#60;\/b&#62;<\/title>/);
    assert.equal(escapeHtml(`"'&`), '&#34;&#39;&#38;');
  });

  it('makes a fresh 128-bit nonce each time', () => {
    const nonces = new Set(Array.from({ length: 50 }, createNonce));
    assert.equal(nonces.size, 50);
    assert.equal(Buffer.from(createNonce(), 'base64').length, 16);
  });
});
