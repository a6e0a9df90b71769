import { PAGE_BYTES } from '../../../../server/vmm/qemu/MigrationStreamSplitter';

// Migration streams shaped like QEMU 7.2's, for the tests of the stream's splitter and its sink.

export const ZERO = 0x02;
export const PAGE = 0x08;
export const EOS = 0x10;
export const CONTINUE = 0x20;

export function u64(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeUInt32BE(Math.floor(value / 2 ** 32), 0);
  bytes.writeUInt32BE(value % 2 ** 32, 4);
  return bytes;
}

export function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

export function named(name: string): Buffer {
  return Buffer.concat([Buffer.from([name.length]), Buffer.from(name, 'latin1')]);
}

export function page(fill: number): Buffer {
  return Buffer.alloc(PAGE_BYTES, fill);
}

/** One page record: address word, the block name unless CONTINUE, then its payload. */
export function record(
  offset: number,
  flags: number,
  block: string | null,
  payload: Buffer,
): Buffer {
  return Buffer.concat([
    u64(offset + flags),
    block === null ? Buffer.alloc(0) : named(block),
    payload,
  ]);
}

/** What follows the RAM sections in the sample stream: device state, copied as it is. */
export const DEVICES = Buffer.from('\x04device state, copied as it is\x00');

export const footer = (id: number) => Buffer.concat([Buffer.from([0x7e]), u32(id)]);

/**
 * A stream shaped like QEMU 7.2's, for a guest with an 8-page `mem` block and a one-page ROM:
 * header and configuration, the RAM section's block list (with addresses, as `x-ignore-shared`
 * writes it), one part and the end section, then device state.
 */
export function sampleStream() {
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
  const devices = DEVICES;
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
