// Rejected chains: what clients presented that failed verification, the
// certificates of each chain, and trusting one (by its root or its leaf)
// into a tenant.
import { api } from '../api.js';
import { h, field, select, button, table, fmtTime, dialog, confirmDialog, action, shortId } from '../dom.js';
import { frame } from '../page.js';
import { certificateFacts, certificateDownloads } from '../widgets.js';
import { pemBlocks, toPem } from '../pem.js';

async function trustDialog(ctx, entry) {
  const { tenants } = await api.call('listTenants');
  const tenant = select(tenants.map((t) => t.tenant), { testid: 'trust-rejected-tenant', value: entry.tenant && tenants.some((t) => t.tenant === entry.tenant) ? entry.tenant : undefined });
  const anchorRoot = h('input', { type: 'radio', name: 'anchor', value: 'root', id: 'anchor-root', checked: true, testid: 'anchor-root' });
  const anchorLeaf = h('input', { type: 'radio', name: 'anchor', value: 'leaf', id: 'anchor-leaf', testid: 'anchor-leaf' });
  dialog({
    title: `Trust the chain of ${entry.commonName || shortId(entry.id)}`,
    testid: 'trust-rejected-dialog',
    submit: 'Trust',
    body: [
      h('p', { class: 'notice warn' }, 'A chain proves nothing by itself: a client can send anyone\'s public leaf under a root of its own. Trust it only if you know where it comes from.'),
      field('Into tenant', tenant),
      h('fieldset', {}, h('legend', {}, 'Trust'),
        h('div', { class: 'field check' }, anchorRoot, h('label', { for: 'anchor-root' }, `by its root: the top certificate of the chain (${entry.chainLength} long) joins as a CA`)),
        h('div', { class: 'field check' }, anchorLeaf, h('label', { for: 'anchor-leaf' }, 'by its leaf: only this device\'s certificate is pinned'))),
    ],
    async onsubmit() {
      const anchor = anchorLeaf.checked ? 'leaf' : 'root';
      const r = await api.call('trustRejected', { id: entry.id, tenant: tenant.value, anchor });
      await ctx.refresh();
      ctx.msgs.ok(`Trusted in ${tenant.value}: ${r.kind} ${shortId(r.id)}.`);
    },
  });
}

async function detailsDialog(entry) {
  const { rejected } = await api.call('getRejected', { id: entry.id });
  const chain = (Array.isArray(rejected.chain) ? rejected.chain.join('') : rejected.chain || '');
  const pems = pemBlocks(chain).filter((b) => b.label === 'CERTIFICATE').map((b) => toPem('CERTIFICATE', b.base64));
  const { certificates } = pems.length ? await api.call('inspectCertificate', { certificate: pems.join('') }) : { certificates: [] };
  dialog({
    title: `Rejected chain of ${entry.commonName || shortId(entry.id)}`,
    testid: 'rejected-dialog',
    wide: true,
    body: [
      h('p', { class: 'error' }, rejected.reason),
      h('p', {}, `Tenant ${rejected.tenant || '?'}, SNI ${rejected.sni || '(none)'}, from ${rejected.address || '?'}; seen ${rejected.count} times, first ${fmtTime(rejected.firstSeen)}, last ${fmtTime(rejected.lastSeen)}.`),
      certificates.map((c, i) => h('section', { class: 'chain-cert', testid: 'chain-cert' },
        h('h3', {}, `${i === 0 ? 'Leaf' : `Depth ${i}`}: ${c.subject}`),
        certificateFacts(c), certificateDownloads(c, pems[i]))),
    ],
  });
}

async function load(ctx) {
  const { rejected } = await api.call('listRejected');
  return h('section', { class: 'card' }, table([
    { title: 'Common name', cell: (r) => r.commonName || '' },
    { title: 'Reason', cell: (r) => r.reason },
    { title: 'SNI', cell: (r) => r.sni || '' },
    { title: 'Tenant', cell: (r) => r.tenant || '' },
    { title: 'Address', cell: (r) => r.address || '' },
    { title: 'First seen', cell: (r) => fmtTime(r.firstSeen) },
    { title: 'Last seen', cell: (r) => fmtTime(r.lastSeen) },
    { title: 'Count', cell: (r) => String(r.count) },
    { title: 'Chain', cell: (r) => String(r.chainLength) },
    {
      title: 'Actions',
      cell: (r) => h('div', { class: 'buttons' },
        button('Details', action(ctx.msgs, () => detailsDialog(r)), { testid: 'rejected-details' }),
        button('Trust…', action(ctx.msgs, () => trustDialog(ctx, r)), { testid: 'rejected-trust', class: 'primary' })),
    },
  ], rejected, { testid: 'rejected', rowId: (r) => r.id, empty: 'No rejected chain.' }));
}

export default {
  id: 'rejected',
  title: 'Rejected chains',
  render(container) {
    frame(container, {
      title: 'Rejected chains',
      intro: 'Client chains that failed verification during a handshake, most recently seen first, as the client sent them.',
      load,
      tools: (ctx) => button('Clear…', action(ctx.msgs, async () => {
        if (!await confirmDialog('Clear the rejected chains', 'Forget every rejected chain?', 'Clear')) return;
        const { removed } = await api.call('clearRejected');
        await ctx.refresh();
        ctx.msgs.ok(`Removed ${removed} entr${removed === 1 ? 'y' : 'ies'}.`);
      }), { testid: 'rejected-clear', class: 'danger' }),
    });
  },
};
