import { hostMessageSchema, type HostMessage } from '../protocol/control';

/**
 * A task message with one of every part, parsed once before the first `ready`. V8 compiles a
 * function when it first runs; under emulation, compiling the validation of the first task took
 * about 200 ms on the path to the agent command. Done here, the compiled code is already in every
 * template snapshot. Nothing is kept or sent.
 */
const sampleTask: Extract<HostMessage, { type: 'task' }> = {
  type: 'task',
  task: {
    agentId: 'warm-up',
    text: 'warm up',
    title: 'warm up',
    command: 'true',
    env: { NAME: 'value' },
    repo: {
      kind: 'tree',
      entries: [
        { type: 'dir', path: 'dir', mode: 0o755 },
        { type: 'file', path: 'dir/file', mode: 0o644, data: 'AA==' },
        { type: 'symlink', path: 'link', target: 'dir/file' },
      ],
    },
    baseCommit: '0'.repeat(40),
    branch: 'main',
    timeLimitMs: 0,
    files: [{ path: '/tmp/warm-up', mode: 0o644, data: 'AA==' }],
  },
};

export function warmUpParsers(): void {
  const messages: unknown[] = [
    sampleTask,
    { ...sampleTask, task: { ...sampleTask.task, repo: { kind: 'bundle', data: 'AA==' } } },
    { type: 'ack', seq: 1 },
    { type: 'review-answer', requestId: 'r', message: 'yes' },
    { type: 'request', id: 1, request: { op: 'fs.stat', path: '.' } },
  ];
  for (const message of messages) hostMessageSchema.parse(JSON.parse(JSON.stringify(message)));
}
