import assert from "node:assert/strict";
import protobuf from "protobufjs/minimal.js";
import { exactDecimal, installFastLongToString } from "../src/etcd/long-strings.js";

interface LongClass {
  fromString(
    text: string,
    unsigned?: boolean,
  ): { toString(radix?: number): string; low: number; high: number; unsigned: boolean };
  fromBits(low: number, high: number, unsigned?: boolean): { toString(radix?: number): string };
}

describe("etcd: int64 to decimal without long.js's radix loop", () => {
  const Long = (protobuf.util as unknown as { Long: LongClass }).Long;
  const edges = [
    "0",
    "1",
    "-1",
    "276",
    "4294967295",
    "4294967296",
    "-4294967296",
    String(2 ** 53 - 1),
    String(-(2 ** 53)),
    String(2 ** 53), // not exact as a double's neighbourhood: must fall back
    "7587869347574218421", // an etcd lease ID
    "-9223372036854775808",
    "9223372036854775807",
  ];

  it("prints exactly what long.js prints, signed and unsigned, and falls back beyond ±2^53", () => {
    const reference = edges.map((text) => Long.fromString(text).toString());
    const unsignedReference = ["0", "276", "18446744073709551615", String(2 ** 53 - 1)].map((t) =>
      Long.fromString(t, true).toString(),
    );
    const random = Array.from({ length: 2000 }, (_, i) => {
      const high = (Math.random() * 2 ** 32) | 0;
      const low = (Math.random() * 2 ** 32) | 0;
      return Long.fromBits(low, i % 2 === 0 ? high : high >> 11, i % 3 === 0);
    });
    const randomReference = random.map((l) => l.toString());
    installFastLongToString();
    installFastLongToString(); // idempotent
    // long.js's own toString needs a real Long (it calls this.isZero()): a plain object proves the fast path runs.
    const plain = { low: 5, high: 0, unsigned: false };
    assert.equal(
      (Long as unknown as { prototype: { toString(this: unknown): string } }).prototype.toString.call(plain),
      "5",
    );
    assert.deepEqual(
      edges.map((text) => Long.fromString(text).toString()),
      reference,
    );
    assert.deepEqual(
      ["0", "276", "18446744073709551615", String(2 ** 53 - 1)].map((t) => Long.fromString(t, true).toString()),
      unsignedReference,
    );
    assert.deepEqual(
      random.map((l) => l.toString()),
      randomReference,
    );
    assert.equal(Long.fromString("255").toString(16), "ff", "other radixes keep long.js's path");
    assert.equal(exactDecimal(Long.fromString(String(2 ** 53))), undefined);
    assert.equal(exactDecimal(Long.fromString("-9007199254740992")), "-9007199254740992");
  });
});
