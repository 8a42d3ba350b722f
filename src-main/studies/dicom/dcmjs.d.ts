/** The few dcmjs entry points the exporter uses (dcmjs ships no type declarations). */
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
  const dcmjs: { data: DcmjsData };
  export default dcmjs;
}
