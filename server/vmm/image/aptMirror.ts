import fs from 'node:fs';
import path from 'node:path';

/** One `deb` repository entry from the host's apt configuration. */
export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
  /** Keyring file from `Signed-By` / `[signed-by=...]`, when it names a file. */
  signedBy?: string;
}

/** Where the host's apt configuration lives; tests point these at fixtures. */
export interface AptConfigPaths {
  sourcesList: string;
  sourcesDir: string;
}

const defaultPaths: AptConfigPaths = {
  sourcesList: '/etc/apt/sources.list',
  sourcesDir: '/etc/apt/sources.list.d',
};

/**
 * Parse deb822 `.sources` text. Only stanzas whose Types include `deb` and that are not
 * `Enabled: no` are returned; `deb-src` stanzas and inline armored keys are skipped.
 */
export function parseDeb822Sources(text: string): AptSource[] {
  const sources: AptSource[] = [];

  for (const stanza of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let current: string | undefined;
    for (const rawLine of stanza.split('\n')) {
      if (rawLine.startsWith('#')) continue;
      if (/^[ \t]/.test(rawLine)) {
        // A continuation line belongs to the field above (multi-line URIs, or an embedded key).
        if (current) fields.set(current, `${fields.get(current)} ${rawLine.trim()}`);
        continue;
      }
      const match = /^([A-Za-z0-9-]+):(.*)$/.exec(rawLine);
      if (!match) continue;
      current = match[1].toLowerCase();
      fields.set(current, match[2].trim());
    }

    const types = words(fields.get('types'));
    if (!types.includes('deb')) continue;
    if (/^(no|false|0)$/i.test(fields.get('enabled') ?? '')) continue;

    const signedBy = fields.get('signed-by');
    for (const uri of words(fields.get('uris'))) {
      sources.push({
        uri,
        suites: words(fields.get('suites')),
        components: words(fields.get('components')),
        ...(signedBy && signedBy.startsWith('/') && !signedBy.includes(' ') ? { signedBy } : {}),
      });
    }
  }
  return sources;
}

/** Parse one-line `sources.list` text: `deb [option=value ...] URI SUITE COMPONENT...`. */
export function parseOneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];

  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/#.*$/, '').trim();
    const match = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!match) continue;

    const [, optionText = '', uri, suite, componentText] = match;
    const options = new Map(
      words(optionText).map((option) => {
        const at = option.indexOf('=');
        return [option.slice(0, at).toLowerCase(), option.slice(at + 1)] as const;
      }),
    );
    const signedBy = options.get('signed-by');
    sources.push({
      uri,
      suites: [suite],
      components: words(componentText),
      ...(signedBy && signedBy.startsWith('/') ? { signedBy } : {}),
    });
  }
  return sources;
}

/** Every enabled `deb` entry of the host: sources.list first, then sources.list.d in name order. */
export function readAptSources(paths: AptConfigPaths = defaultPaths): AptSource[] {
  const sources: AptSource[] = [];
  const list = readIfExists(paths.sourcesList);
  if (list !== undefined) sources.push(...parseOneLineSources(list));

  let names: string[] = [];
  try {
    names = fs.readdirSync(paths.sourcesDir).sort();
  } catch {
    // No sources.list.d is a valid configuration.
  }
  for (const name of names) {
    const text = readIfExists(path.join(paths.sourcesDir, name));
    if (text === undefined) continue;
    if (name.endsWith('.sources')) sources.push(...parseDeb822Sources(text));
    else if (name.endsWith('.list')) sources.push(...parseOneLineSources(text));
  }
  return sources;
}

/**
 * The host's mirror for `suite`: the first enabled entry that lists exactly that suite and the
 * `main` component. Returns undefined when the host has no such entry.
 */
export function findAptMirror(
  suite: string,
  sources: AptSource[] = readAptSources(),
): AptSource | undefined {
  return sources.find(
    (source) =>
      source.suites.includes(suite) &&
      (source.components.length === 0 || source.components.includes('main')) &&
      /^(https?|file):/.test(source.uri),
  );
}

function words(value: string | undefined): string[] {
  return (value ?? '').split(/\s+/).filter((word) => word.length > 0);
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
