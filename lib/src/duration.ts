// Durations on the command line: "24h", "90m", "30s", "1500ms", "1h30m", or a bare number of seconds.
import { InvalidArgumentError } from "./errors.js";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;

/** Milliseconds for a duration text; throws naming the field when malformed or outside [minMs, maxMs]. */
export function parseDuration(field: string, text: string, minMs = 0, maxMs = Number.MAX_SAFE_INTEGER): number {
  const trimmed = text.trim();
  let ms: number | undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    ms = Number(trimmed) * 1000;
  } else if (trimmed !== "") {
    PART.lastIndex = 0;
    let total = 0;
    let consumed = 0;
    for (let match = PART.exec(trimmed); match !== null; match = PART.exec(trimmed)) {
      total += Number(match[1]) * (UNIT_MS[match[2] ?? "s"] ?? 1000);
      consumed = PART.lastIndex;
    }
    if (consumed === trimmed.length) ms = total;
  }
  if (ms === undefined)
    throw new InvalidArgumentError(field, text, "must be a duration such as 24h, 90m, 30s or a number of seconds");
  if (ms < minMs || ms > maxMs) {
    throw new InvalidArgumentError(
      field,
      text,
      `must be between ${formatDuration(minMs)} and ${formatDuration(maxMs)}`,
    );
  }
  return Math.round(ms);
}

/** "23h59m", "4m10s", "12s", "350ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let seconds = Math.round(ms / 1000);
  const days = Math.floor(seconds / 86_400);
  seconds -= days * 86_400;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  const parts: string[] = [];
  if (days > 0) parts.push(`${days}d`);
  if (hours > 0) parts.push(`${hours}h`);
  if (minutes > 0 && days === 0) parts.push(`${minutes}m`);
  if (seconds > 0 && days === 0 && hours === 0) parts.push(`${seconds}s`);
  return parts.join("") || "0s";
}
