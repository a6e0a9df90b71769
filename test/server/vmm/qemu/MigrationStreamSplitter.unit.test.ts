import assert from 'node:assert/strict';
import {
  MigrationStreamSplitter,
  PAGE_BYTES,
} from '../../../../server/vmm/qemu/MigrationStreamSplitter';

const ZERO = 0x02;
const PAGE = 0x08;
const EOS = 0x10;
const CONTINUE = 0x20;

function u64(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeUInt32BE(Math.floor(value / 2 ** 32), 0);
  bytes.writeUInt32BE(value % 2 ** 32, 4);
  return bytes;
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

function named(name: string): Buffer {
  return Buffer.concat([Buffer.from([name.length]), Buffer.from(name, 'latin1')]);
}

function page(fill: number): Buffer {
  return Buffer.alloc(PAGE_BYTES, fill);
}

/** One page record: address word, the block name unless CONTINUE, then its payload. */
function record(offset: number, flags: number, block: string | null, payload: Buffer): Buffer {
  return Buffer.concat([
    u64(offset + flags),
    block === null ? Buffer.alloc(0) : named(block),
    payload,
  ]);
}

const footer = (id: number) => Buffer.concat([Buffer.from([0x7e]), u32(id)]);

/**
 * A stream shaped like QEMU 7.2's, for a guest with an 8-page `mem` block and a one-page ROM:
 * header and configuration, the RAM section's block list (with addresses, as `x-ignore-shared`
 * writes it), one part and the end section, then device state.
 */
function sampleStream() {
  const header = Buffer.concat([
    Buffer.from('QEVM'),
    u32(3),
    Buffer.from([0x07]),
    u32(7),
    Buffer.from('microvm'),
  ]);
  const ramStart = Buffer.concat([
    Buffer.from([0x01]),
    u32(2),
    named('ram'),
    u32(0),
    u32(4),
    u64(9 * PAGE_BYTES + 0x04),
    named('mem'),
    u64(8 * PAGE_BYTES),
    u64(0),
    named('rom'),
    u64(PAGE_BYTES),
    u64(0xfeff0000),
    u64(EOS),
    footer(2),
  ]);
  const part = Buffer.concat([
    Buffer.from([0x02]),
    u32(2),
    record(0, PAGE, 'mem', page(1)),
    record(PAGE_BYTES, ZERO | CONTINUE, null, Buffer.from([0])),
    record(0, PAGE, 'rom', page(9)),
    record(2 * PAGE_BYTES, PAGE, 'mem', page(2)),
    record(3 * PAGE_BYTES, PAGE | CONTINUE, null, page(3)),
    record(4 * PAGE_BYTES, PAGE | CONTINUE, null, page(0)),
    u64(EOS),
    footer(2),
  ]);
  const end = Buffer.concat([
    Buffer.from([0x03]),
    u32(2),
    record(7 * PAGE_BYTES, PAGE, 'mem', page(7)),
    u64(EOS),
    footer(2),
  ]);
  const devices = Buffer.from('\x04device state, copied as it is\x00');
  const stream = Buffer.concat([header, ramStart, part, end, devices]);

  // What the state file must hold: the ROM record (named, CONTINUE cleared), no `mem` record.
  const expectedState = Buffer.concat([
    header,
    ramStart,
    Buffer.from([0x02]),
    u32(2),
    record(0, PAGE, 'rom', page(9)),
    u64(EOS),
    footer(2),
    Buffer.from([0x03]),
    u32(2),
    u64(EOS),
    footer(2),
    devices,
  ]);
  return { stream, expectedState };
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
