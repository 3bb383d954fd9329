// The layering lint rules (eslint/layering.js) run on source text placed where it would live in the tree: a
// deliberately wrong import fails with the rule's message, and the same file importing only what it may passes.
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ESLint, type Linter } from "eslint";
import tseslint from "typescript-eslint";
import { REPO_ROOT } from "../../lab/src/paths.js";

async function linter(): Promise<ESLint> {
  const { layering } = (await import(pathToFileURL(join(REPO_ROOT, "eslint/layering.js")).href)) as {
    layering: Linter.Config[];
  };
  const parser: Linter.Config = {
    files: ["**/*.ts", "**/*.cts"],
    languageOptions: { parser: tseslint.parser },
    plugins: { "@typescript-eslint": tseslint.plugin },
  };
  return new ESLint({ cwd: REPO_ROOT, overrideConfigFile: true, overrideConfig: [parser, ...layering] });
}

/** The messages of linting `code` as the file `path` (relative to the repository). */
async function problems(eslint: ESLint, path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(REPO_ROOT, path) });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? "?"}: ${m.message}`);
}

describe("lint: the layering rules", function () {
  this.timeout(20_000);
  let eslint: ESLint;
  before(async () => {
    eslint = await linter();
  });

  it("the core importing an adapter fails; importing its port passes", async () => {
    const wrong = await problems(
      eslint,
      "agent/src/dataplane/reconciler.ts",
      'import { openKernel } from "../../../lib/src/netlink/rtnetlink-kernel.js";\nexport const k = openKernel;\n',
    );
    assert.equal(wrong.length, 1, wrong.join("\n"));
    assert.match(wrong[0] ?? "", /no-restricted-imports: .*The core never imports an adapter/);
    assert.deepEqual(
      await problems(
        eslint,
        "agent/src/dataplane/reconciler.ts",
        'import type { Kernel } from "../../../lib/src/netlink/kernel.js";\nexport type K = Kernel;\n',
      ),
      [],
    );
    // A port declared beside its adapter may be imported as a type, not as a value.
    assert.deepEqual(
      await problems(
        eslint,
        "agent/src/proxy/service-proxy.ts",
        'import type { ProxyTable } from "./nft-proxy-table.js";\nexport type T = ProxyTable;\n',
      ),
      [],
    );
    assert.equal(
      (
        await problems(
          eslint,
          "agent/src/proxy/service-proxy.ts",
          'import { NftProxyTable } from "./nft-proxy-table.js";\nexport const T = NftProxyTable;\n',
        )
      ).length,
      1,
    );
  });

  it("the core using a real adapter by name, or an I/O module, fails", async () => {
    assert.match(
      (
        await problems(
          eslint,
          "agent/src/daemon/subnet-file.ts",
          'import { nodeFileStore } from "../../../lib/src/files.js";\nexport const f = nodeFileStore;\n',
        )
      ).join("\n"),
      /never uses a real adapter/,
    );
    assert.match(
      (
        await problems(
          eslint,
          "cni-plugin/src/plugin.ts",
          'import { readFileSync } from "node:fs";\nexport const r = readFileSync;\n',
        )
      ).join("\n"),
      /I\/O belongs in an adapter/,
    );
    assert.deepEqual(
      await problems(
        eslint,
        "cni-plugin/src/ipam/file-store.ts",
        'import { readFileSync } from "node:fs";\nexport const r = readFileSync;\n',
      ),
      [],
      "an adapter may",
    );
  });

  it("the plugin importing the agent fails, and the agent importing the plugin's internals fails", async () => {
    assert.match(
      (
        await problems(
          eslint,
          "cni-plugin/src/plugin.ts",
          'import type { Agent } from "../../agent/src/daemon/agent.js";\nexport type A = Agent;\n',
        )
      ).join("\n"),
      /never imports the agent/,
    );
    assert.match(
      (
        await problems(
          eslint,
          "agent/src/cli/daemon-main.ts",
          'import { realDeps } from "../../../cni-plugin/src/real-deps.js";\nexport const d = realDeps;\n',
        )
      ).join("\n"),
      /through cni-plugin\/src\/index\.ts only/,
    );
    assert.deepEqual(
      await problems(
        eslint,
        "agent/src/cli/daemon-main.ts",
        'import { realDeps } from "../../../cni-plugin/src/index.js";\nexport const d = realDeps;\n',
      ),
      [],
    );
    assert.match(
      (
        await problems(
          eslint,
          "lib/src/ipv4.ts",
          'import { Agent } from "../../agent/src/daemon/agent.js";\nexport const A = Agent;\n',
        )
      ).join("\n"),
      /imports neither/,
    );
  });

  it("only entry points log, exit or read the environment", async () => {
    const core = await problems(
      eslint,
      "agent/src/lease/keeper.ts",
      'console.log("x");\nprocess.exit(1);\nexport const e = process.env.HOME;\n',
    );
    assert.deepEqual(
      core.map((p) => p.split(":")[0]),
      ["no-console", "no-restricted-properties", "no-restricted-properties"],
    );
    assert.deepEqual(await problems(eslint, "agent/src/cli/main.ts", 'console.log("x");\nprocess.exit(1);\n'), []);
  });
});
