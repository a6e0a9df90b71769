#!/usr/bin/env node
import net from 'node:net';
import { AGENTCTL_MESSAGE_LIMITS, AGENTCTL_SOCKET_PATH } from '../protocol/control';
import { LineReader } from '../protocol/LineReader';
import {
  agentctlMessageTooLong,
  agentctlResponseSchema,
  type AgentctlRequest,
  type AgentctlResponse,
} from './agentctlProtocol';

const USAGE = `Usage: agentctl <command> [message...]

Talk to agentvm from inside an agent VM.

Commands:
  progress MESSAGE   Report what you are doing; shown on the agent's timeline.
  review MESSAGE     Ask a human to review. Blocks until they answer (the VM may be paused
                     and restored meanwhile), then prints the answer on stdout.
  done [MESSAGE]     Declare the work finished.

Options:
  -h, --help         Show this help.

Limits: a progress or done MESSAGE may be at most ${AGENTCTL_MESSAGE_LIMITS.progress} characters, a review
MESSAGE ${AGENTCTL_MESSAGE_LIMITS.review}; a longer one is a usage error. The broker keeps only the latest
progress messages when more than a few arrive per second.

Exit status: 0 on success, 1 when the guest agent cannot be reached, 2 on a usage error.
`;

/** Parses agentctl's arguments; returns a request, 'help', or a usage error message. */
export function parseAgentctlArgs(args: string[]): AgentctlRequest | 'help' | { usage: string } {
  const [command, ...rest] = args;
  const message = rest.join(' ');

  if (command === undefined) return { usage: 'missing command' };
  if (command === '-h' || command === '--help' || command === 'help') return 'help';

  switch (command) {
    case 'progress':
    case 'review':
      if (message.trim() === '') return { usage: `agentctl ${command} needs a MESSAGE` };
      return withinLimit({ type: command, message });
    case 'done':
      return withinLimit({ type: 'done', message });
    default:
      return { usage: `unknown command '${command}'` };
  }
}

function withinLimit(request: AgentctlRequest): AgentctlRequest | { usage: string } {
  const tooLong = agentctlMessageTooLong(request.type, request.message);
  return tooLong ? { usage: tooLong } : request;
}

/** Sends one request to the guest agent and waits for its single answer. */
export function callGuestAgent(
  socketPath: string,
  request: AgentctlRequest,
): Promise<AgentctlResponse> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const socket = net.connect(socketPath);
    const reader = new LineReader((line) => {
      if (answered) return;

      answered = true;
      try {
        resolve(agentctlResponseSchema.parse(JSON.parse(line)));
      } catch (error) {
        reject(new Error(`unreadable answer from the guest agent: ${String(error)}`));
      }
      socket.end();
    });

    socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', (error) => {
      if (!answered)
        reject(new Error(`cannot reach the guest agent at ${socketPath}: ${error.message}`));
    });
    socket.on('close', () => {
      if (!answered) reject(new Error('the guest agent closed the connection without answering'));
    });
  });
}

async function main(): Promise<number> {
  const parsed = parseAgentctlArgs(process.argv.slice(2));
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }

  if ('usage' in parsed) {
    process.stderr.write(`agentctl: ${parsed.usage}\n\n${USAGE}`);
    return 2;
  }

  const socketPath = process.env.AGENTVM_AGENTCTL_SOCKET || AGENTCTL_SOCKET_PATH;
  try {
    const response = await callGuestAgent(socketPath, parsed);
    if (response.type === 'error') {
      process.stderr.write(`agentctl: ${response.message}\n`);
      return 1;
    }

    if (response.type === 'answer') process.stdout.write(response.message + '\n');
    return 0;
  } catch (error) {
    process.stderr.write(`agentctl: ${(error as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  // Exit as soon as the output is flushed: waiting for the socket's orderly close is a round trip
  // through the guest agent, and after a restore under TCG every such step runs cold.
  void main().then((code) => {
    process.stdout.write('', () => process.exit(code));
  });
}
