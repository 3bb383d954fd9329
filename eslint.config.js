// One lint config for the whole repo: typescript-eslint's type-aware rules plus our layering rules (eslint/layering.js).
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import { layering } from "./eslint/layering.js";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "**/*.js", "!eslint.config.js", "!eslint/*.js"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-extraneous-class": "off",
      "@typescript-eslint/no-unnecessary-condition": ["error", { allowConstantLoopConditions: true }],
      // The agent runs V8 in lite mode, without WebAssembly, which fetch()'s HTTP parser needs (decision 0007).
      "no-restricted-globals": [
        "error",
        { name: "fetch", message: "Use node:http: the agent runs without WebAssembly (docs/decisions/0007)." },
      ],
    },
  },
  // Entry points, adapters and the core: who may log, exit, do I/O and import whom.
  ...layering,
  {
    files: ["**/test/**", "test/**"],
    rules: {
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-floating-promises": "error",
    },
  },
  { files: ["eslint.config.js", "eslint/*.js"], ...tseslint.configs.disableTypeChecked },
);
