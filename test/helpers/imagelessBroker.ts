import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../protocol/errors';
import { Broker } from '../../server/Broker';
import { silentLogger } from '../../server/log';
import { ProfileRegistry } from '../../server/profiles/ProfileRegistry';
import type { VmmDriver } from '../../server/vmm/VmmDriver';

/** A driver for tests that must never reach a VM. */
export const unusedDriver: VmmDriver = {
  name: 'unused',
  boot: () => Promise.reject(new Error('boot is not expected in this test')),
  restore: () => Promise.reject(new Error('restore is not expected in this test')),
  attach: () => Promise.reject(new Error('attach is not expected in this test')),
};

export interface ImagelessBroker {
  broker: Broker;
  url: string;
  token: string;
  dataDir: string;
  /** Stops the broker and removes its directories. */
  stop(): Promise<void>;
}

/**
 * A real broker (store, HTTP API, event stream) on a free loopback port whose guest image is
 * missing, so agents fail before booting: enough for API, CLI and bad-input tests. It knows one
 * profile, `plain`.
 */
export async function startImagelessBroker(): Promise<ImagelessBroker> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-broker-'));
  const profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-profiles-'));
  fs.writeFileSync(
    path.join(profilesDir, 'plain.json'),
    JSON.stringify({ name: 'plain', command: 'true' }),
  );
  const broker = new Broker({
    dataDir,
    port: 0,
    logger: silentLogger,
    driver: unusedDriver,
    loadImage: () => {
      throw new AgentvmError('IMAGE_MISSING', 'no guest image in this test');
    },
    profiles: new ProfileRegistry([profilesDir]),
    version: 'test',
  });
  const { url, token } = await broker.start();
  return {
    broker,
    url,
    token,
    dataDir,
    stop: async () => {
      await broker.stop();
      for (const dir of [dataDir, profilesDir]) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
