import net from 'node:net';
import type { ControlTransport, TransportHandlers } from './ControlTransport';
import { LineReader } from '../protocol/LineReader';
import type { GuestLog } from './guestLog';

const RECONNECT_DELAY_MS = 100;

/**
 * The control channel over a unix socket the host listens on (`AGENTVM_CONTROL_PATH`), for
 * running the guest agent outside a VM. It reconnects whenever the socket closes, the way the
 * virtio port comes back after a broker restart; lines sent meanwhile wait in the queue.
 */
export class UnixSocketTransport implements ControlTransport {
  private socket: net.Socket | null = null;
  private connected = false;
  private handlers: TransportHandlers | null = null;
  private readonly reader: LineReader;
  private readonly queue: string[] = [];
  private closed = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly socketPath: string,
    private readonly log: GuestLog,
  ) {
    this.reader = new LineReader((line) => this.handlers?.onLine(line));
  }

  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
    this.connect();
  }

  send(line: string): void {
    this.queue.push(line + '\n');
    this.flush();
  }

  dropQueued(predicate: (line: string) => boolean): void {
    const kept = this.queue.filter((line) => !predicate(line));
    this.queue.splice(0, this.queue.length, ...kept);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.destroy();
  }

  private connect(): void {
    if (this.closed) return;

    const socket = net.connect(this.socketPath);
    this.socket = socket;
    this.reader.reset();

    socket.on('connect', () => {
      this.connected = true;
      this.handlers?.onConnect();
      this.flush();
    });
    socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    socket.on('error', (error) => {
      if (this.connected) this.log('warn', `control socket: ${error.message}`);
    });
    socket.on('close', () => {
      this.connected = false;
      this.socket = null;
      if (!this.closed) this.timer = setTimeout(() => this.connect(), RECONNECT_DELAY_MS);
    });
  }

  private flush(): void {
    if (!this.connected || !this.socket) return;

    while (this.queue.length > 0) this.socket.write(this.queue.shift() as string);
  }
}
