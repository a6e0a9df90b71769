import type { Command } from 'commander';
import { action, checkAgentIds, connect, out, printJson, type GlobalOptions } from '../context';

/** `allow` / `deny`: change a running agent's egress allowlist (takes effect for new connections). */
export function registerAllowCommands(program: Command): void {
  program
    .command('allow')
    .description("add hosts to an agent's egress allowlist (example.com, *.example.com, host:port)")
    .argument('<id>')
    .argument('[hosts...]', 'allowlist entries to add')
    .option('--only', 'replace the allowlist with exactly these hosts (none: block everything)')
    .option('--json', 'print JSON')
    .action(
      action(async (id: string, hosts: string[], options: GlobalOptions & { only?: boolean }) => {
        checkAgentIds('allow', [id]);
        const client = connect(options);
        const current = options.only ? [] : (await client.egress(id)).allowedHosts;
        const next = [...new Set([...current, ...hosts])];
        const policy = await client.setAllowedHosts(id, next);
        if (options.json) return printJson(policy);

        out(`agent ${id} may now reach: ${policy.allowedHosts.join(', ') || 'nothing'}`);
      }),
    );

  program
    .command('deny')
    .description("remove hosts from an agent's egress allowlist")
    .argument('<id>')
    .argument('<hosts...>', 'allowlist entries to remove, as written')
    .option('--json', 'print JSON')
    .action(
      action(async (id: string, hosts: string[], options: GlobalOptions) => {
        checkAgentIds('deny', [id]);
        const client = connect(options);
        const current = (await client.egress(id)).allowedHosts;
        const policy = await client.setAllowedHosts(
          id,
          current.filter((entry) => !hosts.includes(entry)),
        );
        if (options.json) return printJson(policy);

        out(`agent ${id} may now reach: ${policy.allowedHosts.join(', ') || 'nothing'}`);
      }),
    );
}
