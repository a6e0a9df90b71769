/**
 * Splits a QEMU 7.2 precopy migration stream into device state and one RAM block's pages.
 *
 * Why: a clone's RAM is a private mapping of its template's memory file, so its review snapshot
 * carries every page of it, and loading 150 MiB into fresh anonymous memory was most of a resume.
 * Split, the pages of the block go to a sparse file at their guest offsets, which the restore maps
 * copy-on-write like a template's memory; the state file keeps everything else and loads in
 * milliseconds. The restore side needs nothing new from QEMU: pages a stream does not carry keep
 * the content of the mapped file.
 *
 * With a base (the template memory a clone's RAM maps), pages are not split off at all: those equal
 * to the base page are dropped and the rest stay in the state stream. A clone's review snapshot
 * then holds only what the clone changed (a few MiB instead of ≈150 MiB, most of a pause's time
 * went into writing those), and its restore maps the base again and loads the changes over it.
 *
 * Stream layout (migration/savevm.c, migration/ram.c): magic and version, the configuration
 * section, then the RAM section's start (the block list), its parts and its end, each a run of
 * page records closed by an end-of-section flag, then the device sections, copied verbatim here.
 * Only zero-page and whole-page records are expected; compression, XBZRLE or multifd (never enabled
 * here) would be refused rather than misread.
 */

/** Page record flags, the low bits of each record's address word (migration/ram.c). */
const FLAG_ZERO = 0x02;
const FLAG_MEM_SIZE = 0x04;
const FLAG_PAGE = 0x08;
const FLAG_EOS = 0x10;
const FLAG_CONTINUE = 0x20;
const FLAG_BITS = 0xfff;
const KNOWN_FLAGS = FLAG_ZERO | FLAG_PAGE | FLAG_EOS | FLAG_CONTINUE;

/** Section types (migration/savevm.c). */
const SECTION_START = 0x01;
const SECTION_PART = 0x02;
const SECTION_END = 0x03;
const SECTION_FOOTER = 0x7e;

export const PAGE_BYTES = 4096;

/**
 * The RAM section's start as QEMU 7.2 writes it: section type, section id, the name `ram`, instance
 * 0, version 4. The configuration section before it has no length field, so it is found by this.
 */
const RAM_SECTION_NAME = Buffer.from([0x03, 0x72, 0x61, 0x6d, 0, 0, 0, 0, 0, 0, 0, 4]);

/** Bytes of the next chunk joined to a carried partial record: more than any record's size. */
const STRADDLE_BYTES = 2 * PAGE_BYTES;

/** Where the header (magic, version, configuration) must have ended. */
const MAX_HEADER_BYTES = 64 * 1024;

export interface SplitterSinks {
  /** Bytes of the state stream, in order (a copy the sink may keep). */
  state(bytes: Buffer): void;
  /**
   * One non-zero page of the split block, at its byte offset in the block. `data` is a view of the
   * input chunk: keeping it keeps that chunk in memory.
   */
  page(offset: number, data: Buffer): void;
}

export interface SplitterOptions {
  /** The RAM block whose pages go to {@link SplitterSinks.page}, e.g. `mem`. */
  blockName: string;
  /** The stream was written with `x-ignore-shared`: each block entry carries its guest address. */
  blockAddresses: boolean;
  /**
   * The block's pages as the file its RAM maps copy-on-write has them (a template's memory): the
   * page at a byte offset. When given, no page goes to {@link SplitterSinks.page}: a record whose
   * page equals the base page is dropped, any other stays in the state stream, so that the state
   * loaded over the mapped base gives the RAM back (see {@link MigrationStreamSplitter}).
   */
  basePage?: (offset: number) => Buffer;
}

type Phase = 'header' | 'blocks' | 'sections' | 'records' | 'tail';

/** A push parser: feed it the stream in chunks of any size, then call {@link end}. */
export class MigrationStreamSplitter {
  private buffer: Buffer = Buffer.alloc(0);
  private phase: Phase = 'header';
  private ramBytesLeft = 0;
  /** The block of the last record (records may omit a name that repeats). */
  private block: string | undefined;
  private sectionType = 0;
  /** Size of the split block, from the block list. */
  blockBytes: number | undefined;

  constructor(
    private readonly options: SplitterOptions,
    private readonly sinks: SplitterSinks,
  ) {}

  push(chunk: Buffer): void {
    if (this.buffer.length > 0 && this.phase !== 'header') {
      // Finish the record that straddles the chunk boundary on a small joined buffer (a record is
      // at most a page and a header), then go on in the chunk itself: joining whole chunks copied
      // the stream once more.
      const head = Buffer.concat([this.buffer, chunk.subarray(0, STRADDLE_BYTES)]);
      const carried = this.buffer.length;
      this.buffer = head;
      const used = this.parse();
      if (used < carried) {
        // Still inside the carried bytes: the head holds everything there is so far.
        this.buffer =
          head.length - carried < chunk.length
            ? Buffer.concat([head.subarray(used), chunk.subarray(head.length - carried)])
            : head.subarray(used);
        return;
      }
      chunk = chunk.subarray(used - carried);
    } else if (this.buffer.length > 0) {
      chunk = Buffer.concat([this.buffer, chunk]);
    }

    this.buffer = chunk;
    this.buffer = chunk.subarray(this.parse());
  }

  /** Parse as far as the buffer allows; returns the bytes used. */
  private parse(): number {
    let offset = 0;
    for (;;) {
      const used = this.step(offset);
      if (used === 0) return offset;
      offset += used;
    }
  }

  /** The stream ended: throws unless it was complete. */
  end(): void {
    if (this.phase !== 'tail')
      throw new Error(`migration stream ended early (in its ${this.phase})`);
    if (this.buffer.length > 0) this.keep(this.buffer);
    this.buffer = Buffer.alloc(0);
  }

  /** Parse one unit at `at`; returns the bytes it used, 0 when more input is needed. */
  private step(at: number): number {
    const data = this.buffer;
    const available = data.length - at;
    switch (this.phase) {
      case 'header': {
        const found = data.indexOf(RAM_SECTION_NAME, at);
        if (found < 0) {
          if (data.length > MAX_HEADER_BYTES)
            throw new Error('migration stream has no RAM section');
          return 0;
        }
        // type byte and 4-byte section id precede the name.
        const sectionStart = found - 5;
        if (sectionStart < at || data[sectionStart] !== SECTION_START) {
          throw new Error('migration stream: RAM section start not where expected');
        }
        if (available < found - at + RAM_SECTION_NAME.length + 8) return 0;

        const sizeWord = readU64(data, found + RAM_SECTION_NAME.length);
        if (!(sizeWord & FLAG_MEM_SIZE)) throw new Error('migration stream: RAM size missing');
        this.ramBytesLeft = sizeWord - (sizeWord & FLAG_BITS);
        const end = found + RAM_SECTION_NAME.length + 8;
        this.keep(data.subarray(at, end));
        this.phase = 'blocks';
        return end - at;
      }

      case 'blocks': {
        if (this.ramBytesLeft === 0) {
          if (available < 8) return 0;
          if (!(readU64(data, at) & FLAG_EOS)) throw new Error('migration stream: bad block list');
          this.keep(data.subarray(at, at + 8));
          this.phase = 'sections';
          return 8;
        }
        if (available < 1) return 0;
        const nameLength = data[at]!;
        const entryBytes = 1 + nameLength + 8 + (this.options.blockAddresses ? 8 : 0);
        if (available < entryBytes) return 0;

        const name = data.toString('latin1', at + 1, at + 1 + nameLength);
        const length = readU64(data, at + 1 + nameLength);
        if (name === this.options.blockName) this.blockBytes = length;
        this.ramBytesLeft -= length;
        if (this.ramBytesLeft < 0) throw new Error('migration stream: block list exceeds RAM size');
        this.keep(data.subarray(at, at + entryBytes));
        return entryBytes;
      }

      case 'sections': {
        if (available < 1) return 0;
        const type = data[at]!;
        if (type === SECTION_FOOTER || type === SECTION_PART || type === SECTION_END) {
          if (available < 5) return 0;
          this.keep(data.subarray(at, at + 5));
          if (type !== SECTION_FOOTER) {
            this.sectionType = type;
            this.phase = 'records';
          }
          return 5;
        }
        throw new Error(`migration stream: unexpected section type ${type} among RAM sections`);
      }

      case 'records':
        return this.record(at, available);

      case 'tail':
        if (available === 0) return 0;
        this.keep(data.subarray(at));
        return available;
    }
  }

  /** Hand on state bytes as a copy: a view would keep the whole input chunk alive. */
  private keep(bytes: Buffer): void {
    this.sinks.state(Buffer.from(bytes));
  }

  private record(at: number, available: number): number {
    const data = this.buffer;
    if (available < 8) return 0;
    const word = readU64(data, at);
    const flags = word & FLAG_BITS;
    const offset = word - flags;
    if (flags & ~KNOWN_FLAGS) {
      throw new Error(`migration stream: unsupported page flags 0x${flags.toString(16)}`);
    }

    if (flags & FLAG_EOS) {
      this.keep(data.subarray(at, at + 8));
      // The end section's records are the last of RAM: a footer may follow, then device state.
      this.phase = this.sectionType === SECTION_END ? 'tail' : 'sections';
      return 8;
    }

    let cursor = at + 8;
    let block = this.block;
    if (!(flags & FLAG_CONTINUE)) {
      if (available < 9) return 0;
      const nameLength = data[cursor]!;
      if (available < 9 + nameLength) return 0;
      block = data.toString('latin1', cursor + 1, cursor + 1 + nameLength);
      cursor += 1 + nameLength;
    }
    if (block === undefined) throw new Error('migration stream: page before any block name');

    const payloadBytes = flags & FLAG_PAGE ? PAGE_BYTES : 1;
    if (!(flags & (FLAG_PAGE | FLAG_ZERO)))
      throw new Error('migration stream: record without page');
    if (cursor + payloadBytes > data.length) return 0;

    const payload = data.subarray(cursor, cursor + payloadBytes);
    const used = cursor + payloadBytes - at;
    this.block = block;
    if (block === this.options.blockName) {
      if (!(flags & FLAG_PAGE) && payload[0] !== 0) {
        throw new Error('migration stream: a filled page that is not zero');
      }
      const basePage = this.options.basePage;
      if (basePage) {
        const base = basePage(offset);
        if (flags & FLAG_PAGE ? payload.equals(base) : isZero(base)) return used;
      } else {
        // The page file starts as holes, which read as zero: only content needs writing.
        if (flags & FLAG_PAGE && !isZero(payload)) this.sinks.page(offset, payload);
        return used;
      }
    }

    // A record kept for the state stream always names its block: the one before it may have been
    // split off, so "same block as before" would no longer hold.
    const name = Buffer.from(block, 'latin1');
    const header = Buffer.alloc(9 + name.length);
    writeU64(header, 0, offset + (flags & ~FLAG_CONTINUE));
    header[8] = name.length;
    name.copy(header, 9);
    this.sinks.state(Buffer.concat([header, payload]));
    return used;
  }
}

/** Big-endian u64 as a number; guest offsets and sizes stay far below 2^53. */
function readU64(data: Buffer, at: number): number {
  return data.readUInt32BE(at) * 2 ** 32 + data.readUInt32BE(at + 4);
}

function writeU64(data: Buffer, at: number, value: number): void {
  data.writeUInt32BE(Math.floor(value / 2 ** 32), at);
  data.writeUInt32BE(value % 2 ** 32, at + 4);
}

const ZERO_PAGE = Buffer.alloc(PAGE_BYTES);

function isZero(page: Buffer): boolean {
  return page.equals(ZERO_PAGE);
}
