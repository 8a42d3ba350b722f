/**
 * De-identification of exports (DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile)
 * with a local key map (store: pseudonyms), so that de-identified exports of one patient, study or
 * series stay linked to each other and the lab can re-identify them from the library, never from the
 * files.
 *
 * DICOM: dcmjs's anonymizer (`anonymizer.cleanTags`) empties the attributes of its list, which
 * follows the profile's Table E.1-1 through the CTP names. 103 of its 250-odd names are old CTP
 * spellings that its own dictionary no longer knows (e.g. "RefStudySeq", "OperatorName"): those it
 * silently skips. So we pass it its list plus BASIC_PROFILE_EXTRA, the current keywords of the Table
 * E.1-1 attributes an MR export can carry, and do what cleanTags does not:
 *  - UIDs (action U): every UI value outside the DICOM root 1.2.840.10008 (class and transfer-syntax
 *    UIDs stay) is replaced by a pseudonymous 2.25 UID from the key map: the same original always
 *    gets the same replacement, so a series keeps one Series/Study/Frame of Reference UID;
 *  - patient: PatientName and PatientID become one pseudonym (e.g. ANON-3F9C21A7) per original
 *    (PatientID, PatientName);
 *  - sequences are cleaned recursively; private attributes (odd groups), overlay data/comments and
 *    curves are removed;
 *  - PatientIdentityRemoved = YES, DeidentificationMethod and its code sequence (113100 Basic
 *    Application Confidentiality Profile; 113105 Clean Descriptors Option when the exporter re-adds
 *    descriptions it generated itself, which carry no identifying text).
 * Dates and times the profile lists are emptied (action Z), the same for every instance.
 *
 * Non-DICOM exports (NIfTI, PNG, model cards, ONNX metadata) carry no patient attributes; what can
 * identify there is a data source (a file path, a series UID), which becomes a pseudonym too.
 */
import { randomBytes } from 'node:crypto';
import dcmjs from 'dcmjs';
import type { ModelCard } from '../contract/domain.js';
import type { PseudonymKind } from '../store/db.js';
import { newUid } from './uids.js';

/** The key map as the de-identifier needs it (the store's PseudonymRepo). */
export interface KeyMap {
  obtain(kind: PseudonymKind, original: string, make: () => string): string;
}

/** The DICOM root: UIDs under it name standard things (SOP classes, transfer syntaxes, codes), not data. */
const DICOM_ROOT = '1.2.840.10008.';

/**
 * Keywords of Table E.1-1 attributes that dcmjs's list misses or misspells (each must be in dcmjs's
 * dictionary, which spells retired attributes RETIRED_<keyword>: a test checks it). Action X/Z/D: all
 * are emptied here (zero length is allowed for each).
 */
export const BASIC_PROFILE_EXTRA = [
  // patient
  'OtherPatientIDsSequence',
  'PatientTelephoneNumbers',
  'PatientTelecomInformation',
  'ReferencedPatientSequence',
  'ReferencedPatientPhotoSequence',
  'ReferencedPatientAliasSequence',
  'PatientInsurancePlanCodeSequence',
  'PatientPrimaryLanguageCodeSequence',
  'PatientPrimaryLanguageModifierCodeSequence',
  'Allergies',
  'RETIRED_InsurancePlanIdentification',
  'PatientInstitutionResidence',
  'ConfidentialityConstraintOnPatientDataDescription',
  // physicians, operators, institution
  'ReferringPhysicianAddress',
  'ReferringPhysicianTelephoneNumbers',
  'ReferringPhysicianIdentificationSequence',
  'ConsultingPhysicianName',
  'ConsultingPhysicianIdentificationSequence',
  'PhysiciansOfRecord',
  'PhysiciansOfRecordIdentificationSequence',
  'PerformingPhysicianIdentificationSequence',
  'NameOfPhysiciansReadingStudy',
  'PhysiciansReadingStudyIdentificationSequence',
  'OperatorsName',
  'OperatorIdentificationSequence',
  'InstitutionCodeSequence',
  'InstitutionalDepartmentTypeCodeSequence',
  'StationAETitle',
  'RetrieveAETitle',
  // study, request, procedure steps
  'ReferencedStudySequence',
  'ReferencedPerformedProcedureStepSequence',
  'ReferencedImageSequence',
  'SourceImageSequence',
  'RequestAttributesSequence',
  'RequestedProcedureID',
  'RequestedProcedureComments',
  'RETIRED_ReasonForStudy',
  'RETIRED_ReasonForTheImagingServiceRequest',
  'ReasonForTheRequestedProcedure',
  'RETIRED_StudyComments',
  'RETIRED_StudyIDIssuer',
  'RETIRED_IssuerOfAdmissionID',
  'AdmittingDiagnosesDescription',
  'AdmittingDiagnosesCodeSequence',
  'FillerOrderNumberImagingServiceRequest',
  'PlacerOrderNumberImagingServiceRequest',
  'PerformedProcedureStepID',
  'PerformedProcedureStepDescription',
  'PerformedProcedureStepStartDate',
  'PerformedProcedureStepStartTime',
  'PerformedProcedureStepEndDate',
  'PerformedProcedureStepEndTime',
  'PerformedStationAETitle',
  'PerformedStationName',
  'PerformedLocation',
  'CommentsOnThePerformedProcedureStep',
  'ScheduledProcedureStepDescription',
  'ScheduledProcedureStepStartDate',
  'ScheduledProcedureStepStartTime',
  'ScheduledPerformingPhysicianName',
  'ScheduledStationAETitle',
  'ScheduledStationName',
  'AcquisitionContextSequence',
  'OriginalAttributesSequence',
  'ModifiedAttributesSequence',
  // dates, times, devices, free text
  'AcquisitionDateTime',
  'InstanceCreationTime',
  'InstanceCoercionDateTime',
  'TimeOfSecondaryCapture',
  'DateOfInstallation',
  'DateOfManufacture',
  'DeviceDescription',
  'UniqueDeviceIdentifier',
  'RETIRED_AcquisitionComments',
  'RETIRED_ImagePresentationComments',
  'FrameComments',
  'RETIRED_IdentifyingComments',
  'RETIRED_ModifyingDeviceID',
  'RETIRED_ModifiedImageDescription',
  'ContentCreatorName',
  'ContentSequence',
  'VerifyingObserverIdentificationCodeSequence',
  'DigitalSignaturesSequence',
  'TextString',
  'RETIRED_TextComments',
  'RETIRED_TopicTitle',
] as const;

const PATIENT_NAME = '00100010';
const PATIENT_ID = '00100020';

type DictElement = { vr: string; Value?: unknown[] };
type Dict = Record<string, DictElement>;

const hex8 = () => randomBytes(4).toString('hex').toUpperCase();

/**
 * Pseudonyms from the key map. Patients become ANON-<8 hex>, data sources source-<8 hex>, UIDs new
 * random 2.25 UIDs: random rather than derived from the identity, so a pseudonym reveals nothing
 * without the key map.
 */
export class Deidentifier {
  constructor(private readonly keys: KeyMap) {}

  patient(id: string, name: string): string {
    return this.keys.obtain('patient', `${id}\\${name}`, () => `ANON-${hex8()}`);
  }

  uid(original: string): string {
    return this.keys.obtain('uid', original, newUid);
  }

  /** A data source (path, 'series:…', folder): 'sample' (the bundled public template) stays as it is. */
  source(original: string): string {
    if (original === 'sample') return original;
    return this.keys.obtain('source', original, () => `source-${hex8()}`);
  }

  /** A model card without its data source's path or series UIDs. */
  card(card: ModelCard): ModelCard {
    return { ...card, data: { ...card.data, source: this.source(card.data.source) } };
  }

  /**
   * De-identify a denaturalised dcmjs data set in place (top level and every sequence item).
   * `descriptions`: attributes the exporter generated itself (no identifying text), set again after
   * cleaning under the Clean Descriptors Option.
   */
  dicom(dict: Dict, descriptions: Record<string, string> = {}): void {
    const textOf = (e: DictElement | undefined): string => {
      const v = e?.Value?.[0];
      // dcmjs keeps a PN as a String object (its JSON form is {Alphabetic}), or as {Alphabetic: …}
      if (typeof v === 'string' || v instanceof String) return v.toString();
      if (v && typeof v === 'object' && 'Alphabetic' in v)
        return String((v as { Alphabetic: unknown }).Alphabetic);
      return '';
    };
    const pseudonym = this.patient(textOf(dict[PATIENT_ID]), textOf(dict[PATIENT_NAME]));
    this.clean(dict, pseudonym);
    const set = (keyword: string, value: unknown[]) => {
      const tag = tagOf(keyword);
      dict[tag] = { vr: vrOf(keyword), Value: value };
    };
    set('PatientName', [{ Alphabetic: pseudonym }]);
    set('PatientID', [pseudonym]);
    set('PatientIdentityRemoved', ['YES']);
    const cleanDescriptors = Object.keys(descriptions).length > 0;
    for (const [k, v] of Object.entries(descriptions)) set(k, [v]);
    // LO, each value ≤ 64 characters
    set('DeidentificationMethod', [
      'DICOM PS3.15 E.1 Basic Application Confidentiality Profile',
      'dcmjs anonymizer; UIDs, patient, sources from a local key map',
      ...(cleanDescriptors ? ['descriptions generated by KD-MRI Workstation kept'] : []),
    ]);
    const code = (value: string, meaning: string) => ({
      [tagOf('CodeValue')]: { vr: 'SH', Value: [value] },
      [tagOf('CodingSchemeDesignator')]: { vr: 'SH', Value: ['DCM'] },
      [tagOf('CodeMeaning')]: { vr: 'LO', Value: [meaning] },
    });
    set('DeidentificationMethodCodeSequence', [
      code('113100', 'Basic Application Confidentiality Profile'),
      ...(cleanDescriptors ? [code('113105', 'Clean Descriptors Option')] : []),
    ]);
  }

  private clean(dict: Dict, pseudonym: string): void {
    dcmjs.anonymizer.cleanTags(dict, { [PATIENT_NAME]: pseudonym, [PATIENT_ID]: pseudonym }, PROFILE_NAMES);
    for (const tag of Object.keys(dict)) {
      const group = parseInt(tag.slice(0, 4), 16);
      const element = parseInt(tag.slice(4), 16);
      const isOverlay = (group & 0xff00) === 0x6000 && (element === 0x3000 || element === 0x4000);
      const isCurve = (group & 0xff00) === 0x5000;
      if (group % 2 === 1 || isOverlay || isCurve) {
        delete dict[tag];
        continue;
      }
      const e = dict[tag];
      if (e.vr === 'UI' && e.Value) {
        e.Value = e.Value.map((v) =>
          typeof v === 'string' && v && !v.startsWith(DICOM_ROOT) ? this.uid(v) : v,
        );
      } else if (e.vr === 'SQ' && e.Value) {
        for (const item of e.Value) if (item && typeof item === 'object') this.clean(item as Dict, pseudonym);
      }
    }
  }
}

interface NameEntry {
  tag: string;
  vr: string;
}
const nameMap = (): Record<string, NameEntry | undefined> =>
  (dcmjs.data.DicomMetaDictionary as unknown as { nameMap: Record<string, NameEntry | undefined> }).nameMap;

/** 'GGGGEEEE' of a keyword (dcmjs's dictionary); throws for an unknown keyword. */
export function tagOf(keyword: string): string {
  const e = nameMap()[keyword];
  if (!e) throw new Error(`DICOM keyword ${keyword} is not in dcmjs's dictionary`);
  return e.tag.replace(/[(),]/g, '').toUpperCase();
}
function vrOf(keyword: string): string {
  return nameMap()[keyword]?.vr ?? 'UN';
}

/** What cleanTags empties: dcmjs's own list and our additions. */
const PROFILE_NAMES = [...new Set([...dcmjs.anonymizer.getTagsNameToEmpty(), ...BASIC_PROFILE_EXTRA])];

/** Keywords of BASIC_PROFILE_EXTRA that dcmjs's dictionary does not know (a test wants none). */
export function unknownProfileKeywords(): string[] {
  return BASIC_PROFILE_EXTRA.filter((k) => !nameMap()[k]);
}
