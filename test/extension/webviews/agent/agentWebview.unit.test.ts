import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { AgentEvent } from '../../../../protocol/api';
import type { HostToWebview } from '../../../../extension/src/webview/messages';
import { webviewPage } from '../../../../extension/src/webview/webviewHtml';
import { anAgent } from '../../../helpers/anAgent';

const chromiumPath = '/usr/bin/chromium';
const origin = 'https://webview.test';
const root = path.resolve(__dirname, '../../../..');

/** Timeline events 1..count (or from `firstId`), every fifth one command output. */
function events(count: number, firstId = 1): AgentEvent[] {
  return Array.from({ length: count }, (_, index) => ({
    id: firstId + index,
    agentId: 'a1',
    at: 1_700_000_000_000 + index,
    kind: index % 5 === 0 ? 'output' : 'progress',
    message: `entry ${firstId + index}`,
    data: {},
  }));
}

/**
 * The agent panel's front end (extension/webviews/agent) in headless Chromium, behind the page
 * and CSP the extension serves, with a stand-in for VS Code's webview API that records what the
 * page posts. Messages from the host are dispatched as the webview host does.
 */
describe('Agent webview in headless Chromium (unit)', function () {
  this.timeout(60_000);
  let browser: Browser | undefined;
  let page: Page;
  let script = '';
  let style = '';

  before(async function () {
    if (!fs.existsSync(chromiumPath)) this.skip();

    const output = await build({
      entryPoints: [path.join(root, 'extension/webviews/agent/main.ts')],
      bundle: true,
      write: false,
      outdir: '/out',
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      logLevel: 'silent',
    });
    script = output.outputFiles.find((file) => file.path.endsWith('.js'))?.text ?? '';
    style = output.outputFiles.find((file) => file.path.endsWith('.css'))?.text ?? '';
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
  });

  beforeEach(async () => {
    assert.ok(browser);
    page = await browser.newPage();
    await page.route(`${origin}/**`, (route) => {
      const url = route.request().url();
      if (url.endsWith('/agent.js'))
        return route.fulfill({ body: script, contentType: 'text/javascript' });
      if (url.endsWith('/agent.css'))
        return route.fulfill({ body: style, contentType: 'text/css' });

      return route.fulfill({
        contentType: 'text/html',
        body: webviewPage({
          cspSource: origin,
          nonce: 'test-nonce',
          scriptUri: `${origin}/agent.js`,
          styleUri: `${origin}/agent.css`,
          title: 'Agent',
        }),
      });
    });
    // A string, not a function: the test runner's transform would add helpers the page lacks.
    await page.addInitScript(`
      window.sent = [];
      window.state = undefined;
      window.acquireVsCodeApi = () => ({
        postMessage: (message) => window.sent.push(message),
        getState: () => window.state,
        setState: (state) => (window.state = state),
      });
    `);
    await page.goto(`${origin}/index.html`);
    await page.waitForFunction(() => (window as unknown as { sent: unknown[] }).sent.length > 0);
  });

  afterEach(() => page?.close());

  after(() => browser?.close());

  /** Dispatches host messages into the page, in order, synchronously. */
  const post = (...messages: HostToWebview[]) =>
    page.evaluate((list) => {
      for (const data of list) window.dispatchEvent(new MessageEvent('message', { data }));
    }, messages);
  const sent = () => page.evaluate(() => (window as unknown as { sent: unknown[] }).sent);
  const shownEntries = () => page.locator('#app li.event').count();

  it('shows agent text as text: HTML, script end tags and links in it stay inert', async () => {
    const html = '<img src=x onerror="window.pwned=1"><b>bold</b>';
    const agent = anAgent({
      title: `Fix ${html}`,
      state: 'awaiting_review',
      stateReason: '[approve](command:workbench.action.reloadWindow)',
      review: {
        requestId: 'r1',
        message: `</script><script>window.pwned=2</script> ${html}`,
        requestedAt: 2_000,
      },
    });
    const output = { ...events(1)[0], kind: 'output' as const, message: `${html}\n</pre>${html}` };
    await post(
      { type: 'init', agent, events: [output], changes: null },
      { type: 'changes', changes: [{ status: 'M', path: `src/${html}.ts` }] },
    );
    await post({ type: 'reply', id: 99, ok: false, error: html });

    assert.equal(await page.locator('#app img, #app b, #app script').count(), 0);
    assert.equal(
      await page.evaluate(() => (window as unknown as { pwned?: number }).pwned),
      undefined,
    );
    assert.equal(await page.locator('#app a[href^="command:"]').count(), 0);
    const text = (await page.locator('#app').textContent()) ?? '';
    assert.ok(text.includes(`Fix ${html}`), 'the title is shown as typed');
    assert.ok(text.includes('</script><script>window.pwned=2</script>'));
  });

  it('stays quick with 10 000 timeline entries and more streaming in, with a bounded page', async () => {
    await post({ type: 'init', agent: anAgent(), events: events(10_000), changes: null });
    assert.ok((await shownEntries()) <= 1000, 'at most 1000 entries are on the page');
    assert.match(
      (await page.locator('.hidden-note').textContent()) ?? '',
      /9000 earlier entries are not shown/,
    );

    const streamed = events(500, 10_001).map((event): HostToWebview => ({ type: 'event', event }));
    const elapsedMs = await page.evaluate((list) => {
      const started = performance.now();
      for (const data of list) window.dispatchEvent(new MessageEvent('message', { data }));
      return performance.now() - started;
    }, streamed);
    assert.ok(elapsedMs < 3_000, `500 streamed entries took ${Math.round(elapsedMs)} ms`);
    assert.ok((await shownEntries()) <= 1000);
    assert.equal(
      await page.locator('#app li.event').last().locator('.message').textContent(),
      'entry 10500',
    );

    await page.locator('.hidden-note a').click();
    assert.deepEqual((await sent()).at(-1), {
      type: 'request',
      id: 1,
      request: { method: 'showLog' },
    });
  });

  it('keeps the answer being typed, its caret and its focus while events arrive', async () => {
    const agent = anAgent({
      state: 'awaiting_review',
      review: { requestId: 'r1', message: 'Add a test?', requestedAt: 2_000 },
    });
    await post({ type: 'init', agent, events: events(3), changes: null });
    await page.locator('#answer').click();
    await page.keyboard.type('yes, add one');
    await page.evaluate(() =>
      (document.getElementById('answer') as HTMLTextAreaElement).setSelectionRange(3, 3),
    );
    await page.evaluate(
      () => ((window as unknown as { typed: unknown }).typed = document.getElementById('answer')),
    );

    await post(...events(50, 4).map((event): HostToWebview => ({ type: 'event', event })), {
      type: 'agent',
      agent: { ...agent, lastProgress: 'still waiting', updatedAt: 3_000 },
    });
    const after = await page.evaluate(() => {
      const answer = document.getElementById('answer') as HTMLTextAreaElement;
      return {
        same: answer === (window as unknown as { typed: unknown }).typed,
        focused: document.activeElement === answer,
        caret: answer.selectionStart,
        value: answer.value,
      };
    });
    assert.deepEqual(after, { same: true, focused: true, caret: 3, value: 'yes, add one' });
  });

  it('keeps the answer when Resume fails, and clears it once Resume went through', async () => {
    const agent = anAgent({
      state: 'reviewing',
      review: { requestId: 'r1', message: 'Add a test?', requestedAt: 2_000 },
    });
    await post({ type: 'init', agent, events: [], changes: null });
    await page.locator('#answer').fill('yes, add one');
    await page.locator('#resume').click();
    const request = (await sent()).at(-1) as { id: number; request: unknown };
    assert.deepEqual(request.request, { method: 'resume', answer: 'yes, add one' });

    await post({ type: 'reply', id: request.id, ok: false, error: 'broker not reachable' });
    assert.equal(await page.locator('#answer').inputValue(), 'yes, add one');
    assert.equal(
      await page.evaluate(
        () => (window as unknown as { state: { answerDraft: string } }).state.answerDraft,
      ),
      'yes, add one',
    );
    assert.match(
      (await page.locator('.actions .error').textContent()) ?? '',
      /broker not reachable/,
    );

    await page.locator('#resume').click();
    const retry = (await sent()).at(-1) as { id: number };
    await post({ type: 'reply', id: retry.id, ok: true });
    assert.equal(await page.locator('#answer').inputValue(), '');
  });

  it('keeps an event that arrived before the timeline it belongs to was loaded', async () => {
    const [first, second, third] = events(3);
    await post(
      { type: 'event', event: third },
      { type: 'init', agent: anAgent(), events: [first, second], changes: null },
    );
    assert.equal(await shownEntries(), 3);
    await post({ type: 'event', event: third });
    assert.equal(await shownEntries(), 3, 'a repeated event is listed once');
  });

  it("shows the agent's VM time in the header as the host sends it, without redrawing the buttons", async () => {
    const vmTime = () =>
      page.evaluate(() => document.querySelector('header .meta .vm-time')?.textContent ?? null);
    const agent = anAgent({ state: 'running', vmSeconds: 127 });
    await post(
      { type: 'vmTime', text: '2m07s so far' },
      { type: 'init', agent, events: [], changes: null },
    );
    assert.equal(await vmTime(), ' · VM time 2m07s so far', 'a figure sent before the agent');

    await page.evaluate(
      () => ((window as unknown as { cancel: unknown }).cancel = document.getElementById('cancel')),
    );
    await post({ type: 'vmTime', text: '2m08s so far' });
    assert.equal(await vmTime(), ' · VM time 2m08s so far');
    assert.equal(
      await page.evaluate(
        () =>
          document.getElementById('cancel') === (window as unknown as { cancel: unknown }).cancel,
      ),
      true,
      'the Cancel button is the same element',
    );

    await post({ type: 'agent', agent: { ...agent, state: 'awaiting_review', updatedAt: 3_000 } });
    assert.equal(await vmTime(), ' · VM time 2m08s so far', 'kept across a header redraw');

    await post({ type: 'vmTime', text: null });
    assert.equal(await vmTime(), '');
    assert.doesNotMatch((await page.locator('header').textContent()) ?? '', /VM time/);
  });
});
