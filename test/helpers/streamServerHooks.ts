import type { ServerStreamMessage } from '../../protocol/api';
import type { ImagelessBroker } from './imagelessBroker';

/** The broker's event stream server, private to it: tests reach in to slow its subscriptions down. */
interface StreamServerInternals {
  onClientMessage(subscriber: unknown, text: string): void;
  send(subscriber: unknown, message: ServerStreamMessage): void;
}

function streamServerOf(harness: ImagelessBroker): StreamServerInternals {
  return (harness.broker as unknown as { stream: StreamServerInternals }).stream;
}

/**
 * Makes the broker take up subscribe frames only on `release()`, as a broker that reads the
 * stream's frame after an HTTP request the client sent after it.
 */
export function holdSubscriptions(harness: ImagelessBroker): { release(): void } {
  const server = streamServerOf(harness);
  const handle = server.onClientMessage.bind(server);
  const held: Array<() => void> = [];
  let holding = true;
  server.onClientMessage = (subscriber, text) => {
    if (holding) held.push(() => handle(subscriber, text));
    else handle(subscriber, text);
  };
  return {
    release: () => {
      holding = false;
      for (const run of held.splice(0)) run();
    },
  };
}

/** Makes the broker answer subscriptions as brokers before the acknowledgement did: not at all. */
export function withoutAcknowledgements(harness: ImagelessBroker): void {
  const server = streamServerOf(harness);
  const send = server.send.bind(server);
  server.send = (subscriber, message) => {
    if (message.type !== 'subscribed') send(subscriber, message);
  };
}
