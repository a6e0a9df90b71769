import type { Command } from 'commander';
import type { AuditEntry, AuditVerifyResult } from '../../../protocol/policy';
import {
  action,
  checkAgentIds,
  connect,
  out,
  parseWholeNumber,
  printJson,
  type GlobalOptions,
} from '../context';
import { exitCodes } from '../exitCodes';

/** `audit`: print the audit log (own agents, or everything for an admin) or verify its chain. */
export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('print the audit log, or check that no row was edited or deleted')
    .option('--agent <id>', 'only the rows of this agent')
    .option('--verify', 'recompute the hash chain (admin token); exits 1 naming the first bad row')
    .option('--limit <n>', 'at most this many rows (the newest)', '1000')
    .option('--json', 'print JSON')
    .action(
      action(
        async (options: GlobalOptions & { agent?: string; verify?: boolean; limit: string }) => {
          if (options.agent !== undefined) checkAgentIds('audit --agent', [options.agent]);
          const limit = parseWholeNumber(options.limit, '--limit', { min: 1, example: 100 });
          const client = connect(options);
          if (options.verify) {
            const result = await client.verifyAudit();
            if (options.json) printJson(result);
            else out(formatVerifyResult(result));
            return result.ok ? exitCodes.ok : exitCodes.failure;
          }

          const rows = await client.audit({ agentId: options.agent, limit });
          if (options.json) return printJson(rows);

          if (rows.length === 0) return out('no audit rows');
          for (const row of rows) out(formatRow(row));
        },
      ),
    );
}

/**
 * The one-line text answer of `audit --verify`. Rows from before the keyed chain are counted apart:
 * their plain sha256 links prove order, not that nobody rewrote them.
 */
export function formatVerifyResult(result: AuditVerifyResult): string {
  if (!result.ok) return `audit log BROKEN at row ${result.firstBadRowId}: ${result.reason}`;

  const rows = `${result.rowsChecked} ${result.rowsChecked === 1 ? 'row' : 'rows'} checked`;
  const unkeyed = result.unkeyedRows ?? 0;
  if (unkeyed === 0) return `audit log intact: ${rows}`;

  return `audit log intact: ${rows} (${unkeyed} from before the keyed chain, checked with sha256)`;
}

function formatRow(row: AuditEntry): string {
  const time = new Date(row.at).toISOString().replace('T', ' ').slice(0, 19);
  const details = Object.entries(row.details)
    .filter(([, value]) => value !== undefined && !(Array.isArray(value) && value.length === 0))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return [
    String(row.id).padStart(5),
    time,
    row.decision.padEnd(5),
    row.actor,
    row.agentId ?? '-',
    row.action,
    details,
  ].join('  ');
}
