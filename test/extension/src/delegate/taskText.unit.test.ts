import assert from 'node:assert/strict';
import { selectionTaskText, taskTitle } from '../../../../extension/src/delegate/taskText';
import { describeUpload } from '../../../../extension/src/delegate/describeUpload';

describe('taskText (unit)', () => {
  const selection = {
    relativePath: 'src/stats.js',
    startLine: 3,
    endLine: 5,
    languageId: 'javascript',
    text: 'a\nb\nc\n',
  };

  it('puts the instruction first, then the file, line range and the fenced code', () => {
    assert.equal(
      selectionTaskText('  Make it faster ', selection),
      'Make it faster\n\nContext: src/stats.js, lines 3-5:\n\n```javascript\na\nb\nc\n```\n',
    );
  });

  it('names a single line as such', () => {
    assert.match(selectionTaskText('x', { ...selection, endLine: 3 }), /, line 3:/);
  });

  it('fences a selection that contains backticks with a longer fence', () => {
    const text = selectionTaskText('x', { ...selection, text: 'const s = ````;' });
    assert.match(text, /\n`````javascript\nconst s = ````;\n`````\n$/);
  });

  it('titles a task by its first line, shortened with an ellipsis', () => {
    assert.equal(taskTitle('Fix the bug\nmore detail'), 'Fix the bug');
    assert.equal(taskTitle('   '), 'Untitled task');
    const long = taskTitle('x'.repeat(100), 10);
    assert.equal(long.length, 10);
    assert.ok(long.endsWith('…'));
  });

  it('says plainly whether uncommitted changes are sent', () => {
    const repo = {
      bundle: 'AAAA',
      baseCommit: 'c'.repeat(40),
      branch: 'main',
      path: '/r',
      uncommitted: ['a.js'],
    };
    assert.match(
      describeUpload({ ...repo, uncommittedIncluded: false }, 'demo'),
      /1 uncommitted change\(s\) NOT included/,
    );
    assert.match(
      describeUpload({ ...repo, uncommittedIncluded: true }, 'demo'),
      /included as a snapshot commit/,
    );
    assert.match(
      describeUpload({ ...repo, uncommitted: [], uncommittedIncluded: false }, 'demo'),
      /No uncommitted changes/,
    );
    assert.match(
      describeUpload({ ...repo, uncommitted: [], uncommittedIncluded: false }, 'demo'),
      /Branch: main at cccccccccccc/,
    );
  });
});
