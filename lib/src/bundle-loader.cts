// Runs a bundled program (one CommonJS file made by scripts/build/bundle.ts) through vm.Script with the V8 code
// cache made at build time, so a start does not compile the JavaScript again (docs/decisions/0005, 0010).
// CommonJS (.cts → .cjs) because Node's ES module loader alone costs several ms per start. A missing or rejected
// cache (another Node version, other V8 flags) only costs speed. Bundles are pure ASCII (esbuild charset "ascii"),
// so they are read as latin1, which V8 keeps as a one-byte string without a UTF-8 decode.
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS file: this is its import syntax */
import fs = require("node:fs");
import Module = require("node:module");
import path = require("node:path");
import vm = require("node:vm");

/**
 * Loads and runs `bundle` with `cache`. With `writeCache` the cache is (re)written after the run instead, so it also
 * holds the functions the run compiled. `reportTo` (a fd) receives whether V8 accepted the cache, for tests.
 */
function runBundle(
  bundle: string,
  cache: string,
  options: { writeCache: boolean; reportTo?: number | undefined },
): void {
  let cachedData: Buffer | undefined;
  if (!options.writeCache) {
    try {
      cachedData = fs.readFileSync(cache);
    } catch {
      cachedData = undefined;
    }
  }
  const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, "latin1")), { filename: bundle, cachedData });
  if (options.reportTo !== undefined) {
    fs.writeSync(
      options.reportTo,
      `code cache: ${cachedData === undefined ? "missing" : script.cachedDataRejected === true ? "rejected" : "accepted"}\n`,
    );
  }
  const wrapper = script.runInThisContext() as (
    exports: object,
    require: NodeJS.Require,
    module: object,
    filename: string,
    dirname: string,
  ) => void;
  const bundleModule = { exports: {} };
  wrapper.call(
    bundleModule.exports,
    bundleModule.exports,
    Module.createRequire(bundle),
    bundleModule,
    bundle,
    path.dirname(bundle),
  );
  if (options.writeCache) {
    process.once("beforeExit", () => {
      const temp = `${cache}.${process.pid}.tmp`;
      fs.writeFileSync(temp, script.createCachedData());
      fs.renameSync(temp, cache);
    });
  }
}

export = { runBundle };
