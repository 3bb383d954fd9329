// One lint config for the whole repo: typescript-eslint's type-aware rules plus our layering rules.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "**/*.js", "!eslint.config.js"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-extraneous-class": "off",
      "@typescript-eslint/no-unnecessary-condition": ["error", { allowConstantLoopConditions: true }],
      "no-console": "error",
      "no-restricted-properties": [
        "error",
        { object: "process", property: "exit", message: "Only entry points exit." },
      ],
      // The agent runs V8 in lite mode, without WebAssembly, which fetch()'s HTTP parser needs (decision 0007).
      "no-restricted-globals": [
        "error",
        { name: "fetch", message: "Use node:http: the agent runs without WebAssembly (docs/decisions/0007)." },
      ],
    },
  },
  {
    // Entry points are the only places that talk to the console or exit (DEVELOPERS.md).
    files: ["agent/src/cli/**", "cni-plugin/src/main.ts", "scripts/**", "lab/**", "test/**", "**/test/**"],
    rules: { "no-console": "off", "no-restricted-properties": "off" },
  },
  {
    files: ["**/test/**", "test/**"],
    rules: {
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-floating-promises": "error",
    },
  },
  { files: ["eslint.config.js"], ...tseslint.configs.disableTypeChecked },
);
