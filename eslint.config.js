// Lint rules: typescript-eslint's recommended set with type information, so that a promise
// nobody awaits (a lost write) is an error rather than a silent bug.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "bin/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        // node:test registers tests synchronously; their promises are the runner's to await.
        { allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["describe", "suite", "test", "it"] }] },
      ],
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  { files: ["eslint.config.js", "bench/*.mjs"], ...tseslint.configs.disableTypeChecked },
  // Node code in a browser project: dashboard/tsconfig.node.json type-checks it (typecheck:dashboard).
  { files: ["dashboard/vite.config.ts"], ...tseslint.configs.disableTypeChecked },
);
