// What bin/trellis runs: loads the bundled plugin (dist/cni-plugin/trellis.cjs) through vm.Script with the V8 code
// cache made at build time, so a pod operation does not compile ~200 kB of JavaScript again (docs/decisions/0005).
// CommonJS (.cts → .cjs) because Node's ES module loader alone costs several ms per start. A missing or rejected
// cache (another Node version) only costs speed. The bundle is pure ASCII (esbuild charset "ascii"), so it is read
// as latin1, which V8 keeps as a one-byte string without a UTF-8 decode. With TRELLIS_CNI_WRITE_CODE_CACHE set (the build does this), the
// cache is written after the run instead.
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS file: this is its import syntax */
import fs = require("node:fs");
import Module = require("node:module");
import path = require("node:path");
import vm = require("node:vm");

const { readFileSync, renameSync, writeFileSync, writeSync } = fs;
const join = (...parts: string[]): string => path.join(...parts);

const bundle = join(__dirname, "../trellis.cjs");
const cacheFile = join(__dirname, "../trellis.cache");
const writeCache = process.env.TRELLIS_CNI_WRITE_CODE_CACHE;

function readCache(): Buffer | undefined {
  if (writeCache !== undefined) return undefined;
  try {
    return readFileSync(cacheFile);
  } catch {
    return undefined;
  }
}

const cachedData = readCache();
const script = new vm.Script(Module.wrap(readFileSync(bundle, "latin1")), { filename: bundle, cachedData });
// For the tests: a silently rejected cache would only show as ~10 ms more per pod operation.
if (process.env.TRELLIS_CNI_REPORT_CODE_CACHE !== undefined) {
  writeSync(2, `code cache: ${cachedData === undefined ? "missing" : script.cachedDataRejected === true ? "rejected" : "accepted"}\n`);
}
const wrapper = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;
const bundleModule = { exports: {} };
wrapper.call(bundleModule.exports, bundleModule.exports, Module.createRequire(bundle), bundleModule, bundle, join(__dirname, ".."));

if (writeCache !== undefined) {
  // After the run, so the cache also holds the functions the run compiled.
  process.once("beforeExit", () => {
    const temp = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(temp, script.createCachedData());
    renameSync(temp, cacheFile);
  });
}
