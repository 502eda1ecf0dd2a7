/**
 * Loading the Cornerstone WASM codecs (emscripten builds, CommonJS): each package exports a
 * factory that returns a promise of the module; it is called once per thread and kept. The
 * embind objects are typed here by what we call on them; their buffers are views into WASM
 * memory, so results are copied out before the object is deleted.
 */
import { createRequire } from 'node:module';

/** The FrameInfo value object of the Cornerstone codecs. */
export interface WasmFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
  isUsingColorTransform?: boolean;
}

/** An embind decoder: copy the codestream in, decode, read the frame info and pixels. */
export interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getFrameInfo(): WasmFrameInfo;
  getDecodedBuffer(): Uint8Array;
  delete(): void;
  getInterleaveMode?(): number;
  getNearLossless?(): number;
  getColorSpace?(): number;
}

/** An embind encoder: size the source buffer from a frame info, copy pixels in, encode, read out. */
export interface WasmEncoder {
  getDecodedBuffer(frameInfo: WasmFrameInfo): Uint8Array;
  encode(): void;
  getEncodedBuffer(): Uint8Array;
  delete(): void;
  setNearLossless?(near: number): void;
  setInterleaveMode?(mode: number): void;
  setQuality?(...args: (boolean | number)[]): void;
  setProgressive?(progressive: number): void;
  setSubSampling?(subSampling: number): void;
  setDecompositions?(n: number): void;
}

type Ctor<T> = new () => T;

/** The constructors a codec module offers (named per package). */
export interface WasmCodecModule {
  readonly [name: string]: unknown;
}

const require = createRequire(import.meta.url);
const loaded = new Map<string, Promise<WasmCodecModule>>();

/** The initialised emscripten module of a package entry point (e.g. '@cornerstonejs/codec-charls/wasmjs'). */
export function loadWasmModule(specifier: string): Promise<WasmCodecModule> {
  let p = loaded.get(specifier);
  if (!p) {
    const factory = require(specifier) as (options?: object) => Promise<WasmCodecModule>;
    // The emscripten runtime prints codec warnings on stdout: keep them off our output.
    p = factory({ print: () => {}, printErr: () => {} });
    loaded.set(specifier, p);
  }
  return p;
}

/** A new decoder object from a module's constructor. */
export function newDecoder(mod: WasmCodecModule, name: string): WasmDecoder {
  return new (mod[name] as Ctor<WasmDecoder>)();
}

/** A new encoder object from a module's constructor. */
export function newEncoder(mod: WasmCodecModule, name: string): WasmEncoder {
  return new (mod[name] as Ctor<WasmEncoder>)();
}

/** Runs one decode and returns the frame info, a copy of the pixels and the interleave mode; the object is always deleted. */
export function runDecoder(
  decoder: WasmDecoder,
  encoded: Uint8Array,
): { info: WasmFrameInfo; pixels: Uint8Array; interleave: number } {
  try {
    decoder.getEncodedBuffer(encoded.length).set(encoded);
    decoder.decode();
    const info = decoder.getFrameInfo();
    const view = decoder.getDecodedBuffer();
    const pixels = new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
    // CharLS: 0 planar, 1 line, 2 sample interleaved; the others always interleave by sample.
    return { info, pixels, interleave: decoder.getInterleaveMode?.() ?? 2 };
  } finally {
    decoder.delete();
  }
}

/** Runs one encode of `pixels` (native little-endian) and returns a copy of the codestream; the object is always deleted. */
export function runEncoder(encoder: WasmEncoder, info: WasmFrameInfo, pixels: Uint8Array): Uint8Array {
  try {
    encoder.getDecodedBuffer(info).set(pixels);
    encoder.encode();
    const view = encoder.getEncodedBuffer();
    return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
  } finally {
    encoder.delete();
  }
}

/** An emscripten exception (a thrown C++ string or number) as a message. */
export function wasmErrorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return typeof e === 'string' ? e : `codec error ${String(e)}`;
}
