/**
 * Hand an export to the user, whatever the transport: `downloadExport` answers a same-origin URL in
 * web mode (the server streams the file, or a zip of a folder, as an attachment: an <a download>
 * click saves it without leaving the page) or has already saved it through Electron's dialog.
 * Returns a line for the status bar.
 */
import { api } from './api.js';

export async function deliverExport(exportId: string): Promise<string> {
  const r = await api.downloadExport({ exportId });
  if (r.delivered === 'cancelled') return 'Download cancelled';
  if (r.delivered === 'saved') return `Saved to ${r.path}`;
  const a = document.createElement('a');
  a.href = r.url;
  a.download = r.filename;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  return `Downloading ${r.filename}`;
}
