// Helpers shared by the VS Code harness: processes in their own process group, ports, waiting.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a command with setsid in its own process group, output appended to `logFile`. The caller
 * ends it with `stopGroup`, which reaches every descendant (extension hosts, VMs of the broker).
 */
export function startGroup(command, args, { env, cwd, logFile }) {
  const out = fs.openSync(logFile, 'a');
  const child = spawn('setsid', [command, ...args], {
    env,
    cwd,
    stdio: ['ignore', out, out],
    detached: false,
  });
  fs.closeSync(out);
  return child;
}

/** SIGTERM to the process group, then SIGKILL after `graceMs` if anything is left. */
export async function stopGroup(child, graceMs = 5000) {
  if (!child?.pid) return;

  const signal = (name) => {
    try {
      process.kill(-child.pid, name);
      return true;
    } catch {
      return false;
    }
  };
  if (!signal('SIGTERM')) return;

  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!signal(0)) return;
    await sleep(100);
  }
  signal('SIGKILL');
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` every 200 ms until it returns a value, at most `timeoutMs`. */
export async function waitFor(what, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Resolves with the HTTP status of GET url, or undefined when nothing answers. */
export async function httpStatus(url) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return response.status;
  } catch {
    return undefined;
  }
}

export function git(cwd, args) {
  return execFileSync('git', args, { cwd }).toString().trim();
}
