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

/**
 * The newest timeline entries kept on the page; older ones leave it (the full log is one click
 * away), so a long-running agent's panel stays as quick as a new one's.
 */
const maxShownEvents = 1000;

const vscode = acquireVsCodeApi();
const restored = webviewStateSchema.safeParse(vscode.getState());
let state: WebviewState | undefined = restored.success ? restored.data : undefined;
let agent: Agent | undefined;
let changes: { status: string; path: string }[] | null = null;
/** The agent's VM time as the host words it; null when the broker does not report it. */
let vmTime: string | null = null;
let removed = false;
let nextRequestId = 1;
const pending = new Map<number, WebviewRequest>();
let lastError = '';

// The page is built once; each update rewrites only the part it concerns, so the answer being
// typed, the caret and a selection in the timeline survive a stream of events.
const app = document.getElementById('app') as HTMLElement;
const headerSection = el('header', 'header');
/** Kept across header redraws: the host updates it each second while the VM runs. */
const vmTimeText = el('span', 'vm-time');
const actionBar = el('div', 'actions');
const reviewSection = el('section', 'review');
const reviewMessage = el('p', 'review-message');
const answer = document.createElement('textarea');
const resumeButton = button('resume', 'Resume', () => resume());
const changesSection = el('section', 'changes');
const timelineSection = el('section', 'timeline');
const hiddenNote = el('p', 'muted hidden-note');
const timelineList = el('ol', '');
/** Ids of the events received, shown or not, so a replayed event is never listed twice. */
const knownEventIds = new Set<number>();
let hiddenEvents = 0;

answer.id = 'answer';
answer.placeholder = 'Answer for the agent (optional)';
answer.value = state?.answerDraft ?? '';
answer.addEventListener('input', () => saveDraft(answer.value));
reviewSection.append(el('h2', '', 'Review requested'), reviewMessage, answer, resumeButton);
timelineSection.append(el('h2', '', 'Timeline'), hiddenNote, timelineList);
app.replaceChildren(el('p', 'muted', 'Loading…'));

window.addEventListener('message', (message: MessageEvent) => {
  const parsed = hostToWebviewSchema.safeParse(message.data);
  if (parsed.success) handle(parsed.data);
});
vscode.postMessage({ type: 'ready' });

function handle(message: HostToWebview): void {
  switch (message.type) {
    case 'init':
      if (agent && agent.id !== message.agent.id) clearTimeline();
      agent = message.agent;
      changes = message.changes;
      if (state?.agentId !== agent.id) answer.value = '';
      saveDraft(answer.value);
      addEvents(message.events);
      break;
    case 'agent':
      agent = message.agent;
      if (agent.state !== 'reviewing') changes = agent.state === 'awaiting_review' ? changes : null;
      break;
    case 'event':
      addEvents([message.event]);
      return;
    case 'changes':
      changes = message.changes;
      break;
    case 'vmTime':
      // Only this line changes: redrawing the buttons each second would eat a click.
      vmTime = message.text;
      renderVmTime();
      return;
    case 'removed':
      removed = true;
      break;
    case 'reply':
      settle(message.id, message.ok, message.error);
      break;
  }
  render();
}

function request(body: WebviewRequest): number {
  const id = nextRequestId++;
  pending.set(id, body);
  vscode.postMessage({ type: 'request', id, request: body });
  render();
  return id;
}

function resume(): void {
  request({ method: 'resume', answer: answer.value });
}

/** A request's reply: a resumed agent has the answer, so the draft goes; a failure keeps it. */
function settle(id: number, ok: boolean, error: string | undefined): void {
  const settled = pending.get(id);
  pending.delete(id);
  lastError = ok ? '' : (error ?? 'failed');
  if (ok && settled?.method === 'resume' && answer.value === settled.answer) {
    answer.value = '';
    saveDraft('');
  }
}

function saveDraft(text: string): void {
  if (!agent && !state) return;

  state = { agentId: agent?.id ?? state?.agentId ?? '', answerDraft: text };
  vscode.setState(state);
}

function render(): void {
  if (removed) {
    app.replaceChildren(el('p', 'muted', 'This agent was removed.'));
    return;
  }
  if (!agent) return;

  if (app.firstElementChild !== headerSection) {
    app.replaceChildren(headerSection, actionBar, reviewSection, changesSection, timelineSection);
  }
  renderHeader(agent);
  renderActions(agent);
  renderReview(agent);
  renderChanges();
}

function renderHeader(current: Agent): void {
  const meta = el('p', 'meta');
  meta.append(
    el('span', `state state-${current.state}`, current.state.replace(/_/g, ' ')),
    el(
      'span',
      '',
      ` · ${current.profile} · ${current.id} · base ${current.repo.baseCommit.slice(0, 10)}`,
    ),
    vmTimeText,
  );
  renderVmTime();
  headerSection.replaceChildren(el('h1', '', current.title), meta);
  if (current.stateReason) headerSection.append(el('p', 'reason', current.stateReason));
}

function renderVmTime(): void {
  vmTimeText.textContent = vmTime === null ? '' : ` · VM time ${vmTime}`;
}

function renderActions(current: Agent): void {
  const focused = document.activeElement?.id;
  const busy = pending.size > 0;
  const buttons: HTMLElement[] = [];
  const reviewable = current.state === 'awaiting_review' || current.state === 'reviewing';
  if (reviewable) buttons.push(button('review', 'Review', () => request({ method: 'review' })));
  if (!['done', 'failed', 'cancelled'].includes(current.state)) {
    buttons.push(button('cancel', 'Cancel', () => request({ method: 'cancel' }), true));
  }
  if (current.state === 'done' && current.result) {
    buttons.push(
      button('view-result', 'View diff', () => request({ method: 'viewResult' })),
      button('apply-result', 'Apply as branch', () => request({ method: 'applyResult' }), true),
      button(
        'open-pull-request',
        'Open pull request',
        () => request({ method: 'openPullRequest' }),
        true,
      ),
    );
  }
  for (const element of buttons) (element as HTMLButtonElement).disabled = busy;
  actionBar.replaceChildren(...buttons);
  if (lastError) actionBar.append(el('span', 'error', lastError));
  if (focused && focused !== answer.id) document.getElementById(focused)?.focus();
}

function renderReview(current: Agent): void {
  reviewSection.hidden = !current.review || current.state === 'running';
  reviewMessage.textContent = current.review?.message ?? '';
  const answerable = current.state === 'awaiting_review' || current.state === 'reviewing';
  answer.hidden = !answerable;
  resumeButton.hidden = !answerable;
  resumeButton.disabled = pending.size > 0;
}

function renderChanges(): void {
  changesSection.hidden = !changes || changes.length === 0;
  if (!changes || changes.length === 0) return changesSection.replaceChildren();

  const list = el('ul', '');
  for (const change of changes) {
    const item = el('li', '');
    const link = el('a', 'file', change.path);
    link.setAttribute('href', '#');
    link.addEventListener('click', (event) => {
      event.preventDefault();
      request({ method: 'openDiff', path: change.path });
    });
    item.append(el('span', 'status', change.status), link);
    list.append(item);
  }
  changesSection.replaceChildren(el('h2', '', `Changed files (${changes.length})`), list);
}

function clearTimeline(): void {
  knownEventIds.clear();
  hiddenEvents = 0;
  timelineList.replaceChildren();
}

/** Adds events in id order, skipping known ones; only the newest {@link maxShownEvents} stay. */
function addEvents(incoming: AgentEvent[]): void {
  const fresh = incoming.filter((event) => !knownEventIds.has(event.id));
  if (fresh.length === 0) return;

  fresh.sort((a, b) => a.id - b.id);
  for (const event of fresh) knownEventIds.add(event.id);
  // Of a large batch (a long timeline on load), only its tail can be shown: build just that.
  const skipped = Math.max(0, fresh.length - maxShownEvents);
  hiddenEvents += skipped;
  const batch = document.createDocumentFragment();
  for (const event of fresh.slice(skipped)) {
    const last = timelineList.lastElementChild as HTMLElement | null;
    if (!last || Number(last.dataset.id) < event.id) {
      batch.append(eventItem(event));
      continue;
    }

    // An older event (a catch-up after a gap): put it in its place.
    timelineList.append(batch);
    const after = Array.from(timelineList.children).find(
      (item) => Number((item as HTMLElement).dataset.id) > event.id,
    );
    timelineList.insertBefore(eventItem(event), after ?? null);
  }
  timelineList.append(batch);
  while (timelineList.childElementCount > maxShownEvents) {
    timelineList.firstElementChild?.remove();
    hiddenEvents++;
  }
  renderHiddenNote();
}

function eventItem(event: AgentEvent): HTMLElement {
  const item = el('li', `event kind-${event.kind}`);
  item.dataset.id = String(event.id);
  item.append(
    el('time', '', new Date(event.at).toLocaleTimeString()),
    el('span', 'kind', event.kind),
    el(event.kind === 'output' ? 'pre' : 'span', 'message', event.message),
  );
  return item;
}

function renderHiddenNote(): void {
  hiddenNote.hidden = hiddenEvents === 0;
  if (hiddenEvents === 0) return;

  const full = el('a', '', 'Open the full log');
  full.setAttribute('href', '#');
  full.addEventListener('click', (event) => {
    event.preventDefault();
    request({ method: 'showLog' });
  });
  hiddenNote.replaceChildren(
    `${hiddenEvents} earlier entr${hiddenEvents === 1 ? 'y is' : 'ies are'} not shown here. `,
    full,
  );
}

function button(id: string, label: string, onClick: () => void, secondary = false) {
  const element = el('button', secondary ? 'secondary' : '', label) as HTMLButtonElement;
  element.id = id;
  element.addEventListener('click', onClick);
  return element;
}

function el(tag: string, className: string, text?: string): HTMLElement {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;

  return element;
}
