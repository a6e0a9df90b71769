/** Callbacks a {@link ControlTransport} drives. */
export interface TransportHandlers {
  /** One complete line from the host, without its newline. */
  onLine(line: string): void;
  /** The channel was opened (virtio port) or (re)connected (unix socket). */
  onConnect(): void;
}

/**
 * The byte pipe to the broker: the virtio-serial control port in a VM, a unix socket in host
 * tests. Lines are sent in order; while the host is away they wait in a queue.
 */
export interface ControlTransport {
  start(handlers: TransportHandlers): void;
  /** Queues one line; the transport appends the newline. */
  send(line: string): void;
  /** Drops lines still queued (not yet handed to the kernel) for which `predicate` is true. */
  dropQueued(predicate: (line: string) => boolean): void;
  close(): Promise<void>;
}
