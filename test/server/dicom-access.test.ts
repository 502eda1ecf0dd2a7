/**
 * DICOM access control is asked in one place (issue 14, ARCHITECTURE.md decision 10): every DIMSE
 * command of every service `pacs server` registers goes through the dispatcher's authorize hook
 * before its handler runs, and maps to an operation of the one policy. A service or a command
 * added later without that check fails here. Then the admission and the policy as the server wires
 * them (server/dicom-access.ts), without sockets: unknown AEs, address and certificate binding,
 * user identities, move destinations, and the security-alert events.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Archive, openArchive } from '../../src/archive/archive.js';
import { MemoryAeRegistry } from '../../src/archive/security/ae-registry.js';
import { EventBus, type EventOf } from '../../src/core/events.js';
import { unwrap } from '../../src/core/result.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { ApplicationEntity } from '../../src/network/ae.js';
import type { AuthorizationQuery } from '../../src/network/dimse.js';
import { CommandField } from '../../src/network/dimse-command.js';
import type { AdmissionRequest } from '../../src/network/negotiation.js';
import type { DimseHandlers, DimseService } from '../../src/network/service.js';
import { dimseOperationOf } from '../../src/security/dimse-operation.js';
import type { NodeIdentity } from '../../src/security/identity.js';
import { type Config, defaultConfig, loadConfig } from '../../src/server/config.js';
import { dicomAccess } from '../../src/server/dicom-access.js';
import { startServer } from '../../src/server/server.js';
import { SERVER_SERVICES } from '../../src/server/services.js';
import { echo, VERIFICATION_CONTEXT } from '../../src/services/verification/scu.js';
import { memoryLogger } from '../web/helpers.js';
import { fakeIdentityService } from './fake-identity.js';
import { freePort, makePki, tempDir } from './helpers.js';

const COMMAND_FIELDS: Readonly<Record<keyof DimseHandlers, number>> = {
  'C-ECHO': CommandField.C_ECHO_RQ,
  'C-STORE': CommandField.C_STORE_RQ,
  'C-FIND': CommandField.C_FIND_RQ,
  'C-GET': CommandField.C_GET_RQ,
  'C-MOVE': CommandField.C_MOVE_RQ,
  'N-CREATE': CommandField.N_CREATE_RQ,
  'N-SET': CommandField.N_SET_RQ,
  'N-GET': CommandField.N_GET_RQ,
  'N-ACTION': CommandField.N_ACTION_RQ,
  'N-DELETE': CommandField.N_DELETE_RQ,
  'N-EVENT-REPORT': CommandField.N_EVENT_REPORT_RQ,
};

/** Every (service, SOP class, command) `pacs server` registers. */
function registered(
  services: readonly DimseService[],
): Array<{ service: string; sopClass: string; command: keyof DimseHandlers }> {
  const out: Array<{ service: string; sopClass: string; command: keyof DimseHandlers }> = [];
  for (const service of services)
    for (const sc of service.sopClasses)
      for (const command of Object.keys(service.handlers) as Array<keyof DimseHandlers>)
        if (service.handlers[command] !== undefined)
          out.push({ service: service.name, sopClass: sc.uid, command });
  return out;
}

describe('every DIMSE command of every server service asks the policy', () => {
  let work: { path: string; remove: () => Promise<void> };
  let archive: Archive;
  let services: DimseService[];

  before(async () => {
    work = await tempDir('pacs-access-enum-');
    const logger = memoryLogger([]);
    archive = await openArchive({ dataDir: work.path, durability: 'none', logger });
    const config = defaultConfig();
    services = SERVER_SERVICES.map((f) =>
      f({ config, logger, archive, events: new EventBus(), knownAes: () => [] }),
    );
  });
  after(async () => {
    await archive.close();
    await work.remove();
  });

  it('maps each registered command and SOP class to an operation', () => {
    const all = registered(services);
    assert.ok(all.length > 50, `only ${all.length} commands registered`);
    for (const r of all)
      assert.notEqual(
        dimseOperationOf(r.command, r.sopClass),
        undefined,
        `${r.service}: ${r.command} on ${r.sopClass}`,
      );
    // The model-specific ones (issue 14).
    assert.equal(dimseOperationOf('C-FIND', '1.2.840.10008.5.1.4.31'), 'dimse:worklist');
    assert.equal(dimseOperationOf('N-CREATE', '1.2.840.10008.3.1.2.3.3'), 'dimse:mpps');
    assert.equal(dimseOperationOf('N-SET', '1.2.840.10008.3.1.2.3.3'), 'dimse:mpps');
    assert.equal(dimseOperationOf('N-ACTION', '1.2.840.10008.1.20.1'), 'dimse:commit');
    assert.equal(dimseOperationOf('N-EVENT-REPORT', '1.2.840.10008.1.20.1'), 'dimse:commit');
    assert.equal(dimseOperationOf('N-DELETE', '1.2.840.10008.3.1.2.3.3'), undefined);
  });

  it('sends each one over an association: the hook is asked once, before the handler, and its refusal is the answer', async () => {
    const asked: AuthorizationQuery[] = [];
    const ae = new ApplicationEntity({ aeTitle: 'PACS' });
    for (const s of services) ae.addService(s);
    const server = await ae.listen({
      port: 0,
      host: '127.0.0.1',
      authorize: (query) => {
        asked.push(query);
        return { status: 0x0124, errorComment: `refused ${query.command}` };
      },
    });
    const port = server.address?.port ?? 0;
    // A later registration of a SOP class wins (ae.ts): what the dispatcher serves.
    const served = registered(services).filter((r) => ae.serviceFor(r.sopClass)?.name === r.service);
    const sopClasses = [...new Set(served.map((r) => r.sopClass))];
    const scu = new ApplicationEntity({ aeTitle: 'ENUM' });
    try {
      for (let i = 0; i < sopClasses.length; i += 100) {
        const chunk = sopClasses.slice(i, i + 100);
        const assoc = await scu.connect({
          host: '127.0.0.1',
          port,
          calledAeTitle: 'PACS',
          contexts: chunk.map((uid) => ({
            abstractSyntax: uid,
            transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE],
          })),
        });
        assert.ok(assoc.ok, assoc.ok ? '' : assoc.error.message);
        const a = assoc.value;
        for (const r of served.filter((x) => chunk.includes(x.sopClass))) {
          const pc = a.presentationContexts.find((c) => c.abstractSyntax === r.sopClass);
          assert.ok(pc !== undefined, `no context for ${r.sopClass}`);
          const before = asked.length;
          const isN = r.command.startsWith('N-');
          const withData = r.command !== 'C-ECHO' && r.command !== 'N-GET';
          const command = {
            commandField: COMMAND_FIELDS[r.command],
            ...(isN && r.command !== 'N-CREATE' && r.command !== 'N-EVENT-REPORT'
              ? { requestedSopClassUid: r.sopClass, requestedSopInstanceUid: '1.2.3.4' }
              : { affectedSopClassUid: r.sopClass }),
            ...(r.command === 'C-STORE' || r.command === 'N-EVENT-REPORT' || r.command === 'N-CREATE'
              ? { affectedSopInstanceUid: '1.2.3.4' }
              : {}),
            ...(r.command === 'C-MOVE' ? { moveDestination: 'ELSEWHERE' } : {}),
            ...(r.command === 'N-ACTION' ? { actionTypeId: 1 } : {}),
            ...(r.command === 'N-EVENT-REPORT' ? { eventTypeId: 1 } : {}),
            priority: 0,
            hasDataSet: withData,
          };
          const responses = [];
          for await (const resp of a.request(pc.id, command, withData ? new DataSet() : undefined))
            responses.push(resp);
          const final = responses[responses.length - 1];
          assert.equal(final?.command.status, 0x0124, `${r.service}: ${r.command} on ${r.sopClass}`);
          assert.equal(final?.command.errorComment, `refused ${r.command}`);
          assert.equal(
            asked.length,
            before + 1,
            `${r.command} on ${r.sopClass} asked ${asked.length - before} times`,
          );
          const q = asked[asked.length - 1];
          assert.equal(q?.command, r.command);
          assert.equal(q?.abstractSyntax, r.sopClass);
          if (r.command === 'C-MOVE') assert.equal(q?.moveDestination, 'ELSEWHERE');
        }
        await a.release();
      }
    } finally {
      await server.close(0);
    }
    // Nothing was stored: the refused C-STOREs never reached the archive.
    assert.equal(await archive.index.findInstance('1.2.3.4'), undefined);
  });
});

// --- admission and the policy, as the server wires them -------------------------------------------

function configWith(dicom: object, peers: object[] = []): Config {
  const loaded = loadConfig({ overrides: { server: { dicom }, peers } as never });
  if (!loaded.ok) throw loaded.error;
  return loaded.value;
}

const enc = (s: string) => new TextEncoder().encode(s);

function request(callingAeTitle: string, extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return {
    callingAeTitle,
    calledAeTitle: 'PACS',
    peerHost: '127.0.0.1',
    peerCertificateSubject: undefined,
    userIdentity: undefined,
    ...extra,
  };
}

function query(
  identity: unknown,
  command: keyof DimseHandlers,
  abstractSyntax: string,
  moveDestination?: string,
): AuthorizationQuery {
  return { command, abstractSyntax, moveDestination, identity, peerAeTitle: 'X', remoteAddress: '127.0.0.1' };
}

const CT = '1.2.840.10008.5.1.4.1.1.2';
const STUDY_FIND = '1.2.840.10008.5.1.4.1.2.2.1';
const STUDY_MOVE = '1.2.840.10008.5.1.4.1.2.2.2';
const STUDY_GET = '1.2.840.10008.5.1.4.1.2.2.3';

describe('server/dicom-access: admission and authorization', () => {
  const alerts: Array<EventOf<'security-alert'>> = [];
  const events = new EventBus();
  events.on('security-alert', (e) => alerts.push(e));
  const lines: Array<Record<string, unknown>> = [];
  const logger = memoryLogger(lines);
  const registry = new MemoryAeRegistry([
    {
      aeTitle: 'WS1',
      host: '127.0.0.1',
      port: 11113,
      permissions: ['echo', 'find', 'move'],
      moveDestinations: ['WS1', 'ARCHIVE2'],
      bindAddress: false,
    },
    { aeTitle: 'NOMOVE', permissions: ['echo', 'find'], bindAddress: false },
    { aeTitle: 'FAR', host: '10.255.255.1', permissions: ['echo', 'store'], bindAddress: true },
    { aeTitle: 'LOCALHOST', host: 'localhost', permissions: ['echo'], bindAddress: true },
    {
      aeTitle: 'CERT',
      permissions: ['echo', 'store'],
      tlsSubject: 'CN=modality1,O=Hospital',
      bindAddress: false,
    },
    { aeTitle: 'OVERRIDDEN', permissions: ['echo', 'find', 'move', 'get'], bindAddress: false },
  ]);
  const identityService = fakeIdentityService();
  const access = dicomAccess({
    config: configWith({ aes: [{ aeTitle: 'OVERRIDDEN', permissions: ['echo'] }] }, [
      { aet: 'ARCHIVE2', host: '127.0.0.1', port: 11114 },
    ]),
    registry,
    logger,
    events,
    identityService,
  });

  async function admitted(r: AdmissionRequest): Promise<NodeIdentity> {
    const verdict = await access.admit(r);
    assert.ok(verdict.accepted, verdict.accepted ? '' : verdict.why);
    return verdict.identity as NodeIdentity;
  }

  it('an unknown AE may C-ECHO and C-STORE, nothing else (0x0124 with a reason, a warning, an event)', async () => {
    const id = await admitted(request('STRANGER'));
    assert.equal(id.registered, false);
    assert.equal(access.authorize(query(id, 'C-ECHO', '1.2.840.10008.1.1')), undefined);
    assert.equal(access.authorize(query(id, 'C-STORE', CT)), undefined);
    for (const [command, uid] of [
      ['C-FIND', STUDY_FIND],
      ['C-MOVE', STUDY_MOVE],
      ['C-GET', STUDY_GET],
      ['C-FIND', '1.2.840.10008.5.1.4.31'],
      ['N-CREATE', '1.2.840.10008.3.1.2.3.3'],
    ] as const) {
      const refusal = access.authorize(query(id, command, uid, 'WS1'));
      assert.equal(refusal?.status, 0x0124, command);
      assert.match(refusal?.errorComment ?? '', /unknown AE STRANGER may not/);
    }
    assert.ok(
      lines.some(
        (l) =>
          l.level === 40 &&
          /C-FIND from STRANGER refused: unknown AE STRANGER may not find/.test(String(l.msg)),
      ),
    );
    assert.ok(alerts.some((a) => a.kind === 'permission-denied' && a.user === 'STRANGER'));
  });

  it('a registered AE without move is refused a C-MOVE; one with move only to its allowed destinations (0xA801)', async () => {
    const nomove = await admitted(request('NOMOVE'));
    assert.equal(access.authorize(query(nomove, 'C-FIND', STUDY_FIND)), undefined);
    assert.equal(access.authorize(query(nomove, 'C-MOVE', STUDY_MOVE, 'NOMOVE'))?.status, 0x0124);
    const ws = await admitted(request('WS1'));
    assert.equal(access.authorize(query(ws, 'C-MOVE', STUDY_MOVE, 'WS1')), undefined);
    assert.equal(access.authorize(query(ws, 'C-MOVE', STUDY_MOVE, 'ARCHIVE2')), undefined);
    const refusal = access.authorize(query(ws, 'C-MOVE', STUDY_MOVE, 'OTHER'));
    assert.equal(refusal?.status, 0xa801);
    assert.match(refusal?.errorComment ?? '', /may not move to OTHER/);
    assert.equal(access.authorize(query(ws, 'C-GET', STUDY_GET))?.status, 0x0124);
  });

  it('the config wins over the index, and the peers and config AEs are the C-MOVE destinations', async () => {
    const id = await admitted(request('OVERRIDDEN'));
    assert.deepEqual([...id.permissions], ['echo']);
    const known = access.knownAes().map((p) => `${p.aet}=${p.host}:${p.port}`);
    assert.ok(known.includes('WS1=127.0.0.1:11113'));
    assert.ok(known.includes('ARCHIVE2=127.0.0.1:11114'));
    // An AE added to the index while the server runs is known at its next association.
    await registry.put({
      aeTitle: 'LATE',
      host: '127.0.0.1',
      port: 11115,
      permissions: ['echo'],
      bindAddress: false,
    });
    await admitted(request('LATE'));
    assert.ok(access.knownAes().some((p) => p.aet === 'LATE'));
  });

  it('binds an AE to its host: another address is rejected (calling AE not recognized); a name is resolved', async () => {
    const verdict = await access.admit(request('FAR'));
    assert.equal(verdict.accepted, false);
    assert.equal(verdict.accepted === false && verdict.reason, 'calling-ae-not-recognized');
    assert.ok(
      alerts.some(
        (a) =>
          a.kind === 'node-authentication-failed' &&
          /bound to 10.255.255.1, called from 127.0.0.1/.test(a.detail),
      ),
    );
    assert.ok(
      lines.some((l) => l.level === 40 && /association from FAR@127.0.0.1 rejected/.test(String(l.msg))),
    );
    await admitted(request('LOCALHOST'));
  });

  it('binds an AE to its TLS client certificate subject', async () => {
    assert.equal((await access.admit(request('CERT'))).accepted, false);
    assert.equal(
      (await access.admit(request('CERT', { peerCertificateSubject: { CN: 'modality2', O: 'Hospital' } })))
        .accepted,
      false,
    );
    await admitted(request('CERT', { peerCertificateSubject: { CN: 'modality1', O: 'Hospital', C: 'FR' } }));
  });

  it('user identity: a right password gives the user (limited by the role too), a wrong one is rejected, a positive response when asked', async () => {
    const good = await access.admit(
      request('STRANGER', {
        userIdentity: {
          identityType: 2,
          positiveResponseRequested: true,
          primaryField: enc('alice'),
          secondaryField: enc('secret'),
        },
      }),
    );
    assert.ok(good.accepted);
    assert.deepEqual(good.userIdentityResponse, new Uint8Array(0));
    const id = good.identity as NodeIdentity;
    assert.equal(id.user?.name, 'alice');
    assert.equal(id.user?.method, 'dimse-password');
    assert.equal(access.authorize(query(id, 'C-STORE', CT)), undefined);

    const viewer = (await admitted(
      request('STRANGER', {
        userIdentity: {
          identityType: 2,
          positiveResponseRequested: false,
          primaryField: enc('viewer'),
          secondaryField: enc('view'),
        },
      }),
    )) as NodeIdentity;
    assert.match(
      access.authorize(query(viewer, 'C-STORE', CT))?.errorComment ?? '',
      /user viewer \(role viewer\) lacks upload/,
    );

    const bad = await access.admit(
      request('STRANGER', {
        userIdentity: {
          identityType: 2,
          positiveResponseRequested: true,
          primaryField: enc('alice'),
          secondaryField: enc('nope'),
        },
      }),
    );
    assert.equal(bad.accepted, false);
    assert.equal(bad.accepted === false && bad.reason, 'no-reason-given');
    assert.ok(alerts.some((a) => a.kind === 'association-rejected' && a.user === 'alice'));
  });

  it('user identity: a JWT is checked; a username alone is not proof and is not used', async () => {
    const jwt = await admitted(
      request('STRANGER', {
        userIdentity: {
          identityType: 5,
          positiveResponseRequested: false,
          primaryField: enc('good-jwt'),
          secondaryField: new Uint8Array(0),
        },
      }),
    );
    assert.equal(jwt.user?.name, 'bob');
    assert.equal(jwt.user?.method, 'dimse-jwt');
    const badJwt = await access.admit(
      request('STRANGER', {
        userIdentity: {
          identityType: 5,
          positiveResponseRequested: false,
          primaryField: enc('forged'),
          secondaryField: new Uint8Array(0),
        },
      }),
    );
    assert.equal(badJwt.accepted, false);
    const nameOnly = await access.admit(
      request('STRANGER', {
        userIdentity: {
          identityType: 1,
          positiveResponseRequested: true,
          primaryField: enc('alice'),
          secondaryField: new Uint8Array(0),
        },
      }),
    );
    assert.ok(nameOnly.accepted);
    assert.equal((nameOnly.identity as NodeIdentity).user, undefined);
    assert.equal(nameOnly.userIdentityResponse, undefined);
  });

  it('unknownAe: reject refuses unknown AEs at association (calling AE not recognized)', async () => {
    const closed = dicomAccess({ config: configWith({ unknownAe: 'reject' }), registry, logger, events });
    const verdict = await closed.admit(request('STRANGER'));
    assert.equal(verdict.accepted, false);
    assert.equal(verdict.accepted === false && verdict.reason, 'calling-ae-not-recognized');
    assert.ok((await closed.admit(request('NOMOVE'))).accepted);
  });

  it('a request on an association without an identity, or no known operation, is refused', () => {
    assert.equal(access.authorize(query(undefined, 'C-ECHO', '1.2.840.10008.1.1'))?.status, 0x0124);
    const id: NodeIdentity = {
      kind: 'ae',
      aeTitle: 'X',
      registered: true,
      permissions: new Set(['echo']),
      moveDestinations: [],
    };
    assert.equal(access.authorize(query(id, 'N-DELETE', '1.2.840.10008.3.1.2.3.3'))?.status, 0x0124);
  });
});

describe('server.dicom over TLS: certificate subject binding, end to end', () => {
  it('accepts the AE with the right client certificate subject and rejects it with another', async () => {
    const work = await tempDir('pacs-access-tls-');
    try {
      const pki = await makePki(work.path);
      const tlsPort = await freePort();
      const loaded = loadConfig({
        overrides: {
          server: {
            host: '127.0.0.1',
            port: await freePort(),
            tls: {
              port: tlsPort,
              cert: pki.serverCert,
              key: pki.serverKey,
              ca: pki.caCert,
              requireClientCert: true,
            },
            dicom: {
              unknownAe: 'reject',
              aes: [
                { aeTitle: 'RIGHT', permissions: ['echo'], tlsSubject: 'CN=PACS test client' },
                { aeTitle: 'WRONG', permissions: ['echo'], tlsSubject: 'CN=someone else' },
              ],
            },
          },
          data: { dir: join(work.path, 'data') },
        } as never,
      });
      if (!loaded.ok) throw loaded.error;
      const lines: Array<Record<string, unknown>> = [];
      const started = await startServer(loaded.value, memoryLogger(lines));
      if (!started.ok) throw started.error;
      const server = started.value;
      try {
        const tls = { ca: pki.pem.ca, cert: pki.pem.clientCert, key: pki.pem.clientKey };
        const connect = (aeTitle: string) =>
          new ApplicationEntity({ aeTitle }).connect({
            host: '127.0.0.1',
            port: tlsPort,
            calledAeTitle: 'PACS',
            contexts: [VERIFICATION_CONTEXT],
            tls,
          });
        const right = await connect('RIGHT');
        assert.ok(right.ok, right.ok ? '' : right.error.message);
        assert.equal(unwrap(await echo(right.value)), 0);
        await right.value.release();
        const wrong = await connect('WRONG');
        assert.deepEqual(!wrong.ok && wrong.error.reject, { result: 1, source: 1, reason: 3 });
        assert.ok(
          lines.some((l) =>
            /presented certificate subject CN=PACS test client, not CN=someone else/.test(String(l.msg)),
          ),
        );
      } finally {
        await server.close();
      }
    } finally {
      await work.remove();
    }
  });

  it('validates server.dicom with one line per error', () => {
    const bad = loadConfig({
      overrides: {
        server: { dicom: { unknownAe: 'maybe', aes: [{ aeTitle: 'A\\B', permissions: ['echo', 'fly'] }] } },
      } as never,
    });
    assert.equal(bad.ok, false);
    const text = bad.ok ? '' : bad.error.message;
    assert.match(text, /server\.dicom\.unknownAe/);
    assert.match(text, /server\.dicom\.aes\[0\]\.aeTitle/);
    assert.match(text, /server\.dicom\.aes\[0\]\.permissions\[1\]/);
  });
});
