import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpioArchive } from '../../../../server/vmm/image/cpioArchive';

describe('cpioArchive (unit)', () => {
  const archive = cpioArchive([
    { kind: 'directory', path: 'bin', mode: 0o755 },
    { kind: 'file', path: 'bin/hello', mode: 0o755, data: Buffer.from('hello, odd length') },
    { kind: 'symlink', path: 'bin/sh', target: 'hello' },
    { kind: 'charDevice', path: 'console', mode: 0o600, major: 5, minor: 1 },
    { kind: 'file', path: 'init', mode: 0o755, data: Buffer.from('#!/bin/sh\n') },
  ]);

  it('writes an archive that GNU cpio lists with the right types, modes and device numbers', () => {
    const listing = execFileSync('cpio', ['-t', '-v', '--quiet'], { input: archive }).toString();
    const lines = listing.trim().split('\n');

    assert.equal(lines.length, 5);
    assert.match(lines[0], /^drwxr-xr-x .* bin$/);
    assert.match(lines[1], /^-rwxr-xr-x .* 17 .* bin\/hello$/);
    assert.match(lines[2], /^lrwxrwxrwx .* bin\/sh -> hello$/);
    assert.match(lines[3], /^crw------- .* 5,\s+1 .* console$/);
    assert.match(lines[4], /init$/);
  });

  it('keeps file contents intact across the 4-byte padding', () => {
    const content = execFileSync('cpio', ['-i', '--to-stdout', '--quiet', 'bin/hello'], {
      input: archive,
    });

    assert.equal(content.toString(), 'hello, odd length');
  });

  it('produces identical bytes for identical inputs', () => {
    const again = cpioArchive([{ kind: 'file', path: 'a', mode: 0o644, data: Buffer.from('x') }]);

    assert.deepEqual(
      again,
      cpioArchive([{ kind: 'file', path: 'a', mode: 0o644, data: Buffer.from('x') }]),
    );
  });
});
