import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { Agent } from '../../protocol/api';
import type { ExtensionApi } from '../../extension/src/extension';
import { repoDir, waitForState } from './support/extensionHostEnv';

/** A profile the harness gives the broker: one secret read from VS Code's SecretStorage. */
const secretProfile = 'vscode-secret';

describe('Secrets from VS Code SecretStorage (vscode)', () => {
  let api: ExtensionApi;
  let agentId: string | undefined;

  before(async () => {
    const extension = vscode.extensions.getExtension<ExtensionApi>('agentvm.agentvm');
    assert.ok(extension);
    api = await extension.activate();
  });

  after(async () => {
    if (agentId) await vscode.commands.executeCommand('agentvm.removeAgent', agentId, true);
  });

  it('registers every command package.json contributes', async () => {
    const packageJson = JSON.parse(
      fs.readFileSync(path.join(api.services.context.extensionPath, 'package.json'), 'utf8'),
    ) as { contributes: { commands: { command: string }[] } };
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = packageJson.contributes.commands
      .map((entry) => entry.command)
      .filter((command) => !registered.has(command));
    assert.deepEqual(missing, []);
  });

  it('sends a stored secret with the delegation, and the VM sees only its placeholder', async function () {
    const client = await api.services.connection.getClient();
    if (!(await client.profiles()).some((profile) => profile.name === secretProfile)) {
      this.skip();
    }

    const value = `real-${randomBytes(8).toString('hex')}`;
    await vscode.commands.executeCommand('agentvm.storeSecret', 'demo-token', value);
    const agent = await vscode.commands.executeCommand<Agent>('agentvm.delegateToAgent', {
      text: 'Report whether the token placeholder is there.',
      profile: secretProfile,
      repoPath: repoDir,
      confirm: false,
    });
    agentId = agent.id;

    const done = await waitForState(api, agent.id, ['done']);
    assert.equal(done.state, 'done');
    const output = (await client.events(agent.id))
      .filter((event) => event.kind === 'output')
      .map((event) => event.message)
      .join('');
    assert.match(output, /token: placeholder/);
    assert.equal(output.includes(value), false, 'the real value never reaches the VM');
  });
});
