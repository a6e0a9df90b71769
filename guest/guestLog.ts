/** Diagnostic sink of the guest agent; reaches the broker as `log` messages. */
export type GuestLog = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;

/** Writes a log line to stderr (the serial console in a VM), for use before the channel is up. */
export function stderrLog(level: string, message: string): void {
  process.stderr.write(`agentvm-guest ${level}: ${message}\n`);
}
