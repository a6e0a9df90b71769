import type { Store } from '../store/Store';

/** What an agent's timeline says about its current run (epoch milliseconds; undefined: unsaid). */
export interface RunTimes {
  /**
   * When its current VM began to run: its latest state entry starting → running (a start), to
   * `restoring` (a restore under way) or restoring → reviewing (a restore done). A resume or a
   * failed snapshot keeps the VM, so they begin nothing. The VM-seconds of a VM that ended are
   * charged when it ends, and the next VM begins with one of these entries, so a run counted from
   * here was never charged before.
   */
  vmSince: number | undefined;
  /** When it last started running (a start or a resume): the wall-clock limit counts from here. */
  runningSince: number | undefined;
  /** When its newest timeline entry was stored. */
  newestAt: number | undefined;
}

/** Reads {@link RunTimes} from the agent's timeline (for recovery after a broker restart). */
export function runTimes(store: Store, agentId: string): RunTimes {
  const times: RunTimes = { vmSince: undefined, runningSince: undefined, newestAt: undefined };
  let afterId = 0;
  // Bounded, as ReviewSnapshots.unansweredRequest: 100 pages of 10 000 events.
  for (let page = 0; page < 100; page++) {
    const events = store.events(agentId, afterId);
    if (events.length === 0) break;

    for (const event of events) {
      times.newestAt = Math.max(times.newestAt ?? event.at, event.at);
      if (event.kind !== 'state') continue;

      const { from, to } = event.data ?? {};
      if (to === 'running') times.runningSince = event.at;
      if (
        (to === 'running' && from === 'starting') ||
        to === 'restoring' ||
        (to === 'reviewing' && from === 'restoring')
      ) {
        times.vmSince = event.at;
      }
    }
    afterId = events[events.length - 1]!.id;
  }
  return times;
}
