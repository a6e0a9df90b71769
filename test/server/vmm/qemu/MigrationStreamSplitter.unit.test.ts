import assert from 'node:assert/strict';
import {
  MigrationStreamSplitter,
  PAGE_BYTES,
} from '../../../../server/vmm/qemu/MigrationStreamSplitter';
import {
  DEVICES,
  EOS,
  footer,
  page,
  PAGE,
  record,
  sampleStream,
  u32,
  u64,
  ZERO,
} from './sampleMigrationStream';

/**
 * Split `stream` against a base memory of 8 pages, each filled with the byte `baseFill[page]`:
 * returns the state stream, which keeps only `mem` records that differ from the base.
 */
function splitAgainst(stream: Buffer, chunkBytes: number, baseFill: number[]) {
  const state: Buffer[] = [];
  const base = Buffer.concat(baseFill.map((fill) => page(fill)));
  const splitter = new MigrationStreamSplitter(
    {
      blockName: 'mem',
      blockAddresses: true,
      basePage: (offset) => base.subarray(offset, offset + PAGE_BYTES),
    },
    {
      state: (bytes) => state.push(bytes),
      page: () => assert.fail('no page is split off against a base'),
    },
  );
  for (let at = 0; at < stream.length; at += chunkBytes) {
    splitter.push(stream.subarray(at, at + chunkBytes));
  }
  splitter.end();
  return Buffer.concat(state);
}

function split(stream: Buffer, chunkBytes: number) {
  const state: Buffer[] = [];
  const pages = new Map<number, number>();
  const splitter = new MigrationStreamSplitter(
    { blockName: 'mem', blockAddresses: true },
    {
      state: (bytes) => state.push(bytes),
      page: (offset, data) => {
        assert.equal(data.length, PAGE_BYTES);
        pages.set(offset / PAGE_BYTES, data[0]!);
      },
    },
  );
  for (let at = 0; at < stream.length; at += chunkBytes) {
    splitter.push(stream.subarray(at, at + chunkBytes));
  }
  splitter.end();
  return { state: Buffer.concat(state), pages, blockBytes: splitter.blockBytes };
}

describe('MigrationStreamSplitter (unit)', () => {
  it('sends the block’s non-zero pages apart and keeps every other byte of the stream in order', () => {
    const { stream, expectedState } = sampleStream();
    const result = split(stream, stream.length);

    assert.deepEqual(
      [...result.pages.entries()],
      [
        [0, 1],
        [2, 2],
        [3, 3],
        [7, 7],
      ],
    );
    assert.equal(result.blockBytes, 8 * PAGE_BYTES);
    assert.ok(result.state.equals(expectedState), 'the state stream differs');
  });

  it('gives the same result whatever the chunk boundaries', () => {
    const { stream, expectedState } = sampleStream();
    for (const chunkBytes of [1, 3, 8, 4095, 4097, 8200, 65536]) {
      const result = split(stream, chunkBytes);
      assert.ok(result.state.equals(expectedState), `state differs with ${chunkBytes}-byte chunks`);
      assert.deepEqual([...result.pages.keys()], [0, 2, 3, 7], `${chunkBytes}-byte chunks`);
    }
  });

  it('against a base, keeps in the state exactly the block’s records that differ from it, named', () => {
    const { stream, expectedState } = sampleStream();
    // The stream's `mem` pages: 0→1, 1→zero, 2→2, 3→3, 4→0 (a full page of zeros), 7→7.
    // Base: pages 0 and 3 as in the stream, page 1 not zero (so its zero record must stay),
    // page 4 zero (its all-zero full page is the same), page 2 and 7 different.
    const baseFill = [1, 5, 9, 3, 0, 0, 0, 0];
    const ramPart = (records: Buffer[]) =>
      Buffer.concat([Buffer.from([0x02]), u32(2), ...records, u64(EOS), footer(2)]);
    const partAt = expectedState.indexOf(Buffer.concat([Buffer.from([0x02]), u32(2)]));
    const expected = Buffer.concat([
      expectedState.subarray(0, partAt),
      ramPart([
        record(PAGE_BYTES, ZERO, 'mem', Buffer.from([0])),
        record(0, PAGE, 'rom', page(9)),
        record(2 * PAGE_BYTES, PAGE, 'mem', page(2)),
      ]),
      Buffer.from([0x03]),
      u32(2),
      record(7 * PAGE_BYTES, PAGE, 'mem', page(7)),
      u64(EOS),
      footer(2),
      DEVICES,
    ]);

    for (const chunkBytes of [stream.length, 1, 4097]) {
      const state = splitAgainst(stream, chunkBytes, baseFill);
      assert.ok(state.equals(expected), `state differs with ${chunkBytes}-byte chunks`);
    }
  });

  it('against a base equal to the RAM, keeps no page of the block at all', () => {
    const { stream, expectedState } = sampleStream();
    const state = splitAgainst(stream, 4096, [1, 0, 2, 3, 0, 0, 0, 7]);
    assert.ok(state.equals(expectedState));
  });

  it('refuses page encodings it does not know rather than misreading them', () => {
    const { stream } = sampleStream();
    const xbzrle = Buffer.from(stream);
    // The first record of the part section: its flags word's last byte.
    const firstRecord = xbzrle.indexOf(Buffer.concat([Buffer.from([0x02]), u32(2)])) + 5;
    xbzrle[firstRecord + 7] = 0x40;
    assert.throws(() => split(xbzrle, 4096), /unsupported page flags 0x40/);
  });

  it('refuses a stream that ends before its RAM sections did', () => {
    const { stream } = sampleStream();
    assert.throws(() => split(stream.subarray(0, stream.length / 2), 1024), /ended early/);
  });

  it('refuses a stream without a RAM section', () => {
    assert.throws(() => split(Buffer.alloc(100_000, 0x55), 4096), /no RAM section/);
  });
});
