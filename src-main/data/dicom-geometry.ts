/**
 * Where a DICOM series sits in space, in NIfTI terms (a NiftiGeometry for writeNiftiSlices).
 */
import type { NiftiGeometry } from './nifti.js';

type Vec3 = [number, number, number];

/** What a DICOM series says about its geometry, slices in the stored (library) order. */
export interface DicomGeometryInput {
  /** ImageOrientationPatient: the row direction (along a row, column index rising), then the column direction. */
  orientation: readonly number[] | null;
  /** ImagePositionPatient (centre of the first transmitted pixel) of the first and the last stored slice. */
  first: readonly number[] | null;
  last: readonly number[] | null;
  slices: number;
  /** PixelSpacing as DICOM writes it: [row spacing (between rows), column spacing (between columns)] mm. */
  pixelSpacing: readonly [number, number];
  /** The slice step for a single slice (SpacingBetweenSlices or SliceThickness), mm. */
  sliceStep: number;
  /**
   * Every slice's ImagePositionPatient in stored order, when known: the steps between them are checked
   * against the even step the NIfTI affine assumes.
   */
  positions?: readonly (readonly number[])[];
}

/** A step between neighbouring slices that differs from the mean step by more than this fraction is told. */
const UNEVEN_STEP = 0.05;

const dot = (a: Vec3, b: Vec3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a: Vec3, b: Vec3): Vec3 => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];
const finite3 = (v: readonly number[] | null): v is Vec3 => !!v && v.length === 3 && v.every(Number.isFinite);

/**
 * The NIfTI geometry of a DICOM series, or a one-line reason why it is unknown.
 *
 * Conventions: the project's voxel (i, j, k) is (column, row, stored slice) — a NIfTI slice is one
 * DICOM image, i fastest (see nifti.ts). DICOM places pixel (column i, row j) of slice 0 at
 * IPP₀ + i·Δc·r + j·Δr·c in LPS millimetres (r, c = IOP's row and column directions, PixelSpacing =
 * [Δr, Δc]); slice k at IPP₀ + k·s with s = (IPP_last − IPP₀)/(n − 1), or for one slice
 * s = (r × c)·sliceStep. NIfTI world coordinates are RAS, so x and y are negated. The sform is that
 * affine exactly (it may shear, e.g. a gantry tilt); the qform (quaternion, qfac, pixdim) is written
 * too when the three axes are orthogonal — else qform_code 0. Both codes are 1 (scanner anatomical),
 * as dcm2niix writes them.
 *
 * Unknown (null geometry): IOP or IPP missing or non-finite, IOP not two orthonormal vectors (within
 * 1e-3), a zero or non-finite slice step, non-positive pixel spacing.
 */
export function niftiGeometryOfDicom(
  g: DicomGeometryInput,
): { geometry: NiftiGeometry; warning?: string } | { unknown: string } {
  const o = g.orientation;
  if (!o || o.length !== 6 || !o.every(Number.isFinite)) return { unknown: 'no ImageOrientationPatient' };
  const r: Vec3 = [o[0], o[1], o[2]];
  const c: Vec3 = [o[3], o[4], o[5]];
  const tol = 1e-3;
  if (Math.abs(dot(r, r) - 1) > tol || Math.abs(dot(c, c) - 1) > tol || Math.abs(dot(r, c)) > tol)
    return { unknown: `ImageOrientationPatient ${o.join('\\')} is not two orthonormal directions` };
  const [dr, dc] = g.pixelSpacing;
  if (!(dr > 0 && dc > 0 && Number.isFinite(dr) && Number.isFinite(dc)))
    return { unknown: `PixelSpacing ${dr}\\${dc} is not positive` };
  if (!finite3(g.first) || !finite3(g.last)) return { unknown: 'no ImagePositionPatient on every slice' };
  const first = g.first;
  let s: Vec3;
  if (g.slices > 1) {
    const last = g.last;
    s = [0, 1, 2].map((a) => (last[a] - first[a]) / (g.slices - 1)) as Vec3;
  } else {
    if (!(g.sliceStep > 0 && Number.isFinite(g.sliceStep)))
      return { unknown: `slice thickness ${g.sliceStep} is not positive` };
    s = cross(r, c).map((x) => x * g.sliceStep) as Vec3;
  }
  const ds = Math.sqrt(dot(s, s));
  if (!(ds > 1e-6) || !Number.isFinite(ds))
    return { unknown: 'the first and last slices are at the same ImagePositionPatient' };
  // LPS → RAS: negate x and y of every column
  const ras = (v: Vec3): Vec3 => [-v[0], -v[1], v[2]];
  const cols: Vec3[] = [
    ras(r.map((x) => x * dc) as Vec3),
    ras(c.map((x) => x * dr) as Vec3),
    ras(s),
    ras(first),
  ];
  const srow = [0, 1, 2].map((row) => cols.map((col) => col[row])) as [number[], number[], number[]];
  // qform: the unit axes as a rotation (third axis negated when left-handed: qfac −1)
  const u = [ras(r), ras(c), ras(s.map((x) => x / ds) as Vec3)];
  const orthogonal = Math.abs(dot(u[0], u[2])) < tol && Math.abs(dot(u[1], u[2])) < tol;
  const qfac = dot(cross(u[0], u[1]), u[2]) < 0 ? -1 : 1;
  const R = [0, 1, 2].map((row) => [u[0][row], u[1][row], qfac * u[2][row]]);
  return {
    warning: unevenSteps(g.positions, s, ds),
    geometry: {
      qformCode: orthogonal ? 1 : 0,
      sformCode: 1,
      quatern: orthogonal ? quaternionOf(R) : [0, 0, 0],
      qoffset: orthogonal ? cols[3] : [0, 0, 0],
      qfac,
      pixdim: [dc, dr, ds],
      srow,
      xyztUnits: 10, // mm, s
    },
  };
}

/**
 * Why the slices are not evenly spaced along the mean step s (|s| = ds), or undefined when they are
 * (every neighbour step within UNEVEN_STEP·ds of s): a missing slice, a gap between stacks, or slices
 * out of line. NIfTI has one step, so such a series' inner slices are placed approximately.
 */
function unevenSteps(positions: DicomGeometryInput['positions'], s: Vec3, ds: number): string | undefined {
  if (!positions || positions.length < 3 || !positions.every(finite3)) return undefined;
  let worst = 0;
  let at = 0;
  const lengths: number[] = [];
  for (let k = 1; k < positions.length; k++) {
    const step = [0, 1, 2].map((a) => positions[k][a] - positions[k - 1][a]) as Vec3;
    const off = Math.hypot(step[0] - s[0], step[1] - s[1], step[2] - s[2]);
    lengths.push(Math.hypot(...step));
    if (off > worst) [worst, at] = [off, k];
  }
  if (worst <= UNEVEN_STEP * ds) return undefined;
  const fmt = (x: number) => x.toFixed(2);
  return (
    `slices are unevenly spaced: steps of ${fmt(Math.min(...lengths))}–${fmt(Math.max(...lengths))} mm ` +
    `(the largest departure, ${fmt(worst)} mm, between stored slices ${at} and ${at + 1}, counting from 1); the NIfTI ` +
    `assumes one step of ${fmt(ds)} mm, so slices between the first and the last are placed approximately`
  );
}

/** (b, c, d) of the unit quaternion of rotation matrix R (a ≥ 0), as nifti1_io's nifti_mat44_to_quatern. */
function quaternionOf(R: number[][]): Vec3 {
  const [r11, r12, r13] = R[0];
  const [r21, r22, r23] = R[1];
  const [r31, r32, r33] = R[2];
  let a = r11 + r22 + r33 + 1;
  let b: number;
  let c: number;
  let d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) [b, c, d] = [-b, -c, -d];
  }
  return [b, c, d];
}
