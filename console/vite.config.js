// The built console is one file, index.html, with its script and style
// inline: Mosquitto's http_dir server sends no Content-Type, and browsers
// run no module script and apply no stylesheet without one. Every URL is
// relative (base './'), so that any path serves it.
import { createHash } from 'node:crypto';
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
      const scripts = [];
      const styles = [];
      for (const [name, file] of Object.entries(bundle)) {
        const ref = new RegExp(`<script[^>]*src="[^"]*${file.fileName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"[^>]*></script>`);
        const link = new RegExp(`<link[^>]*href="[^"]*${file.fileName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"[^>]*>`);
        if (file.type === 'chunk' && ref.test(page)) {
          const code = safeScript(file.code);
          scripts.push(code);
          page = page.replace(ref, () => `<script type="module">${code}</script>`);
          delete bundle[name];
        } else if (file.type === 'asset' && file.fileName.endsWith('.css') && link.test(page)) {
          const css = String(file.source);
          styles.push(css);
          page = page.replace(link, () => `<style>${css}</style>`);
          delete bundle[name];
        }
      }
      // A Content-Security-Policy (the http_dir server sets no header, a
      // meta element can): the page runs its own script and style and no
      // other, and talks only to the broker that served it. Markup that
      // reached the page anyway (a certificate's subject, say) could run
      // nothing.
      const sha = (text) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
      const csp = ["default-src 'none'", `script-src ${scripts.map(sha).join(' ')}`,
        `style-src ${styles.map(sha).join(' ')}`, "connect-src 'self'", 'img-src data:',
        "base-uri 'none'", "form-action 'none'"].join('; ');
      page = page.replace('<meta charset="utf-8">',
        () => `<meta charset="utf-8">\n  <meta http-equiv="Content-Security-Policy" content="${csp}">`);
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
