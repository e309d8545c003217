// The built console is one file, index.html, with its script and style
// inline: Mosquitto's http_dir server sends no Content-Type, and browsers
// run no module script and apply no stylesheet without one. Every URL is
// relative (base './'), so that any path serves it.
import { defineConfig } from 'vite';

// An inline script must not close its own element early.
const safeScript = (code) => code.replace(/<\/(script)/gi, '<\\/$1');

function inlineIntoHtml() {
  return {
    name: 'certmgr-inline-into-html',
    enforce: 'post',
    generateBundle(options, bundle) {
      const html = Object.values(bundle).find((f) => f.type === 'asset' && f.fileName.endsWith('.html'));
      if (!html) return;
      let page = String(html.source);
      for (const [name, file] of Object.entries(bundle)) {
        const ref = new RegExp(`<script[^>]*src="[^"]*${file.fileName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"[^>]*></script>`);
        const link = new RegExp(`<link[^>]*href="[^"]*${file.fileName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"[^>]*>`);
        if (file.type === 'chunk' && ref.test(page)) {
          page = page.replace(ref, () => `<script type="module">${safeScript(file.code)}</script>`);
          delete bundle[name];
        } else if (file.type === 'asset' && file.fileName.endsWith('.css') && link.test(page)) {
          page = page.replace(link, () => `<style>${String(file.source)}</style>`);
          delete bundle[name];
        }
      }
      html.source = page;
    },
  };
}

export default defineConfig({
  base: './',
  plugins: [inlineIntoHtml()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Firefox and Chromium of the last years; no polyfills.
    target: 'es2020',
    modulePreload: false,
    cssCodeSplit: false,
    assetsInlineLimit: 100000000,
    chunkSizeWarningLimit: 1000,
    rollupOptions: { output: { inlineDynamicImports: true } },
  },
});
