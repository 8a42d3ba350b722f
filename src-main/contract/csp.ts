/**
 * The renderer's Content-Security-Policy, one policy for both transports: sent as a response header by
 * the Electron session and by the web-mode server. Scripts only from the app itself; inline styles are
 * allowed because Svelte and Cornerstone set element styles (a strict style-src broke the pages).
 */
export const RENDERER_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
