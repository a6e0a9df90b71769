import assert from 'node:assert/strict';
import { githubEndpoints } from '../../../../extension/src/github/githubEndpoints';

describe('githubEndpoints (unit)', () => {
  it("uses github.com's API and the github provider when nothing is configured", () => {
    assert.deepEqual(githubEndpoints('', {}), {
      apiUrl: 'https://api.github.com',
      webHost: 'github.com',
      cloneBaseUrl: 'https://github.com',
      authProviderId: 'github',
    });
  });

  it('takes GITHUB_API_URL from the environment and keeps github.com as the host of a loopback test server', () => {
    const endpoints = githubEndpoints('', { GITHUB_API_URL: 'http://127.0.0.1:4567/' });

    assert.equal(endpoints.apiUrl, 'http://127.0.0.1:4567');
    assert.equal(endpoints.webHost, 'github.com');
    assert.equal(endpoints.authProviderId, 'github');
  });

  it('prefers the agentvm.github.apiUrl setting and reads an Enterprise server host from /api/v3', () => {
    const endpoints = githubEndpoints('https://git.example.test/api/v3', {
      GITHUB_API_URL: 'http://127.0.0.1:4567',
    });

    assert.equal(endpoints.apiUrl, 'https://git.example.test/api/v3');
    assert.equal(endpoints.webHost, 'git.example.test');
    assert.equal(endpoints.cloneBaseUrl, 'https://git.example.test');
    assert.equal(endpoints.authProviderId, 'github-enterprise');
  });

  it('drops the api. prefix of an API host, and lets GITHUB_SERVER_URL name the web root', () => {
    assert.equal(githubEndpoints('https://api.octo.ghe.test', {}).webHost, 'octo.ghe.test');

    const endpoints = githubEndpoints('', {
      GITHUB_API_URL: 'http://127.0.0.1:4567',
      GITHUB_SERVER_URL: 'http://127.0.0.1:4568/',
    });
    assert.equal(endpoints.webHost, '127.0.0.1');
    assert.equal(endpoints.cloneBaseUrl, 'http://127.0.0.1:4568');
  });
});
