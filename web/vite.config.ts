/// <reference types="vitest/config" />
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The gateway serves web/dist at / in production (same origin, so the
// HttpOnly session cookie reaches both fetch and the WebSocket). In
// development Vite proxies the API and the socket to a local gateway.
const gateway = process.env.TIDECHAT_GATEWAY ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: [
      // rehype-katex turns KaTeX's HTML into a tree; in browsers this package
      // parses it with DOMParser, and every `style="..."` KaTeX writes is then
      // an inline style the gateway's CSP refuses (a console error per
      // formula, though React re-applies the styles itself). Its other build
      // parses with parse5 in plain JS: no DOM, nothing for the CSP to refuse.
      {
        find: /^hast-util-from-html-isomorphic$/,
        replacement: fileURLToPath(new URL("./node_modules/hast-util-from-html-isomorphic/index.js", import.meta.url)),
      },
    ],
  },
  server: {
    proxy: {
      "/api": { target: gateway, changeOrigin: false },
      "/ws": { target: gateway, ws: true, changeOrigin: false },
    },
  },
  build: {
    outDir: "dist",
    sourcemap: true,
    chunkSizeWarningLimit: 1500,
    // No asset inlined as a data: URI (Vite inlines files under 4 KB, one of
    // KaTeX's fonts among them): the gateway's CSP allows fonts from 'self' only.
    assetsInlineLimit: 0,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    restoreMocks: true,
  },
});
