import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { redact } from '../../../server/log';
import { ghStoredToken, resolveGitHubToken } from '../../../server/github/resolveGitHubToken';

const hostsYaml = `github.com:
    users:
        alice:
            oauth_token: gho_nested_user_token
    oauth_token: gho_stored_login_token
    git_protocol: https
    user: alice
git.corp.test:
    oauth_token: "gho_enterprise_token"
    user: alice
`;

describe('resolveGitHubToken (unit)', () => {
  let home: string;

  beforeEach(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'agentvm-token-'));
  });

  afterEach(() => rmSync(home, { recursive: true, force: true }));

  it('prefers GITHUB_TOKEN, then GH_TOKEN', () => {
    assert.deepEqual(
      resolveGitHubToken({
        GITHUB_TOKEN: 'ghp_first_token',
        GH_TOKEN: 'ghp_second_token',
        HOME: home,
      }),
      {
        token: 'ghp_first_token',
        source: 'GITHUB_TOKEN',
      },
    );
    assert.deepEqual(
      resolveGitHubToken({ GITHUB_TOKEN: '  ', GH_TOKEN: 'ghp_second_token', HOME: home }),
      {
        token: 'ghp_second_token',
        source: 'GH_TOKEN',
      },
    );
  });

  it("falls back to gh's stored login under ~/.config/gh, XDG_CONFIG_HOME or GH_CONFIG_DIR", () => {
    mkdirSync(path.join(home, '.config', 'gh'), { recursive: true });
    writeFileSync(path.join(home, '.config', 'gh', 'hosts.yml'), hostsYaml);
    assert.deepEqual(resolveGitHubToken({ HOME: home }), {
      token: 'gho_stored_login_token',
      source: 'gh',
    });

    mkdirSync(path.join(home, 'xdg', 'gh'), { recursive: true });
    writeFileSync(
      path.join(home, 'xdg', 'gh', 'hosts.yml'),
      hostsYaml.replace('gho_stored_login_token', 'gho_xdg_token'),
    );
    assert.equal(
      resolveGitHubToken({ HOME: home, XDG_CONFIG_HOME: path.join(home, 'xdg') }).token,
      'gho_xdg_token',
    );

    mkdirSync(path.join(home, 'custom'), { recursive: true });
    writeFileSync(path.join(home, 'custom', 'hosts.yml'), hostsYaml);
    assert.equal(
      resolveGitHubToken({ HOME: home, GH_CONFIG_DIR: path.join(home, 'custom') }, 'git.corp.test')
        .token,
      'gho_enterprise_token',
    );
  });

  it('registers the token with the log redactor', () => {
    resolveGitHubToken({ GITHUB_TOKEN: 'ghp_never_in_logs_42', HOME: home });

    assert.equal(redact('header: token ghp_never_in_logs_42'), 'header: token [redacted]');
  });

  it('explains what it looked for when there is no token', () => {
    assert.throws(
      () => resolveGitHubToken({ HOME: home }),
      (error: unknown) =>
        error instanceof AgentvmError &&
        error.code === 'GITHUB_TOKEN_MISSING' &&
        /GITHUB_TOKEN and GH_TOKEN are unset and there is no gh login/.test(error.message),
    );

    mkdirSync(path.join(home, '.config', 'gh'), { recursive: true });
    writeFileSync(
      path.join(home, '.config', 'gh', 'hosts.yml'),
      'github.com:\n    user: alice\n    git_protocol: ssh\n',
    );
    assert.throws(
      () => resolveGitHubToken({ HOME: home }),
      /holds no token for github.com .*gh auth token/,
    );
  });

  it('reads only the host-level oauth_token from hosts.yml', () => {
    assert.equal(ghStoredToken(hostsYaml, 'github.com'), 'gho_stored_login_token');
    assert.equal(
      ghStoredToken(
        'github.com:\n    users:\n        a:\n            oauth_token: nested\n',
        'github.com',
      ),
      null,
    );
    assert.equal(ghStoredToken(hostsYaml, 'example.test'), null);
  });
});
