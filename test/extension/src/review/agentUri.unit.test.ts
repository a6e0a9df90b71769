import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  guestPath,
  shellQuote,
  workspaceRelativePath,
} from '../../../../extension/src/review/agentUri';

describe('agentUri (unit)', () => {
  it('maps the root of agentvm://<id>/ to the workspace itself', () => {
    assert.equal(guestPath('/'), '.');
    assert.equal(guestPath(''), '.');
  });

  it('maps file paths to workspace-relative guest paths', () => {
    assert.equal(guestPath('/src/stats.js'), 'src/stats.js');
    assert.equal(guestPath('/src/'), 'src');
  });

  it('cannot climb out of the workspace with ..', () => {
    assert.equal(guestPath('/../../etc/passwd'), 'etc/passwd');
    assert.equal(workspaceRelativePath('/a/../../b'), 'b');
  });

  it('quotes arguments so sh passes them through unchanged', () => {
    for (const value of ["it's", 'a b', '$(rm -rf /)', '`x`', 'HEAD:src/a"b.js']) {
      const echoed = execFileSync('sh', ['-c', `printf %s ${shellQuote(value)}`]).toString();
      assert.equal(echoed, value);
    }
  });
});
