/**
 * Messages between the fuzzer and its child processes, and how an outcome is judged.
 *
 * Outcomes of one stage (import or convert) of one case:
 *  - ok: imported / skipped / converted;
 *  - refused: a user-facing one-line error (the file is bad and the user is told why);
 *  - internal: an error that is not the file's description but our bug escaping (TypeError,
 *    RangeError, "Cannot read properties of undefined", …), or a message over several lines.
 * Crashes (the child died or threw past every handler) and hangs (past the per-case timeout) are
 * judged by the parent.
 */

export type Stage = 'import' | 'convert';
export type Verdict = 'ok' | 'refused' | 'internal';

export interface CaseRequest {
  type: 'case';
  k: number;
  path: string;
  /** Where convert writes its NIfTI (removed by the child afterwards). */
  out: string;
}

export interface StageResult {
  verdict: Verdict;
  message: string;
  ms: number;
}

export type ChildMessage =
  | { type: 'ready' }
  /** Which stage case k entered (a hang names it). */
  | { type: 'stage'; k: number; stage: Stage }
  | {
      type: 'result';
      k: number;
      import: StageResult;
      convert: StageResult;
      /** Peak resident set size of the child during this case (VmHWM after a reset), in bytes. */
      peakRss: number;
    }
  | { type: 'uncaught'; k: number | null; message: string };

/** Engine error names and texts that only escape from a bug, never from a reader's refusal. */
const INTERNAL = [
  /\b(TypeError|RangeError|ReferenceError|SyntaxError|EvalError|URIError|AssertionError)\b/,
  /Cannot read propert/i,
  /Cannot set propert/i,
  /is not a function/,
  /is not iterable/,
  /is not defined/,
  /Invalid (typed )?array length/i,
  /Array buffer allocation failed/i,
  /Maximum call stack/i,
  /Invalid string length/i,
  /out of memory/i,
  /\boffset is out(side)? of (the )?bounds\b/i,
  /Offset is outside the bounds/i,
  /\[object Object\]/,
  /\bundefined\b/,
];

/** The verdict of an error message (a failed import result or a thrown error). */
export function judge(message: string, internalClass = false): Verdict {
  if (internalClass) return 'internal';
  if (message.includes('\n')) return 'internal';
  return INTERNAL.some((re) => re.test(message)) ? 'internal' : 'refused';
}
