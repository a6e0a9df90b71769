import net from 'node:net';

/** A unix socket server that speaks enough QMP: greeting, then answers from `answer`. */
export async function fakeQemu(
  socketPath: string,
  answer: (command: { execute: string; id: string }, socket: net.Socket) => void,
): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.write(JSON.stringify({ QMP: { version: {}, capabilities: [] } }) + '\n');
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString();
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        answer(JSON.parse(buffered.slice(0, newline)), socket);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return server;
}
