import * as vscode from 'vscode';

/** Default broker address; matches `agentvm serve` without options. */
export const DEFAULT_BROKER_URL = 'http://127.0.0.1:7878';

/** The extension's settings (`agentvm.*`), read fresh on every call. */
export interface Settings {
  brokerUrl: string;
  defaultProfile: string;
  autoStartBroker: boolean;
  notifyReviewRequested: boolean;
  notifyDone: boolean;
  notifyFailed: boolean;
  /** GitHub REST API root (GitHub Enterprise); empty: GITHUB_API_URL, else github.com's. */
  githubApiUrl: string;
}

export function readSettings(): Settings {
  const config = vscode.workspace.getConfiguration('agentvm');
  return {
    brokerUrl: config.get<string>('brokerUrl') || DEFAULT_BROKER_URL,
    defaultProfile: config.get<string>('defaultProfile') ?? '',
    autoStartBroker: config.get<boolean>('autoStartBroker') ?? true,
    notifyReviewRequested: config.get<boolean>('notifications.reviewRequested') ?? true,
    notifyDone: config.get<boolean>('notifications.done') ?? true,
    notifyFailed: config.get<boolean>('notifications.failed') ?? true,
    githubApiUrl: config.get<string>('github.apiUrl') ?? '',
  };
}
