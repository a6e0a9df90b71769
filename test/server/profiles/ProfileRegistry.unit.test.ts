import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { createLogger } from '../../../server/log';
import { ProfileRegistry } from '../../../server/profiles/ProfileRegistry';

function thrown(run: () => unknown): AgentvmError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof AgentvmError, `expected an AgentvmError, got ${String(error)}`);
    return error;
  }

  return assert.fail('expected an error');
}

describe('ProfileRegistry (unit)', () => {
  let dir: string;
  const write = (name: string, content: unknown) =>
    fs.writeFileSync(
      path.join(dir, name),
      typeof content === 'string' ? content : JSON.stringify(content),
    );

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-profiles-unit-'));
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('a bad file next to a good one', () => {
    beforeEach(() => {
      write('good.json', { name: 'good', command: 'true' });
      write('broken.json', { name: 'broken', memoryMiB: 'lots' });
      write('typo.json', '{\n  "name": "typo",\n  "command": "true",\n}');
      write('nofile.json', { name: 'nofile', command: 'true', files: { '/opt/x': 'missing.sh' } });
      write('huge.json', { name: 'huge', command: 'true', memoryMiB: 100_000 });
    });

    it('loads the good profile and keeps working', () => {
      const registry = new ProfileRegistry([dir]);

      assert.deepEqual(
        registry.list().map((profile) => profile.name),
        ['good'],
      );
      assert.equal(registry.get('good').command, 'true');
    });

    it('keeps every bad file with its path and reason, not only the first', () => {
      const problems = new ProfileRegistry([dir]).problems();

      const byName = new Map(problems.map((problem) => [problem.name, problem]));
      assert.deepEqual([...byName.keys()].sort(), ['broken', 'huge', 'nofile', 'typo']);
      assert.equal(byName.get('broken')?.file, path.join(dir, 'broken.json'));
      assert.match(byName.get('broken')!.reason, /memoryMiB: .*number/);
      assert.match(byName.get('broken')!.reason, /command/);
      // Where in the file, as an editor counts: the `}` after the trailing comma.
      assert.match(byName.get('typo')!.reason, /not valid JSON: .*\(line 4, column 1\)/);
      assert.match(byName.get('nofile')!.reason, /missing\.sh/);
      assert.match(byName.get('huge')!.reason, /memoryMiB/);
    });

    it('refuses the bad profile by name with PROFILE_INVALID naming the file and the fault', () => {
      const error = thrown(() => new ProfileRegistry([dir]).get('broken'));

      assert.equal(error.code, 'PROFILE_INVALID');
      assert.equal(error.status, 422);
      assert.ok(error.message.includes(path.join(dir, 'broken.json')), error.message);
      assert.match(error.message, /memoryMiB/);
      assert.ok(error.hint.length > 0);
    });

    it('logs each problem once, and a new one when it appears', () => {
      const lines: string[] = [];
      const registry = new ProfileRegistry([dir]);
      registry.logProblemsTo(createLogger({ write: (line) => lines.push(line), pretty: false }));
      registry.list();
      registry.get('good');

      assert.equal(lines.length, 4);
      assert.ok(lines.every((line) => JSON.parse(line).event === 'profile.invalid'));

      write('later.json', '[]');
      registry.list();
      assert.equal(lines.length, 5);
      assert.match(lines[4], /later\.json/);
    });
  });

  it('picks up an added, edited, broken and fixed file without a new registry', () => {
    write('plain.json', { name: 'plain', command: 'aaaa' });
    const registry = new ProfileRegistry([dir]);
    assert.equal(registry.get('plain').command, 'aaaa');
    assert.equal(thrown(() => registry.get('later')).code, 'PROFILE_NOT_FOUND');

    // Same size: only the file's timestamps and inode tell the edit apart.
    write('plain.json', { name: 'plain', command: 'bbbb' });
    assert.equal(registry.get('plain').command, 'bbbb');

    write('later.json', { name: 'later', command: 'true', memoryMiB: 1024 });
    assert.equal(registry.get('later').memoryMiB, 1024);

    write('later.json', { name: 'later', command: 'true', memoryMiB: 'lots' });
    assert.equal(thrown(() => registry.get('later')).code, 'PROFILE_INVALID');
    assert.equal(registry.get('plain').command, 'bbbb');

    write('later.json', { name: 'later', command: 'true', memoryMiB: 768 });
    assert.equal(registry.get('later').memoryMiB, 768);
    assert.deepEqual(registry.problems(), []);

    fs.rmSync(path.join(dir, 'later.json'));
    assert.equal(thrown(() => registry.get('later')).code, 'PROFILE_NOT_FOUND');
  });

  it('makes a profile usable once the file it copies into the VM appears', () => {
    write('tool.json', { name: 'tool', command: 'true', files: { '/opt/tool.sh': 'tool.sh' } });
    const registry = new ProfileRegistry([dir]);
    assert.equal(thrown(() => registry.get('tool')).code, 'PROFILE_INVALID');

    write('tool.sh', 'echo hi\n');
    assert.equal(registry.taskFiles('tool')[0].path, '/opt/tool.sh');
  });

  it('lets a bad file in a later directory override a good profile of the same name', () => {
    const later = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-profiles-later-'));
    try {
      write('demo.json', { name: 'demo', command: 'true' });
      fs.writeFileSync(path.join(later, 'demo.json'), '{"name": "demo", "vcpus": 0');
      const registry = new ProfileRegistry([dir, later]);

      const error = thrown(() => registry.get('demo'));
      assert.equal(error.code, 'PROFILE_INVALID');
      assert.ok(error.message.includes(path.join(later, 'demo.json')), error.message);
    } finally {
      fs.rmSync(later, { recursive: true, force: true });
    }
  });

  it("reads a stored profile's own files even after its file changed", () => {
    write('one.sh', 'one\n');
    write('two.sh', 'two\n');
    write('agent.json', { name: 'agent', command: 'true', files: { '/opt/a.sh': 'one.sh' } });
    const registry = new ProfileRegistry([dir]);
    const stored = registry.get('agent');

    write('agent.json', { name: 'agent', command: 'true', files: { '/opt/a.sh': 'two.sh' } });
    write('agent.json', '{ broken');
    const files = registry.taskFiles(stored);

    assert.equal(Buffer.from(files[0].data, 'base64').toString(), 'one\n');
  });

  it('says where it looked when a profile is not found', () => {
    write('here.json', { name: 'here', command: 'true' });

    const error = thrown(() => new ProfileRegistry([dir]).get('elsewhere'));

    assert.equal(error.code, 'PROFILE_NOT_FOUND');
    assert.match(error.message, /known: here/);
    assert.ok(error.hint.includes(dir), error.hint);
    assert.match(error.hint, /AGENTVM_PROFILES_DIR/);
  });

  it('refuses a profile with a misspelled field, naming the field it most likely meant', () => {
    write('typo.json', {
      name: 'typo',
      command: 'true',
      memoryMib: 1024,
      allowedHost: ['example.com'],
      secrets: { KEY: { source: { env: 'HOME' }, hosts: ['example.com'], header: ['x-key'] } },
      colour: 'blue',
    });
    const registry = new ProfileRegistry([dir]);

    const error = thrown(() => registry.get('typo'));
    assert.equal(error.code, 'PROFILE_INVALID');
    const [problem] = registry.problems();
    assert.match(problem!.reason, /unknown field "memoryMib" \(did you mean "memoryMiB"\?\)/);
    assert.match(problem!.reason, /unknown field "allowedHost" \(did you mean "allowedHosts"\?\)/);
    assert.match(
      problem!.reason,
      /unknown field "secrets\.KEY\.header" \(did you mean "secrets\.KEY\.headers"\?\)/,
    );
    assert.match(problem!.reason, /unknown field "colour"(;|$)/);
  });

  describe('one name given by two files of one directory', () => {
    it('uses neither and lists both files, each naming the other', () => {
      write('review.json', { name: 'review', command: 'echo first' });
      write('review-copy.json', { name: 'review', command: 'echo second' });
      write('other.json', { name: 'other', command: 'true' });
      const registry = new ProfileRegistry([dir]);

      const error = thrown(() => registry.get('review'));
      assert.equal(error.code, 'PROFILE_INVALID');
      assert.match(error.message, /also given by .*same directory/);
      const problems = registry.problems().filter((problem) => problem.name === 'review');
      assert.deepEqual(problems.map((problem) => path.basename(problem.file)).sort(), [
        'review-copy.json',
        'review.json',
      ]);
      for (const problem of problems) {
        const other = problem.file.endsWith('copy.json') ? 'review.json' : 'review-copy.json';
        assert.ok(problem.reason.includes(path.join(dir, other)), problem.reason);
      }
      assert.equal(registry.get('other').command, 'true');
      assert.ok(!registry.list().some((profile) => profile.name === 'review'));
    });

    it('reports a third file once and is usable again when the copies go', () => {
      write('a.json', { name: 'twin', command: 'echo a' });
      write('b.json', { name: 'twin', command: 'echo b' });
      write('c.json', { name: 'twin', command: 'echo c' });
      const registry = new ProfileRegistry([dir]);

      assert.equal(registry.problems().length, 3);
      fs.rmSync(path.join(dir, 'b.json'));
      fs.rmSync(path.join(dir, 'c.json'));
      assert.equal(registry.get('twin').command, 'echo a');
      assert.deepEqual(registry.problems(), []);
    });

    it('still lets a later directory give the name', () => {
      const later = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-profiles-later-'));
      try {
        write('x.json', { name: 'x', command: 'echo one' });
        write('y.json', { name: 'x', command: 'echo two' });
        fs.writeFileSync(path.join(later, 'x.json'), JSON.stringify({ name: 'x', command: 'ok' }));

        assert.equal(new ProfileRegistry([dir, later]).get('x').command, 'ok');
      } finally {
        fs.rmSync(later, { recursive: true, force: true });
      }
    });
  });

  describe('host memory', () => {
    it('refuses a profile asking for more memory than the host has, saying how much it has', () => {
      write('big.json', { name: 'big', command: 'true', memoryMiB: 60_000 });
      write('fits.json', { name: 'fits', command: 'true', memoryMiB: 2048 });
      const registry = new ProfileRegistry([dir], { hostMemoryMiB: 24_000 });

      const error = thrown(() => registry.get('big'));
      assert.equal(error.code, 'PROFILE_INVALID');
      assert.match(error.message, /memoryMiB 60000 .*24000 MiB/);
      assert.match(error.hint, /at most 24000/);
      assert.equal(registry.get('fits').memoryMiB, 2048);
    });

    it("checks against this host's memory by default", () => {
      const hostMiB = Math.floor(os.totalmem() / 2 ** 20);
      write('over.json', { name: 'over', command: 'true', memoryMiB: hostMiB + 1 });

      assert.equal(thrown(() => new ProfileRegistry([dir]).get('over')).code, 'PROFILE_INVALID');
    });
  });
});
