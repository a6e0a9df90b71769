import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ImageInputs } from './imageInputs';

/** uid and gid of the unprivileged user the agent runs as inside the guest. */
export const agentUid = 1000;

/** /etc/gitconfig of the guest: the fallback commit identity (any user or repository one wins). */
export const gitSystemConfig = `[safe]
\tdirectory = *
[user]
\tname = agentvm agent
\temail = agent@agentvm.invalid
[init]
\tdefaultBranch = main
`;

/**
 * Make `stagingDir` the guest's root tree: a hard-linked copy of the cached debootstrap output
 * plus the agentvm layer (user `agent`, /workspace, git config, init, guest agent, agentctl,
 * busybox). Hard links make the copy take a second instead of copying 400 MB, so every file this
 * function changes is replaced (new inode), never written in place, and only new files get
 * chown/chmod: the cache must stay as debootstrap left it.
 */
export function stageRootfs(cachedRootfs: string, stagingDir: string, inputs: ImageInputs): void {
  const { sources } = inputs;
  execFileSync('cp', ['-a', '--link', cachedRootfs, stagingDir]);

  const at = (relative: string) => path.join(stagingDir, relative);
  appendReplacing(
    at('etc/passwd'),
    `agent:x:${agentUid}:${agentUid}:agentvm agent:/home/agent:/bin/bash\n`,
  );
  appendReplacing(at('etc/group'), `agent:x:${agentUid}:\n`);
  appendReplacing(at('etc/shadow'), 'agent:!:20000:0:99999:7:::\n');
  appendReplacing(at('etc/gshadow'), 'agent:!::\n');

  for (const dir of ['home/agent', 'workspace']) {
    fs.rmSync(at(dir), { recursive: true, force: true });
    fs.mkdirSync(at(dir), { mode: 0o755 });
    fs.chownSync(at(dir), agentUid, agentUid);
  }
  for (const name of readdirOrEmpty(at('etc/skel'))) {
    writeReplacing(at(`home/agent/${name}`), fs.readFileSync(at(`etc/skel/${name}`)), 0o644);
    fs.chownSync(at(`home/agent/${name}`), agentUid, agentUid);
  }

  writeReplacing(at('etc/gitconfig'), gitSystemConfig, 0o644);
  writeReplacing(at('etc/hostname'), 'agentvm\n', 0o644);
  writeReplacing(
    at('etc/hosts'),
    '127.0.0.1\tlocalhost\n127.0.1.1\tagentvm\n::1\tlocalhost\n',
    0o644,
  );
  // debootstrap copies the build host's resolver; the guest's network is set up per VM at boot.
  writeReplacing(at('etc/resolv.conf'), '', 0o644);

  fs.mkdirSync(at('opt/agentvm'), { recursive: true });
  writeReplacing(at('opt/agentvm/guest-agent.js'), fs.readFileSync(sources.guestAgentPath), 0o644);
  writeReplacing(at('opt/agentvm/busybox'), fs.readFileSync(sources.busyboxPath), 0o755);
  writeReplacing(
    at('usr/local/bin/agentctl'),
    withNodeShebang(fs.readFileSync(sources.agentctlPath)),
    0o755,
  );
  writeReplacing(at('usr/sbin/agentvm-init'), fs.readFileSync(sources.rootfsInitPath), 0o755);
}

/** The bundle with exactly one `#!/usr/bin/node` line at the top (esbuild may keep a source's own). */
export function withNodeShebang(bundle: Buffer): Buffer {
  let text = bundle.toString('utf8');
  if (text.startsWith('#!')) text = text.slice(text.indexOf('\n') + 1);
  return Buffer.from(`#!/usr/bin/node\n${text}`);
}

/** Write through a new inode so a hard-linked original elsewhere is left untouched. */
function writeReplacing(file: string, data: string | Buffer, mode: number): void {
  const temp = `${file}.agentvm-new`;
  fs.writeFileSync(temp, data, { mode });
  fs.chmodSync(temp, mode);
  fs.renameSync(temp, file);
}

/** Add `line` to a passwd-style file, replacing any entry of the same name, keeping owner and mode. */
function appendReplacing(file: string, line: string): void {
  const original = fs.statSync(file);
  const name = line.slice(0, line.indexOf(':') + 1);
  const kept = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((existing) => existing !== '' && !existing.startsWith(name));
  writeReplacing(file, [...kept, line].join('\n'), original.mode & 0o7777);
  // Debian's shadow files belong to group shadow; the replacement must keep that group.
  fs.chownSync(file, original.uid, original.gid);
}

function readdirOrEmpty(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
