import type { z } from 'zod';
import type { GuestRequest } from '../../../protocol/control';
import { AgentvmError } from '../../../protocol/errors';
import type { BrokerConnection } from '../broker/BrokerConnection';
import {
  changesResultSchema,
  execInterruptResultSchema,
  execResultSchema,
  readdirResultSchema,
  readFileResultSchema,
  statResultSchema,
} from './guestResults';

type GuestRequestInput = z.input<typeof import('../../../protocol/control').guestRequestSchema>;

/** Typed calls into a reviewing agent's VM through the broker (POST /v1/agents/:id/guest). */
export class GuestApi {
  constructor(private readonly connection: BrokerConnection) {}

  async stat(agentId: string, path: string) {
    return this.call(agentId, { op: 'fs.stat', path }, statResultSchema);
  }

  async readdir(agentId: string, path: string) {
    return this.call(agentId, { op: 'fs.readdir', path }, readdirResultSchema);
  }

  async readFile(agentId: string, path: string): Promise<Uint8Array> {
    const { data } = await this.call(agentId, { op: 'fs.readFile', path }, readFileResultSchema);
    return Buffer.from(data, 'base64');
  }

  async writeFile(
    agentId: string,
    path: string,
    data: Uint8Array,
    create: boolean,
    overwrite: boolean,
  ) {
    const base64 = Buffer.from(data).toString('base64');
    await this.raw(agentId, { op: 'fs.writeFile', path, data: base64, create, overwrite });
  }

  async delete(agentId: string, path: string, recursive: boolean) {
    await this.raw(agentId, { op: 'fs.delete', path, recursive });
  }

  async rename(agentId: string, from: string, to: string, overwrite: boolean) {
    await this.raw(agentId, { op: 'fs.rename', from, to, overwrite });
  }

  async mkdir(agentId: string, path: string) {
    await this.raw(agentId, { op: 'fs.mkdir', path });
  }

  /**
   * Runs `sh -c command` in the workspace (or `cwd`); `timeoutMs` bounds it inside the VM. With an
   * `execId`, {@link interrupt} can stop it while it runs.
   */
  async exec(agentId: string, command: string, timeoutMs = 60_000, cwd?: string, execId?: string) {
    return this.call(agentId, { op: 'exec', command, timeoutMs, cwd, execId }, execResultSchema);
  }

  /** SIGINT to the running exec named `execId`; false when it is not running (any more). */
  async interrupt(agentId: string, execId: string): Promise<boolean> {
    const answer = await this.call(
      agentId,
      { op: 'exec.interrupt', execId },
      execInterruptResultSchema,
    );
    return answer.interrupted;
  }

  async changes(agentId: string) {
    return this.call(agentId, { op: 'changes' }, changesResultSchema);
  }

  private async call<T>(
    agentId: string,
    request: GuestRequestInput,
    schema: z.ZodType<T>,
  ): Promise<T> {
    const result = await this.raw(agentId, request);
    const parsed = schema.safeParse(result);
    if (!parsed.success) {
      throw new AgentvmError(
        'GUEST_ERROR',
        `unexpected answer to ${request.op}: ${parsed.error.message}`,
      );
    }

    return parsed.data;
  }

  private async raw(agentId: string, request: GuestRequestInput): Promise<unknown> {
    const client = await this.connection.getClient();
    return client.guest(agentId, request as GuestRequest);
  }
}
