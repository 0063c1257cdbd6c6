import { defineConfig } from 'vitest/config'
import vue from '@vitejs/plugin-vue'

// `npm run dev` proxies the API to a running `sharin ui` (SHARIN_URL, e.g. http://127.0.0.1:8000).
// Open http://localhost:5173/api/projects?token=TOKEN once: the server's cookie is then set for
// the dev server's address too, and the page at http://localhost:5173/ works.
const target = process.env.SHARIN_URL ?? 'http://127.0.0.1:8000'

export default defineConfig({
  plugins: [vue()],
  base: '/',
  build: {
    // the server serves the bundle from its package: src/sharin/interfaces/server/static
    outDir: '../src/sharin/interfaces/server/static',
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
  },
  server: { proxy: { '/api': { target, ws: true, changeOrigin: false } } },
  test: { include: ['tests/**/*.test.ts'], environment: 'node', testTimeout: 30000, hookTimeout: 60000 },
})
