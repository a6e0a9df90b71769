import { createHash } from 'node:crypto';

export type GitObject = { type: 'blob' | 'tree' | 'commit'; content: Buffer };
type FlatEntry = { mode: string; type: 'blob' | 'commit'; sha: string };

/**
 * The object store behind the fake GitHub: blobs, trees and commits hashed and laid out exactly
 * as git does, so ids can be compared with a local repository's.
 */
export class FakeGitObjects {
  readonly objects = new Map<string, GitObject>();

  /** Parses a stored commit object. */
  commit(sha: string): { tree: string; parents: string[]; raw: string } {
    const raw = this.objects.get(sha)!.content.toString('utf8');
    return {
      tree: /^tree (\w+)/m.exec(raw)![1],
      parents: [...raw.split('\n\n')[0].matchAll(/^parent (\w+)/gm)].map((match) => match[1]),
      raw,
    };
  }

  store(type: GitObject['type'], content: Buffer): string {
    const sha = createHash('sha1')
      .update(`${type} ${content.length}\0`)
      .update(content)
      .digest('hex');
    this.objects.set(sha, { type, content });
    return sha;
  }

  createTree(
    baseTree: string | null,
    entries: Array<{ path: string; mode: string; type: string; sha: string | null }>,
  ): string {
    const flat = new Map<string, FlatEntry>();
    if (baseTree) {
      if (this.objects.get(baseTree)?.type !== 'tree')
        throw new Error('base_tree is not a valid tree');
      this.flatten(baseTree, '', flat);
    }

    for (const entry of entries.filter((item) => item.sha === null)) {
      for (const key of [...flat.keys()]) {
        if (key === entry.path || key.startsWith(`${entry.path}/`)) flat.delete(key);
      }
    }

    for (const entry of entries.filter((item) => item.sha !== null)) {
      if (entry.type === 'blob' && this.objects.get(entry.sha!)?.type !== 'blob') {
        throw new Error(`tree.sha ${entry.sha} is not a valid blob`);
      }

      flat.set(entry.path, {
        mode: entry.mode,
        type: entry.type as FlatEntry['type'],
        sha: entry.sha!,
      });
    }

    return this.writeTree(flat);
  }

  flatten(treeSha: string, prefix: string, into: Map<string, FlatEntry>): void {
    const content = this.objects.get(treeSha)!.content;
    let offset = 0;
    while (offset < content.length) {
      const space = content.indexOf(0x20, offset);
      const nul = content.indexOf(0, space);
      const mode = content.subarray(offset, space).toString('utf8');
      const name = content.subarray(space + 1, nul).toString('utf8');
      const sha = content.subarray(nul + 1, nul + 21).toString('hex');
      offset = nul + 21;
      if (mode === '40000') this.flatten(sha, `${prefix}${name}/`, into);
      else into.set(`${prefix}${name}`, { mode, type: mode === '160000' ? 'commit' : 'blob', sha });
    }
  }

  writeTree(flat: Map<string, FlatEntry>): string {
    const files: Array<[string, FlatEntry]> = [];
    const dirs = new Map<string, Map<string, FlatEntry>>();
    for (const [path, entry] of flat) {
      const slash = path.indexOf('/');
      if (slash < 0) {
        files.push([path, entry]);
        continue;
      }

      const dir = path.slice(0, slash);
      if (!dirs.has(dir)) dirs.set(dir, new Map());
      dirs.get(dir)!.set(path.slice(slash + 1), entry);
    }

    const rows: Array<{ sortKey: string; mode: string; name: string; sha: string }> = files.map(
      ([name, entry]) => ({ sortKey: name, mode: entry.mode, name, sha: entry.sha }),
    );
    for (const [name, children] of dirs)
      rows.push({ sortKey: `${name}/`, mode: '40000', name, sha: this.writeTree(children) });
    rows.sort((a, b) => Buffer.compare(Buffer.from(a.sortKey), Buffer.from(b.sortKey)));

    const content = Buffer.concat(
      rows.map((row) =>
        Buffer.concat([Buffer.from(`${row.mode} ${row.name}\0`), Buffer.from(row.sha, 'hex')]),
      ),
    );
    return this.store('tree', content);
  }

  isAncestor(ancestor: string, descendant: string): boolean {
    const queue = [descendant];
    const seen = new Set<string>();
    while (queue.length > 0 && seen.size < 10_000) {
      const sha = queue.shift()!;
      if (sha === ancestor) return true;
      if (seen.has(sha) || this.objects.get(sha)?.type !== 'commit') continue;

      seen.add(sha);
      queue.push(...this.commit(sha).parents);
    }

    return false;
  }
}

/** `Name <email> unix-seconds +hhmm` from the API's ISO 8601 date with offset. */
export function identity(person: { name: string; email: string; date: string }): string {
  const match = /([+-])(\d\d):(\d\d)$/.exec(person.date);
  const offset = match ? `${match[1]}${match[2]}${match[3]}` : '+0000';
  const seconds = Math.floor(new Date(person.date).getTime() / 1000);
  return `${person.name} <${person.email}> ${seconds} ${offset}`;
}
