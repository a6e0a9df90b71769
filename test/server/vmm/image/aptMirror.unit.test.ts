import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  findAptMirror,
  parseDeb822Sources,
  parseOneLineSources,
  readAptSources,
} from '../../../../server/vmm/image/aptMirror';

describe('aptMirror (unit)', () => {
  const deb822 = [
    'Types: deb deb-src',
    '# a comment inside the stanza',
    'URIs: http://mirror-a.test/debian',
    'Suites: bookworm bookworm-updates',
    'Components: main contrib',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
    'Types: deb',
    'URIs: http://mirror-a.test/debian-security',
    'Suites: bookworm-security',
    'Components: main',
    '',
    'Types: deb-src',
    'URIs: http://sources-only.test/debian',
    'Suites: bookworm',
    'Components: main',
    '',
    'Types: deb',
    'Enabled: no',
    'URIs: http://disabled.test/debian',
    'Suites: bookworm',
    'Components: main',
  ].join('\n');

  it('reads every enabled deb stanza of a deb822 file with its suites and keyring', () => {
    const sources = parseDeb822Sources(deb822);

    assert.deepEqual(sources, [
      {
        uri: 'http://mirror-a.test/debian',
        suites: ['bookworm', 'bookworm-updates'],
        components: ['main', 'contrib'],
        signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
      },
      {
        uri: 'http://mirror-a.test/debian-security',
        suites: ['bookworm-security'],
        components: ['main'],
      },
    ]);
  });

  it('gives each URI of a multi-URI stanza its own entry and ignores an inline armored key', () => {
    const text = [
      'Types: deb',
      'URIs: http://one.test/debian http://two.test/debian',
      'Suites: bookworm',
      'Components: main',
      'Signed-By:',
      ' -----BEGIN PGP PUBLIC KEY BLOCK-----',
      ' .',
      ' mQINBF...',
      ' -----END PGP PUBLIC KEY BLOCK-----',
    ].join('\n');

    const sources = parseDeb822Sources(text);

    assert.deepEqual(
      sources.map((source) => [source.uri, source.signedBy]),
      [
        ['http://one.test/debian', undefined],
        ['http://two.test/debian', undefined],
      ],
    );
  });

  it('reads one-line entries with options, skipping deb-src, comments and blank lines', () => {
    const text = [
      '# deb http://commented.test/debian bookworm main',
      'deb-src http://src.test/debian bookworm main',
      '',
      'deb [arch=amd64 signed-by=/etc/apt/keyrings/local.gpg] http://mirror-b.test/debian bookworm main non-free',
      'deb http://mirror-b.test/security bookworm-security main # trailing comment',
    ].join('\n');

    const sources = parseOneLineSources(text);

    assert.deepEqual(sources, [
      {
        uri: 'http://mirror-b.test/debian',
        suites: ['bookworm'],
        components: ['main', 'non-free'],
        signedBy: '/etc/apt/keyrings/local.gpg',
      },
      { uri: 'http://mirror-b.test/security', suites: ['bookworm-security'], components: ['main'] },
    ]);
  });

  it('picks the first entry that carries exactly the wanted suite, not its -security sibling', () => {
    const sources = [
      ...parseOneLineSources('deb http://security.test/debian-security bookworm-security main'),
      ...parseDeb822Sources(deb822),
    ];

    assert.equal(findAptMirror('bookworm', sources)?.uri, 'http://mirror-a.test/debian');
    assert.equal(findAptMirror('trixie', sources), undefined);
  });

  it('combines sources.list and .sources/.list files from sources.list.d, ignoring other names', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-apt-'));
    try {
      fs.mkdirSync(path.join(dir, 'sources.list.d'));
      fs.writeFileSync(path.join(dir, 'sources.list'), '');
      fs.writeFileSync(path.join(dir, 'sources.list.d', 'b.sources'), deb822);
      fs.writeFileSync(
        path.join(dir, 'sources.list.d', 'a.list'),
        'deb http://first.test/debian bookworm main\n',
      );
      fs.writeFileSync(
        path.join(dir, 'sources.list.d', 'c.list.disabled'),
        'deb http://disabled.test/debian bookworm main\n',
      );

      const sources = readAptSources({
        sourcesList: path.join(dir, 'sources.list'),
        sourcesDir: path.join(dir, 'sources.list.d'),
      });

      assert.deepEqual(
        sources.map((source) => source.uri),
        [
          'http://first.test/debian',
          'http://mirror-a.test/debian',
          'http://mirror-a.test/debian-security',
        ],
      );
      assert.equal(findAptMirror('bookworm', sources)?.uri, 'http://first.test/debian');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
