/**
 * Synthetic but realistic objects for tests and benchmarks: CT images with a full header and
 * 16-bit pixel data, written as Part-10 files. Deterministic for a given seed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, generateUid, UID } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';

export interface CtOptions {
  readonly patientId?: string;
  readonly patientName?: string;
  readonly patientBirthDate?: string;
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;
  readonly sopInstanceUid?: string;
  readonly accessionNumber?: string;
  readonly studyDate?: string;
  readonly modality?: string;
  readonly instanceNumber?: number;
  readonly seriesNumber?: number;
  readonly rows?: number;
  readonly columns?: number;
  readonly studyDescription?: string;
}

/** A CT Image Storage data set with the attributes a modality writes and 16-bit pixels. */
export function makeCtDataSet(o: CtOptions = {}): DataSet {
  const rows = o.rows ?? 512;
  const cols = o.columns ?? 512;
  const n = o.instanceNumber ?? 1;
  const ds = new DataSet();
  ds.setString(TAG.SpecificCharacterSet, 'ISO_IR 100');
  ds.setString(TAG.ImageType, ['ORIGINAL', 'PRIMARY', 'AXIAL']);
  ds.setString(TAG.SOPClassUID, UID.CTImageStorage);
  ds.setString(TAG.SOPInstanceUID, o.sopInstanceUid ?? generateUid());
  ds.setString(TAG.StudyDate, o.studyDate ?? '20240115');
  ds.setString(TAG.SeriesDate, o.studyDate ?? '20240115');
  ds.setString(TAG.StudyTime, '101500');
  ds.setString(TAG.AccessionNumber, o.accessionNumber ?? 'ACC0001');
  ds.setString(TAG.Modality, o.modality ?? 'CT');
  ds.setString(TAG.Manufacturer, 'PACS-TEST');
  ds.setString(TAG.InstitutionName, 'Test Hospital');
  ds.setString(TAG.ReferringPhysicianName, 'Referrer^Rita');
  ds.setString(TAG.StudyDescription, o.studyDescription ?? 'CT CHEST');
  ds.setString(TAG.SeriesDescription, 'AXIAL 1mm');
  ds.setString(TAG.PatientName, o.patientName ?? 'Doe^John');
  ds.setString(TAG.PatientID, o.patientId ?? 'PID0001');
  ds.setString(TAG.PatientBirthDate, o.patientBirthDate ?? '19700101');
  ds.setString(TAG.PatientSex, 'M');
  ds.setString(TAG.BodyPartExamined, 'CHEST');
  ds.setNumbers(TAG.SliceThickness, 1);
  ds.setNumbers(TAG.KVP, 120);
  ds.setString(TAG.StudyInstanceUID, o.studyInstanceUid ?? generateUid());
  ds.setString(TAG.SeriesInstanceUID, o.seriesInstanceUid ?? generateUid());
  ds.setString(TAG.StudyID, '1');
  ds.setNumbers(TAG.SeriesNumber, o.seriesNumber ?? 1);
  ds.setNumbers(TAG.InstanceNumber, n);
  ds.setNumbers(TAG.ImagePositionPatient, [-250, -250, -n]);
  ds.setNumbers(TAG.ImageOrientationPatient, [1, 0, 0, 0, 1, 0]);
  ds.setString(TAG.FrameOfReferenceUID, '1.2.826.0.1.3680043.8.498.1');
  ds.setNumbers(TAG.SliceLocation, -n);
  ds.setNumbers(TAG.SamplesPerPixel, 1);
  ds.setString(TAG.PhotometricInterpretation, 'MONOCHROME2');
  ds.setNumbers(TAG.Rows, rows);
  ds.setNumbers(TAG.Columns, cols);
  ds.setNumbers(TAG.PixelSpacing, [0.7, 0.7]);
  ds.setNumbers(TAG.BitsAllocated, 16);
  ds.setNumbers(TAG.BitsStored, 12);
  ds.setNumbers(TAG.HighBit, 11);
  ds.setNumbers(TAG.PixelRepresentation, 0);
  ds.setNumbers(TAG.WindowCenter, 40);
  ds.setNumbers(TAG.WindowWidth, 400);
  ds.setNumbers(TAG.RescaleIntercept, -1024);
  ds.setNumbers(TAG.RescaleSlope, 1);
  const pixels = new Uint8Array(rows * cols * 2);
  // A cheap deterministic pattern (not all zeros, so corruption shows).
  let x = (n * 2654435761) >>> 0;
  for (let i = 0; i < pixels.length; i += 2) {
    x = (x * 1103515245 + 12345) >>> 0;
    pixels[i] = x >>> 24;
    pixels[i + 1] = (x >>> 16) & 0x0f;
  }
  ds.setBytes(TAG.PixelData, pixels, 'OW');
  return ds;
}

/** Writes a CT series of `count` instances as Part-10 files (Explicit VR LE) into `dir`; returns their paths. */
export function writeCtSeries(dir: string, count: number, o: CtOptions = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const studyInstanceUid = o.studyInstanceUid ?? generateUid();
  const seriesInstanceUid = o.seriesInstanceUid ?? generateUid();
  const paths: string[] = [];
  for (let i = 1; i <= count; i++) {
    const ds = makeCtDataSet({ ...o, studyInstanceUid, seriesInstanceUid, instanceNumber: i });
    const p = join(dir, `ct-${String(i).padStart(5, '0')}.dcm`);
    writeFileSync(p, encodePart10(ds, EXPLICIT_VR_LE));
    paths.push(p);
  }
  return paths;
}
