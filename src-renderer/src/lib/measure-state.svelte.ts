/**
 * What the Compare viewer measures, shared by the overlays on the five viewports and the panel below
 * them: the tool in use, and the region / line drawn, in image coordinates (the same on every
 * viewport: they show the same slice at the same size).
 */
import type { Point } from './measure';

export type MeasureTool = 'view' | 'roi' | 'line';

export const measure = $state({
  tool: 'view' as MeasureTool,
  roi: null as { a: Point; b: Point } | null,
  line: null as { a: Point; b: Point } | null,
  /** Bumped when any viewport re-renders (pan, zoom, resize), so overlays follow. */
  tick: 0,
});
