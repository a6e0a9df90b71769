import assert from 'node:assert/strict';
import { AgentvmError } from '../../../protocol/errors';
import { formatIssueRef, issueUrl, parseIssueRef } from '../../../server/github/parseIssueRef';

describe('parseIssueRef (unit)', () => {
  it('reads OWNER/REPO#N', () => {
    assert.deepEqual(parseIssueRef('octo-org/my.repo_x#42'), {
      owner: 'octo-org',
      repo: 'my.repo_x',
      number: 42,
    });
  });

  it('reads issue URLs with or without scheme, www, query or fragment', () => {
    const expected = { owner: 'octo', repo: 'widgets', number: 7 };
    for (const input of [
      'https://github.com/octo/widgets/issues/7',
      'http://www.github.com/octo/widgets/issues/7/',
      'github.com/octo/widgets/issues/7',
      '  https://github.com/octo/widgets/issues/7?q=1#issuecomment-99  ',
    ]) {
      assert.deepEqual(parseIssueRef(input), expected, input);
    }
  });

  it('accepts a GitHub Enterprise host when told', () => {
    assert.deepEqual(
      parseIssueRef('https://git.corp.test/a/b/issues/3', { host: 'git.corp.test' }),
      { owner: 'a', repo: 'b', number: 3 },
    );
  });

  it('refuses anything else with BAD_ISSUE_REF and says why', () => {
    const cases: Array<[string, RegExp]> = [
      ['octo/widgets', /expected OWNER\/REPO#N/],
      ['octo/widgets#0', /number must be 1 or more/],
      ['-octo/widgets#1', /expected OWNER\/REPO#N/],
      ['https://gitlab.com/octo/widgets/issues/1', /not on github\.com/],
      ['https://github.com/octo/widgets/pull/3', /pull request/],
      ['https://github.com/octo/widgets', /does not point at an issue/],
      ['https://github.com/octo/widgets/issues/x', /does not point at an issue/],
      ['https://github.com/octo/../issues/1', /does not point at an issue|not a valid repository/],
      ['ftp://github.com/octo/widgets/issues/1', /expected OWNER\/REPO#N/],
    ];
    for (const [input, reason] of cases) {
      assert.throws(
        () => parseIssueRef(input),
        (error: unknown) =>
          error instanceof AgentvmError &&
          error.code === 'BAD_ISSUE_REF' &&
          reason.test(error.message),
        input,
      );
    }
  });

  it('formats the short form and the web address back', () => {
    const ref = { owner: 'octo', repo: 'widgets', number: 5 };
    assert.equal(formatIssueRef(ref), 'octo/widgets#5');
    assert.deepEqual(parseIssueRef(issueUrl(ref)), ref);
  });
});
