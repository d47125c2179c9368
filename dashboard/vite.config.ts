/**
 * Builds the dashboard that `colony serve` serves at `/`: `npm run build:dashboard` writes it to
 * dist/dashboard/, which the package ships, so users never build it. Assets are addressed
 * relative to the page (`base: "./"`), so the server may mount it under any path.
 *
 * `vite --config dashboard/vite.config.ts` serves it for development and sends /api to the
 * `colony serve` at COLONY_URL (default http://127.0.0.1:7420).
 */
import { fileURLToPath } from "node:url";
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root,
  base: "./",
  plugins: [preact()],
  build: {
    outDir: fileURLToPath(new URL("../dist/dashboard", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    // One small bundle is all there is; a warning past 250 kB keeps it that way.
    chunkSizeWarningLimit: 250,
  },
  server: {
    proxy: { "/api": { target: process.env.COLONY_URL ?? "http://127.0.0.1:7420", changeOrigin: true } },
  },
});
