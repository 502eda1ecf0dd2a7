/**
 * Encryption envelopes for objects at rest (issue 14): pure logic over node:crypto, no I/O.
 *
 * Each object has its own random 256-bit data key. Its plaintext is cut into segments of
 * `segmentSize` bytes (64 KiB), each sealed with AES-256-GCM on its own (the STREAM construction
 * of Hoang, Reyhanitabar, Rogaway and Vizár, "Online authenticated-encryption and its
 * nonce-reuse misuse-resistance", 2015): nonce = the object's random 8-byte prefix || the
 * segment index (32 bits); associated data = the object id || the segment index || a last-segment
 * flag. A segment is the last one exactly when it is shorter than `segmentSize` (an object whose
 * size is a multiple of it ends with an empty last segment), so full segments are sealed as the
 * bytes stream in, and a reader knows every segment's place and size from the plaintext size.
 * Reordering, swapping (between positions or objects), truncating or extending fail a tag.
 *
 * File layout (HEADER_SIZE bytes of header, then the segments, each its ciphertext and 16-byte tag):
 *
 *   0   magic "PACSENC\x1a" (8)       8 version (1) + 3 reserved    12 segment size (u32 BE)
 *   16  object id (16)                32 nonce prefix (8)           40 plaintext size (u64 BE)
 *   48  header size (u32 BE)          52 reserved (12)
 *   64  key slot A                    512 key slot B
 *
 * A key slot is: sequence (u32 BE), key-encryption key id (16), nonce (12), the data key sealed
 * with AES-256-GCM under that KEK (32) and its tag (16); the associated data of that seal is the
 * fixed 64 header bytes (object id, plaintext size...) and the slot's sequence and KEK id, so the
 * slot tag authenticates the whole header. The valid slot with the highest sequence whose KEK is
 * known wins. Rotation (rewrapSlots) writes the new wrap into the other slot, then (once that is
 * durable) the same into the first: a crash leaves at least one whole valid slot, under the old or
 * the new key. The slots sit in different 512-byte sectors, so a torn write of one never touches
 * the other.
 */
import { createCipheriv, createDecipheriv, randomBytes, timingSafeEqual } from 'node:crypto';
import { PacsError } from '../core/errors.js';

export const ENVELOPE_MAGIC = Buffer.from('PACSENC\x1a', 'latin1');
export const ENVELOPE_VERSION = 1;
export const HEADER_SIZE = 1024;
export const DEFAULT_SEGMENT_SIZE = 64 * 1024;
export const TAG_SIZE = 16;
export const KEY_SIZE = 32;
export const KEK_ID_SIZE = 16;
export const OBJECT_ID_SIZE = 16;
const FIXED_SIZE = 64;
const SLOT_OFFSETS = [64, 512] as const;
const SLOT_SIZE = 4 + KEK_ID_SIZE + 12 + KEY_SIZE + TAG_SIZE;
const PREFIX_SIZE = 8;
const MAX_SEGMENT_SIZE = 16 * 1024 * 1024;

export type EnvelopeErrorCode =
  /** The bytes are not a well-formed envelope, or fail their authentication (tampered, truncated, swapped). */
  | 'ERR_ENVELOPE_INTEGRITY'
  /** No key slot is sealed under a key-encryption key we hold. */
  | 'ERR_ENVELOPE_NO_KEY';

export class EnvelopeError extends PacsError {
  override readonly code: EnvelopeErrorCode;
  constructor(code: EnvelopeErrorCode, message: string) {
    super(code, message);
    this.code = code;
  }
}

/** A key-encryption key: 256 bits and the id written into the headers it seals. */
export interface KeyEncryptionKey {
  /** 16 bytes, shown as 32 hex digits. */
  readonly id: Buffer;
  readonly key: Buffer;
}

/** Every KEK a store may use: `current` seals new objects, all open old ones. */
export interface Keyring {
  readonly current: KeyEncryptionKey;
  readonly all: readonly KeyEncryptionKey[];
}

export function newKeyEncryptionKey(): KeyEncryptionKey {
  return { id: randomBytes(KEK_ID_SIZE), key: randomBytes(KEY_SIZE) };
}

export function makeKeyring(current: KeyEncryptionKey, previous: readonly KeyEncryptionKey[] = []): Keyring {
  const all = [current, ...previous.filter((k) => !k.id.equals(current.id))];
  return { current, all };
}

/** True when `head` (the first bytes of a file) starts like an envelope. */
export function isEnvelope(head: Uint8Array): boolean {
  return (
    head.length >= ENVELOPE_MAGIC.length && ENVELOPE_MAGIC.equals(head.subarray(0, ENVELOPE_MAGIC.length))
  );
}

/** The number of segments of a plaintext of `size` bytes (a last, short or empty one always). */
export function segmentCount(size: number, segmentSize: number): number {
  return Math.floor(size / segmentSize) + 1;
}

/** The size on disk of an envelope around `size` bytes. */
export function envelopeSize(size: number, segmentSize: number = DEFAULT_SEGMENT_SIZE): number {
  return HEADER_SIZE + size + segmentCount(size, segmentSize) * TAG_SIZE;
}

/** A parsed key slot (its tag not yet checked). */
interface Slot {
  readonly index: 0 | 1;
  readonly sequence: number;
  readonly kekId: Buffer;
  readonly nonce: Buffer;
  readonly sealed: Buffer;
  readonly tag: Buffer;
}

/** An envelope header whose data key is unwrapped: what a reader needs. */
export interface OpenedHeader {
  readonly objectId: Buffer;
  readonly segmentSize: number;
  readonly plaintextSize: number;
  readonly noncePrefix: Buffer;
  readonly dataKey: Buffer;
  /** The slot that opened it, and the KEK id and sequence it holds. */
  readonly slot: 0 | 1;
  readonly sequence: number;
  readonly kekId: Buffer;
  /** Both slots, as found: whether each is valid and under which KEK (for rotation). */
  readonly slots: readonly { readonly valid: boolean; readonly sequence: number; readonly kekId: Buffer }[];
}

function integrity(message: string): EnvelopeError {
  return new EnvelopeError('ERR_ENVELOPE_INTEGRITY', message);
}

function slotAad(fixed: Uint8Array, sequence: number, kekId: Uint8Array): Buffer {
  const aad = Buffer.alloc(FIXED_SIZE + 4 + KEK_ID_SIZE);
  aad.set(fixed.subarray(0, FIXED_SIZE), 0);
  aad.writeUInt32BE(sequence, FIXED_SIZE);
  aad.set(kekId, FIXED_SIZE + 4);
  return aad;
}

function sealSlot(fixed: Uint8Array, sequence: number, kek: KeyEncryptionKey, dataKey: Buffer): Buffer {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek.key, nonce);
  c.setAAD(slotAad(fixed, sequence, kek.id));
  const sealed = Buffer.concat([c.update(dataKey), c.final()]);
  const out = Buffer.alloc(SLOT_SIZE);
  out.writeUInt32BE(sequence, 0);
  out.set(kek.id, 4);
  out.set(nonce, 4 + KEK_ID_SIZE);
  out.set(sealed, 4 + KEK_ID_SIZE + 12);
  out.set(c.getAuthTag(), 4 + KEK_ID_SIZE + 12 + KEY_SIZE);
  return out;
}

function parseSlot(header: Uint8Array, index: 0 | 1): Slot {
  const b = Buffer.from(header.buffer, header.byteOffset + SLOT_OFFSETS[index], SLOT_SIZE);
  return {
    index,
    sequence: b.readUInt32BE(0),
    kekId: Buffer.from(b.subarray(4, 4 + KEK_ID_SIZE)),
    nonce: b.subarray(4 + KEK_ID_SIZE, 4 + KEK_ID_SIZE + 12),
    sealed: b.subarray(4 + KEK_ID_SIZE + 12, 4 + KEK_ID_SIZE + 12 + KEY_SIZE),
    tag: b.subarray(4 + KEK_ID_SIZE + 12 + KEY_SIZE, SLOT_SIZE),
  };
}

/** The data key of a slot, or undefined when its KEK is not ours or its tag fails. */
function unwrapSlot(fixed: Uint8Array, slot: Slot, keyring: Keyring): Buffer | undefined {
  const kek = keyring.all.find((k) => k.id.equals(slot.kekId));
  if (!kek) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', kek.key, slot.nonce);
    d.setAAD(slotAad(fixed, slot.sequence, slot.kekId));
    d.setAuthTag(slot.tag);
    return Buffer.concat([d.update(slot.sealed), d.final()]);
  } catch {
    return undefined;
  }
}

/**
 * Parses and authenticates an envelope header (its first HEADER_SIZE bytes) of the object
 * `objectId`, whose file is `fileSize` bytes. Throws EnvelopeError: ERR_ENVELOPE_INTEGRITY for a
 * header that is not well formed, of another object, or whose size disagrees with the file;
 * ERR_ENVELOPE_NO_KEY when no slot is sealed under a KEK of the keyring (or the slots under ours fail).
 */
export function openHeader(
  header: Uint8Array,
  objectId: Uint8Array,
  fileSize: number,
  keyring: Keyring,
): OpenedHeader {
  if (header.length < HEADER_SIZE)
    throw integrity(`encrypted object header cut short (${header.length} bytes)`);
  if (!isEnvelope(header)) throw integrity('not an encrypted object (bad magic)');
  const b = Buffer.from(header.buffer, header.byteOffset, HEADER_SIZE);
  if (b[8] !== ENVELOPE_VERSION)
    throw integrity(`encrypted object version ${b[8]} is not one this program reads`);
  const segmentSize = b.readUInt32BE(12);
  if (segmentSize < 1 || segmentSize > MAX_SEGMENT_SIZE) throw integrity(`bad segment size ${segmentSize}`);
  if (b.readUInt32BE(48) !== HEADER_SIZE) throw integrity('bad header size');
  const id = b.subarray(16, 32);
  if (objectId.length !== OBJECT_ID_SIZE || !timingSafeEqual(id, objectId))
    throw integrity('the file holds another object (object id mismatch)');
  const plaintextSize = Number(b.readBigUInt64BE(40));
  if (!Number.isSafeInteger(plaintextSize)) throw integrity('bad plaintext size');
  const expected = envelopeSize(plaintextSize, segmentSize);
  if (fileSize !== expected)
    throw integrity(
      fileSize < expected
        ? `encrypted object truncated: ${fileSize} bytes of ${expected}`
        : `encrypted object extended: ${fileSize} bytes, ${expected} expected`,
    );
  const fixed = b.subarray(0, FIXED_SIZE);
  const slots = [parseSlot(b, 0), parseSlot(b, 1)];
  const found = slots.map((s) => ({ slot: s, key: unwrapSlot(fixed, s, keyring) }));
  const valid = found.filter((f) => f.key !== undefined).sort((x, y) => y.slot.sequence - x.slot.sequence);
  const best = valid[0];
  if (!best?.key) {
    const ids = [...new Set(slots.map((s) => s.kekId.toString('hex')))].join(', ');
    const ours = slots.some((s) => keyring.all.some((k) => k.id.equals(s.kekId)));
    throw ours
      ? integrity('encrypted object header fails its authentication (tampered)')
      : new EnvelopeError('ERR_ENVELOPE_NO_KEY', `encrypted under key ${ids}, which is not configured`);
  }
  return {
    objectId: Buffer.from(id),
    segmentSize,
    plaintextSize,
    noncePrefix: Buffer.from(b.subarray(32, 40)),
    dataKey: best.key,
    slot: best.slot.index,
    sequence: best.slot.sequence,
    kekId: best.slot.kekId,
    slots: found.map((f) => ({ valid: f.key !== undefined, sequence: f.slot.sequence, kekId: f.slot.kekId })),
  };
}

/**
 * The two slot writes of a rotation of `opened` to `kek`, in order: each is (offset, bytes) to
 * write and make durable before the next. The first goes to the slot that did not open the
 * header, with the next sequence; the second overwrites the old slot with the same wrap, so the
 * old KEK no longer opens the object. Writes already done (a resumed rotation) are left out.
 */
export function rewrapSlots(
  header: Uint8Array,
  opened: OpenedHeader,
  kek: KeyEncryptionKey,
): { readonly offset: number; readonly bytes: Buffer }[] {
  const fixed = header.subarray(0, FIXED_SIZE);
  const done = (i: 0 | 1, seq: number): boolean => {
    const s = opened.slots[i];
    return s?.valid === true && s.kekId.equals(kek.id) && s.sequence === seq;
  };
  const writes: { offset: number; bytes: Buffer }[] = [];
  const other: 0 | 1 = opened.slot === 0 ? 1 : 0;
  if (opened.kekId.equals(kek.id)) {
    // The newest slot is under the new key already: the older one may still hold the old wrap.
    if (!done(other, opened.sequence))
      writes.push({
        offset: SLOT_OFFSETS[other],
        bytes: sealSlot(fixed, opened.sequence, kek, opened.dataKey),
      });
    return writes;
  }
  const sequence = (opened.sequence + 1) >>> 0;
  writes.push({ offset: SLOT_OFFSETS[other], bytes: sealSlot(fixed, sequence, kek, opened.dataKey) });
  writes.push({ offset: SLOT_OFFSETS[opened.slot], bytes: sealSlot(fixed, sequence, kek, opened.dataKey) });
  return writes;
}

function segmentNonce(prefix: Uint8Array, index: number): Buffer {
  const n = Buffer.alloc(12);
  n.set(prefix, 0);
  n.writeUInt32BE(index, PREFIX_SIZE);
  return n;
}

function segmentAad(objectId: Uint8Array, index: number, last: boolean): Buffer {
  const aad = Buffer.alloc(OBJECT_ID_SIZE + 8 + 1);
  aad.set(objectId, 0);
  aad.writeBigUInt64BE(BigInt(index), OBJECT_ID_SIZE);
  aad[OBJECT_ID_SIZE + 8] = last ? 1 : 0;
  return aad;
}

/** Where segment `index` is in the file: its offset and its ciphertext length (tag excluded). */
export function segmentPlace(
  index: number,
  plaintextSize: number,
  segmentSize: number,
): { readonly offset: number; readonly length: number; readonly last: boolean } {
  const count = segmentCount(plaintextSize, segmentSize);
  const last = index === count - 1;
  const length = last ? plaintextSize - index * segmentSize : segmentSize;
  return { offset: HEADER_SIZE + index * (segmentSize + TAG_SIZE), length, last };
}

/**
 * Seals a stream of plaintext into an envelope. push() returns the ciphertext bytes to append
 * (after the header's place, HEADER_SIZE), end() the last ones and the header to write at 0.
 * Memory is one segment: its bytes are gathered, then sealed once full (a full segment is never
 * the last) or at the end (the short last one, with its flag).
 */
export class EnvelopeWriter {
  readonly segmentSize: number;
  private readonly objectId: Buffer;
  private readonly kek: KeyEncryptionKey;
  private readonly dataKey = randomBytes(KEY_SIZE);
  private readonly noncePrefix = randomBytes(PREFIX_SIZE);
  private readonly segment: Buffer;
  private index = 0;
  private inSegment = 0;
  private size = 0;
  private ended = false;

  constructor(objectId: Uint8Array, kek: KeyEncryptionKey, segmentSize: number = DEFAULT_SEGMENT_SIZE) {
    if (objectId.length !== OBJECT_ID_SIZE) throw new RangeError(`an object id is ${OBJECT_ID_SIZE} bytes`);
    if (segmentSize < 1 || segmentSize > MAX_SEGMENT_SIZE)
      throw new RangeError(`bad segment size ${segmentSize}`);
    this.objectId = Buffer.from(objectId);
    this.kek = kek;
    this.segmentSize = segmentSize;
    this.segment = Buffer.allocUnsafe(segmentSize);
  }

  /** Plaintext bytes taken so far. */
  get plaintextSize(): number {
    return this.size;
  }

  /** Seals one segment into `out`: its ciphertext then its tag (two buffers: no copy to join them). */
  private seal(bytes: Uint8Array, last: boolean, out: Buffer[]): void {
    const c = createCipheriv('aes-256-gcm', this.dataKey, segmentNonce(this.noncePrefix, this.index));
    c.setAAD(segmentAad(this.objectId, this.index, last));
    const body = c.update(bytes);
    if (body.length > 0) out.push(body);
    c.final();
    out.push(c.getAuthTag());
    this.index++;
  }

  /** Encrypts `chunk` (not kept): the ciphertext to append, in order (often none). */
  push(chunk: Uint8Array): Buffer[] {
    if (this.ended) throw new Error('envelope already ended');
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      const room = this.segmentSize - this.inSegment;
      if (this.inSegment === 0 && chunk.length - at >= this.segmentSize) {
        // A whole segment in the chunk: sealed from it, without gathering.
        this.seal(chunk.subarray(at, at + this.segmentSize), false, out);
        at += this.segmentSize;
        this.size += this.segmentSize;
        continue;
      }
      const take = Math.min(room, chunk.length - at);
      this.segment.set(chunk.subarray(at, at + take), this.inSegment);
      this.inSegment += take;
      this.size += take;
      at += take;
      if (this.inSegment === this.segmentSize) {
        this.seal(this.segment, false, out);
        this.inSegment = 0;
      }
    }
    return out;
  }

  /** Ends the stream: the last segment (short or empty) with its tag, and the header to write at offset 0. */
  end(): { readonly tail: Buffer[]; readonly header: Buffer } {
    if (this.ended) throw new Error('envelope already ended');
    this.ended = true;
    const tail: Buffer[] = [];
    this.seal(this.segment.subarray(0, this.inSegment), true, tail);
    const header = Buffer.alloc(HEADER_SIZE);
    ENVELOPE_MAGIC.copy(header, 0);
    header[8] = ENVELOPE_VERSION;
    header.writeUInt32BE(this.segmentSize, 12);
    this.objectId.copy(header, 16);
    this.noncePrefix.copy(header, 32);
    header.writeBigUInt64BE(BigInt(this.size), 40);
    header.writeUInt32BE(HEADER_SIZE, 48);
    // Both slots hold the wrap (sequence 0): either one alone opens the object.
    for (const offset of SLOT_OFFSETS) sealSlot(header, 0, this.kek, this.dataKey).copy(header, offset);
    this.dataKey.fill(0);
    return { tail, header };
  }
}

/**
 * Opens one segment: `sealed` is its ciphertext and tag as read from segmentPlace(index). Returns
 * the plaintext only once its tag checks; throws ERR_ENVELOPE_INTEGRITY otherwise.
 */
export function openSegment(opened: OpenedHeader, index: number, sealed: Uint8Array): Buffer {
  const place = segmentPlace(index, opened.plaintextSize, opened.segmentSize);
  if (sealed.length !== place.length + TAG_SIZE)
    throw integrity(`segment ${index} cut short: ${sealed.length} bytes of ${place.length + TAG_SIZE}`);
  const d = createDecipheriv('aes-256-gcm', opened.dataKey, segmentNonce(opened.noncePrefix, index));
  d.setAAD(segmentAad(opened.objectId, index, place.last));
  d.setAuthTag(sealed.subarray(place.length));
  const plain = d.update(sealed.subarray(0, place.length));
  try {
    d.final();
  } catch {
    plain.fill(0);
    throw integrity(`segment ${index} fails its authentication (tampered, swapped or truncated)`);
  }
  return plain;
}
