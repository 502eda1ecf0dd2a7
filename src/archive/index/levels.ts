/**
 * Which level of the information model each top-level attribute belongs to, following the
 * modules of the composite IODs (PS3.3 C.7): Patient and Clinical Trial Subject at patient level;
 * General Study, Patient Study and Clinical Trial Study at study level; General Series, Clinical
 * Trial Series, General Equipment and Frame of Reference at series level; everything else
 * (private elements too) at instance level. Used by ingest (extract.ts) and C-FIND (query.ts).
 */
import { TAG } from '../../dicom/dictionary.js';
import type { Tag } from '../../dicom/tag.js';

type Keyword = keyof typeof TAG;

// Repeated at every level so that each document decodes on its own.
const EVERY_LEVEL: readonly Keyword[] = ['SpecificCharacterSet', 'TimezoneOffsetFromUTC'];

// PS3.3 C.7.1.1 Patient, C.7.1.3 Clinical Trial Subject.
const PATIENT_LEVEL: readonly Keyword[] = [
  'PatientName',
  'PatientID',
  'IssuerOfPatientID',
  'IssuerOfPatientIDQualifiersSequence',
  'TypeOfPatientID',
  'PatientBirthDate',
  'PatientBirthTime',
  'PatientBirthDateInAlternativeCalendar',
  'PatientDeathDateInAlternativeCalendar',
  'PatientAlternativeCalendar',
  'PatientSex',
  'QualityControlSubject',
  'OtherPatientIDs',
  'OtherPatientIDsSequence',
  'OtherPatientNames',
  'PatientBirthName',
  'PatientMotherBirthName',
  'MedicalRecordLocator',
  'EthnicGroup',
  'EthnicGroupCodeSequence',
  'PatientComments',
  'PatientSpeciesDescription',
  'PatientSpeciesCodeSequence',
  'PatientBreedDescription',
  'PatientBreedCodeSequence',
  'BreedRegistrationSequence',
  'StrainDescription',
  'StrainNomenclature',
  'StrainCodeSequence',
  'StrainAdditionalInformation',
  'StrainStockSequence',
  'GeneticModificationsSequence',
  'ResponsiblePerson',
  'ResponsiblePersonRole',
  'ResponsibleOrganization',
  'PatientIdentityRemoved',
  'DeidentificationMethod',
  'DeidentificationMethodCodeSequence',
  'ReferencedPatientSequence',
  'ReferencedPatientPhotoSequence',
  'PatientAddress',
  'CountryOfResidence',
  'RegionOfResidence',
  'PatientTelephoneNumbers',
  'PatientTelecomInformation',
  'MilitaryRank',
  'BranchOfService',
  'PatientReligiousPreference',
  'PatientPrimaryLanguageCodeSequence',
  'ClinicalTrialSponsorName',
  'ClinicalTrialProtocolID',
  'ClinicalTrialProtocolName',
  'ClinicalTrialSiteID',
  'ClinicalTrialSiteName',
  'ClinicalTrialSubjectID',
  'ClinicalTrialSubjectReadingID',
  'IssuerOfClinicalTrialSubjectID',
];

// PS3.3 C.7.2.1 General Study, C.7.2.2 Patient Study, C.7.2.3 Clinical Trial Study.
const STUDY_LEVEL: readonly Keyword[] = [
  'StudyInstanceUID',
  'StudyDate',
  'StudyTime',
  'ReferringPhysicianName',
  'ReferringPhysicianIdentificationSequence',
  'ConsultingPhysicianName',
  'ConsultingPhysicianIdentificationSequence',
  'StudyID',
  'AccessionNumber',
  'IssuerOfAccessionNumberSequence',
  'StudyDescription',
  'PhysiciansOfRecord',
  'PhysiciansOfRecordIdentificationSequence',
  'NameOfPhysiciansReadingStudy',
  'PhysiciansReadingStudyIdentificationSequence',
  'RequestingServiceCodeSequence',
  'ReferencedStudySequence',
  'ProcedureCodeSequence',
  'ReasonForPerformedProcedureCodeSequence',
  'AdmittingDiagnosesDescription',
  'AdmittingDiagnosesCodeSequence',
  'PatientAge',
  'PatientSize',
  'PatientSizeCodeSequence',
  'PatientWeight',
  'PatientBodyMassIndex',
  'MeasuredAPDimension',
  'MeasuredLateralDimension',
  'Occupation',
  'AdditionalPatientHistory',
  'AdmissionID',
  'IssuerOfAdmissionIDSequence',
  'ServiceEpisodeID',
  'IssuerOfServiceEpisodeIDSequence',
  'ServiceEpisodeDescription',
  'PatientSexNeutered',
  'ReasonForVisit',
  'ReasonForVisitCodeSequence',
  'MedicalAlerts',
  'Allergies',
  'SmokingStatus',
  'PregnancyStatus',
  'LastMenstrualDate',
  'PatientState',
  'ClinicalTrialTimePointID',
  'ClinicalTrialTimePointDescription',
  'LongitudinalTemporalOffsetFromEvent',
  'LongitudinalTemporalEventType',
  'ConsentForClinicalTrialUseSequence',
];

// PS3.3 C.7.3.1 General Series, C.7.3.2 Clinical Trial Series, C.7.5.1 General Equipment, C.7.4.1 Frame of Reference.
const SERIES_LEVEL: readonly Keyword[] = [
  'Modality',
  'SeriesInstanceUID',
  'SeriesNumber',
  'Laterality',
  'SeriesDate',
  'SeriesTime',
  'PerformingPhysicianName',
  'PerformingPhysicianIdentificationSequence',
  'ProtocolName',
  'SeriesDescription',
  'SeriesDescriptionCodeSequence',
  'OperatorsName',
  'OperatorIdentificationSequence',
  'ReferencedPerformedProcedureStepSequence',
  'RelatedSeriesSequence',
  'BodyPartExamined',
  'PatientPosition',
  'SmallestPixelValueInSeries',
  'LargestPixelValueInSeries',
  'RequestAttributesSequence',
  'PerformedProcedureStepID',
  'PerformedProcedureStepStartDate',
  'PerformedProcedureStepStartTime',
  'PerformedProcedureStepEndDate',
  'PerformedProcedureStepEndTime',
  'PerformedProcedureStepDescription',
  'PerformedProtocolCodeSequence',
  'CommentsOnThePerformedProcedureStep',
  'AnatomicalOrientationType',
  'ClinicalTrialCoordinatingCenterName',
  'ClinicalTrialSeriesID',
  'ClinicalTrialSeriesDescription',
  'Manufacturer',
  'InstitutionName',
  'InstitutionAddress',
  'StationName',
  'InstitutionalDepartmentName',
  'InstitutionalDepartmentTypeCodeSequence',
  'ManufacturerModelName',
  'ManufacturerModelVersion',
  'DeviceSerialNumber',
  'SoftwareVersions',
  'FrameOfReferenceUID',
  'PositionReferenceIndicator',
];

export type Level = 'patient' | 'study' | 'series' | 'instance';

const LEVEL_OF = new Map<Tag, Level>();
for (const [level, keywords] of [
  ['patient', PATIENT_LEVEL],
  ['study', STUDY_LEVEL],
  ['series', SERIES_LEVEL],
] as const) {
  for (const k of keywords) LEVEL_OF.set(TAG[k], level);
}
/** Attributes kept at every level (SpecificCharacterSet, TimezoneOffsetFromUTC). */
export const EVERY_LEVEL_TAGS: ReadonlySet<Tag> = new Set<Tag>(EVERY_LEVEL.map((k) => TAG[k]));

/** The level whose document holds a top-level attribute (SpecificCharacterSet and TimezoneOffsetFromUTC are in all four). */
export function levelOf(tag: Tag): Level {
  return LEVEL_OF.get(tag) ?? 'instance';
}
