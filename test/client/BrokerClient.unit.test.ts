import assert from 'node:assert/strict';
import net from 'node:net';
import { BrokerClient } from '../../client/BrokerClient';
import { AgentvmError } from '../../protocol/errors';

/**
 * A loopback server that accepts each connection, reads the request and then does `onRequest`
 * with the socket: what a broker that dies while it handles a request looks like from the client.
 */
async function brokenServer(onRequest: (socket: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => onRequest(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function clientOf(server: net.Server): BrokerClient {
  const { port } = server.address() as net.AddressInfo;
  return new BrokerClient({ url: `http://127.0.0.1:${port}`, token: 'avm_unused' });
}

async function failure(promise: Promise<unknown>): Promise<AgentvmError> {
  const error = await promise.then(
    () => assert.fail('expected the request to fail'),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof AgentvmError, String(error));
  return error;
}

describe('BrokerClient when the connection breaks (unit)', () => {
  const servers: net.Server[] = [];

  afterEach(async () => {
    for (const server of servers.splice(0)) {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  async function serve(onRequest: (socket: net.Socket) => void): Promise<BrokerClient> {
    const server = await brokenServer(onRequest);
    servers.push(server);
    return clientOf(server);
  }

  it('reports a broker that resets the connection mid-request as BROKER_CONNECTION_LOST, not unreachable (regression: "Nothing answered")', async () => {
    const client = await serve((socket) => socket.resetAndDestroy());

    const error = await failure(client.cancel('a1'));

    assert.equal(error.code, 'BROKER_CONNECTION_LOST');
    assert.match(
      error.message,
      /^the broker at http:\/\/127\.0\.0\.1:\d+ closed the connection before answering POST \/v1\/agents\/a1\/cancel \(ECONNRESET\), so it may or may not have acted on it$/,
    );
    assert.match(error.hint, /whether a change took effect/);
  });

  it('reports a broker that closes the connection without answering the same way', async () => {
    const client = await serve((socket) => socket.destroy());

    const error = await failure(client.listAgents());

    assert.equal(error.code, 'BROKER_CONNECTION_LOST');
    assert.match(error.message, /closed the connection before answering GET \/v1\/agents$/);
  });

  it('reports a broker that takes the request and never answers as BROKER_TIMEOUT, saying the change may have happened (regression: "Nothing answered")', async () => {
    const silent = await brokenServer(() => undefined);
    servers.push(silent);
    const { port } = silent.address() as net.AddressInfo;
    const client = new BrokerClient({
      url: `http://127.0.0.1:${port}`,
      token: 'avm_unused',
      requestTimeoutMs: 200,
      unreachableHint: 'Nothing answered at the test URL',
    });

    const error = await failure(client.cancel('someagent'));
    assert.equal(error.code, 'BROKER_TIMEOUT');
    assert.match(
      error.message,
      /did not answer POST \/v1\/agents\/someagent\/cancel within 0\.2 s/,
    );
    assert.match(error.message, /may or may not have acted on it/);
    assert.doesNotMatch(error.hint, /Nothing answered/);
    assert.match(error.hint, /agentvm ls/);
  });

  it('reports an answer that breaks off after its head as BROKER_CONNECTION_LOST (regression: an INTERNAL error with a stack)', async () => {
    const client = await serve((socket) => {
      socket.write(
        'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n[{"id":',
      );
      setTimeout(() => socket.destroy(), 20);
    });

    const error = await failure(client.listAgents());

    assert.equal(error.code, 'BROKER_CONNECTION_LOST');
    assert.match(
      error.message,
      /closed the connection before it finished answering GET \/v1\/agents$/,
    );
  });

  it('still reports a port nothing listens on as BROKER_UNREACHABLE', async () => {
    const server = await brokenServer(() => undefined);
    const client = clientOf(server);
    await new Promise((resolve) => server.close(resolve));

    const error = await failure(client.listAgents());

    assert.equal(error.code, 'BROKER_UNREACHABLE');
    assert.match(error.message, /refused the connection/);
  });
});
