/**
 * A streaming ZIP writer (PKWARE APPNOTE 6.3.x) for `accept=application/zip` retrieves: entries
 * are stored (method 0, the DICOM files are sent as they are), each followed by a data descriptor
 * (general purpose bit 3) so that its CRC-32 and size are written after its bytes, which stream
 * through without being held. ZIP64 (APPNOTE 4.5.3, 4.4.1.4) is used for an entry whose size may
 * reach 4 GiB, for offsets past 4 GiB and for more than 65,535 entries. Memory: one small central
 * directory record per entry (name, CRC, sizes, offset), the file bytes never.
 *
 * Readers that use the central directory (Info-ZIP unzip, Python's zipfile, 7-Zip, libarchive,
 * Java's ZipFile, Windows) read it; a purely streaming reader that refuses stored entries with a
 * data descriptor (Java's ZipInputStream) does not.
 */
import * as zlib from 'node:zlib';

/** One file of the archive. */
export interface ZipEntry {
  /** The name inside the archive ('/' separated, no leading '/', no '..'): checked by the caller. */
  readonly name: string;
  /** The expected size, when known: an entry that may reach 4 GiB gets ZIP64 fields (unknown: ZIP64). */
  readonly sizeHint?: number;
  readonly modified?: Date;
  readonly body: AsyncIterable<Uint8Array>;
}

const U32 = 0xffffffff;
/** Sizes up to this are written without ZIP64 (a margin below 4 GiB for entries that grow, e.g. re-encoded). */
const ZIP64_HINT = 0xf0000000;

interface CentralRecord {
  readonly name: Buffer;
  readonly crc: number;
  readonly size: number;
  readonly offset: number;
  readonly zip64: boolean;
  readonly time: number;
  readonly date: number;
}

type Crc32 = (data: Uint8Array, value: number) => number;

/** zlib's CRC-32 (Node 20.15+), or a table-driven one. */
const crc32: Crc32 =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? ((zlib as unknown as { crc32: Crc32 }).crc32 as Crc32)
    : tableCrc32();

function tableCrc32(): Crc32 {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return (data, value) => {
    let c = (value ^ U32) >>> 0;
    for (let i = 0; i < data.length; i++) c = (table[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
    return (c ^ U32) >>> 0;
  };
}

/** MS-DOS date and time (APPNOTE 4.4.6), local time, 2-second resolution. */
function dosDateTime(d: Date): { time: number; date: number } {
  const year = Math.max(1980, Math.min(2107, d.getFullYear()));
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

function u64(buf: Buffer, value: number, at: number): void {
  buf.writeBigUInt64LE(BigInt(value), at);
}

const FLAGS = 0x0008 | 0x0800; // data descriptor; names in UTF-8

function localHeader(name: Buffer, zip64: boolean, time: number, date: number): Buffer {
  const extra = zip64 ? 20 : 0;
  const b = Buffer.alloc(30 + name.length + extra);
  b.writeUInt32LE(0x04034b50, 0);
  b.writeUInt16LE(zip64 ? 45 : 20, 4);
  b.writeUInt16LE(FLAGS, 6);
  b.writeUInt16LE(0, 8); // stored
  b.writeUInt16LE(time, 10);
  b.writeUInt16LE(date, 12);
  // CRC and sizes follow in the data descriptor (4.4.4); with ZIP64 the 32-bit sizes are 0xFFFFFFFF.
  b.writeUInt32LE(0, 14);
  b.writeUInt32LE(zip64 ? U32 : 0, 18);
  b.writeUInt32LE(zip64 ? U32 : 0, 22);
  b.writeUInt16LE(name.length, 26);
  b.writeUInt16LE(extra, 28);
  name.copy(b, 30);
  if (zip64) {
    const x = 30 + name.length;
    b.writeUInt16LE(0x0001, x);
    b.writeUInt16LE(16, x + 2); // original and compressed size, zero here
  }
  return b;
}

function dataDescriptor(crc: number, size: number, zip64: boolean): Buffer {
  const b = Buffer.alloc(zip64 ? 24 : 16);
  b.writeUInt32LE(0x08074b50, 0);
  b.writeUInt32LE(crc >>> 0, 4);
  if (zip64) {
    u64(b, size, 8);
    u64(b, size, 16);
  } else {
    b.writeUInt32LE(size, 8);
    b.writeUInt32LE(size, 12);
  }
  return b;
}

function centralHeader(r: CentralRecord): Buffer {
  const bigSize = r.zip64 || r.size >= U32;
  const bigOffset = r.offset >= U32;
  const zip64 = bigSize || bigOffset;
  const extraLen = zip64 ? 4 + (bigSize ? 16 : 0) + (bigOffset ? 8 : 0) : 0;
  const b = Buffer.alloc(46 + r.name.length + extraLen);
  b.writeUInt32LE(0x02014b50, 0);
  b.writeUInt16LE((3 << 8) | 45, 4); // made by: UNIX, 4.5
  b.writeUInt16LE(zip64 ? 45 : 20, 6);
  b.writeUInt16LE(FLAGS, 8);
  b.writeUInt16LE(0, 10);
  b.writeUInt16LE(r.time, 12);
  b.writeUInt16LE(r.date, 14);
  b.writeUInt32LE(r.crc >>> 0, 16);
  b.writeUInt32LE(bigSize ? U32 : r.size, 20);
  b.writeUInt32LE(bigSize ? U32 : r.size, 24);
  b.writeUInt16LE(r.name.length, 28);
  b.writeUInt16LE(extraLen, 30);
  b.writeUInt16LE(0, 32); // comment
  b.writeUInt16LE(0, 34); // disk
  b.writeUInt16LE(0, 36); // internal attributes
  b.writeUInt32LE((0o100644 << 16) >>> 0, 38); // a regular file, rw-r--r--
  b.writeUInt32LE(bigOffset ? U32 : r.offset, 42);
  r.name.copy(b, 46);
  if (zip64) {
    let x = 46 + r.name.length;
    b.writeUInt16LE(0x0001, x);
    b.writeUInt16LE(extraLen - 4, x + 2);
    x += 4;
    // APPNOTE 4.5.3: only the fields whose 32-bit value is 0xFFFFFFFF, in this order.
    if (bigSize) {
      u64(b, r.size, x);
      u64(b, r.size, x + 8);
      x += 16;
    }
    if (bigOffset) u64(b, r.offset, x);
  }
  return b;
}

function endRecords(count: number, cdOffset: number, cdSize: number): Buffer {
  const zip64 = count > 0xffff || cdOffset >= U32 || cdSize >= U32;
  const parts: Buffer[] = [];
  if (zip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    u64(rec, 44, 4); // size of the rest of the record
    rec.writeUInt16LE((3 << 8) | 45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeUInt32LE(0, 16);
    rec.writeUInt32LE(0, 20);
    u64(rec, count, 24);
    u64(rec, count, 32);
    u64(rec, cdSize, 40);
    u64(rec, cdOffset, 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeUInt32LE(0, 4);
    u64(locator, cdOffset + cdSize, 8);
    locator.writeUInt32LE(1, 16);
    parts.push(rec, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Math.min(count, 0xffff), 8);
  end.writeUInt16LE(Math.min(count, 0xffff), 10);
  end.writeUInt32LE(Math.min(cdSize, U32), 12);
  end.writeUInt32LE(Math.min(cdOffset, U32), 16);
  parts.push(end);
  return Buffer.concat(parts);
}

/**
 * The bytes of a ZIP archive of `entries`, streamed: each entry's header, its bytes as its body
 * yields them (CRC computed on the way), its data descriptor; then the central directory.
 * Stopping the iteration stops the entry being read (its file is closed by its body).
 */
export async function* zipChunks(
  entries: AsyncIterable<ZipEntry> | Iterable<ZipEntry>,
): AsyncGenerator<Uint8Array> {
  const records: CentralRecord[] = [];
  let offset = 0;
  for await (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    if (name.length > 0xffff) throw new Error('a ZIP entry name is longer than 65,535 bytes');
    const zip64 = entry.sizeHint === undefined || entry.sizeHint > ZIP64_HINT || offset >= U32;
    const { time, date } = dosDateTime(entry.modified ?? new Date());
    const head = localHeader(name, zip64, time, date);
    const entryOffset = offset;
    yield head;
    offset += head.length;
    let crc = 0;
    let size = 0;
    for await (const chunk of entry.body) {
      if (chunk.length === 0) continue;
      crc = crc32(chunk, crc);
      size += chunk.length;
      yield chunk;
    }
    offset += size;
    if (!zip64 && size >= U32)
      throw new Error(`the ZIP entry ${entry.name} grew past 4 GiB without ZIP64 fields`);
    const descriptor = dataDescriptor(crc, size, zip64);
    yield descriptor;
    offset += descriptor.length;
    records.push({ name, crc, size, offset: entryOffset, zip64, time, date });
  }
  const cdOffset = offset;
  let cdSize = 0;
  // The central directory in batches of records: few writes, bounded buffers.
  for (let i = 0; i < records.length; i += 256) {
    const batch = Buffer.concat(records.slice(i, i + 256).map(centralHeader));
    cdSize += batch.length;
    yield batch;
  }
  yield endRecords(records.length, cdOffset, cdSize);
}
