import assert from 'node:assert/strict';
import {
  decideGithubCall,
  requiredGithubPermission,
} from '../../../../server/policy/github/githubPermission';

describe('githubPermission (unit)', () => {
  const needs: Array<[method: string, path: string, needed: string | null]> = [
    ['GET', '/repos/octo/app/issues/7', 'issues:read'],
    ['GET', '/repos/octo/app/issues?state=open', 'issues:read'],
    ['POST', '/repos/octo/app/issues', 'issues:write'],
    ['POST', '/repos/octo/app/issues/7/comments', 'issues:write'],
    ['POST', '/repos/octo/app/labels', 'labels:write'],
    ['POST', '/repos/octo/app/issues/7/labels', 'labels:write'],
    ['DELETE', '/repos/octo/app/issues/7/labels/bug', 'labels:write'],
    ['GET', '/repos/octo/app/labels', 'labels:read'],
    ['GET', '/repos/octo/app/pulls/3/files', 'pulls:read'],
    ['POST', '/repos/octo/app/pulls', 'pulls:write'],
    ['PUT', '/repos/octo/app/contents/README.md', 'contents:write'],
    ['GET', '/repos/octo/app/git/refs/heads/main', 'contents:read'],
    ['GET', '/repos/octo/app/commits/abc/status', 'statuses:read'],
    ['GET', '/repos/octo/app/commits/abc', 'contents:read'],
    ['POST', '/repos/octo/app/statuses/abc', 'statuses:write'],
    ['GET', '/repos/octo/app', 'metadata:read'],
    ['GET', '/api/v3/repos/octo/app/issues/7', 'issues:read'],
    ['GET', '/search/issues?q=bug', 'issues:read'],
    ['DELETE', '/repos/octo/app', null],
    ['GET', '/user/repos', null],
    ['POST', '/repos/octo/app/hooks', null],
  ];

  for (const [method, path, needed] of needs) {
    it(`maps ${method} ${path} to ${needed ?? 'no grantable permission'}`, () => {
      const permission = requiredGithubPermission(method, path);
      const actual = permission ? `${permission.resource}:${permission.access}` : null;
      assert.equal(actual, needed);
    });
  }

  const decisions: Array<[scopes: string[], method: string, path: string, allowed: boolean]> = [
    [['issues:read'], 'GET', '/repos/octo/app/issues/7', true],
    [['issues:read'], 'POST', '/repos/octo/app/labels', false],
    [['issues:read'], 'POST', '/repos/octo/app/issues/7/comments', false],
    [['issues:write'], 'GET', '/repos/octo/app/issues/7', true],
    [['labels:write'], 'POST', '/repos/octo/app/issues/7/labels', true],
    [['contents:read'], 'PUT', '/repos/octo/app/contents/a.txt', false],
    [['contents:read'], 'GET', '/repos/octo/app', true],
    [['metadata:read'], 'GET', '/repos/octo/app', true],
    [['issues:write'], 'GET', '/repos/octo/app', false],
    [['pulls:write', 'statuses:read'], 'GET', '/repos/octo/app/topics', false],
    [[], 'GET', '/repos/octo/app', false],
    [['pulls:write'], 'PUT', '/repos/octo/app/pulls/1/merge', false],
    [['pulls:write'], 'PUT', '/repos/octo/app/pulls/1/update-branch', false],
    [['contents:write'], 'PUT', '/repos/octo/app/pulls/1/merge', false],
    [['pulls:write', 'contents:write'], 'PUT', '/repos/octo/app/pulls/1/merge', true],
    [['pulls:write', 'contents:write'], 'PUT', '/repos/octo/app/pulls/1/update-branch', true],
    [['pulls:read'], 'GET', '/repos/octo/app/pulls/1/merge', true],
    [['pulls:write'], 'PATCH', '/repos/octo/app/pulls/1', true],
    [[], 'GET', '/rate_limit', true],
    [['issues:write', 'pulls:write', 'contents:write'], 'POST', '/graphql', false],
    [['issues:read'], 'GET', '/repos/octo/app/issues/../labels', false],
    [['issues:read'], 'GET', '/repos/octo/app/issues/%2e%2e/hooks', false],
  ];

  for (const [scopes, method, path, allowed] of decisions) {
    it(`${allowed ? 'allows' : 'refuses'} ${method} ${path} with [${scopes.join(', ')}]`, () => {
      const decision = decideGithubCall({ scopes }, method, path);
      assert.equal(decision.allowed, allowed, decision.reason);
    });
  }

  it('says which permission a refused call needs', () => {
    const decision = decideGithubCall(
      { scopes: ['issues:read'] },
      'POST',
      '/repos/octo/app/labels',
    );

    assert.match(decision.reason, /needs labels:write/);
  });

  it('refuses repositories outside the grant, whatever the scopes', () => {
    const grant = { scopes: ['issues:write'], repositories: ['Octo/App'] };

    assert.equal(decideGithubCall(grant, 'GET', '/repos/octo/app/issues/1').allowed, true);
    assert.equal(decideGithubCall(grant, 'GET', '/repos/octo/other/issues/1').allowed, false);
  });

  it('says a merge with only pulls:write also needs contents:write', () => {
    const decision = decideGithubCall(
      { scopes: ['pulls:write'] },
      'PUT',
      '/repos/o/r/pulls/9/merge',
    );

    assert.equal(decision.allowed, false);
    assert.match(decision.reason, /needs contents:write, which the profile does not grant/);
    assert.deepEqual(decision.needed?.alsoNeeds, [{ resource: 'contents', access: 'write' }]);
  });
});
