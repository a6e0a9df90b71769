import type { Agent, AgentEvent } from '../../../protocol/api';
import {
  hostToWebviewSchema,
  webviewStateSchema,
  type HostToWebview,
  type WebviewRequest,
  type WebviewState,
  type WebviewToHost,
} from '../../src/webview/messages';
import './agent.css';

interface VsCodeApi {
  postMessage(message: WebviewToHost): void;
  getState(): unknown;
  setState(state: WebviewState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const restored = webviewStateSchema.safeParse(vscode.getState());
let state: WebviewState | undefined = restored.success ? restored.data : undefined;
let agent: Agent | undefined;
let events: AgentEvent[] = [];
let changes: { status: string; path: string }[] | null = null;
let removed = false;
let nextRequestId = 1;
const pending = new Map<number, string>();
let lastError = '';

const app = document.getElementById('app') as HTMLElement;

window.addEventListener('message', (message: MessageEvent) => {
  const parsed = hostToWebviewSchema.safeParse(message.data);
  if (parsed.success) handle(parsed.data);
});
vscode.postMessage({ type: 'ready' });

function handle(message: HostToWebview): void {
  switch (message.type) {
    case 'init':
      agent = message.agent;
      events = message.events;
      changes = message.changes;
      state = {
        agentId: agent.id,
        answerDraft: state?.agentId === agent.id ? state.answerDraft : '',
      };
      vscode.setState(state);
      break;
    case 'agent':
      agent = message.agent;
      if (agent.state !== 'reviewing') changes = agent.state === 'awaiting_review' ? changes : null;
      break;
    case 'event':
      if (!events.some((event) => event.id === message.event.id)) events.push(message.event);
      break;
    case 'changes':
      changes = message.changes;
      break;
    case 'removed':
      removed = true;
      break;
    case 'reply':
      pending.delete(message.id);
      lastError = message.ok ? '' : (message.error ?? 'failed');
      break;
  }
  render();
}

function request(request: WebviewRequest): void {
  const id = nextRequestId++;
  pending.set(id, request.method);
  vscode.postMessage({ type: 'request', id, request });
  render();
}

function render(): void {
  const focused = document.activeElement?.id;
  app.replaceChildren();
  if (removed) {
    app.append(el('p', 'muted', 'This agent was removed.'));
    return;
  }
  if (!agent) {
    app.append(el('p', 'muted', 'Loading…'));
    return;
  }

  app.append(header(agent), actions(agent));
  if (agent.review && agent.state !== 'running') app.append(reviewBox(agent));
  if (changes && changes.length > 0) app.append(changedFiles(changes));
  app.append(timeline());
  if (focused) document.getElementById(focused)?.focus();
}

function header(current: Agent): HTMLElement {
  const section = el('header', 'header');
  section.append(el('h1', '', current.title));
  const meta = el('p', 'meta');
  meta.append(
    el('span', `state state-${current.state}`, current.state.replace(/_/g, ' ')),
    el(
      'span',
      '',
      ` · ${current.profile} · ${current.id} · base ${current.repo.baseCommit.slice(0, 10)}`,
    ),
  );
  section.append(meta);
  if (current.stateReason) section.append(el('p', 'reason', current.stateReason));

  return section;
}

function actions(current: Agent): HTMLElement {
  const bar = el('div', 'actions');
  const busy = pending.size > 0;
  const reviewable = current.state === 'awaiting_review' || current.state === 'reviewing';
  if (reviewable) bar.append(button('review', 'Review', busy, () => request({ method: 'review' })));
  if (!['done', 'failed', 'cancelled'].includes(current.state)) {
    bar.append(button('cancel', 'Cancel', busy, () => request({ method: 'cancel' }), true));
  }
  if (current.state === 'done' && current.result) {
    bar.append(
      button('view-result', 'View diff', busy, () => request({ method: 'viewResult' })),
      button(
        'apply-result',
        'Apply as branch',
        busy,
        () => request({ method: 'applyResult' }),
        true,
      ),
      button(
        'open-pull-request',
        'Open pull request',
        busy,
        () => request({ method: 'openPullRequest' }),
        true,
      ),
    );
  }
  if (lastError) bar.append(el('span', 'error', lastError));

  return bar;
}

function reviewBox(current: Agent): HTMLElement {
  const box = el('section', 'review');
  box.append(
    el('h2', '', 'Review requested'),
    el('p', 'review-message', current.review?.message ?? ''),
  );
  if (current.state !== 'awaiting_review' && current.state !== 'reviewing') return box;

  const answer = document.createElement('textarea');
  answer.id = 'answer';
  answer.placeholder = 'Answer for the agent (optional)';
  answer.value = state?.answerDraft ?? '';
  answer.addEventListener('input', () => {
    if (state) vscode.setState((state = { ...state, answerDraft: answer.value }));
  });
  const resume = button('resume', 'Resume', pending.size > 0, () => {
    request({ method: 'resume', answer: answer.value });
    if (state) vscode.setState((state = { ...state, answerDraft: '' }));
  });
  box.append(answer, resume);

  return box;
}

function changedFiles(list: { status: string; path: string }[]): HTMLElement {
  const section = el('section', 'changes');
  section.append(el('h2', '', `Changed files (${list.length})`));
  const ul = el('ul', '');
  for (const change of list) {
    const item = el('li', '');
    const link = el('a', 'file', change.path);
    link.setAttribute('href', '#');
    link.addEventListener('click', (event) => {
      event.preventDefault();
      request({ method: 'openDiff', path: change.path });
    });
    item.append(el('span', 'status', change.status), link);
    ul.append(item);
  }
  section.append(ul);

  return section;
}

function timeline(): HTMLElement {
  const section = el('section', 'timeline');
  section.append(el('h2', '', 'Timeline'));
  const list = el('ol', '');
  for (const event of [...events].sort((a, b) => a.id - b.id)) {
    const item = el('li', `event kind-${event.kind}`);
    item.append(
      el('time', '', new Date(event.at).toLocaleTimeString()),
      el('span', 'kind', event.kind),
      el(event.kind === 'output' ? 'pre' : 'span', 'message', event.message),
    );
    list.append(item);
  }
  section.append(list);

  return section;
}

function button(
  id: string,
  label: string,
  disabled: boolean,
  onClick: () => void,
  secondary = false,
) {
  const element = el('button', secondary ? 'secondary' : '', label) as HTMLButtonElement;
  element.id = id;
  element.disabled = disabled;
  element.addEventListener('click', onClick);
  return element;
}

function el(tag: string, className: string, text?: string): HTMLElement {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;

  return element;
}
