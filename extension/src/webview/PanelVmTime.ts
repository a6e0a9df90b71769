import type * as vscode from 'vscode';
import type { AgentStore } from '../model/AgentStore';
import { vmTimeCounts, vmTimeText } from '../model/vmTime';

/** How often a visible panel redraws a running VM's time; the figure shows seconds. */
const vmTimeRefreshIntervalMs = 1_000;

/**
 * Keeps an agent panel's VM time current. The broker sends an agent when its state changes, not
 * as the seconds pass, so while the VM runs the seconds since the figure arrived are counted here
 * (see `vmTimeText`): each second while the panel is visible, and at every change of the agent or
 * of the stream's status.
 */
export class PanelVmTime implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private lastText: string | null | undefined;

  constructor(
    private readonly store: Pick<AgentStore, 'get' | 'receivedAt' | 'status'>,
    private readonly agentId: string,
    private readonly post: (text: string | null) => void,
    private readonly isVisible: () => boolean,
  ) {}

  /**
   * Posts the figure when it changed (always with `force`, for a webview that has just loaded),
   * then starts or stops the ticking to match.
   */
  update(force = false): void {
    const nowMs = Date.now();
    const agent = this.store.get(this.agentId);
    const live = this.store.status === 'connected';
    const receivedAtMs = this.store.receivedAt(this.agentId) ?? nowMs;
    const text = (agent && vmTimeText(agent, { receivedAtMs, live, nowMs })) ?? null;
    if (force || text !== this.lastText) this.post(text);
    this.lastText = text;

    const ticking = agent !== undefined && vmTimeCounts(agent, live) && this.isVisible();
    if (ticking && !this.timer) {
      this.timer = setInterval(() => this.update(), vmTimeRefreshIntervalMs);
    }
    if (!ticking) this.stop();
  }

  /** Whether the figure is being redrawn each second (tests use it). */
  get isTicking(): boolean {
    return this.timer !== undefined;
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  dispose(): void {
    this.stop();
  }
}
