/** Shared set-up for loopback tests: an acceptor on 127.0.0.1 and a requestor aimed at it. */
import assert from 'node:assert/strict';
import net from 'node:net';
import { type AcceptorOptions, AssociationAcceptor } from '../../src/network/acceptor.js';
import type { Association } from '../../src/network/association.js';
import type { NegotiationPolicy } from '../../src/network/negotiation.js';
import { type RequestorOptions, requestAssociation } from '../../src/network/requestor.js';
import { h } from './bytes-helpers.js';

export const VERIFICATION = '1.2.840.10008.1.1';
export const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
export const IMPLICIT_LE = '1.2.840.10008.1.2';
export const EXPLICIT_LE = '1.2.840.10008.1.2.1';

export const POLICY: NegotiationPolicy = {
  aeTitle: 'PACS',
  maxPduLength: 16384,
  abstractSyntaxes: [
    { abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] },
    {
      abstractSyntax: CT_IMAGE,
      transferSyntaxes: [EXPLICIT_LE, IMPLICIT_LE],
      requestorRoles: { scu: true, scp: true },
    },
  ],
};

export interface Harness {
  acceptor: AssociationAcceptor;
  port: number;
  /** Associations the acceptor established, in order. */
  accepted: Association[];
  nextAccepted(): Promise<Association>;
  request(overrides?: Partial<RequestorOptions>): ReturnType<typeof requestAssociation>;
  close(): Promise<void>;
}

export async function startAcceptor(
  policy: Partial<NegotiationPolicy> = {},
  options: Partial<AcceptorOptions> = {},
): Promise<Harness> {
  const acceptor = new AssociationAcceptor({ ...options, policy: { ...POLICY, ...policy } });
  const { port } = await acceptor.listen(0, '127.0.0.1');
  const accepted: Association[] = [];
  const waiting: Array<(a: Association) => void> = [];
  acceptor.on('association', (a) => {
    accepted.push(a);
    waiting.shift()?.(a);
  });
  return {
    acceptor,
    port,
    accepted,
    nextAccepted: () =>
      new Promise((resolve) => {
        const ready = accepted[accepted.length - 1];
        if (ready !== undefined && waiting.length === 0 && !consumed.has(ready)) {
          consumed.add(ready);
          resolve(ready);
        } else {
          waiting.push((a) => {
            consumed.add(a);
            resolve(a);
          });
        }
      }),
    request: (overrides = {}) =>
      requestAssociation({
        host: '127.0.0.1',
        port,
        callingAeTitle: 'SCU',
        calledAeTitle: 'PACS',
        presentationContexts: [{ abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] }],
        ...overrides,
      }),
    close: () => acceptor.close({ abort: true }),
  };
}
const consumed = new WeakSet<Association>();

/** A raw TCP client that collects everything the server sends, for protocol-breaking tests. */
export async function rawClient(
  port: number,
): Promise<{ socket: net.Socket; received: () => Buffer; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => Buffer.concat(chunks), closed };
}

export function unwrapOk<T, E>(r: { ok: true; value: T } | { ok: false; error: E }): T {
  if (!r.ok) assert.fail(`expected success, got ${String((r as { error: unknown }).error)}`);
  return r.value;
}

/** A-ASSOCIATE-RQ bytes with one Verification context, calling RAW, called PACS, max length 16384. */
export function rawAssociateRq(): Uint8Array {
  const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  const item = (type: number, value: Uint8Array) =>
    Buffer.concat([
      h(`${type.toString(16).padStart(2, '0')}00`),
      h(value.length.toString(16).padStart(4, '0')),
      value,
    ]);
  const pc = item(
    0x20,
    Buffer.concat([h('01000000'), item(0x30, ascii(VERIFICATION)), item(0x40, ascii(IMPLICIT_LE))]),
  );
  const ui = item(0x50, item(0x51, h('00004000')));
  const body = Buffer.concat([
    h('00010000'),
    ascii('PACS'.padEnd(16)),
    ascii('RAW'.padEnd(16)),
    new Uint8Array(32),
    item(0x10, ascii('1.2.840.10008.3.1.1.1')),
    pc,
    ui,
  ]);
  return Buffer.concat([h('0100'), h(body.length.toString(16).padStart(8, '0')), body]);
}

export function waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (predicate()) resolve();
      else if (Date.now() - start > timeoutMs) reject(new Error('condition not met in time'));
      else setTimeout(tick, 5);
    };
    tick();
  });
}
