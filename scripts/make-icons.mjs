#!/usr/bin/env node
// Draws the app icon (a brain-like ellipse over k-space sampling lines) at 512…16 px into
// resources/icons/NxN.png, the layout electron-builder reads for Linux; 512x512 also serves Windows.
// Usage: node scripts/make-icons.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';

const SIZES = [512, 256, 128, 64, 48, 32, 16];
const out = new URL('../resources/icons/', import.meta.url);
mkdirSync(out, { recursive: true });

function draw(n) {
  const png = new PNG({ width: n, height: n });
  const r = 0.18 * n; // corner radius
  const lines = [2, 5, 8, 10, 11, 12, 13, 14, 16, 19, 22]; // sampled rows of a 24-row mask
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const o = (y * n + x) * 4;
      // rounded square mask (anti-aliased by 4×4 supersampling at the corners)
      let cover = 0;
      for (let sy = 0; sy < 4; sy++)
        for (let sx = 0; sx < 4; sx++) {
          const px = x + (sx + 0.5) / 4;
          const py = y + (sy + 0.5) / 4;
          const dx = Math.max(r - px, 0, px - (n - r));
          const dy = Math.max(r - py, 0, py - (n - r));
          if (dx * dx + dy * dy <= r * r) cover++;
        }
      const a = cover / 16;
      const u = (x + 0.5) / n;
      const v = (y + 0.5) / n;
      // background: deep blue gradient
      let R = 17 + 10 * v;
      let G = 34 + 30 * v;
      let B = 64 + 50 * v;
      // k-space lines: faint horizontal bars
      const row = Math.floor(v * 24);
      if (lines.includes(row) && (v * 24) % 1 > 0.25 && (v * 24) % 1 < 0.75) {
        R += 30;
        G += 70;
        B += 110;
      }
      // brain: a bright ellipse with a darker midline
      const ex = (u - 0.5) / 0.33;
      const ey = (v - 0.52) / 0.38;
      const d = ex * ex + ey * ey;
      if (d < 1) {
        const shade = 0.55 + 0.45 * (1 - d);
        R = 230 * shade;
        G = 236 * shade;
        B = 245 * shade;
        if (Math.abs(u - 0.5) < 0.012 + 0.01 * (1 - d)) R = G = B = 70;
        // a gyrus-like ring
        if (Math.abs(d - 0.45) < 0.03) {
          R *= 0.75;
          G *= 0.75;
          B *= 0.8;
        }
      }
      png.data[o] = Math.min(255, Math.round(R));
      png.data[o + 1] = Math.min(255, Math.round(G));
      png.data[o + 2] = Math.min(255, Math.round(B));
      png.data[o + 3] = Math.round(255 * a);
    }
  }
  return PNG.sync.write(png);
}

for (const n of SIZES) {
  writeFileSync(new URL(`${n}x${n}.png`, out), draw(n));
  console.log(`resources/icons/${n}x${n}.png`);
}
