import assert from 'node:assert/strict';
import { errorBodySchema } from '../../../protocol/errors';
import { buildProgram, usageError } from '../../../server/cli/program';
import { startImagelessBroker, type ImagelessBroker } from '../../helpers/imagelessBroker';
import { runCli } from './runCli';

describe('agentvm usage errors (unit)', () => {
  it("folds commander's (Did you mean --profile?) line into the hint (regression: a third line between error and hint)", () => {
    const text = usageError("error: unknown option '--profil'\n(Did you mean --profile?)\n");

    assert.equal(
      text,
      "error [BAD_USAGE]: unknown option '--profil'\n  hint: Did you mean --profile? Run the command with --help to see its arguments and options.\n",
    );
  });

  it('folds the suggestion of an unknown command too, and leaves an error without one as it was', () => {
    assert.match(
      usageError("error: unknown command 'lss'\n(Did you mean ls?)\n"),
      /^error \[BAD_USAGE\]: unknown command 'lss'\n {2}hint: Did you mean ls\? Run /,
    );
    assert.equal(
      usageError("error: missing required argument 'id'\n"),
      "error [BAD_USAGE]: missing required argument 'id'\n  hint: Run the command with --help to see its arguments and options.\n",
    );
  });
});

describe('agentvm commands against a broker, bad input (unit)', function () {
  this.timeout(30_000);
  let harness: ImagelessBroker;
  let env: Record<string, string | undefined>;

  before(async () => {
    harness = await startImagelessBroker();
    env = { AGENTVM_URL: harness.url, AGENTVM_TOKEN: harness.token };
  });

  after(async () => {
    await harness?.stop();
  });

  it('prints the unknown-option suggestion inside the hint: two lines, exit 2', async () => {
    const run = await runCli(['delegate', '--profil', 'x', 'task'], env);

    assert.equal(run.exitCode, 2);
    assert.equal(
      run.stderr,
      "error [BAD_USAGE]: unknown option '--profil'\n  hint: Did you mean --profile? Run the command with --help to see its arguments and options.\n",
    );
  });

  it('answers `resume ID "yes please"` with a hint to pass the answer with --message (regression: "too many arguments" and a --help hint)', async () => {
    const run = await runCli(['resume', 'abc123', 'yes please'], env);

    assert.equal(run.exitCode, 2, run.stderr);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^error \[BAD_USAGE\]: too many arguments for 'resume'/m);
    assert.match(
      run.stderr,
      /^ {2}hint: .*`agentvm resume abc123 --message 'yes please'`/m,
      run.stderr,
    );
    assert.doesNotMatch(run.stderr, /AGENT_NOT_FOUND/);
  });

  /** Every command whose first argument is an agent id, with the other arguments it requires. */
  const idCommands = buildProgram()
    .commands.filter((command) => ['id', 'ids'].includes(command.registeredArguments[0]?.name()))
    .map((command) => command.name());
  const requiredAfterId: Record<string, string[]> = { exec: ['--', 'true'], deny: ['a.test'] };

  it('knows the commands that take an agent id', () => {
    assert.deepEqual(
      [...idCommands].sort(),
      [
        'allow',
        'apply',
        'cancel',
        'deny',
        'diff',
        'exec',
        'logs',
        'pr',
        'resume',
        'review',
        'rm',
        'show',
        'wait',
      ].sort(),
    );
  });

  for (const id of ['', '  ']) {
    it(`refuses the agent id ${JSON.stringify(id)} in every command that takes one with BAD_USAGE, exit 2 (regression: \`review ''\` gave NOT_FOUND: no such API path, exit 5)`, async () => {
      for (const command of idCommands) {
        const run = await runCli([command, id, ...(requiredAfterId[command] ?? [])], env);

        assert.equal(run.exitCode, 2, `${command}: ${run.stderr}`);
        assert.match(run.stderr, /^error \[BAD_USAGE\]: the agent id .*(empty|blank)/m, command);
        assert.match(run.stderr, new RegExp(`^ {2}hint: .*\`agentvm ${command} ID\``, 'm'));
      }
    });
  }

  it("refuses `audit --agent ''` instead of printing every agent's rows", async () => {
    const run = await runCli(['audit', '--agent', ''], env);

    assert.equal(run.exitCode, 2, run.stderr);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^error \[BAD_USAGE\]: the agent id is empty/m);
  });

  it('refuses `rm` when one of several ids is blank, before looking any up', async () => {
    const run = await runCli(['rm', 'nosuchagent', ' '], env);

    assert.equal(run.exitCode, 2, run.stderr);
    assert.doesNotMatch(run.stderr, /AGENT_NOT_FOUND/);
  });

  it('refuses `logs --console` with --follow or --json rather than ignoring them', async () => {
    for (const extra of ['--follow', '--json']) {
      const run = await runCli(['logs', 'abc123', '--console', extra], env);

      assert.equal(run.exitCode, 2, run.stderr);
      assert.match(run.stderr, /^error \[BAD_USAGE\]: option '--console' cannot be used with/m);
    }
  });

  it('prints an error with --json as one line of JSON on stderr, nothing on stdout, and keeps the exit code (regression: indented JSON on stdout)', async () => {
    const unauthorized = await runCli(['ls', '--json'], { ...env, AGENTVM_TOKEN: 'avm_wrong' });
    const unknown = await runCli(['wait', 'nosuchagent', '--json'], env);

    assert.equal(unauthorized.exitCode, 6);
    assert.equal(unknown.exitCode, 5);
    for (const run of [unauthorized, unknown]) {
      assert.equal(run.stdout, '');
      assert.match(run.stderr, /^\{.*\}\n$/, 'one line');
      const body = errorBodySchema.parse(JSON.parse(run.stderr));
      assert.ok(body.error.hint.length > 0);
    }
    assert.equal(errorBodySchema.parse(JSON.parse(unknown.stderr)).error.code, 'AGENT_NOT_FOUND');
  });

  it('escapes invisible format characters in a JSON error, which parses back to the same text', async () => {
    const id = 'x\u202ey\u{e0041}';

    const run = await runCli(['wait', id, '--json'], env);

    assert.equal(run.exitCode, 5, run.stderr);
    assert.match(run.stderr, /x\\u202ey\\udb40\\udc41/);
    assert.match(errorBodySchema.parse(JSON.parse(run.stderr)).error.message, new RegExp(id, 'u'));
  });

  it("prints a text error for `exec ID -- cmd --json`: the --json there is the command's, not the CLI's", async () => {
    const run = await runCli(['exec', 'nosuchagent', '--', 'cat', '--json'], env);

    assert.equal(run.exitCode, 5, run.stderr);
    assert.match(run.stderr, /^error \[AGENT_NOT_FOUND\]: /m);
  });
});
