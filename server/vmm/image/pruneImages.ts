import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { terminalStates, type AgentState } from '../../../protocol/api';
import { agentsDir, imagesDir, storePath } from '../../config/paths';
import { qcow2BackingFile } from '../templates/qcow2Backing';
import { readTemplateManifest } from '../templates/templateManifest';
import { withBuildLock } from './buildLock';

/** An image directory `pruneImages` looked at, and what it decided. */
export interface ImageVerdict {
  key: string;
  bytes: number;
  /** Why it stays; absent for an image that was (or, dry, would be) removed. */
  keptBecause?: string;
}

export interface PruneOutcome {
  images: ImageVerdict[];
  /** Template directories removed with their image (a template is only valid for its image). */
  templates: string[];
}

const IMAGE_KEY = /^[0-9a-f]{64}$/;

/**
 * Removes guest images other than `currentKey` that nothing can still need: every build leaves
 * its image (≈430 MiB) behind, because an agent paused for review keeps a disk overlay on top of
 * the root filesystem it started from. An image stays while an agent that has not ended has an
 * overlay chained to it (directly, or through its template's disk); ended agents never start
 * again, so theirs do not count. Templates built on a removed image go with it: a template is
 * valid only for its own image. Holds the image build lock, so a build is never pruned mid-way.
 */
export async function pruneImages(
  root: string,
  currentKey: string,
  options: { dryRun?: boolean } = {},
): Promise<PruneOutcome> {
  if (!fs.existsSync(imagesDir(root))) return { images: [], templates: [] };
  // Overlays record their backing files by whatever path the broker was given: compare real paths.
  const imagesRoot = fs.realpathSync(imagesDir(root));

  return withBuildLock(imagesRoot, async () => {
    const users = imageUsers(root, imagesRoot);
    const images: ImageVerdict[] = [];
    const removedKeys = new Set<string>();
    for (const key of fs
      .readdirSync(imagesRoot)
      .filter((name) => IMAGE_KEY.test(name))
      .sort()) {
      const dir = path.join(imagesRoot, key);
      const bytes = directoryBytes(dir);
      const keptBecause =
        key === currentKey
          ? 'the current image'
          : users.has(key)
            ? `used by ${[...(users.get(key) ?? [])].sort().join(', ')}`
            : undefined;
      images.push({ key, bytes, ...(keptBecause && { keptBecause }) });
      if (keptBecause) continue;

      removedKeys.add(key);
      if (!options.dryRun) fs.rmSync(dir, { recursive: true, force: true });
    }

    const templates: string[] = [];
    for (const [dir, key] of templateImages(root)) {
      if (!removedKeys.has(key)) continue;

      templates.push(dir);
      if (!options.dryRun) fs.rmSync(dir, { recursive: true, force: true });
    }
    return { images, templates };
  });
}

/** Image key → who still needs it ("agent ID", "template KEY12"), from qcow2 backing chains. */
function imageUsers(root: string, imagesRoot: string): Map<string, Set<string>> {
  const users = new Map<string, Set<string>>();
  const use = (key: string | undefined, user: string) => {
    if (key) users.set(key, (users.get(key) ?? new Set()).add(user));
  };

  const ended = endedAgents(root);
  const agents = agentsDir(root);
  for (const id of safeReaddir(agents)) {
    if (ended.has(id)) continue;

    for (const file of qcow2Files(path.join(agents, id))) {
      use(imageKeyOfChain(file, imagesRoot), `agent ${id}`);
    }
  }
  return users;
}

/** The image key at the end of `file`'s backing chain, when that is an image's root filesystem. */
function imageKeyOfChain(file: string, imagesRoot: string): string | undefined {
  let current = file;
  for (let depth = 0; depth < 8; depth++) {
    const backing = qcow2BackingFile(current);
    if (backing === undefined) return undefined;

    const resolved = realPath(path.resolve(path.dirname(current), backing));
    const relative = path.relative(imagesRoot, resolved);
    const key = relative.split(path.sep)[0];
    if (!relative.startsWith('..') && IMAGE_KEY.test(key)) return key;

    current = resolved;
  }
  return undefined;
}

/** Template directory → the image key its manifest names. */
function templateImages(root: string): Map<string, string> {
  const templatesRoot = path.join(root, 'templates');
  const result = new Map<string, string>();
  for (const name of safeReaddir(templatesRoot)) {
    const dir = path.join(templatesRoot, name);
    const manifest = readTemplateManifest(dir);
    if (manifest && !(manifest instanceof Error)) result.set(dir, manifest.inputs.imageKey);
  }
  return result;
}

/**
 * Agents of the store that have not ended and whose disk is chained to image `key` (directly, or
 * through their template's disk): a rebuild of that image under the same key would change the
 * disk under each of them.
 */
export function unfinishedAgentsOnImage(root: string, key: string): string[] {
  if (!fs.existsSync(imagesDir(root))) return [];

  const imagesRoot = fs.realpathSync(imagesDir(root));
  const agents = agentsDir(root);
  return [...agentStates(root)]
    .filter(([, state]) => !terminalStates.includes(state))
    .map(([id]) => id)
    .filter((id) =>
      qcow2Files(path.join(agents, id)).some((file) => imageKeyOfChain(file, imagesRoot) === key),
    )
    .sort();
}

/**
 * Removes the templates built on image `key` (their disks are overlays on its root filesystem, so
 * a new build of the image under the same key leaves them pointing at other bytes); returns their
 * directories.
 */
export function removeTemplatesOfImage(root: string, key: string): string[] {
  const removed: string[] = [];
  for (const [dir, imageKey] of templateImages(root)) {
    if (imageKey !== key) continue;

    fs.rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/**
 * Ids of agents that have ended, read from the broker's store (read-only, so a running broker is
 * not disturbed). Without a store, no agent counts as ended: everything they hold is kept.
 */
function endedAgents(root: string): Set<string> {
  const ended = [...agentStates(root)].filter(([, state]) => terminalStates.includes(state));
  return new Set(ended.map(([id]) => id));
}

/** Every stored agent's state, read-only; empty without a store. */
function agentStates(root: string): Map<string, AgentState> {
  const file = storePath(root);
  if (!fs.existsSync(file)) return new Map();

  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT id, state FROM agents').all() as {
      id: string;
      state: AgentState;
    }[];
    return new Map(rows.map((row) => [row.id, row.state]));
  } finally {
    db.close();
  }
}

/** `file` with every symlink on its way resolved; as given when it does not exist (any more). */
function realPath(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return file;
  }
}

function qcow2Files(dir: string): string[] {
  return safeReaddir(dir)
    .filter((name) => name.endsWith('.qcow2'))
    .map((name) => path.join(dir, name));
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Bytes the files under `dir` take on disk (sparse files count what they hold). */
function directoryBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    total += fs.statSync(path.join(entry.parentPath ?? entry.path, entry.name)).blocks * 512;
  }
  return total;
}
