// winston, configured once by the entry point: JSON lines by default (for journald/log shippers), a compact human
// format for terminals. Core code never logs; it emits events that cli/*-log.ts turns into lines.
import winston from "winston";
import { LOG_LEVELS, type LogFormat, type LogLevel } from "../config/run-options.js";

export function createLogger(level: LogLevel, format: LogFormat): winston.Logger {
  const text = winston.format.printf((info) => {
    const { level: lvl, message, timestamp, ...fields } = info;
    const extra = Object.entries(fields)
      .filter(([key]) => typeof key === "string")
      .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
      .join(" ");
    return `${String(timestamp)} ${lvl.toUpperCase().padEnd(5)} ${String(message)}${extra === "" ? "" : ` ${extra}`}`;
  });
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), format === "json" ? winston.format.json() : text),
    // stderr: stdout stays free for command output.
    // winston types its transports as interfaces of another package's class; the instance is the real one.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    transports: [new winston.transports.Console({ stderrLevels: [...LOG_LEVELS] })],
  });
}
