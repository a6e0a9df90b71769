import assert from 'node:assert/strict';
import { MAX_UNIX_SOCKET_PATH_BYTES, vmPaths } from '../../../../server/vmm/qemu/vmPaths';

describe('vmPaths (unit)', () => {
  it('keeps sockets in the VM dir when their paths fit', () => {
    const paths = vmPaths('/data/agents/a1', '/tmp');

    assert.equal(paths.socketDir, '/data/agents/a1');
    assert.equal(paths.qmpSocket, '/data/agents/a1/qmp.sock');
    assert.equal(paths.controlSocket, '/data/agents/a1/control.sock');
  });

  it('moves sockets to a short directory under the temp dir when the VM dir is too long', () => {
    const longDir = `/data/${'d'.repeat(110)}/a1`;
    const paths = vmPaths(longDir, '/tmp');

    assert.match(paths.socketDir, /^\/tmp\/agentvm-[0-9a-f]{16}$/);
    for (const socket of [paths.qmpSocket, paths.controlSocket, paths.migrationSocket]) {
      assert.ok(Buffer.byteLength(socket) <= MAX_UNIX_SOCKET_PATH_BYTES, socket);
    }
    assert.equal(paths.overlay, `${longDir}/overlay.qcow2`);
  });

  it('gives the same VM dir the same socket dir, and different VM dirs different ones', () => {
    const first = `/data/${'d'.repeat(110)}/a1`;
    const second = `/data/${'d'.repeat(110)}/a2`;

    assert.equal(vmPaths(first, '/tmp').socketDir, vmPaths(first, '/tmp').socketDir);
    assert.notEqual(vmPaths(first, '/tmp').socketDir, vmPaths(second, '/tmp').socketDir);
  });

  it('counts bytes, not characters, against the socket path limit', () => {
    const dir = `/d/${'é'.repeat(50)}`;

    assert.ok(dir.length + '/migrate.sock'.length <= MAX_UNIX_SOCKET_PATH_BYTES);
    assert.notEqual(vmPaths(dir, '/tmp').socketDir, dir);
  });
});
