// What bin/trellis runs: the bundled plugin (dist/cni-plugin/trellis.cjs) with its V8 code cache
// (docs/decisions/0005). The build sets TRELLIS_CNI_WRITE_CODE_CACHE to write the cache.
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS file: this is its import syntax */
import path = require("node:path");
import loader = require("../../lib/src/bundle-loader.cjs");

loader.runBundle(path.join(__dirname, "../trellis.cjs"), path.join(__dirname, "../trellis.cache"), {
  writeCache: process.env.TRELLIS_CNI_WRITE_CODE_CACHE !== undefined,
  // For the tests: a silently rejected cache would only show as ~10 ms more per pod operation.
  reportTo: process.env.TRELLIS_CNI_REPORT_CODE_CACHE === undefined ? undefined : 2,
});
