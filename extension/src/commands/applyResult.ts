import * as vscode from 'vscode';
import { AgentvmError } from '../../../protocol/errors';
import { applyResultBundle } from '../result/applyResultBundle';
import type { Services } from '../services';
import { agentIdOf } from './agentIdOf';

/**
 * agentvm.applyResult: fetches the finished agent's commits into the local repository it was
 * delegated from, as the new branch agentvm/<id>. Returns the branch name.
 */
export function applyResult(services: Services) {
  return async (arg?: unknown): Promise<string> => {
    const agentId = await agentIdOf(arg, services, ['done']);
    const client = await services.connection.getClient();
    const agent = await client.getAgent(agentId);
    const result = await client.result(agentId);
    if (result.commits.length === 0) {
      throw new AgentvmError(
        'RESULT_NOT_READY',
        `agent ${agentId} made no commits`,
        'Nothing to apply.',
      );
    }

    const repoDir = agent.repo.path ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (!repoDir) {
      throw new AgentvmError('NOT_A_GIT_REPOSITORY', 'no local repository to apply the result to');
    }

    const bundle = await client.resultBundle(agentId);
    const branch = await applyResultBundle(repoDir, agentId, bundle, result.headCommit);
    services.log
      .for('Result')
      .info(`${agentId}: applied ${result.commits.length} commit(s) as ${branch}`);
    void vscode.window.showInformationMessage(
      `Agent result applied as branch ${branch} (${result.commits.length} commit(s)) in ${repoDir}.`,
    );
    return branch;
  };
}
