// What agent/bin/agent runs: the bundled agent (dist/agent/trellis-agent.cjs) with its V8 code cache
// (docs/decisions/0010). The build sets TRELLIS_WRITE_CODE_CACHE to write the cache.
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS file: this is its import syntax */
import path = require("node:path");
import loader = require("../../lib/src/bundle-loader.cjs");
import service = require("../../cni-plugin/src/service/thread-pool.cjs");

// Before anything can start libuv's thread pool, which reads the size once (the CNI service's link deletions).
service.sizeThreadPool();

loader.runBundle(path.join(__dirname, "../trellis-agent.cjs"), path.join(__dirname, "../trellis-agent.cache"), {
  writeCache: process.env.TRELLIS_WRITE_CODE_CACHE !== undefined,
  reportTo: process.env.TRELLIS_REPORT_CODE_CACHE === undefined ? undefined : 2,
});
