/**
 * What a C-MOVE or C-GET retrieves: the instances named by the unique keys of its Identifier
 * (Patient ID, Study, Series and SOP Instance UIDs: PS3.4 C.4.2.1.4, C.4.3.1.4), with what sending
 * each one needs (its file, SOP class and stored transfer syntax). Read from the index in pages
 * by instance id, so that a retrieve of any size holds one page at a time; a retrieve interrupted
 * (a restart) resumes after the last instance it sent.
 *
 * On the SQL index this is a join on the indexed key columns. Any other index (the in-memory one
 * of service tests) is served through the port: an IMAGE-level query (find) names the instances,
 * findInstance() gives their files.
 */
import { type Kysely, sql } from 'kysely';
import { DataSet } from '../../dicom/dataset.js';
import { TAG } from '../../dicom/dictionary.js';
import type { ArchiveIndex } from './archive-index.js';
import { planQuery, type QueryLevel } from './query.js';
import type { IndexDatabase } from './schema.js';
import { SqlArchiveIndex } from './sql-index.js';

/**
 * The keys of a retrieve. Each key given narrows the selection (all must hold); a UID list matches
 * any of its UIDs. Keys of levels above the retrieve level may be left out (relational retrieval).
 */
export interface RetrieveKeys {
  readonly level: QueryLevel;
  readonly patientId?: string;
  readonly studyInstanceUids?: readonly string[];
  readonly seriesInstanceUids?: readonly string[];
  readonly sopInstanceUids?: readonly string[];
}

/** One instance to send. */
export interface RetrieveInstance {
  /** Its position in the retrieve: instances() continues after it. */
  readonly position: number;
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  readonly transferSyntaxUid: string;
  /** The object file, relative to the data folder (ObjectStore.absolutePath). */
  readonly path: string;
  readonly size: number;
  /** The instance's study and series (for URLs and archive entry names: WADO-RS). */
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;
}

/** What a retrieve covers, counted before anything is sent. */
export interface RetrieveSummary {
  readonly instances: number;
  readonly bytes: number;
  /** The last position now: instances indexed later are left out of this retrieve. */
  readonly lastPosition: number;
  /** The distinct (SOP class, transfer syntax) pairs: what to propose to the destination. */
  readonly syntaxes: readonly { readonly sopClassUid: string; readonly transferSyntaxUid: string }[];
}

export interface InstanceRange {
  /** Start after this position (default: from the first). */
  readonly after?: number;
  /** Stop at this position (RetrieveSummary.lastPosition), so later arrivals are not counted. */
  readonly upTo?: number;
}

/** The instances of a retrieve, from any index. */
export interface RetrieveSource {
  summarize(keys: RetrieveKeys): Promise<RetrieveSummary>;
  instances(keys: RetrieveKeys, range?: InstanceRange): AsyncIterable<RetrieveInstance>;
}

const PAGE = 500;

export function retrieveSource(index: ArchiveIndex): RetrieveSource {
  return index instanceof SqlArchiveIndex ? new SqlRetrieveSource(index.db) : new PortRetrieveSource(index);
}

/** True when the keys name nothing (an empty UID list): such a retrieve matches no instance. */
function namesNothing(keys: RetrieveKeys): boolean {
  return [keys.studyInstanceUids, keys.seriesInstanceUids, keys.sopInstanceUids].some(
    (list) => list !== undefined && list.length === 0,
  );
}

type Db = Kysely<IndexDatabase>;

class SqlRetrieveSource implements RetrieveSource {
  constructor(private readonly db: Db) {}

  private selection(keys: RetrieveKeys) {
    let q = this.db
      .selectFrom('instance as i')
      .innerJoin('series as se', 'se.id', 'i.series_fk')
      .innerJoin('study as st', 'st.id', 'i.study_fk');
    if (keys.patientId !== undefined) q = q.where('st.patient_id', '=', keys.patientId);
    if (keys.studyInstanceUids !== undefined)
      q = q.where('st.study_instance_uid', 'in', [...keys.studyInstanceUids]);
    if (keys.seriesInstanceUids !== undefined)
      q = q.where('se.series_instance_uid', 'in', [...keys.seriesInstanceUids]);
    if (keys.sopInstanceUids !== undefined)
      q = q.where('i.sop_instance_uid', 'in', [...keys.sopInstanceUids]);
    return q;
  }

  async summarize(keys: RetrieveKeys): Promise<RetrieveSummary> {
    if (namesNothing(keys)) return { instances: 0, bytes: 0, lastPosition: 0, syntaxes: [] };
    const totals = await this.selection(keys)
      .select([
        (eb) => eb.fn.countAll<number>().as('n'),
        sql<number | null>`sum(i.size)`.as('bytes'),
        (eb) => eb.fn.max('i.id').as('last'),
      ])
      .executeTakeFirstOrThrow();
    const syntaxes = await this.selection(keys)
      .select(['i.sop_class_uid', 'i.transfer_syntax_uid'])
      .distinct()
      .orderBy('i.sop_class_uid')
      .orderBy('i.transfer_syntax_uid')
      .execute();
    return {
      instances: Number(totals.n),
      bytes: Number(totals.bytes ?? 0),
      lastPosition: Number(totals.last ?? 0),
      syntaxes: syntaxes.map((s) => ({
        sopClassUid: s.sop_class_uid,
        transferSyntaxUid: s.transfer_syntax_uid,
      })),
    };
  }

  async *instances(keys: RetrieveKeys, range: InstanceRange = {}): AsyncIterable<RetrieveInstance> {
    if (namesNothing(keys)) return;
    let after = range.after ?? 0;
    for (;;) {
      let q = this.selection(keys)
        .select([
          'i.id',
          'i.sop_instance_uid',
          'i.sop_class_uid',
          'i.transfer_syntax_uid',
          'i.path',
          'i.size',
          'st.study_instance_uid',
          'se.series_instance_uid',
        ])
        .where('i.id', '>', after)
        .orderBy('i.id')
        .limit(PAGE);
      if (range.upTo !== undefined) q = q.where('i.id', '<=', range.upTo);
      const rows = await q.execute();
      for (const r of rows)
        yield {
          position: Number(r.id),
          sopInstanceUid: r.sop_instance_uid,
          sopClassUid: r.sop_class_uid,
          transferSyntaxUid: r.transfer_syntax_uid,
          path: r.path,
          size: Number(r.size),
          studyInstanceUid: r.study_instance_uid,
          seriesInstanceUid: r.series_instance_uid,
        };
      if (rows.length < PAGE) return;
      after = Number(rows[rows.length - 1]?.id);
    }
  }
}

/** Through the index port: positions are the order of the IMAGE-level answers (1, 2, ...). */
class PortRetrieveSource implements RetrieveSource {
  constructor(private readonly index: ArchiveIndex) {}

  async summarize(keys: RetrieveKeys): Promise<RetrieveSummary> {
    let instances = 0;
    let bytes = 0;
    const pairs = new Map<string, { sopClassUid: string; transferSyntaxUid: string }>();
    for await (const i of this.instances(keys)) {
      instances++;
      bytes += i.size;
      pairs.set(`${i.sopClassUid} ${i.transferSyntaxUid}`, {
        sopClassUid: i.sopClassUid,
        transferSyntaxUid: i.transferSyntaxUid,
      });
    }
    return { instances, bytes, lastPosition: instances, syntaxes: [...pairs.values()] };
  }

  async *instances(keys: RetrieveKeys, range: InstanceRange = {}): AsyncIterable<RetrieveInstance> {
    if (namesNothing(keys)) return;
    const identifier = new DataSet();
    identifier.setString(TAG.QueryRetrieveLevel, 'IMAGE');
    if (keys.patientId !== undefined) identifier.setString(TAG.PatientID, keys.patientId);
    if (keys.studyInstanceUids) identifier.setString(TAG.StudyInstanceUID, [...keys.studyInstanceUids]);
    if (keys.seriesInstanceUids) identifier.setString(TAG.SeriesInstanceUID, [...keys.seriesInstanceUids]);
    identifier.setString(TAG.SOPInstanceUID, keys.sopInstanceUids ? [...keys.sopInstanceUids] : '');
    let position = 0;
    for await (const answer of this.index.find(planQuery('IMAGE', identifier))) {
      position++;
      if (position <= (range.after ?? 0)) continue;
      if (range.upTo !== undefined && position > range.upTo) return;
      const uid = answer.string(TAG.SOPInstanceUID);
      const found = uid === undefined ? undefined : await this.index.findInstance(uid);
      if (found === undefined) continue; // deleted since
      yield {
        position,
        sopInstanceUid: found.sopInstanceUid,
        sopClassUid: found.sopClassUid,
        transferSyntaxUid: found.transferSyntaxUid,
        path: found.path,
        size: found.size,
        studyInstanceUid: found.studyInstanceUid,
        seriesInstanceUid: found.seriesInstanceUid,
      };
    }
  }
}
