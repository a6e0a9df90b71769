import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { AgentUser } from './guestConfig';

/**
 * The launcher reads `cwd HEX`, `env HEXNAME HEXVALUE` and finally `run HEXCOMMAND` lines (hex, so
 * any byte survives), then replaces itself with `sh -c COMMAND`: same process, same pipes, same
 * process group. At end of input without `run` (the guest agent went away) it just exits.
 */
const LAUNCHER_SCRIPT = `
my ($cwd, %env) = ('/');
while (my $line = <STDIN>) {
  chomp $line;
  my ($kind, $first, $second) = split(/ /, $line, 3);
  my $text = pack('H*', $first // '');
  if ($kind eq 'cwd') { $cwd = $text; }
  elsif ($kind eq 'env') { $env{$text} = pack('H*', $second // ''); }
  elsif ($kind eq 'run') {
    %ENV = %env;
    chdir($cwd) or die "agentvm: cannot enter $cwd: $!\\n";
    open(STDIN, '<', '/dev/null') or die "agentvm: cannot open /dev/null: $!\\n";
    exec { 'sh' } 'sh', '-c', $text;
    die "agentvm: cannot run sh: $!\\n";
  }
}
`;

const hex = (text: string) => Buffer.from(text, 'utf8').toString('hex');

/**
 * A process started with the agent command's user, process group and output pipes before the
 * first `ready`, so it is already in every template, waiting to become the agent command.
 *
 * Why: spawning from node forks the whole node process, which under emulation right after a
 * restore took about 250 ms; the waiting process (perl, which every Debian root has) only has to
 * exec. One task per VM, so one launcher; it is used once.
 */
export class CommandLauncher {
  private taken = false;

  private constructor(private readonly child: ChildProcess) {
    // Nothing should wait on a process that may never be used.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr])
      (stream as Socket | null)?.unref();
    // A launcher that failed to start is simply not used; its error must not go unhandled.
    child.on('error', () => undefined);
  }

  /** Start a launcher for `user` (null: the guest agent's own user, as in host tests). */
  static start(user: AgentUser | null): CommandLauncher {
    const child = spawn('perl', ['-e', LAUNCHER_SCRIPT], {
      cwd: '/',
      env: { PATH: process.env.PATH || '/usr/bin:/bin' },
      uid: user?.uid,
      gid: user?.gid,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new CommandLauncher(child);
  }

  /**
   * Run `command` with `sh -c` in `cwd` with exactly `env`: the launcher becomes it. Null when
   * the launcher is used up or gone; the caller spawns the command itself then.
   */
  launch(command: string, cwd: string, env: Record<string, string>): ChildProcess | null {
    const child = this.child;
    const alive = child.pid !== undefined && child.exitCode === null && child.signalCode === null;
    if (this.taken || !alive || !child.stdin) return null;

    this.taken = true;
    (child.stdout as Socket | null)?.ref();
    (child.stderr as Socket | null)?.ref();
    child.ref();
    const lines = [`cwd ${hex(cwd)}`];
    for (const [name, value] of Object.entries(env)) lines.push(`env ${hex(name)} ${hex(value)}`);
    lines.push(`run ${hex(command)}`);
    child.stdin.end(lines.join('\n') + '\n');
    return child;
  }
}
