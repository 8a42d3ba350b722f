/** The few dcmjs entry points the exporter and the de-identifier use (dcmjs ships no type declarations). */
declare module 'dcmjs' {
  interface DcmjsDict {
    dict: Record<string, unknown>;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }
  interface DcmjsData {
    DicomDict: new (meta: Record<string, unknown>) => DcmjsDict;
    DicomMetaDictionary: {
      denaturalizeDataset(dataset: Record<string, unknown>): Record<string, unknown>;
      naturalizeDataset(dict: Record<string, unknown>): Record<string, unknown>;
    };
    DicomMessage: {
      readFile(
        buffer: ArrayBuffer,
        options?: Record<string, unknown>,
      ): { meta: Record<string, unknown>; dict: Record<string, unknown> };
    };
  }
  interface DcmjsAnonymizer {
    /** Empty (or replace, by 'GGGGEEEE' tag) the attributes named in `names` (default: its own list). */
    cleanTags(
      dict: Record<string, unknown>,
      replace?: Record<string, string>,
      names?: readonly string[],
    ): void;
    getTagsNameToEmpty(): string[];
  }
  const dcmjs: { data: DcmjsData; anonymizer: DcmjsAnonymizer };
  export default dcmjs;
}
