import * as vscode from 'vscode';
import { AgentPanel, type AgentPanelServices } from './AgentPanel';
import { webviewStateSchema } from './messages';

/** Restores agent panels after a window reload from the state the webview kept with setState. */
export class AgentPanelSerializer implements vscode.WebviewPanelSerializer {
  constructor(private readonly services: AgentPanelServices) {}

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const parsed = webviewStateSchema.safeParse(state);
    if (!parsed.success) {
      panel.dispose();
      return;
    }

    AgentPanel.revive(panel, parsed.data.agentId, this.services);
  }
}
