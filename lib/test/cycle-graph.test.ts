// The cycle finder behind `npm run cycles` (scripts/dev/cycle-graph.ts): one loop per tangle, none in a tree.
import assert from "node:assert/strict";
import { findCycles } from "../../scripts/dev/cycle-graph.js";

const graph = (edges: Record<string, string[]>): Map<string, Set<string>> =>
  new Map(Object.entries(edges).map(([from, to]) => [from, new Set(to)]));

describe("cycle finder (npm run cycles)", () => {
  it("finds none in a graph without cycles, however shared its leaves", () => {
    assert.deepEqual(findCycles(graph({ a: ["b", "c"], b: ["c"], c: [], d: ["a", "c"] })), []);
  });

  it("names each tangle once, as one loop from its first node", () => {
    assert.deepEqual(findCycles(graph({ a: ["b"], b: ["a"], c: ["d"], d: ["e"], e: ["c", "a"] })), [
      ["a", "b"],
      ["c", "d", "e"],
    ]);
  });

  it("a module importing itself is a cycle too", () => {
    assert.deepEqual(findCycles(graph({ a: ["a"], b: [] })), [["a"]]);
  });
});
