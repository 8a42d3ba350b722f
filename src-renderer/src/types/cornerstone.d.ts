// The small part of the cornerstone-core 2.x / cornerstone-tools 6.x APIs this renderer uses.
declare module 'cornerstone-core' {
  export interface Voi {
    windowWidth: number;
    windowCenter: number;
  }
  export interface Viewport {
    scale: number;
    translation: { x: number; y: number };
    voi: Voi;
    invert: boolean;
    pixelReplication: boolean;
    rotation: number;
    hflip: boolean;
    vflip: boolean;
    colormap?: string | object;
  }
  export interface Image {
    imageId: string;
    minPixelValue: number;
    maxPixelValue: number;
    slope: number;
    intercept: number;
    windowCenter: number;
    windowWidth: number;
    getPixelData(): ArrayLike<number>;
    rows: number;
    columns: number;
    height: number;
    width: number;
    color: boolean;
    rgba?: boolean;
    invert?: boolean;
    columnPixelSpacing: number;
    rowPixelSpacing: number;
    sizeInBytes: number;
  }
  export type ImageLoader = (imageId: string) => { promise: Promise<Image>; cancelFn?: () => void };
  export function enable(el: HTMLElement, options?: object): void;
  export function disable(el: HTMLElement): void;
  export function registerImageLoader(scheme: string, loader: ImageLoader): void;
  export function loadImage(imageId: string): Promise<Image>;
  export function displayImage(el: HTMLElement, image: Image, viewport?: Partial<Viewport>): void;
  export function getViewport(el: HTMLElement): Viewport | undefined;
  export function setViewport(el: HTMLElement, viewport: Partial<Viewport>): void;
  export function getDefaultViewportForImage(el: HTMLElement, image: Image): Viewport;
  export function getEnabledElement(el: HTMLElement): { image?: Image; canvas: HTMLCanvasElement };
  export function resize(el: HTMLElement, forcedFit?: boolean): void;
  export function reset(el: HTMLElement): void;
  export function fitToWindow(el: HTMLElement): void;
  export function updateImage(el: HTMLElement): void;
  export const EVENTS: { IMAGE_RENDERED: string; NEW_IMAGE: string };
  /** Page coordinates → image coordinates (pixel (r, c) covers x ∈ [c, c+1), y ∈ [r, r+1)). */
  export function pageToPixel(el: HTMLElement, pageX: number, pageY: number): { x: number; y: number };
  /** Image coordinates → the element's canvas coordinates. */
  export function pixelToCanvas(el: HTMLElement, pt: { x: number; y: number }): { x: number; y: number };
  export const imageCache: { purgeCache(): void; removeImageLoadObject(id: string): void };
  const cornerstone: {
    enable: typeof enable;
    disable: typeof disable;
    registerImageLoader: typeof registerImageLoader;
    loadImage: typeof loadImage;
    displayImage: typeof displayImage;
    getViewport: typeof getViewport;
    setViewport: typeof setViewport;
    getDefaultViewportForImage: typeof getDefaultViewportForImage;
    getEnabledElement: typeof getEnabledElement;
    resize: typeof resize;
    reset: typeof reset;
    fitToWindow: typeof fitToWindow;
    updateImage: typeof updateImage;
    EVENTS: typeof EVENTS;
    pageToPixel: typeof pageToPixel;
    pixelToCanvas: typeof pixelToCanvas;
    imageCache: typeof imageCache;
  };
  export default cornerstone;
}

declare module 'cornerstone-tools' {
  const tools: {
    external: { cornerstone: unknown; Hammer: unknown; cornerstoneMath: unknown };
    init(config?: object): void;
    addToolForElement(el: HTMLElement, tool: unknown, props?: object): void;
    setToolActiveForElement(el: HTMLElement, name: string, options: { mouseButtonMask: number }): void;
    WwwcTool: unknown;
    PanTool: unknown;
    ZoomTool: unknown;
    ZoomMouseWheelTool: unknown;
    Synchronizer: new (
      event: string,
      handler: unknown,
    ) => { add(el: HTMLElement): void; remove(el: HTMLElement): void; destroy(): void };
    wwwcSynchronizer: unknown;
    panZoomSynchronizer: unknown;
  };
  export default tools;
}
declare module 'cornerstone-math';
declare module 'hammerjs';
