import * as vscode from 'vscode';
import type { Agent, AgentEvent } from '../../../protocol/api';
import type { BrokerConnection } from '../broker/BrokerConnection';
import type { ComponentLog } from '../log';
import type { AgentStore } from '../model/AgentStore';
import type { GuestApi } from '../review/GuestApi';
import {
  webviewToHostSchema,
  type HostToWebview,
  type WebviewRequest,
  type WebviewToHost,
} from './messages';
import { PanelVmTime } from './PanelVmTime';
import { createNonce, webviewPage } from './webviewHtml';

/** The view type of agent panels; the serializer is registered under it. */
export const AGENT_PANEL_VIEW_TYPE = 'agentvm.agent';

/** What a panel needs from the rest of the extension. */
export interface AgentPanelServices {
  extensionUri: vscode.Uri;
  store: AgentStore;
  connection: BrokerConnection;
  guest: GuestApi;
  log: ComponentLog;
}

/**
 * One webview panel per agent: its live timeline, review request, changed files and the
 * Review / Resume / Cancel buttons. Actions run the same commands as the tree.
 */
export class AgentPanel implements vscode.Disposable {
  private static readonly panels = new Map<string, AgentPanel>();
  private readonly disposables: vscode.Disposable[] = [];
  private ready = false;
  private lastEventIdValue = 0;
  private readonly vmTime: PanelVmTime;

  /** Shows the agent's panel, creating it if needed. */
  static show(agentId: string, services: AgentPanelServices): AgentPanel {
    const existing = AgentPanel.panels.get(agentId);
    if (existing) {
      existing.panel.reveal();
      return existing;
    }

    const title = services.store.get(agentId)?.title ?? agentId;
    const panel = vscode.window.createWebviewPanel(
      AGENT_PANEL_VIEW_TYPE,
      `Agent: ${title}`,
      vscode.ViewColumn.Active,
      AgentPanel.webviewOptions(services.extensionUri),
    );
    return new AgentPanel(panel, agentId, services);
  }

  /** Re-attaches a panel VS Code restored after a reload. */
  static revive(
    panel: vscode.WebviewPanel,
    agentId: string,
    services: AgentPanelServices,
  ): AgentPanel {
    panel.webview.options = AgentPanel.webviewOptions(services.extensionUri);
    return new AgentPanel(panel, agentId, services);
  }

  /** The open panel of an agent, if any (tests use it). */
  static get(agentId: string): AgentPanel | undefined {
    return AgentPanel.panels.get(agentId);
  }

  static webviewOptions(
    extensionUri: vscode.Uri,
  ): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return {
      enableScripts: true,
      retainContextWhenHidden: false,
      localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webviews')],
    };
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    readonly agentId: string,
    private readonly services: AgentPanelServices,
  ) {
    AgentPanel.panels.set(agentId, this);
    panel.webview.html = this.html();
    const { store } = services;
    this.vmTime = new PanelVmTime(
      store,
      agentId,
      (text) => this.post({ type: 'vmTime', text }),
      () => panel.visible,
    );
    this.disposables.push(
      this.vmTime,
      panel.onDidDispose(() => this.dispose()),
      panel.onDidChangeViewState(() => this.vmTime.update()),
      // The agent's changes and the stream's status: either can start or stop the VM's clock.
      store.onDidChange(() => this.vmTime.update()),
      panel.webview.onDidReceiveMessage((message) => void this.receive(message)),
      store.onDidChangeAgent(({ agent }) => {
        if (agent.id !== agentId) return;

        panel.title = `Agent: ${agent.title}`;
        this.post({ type: 'agent', agent });
        if (agent.state === 'reviewing') void this.sendChanges();
      }),
      store.onDidReceiveEvent((event) => {
        if (event.agentId === agentId) this.postEvents([event]);
      }),
      store.onDidRemoveAgent((id) => {
        if (id === agentId) this.post({ type: 'removed' });
      }),
      store.onDidReconnect(() => void this.catchUp()),
    );
  }

  /** Whether the webview has completed its ready handshake. */
  get isReady(): boolean {
    return this.ready;
  }

  /** The id of the newest timeline event sent to the webview (tests use it). */
  get lastEventId(): number {
    return this.lastEventIdValue;
  }

  private html(): string {
    const webview = this.panel.webview;
    const root = vscode.Uri.joinPath(this.services.extensionUri, 'dist', 'webviews');
    return webviewPage({
      cspSource: webview.cspSource,
      nonce: createNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(root, 'agent.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(root, 'agent.css')).toString(),
      title: this.panel.title,
    });
  }

  private async receive(raw: unknown): Promise<void> {
    const parsed = webviewToHostSchema.safeParse(raw);
    if (!parsed.success) {
      this.services.log.warn(`ignored malformed webview message: ${parsed.error.message}`);
      return;
    }

    const message: WebviewToHost = parsed.data;
    if (message.type === 'ready') {
      this.ready = true;
      await this.sendInit();
      return;
    }

    try {
      await this.perform(message.request);
      this.post({ type: 'reply', id: message.id, ok: true });
    } catch (error) {
      this.post({ type: 'reply', id: message.id, ok: false, error: (error as Error).message });
    }
  }

  private async perform(request: WebviewRequest): Promise<void> {
    const run = (command: string, ...args: unknown[]) =>
      vscode.commands.executeCommand(command, this.agentId, ...args);
    switch (request.method) {
      case 'review':
        await run('agentvm.reviewAgent');
        return;
      case 'resume':
        await run('agentvm.resumeAgent', request.answer);
        return;
      case 'cancel':
        await run('agentvm.cancelAgent');
        return;
      case 'openDiff':
        await run('agentvm.openChangedFile', request.path);
        return;
      case 'viewResult':
        await run('agentvm.viewResult');
        return;
      case 'applyResult':
        await run('agentvm.applyResult');
        return;
      case 'openPullRequest':
        await run('agentvm.openPullRequest');
        return;
      case 'showLog':
        await run('agentvm.showAgentLog');
        return;
    }
  }

  private async sendInit(): Promise<void> {
    try {
      const client = await this.services.connection.getClient();
      const [agent, events] = await Promise.all([
        client.getAgent(this.agentId),
        client.events(this.agentId),
      ]);
      this.services.store.upsert(agent);
      this.post({ type: 'init', agent, events, changes: null });
      this.vmTime.update(true);
      this.lastEventIdValue = events.reduce(
        (max, event) => Math.max(max, event.id),
        this.lastEventIdValue,
      );
      if (agent.state === 'reviewing') await this.sendChanges();
    } catch (error) {
      this.services.log.error(`panel ${this.agentId}: load failed: ${(error as Error).message}`);
      const agent: Agent | undefined = this.services.store.get(this.agentId);
      if (agent) this.post({ type: 'init', agent, events: [], changes: null });
      else this.post({ type: 'removed' });
      this.vmTime.update(true);
    }
  }

  /** After a gap in the event stream: the events the panel missed meanwhile. */
  private async catchUp(): Promise<void> {
    if (!this.ready) return;

    try {
      const client = await this.services.connection.getClient();
      this.postEvents(await client.events(this.agentId, this.lastEventIdValue));
    } catch (error) {
      this.services.log.warn(`panel ${this.agentId}: catching up: ${(error as Error).message}`);
    }
  }

  private postEvents(events: AgentEvent[]): void {
    for (const event of events) {
      this.post({ type: 'event', event });
      this.lastEventIdValue = Math.max(this.lastEventIdValue, event.id);
    }
  }

  private async sendChanges(): Promise<void> {
    try {
      this.post({ type: 'changes', changes: await this.services.guest.changes(this.agentId) });
    } catch (error) {
      this.services.log.warn(`panel ${this.agentId}: changes: ${(error as Error).message}`);
    }
  }

  private post(message: HostToWebview): void {
    if (!this.ready) return;

    void this.panel.webview.postMessage(message);
  }

  dispose(): void {
    AgentPanel.panels.delete(this.agentId);
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
    this.panel.dispose();
  }

  /** Closes every panel (extension deactivation). */
  static disposeAll(): void {
    for (const panel of [...AgentPanel.panels.values()]) panel.dispose();
  }
}
