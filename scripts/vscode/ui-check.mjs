// The UI check: drives the real workbench in Chromium the way a user would (command palette,
// tree, webview buttons) along delegate → review → resume → done, and saves screenshots of the
// tree, the agent webview and the review workspace into .artifacts/vscode/.
import fs from 'node:fs';
import path from 'node:path';

const stepTimeoutMs = 30_000;
const agentTimeoutMs = Number(process.env.AGENTVM_TEST_STATE_TIMEOUT_MS ?? 480_000);

/** Runs the check; resolves true when every step passed. */
export async function runUiCheck({ browser, base, repo, artifacts, log }) {
  const workspaceFile = path.join(path.dirname(repo), 'ui.code-workspace');
  fs.writeFileSync(workspaceFile, JSON.stringify({ folders: [{ path: repo }] }));
  // A fresh context: browser storage from the mocha window must not leak into this one.
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const shot = async (name) => {
    const file = path.join(artifacts, `${name}.png`);
    await page.screenshot({ path: file });
    log(`screenshot ${file}`);
  };
  // The title carries a command link, as an issue title from a stranger might: the notifications
  // must show it as text, never as a link that runs the command.
  const title = `UI check task ${Date.now().toString(36)} [details](command:agentvm.showLog)`;
  try {
    await page.goto(`${base}/?workspace=${encodeURIComponent(workspaceFile)}`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await page.locator('.statusbar').waitFor({ timeout: stepTimeoutMs });
    // The extension's contributions are registered once its view container shows up.
    await page
      .locator('.activitybar .action-item a[aria-label^="agentvm"]')
      .waitFor({ timeout: 60_000 });

    // A delegation cancelled at the profile step keeps the typed task for the next attempt.
    const unsent = `${title} (typed, then cancelled)`;
    await runCommand(page, 'agentvm: Delegate to agent');
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Type a task' }).click();
    await typeIntoQuickInput(page, unsent);
    await page
      .locator('.quick-input-widget .monaco-list-row', { hasText: 'demo' })
      .first()
      .waitFor({ timeout: stepTimeoutMs });
    await page.keyboard.press('Escape');
    await runCommand(page, 'agentvm: Delegate to agent');
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Type a task' }).click();
    const taskInput = page.locator('.quick-input-widget input.input').first();
    await taskInput.waitFor({ timeout: stepTimeoutMs });
    await page.waitForFunction(
      (expected) => document.querySelector('.quick-input-widget input.input')?.value === expected,
      unsent,
      { timeout: stepTimeoutMs },
    );
    log("the cancelled delegation's task was offered again");

    // Delegate through the command palette, answering each prompt.
    await typeIntoQuickInput(page, title);
    await page
      .locator('.quick-input-widget .monaco-list-row')
      .first()
      .waitFor({ timeout: stepTimeoutMs });
    await page.keyboard.press('Enter');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: stepTimeoutMs });
    await shot('ui-1-confirm-delegation');
    await dialog.getByRole('button', { name: 'Delegate' }).click();

    // The tree: the agent appears, then moves to "Needs review".
    const sidebar = page.locator('.sidebar');
    const row = sidebar.locator('.monaco-list-row', { hasText: title });
    await row.waitFor({ timeout: stepTimeoutMs });
    await sidebar
      .locator('.monaco-list-row', { hasText: 'Needs review' })
      .waitFor({ timeout: agentTimeoutMs });
    await shot('ui-2-tree-needs-review');
    const toast = page.locator('.notifications-toasts .notification-toast', {
      hasText: 'asks for review',
    });
    await toast.first().waitFor({ timeout: stepTimeoutMs });
    const links = await toast.locator('a[href^="command:"]').count();
    if (links > 0) throw new Error(`the review notification shows ${links} command link(s)`);
    log('the review notification shows the title as text');

    // The webview: open the agent, wait for the review request, press Review.
    // The tree re-renders when the agent changes group; a click that lands during a re-render
    // selects nothing, so click again (bounded) until the panel shows the review request.
    const webview = page.frameLocator('iframe.webview').frameLocator('iframe#active-frame');
    for (let attempt = 1; ; attempt++) {
      await row.click();
      try {
        await webview.locator('.review-message').waitFor({ timeout: stepTimeoutMs / 3 });
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
    await shot('ui-3-agent-webview');
    await webview.locator('#review').click();

    // The review workspace: the agent's folder in the explorer, a diff editor, the terminal.
    await page.locator('.monaco-diff-editor').first().waitFor({ timeout: agentTimeoutMs });
    await runCommand(page, 'View: Show Explorer');
    await page
      .locator('.explorer-folders-view .monaco-list-row', { hasText: 'agent:' })
      .first()
      .waitFor({
        timeout: stepTimeoutMs,
      });
    await shot('ui-4-review-workspace');

    // Resume in one step from the palette, with an answer.
    await runCommand(page, 'agentvm: Resume agent');
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first().click();
    await typeIntoQuickInput(page, 'yes');
    await page.locator('.activitybar .action-item a[aria-label^="agentvm"]').click();
    await sidebar
      .locator('.monaco-list-row', { hasText: /^Done/ })
      .first()
      .waitFor({ timeout: agentTimeoutMs });
    await shot('ui-5-tree-done');
    log('UI check passed');
    return true;
  } catch (error) {
    log(`UI check failed: ${error.message}`);
    await shot('ui-failure').catch(() => undefined);
    return false;
  } finally {
    await context.close();
  }
}

async function runCommand(page, label) {
  // The palette lists commands as of when it opened; retry in case a registration was late.
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input.input').first();
    await input.waitFor({ timeout: stepTimeoutMs });
    await input.fill(`>${label}`);
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: label }).first();
    try {
      await row.waitFor({ timeout: 5_000 });
      await page.keyboard.press('Enter');
      return;
    } catch (error) {
      await page.keyboard.press('Escape');
      if (attempt >= 3) throw new Error(`command "${label}" not in the palette: ${error.message}`);
    }
  }
}

async function typeIntoQuickInput(page, text) {
  const input = page.locator('.quick-input-widget input.input').first();
  await input.waitFor({ timeout: stepTimeoutMs });
  await page.waitForTimeout(300);
  await input.fill(text);
  await page.keyboard.press('Enter');
}
