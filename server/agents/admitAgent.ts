import fs from 'node:fs';
import path from 'node:path';
import type { CreateAgentRequest } from '../../protocol/api';
import { AgentvmError } from '../../protocol/errors';
import { agentDir } from '../config/paths';
import { isDiskFullError, storeFullError, type AgentRecord } from '../store/Store';
import type { AgentContext } from './AgentContext';
import { newAgentId, newAgentRecord } from './newAgentRecord';
import { saveProfileFiles } from './profileFileCopies';
import type { SpareVms } from './SpareVms';

/**
 * Accepts a delegation: checks what the caller must fix now, writes the agent's files (its
 * repository bundle, its profile's files) and stores it `queued`, for the boot queue to start.
 * Nothing of an agent that is refused stays behind. The agent gets the id of a spare VM start
 * waiting for its profile's shape, when `spares` has one (see SpareVms).
 */
export function admitAgent(
  context: AgentContext,
  owner: string,
  request: CreateAgentRequest & { profile: string },
  issueRef?: string,
  spares?: Pick<SpareVms, 'claim' | 'release'>,
): AgentRecord {
  const { options, store, journal } = context;
  const profile = options.profiles.get(request.profile);
  // A missing or corrupt guest image is the caller's problem to fix now (412), not a failure
  // found later by an agent that was accepted; so is a store that cannot record the agent.
  const image = options.loadImage();
  store.requireWritable();
  options.policy?.admit(profile, request.secrets);
  const bundle = Buffer.from(request.repo.bundle, 'base64');
  if (!/^# v[23] git bundle\n/.test(bundle.subarray(0, 20).toString('latin1'))) {
    throw new AgentvmError('VALIDATION_FAILED', 'repo.bundle is not a base64-encoded git bundle');
  }

  const id = spares?.claim({ ...profile, image }) ?? newAgentId();
  const dir = agentDir(id, options.dataDir);
  const record = newAgentRecord(id, owner, request, profile, issueRef);
  // Read now: the agent gets its profile's files as they are at delegation (see saveProfileFiles).
  const profileFiles = options.profiles.taskFiles(record.profileSpec);
  const bundlePath = path.join(dir, 'repo.bundle');
  try {
    // Audited first: an agent the audit log cannot record is not created.
    options.policy?.created(record, request.secrets);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(bundlePath, bundle);
    saveProfileFiles(dir, profileFiles);
    store.insertAgent(record);
  } catch (error) {
    // Nothing of an agent that was not accepted stays on a disk that is likely full.
    void spares?.release(id);
    fs.rmSync(dir, { recursive: true, force: true });
    void options.policy?.release(id).catch(() => undefined);
    if (isDiskFullError(error)) throw storeFullError(bundlePath, error, options.dataDir);

    throw error;
  }
  journal.append(id, {
    kind: 'state',
    message: 'queued',
    data: { from: null, to: 'queued' },
  });
  journal.publish(id);
  return record;
}
