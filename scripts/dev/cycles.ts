// `npm run cycles`: import cycles among the TypeScript sources, resolved exactly as tsc resolves them (tsconfig.json:
// NodeNext, ".js" specifiers of ".ts" files, package.json "imports" such as #lib/…). Every kind of import counts —
// type-only ones too, `import x = require()`, `export … from` and dynamic import() — since a type-only cycle still
// ties two modules together. Prints each cycle and exits 1 when there is one. (madge resolves #lib/… to dist/.)
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { findCycles } from "./cycle-graph.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../../..");

/** How a file's imports resolve under NodeNext: .cts files are CommonJS, everything else ESM ("type": "module"). */
function modeOf(file: string): ts.ResolutionMode {
  return file.endsWith(".cts") ? ts.ModuleKind.CommonJS : ts.ModuleKind.ESNext;
}

function sourceGraph(): Map<string, Set<string>> {
  const configPath = resolve(ROOT, "tsconfig.json");
  const config = ts.getParsedCommandLineOfConfigFile(
    configPath,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    },
  );
  if (config === undefined) throw new Error(`cannot read ${configPath}`);
  const host = ts.createCompilerHost(config.options);
  const cache = ts.createModuleResolutionCache(ROOT, (name) => name, config.options);
  const graph = new Map<string, Set<string>>();
  const inProject = new Set(config.fileNames.map((f) => resolve(f)));
  for (const file of inProject) {
    const text = ts.sys.readFile(file) ?? "";
    // preProcessFile lists every import specifier, type-only and dynamic ones included.
    const info = ts.preProcessFile(text, true, true);
    const edges = new Set<string>();
    for (const ref of info.importedFiles) {
      const resolved = ts.resolveModuleName(
        ref.fileName,
        file,
        config.options,
        host,
        cache,
        undefined,
        modeOf(file),
      ).resolvedModule;
      const target = resolved === undefined ? undefined : resolve(resolved.resolvedFileName);
      if (target !== undefined && inProject.has(target) && !resolved?.isExternalLibraryImport) edges.add(target);
    }
    graph.set(file, edges);
  }
  return graph;
}

const graph = sourceGraph();
const cycles = findCycles(graph);
const show = (file: string): string => relative(ROOT, file);
if (cycles.length === 0) {
  process.stdout.write(`no import cycles among ${graph.size} TypeScript files (type-only imports included)\n`);
} else {
  process.stdout.write(`${cycles.length} import cycle(s) (type-only imports included):\n`);
  for (const cycle of cycles) process.stdout.write(`  ${[...cycle, cycle[0] ?? ""].map(show).join(" → ")}\n`);
  process.exitCode = 1;
}
