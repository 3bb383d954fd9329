// One-off rewrite: every relative import of lib/src from outside it ("../../../lib/src/netlink/kernel.js") becomes the
// subpath import "#lib/netlink/kernel.js" (package.json "imports"). Static imports, `export … from` and dynamic
// import() in .ts files; CommonJS .cts files keep their relative requires. lib/src's own relative imports stay.
//   node dist/scripts/dev/convert-imports.js            rewrite the tree, print what changed
//   node dist/scripts/dev/convert-imports.js --check    change nothing; exit 1 if anything is left to convert
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../../..");
const LIB = resolve(ROOT, "lib/src");
/** A relative specifier in an import or export statement, a dynamic import() or a re-export. */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.\.?\/[^"']+)\2/g;

/** The subpath import for `specifier` written in `file`, or undefined when it does not point into lib/src. */
export function subpathFor(file: string, specifier: string): string | undefined {
  const target = resolve(dirname(file), specifier);
  if (!target.startsWith(LIB + sep)) return undefined;
  return `#lib/${relative(LIB, target).split(sep).join("/")}`;
}

function convert(file: string): { text: string; count: number } {
  const source = readFileSync(file, "utf8");
  let count = 0;
  const text = source.replace(SPECIFIER, (match: string, lead: string, quote: string, specifier: string) => {
    const subpath = subpathFor(file, specifier);
    if (subpath === undefined) return match;
    count += 1;
    return `${lead}${quote}${subpath}${quote}`;
  });
  return { text, count };
}

function trackedTypeScript(): string[] {
  const listed = execFileSync("git", ["ls-files", "-z", "--", "*.ts"], { cwd: ROOT, encoding: "utf8" });
  return listed
    .split("\0")
    .filter((f) => f !== "" && !f.endsWith(".d.ts") && !f.startsWith("lib/src/"))
    .map((f) => resolve(ROOT, f));
}

const check = process.argv.includes("--check");
let files = 0;
let imports = 0;
for (const file of trackedTypeScript()) {
  const { text, count } = convert(file);
  if (count === 0) continue;
  files += 1;
  imports += count;
  if (check) process.stdout.write(`${relative(ROOT, file)}: ${count} import(s) of lib/src by relative path\n`);
  else writeFileSync(file, text);
}
process.stdout.write(`${check ? "would convert" : "converted"} ${imports} import(s) in ${files} file(s) to #lib/…\n`);
if (check && imports > 0) process.exitCode = 1;
