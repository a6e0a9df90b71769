import type * as vscode from 'vscode';
import type { BrokerConnection } from './broker/BrokerConnection';
import type { BrokerStarter } from './broker/BrokerStarter';
import type { Log } from './log';
import type { AgentStore } from './model/AgentStore';
import type { GuestApi } from './review/GuestApi';
import type { ReviewWorkspace } from './review/ReviewWorkspace';

/** The extension's long-lived parts, created once in `activate` and handed to commands and views. */
export interface Services {
  context: vscode.ExtensionContext;
  log: Log;
  connection: BrokerConnection;
  starter: BrokerStarter;
  store: AgentStore;
  guest: GuestApi;
  review: ReviewWorkspace;
  /** Set by registerViews: selects an agent in the tree. */
  revealAgent(agentId: string): Promise<void>;
}
