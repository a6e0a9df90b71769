/**
 * Serialises operations on one agent (a review request, a resume and a cancel must never
 * interleave), while different agents proceed in parallel.
 */
export class AgentLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(agentId: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(agentId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(operation);
    const tail = next.catch(() => undefined);
    this.tails.set(agentId, tail);
    void tail.then(() => {
      if (this.tails.get(agentId) === tail) this.tails.delete(agentId);
    });
    return next;
  }
}
