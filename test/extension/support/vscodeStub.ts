/**
 * A stand-in for the `vscode` module in unit tests (mocha in plain Node, where it does not exist):
 * the little of its API the extension's models, status bar item and tree items use. Importing
 * this file before the code under test makes `import * as vscode from 'vscode'` resolve to it;
 * what the status bar would show is kept in {@link shownStatusBarItems}.
 */
import Module from 'node:module';

type Listener<T> = (value: T) => void;

class EventEmitter<T> {
  private readonly listeners = new Set<Listener<T>>();

  readonly event = (listener: Listener<T>) => {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };

  fire(value: T): void {
    for (const listener of [...this.listeners]) listener(value);
  }

  dispose(): void {
    this.listeners.clear();
  }
}

class ThemeColor {
  constructor(readonly id: string) {}
}

class ThemeIcon {
  constructor(
    readonly id: string,
    readonly color?: ThemeColor,
  ) {}
}

class MarkdownString {
  constructor(readonly value = '') {}
}

/** The fields of a tree item the extension sets; VS Code's class holds them the same way. */
class TreeItem {
  id?: string;
  description?: string;
  contextValue?: string;
  iconPath?: ThemeIcon;
  tooltip?: string | MarkdownString;
  command?: unknown;

  constructor(
    readonly label: string,
    readonly collapsibleState = 0,
  ) {}
}

/** A status bar item that records what it shows. */
export interface StubStatusBarItem {
  id: string;
  text: string;
  tooltip: string | undefined;
  visible: boolean;
}

/** Every status bar item made through the stub, in order. */
export const shownStatusBarItems: StubStatusBarItem[] = [];

function createStatusBarItem(id: string): StubStatusBarItem & Record<string, unknown> {
  const item = {
    id,
    text: '',
    tooltip: undefined,
    visible: false,
    show: () => (item.visible = true),
    hide: () => (item.visible = false),
    dispose: () => (item.visible = false),
  };
  shownStatusBarItems.push(item);
  return item;
}

const vscodeStub = {
  EventEmitter,
  ThemeColor,
  ThemeIcon,
  MarkdownString,
  TreeItem,
  TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
  StatusBarAlignment: { Left: 1, Right: 2 },
  commands: { executeCommand: async () => undefined },
  window: { createStatusBarItem },
};

const stubId = 'vscode-unit-test-stub';
const moduleInternals = Module as unknown as {
  _resolveFilename(request: string, ...rest: unknown[]): string;
};
const resolveFilename = moduleInternals._resolveFilename;
moduleInternals._resolveFilename = function (request: string, ...rest: unknown[]): string {
  return request === 'vscode' ? stubId : resolveFilename.call(this, request, ...rest);
};
const stubModule = new Module(stubId);
stubModule.loaded = true;
stubModule.exports = vscodeStub;
require.cache[stubId] = stubModule;
