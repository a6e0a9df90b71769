import type { Logger } from '../../log';

/** Where the chain's head comes from (an {@link AuditLog}). */
export interface AuditHeadSource {
  head(): { id: number; hash: string | null };
}

export interface AuditHeadRecorderOptions {
  /** How often the head is logged while it moves, in milliseconds; 5 minutes by default. */
  intervalMs?: number;
  /** Where the process-exit hook is registered; `process` by default (tests pass an emitter). */
  exitSignal?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

/**
 * Logs the audit chain's head (`audit.head`: newest row id and hash) periodically while it moves,
 * when stopped, and on process exit however the process ends (`process.exit`, an uncaught error,
 * a signal handler): deleting the newest rows is invisible to the chain itself, and an operator
 * compares the logged head with `agentvm audit`. Only SIGKILL or a crash of node itself escapes.
 */
export class AuditHeadRecorder {
  private timer: NodeJS.Timeout | null = null;
  private lastLoggedId = -1;
  private readonly onExit = () => this.record('exit');

  constructor(
    private readonly source: AuditHeadSource,
    private readonly logger: Logger,
    private readonly options: AuditHeadRecorderOptions = {},
  ) {}

  start(): void {
    if (this.timer) return;

    this.record('start');
    this.timer = setInterval(
      () => this.record('periodic', true),
      this.options.intervalMs ?? 300_000,
    );
    this.timer.unref();
    (this.options.exitSignal ?? process).on('exit', this.onExit);
  }

  /** Logs the head a last time and unhooks; safe to call twice. */
  stop(): void {
    if (!this.timer) return;

    clearInterval(this.timer);
    this.timer = null;
    (this.options.exitSignal ?? process).off('exit', this.onExit);
    this.record('stop');
  }

  /** Logs the head now; `onlyIfMoved` skips it when no row was added since the last line. */
  record(reason: string, onlyIfMoved = false): void {
    try {
      const head = this.source.head();
      if (onlyIfMoved && head.id === this.lastLoggedId) return;

      this.lastLoggedId = head.id;
      this.logger.info('audit.head', { id: head.id, hash: head.hash, reason });
    } catch (error) {
      // On exit the store may already be closed; nothing else can be done then.
      this.logger.warn('audit.head_unavailable', { reason, error });
    }
  }
}
