import * as vscode from 'vscode';
import type { Services } from '../services';
import { applyResult } from './applyResult';
import { cancelAgent } from './cancelAgent';
import { delegateToAgent } from './delegateToAgent';
import { openAgent } from './openAgent';
import { openChangedFile } from './openChangedFile';
import { openPullRequest } from './openPullRequest';
import { openTerminal } from './openTerminal';
import { refreshAgents } from './refreshAgents';
import { removeAgent } from './removeAgent';
import { resumeAgent } from './resumeAgent';
import { reviewAgent } from './reviewAgent';
import { showAgentLog } from './showAgentLog';
import { showLog } from './showLog';
import { signIn } from './signIn';
import { storeSecret } from './storeSecret';
import { viewResult } from './viewResult';
import { wrapCommand } from './wrapCommand';

/** Every command the extension contributes, by id; package.json `contributes.commands` lists the same. */
export const commandFactories = {
  'agentvm.delegateToAgent': delegateToAgent,
  'agentvm.signIn': signIn,
  'agentvm.storeSecret': storeSecret,
  'agentvm.openAgent': openAgent,
  'agentvm.reviewAgent': reviewAgent,
  'agentvm.resumeAgent': resumeAgent,
  'agentvm.cancelAgent': cancelAgent,
  'agentvm.removeAgent': removeAgent,
  'agentvm.viewResult': viewResult,
  'agentvm.applyResult': applyResult,
  'agentvm.openPullRequest': openPullRequest,
  'agentvm.openChangedFile': openChangedFile,
  'agentvm.openTerminal': openTerminal,
  'agentvm.refresh': refreshAgents,
  'agentvm.showLog': showLog,
  'agentvm.showAgentLog': showAgentLog,
} as const;

/** The single wiring point of commands: each handler wrapped once, each registration owned. */
export function registerCommands(services: Services): void {
  const log = services.log.for('Command');
  for (const [id, factory] of Object.entries(commandFactories)) {
    const handler = (factory as (services: Services) => (...args: unknown[]) => unknown)(services);
    services.context.subscriptions.push(
      vscode.commands.registerCommand(
        id,
        wrapCommand(id, log, async (...args: unknown[]) => handler(...args)),
      ),
    );
  }
}
