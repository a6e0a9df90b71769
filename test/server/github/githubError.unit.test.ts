import assert from 'node:assert/strict';
import { AgentvmError } from '../../../protocol/errors';
import { githubError } from '../../../server/github/githubError';

const context = { repo: { owner: 'octo', repo: 'widgets' }, action: 'opening a pull request' };

function failure(status: number, headers: Record<string, string> = {}, message = 'Forbidden') {
  return Object.assign(new Error(`${message} - https://docs.github.com/rest`), {
    status,
    response: { headers, data: { message } },
  });
}

describe('githubError (unit)', () => {
  it('names the missing classic scope and the scopes the token has', () => {
    const error = githubError(
      failure(403, { 'x-accepted-oauth-scopes': 'repo', 'x-oauth-scopes': 'gist' }),
      context,
    );

    assert.equal(error.code, 'GITHUB_FORBIDDEN');
    assert.equal(
      error.message,
      'GitHub refused opening a pull request on octo/widgets (403 Forbidden): the token needs the `repo` scope (it has: gist).',
    );
  });

  it('names the fine-grained permission when GitHub sends it', () => {
    const error = githubError(
      failure(403, { 'x-accepted-github-permissions': 'pull_requests=write' }),
      context,
    );

    assert.match(error.message, /needs the permission pull_requests=write/);
  });

  it('says when the rate limit is used up, and until when', () => {
    const error = githubError(
      failure(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1700000000' }),
      context,
    );

    assert.match(error.message, /rate limit .* resets at 2023-11-14T22:13:20.000Z/);
  });

  it('maps 401 to GITHUB_UNAUTHORIZED and 404 to GITHUB_NOT_FOUND naming the repository', () => {
    assert.equal(
      githubError(failure(401, {}, 'Bad credentials'), context).code,
      'GITHUB_UNAUTHORIZED',
    );

    const notFound = githubError(failure(404, {}, 'Not Found'), context);
    assert.equal(notFound.code, 'GITHUB_NOT_FOUND');
    assert.match(notFound.message, /repository octo\/widgets was not found/);
  });

  it('keeps AgentvmErrors and wraps anything else as GITHUB_ERROR', () => {
    const own = new AgentvmError('BAD_ISSUE_REF', 'x');
    assert.equal(githubError(own, context), own);
    assert.equal(githubError(failure(422, {}, 'Validation Failed'), context).code, 'GITHUB_ERROR');
    assert.equal(githubError(new Error('socket hang up'), context).code, 'GITHUB_ERROR');
  });
});
