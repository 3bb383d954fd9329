// etcd3 decodes every int64 (each key's create/mod revision, version and lease) with protobufjs into a Long and
// then to a string (`longs: String`, fixed in etcd3), through long.js's generic radix loop: with 30,000 keys that
// was 0.4 s of a 3.3 s first sync in the agent's lite-mode V8. Values within ±2^53 — every revision and version, and
// most lease IDs — are exactly a double, and String() prints them the same; the rest keep long.js's own path.
import protobuf from "protobufjs/minimal.js";

interface LongLike {
  readonly low: number;
  readonly high: number;
  readonly unsigned: boolean;
}

type LongToString = (this: LongLike, radix?: number) => string;

const patched = Symbol.for("trellis.fastLongToString");

/** The decimal form of a Long that fits in a double exactly, or undefined (the caller falls back). */
export function exactDecimal(value: LongLike): string | undefined {
  const high = value.unsigned ? value.high >>> 0 : value.high;
  // |high| < 2^21 ⇔ |value| < 2^53: every such integer is a double, and String() prints it exactly.
  if (high >= 0x200000 || high < -0x200000) return undefined;
  return String(high * 0x1_0000_0000 + (value.low >>> 0));
}

interface LongPrototype {
  toString: LongToString;
  [patched]?: true;
}

/** Installs the fast path on the Long class protobufjs decodes with (idempotent; no-op without long.js). */
export function installFastLongToString(): void {
  const Long = (protobuf.util as unknown as { Long?: { prototype: LongPrototype } }).Long;
  if (Long === undefined || Long.prototype[patched] === true) return;
  const proto = Long.prototype;
  const original = proto.toString;
  proto.toString = function (this: LongLike, radix?: number): string {
    return (radix === undefined || radix === 10 ? exactDecimal(this) : undefined) ?? original.call(this, radix);
  };
  proto[patched] = true;
}
