/** Terminal output: tables, number formatting and live training progress. */
import cliProgress from 'cli-progress';
import type { MetricRow, ProgressEvent } from '../contract/domain.js';
import { figureText, textGrid } from '../results/table.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A plain fixed-width table; the first row is the header. */
export function table(rows: (string | number)[][]): string {
  return textGrid(rows.map((r) => r.map(String)));
}

export function metricsTable(rows: MetricRow[]): string {
  return table([
    ['model', 'degradation', 'PSNR (dB)', 'SSIM', 'NMSE', 'volumes'],
    ...rows.map((r) => [
      r.model,
      r.degradation,
      figureText({ mean: r.psnr, spread: r.psnrStd2, n: r.volumes }, 'psnr'),
      figureText({ mean: r.ssim, spread: r.ssimStd2, n: r.volumes }, 'ssim'),
      figureText({ mean: r.nmse, spread: r.nmseStd2, n: r.volumes }, 'nmse'),
      r.volumes,
    ]),
  ]);
}

function eta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/**
 * Progress for a training job: a bar per step on a terminal, one line per epoch otherwise (logs, CI).
 * Everything goes to stderr so that stdout carries only results.
 */
export function progressReporter(): { onEvent: (e: ProgressEvent) => void; stop: () => void } {
  const tty = Boolean(process.stderr.isTTY);
  let bar: cliProgress.SingleBar | null = null;
  const write = (s: string) => process.stderr.write(`${s}\n`);
  const stopBar = () => {
    bar?.stop();
    bar = null;
  };
  return {
    stop: stopBar,
    onEvent(e) {
      switch (e.type) {
        case 'job-start':
          write(`job ${e.jobId} on backend ${e.backend}: ${e.steps.join(' → ')}`);
          break;
        case 'step-start':
          if (tty) {
            bar = new cliProgress.SingleBar(
              {
                format: `${e.step.padEnd(9)} [{bar}] epoch {value}/{total} loss {loss} val {val} lr {lr} eta {eta}`,
                stream: process.stderr,
                hideCursor: true,
              },
              cliProgress.Presets.shades_classic,
            );
            bar.start(e.epochs, e.startEpoch, { loss: '-', val: '-', lr: '-', eta: '-' });
          } else {
            write(
              `${e.step}: ${e.epochs} epochs${e.startEpoch ? `, resuming at epoch ${e.startEpoch + 1}` : ''}`,
            );
          }
          break;
        case 'batch':
          bar?.update({ loss: e.loss.toExponential(3) });
          break;
        case 'epoch':
          if (bar) {
            bar.update(e.epoch + 1, {
              loss: e.trainLoss.toExponential(3),
              val: e.valLoss.toExponential(3),
              lr: e.lr.toExponential(0),
              eta: eta(e.etaSeconds),
            });
          } else {
            write(
              `${e.step} epoch ${e.epoch + 1}/${e.epochs}: train ${e.trainLoss.toExponential(4)} val ${e.valLoss.toExponential(4)}` +
                ` lr ${e.lr.toExponential(0)} ${e.slicesPerSecond.toFixed(1)} slices/s${e.best ? ' (best)' : ''} eta ${eta(e.etaSeconds)}`,
            );
          }
          break;
        case 'step-end':
          stopBar();
          write(
            `${e.step}: best epoch ${e.bestEpoch + 1}, validation ${e.bestValLoss.toExponential(4)}, model ${e.modelId}`,
          );
          break;
        case 'job-end':
          stopBar();
          if (e.status !== 'finished') write(`job ${e.status}${e.error ? `: ${e.error}` : ''}`);
          break;
        case 'log':
          write(`${e.level}: ${e.message}`);
          break;
        case 'eval':
          break;
      }
    },
  };
}
