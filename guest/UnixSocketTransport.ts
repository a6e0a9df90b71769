import net from 'node:net';
import { QueuedLineTransport } from './QueuedLineTransport';
import type { GuestLog } from './guestLog';

const RECONNECT_DELAY_MS = 100;

/**
 * The control channel over a unix socket the host listens on (`AGENTVM_CONTROL_PATH`), for
 * running the guest agent outside a VM. It reconnects whenever the socket closes, the way the
 * virtio port comes back after a broker restart; lines sent meanwhile wait in the queue.
 */
export class UnixSocketTransport extends QueuedLineTransport {
  private socket: net.Socket | null = null;
  private connected = false;

  constructor(
    private readonly socketPath: string,
    private readonly log: GuestLog,
  ) {
    super();
  }

  override close(): Promise<void> {
    const closing = super.close();
    this.socket?.destroy();
    return closing;
  }

  protected open(): void {
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
      if (!this.closed) this.timer = setTimeout(() => this.open(), RECONNECT_DELAY_MS);
    });
  }

  protected flush(): void {
    if (!this.connected || !this.socket) return;

    while (this.queue.length > 0) this.socket.write(this.queue.shift() as string);
  }
}
