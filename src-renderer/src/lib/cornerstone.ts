/**
 * cornerstone-core set-up: a `kdmri:` image loader that serves our Float32 slices (stored as Int16
 * with a rescale slope, so window/level works in the images' own float units), and cornerstone-tools
 * (W/L on left drag, pan on middle, zoom on right drag / wheel) with W/L and pan/zoom synchronised
 * across a group of viewports.
 */
import cornerstone, { type Image } from 'cornerstone-core';
import cornerstoneTools from 'cornerstone-tools';
import cornerstoneMath from 'cornerstone-math';
import Hammer from 'hammerjs';
import type { Pixels } from '../../../src-main/contract/api';

/**
 * Float value v is stored as round(v · scale) in an Int16Array, scale = 30000 / max|v| per image, and
 * the image's slope is 1 / scale: window/level stays in the image's own units, whatever their range
 * (normalised reconstructions in [0, 1], or a library series in scanner units).
 */
const INT16_SPAN = 30000;
const images = new Map<string, Pixels>();
let counter = 0;
let ready = false;

export function initCornerstone(): void {
  if (ready) return;
  ready = true;
  cornerstone.registerImageLoader('kdmri', (imageId) => {
    const promise = new Promise<Image>((resolve, reject) => {
      const px = images.get(imageId);
      if (!px) return reject(new Error(`no image ${imageId}`));
      const stored = new Int16Array(px.h * px.w);
      let maxAbs = 0;
      for (let i = 0; i < stored.length; i++) {
        const a = Math.abs(px.data[i]);
        if (Number.isFinite(a) && a > maxAbs) maxAbs = a;
      }
      const SCALE = maxAbs > 0 ? INT16_SPAN / maxAbs : 1;
      let min = Infinity;
      let max = -Infinity;
      for (let i = 0; i < stored.length; i++) {
        const f = px.data[i];
        const v = Number.isFinite(f) ? Math.max(-32767, Math.min(32767, Math.round(f * SCALE))) : 0;
        stored[i] = v;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      if (min === max) max = min + 1;
      const lo = min / SCALE;
      const hi = max / SCALE;
      resolve({
        imageId,
        minPixelValue: min,
        maxPixelValue: max,
        slope: 1 / SCALE,
        intercept: 0,
        windowCenter: (lo + hi) / 2,
        windowWidth: hi - lo,
        getPixelData: () => stored,
        rows: px.h,
        columns: px.w,
        height: px.h,
        width: px.w,
        color: false,
        columnPixelSpacing: 1,
        rowPixelSpacing: 1,
        sizeInBytes: stored.byteLength,
      });
    });
    return { promise };
  });
  cornerstoneTools.external.cornerstone = cornerstone;
  cornerstoneTools.external.Hammer = Hammer;
  cornerstoneTools.external.cornerstoneMath = cornerstoneMath;
  cornerstoneTools.init({ showSVGCursors: false, globalToolSyncEnabled: false });
  // a read-only handle for the end-to-end tests (viewport state), nothing else
  Object.assign(window, { __kdmriViewport: (el: HTMLElement) => cornerstone.getViewport(el) });
}

/** Register pixels under a fresh `kdmri:` image id (ids are never reused, so caches never go stale). */
export function addImage(px: Pixels, label: string): string {
  const id = `kdmri:${label}/${++counter}`;
  images.set(id, px);
  if (images.size > 400) {
    const first = images.keys().next().value;
    if (first !== undefined) {
      images.delete(first);
      cornerstone.imageCache.removeImageLoadObject(first);
    }
  }
  return id;
}

export interface SyncGroup {
  add(el: HTMLElement): void;
  remove(el: HTMLElement): void;
  destroy(): void;
}

interface LevelingEvent {
  detail: {
    image: { minPixelValue: number; maxPixelValue: number; slope: number };
    viewport: { voi: { windowWidth: number; windowCenter: number }; voiLUT?: unknown };
    deltaPoints: { page: { x: number; y: number } };
  };
}

/**
 * Window/level by drag, scaled for [0, 1] float images: a 250-pixel drag spans the image's range
 * (cornerstone-tools' default needs 1024 pixels, made for 12-bit CT/MR values).
 */
function levelingStrategy(evt: LevelingEvent): void {
  const { image, viewport, deltaPoints } = evt.detail;
  const range = Math.max(1e-6, (image.maxPixelValue - image.minPixelValue) * image.slope);
  const k = range / 250;
  viewport.voi.windowWidth = Math.max(range / 500, viewport.voi.windowWidth + deltaPoints.page.x * k);
  viewport.voi.windowCenter += deltaPoints.page.y * k;
  viewport.voiLUT = undefined;
}

/** Enable an element with the interactive tools. */
export function enableViewport(el: HTMLElement): void {
  cornerstone.enable(el);
  cornerstoneTools.addToolForElement(el, cornerstoneTools.WwwcTool, {
    strategies: { float: levelingStrategy },
    defaultStrategy: 'float',
  });
  cornerstoneTools.addToolForElement(el, cornerstoneTools.PanTool);
  cornerstoneTools.addToolForElement(el, cornerstoneTools.ZoomTool);
  cornerstoneTools.addToolForElement(el, cornerstoneTools.ZoomMouseWheelTool);
  cornerstoneTools.setToolActiveForElement(el, 'Wwwc', { mouseButtonMask: 1 });
  cornerstoneTools.setToolActiveForElement(el, 'Pan', { mouseButtonMask: 4 });
  cornerstoneTools.setToolActiveForElement(el, 'Zoom', { mouseButtonMask: 2 });
  cornerstoneTools.setToolActiveForElement(el, 'ZoomMouseWheel', { mouseButtonMask: 0 });
}

export function disableViewport(el: HTMLElement): void {
  try {
    cornerstone.disable(el);
  } catch {
    // already gone
  }
}

/** Synchronise W/L (voi) across viewports. */
export function wwwcSync(): SyncGroup {
  return new cornerstoneTools.Synchronizer(
    cornerstone.EVENTS.IMAGE_RENDERED,
    cornerstoneTools.wwwcSynchronizer,
  );
}
/** Synchronise zoom and pan across viewports. */
export function panZoomSync(): SyncGroup {
  return new cornerstoneTools.Synchronizer(
    cornerstone.EVENTS.IMAGE_RENDERED,
    cornerstoneTools.panZoomSynchronizer,
  );
}

export async function show(
  el: HTMLElement,
  px: Pixels,
  label: string,
  opts: { colormap?: string; voi?: { windowWidth: number; windowCenter: number }; keep?: boolean } = {},
): Promise<void> {
  const image = await cornerstone.loadImage(addImage(px, label));
  const prev = opts.keep ? cornerstone.getViewport(el) : undefined;
  const enabled = cornerstone.getEnabledElement(el);
  const vp = prev && enabled.image ? { ...prev } : cornerstone.getDefaultViewportForImage(el, image);
  if (opts.voi) vp.voi = { ...opts.voi };
  if (opts.colormap) vp.colormap = opts.colormap;
  vp.pixelReplication = false;
  cornerstone.displayImage(el, image, vp);
}

export const cs = cornerstone;
