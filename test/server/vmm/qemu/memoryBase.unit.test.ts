import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../../protocol/errors';
import { checkMemoryBase, mappedMemoryBase } from '../../../../server/vmm/qemu/memoryBase';

/** A process that maps `file` copy-on-write, as QEMU maps a clone's RAM, until it is killed. */
async function mapPrivately(file: string): Promise<ChildProcess> {
  const script = [
    'import mmap, sys',
    `f = open(${JSON.stringify(file)}, "rb")`,
    'm = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)',
    'print("mapped", flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`python3 exited with ${code}`)));
  });
  return child;
}

describe('memoryBase (unit)', () => {
  let dir: string;
  let templateMemory: string;
  let vmDir: string;
  let mapper: ChildProcess | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-membase-'));
    templateMemory = path.join(dir, 'templates', 'k', 'memory.ram');
    vmDir = path.join(dir, 'agents', 'a1');
    fs.mkdirSync(path.dirname(templateMemory), { recursive: true });
    fs.mkdirSync(vmDir, { recursive: true });
    fs.writeFileSync(templateMemory, Buffer.alloc(64 * 1024, 7));
  });

  afterEach(() => {
    mapper?.kill('SIGKILL');
    mapper = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('describes the template file a process maps, and accepts it until the file changes', async () => {
    mapper = await mapPrivately(templateMemory);

    const base = mappedMemoryBase(mapper.pid!, templateMemory, vmDir);

    assert.equal(base?.path, templateMemory);
    assert.equal(base?.sizeBytes, 64 * 1024);
    checkMemoryBase(base!);

    fs.utimesSync(templateMemory, new Date(), new Date(Date.now() + 5_000));
    assert.throws(
      () => checkMemoryBase(base!),
      (error: unknown) =>
        error instanceof AgentvmError &&
        error.code === 'SNAPSHOT_CORRUPT' &&
        /changed after this snapshot/.test(error.message),
    );
    fs.rmSync(templateMemory);
    assert.throws(() => checkMemoryBase(base!), /is gone/);
  });

  it('refuses a file put at the path after the process mapped the old one', async () => {
    mapper = await mapPrivately(templateMemory);
    const replacement = `${templateMemory}.new`;
    fs.writeFileSync(replacement, Buffer.alloc(64 * 1024, 8));
    fs.renameSync(replacement, templateMemory);

    assert.equal(mappedMemoryBase(mapper.pid!, templateMemory, vmDir), undefined);
  });

  it("refuses a file in the VM's own directory and a file the process does not map", async () => {
    const own = path.join(vmDir, 'snapshot.memory');
    fs.copyFileSync(templateMemory, own);
    mapper = await mapPrivately(own);

    assert.equal(mappedMemoryBase(mapper.pid!, own, vmDir), undefined);
    assert.equal(mappedMemoryBase(mapper.pid!, templateMemory, vmDir), undefined);
    assert.equal(mappedMemoryBase(mapper.pid!, undefined, vmDir), undefined);
  });
});
