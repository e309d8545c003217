// The built files are served from Mosquitto's http_dir, under any path:
// every URL in them is relative.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Firefox and Chromium of the last years; no polyfills.
    target: 'es2020',
    chunkSizeWarningLimit: 1000,
  },
});
