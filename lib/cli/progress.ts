/**
 * Progress bars on stderr — bytes, rate and ETA — for one download or several
 * at once, shown only when stderr is a terminal.
 *
 * Drawing is done by `npm:cli-progress`, whose MultiBar redraws several bars
 * in place and throttles redraws (10 per second) however often bars are
 * updated. It runs unchanged under Deno through `node:process`'s stderr.
 * This module is for the interactive scripts only: nothing that runs inside a
 * Nix build may import it (npm packages cannot be fetched in the sandbox), and
 * `mod.ts` does not re-export it.
 *
 * @module
 */

// Scripts run from a URL ignore deno.json's import map: the versioned specifier must be inline.
import cliProgress from "npm:cli-progress@^3";
import process from "node:process";
import { displayText } from "./display.ts";

/** A set of progress bars drawn together. */
export interface ProgressDisplay {
  /**
   * Adds a bar.
   *
   * @param label What the bar is for (e.g. a file name).
   * @param total The size in bytes, when known.
   * @returns The bar.
   */
  bar(label: string, total: number | undefined): ProgressBar;
  /**
   * Prints a line above the bars (nothing when the display is disabled).
   *
   * @param line The text, without a trailing newline.
   */
  log(line: string): void;
  /** Draws the bars one last time and releases the terminal. */
  stop(): void;
}

/** One bar of a {@linkcode ProgressDisplay}. */
export interface ProgressBar {
  /**
   * Sets the number of bytes done (and the total, when it became known).
   *
   * @param received Bytes done.
   * @param total The size in bytes, when known.
   */
  update(received: number, total?: number): void;
  /** Marks the bar finished. */
  done(): void;
}

/** Options for {@linkcode createProgressDisplay}. */
export interface ProgressDisplayOptions {
  /**
   * Whether to draw anything. When `false` every method does nothing.
   *
   * @default {whether stderr is a terminal}
   */
  enabled?: boolean;
  /**
   * Whether to use colour.
   *
   * @default {true unless the NO_COLOR environment variable is set}
   */
  color?: boolean;
}

/** The parts of cli-progress used here (the package ships no types). */
interface CliBar {
  update(value: number, payload?: Record<string, unknown>): void;
  setTotal(total: number): void;
  stop(): void;
}
interface CliMultiBar {
  create(total: number, start: number, payload?: Record<string, unknown>): CliBar;
  log(text: string): void;
  stop(): void;
}
interface CliProgress {
  MultiBar: new (options: Record<string, unknown>) => CliMultiBar;
}

/** Seconds of history the displayed rate is averaged over. */
const RATE_WINDOW_MS = 5000;

/**
 * Creates a progress display on stderr.
 *
 * @example Usage
 * ```ts
 * import { createProgressDisplay } from "./progress.ts";
 *
 * const display = createProgressDisplay();
 * const bar = display.bar("therock.tar.gz", 1000);
 * bar.update(500);
 * bar.done();
 * display.stop();
 * ```
 *
 * @param options Whether to draw (default: stderr is a terminal) and colour.
 * @returns The display; a silent one when not enabled.
 */
export function createProgressDisplay(options: ProgressDisplayOptions = {}): ProgressDisplay {
  const enabled = options.enabled ?? Deno.stderr.isTerminal();
  if (!enabled) {
    const silent: ProgressBar = { update(): void {}, done(): void {} };
    return { bar: (): ProgressBar => silent, log(): void {}, stop(): void {} };
  }
  const color = options.color ?? !Deno.noColor;
  const multi = new (cliProgress as unknown as CliProgress).MultiBar({
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    format: (
      _options: unknown,
      params: { value: number; total: number },
      payload: { label: string; rate: number; known: boolean },
    ) => formatLine(params.value, payload.known ? params.total : undefined, payload, color),
  });
  let stopped = false;
  return {
    bar(name: string, total: number | undefined): ProgressBar {
      // A label may come from a URL or a server: no secret, no control character.
      const label = displayText(name);
      const samples: Array<[number, number]> = [[performance.now(), 0]];
      let known = total !== undefined;
      const bar = multi.create(total ?? 0, 0, { label, rate: 0, known });
      let finished = false;
      return {
        update(received: number, newTotal?: number): void {
          if (finished || stopped) return;
          if (newTotal !== undefined && !known) {
            known = true;
            bar.setTotal(newTotal);
          }
          const now = performance.now();
          samples.push([now, received]);
          while (samples.length > 2 && now - samples[0]![0] > RATE_WINDOW_MS) samples.shift();
          const [since, from] = samples[0]!;
          const rate = now > since ? (received - from) / ((now - since) / 1000) : 0;
          bar.update(received, { label, rate, known });
        },
        done(): void {
          finished = true;
          bar.stop();
        },
      };
    },
    log(line: string): void {
      if (!stopped) multi.log(`${displayText(line)}\n`);
    },
    stop(): void {
      if (stopped) return;
      stopped = true;
      multi.stop();
    },
  };
}

/**
 * One bar's line. The label comes last: lines longer than the terminal are
 * cut at its width, and the figures matter more than the end of a long name.
 */
function formatLine(
  value: number,
  total: number | undefined,
  payload: { label: string; rate: number },
  color: boolean,
): string {
  const paint = (code: number, text: string): string =>
    color ? `\x1b[${code}m${text}\x1b[0m` : text;
  const label = paint(1, payload.label);
  const rate = `${formatBytes(payload.rate)}/s`.padStart(12);
  if (total === undefined || total <= 0) {
    return `${formatBytes(value).padStart(10)}  ${rate}  ${label}`;
  }
  const fraction = Math.min(1, value / total);
  const width = 20;
  const filled = Math.round(fraction * width);
  const bar = paint(36, "█".repeat(filled)) + "░".repeat(width - filled);
  const eta = payload.rate > 0 ? formatDuration((total - value) / payload.rate) : "--:--";
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const size = `${formatBytes(value)}/${formatBytes(total)}`.padStart(21);
  return `${bar} ${percent} ${size} ${rate}  ETA ${eta.padStart(5)}  ${label}`;
}

/**
 * Formats a byte count with a binary unit, e.g. `1.50 GiB`.
 *
 * @example Usage
 * ```ts
 * import { formatBytes } from "./progress.ts";
 * formatBytes(1536); // "1.50 KiB"
 * ```
 *
 * @param bytes The count.
 * @returns The text.
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(2)} ${units[unit]}`;
}

function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}
