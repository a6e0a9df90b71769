import assert from 'node:assert/strict';
import {
  ENTER_REFERENCE_LABEL,
  issueQuickPickItems,
  relativeAge,
} from '../../../../extension/src/github/issueQuickPickItems';
import type { OpenIssue } from '../../../../extension/src/github/listOpenIssues';

const repo = { owner: 'octo', repo: 'widgets' };
const nowMs = Date.UTC(2025, 5, 10, 12, 0, 0);
const hourMs = 3_600_000;

function anIssue(overrides: Partial<OpenIssue> = {}): OpenIssue {
  return {
    number: 7,
    title: 'Widgets crash on empty input',
    labels: [],
    author: 'carol',
    commentCount: 0,
    updatedAtMs: nowMs - 3 * hourMs,
    ...overrides,
  };
}

describe('issueQuickPickItems (unit)', () => {
  it('lists each issue as "#N title" with its labels, author, comments and age, picking that issue', () => {
    const [row] = issueQuickPickItems(
      [anIssue({ labels: ['bug', 'good first issue'], commentCount: 2 })],
      repo,
      nowMs,
    );

    assert.equal(row.label, '#7 Widgets crash on empty input');
    assert.equal(row.description, 'bug, good first issue');
    assert.equal(row.detail, '@carol · 2 comments · updated 3 hours ago');
    assert.deepEqual(row.issue, { owner: 'octo', repo: 'widgets', number: 7 });
  });

  it('keeps the order it is given and ends with the always-shown row to enter a reference', () => {
    const rows = issueQuickPickItems(
      [anIssue({ number: 12, title: 'Newest' }), anIssue({ number: 3, title: 'Older' })],
      repo,
      nowMs,
    );

    assert.deepEqual(
      rows.map((row) => row.label),
      ['#12 Newest', '#3 Older', ENTER_REFERENCE_LABEL],
    );
    assert.equal(rows[2].issue, undefined);
    assert.equal(rows[2].alwaysShow, true, 'typing a URL as filter text must not hide it');
  });

  it('offers only the reference row when the repository has no open issues', () => {
    const rows = issueQuickPickItems([], repo, nowMs);

    assert.deepEqual(
      rows.map((row) => row.label),
      [ENTER_REFERENCE_LABEL],
    );
  });

  it('says "1 comment", leaves out an unknown author and an unreadable date', () => {
    const [row] = issueQuickPickItems(
      [anIssue({ author: null, commentCount: 1, updatedAtMs: Number.NaN })],
      repo,
      nowMs,
    );

    assert.equal(row.description, undefined);
    assert.equal(row.detail, '1 comment');
  });

  it('words ages in minutes, hours, then days', () => {
    assert.equal(relativeAge(20_000), 'just now');
    assert.equal(relativeAge(60_000), '1 minute ago');
    assert.equal(relativeAge(59 * 60_000), '59 minutes ago');
    assert.equal(relativeAge(47 * hourMs), '47 hours ago');
    assert.equal(relativeAge(10 * 24 * hourMs), '10 days ago');
    assert.equal(relativeAge(-5_000), 'just now', 'a clock running behind GitHub is not an error');
  });
});
