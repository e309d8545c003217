// A tenant's trust list: CAs and pinned endpoint certificates, added by
// file, drop or paste after a preview; active or not; CRL state, refresh
// and upload; details, downloads, export, removal.
import { api } from '../api.js';
import { h, clear, field, checkbox, select, button, table, fmtTime, badge, dialog, confirmDialog, action, facts, shortId } from '../dom.js';
import { tenantPage } from '../page.js';
import { downloadPem, fileBase } from '../pem.js';
import { materialInput, materialString, certificateFacts, certificateDownloads, section, validity } from '../widgets.js';

function previewTable(certs) {
  return table([
    { title: 'Subject', cell: (c) => c.subject },
    { title: 'Issuer', cell: (c) => c.issuer },
    { title: 'Joins as', cell: (c) => (c.isCA ? badge('CA') : badge('pinned endpoint', 'warn')) },
    { title: 'Validity', cell: (c) => validity(c) },
    { title: 'SHA-256', cell: (c) => h('code', { title: c.sha256 }, shortId(c.sha256)) },
  ], certs, { testid: 'trust-preview' });
}

function addDialog(ctx, tenant) {
  const material = materialInput({ label: 'Certificates: PEM (one or more) or DER files', testid: 'trust-add', accept: '.pem,.crt,.cer,.der', multiple: true, certificates: true, rows: 5 });
  const description = h('input', { testid: 'trust-add-description', maxlength: 256 });
  const crlUrl = h('input', { testid: 'trust-add-crlurl', type: 'url', placeholder: 'http://ca.example.com/devices.crl' });
  const purpose = select([['devices', 'devices: its certificates admit devices'], ['claim', 'claim: its certificates reach the enrollment topics only']], { testid: 'trust-add-purpose' });
  const inactive = checkbox('Add it inactive', { testid: 'trust-add-inactive' });
  const preview = h('div', { class: 'preview', testid: 'trust-preview-area' });
  let previewed = null;
  const d = dialog({
    title: `Add to the trust list of ${tenant}`,
    testid: 'trust-add-dialog',
    submit: 'Preview',
    wide: true,
    body: [
      h('p', {}, 'CA certificates become trust anchors of the tenant\'s devices; any other certificate is pinned: trusted for exactly itself. All or nothing.'),
      material.el, preview,
      field('Description', description, 'Up to 256 characters.'),
      h('details', {}, h('summary', {}, 'One CA only: CRL URL, purpose, state'),
        field('CRL URL (downloaded before the answer)', crlUrl), field('Purpose', purpose), inactive),
    ],
    async onsubmit(form, msgs) {
      const m = await material.value();
      if (!m) throw new Error('Choose, drop or paste the certificates first.');
      const pem = materialString(m);
      if (previewed !== pem) {
        const { certificates } = await api.call('inspectCertificate', { certificate: pem });
        clear(preview, h('h3', {}, `Preview: ${certificates.length} certificate${certificates.length === 1 ? '' : 's'}`), previewTable(certificates));
        previewed = pem;
        submitBtn.textContent = 'Save to the trust list';
        msgs.clear();
        return false;
      }
      const one = crlUrl.value.trim() || purpose.value !== 'devices' || inactive.querySelector('input').checked;
      let text;
      if (one) {
        const fields = { tenant, certificate: pem };
        if (description.value) fields.description = description.value;
        if (crlUrl.value.trim()) fields.crlUrl = crlUrl.value.trim();
        if (purpose.value !== 'devices') fields.purpose = purpose.value;
        if (inactive.querySelector('input').checked) fields.active = false;
        const r = await api.call('addCA', fields);
        text = `Added CA ${r.ca.subject}.${(r.warnings || []).map((w) => ` ${w.warning || JSON.stringify(w)}`).join('')}`;
      } else {
        const fields = { tenant, certificate: pem };
        if (description.value) fields.description = description.value;
        const { added } = await api.call('trustCertificate', fields);
        text = `Added ${added.map((a) => `${a.kind} ${a.id.slice(0, 16)}…`).join(', ')} to ${tenant}.`;
      }
      await ctx.refresh();
      ctx.msgs.ok(text);
      return true;
    },
  });
  const submitBtn = d.form.querySelector('[data-testid="trust-add-dialog-submit"]');
}

function crlFacts(crl) {
  if (!crl) return null;
  return facts([
    ['Source', crl.source], ['URL', crl.url], ['Learned URL', crl.learnedUrl],
    ['Last attempt', fmtTime(crl.lastAttempt)], ['Last fetch', fmtTime(crl.lastSuccess)],
    ['This update', fmtTime(crl.thisUpdate)], ['Next update', fmtTime(crl.nextUpdate)],
    ['Next attempt', fmtTime(crl.nextAttempt)], ['Revoked', crl.revoked],
    ['Failures since the last success', crl.failures], ['Last error', crl.lastError ? h('span', { class: 'error' }, crl.lastError) : null],
    ['When stale', crl.stalePolicy],
  ], { testid: 'crl-facts' });
}

function uploadCrlDialog(ctx, tenant, ca, after) {
  const crl = materialInput({ label: 'CRL (PEM or DER)', testid: 'crl-upload', accept: '.crl,.pem,.der', rows: 4 });
  const issuers = materialInput({ label: 'Issuer certificates (optional: an intermediate or CRL signer not in the trust list)', testid: 'crl-issuers', accept: '.pem,.crt,.der', multiple: true, certificates: true, rows: 3 });
  dialog({
    title: `Upload a CRL${ca ? ` for ${ca.commonName || ca.subject}` : ''}`,
    testid: 'crl-upload-dialog',
    submit: 'Upload',
    wide: true,
    body: [h('p', {}, 'The CRL goes to the CA that issued it, whose signature is verified.'), crl.el, issuers.el],
    async onsubmit() {
      const c = await crl.value();
      if (!c) throw new Error('Choose the CRL file.');
      const fields = { tenant, crl: materialString(c) };
      const i = await issuers.value();
      if (i) fields.issuerCertificates = i.text;
      const r = await api.call('uploadCRL', fields);
      await ctx.refresh();
      ctx.msgs.ok(`CRL installed for ${shortId(r.id)}: ${r.revoked} revoked, next update ${fmtTime(r.nextUpdate)}.`);
      if (after) after();
    },
  });
}

function editCaDialog(ctx, tenant, ca, after) {
  const description = h('input', { testid: 'ca-edit-description', value: ca.description || '', maxlength: 256 });
  const crlUrl = h('input', { testid: 'ca-edit-crlurl', type: 'url', value: (ca.crl && ca.crl.url) || '' });
  const stale = select([['', '(unchanged)'], ['fail-closed', 'fail-closed: refuse its devices'], ['fail-open', 'fail-open: admit them, with a warning']], { testid: 'ca-edit-stale' });
  dialog({
    title: `Edit ${ca.commonName || ca.subject}`,
    testid: 'ca-edit-dialog',
    submit: 'Save',
    body: [field('Description', description), field('CRL URL (downloaded before the answer)', crlUrl),
      field('When its CRL is stale', stale, 'Not together with a new CRL URL.')],
    async onsubmit() {
      const fields = { tenant, id: ca.id };
      if (description.value !== (ca.description || '')) fields.description = description.value;
      if (crlUrl.value.trim() && crlUrl.value.trim() !== ((ca.crl && ca.crl.url) || '')) fields.crlUrl = crlUrl.value.trim();
      if (stale.value) fields.stalePolicy = stale.value;
      await api.call('modifyCA', fields);
      await ctx.refresh();
      ctx.msgs.ok('Saved.');
      if (after) after();
    },
  });
}

async function detailsDialog(ctx, tenant, id) {
  const { ca } = await api.call('getCA', { tenant, id, format: 'pem' });
  const d = dialog({
    title: ca.commonName || ca.subject,
    testid: 'ca-dialog',
    wide: true,
    body: [
      h('p', {}, ca.active === false ? badge('inactive', 'bad') : badge('active', 'good'),
        ` ${ca.description || ''} Added ${fmtTime(ca.added)}.`),
      certificateFacts(ca),
      certificateDownloads(ca, ca.certificate),
      ca.isCA ? [h('h3', {}, 'CRL'), crlFacts(ca.crl),
        h('div', { class: 'buttons' },
          button('Refresh CRL now', action({ error: (t) => d.msgs.error(t), clear: () => d.msgs.clear() }, async () => {
            const r = await api.call('refreshCRL', { tenant, id });
            d.msgs.ok(`CRL fetched: ${r.revoked} revoked, next update ${fmtTime(r.nextUpdate)}.`);
            await ctx.refresh(true);
          }), { testid: 'crl-refresh' }),
          button('Upload CRL…', () => uploadCrlDialog(ctx, tenant, ca, d.close), { testid: 'crl-upload-open' }),
          button('Edit…', () => editCaDialog(ctx, tenant, ca, d.close), { testid: 'ca-edit' }))] : null,
    ],
  });
}

function entriesTable(ctx, tenant, rows, kind) {
  const cols = [
    { title: 'Common name', cell: (c) => h('span', {}, c.commonName || shortId(c.id), ' ', c.active === false ? badge('inactive', 'bad') : null) },
    { title: 'Description', cell: (c) => c.description || '' },
    { title: 'Expires', cell: (c) => validity({ notAfter: c.notAfter }) },
    { title: 'Added', cell: (c) => fmtTime(c.added) },
  ];
  if (kind !== 'pinned') {
    cols.push({ title: 'CRL', cell: (c) => (c.crl ? `${c.crl.source}${c.crl.revoked !== undefined ? `, ${c.crl.revoked} revoked` : ''}` : '') });
  }
  cols.push({
    title: 'Actions',
    cell: (c) => h('div', { class: 'buttons' },
      button('Details', action(ctx.msgs, () => detailsDialog(ctx, tenant, c.id)), { testid: 'ca-details' }),
      kind === 'ca' ? button(c.active === false ? 'Activate' : 'Deactivate', action(ctx.msgs, async () => {
        const { ca } = await api.call('setCAState', { tenant, id: c.id, active: c.active === false });
        await ctx.refresh();
        ctx.msgs.ok(`${ca.commonName} is ${ca.active ? 'active' : 'inactive: it vouches for no device, and its connected devices are disconnected'}.`);
      }), { testid: c.active === false ? 'ca-activate' : 'ca-deactivate' }) : null,
      button('Remove', action(ctx.msgs, async () => {
        if (!await confirmDialog('Remove from the trust list', `Remove ${c.commonName || c.id} from ${tenant}?`, 'Remove')) return;
        await api.call(kind === 'pinned' ? 'untrustCertificate' : 'removeCA', { tenant, id: c.id });
        await ctx.refresh();
        ctx.msgs.ok(`Removed ${c.commonName || c.id}.`);
      }), { testid: 'ca-remove', class: 'danger' })),
  });
  const empty = { ca: 'No CA.', pinned: 'No pinned certificate.', issuer: 'No known intermediate.' }[kind];
  return table(cols, rows, { testid: `trust-${kind}`, rowId: (c) => c.id, empty });
}

export default tenantPage({
  id: 'trust',
  title: 'Trust list',
  intro: 'What a tenant trusts: CAs (trust anchors, also intermediates) and pinned endpoint certificates. Changes apply from the next handshake.',
  async load(ctx, tenant, picker) {
    const { cas, pinned, issuers } = await api.call('listCAs', { tenant });
    return [
      h('div', { class: 'toolbar' }, picker.el,
        button('Add certificates…', () => addDialog(ctx, tenant), { testid: 'trust-add-open', class: 'primary' }),
        button('Upload CRL…', () => uploadCrlDialog(ctx, tenant, null), { testid: 'crl-upload-any' }),
        button('Download all', action(ctx.msgs, async () => {
          const r = await api.call('exportTrustList', { tenant });
          downloadPem(`${fileBase(tenant)}-trust-list`, r.trustList);
          ctx.msgs.ok(`Exported ${r.count} certificates of ${tenant}.`);
        }), { testid: 'trust-export' }),
        button('Clear CAs…', action(ctx.msgs, async () => {
          if (!await confirmDialog('Clear the CAs', `Remove every CA of ${tenant}'s trust list? Pinned certificates stay.`, 'Remove every CA')) return;
          const { removed } = await api.call('clearCAs', { tenant });
          await ctx.refresh();
          ctx.msgs.ok(`Removed ${removed} CA${removed === 1 ? '' : 's'} from ${tenant}.`);
        }), { testid: 'trust-clear', class: 'danger' })),
      section('CAs', null, entriesTable(ctx, tenant, cas, 'ca')),
      section('Pinned endpoint certificates', null, entriesTable(ctx, tenant, pinned, 'pinned')),
      section('Known intermediates (not trust anchors)', null, entriesTable(ctx, tenant, issuers, 'issuer')),
    ];
  },
});
