import fs from 'node:fs';
import type { Hono } from 'hono';
import type { AgentState } from '../../protocol/api';
import { AgentvmError } from '../../protocol/errors';
import { stateHint } from '../agents/stateHint';
import type { AgentAccess, Env } from './agentAccess';
import type { AppDependencies } from './createApp';

/** What a finished agent hands back: its commits and patch, and the same as a git bundle. */
export function registerResultRoutes(
  app: Hono<Env>,
  deps: AppDependencies,
  { authorize }: AgentAccess,
): void {
  const { manager } = deps;

  app.get('/v1/agents/:id/result', (context) => {
    const record = authorize(context, 'agent.read');
    if (!record.result) {
      throw noResult(record);
    }

    const files = manager.resultFiles(record.id);
    return context.json({
      baseCommit: record.repo.baseCommit,
      headCommit: record.result.headCommit,
      commits: record.result.commits,
      patch: fs.readFileSync(files.patch, 'utf8'),
      exitCode: record.result.exitCode,
    });
  });

  app.get('/v1/agents/:id/result/bundle', (context) => {
    const record = authorize(context, 'agent.read');
    if (!record.result) {
      throw noResult(record);
    }

    const bundle = fs.readFileSync(manager.resultFiles(record.id).bundle);
    return context.body(bundle, 200, { 'content-type': 'application/octet-stream' });
  });
}

/** RESULT_NOT_READY for an agent without a result: "yet" only where one may still come. */
function noResult(record: { id: string; state: AgentState }): AgentvmError {
  const never = record.state === 'failed' || record.state === 'cancelled';
  return new AgentvmError(
    'RESULT_NOT_READY',
    never
      ? `agent ${record.id} ${record.state === 'failed' ? 'failed' : 'was cancelled'}, so it has no result and never will`
      : `agent ${record.id} has no result yet (state ${record.state})`,
    stateHint(record.id, record.state),
  );
}
