/**
 * Progress on stderr for one download or several at once, shown only when
 * stderr is a terminal: a line per download, redrawn in place.
 *
 * A line goes through three states. **Queued**: waiting for a free job
 * (`queued  gfx1151`). **Running**: a bar, bytes, rate and ETA, and
 * `retry 1/5` while a retry is pending. **Done**: its final frame, drawn the
 * moment that download ends, whatever the others are doing — size, time
 * taken and hash (`done  1.50 MiB in 0:42  sha256-…  gfx1151`); a download
 * that failed says so instead. Lines never go back to an earlier state, so
 * the screen at the end is the record of the run.
 *
 * Drawing: each redraw moves the cursor up over the lines it drew last time,
 * clears and rewrites them; lines printed with `log` go above. Redraws of
 * byte counts are throttled (10 per second), state changes are drawn at
 * once. Lines are cut at the terminal's width (the label last, so figures
 * stay), since a wrapped line would throw off the cursor movement.
 *
 * This module is for the interactive scripts only: `mod.ts` does not
 * re-export it.
 *
 * @module
 */

import { displayText } from "./display.ts";

/** A set of progress lines drawn together. */
export interface ProgressDisplay {
  /**
   * Adds a running download's line.
   *
   * @param label What the line is for (e.g. a file name or a target).
   * @param total The size in bytes, when known.
   * @returns The line.
   */
  bar(label: string, total: number | undefined): ProgressBar;
  /**
   * Adds a line for a download waiting its turn; {@linkcode ProgressBar.start}
   * starts it.
   *
   * @param label What the line is for.
   * @returns The line, queued.
   */
  queue(label: string): ProgressBar;
  /**
   * Prints a line above the progress lines (nothing when the display is disabled).
   *
   * @param line The text, without a trailing newline.
   */
  log(line: string): void;
  /** Draws every line one last time and releases the terminal. */
  stop(): void;
}

/** What a finished download's final frame shows. */
export interface ProgressResult {
  /** Bytes downloaded. */
  size: number;
  /** The hash, as it will be printed (an SRI string). */
  hash?: string;
}

/** A retry about to happen, as {@linkcode ProgressBar.retry} shows it. */
export interface ProgressRetry {
  /** Which retry: 1 for the first. */
  retry: number;
  /** Retries allowed in all. */
  retries: number;
  /** Bytes kept, from which the retry resumes. */
  received: number;
  /** Why the attempt failed. */
  error: Error;
}

/** One line of a {@linkcode ProgressDisplay}. */
export interface ProgressBar {
  /**
   * Marks a queued line as running.
   *
   * @param total The size in bytes, when known.
   */
  start(total?: number): void;
  /**
   * Sets the number of bytes done (and the total, when it became known).
   *
   * @param received Bytes done.
   * @param total The size in bytes, when known.
   */
  update(received: number, total?: number): void;
  /**
   * Shows a pending retry (`retry 1/5`) on the line, and logs why above.
   *
   * @param info The retry's number, the retries allowed, bytes kept, the failure.
   */
  retry(info: ProgressRetry): void;
  /**
   * Draws the final frame now: done, size, time taken, hash.
   *
   * @param result The size and, when known, the hash.
   */
  done(result?: ProgressResult): void;
  /**
   * Draws the line as failed now.
   *
   * @param reason Why, in a few words.
   */
  fail(reason: string): void;
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
  /**
   * Where to write.
   *
   * @default {Deno.stderr}
   */
  output?: { writeSync(bytes: Uint8Array): number };
  /**
   * The terminal's width in columns.
   *
   * @default {Deno.consoleSize().columns, or 80}
   */
  columns?: () => number;
}

/** Seconds of history the displayed rate is averaged over. */
const RATE_WINDOW_MS = 5000;
/** At most one redraw of byte counts per this many ms. */
const REDRAW_MS = 100;

type State =
  | { kind: "queued" }
  | { kind: "running"; retry?: string }
  | { kind: "done"; size: number; hash?: string; ms: number }
  | { kind: "failed"; reason: string };

interface Line {
  label: string;
  state: State;
  received: number;
  total: number | undefined;
  rate: number;
  started: number;
}

/**
 * Creates a progress display on stderr.
 *
 * @example Usage
 * ```ts
 * import { createProgressDisplay } from "./progress.ts";
 *
 * const display = createProgressDisplay();
 * const waiting = display.queue("gfx110X-all");
 * const bar = display.bar("gfx1151", 1000);
 * bar.update(500);
 * bar.done({ size: 1000, hash: "sha256-…" });
 * waiting.start(2000);
 * display.stop();
 * ```
 *
 * @param options Whether to draw (default: stderr is a terminal), colour, where.
 * @returns The display; a silent one when not enabled.
 */
export function createProgressDisplay(options: ProgressDisplayOptions = {}): ProgressDisplay {
  const enabled = options.enabled ?? Deno.stderr.isTerminal();
  if (!enabled) {
    const silent: ProgressBar = {
      start(): void {},
      update(): void {},
      retry(): void {},
      done(): void {},
      fail(): void {},
    };
    return { bar: () => silent, queue: () => silent, log(): void {}, stop(): void {} };
  }
  const color = options.color ?? !Deno.noColor;
  const output = options.output ?? Deno.stderr;
  const columns = options.columns ?? ((): number => {
    try {
      return Deno.consoleSize().columns;
    } catch {
      return 80;
    }
  });
  const encoder = new TextEncoder();
  const lines: Line[] = [];
  const logs: string[] = [];
  let drawn = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const write = (text: string): void => {
    const bytes = encoder.encode(text);
    for (let offset = 0; offset < bytes.length;) {
      offset += output.writeSync(bytes.subarray(offset));
    }
  };
  const draw = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const width = Math.max(20, columns());
    let text = drawn > 0 ? `\r\x1b[${drawn}A` : "\r";
    for (const log of logs.splice(0)) text += `\x1b[2K${log}\n`;
    for (const line of lines) text += `\x1b[2K${formatLine(line, width, color)}\n`;
    // A line drawn before and gone now (never, lines only add up) would stay.
    drawn = lines.length;
    write(text);
  };
  const soon = (): void => {
    if (stopped || timer !== undefined) return;
    timer = setTimeout(draw, REDRAW_MS);
  };
  const now = (): void => {
    if (!stopped) draw();
  };
  write("\x1b[?25l"); // hide the cursor while drawing

  const add = (name: string, state: State, total: number | undefined): ProgressBar => {
    // A label may come from a URL or a server: no secret, no control character.
    const line: Line = {
      label: displayText(name),
      state,
      received: 0,
      total,
      rate: 0,
      started: performance.now(),
    };
    lines.push(line);
    const samples: Array<[number, number]> = [[line.started, 0]];
    now();
    const ended = (): boolean => line.state.kind === "done" || line.state.kind === "failed";
    const start = (total?: number): void => {
      if (line.state.kind !== "queued") return;
      line.state = { kind: "running" };
      line.started = performance.now();
      samples.splice(0, samples.length, [line.started, 0]);
      if (total !== undefined) line.total = total;
      now();
    };
    return {
      start,
      update(received: number, total?: number): void {
        if (ended()) return;
        start(total);
        const time = performance.now();
        if (total !== undefined) line.total = total;
        line.received = received;
        samples.push([time, received]);
        while (samples.length > 2 && time - samples[0]![0] > RATE_WINDOW_MS) samples.shift();
        const [since, from] = samples[0]!;
        line.rate = time > since ? Math.max(0, received - from) / ((time - since) / 1000) : 0;
        if (line.state.kind === "running" && line.state.retry !== undefined) {
          line.state = { kind: "running" };
          now();
        } else {
          soon();
        }
      },
      retry(info: ProgressRetry): void {
        if (ended()) return;
        const retry = `retry ${info.retry}/${info.retries}`;
        line.state = { kind: "running", retry };
        if (!stopped) {
          logs.push(displayText(
            `${line.label}: ${retry} from ${formatBytes(info.received)}: ${info.error.message}`,
          ));
        }
        now();
      },
      done(result?: ProgressResult): void {
        if (ended()) return;
        const size = result?.size ?? line.received;
        line.received = size;
        line.total ??= size;
        line.state = {
          kind: "done",
          size,
          ms: performance.now() - line.started,
          ...(result?.hash === undefined ? {} : { hash: result.hash }),
        };
        now();
      },
      fail(reason: string): void {
        if (ended()) return;
        line.state = { kind: "failed", reason: displayText(reason) };
        now();
      },
    };
  };

  return {
    bar: (label, total) => add(label, { kind: "running" }, total),
    queue: (label) => add(label, { kind: "queued" }, undefined),
    log(line: string): void {
      if (stopped) return;
      logs.push(displayText(line));
      draw();
    },
    stop(): void {
      if (stopped) return;
      draw();
      stopped = true;
      write("\x1b[?25h");
    },
  };
}

/** A piece of a line: its text and, optionally, an SGR colour code. */
type Segment = [text: string, code?: number];

/**
 * One line, cut at the terminal's width. A running line ends with its label
 * (the figures matter more than the end of a long name); a finished one
 * names its label before the hash, which the report prints in full anyway.
 */
function formatLine(line: Line, width: number, color: boolean): string {
  const state = line.state;
  const label: Segment = [line.label, 1];
  let segments: Segment[];
  switch (state.kind) {
    case "queued":
      segments = [["queued", 33], ["  "], label];
      break;
    case "done":
      segments = [
        ["done", 32],
        [`    ${formatBytes(state.size)} in ${formatDuration(state.ms / 1000)}  `],
        label,
        ...(state.hash === undefined ? [] : [[`  ${state.hash}`] as Segment]),
      ];
      break;
    case "failed":
      segments = [["failed", 31], ["  "], label, [`: ${state.reason}`]];
      break;
    case "running":
      segments = [...running(line, state.retry), ["  "], label];
  }
  let room = width - 1;
  let text = "";
  for (const [piece, code] of segments) {
    if (room <= 0) break;
    const cut = piece.slice(0, room);
    room -= cut.length;
    text += color && code !== undefined ? `\x1b[${code}m${cut}\x1b[0m` : cut;
  }
  return text;
}

/** A running line's figures: bar, percentage, bytes, rate, ETA, a pending retry. */
function running(line: Line, retry: string | undefined): Segment[] {
  const rate = `${formatBytes(line.rate)}/s`.padStart(12);
  const pending: Segment[] = retry === undefined ? [] : [["  "], [retry, 33]];
  const { received, total } = line;
  if (total === undefined || total <= 0) {
    return [[`${formatBytes(received).padStart(10)}  ${rate}`], ...pending];
  }
  const fraction = Math.min(1, received / total);
  const width = 20;
  const filled = Math.round(fraction * width);
  const eta = line.rate > 0 ? formatDuration((total - received) / line.rate) : "--:--";
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const size = `${formatBytes(received)}/${formatBytes(total)}`.padStart(21);
  return [
    ["█".repeat(filled), 36],
    ["░".repeat(width - filled)],
    [` ${percent} ${size} ${rate}  ETA ${eta.padStart(5)}`],
    ...pending,
  ];
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
