/**
 * The C-FIND SCP and SCU against each other in one process, over the in-memory index: the
 * identifier errors and their statuses, relational queries by extended negotiation, the result
 * limit, 0xFF01, C-CANCEL, an index failure; and the -k query keys.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryArchiveIndex } from '../../src/archive/index/memory-index.js';
import type { QueryPlan } from '../../src/archive/index/query.js';
import { unwrap } from '../../src/core/result.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { DimseAssociation } from '../../src/network/dimse.js';
import { Status } from '../../src/network/dimse-status.js';
import { requestAssociation } from '../../src/network/requestor.js';
import { type FindServiceOptions, findService } from '../../src/services/query-retrieve/find-scp.js';
import {
  buildIdentifier,
  type FindOutcome,
  find,
  findContexts,
  parseKeyAssignment,
} from '../../src/services/query-retrieve/find-scu.js';
import {
  encodeFindExtendedNegotiation,
  type InformationModel,
  PATIENT_ROOT,
  PATIENT_STUDY_ONLY,
  parseFindExtendedNegotiation,
  type QueryRetrieveLevel,
  STUDY_ROOT,
} from '../../src/services/query-retrieve/models.js';
import { entryOf, makeDataSet } from '../archive/helpers.js';

/** Three patients; P1 has two studies. */
async function fill(index: MemoryArchiveIndex): Promise<void> {
  const objects = [
    { patientId: 'P1', patientName: 'Doe^John', studyUid: '2.1', seriesUid: '2.1.1', sopUid: '2.1.1.1' },
    { patientId: 'P1', patientName: 'Doe^John', studyUid: '2.1', seriesUid: '2.1.1', sopUid: '2.1.1.2' },
    {
      patientId: 'P1',
      patientName: 'Doe^John',
      studyUid: '2.2',
      seriesUid: '2.2.1',
      sopUid: '2.2.1.1',
      modality: 'MR',
      studyDate: '20230505',
    },
    { patientId: 'P2', patientName: 'Roe^Rita', studyUid: '2.3', seriesUid: '2.3.1', sopUid: '2.3.1.1' },
    {
      patientId: 'P3',
      patientName: 'Poe^Edgar',
      studyUid: '2.4',
      seriesUid: '2.4.1',
      sopUid: '2.4.1.1',
      modality: 'MR',
    },
  ];
  for (const o of objects) {
    const e = entryOf(makeDataSet(o));
    await index.insertInstance(e.record, e.headers);
  }
}

interface Server {
  readonly server: DicomServer;
  readonly port: number;
  close(): Promise<void>;
}

async function serve(
  options: Omit<FindServiceOptions, 'archive'> & { index: MemoryArchiveIndex },
): Promise<Server> {
  const ae = new ApplicationEntity({ aeTitle: 'PACS' }).addService(
    findService({ ...options, archive: { index: options.index } }),
  );
  const server = await ae.listen({ port: 0, host: '127.0.0.1' });
  return { server, port: server.address?.port ?? 0, close: () => server.close(100) };
}

async function connect(
  port: number,
  models: readonly InformationModel[] = [STUDY_ROOT, PATIENT_ROOT, PATIENT_STUDY_ONLY],
): Promise<DimseAssociation> {
  return unwrap(
    await new ApplicationEntity({ aeTitle: 'SCU' }).connect({
      host: '127.0.0.1',
      port,
      calledAeTitle: 'PACS',
      contexts: findContexts(models),
    }),
  );
}

function keys(entries: Record<string, string>): DataSet {
  const ds = new DataSet();
  for (const [k, v] of Object.entries(entries)) ds.setString(TAG[k as keyof typeof TAG], v);
  return ds;
}

interface Collected {
  readonly outcome: FindOutcome;
  readonly matches: DataSet[];
}

async function query(
  assoc: DimseAssociation,
  model: InformationModel,
  level: QueryRetrieveLevel,
  entries: Record<string, string>,
  identifier?: DataSet,
): Promise<Collected> {
  const matches: DataSet[] = [];
  const query = find(assoc, identifier ?? keys(entries), { sopClassUid: model.sopClasses.find, level });
  for await (const ds of query) matches.push(ds);
  const outcome = unwrap(await query.outcome);
  return { outcome, matches };
}

describe('C-FIND SCP', () => {
  const index = new MemoryArchiveIndex();
  let srv: Server;
  let assoc: DimseAssociation;
  before(async () => {
    await fill(index);
    srv = await serve({ index });
    assoc = await connect(srv.port);
  });
  after(async () => {
    await assoc.release();
    await srv.close();
  });

  test('matches stream as pending responses, then success', async () => {
    const r = await query(assoc, STUDY_ROOT, 'STUDY', {
      PatientID: 'P1',
      StudyInstanceUID: '',
      PatientName: '',
    });
    assert.equal(r.outcome.status, Status.Success);
    assert.equal(r.outcome.matches, 2);
    assert.equal(r.outcome.optionalKeysUnsupported, false);
    assert.deepEqual(r.matches.map((m) => m.string(TAG.StudyInstanceUID)).sort(), ['2.1', '2.2']);
    for (const m of r.matches) {
      assert.equal(m.string(TAG.QueryRetrieveLevel), 'STUDY');
      assert.equal(m.string(TAG.PatientName), 'Doe^John');
    }
  });

  test('every model at each of its levels', async () => {
    const patients = await query(assoc, PATIENT_ROOT, 'PATIENT', {
      PatientID: '',
      NumberOfPatientRelatedStudies: '',
    });
    assert.deepEqual(patients.matches.map((m) => m.string(TAG.PatientID)).sort(), ['P1', 'P2', 'P3']);
    const studies = await query(assoc, PATIENT_ROOT, 'STUDY', { PatientID: 'P1', StudyInstanceUID: '' });
    assert.equal(studies.matches.length, 2);
    const series = await query(assoc, PATIENT_ROOT, 'SERIES', {
      PatientID: 'P1',
      StudyInstanceUID: '2.1',
      SeriesInstanceUID: '',
    });
    assert.deepEqual(
      series.matches.map((m) => m.string(TAG.SeriesInstanceUID)),
      ['2.1.1'],
    );
    const images = await query(assoc, STUDY_ROOT, 'IMAGE', {
      StudyInstanceUID: '2.1',
      SeriesInstanceUID: '2.1.1',
      SOPInstanceUID: '',
    });
    assert.deepEqual(images.matches.map((m) => m.string(TAG.SOPInstanceUID)).sort(), ['2.1.1.1', '2.1.1.2']);
    const only = await query(assoc, PATIENT_STUDY_ONLY, 'PATIENT', { PatientName: 'R*', PatientID: '' });
    assert.deepEqual(
      only.matches.map((m) => m.string(TAG.PatientID)),
      ['P2'],
    );
    const onlyStudies = await query(assoc, PATIENT_STUDY_ONLY, 'STUDY', {
      PatientID: 'P3',
      StudyInstanceUID: '',
    });
    assert.deepEqual(
      onlyStudies.matches.map((m) => m.string(TAG.StudyInstanceUID)),
      ['2.4'],
    );
  });

  test('0xA900 for an Identifier the model cannot answer, with Error Comment and Offending Element', async () => {
    const cases: [InformationModel, DataSet, number, RegExp][] = [];
    const noLevel = keys({ PatientID: '' });
    cases.push([STUDY_ROOT, noLevel, TAG.QueryRetrieveLevel, /Query\/Retrieve Level .* missing/]);
    const bad = keys({ QueryRetrieveLevel: 'FOO', PatientID: '' });
    cases.push([STUDY_ROOT, bad, TAG.QueryRetrieveLevel, /no level "FOO" in Study Root/]);
    const patientInStudyRoot = keys({ QueryRetrieveLevel: 'PATIENT', PatientID: '' });
    cases.push([STUDY_ROOT, patientInStudyRoot, TAG.QueryRetrieveLevel, /no level "PATIENT"/]);
    const seriesInOnly = keys({ QueryRetrieveLevel: 'SERIES', PatientID: 'P1', StudyInstanceUID: '2.1' });
    cases.push([
      PATIENT_STUDY_ONLY,
      seriesInOnly,
      TAG.QueryRetrieveLevel,
      /no level "SERIES" in Patient\/Study Only/,
    ]);
    const noPatient = keys({ QueryRetrieveLevel: 'STUDY', StudyInstanceUID: '' });
    cases.push([PATIENT_ROOT, noPatient, TAG.PatientID, /STUDY query needs one PatientID/]);
    const wildPatient = keys({ QueryRetrieveLevel: 'STUDY', PatientID: 'P*' });
    cases.push([PATIENT_ROOT, wildPatient, TAG.PatientID, /needs one PatientID/]);
    const uidList = new DataSet();
    uidList.setString(TAG.QueryRetrieveLevel, 'SERIES');
    uidList.setString(TAG.StudyInstanceUID, ['2.1', '2.2']);
    cases.push([STUDY_ROOT, uidList, TAG.StudyInstanceUID, /SERIES query needs one StudyInstanceUID/]);
    const noSeries = keys({ QueryRetrieveLevel: 'IMAGE', StudyInstanceUID: '2.1' });
    cases.push([STUDY_ROOT, noSeries, TAG.SeriesInstanceUID, /IMAGE query needs one SeriesInstanceUID/]);
    for (const [model, identifier, offending, comment] of cases) {
      // The level is set by find() from the request: send these identifiers as they are.
      const pc = assoc.presentationContexts.find((c) => c.abstractSyntax === model.sopClasses.find);
      assert.ok(pc);
      const responses = [];
      for await (const r of assoc.request(
        pc.id,
        { commandField: 0x0020, affectedSopClassUid: model.sopClasses.find, priority: 0, hasDataSet: true },
        identifier,
      ))
        responses.push(r);
      assert.equal(responses.length, 1);
      const c = responses[0]?.command;
      assert.equal(c?.status, Status.IdentifierDoesNotMatchSopClass, comment.source);
      assert.match(c?.errorComment ?? '', comment);
      assert.ok((c?.errorComment ?? '').length <= 64);
      assert.deepEqual(c?.offendingElements, [offending]);
    }
  });

  test('0xC000 for a key value that cannot be matched as its VR says', async () => {
    const r = await query(assoc, STUDY_ROOT, 'STUDY', { StudyDate: '2024-01-01', StudyInstanceUID: '' });
    assert.equal(r.outcome.status, Status.CannotUnderstand);
    assert.equal(r.outcome.matches, 0);
    assert.match(r.outcome.errorComment ?? '', /^StudyDate: /);
    assert.deepEqual(r.outcome.offendingElements, [TAG.StudyDate]);
  });

  test('0xFF01 when the Identifier has keys of a lower level, which are returned empty', async () => {
    const r = await query(assoc, STUDY_ROOT, 'STUDY', {
      PatientID: 'P2',
      SeriesDescription: '',
      Modality: 'CT',
    });
    assert.equal(r.outcome.status, Status.Success);
    assert.equal(r.outcome.optionalKeysUnsupported, true);
    assert.equal(r.matches.length, 1);
    assert.ok(r.matches[0]?.has(TAG.Modality));
    assert.equal(r.matches[0]?.string(TAG.Modality), undefined);
  });
});

describe('C-FIND SCP options and negotiation', () => {
  const index = new MemoryArchiveIndex();
  before(() => fill(index));

  test('relational queries when the SCU asks for them by extended negotiation', async () => {
    const srv = await serve({ index });
    try {
      const hierarchical = await connect(srv.port);
      const loose = { Modality: 'MR', SeriesInstanceUID: '' };
      const refused = await query(hierarchical, STUDY_ROOT, 'SERIES', loose);
      assert.equal(refused.outcome.status, Status.IdentifierDoesNotMatchSopClass);
      await hierarchical.release();

      const opened = unwrap(
        await requestAssociation({
          host: '127.0.0.1',
          port: srv.port,
          callingAeTitle: 'SCU',
          calledAeTitle: 'PACS',
          presentationContexts: findContexts([STUDY_ROOT, PATIENT_ROOT]),
          sopClassExtendedNegotiations: [
            {
              sopClassUid: STUDY_ROOT.sopClasses.find,
              applicationInformation: encodeFindExtendedNegotiation({
                relationalQueries: true,
                combinedDateTime: true,
                fuzzySemanticPersonNames: true,
              }),
            },
          ],
        }),
      );
      // PS3.4 C.5.1.1: the reply has the request's three bytes; fuzzy matching is not agreed.
      const reply = opened.ac.userInformation.sopClassExtendedNegotiations?.find(
        (e) => e.sopClassUid === STUDY_ROOT.sopClasses.find,
      );
      assert.deepEqual([...(reply?.applicationInformation ?? [])], [1, 1, 0]);
      assert.deepEqual(parseFindExtendedNegotiation(reply?.applicationInformation).relationalQueries, true);
      const relational = new DimseAssociation(opened);
      void relational.run();
      const r = await query(relational, STUDY_ROOT, 'SERIES', loose);
      assert.equal(r.outcome.status, Status.Success);
      assert.deepEqual(r.matches.map((m) => m.string(TAG.SeriesInstanceUID)).sort(), ['2.2.1', '2.4.1']);
      // Only for the SOP class it was agreed on: Patient Root stays hierarchical.
      const patientRoot = await query(relational, PATIENT_ROOT, 'STUDY', { PatientName: 'Doe*' });
      assert.equal(patientRoot.outcome.status, Status.IdentifierDoesNotMatchSopClass);
      await relational.release();
    } finally {
      await srv.close();
    }
  });

  test('relational queries can be refused by configuration', async () => {
    const srv = await serve({ index, relationalQueries: false });
    try {
      const opened = unwrap(
        await requestAssociation({
          host: '127.0.0.1',
          port: srv.port,
          callingAeTitle: 'SCU',
          calledAeTitle: 'PACS',
          presentationContexts: findContexts([STUDY_ROOT]),
          sopClassExtendedNegotiations: [
            {
              sopClassUid: STUDY_ROOT.sopClasses.find,
              applicationInformation: encodeFindExtendedNegotiation({ relationalQueries: true }),
            },
          ],
        }),
      );
      const reply = opened.ac.userInformation.sopClassExtendedNegotiations?.[0];
      assert.deepEqual([...(reply?.applicationInformation ?? [])], [0]);
      const dimse = new DimseAssociation(opened);
      void dimse.run();
      const r = await query(dimse, STUDY_ROOT, 'SERIES', { Modality: 'MR' });
      assert.equal(r.outcome.status, Status.IdentifierDoesNotMatchSopClass);
      await dimse.release();
    } finally {
      await srv.close();
    }
  });

  test('the result limit refuses with 0xA700 before sending any match, unless the query names its entities', async () => {
    const srv = await serve({ index, maxResults: 3 });
    try {
      const assoc = await connect(srv.port);
      const all = await query(assoc, STUDY_ROOT, 'STUDY', { StudyInstanceUID: '' });
      assert.equal(all.outcome.status, Status.OutOfResources);
      assert.equal(all.outcome.matches, 0);
      assert.match(all.outcome.errorComment ?? '', /more than 3 matches/);
      const few = await query(assoc, STUDY_ROOT, 'STUDY', { PatientID: 'P1' });
      assert.equal(few.outcome.status, Status.Success);
      assert.equal(few.matches.length, 2);
      const named = new DataSet();
      named.setString(TAG.StudyInstanceUID, ['2.1', '2.2', '2.3', '2.4']);
      const listed = await query(assoc, STUDY_ROOT, 'STUDY', {}, named);
      assert.equal(listed.outcome.status, Status.Success);
      assert.equal(listed.matches.length, 4);
      await assoc.release();
    } finally {
      await srv.close();
    }
  });

  test('person names case-sensitively when configured', async () => {
    const srv = await serve({ index, caseInsensitivePN: false });
    try {
      const assoc = await connect(srv.port);
      assert.equal((await query(assoc, STUDY_ROOT, 'STUDY', { PatientName: 'DOE*' })).matches.length, 0);
      assert.equal((await query(assoc, STUDY_ROOT, 'STUDY', { PatientName: 'Doe*' })).matches.length, 2);
      await assoc.release();
    } finally {
      await srv.close();
    }
  });

  test('an index failure answers 0xC001 with the reason, and the association goes on', async () => {
    class FailingIndex extends MemoryArchiveIndex {
      override find<A>(_plan: QueryPlan<A>): AsyncIterable<A> {
        throw new Error('disk on fire');
      }
    }
    const srv = await serve({ index: new FailingIndex() });
    try {
      const assoc = await connect(srv.port);
      const r = await query(assoc, STUDY_ROOT, 'STUDY', { StudyInstanceUID: '' });
      assert.equal(r.outcome.status, Status.UnableToProcess);
      assert.match(r.outcome.errorComment ?? '', /disk on fire/);
      assert.equal((await query(assoc, STUDY_ROOT, 'STUDY', {})).outcome.status, Status.UnableToProcess);
      await assoc.release();
    } finally {
      await srv.close();
    }
  });

  test('C-CANCEL stops the matches with 0xFE00', async () => {
    // An index slower than the network: the SCP is still answering when the C-CANCEL comes.
    class SlowIndex extends MemoryArchiveIndex {
      override async *find<A>(plan: QueryPlan<A>, signal?: AbortSignal): AsyncIterable<A> {
        for await (const answer of super.find(plan, signal)) {
          await new Promise((resolve) => setTimeout(resolve, 1));
          yield answer;
        }
      }
    }
    const big = new SlowIndex();
    await big.withTransaction(async (tx) => {
      for (let i = 1; i <= 3000; i++) {
        const e = entryOf(makeDataSet({ studyUid: '5.1', seriesUid: '5.1.1', sopUid: `5.1.1.${i}` }));
        await tx.insertInstance(e.record, e.headers);
      }
    });
    const srv = await serve({ index: big });
    try {
      const assoc = await connect(srv.port);
      const controller = new AbortController();
      let seen = 0;
      const running = find(
        assoc,
        keys({ StudyInstanceUID: '5.1', SeriesInstanceUID: '5.1.1', SOPInstanceUID: '' }),
        { level: 'IMAGE', signal: controller.signal },
      );
      for await (const _ of running) if (++seen === 5) controller.abort();
      const outcome = unwrap(await running.outcome);
      assert.equal(outcome.status, Status.Cancel);
      assert.ok(outcome.matches >= 5 && outcome.matches < 3000, `${outcome.matches} matches`);
      // The association is still usable.
      const again = await query(assoc, STUDY_ROOT, 'STUDY', { StudyInstanceUID: '5.1' });
      assert.equal(again.matches.length, 1);
      await assoc.release();
    } finally {
      await srv.close();
    }
  });

  test('an SCU without a FIND context gets ERR_NO_CONTEXT', async () => {
    const srv = await serve({ index });
    try {
      const assoc = await connect(srv.port, [STUDY_ROOT]);
      const r = await find(assoc, new DataSet(), {
        sopClassUid: PATIENT_ROOT.sopClasses.find,
        level: 'PATIENT',
      }).outcome;
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.error.code, 'ERR_NO_CONTEXT');
      await assoc.release();
    } finally {
      await srv.close();
    }
  });
});

describe('query keys (-k)', () => {
  test('keywords, tags and sequence items', () => {
    const parsed = [
      'PatientName=DOE*',
      '0020,000D=1.2.3',
      '(0008,0061)',
      'ReferencedSeriesSequence[0].SeriesInstanceUID=9.8',
    ].map((t) => unwrap(parseKeyAssignment(t)));
    const ds = buildIdentifier(parsed);
    assert.equal(ds.string(TAG.PatientName), 'DOE*');
    assert.equal(ds.string(TAG.StudyInstanceUID), '1.2.3');
    assert.ok(ds.has(TAG.ModalitiesInStudy));
    assert.equal(ds.get(TAG.ModalitiesInStudy)?.vr, 'CS');
    const items = ds.sequence(TAG.ReferencedSeriesSequence);
    assert.equal(items?.length, 1);
    assert.equal(items?.[0]?.string(TAG.SeriesInstanceUID), '9.8');
    assert.equal(ds.has(TAG.SpecificCharacterSet), false);
  });

  test('several values, numbers, an empty sequence, and UTF-8 for non-ASCII text', () => {
    const ds = buildIdentifier(
      [
        'StudyInstanceUID=1.2\\1.3',
        'NumberOfStudyRelatedInstances',
        'ProcedureCodeSequence',
        'PatientName=山田*',
      ].map((t) => unwrap(parseKeyAssignment(t))),
    );
    assert.deepEqual(ds.strings(TAG.StudyInstanceUID), ['1.2', '1.3']);
    assert.deepEqual(ds.sequence(TAG.ProcedureCodeSequence), []);
    assert.deepEqual(ds.strings(TAG.SpecificCharacterSet), ['ISO_IR 192']);
    assert.equal(ds.string(TAG.PatientName), '山田*');
  });

  test('what is refused, with the reason', () => {
    for (const [text, reason] of [
      ['NoSuchKeyword=1', /neither a DICOM keyword nor a tag/],
      ['=1', /no attribute/],
      ['PatientName.PatientID=1', /not a sequence/],
      ['PatientName[0]', /not a sequence/],
      ['ProcedureCodeSequence=X', /is a sequence/],
    ] as const) {
      const r = parseKeyAssignment(text);
      assert.equal(r.ok, false, text);
      assert.match(r.ok ? '' : r.error, reason);
    }
    assert.throws(() => buildIdentifier([unwrap(parseKeyAssignment('Rows=abc'))]), /not a number/);
  });
});
