// Broker certificates, per slot: the list with its default, details and
// downloads, upload (certificate and key, or PKCS#12), the built-in
// self-signed certificate, and CSRs signed by an operator's own CA.
import { api } from '../api.js';
import { h, clear, field, checkbox, select, button, table, fmtTime, badge, dialog, confirmDialog, lines, action } from '../dom.js';
import { frame } from '../page.js';
import { download, downloadPem, base64ToBytes, fileBase } from '../pem.js';
import { materialInput, materialString, keyNotice, certificateFacts, certificateDownloads, section, validity, commonNameOf } from '../widgets.js';

export const SLOTS = ['mqtt', 'websockets', 'bridge'];
let slot = 'mqtt';

export const KEYS = {
  'ec-P-256': { type: 'ec', curve: 'P-256' },
  'ec-P-384': { type: 'ec', curve: 'P-384' },
  'rsa-2048': { type: 'rsa', bits: 2048 },
  'rsa-3072': { type: 'rsa', bits: 3072 },
  'rsa-4096': { type: 'rsa', bits: 4096 },
  ed25519: { type: 'ed25519' },
};
export const KEY_LABELS = [['ec-P-256', 'EC P-256'], ['ec-P-384', 'EC P-384'], ['rsa-2048', 'RSA 2048'],
  ['rsa-3072', 'RSA 3072'], ['rsa-4096', 'RSA 4096']];

function uploadDialog(ctx) {
  const modePem = h('input', { type: 'radio', name: 'mode', value: 'pem', checked: true, id: 'up-mode-pem', testid: 'upload-mode-pem' });
  const modeP12 = h('input', { type: 'radio', name: 'mode', value: 'p12', id: 'up-mode-p12', testid: 'upload-mode-p12' });
  const cert = materialInput({ label: 'Certificate (PEM chain, or DER leaf)', testid: 'upload-cert', accept: '.pem,.crt,.cer,.der' });
  const key = materialInput({ label: 'Private key (PEM or DER; PKCS#8 or traditional; encrypted or not)', testid: 'upload-key', accept: '.pem,.key,.der' });
  const p12 = materialInput({ label: 'PKCS#12 file', testid: 'upload-p12', accept: '.p12,.pfx', placeholder: 'PKCS#12 is binary: choose the file' });
  const passphrase = h('input', { type: 'password', autocomplete: 'off', testid: 'upload-passphrase' });
  const description = h('input', { testid: 'upload-description' });
  const makeDefault = checkbox('Make it the default of the slot', { testid: 'upload-default' });
  const pemPart = h('div', {}, cert.el, key.el);
  const p12Part = h('div', { hidden: true }, p12.el);
  const sync = () => { pemPart.hidden = !modePem.checked; p12Part.hidden = !modeP12.checked; };
  modePem.addEventListener('change', sync);
  modeP12.addEventListener('change', sync);
  dialog({
    title: `Upload a certificate to the ${slot} slot`,
    testid: 'upload-dialog',
    submit: 'Upload',
    wide: true,
    body: [
      keyNotice('upload'),
      h('fieldset', { class: 'inline' }, h('legend', {}, 'What to upload'),
        modePem, h('label', { for: 'up-mode-pem' }, 'Certificate and key'),
        modeP12, h('label', { for: 'up-mode-p12' }, 'PKCS#12')),
      pemPart, p12Part,
      field('Passphrase (of an encrypted key or of the PKCS#12)', passphrase),
      field('Description', description), makeDefault,
    ],
    async onsubmit() {
      const fields = { slot };
      if (modePem.checked) {
        const c = await cert.value();
        const k = await key.value();
        if (!c || !k) throw new Error('Give the certificate and its private key.');
        fields.certificate = materialString(c);
        fields.privateKey = materialString(k);
      } else {
        const p = await p12.value();
        if (!p) throw new Error('Choose the PKCS#12 file.');
        if (p.der === undefined) throw new Error('A PKCS#12 file is binary; this one is text.');
        fields.pkcs12 = p.der;
      }
      if (passphrase.value) fields.passphrase = passphrase.value;
      if (description.value) fields.description = description.value;
      if (makeDefault.querySelector('input').checked) fields.makeDefault = true;
      const { certificate } = await api.call('addServerCertificate', fields);
      await ctx.refresh();
      ctx.msgs.ok(`Added ${certificate.commonName || certificate.id} to the ${slot} slot${certificate.default ? ' as its default' : ''}.`);
    },
  });
}

function regenerateDialog(ctx) {
  const cn = h('input', { testid: 'regen-cn', placeholder: 'the host name' });
  const sans = h('textarea', { rows: 3, testid: 'regen-sans', placeholder: 'DNS:broker.example.com' });
  const key = select([...KEY_LABELS, ['ed25519', 'Ed25519']], { testid: 'regen-key' });
  dialog({
    title: `Regenerate the self-signed certificate of the ${slot} slot`,
    testid: 'regen-dialog',
    submit: 'Regenerate',
    body: [
      h('p', {}, 'A new key and certificate replace the built-in one and become the default of the slot, from the next handshake on.'),
      field('Common name', cn, 'Default: the broker\'s host name.'),
      field('Subject alternative names, one a line', sans, 'Default: the common name and localhost.'),
      field('Key', key),
    ],
    async onsubmit() {
      const fields = { slot, key: KEYS[key.value] };
      if (cn.value.trim()) fields.commonName = cn.value.trim();
      if (sans.value.trim()) fields.subjectAltNames = lines(sans.value);
      const { certificate } = await api.call('regenerateSelfSigned', fields);
      await ctx.refresh();
      ctx.msgs.ok(`The ${slot} slot now serves the new self-signed certificate ${certificate.commonName || certificate.id}.`);
    },
  });
}

function keyDownloadDialog(c) {
  dialog({
    title: 'Download the chain with its private key',
    testid: 'key-download-dialog',
    submit: 'Download with the key',
    body: [keyNotice('download'), h('p', {}, `Certificate ${commonNameOf(c) || c.id} of the ${slot} slot.`)],
    async onsubmit() {
      const { certificate } = await api.call('getServerCertificate', { slot, id: c.id, format: 'pem', includePrivateKey: true });
      download(`${fileBase(commonNameOf(c), c.id)}-chain-key.pem`, certificate.certificate + certificate.privateKey, 'application/x-pem-file');
    },
  });
}

async function trustDialog(c) {
  const { tenants } = await api.call('listTenants');
  const tenant = select(tenants.map((t) => t.tenant), { testid: 'trust-server-tenant' });
  dialog({
    title: 'Trust this certificate in a tenant',
    testid: 'trust-server-dialog',
    submit: 'Trust',
    body: [h('p', {}, 'The certificate is pinned in the tenant\'s trust list and each CA of its chain added as a CA: bridged brokers that share their bridge certificates trust each other.'),
      field('Tenant', tenant)],
    async onsubmit(form, msgs) {
      const { added } = await api.call('trustServerCertificate', { slot, id: c.id, tenant: tenant.value });
      msgs.ok(`Added to ${tenant.value}: ${added.map((a) => `${a.kind} ${a.id.slice(0, 16)}…`).join(', ') || 'nothing new'}.`);
      return false;
    },
  });
}

async function detailsDialog(entry) {
  const { certificate: c } = await api.call('getServerCertificate', { slot, id: entry.id, format: 'pem' });
  dialog({
    title: commonNameOf(c) || c.subject,
    testid: 'server-cert-dialog',
    wide: true,
    body: [
      h('p', {}, c.default ? badge('default', 'good') : null, c.builtin ? badge('built-in self-signed') : null,
        ` Slot ${slot}; chain of ${c.chainLength}; added ${fmtTime(c.added)}. ${c.description || ''}`),
      certificateFacts(c),
      h('h3', {}, 'Download'),
      certificateDownloads(c, c.certificate),
      h('div', { class: 'buttons' },
        button('Download chain with private key…', () => keyDownloadDialog(c), { testid: 'download-key', class: 'danger' }),
        button('Trust in a tenant…', () => trustDialog(c), { testid: 'trust-server' })),
    ],
  });
}

function certificatesTable(ctx, certs) {
  return table([
    { title: 'Common name', cell: (c) => h('span', {}, c.commonName, ' ', c.default ? badge('default', 'good') : null, c.builtin ? badge('built-in') : null) },
    { title: 'Expires', cell: (c) => validity({ notAfter: c.notAfter }) },
    { title: 'Description', cell: (c) => c.description || '' },
    { title: 'Chain', cell: (c) => String(c.chainLength) },
    { title: 'Added', cell: (c) => fmtTime(c.added) },
    {
      title: 'Actions',
      cell: (c) => h('div', { class: 'buttons' },
        button('Details', action(ctx.msgs, () => detailsDialog(c)), { testid: 'cert-details' }),
        c.default ? null : button('Make default', action(ctx.msgs, async () => {
          await api.call('setDefaultServerCertificate', { slot, id: c.id });
          await ctx.refresh();
          ctx.msgs.ok(`${c.commonName} is the default of the ${slot} slot from the next handshake on.`);
        }), { testid: 'cert-make-default' }),
        c.default || c.builtin ? null : button('Remove', action(ctx.msgs, async () => {
          if (!await confirmDialog('Remove the certificate', `Remove ${c.commonName} (${c.id}) from the ${slot} slot? Its key goes with it.`, 'Remove')) return;
          await api.call('removeServerCertificate', { slot, id: c.id });
          await ctx.refresh();
          ctx.msgs.ok(`Removed ${c.commonName}.`);
        }), { testid: 'cert-remove', class: 'danger' })),
    },
  ], certs, { testid: 'server-certs', rowId: (c) => c.id });
}

function createCsrDialog(ctx) {
  const names = ['CN', 'O', 'OU', 'C', 'ST', 'L', 'emailAddress'];
  const labels = { CN: 'Common name (CN)', O: 'Organisation (O)', OU: 'Unit (OU)', C: 'Country (C, two letters)', ST: 'State (ST)', L: 'Locality (L)', emailAddress: 'E-mail address' };
  const inputs = Object.fromEntries(names.map((n) => [n, h('input', { testid: `csr-${n}`, name: n })]));
  const sans = h('textarea', { rows: 3, testid: 'csr-sans', placeholder: 'DNS:broker.example.com\nIP:192.0.2.10' });
  const key = select(KEY_LABELS, { testid: 'csr-key' });
  const reuse = checkbox('Reuse the slot\'s current default key', { testid: 'csr-reuse' });
  reuse.querySelector('input').addEventListener('change', (ev) => { key.disabled = ev.target.checked; });
  dialog({
    title: `Create a CSR for the ${slot} slot`,
    testid: 'csr-dialog',
    submit: 'Create CSR',
    wide: true,
    body: [
      h('p', {}, 'certmgr makes the key (it stays in the broker) and the request; your CA signs it; install the answer below.'),
      h('div', { class: 'grid' }, names.map((n) => field(labels[n], inputs[n]))),
      field('Subject alternative names, one a line (DNS:, IP:, email:, URI:)', sans),
      field('New key', key), reuse,
    ],
    async onsubmit() {
      const subject = {};
      for (const n of names) if (inputs[n].value.trim()) subject[n] = inputs[n].value.trim();
      const fields = { slot, subject };
      if (sans.value.trim()) fields.subjectAltNames = lines(sans.value);
      if (reuse.querySelector('input').checked) fields.reuseKey = true;
      else fields.key = KEYS[key.value];
      const { csr } = await api.call('createCSR', fields);
      await ctx.refresh();
      csrResultDialog(csr);
    },
  });
}

function csrResultDialog(csr) {
  const text = h('textarea', { rows: 10, readonly: true, spellcheck: 'false', testid: 'csr-pem' });
  text.value = csr.csr;
  dialog({
    title: 'The CSR',
    testid: 'csr-result-dialog',
    wide: true,
    body: [h('p', {}, `Send this request to your CA (subject ${csr.subject}, ${csr.keyType} ${csr.keyBits}). Install its answer with "Install certificate" in the CSR list.`),
      text,
      h('div', { class: 'buttons' }, button('Download PEM', () => downloadPem(fileBase(csr.subject, csr.id), csr.csr), { testid: 'csr-download' }))],
  });
  text.select();
}

function installDialog(ctx, csr) {
  const cert = materialInput({ label: 'The CA\'s answer (PEM, with or without its chain, or a DER leaf)', testid: 'install-cert', accept: '.pem,.crt,.cer,.der', rows: 6 });
  const makeDefault = checkbox('Make it the default of the slot', { testid: 'install-default' });
  dialog({
    title: 'Install the signed certificate',
    testid: 'install-dialog',
    submit: 'Install',
    wide: true,
    body: [h('p', {}, `For the CSR ${csr.subject} (${csr.id.slice(0, 16)}…) of the ${slot} slot.`), cert.el, makeDefault],
    async onsubmit() {
      const c = await cert.value();
      if (!c) throw new Error('Give the certificate the CA signed.');
      const fields = { slot, csr: csr.id, certificate: materialString(c) };
      if (makeDefault.querySelector('input').checked) fields.makeDefault = true;
      const r = await api.call('installCertificate', fields);
      await ctx.refresh();
      ctx.msgs.ok(`Installed certificate ${r.id.slice(0, 16)}…${r.default ? ', the default of the slot' : ''}.`);
    },
  });
}

function csrTable(ctx, csrs) {
  return table([
    { title: 'Subject', cell: (c) => c.subject },
    { title: 'Key', cell: (c) => `${c.keyType} ${c.keyBits}${c.reusedKey ? ' (reused)' : ''}` },
    { title: 'Created', cell: (c) => fmtTime(c.created) },
    {
      title: 'Actions',
      cell: (c) => h('div', { class: 'buttons' },
        button('PEM', action(ctx.msgs, async () => {
          const { csr } = await api.call('getCSR', { slot, id: c.id, format: 'pem' });
          downloadPem(`${fileBase(c.subject, c.id)}.csr`, csr.csr);
        }), { testid: 'csr-get-pem', 'aria-label': 'Download the CSR as PEM' }),
        button('DER', action(ctx.msgs, async () => {
          const { csr } = await api.call('getCSR', { slot, id: c.id, format: 'der' });
          download(`${fileBase(c.subject, c.id)}.csr.der`, base64ToBytes(csr.csr), 'application/pkcs10');
        }), { testid: 'csr-get-der', 'aria-label': 'Download the CSR as DER' }),
        button('Install certificate…', () => installDialog(ctx, c), { testid: 'csr-install', class: 'primary' }),
        button('Remove', action(ctx.msgs, async () => {
          if (!await confirmDialog('Remove the CSR', `Remove the CSR ${c.subject}? Its pending key goes with it.`, 'Remove')) return;
          await api.call('removeCSR', { slot, id: c.id });
          await ctx.refresh();
          ctx.msgs.ok('Removed the CSR.');
        }), { testid: 'csr-remove', class: 'danger' })),
    },
  ], csrs, { testid: 'csrs', rowId: (c) => c.id, empty: 'No pending CSR.' });
}

export default {
  id: 'certificates',
  title: 'Broker certificates',
  render(container, [arg]) {
    if (SLOTS.includes(arg)) slot = arg;
    const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Slot' });
    const drawTabs = () => clear(tabs, SLOTS.map((s) => h('button', {
      type: 'button',
      testid: `slot-${s}`,
      'aria-pressed': String(s === slot),
      onclick: () => { location.hash = `#/certificates/${s}`; },
    }, s)));
    drawTabs();
    const ctx = frame(container, {
      title: 'Broker certificates',
      intro: 'The broker\'s own certificates, per slot: mqtt (MQTT over TLS), websockets (secure WebSockets, this console too) and bridge. A change is served from the next handshake.',
      async load(c) {
        const [{ certificates }, { csrs }] = await Promise.all([
          api.call('listServerCertificates', { slot }), api.call('listCSRs', { slot })]);
        return [
          tabs,
          section(`Certificates of the ${slot} slot`, [
            button('Upload…', () => uploadDialog(c), { testid: 'upload-open', class: 'primary' }),
            button('Regenerate self-signed…', () => regenerateDialog(c), { testid: 'regen-open' }),
          ], certificatesTable(c, certificates)),
          section('Certificate signing requests', [button('Create CSR…', () => createCsrDialog(c), { testid: 'csr-open' })], csrTable(c, csrs)),
        ];
      },
    });
    return ctx;
  },
};
