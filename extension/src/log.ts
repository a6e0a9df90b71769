import * as vscode from 'vscode';

/**
 * The extension's single log output channel ("agentvm"). Every line carries a `[Component]` tag
 * so one channel stays readable across the tree, the stream, the file system and the commands.
 */
export class Log implements vscode.Disposable {
  private readonly channel: vscode.LogOutputChannel;

  constructor() {
    this.channel = vscode.window.createOutputChannel('agentvm', { log: true });
  }

  /** A logger that prefixes every line with `[component]`. */
  for(component: string): ComponentLog {
    const tag = `[${component}]`;
    return {
      trace: (message) => this.channel.trace(`${tag} ${message}`),
      debug: (message) => this.channel.debug(`${tag} ${message}`),
      info: (message) => this.channel.info(`${tag} ${message}`),
      warn: (message) => this.channel.warn(`${tag} ${message}`),
      error: (message) => this.channel.error(`${tag} ${message}`),
    };
  }

  show(): void {
    this.channel.show(true);
  }

  dispose(): void {
    this.channel.dispose();
  }
}

/** The logging face one component sees. */
export interface ComponentLog {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}
