// Pieces several pages share: file/paste inputs for key material, the
// tenant picker, certificate details, the note on private keys.
import { api, overTls } from './api.js';
import { h, field, facts, fmtTime, badge, table, nextId } from './dom.js';
import { readMaterial, certificatesAsPem, downloadPem, downloadDer, fileBase } from './pem.js';

/**
 * A file chooser with a drop zone and a text area to paste into.
 * value() resolves {text} (PEM pasted or read) or {der} (a binary file, base64).
 * With certificates: true, every file and the pasted text become one PEM bundle.
 */
export function materialInput({ label, testid, accept, multiple, certificates, rows, placeholder }) {
  const fileInput = h('input', { type: 'file', accept, multiple: !!multiple, testid: testid ? `${testid}-file` : null });
  const text = h('textarea', { rows: rows || 4, spellcheck: 'false', placeholder: placeholder || 'or paste PEM here', testid: testid ? `${testid}-text` : null });
  let dropped = [];
  const chosen = h('small', { class: 'hint' });
  const showChosen = () => {
    const names = [...fileInput.files, ...dropped].map((f) => f.name);
    chosen.textContent = names.length ? `Chosen: ${names.join(', ')}` : '';
  };
  fileInput.addEventListener('change', () => { dropped = []; showChosen(); });
  const zone = h('div', { class: 'dropzone', testid: testid ? `${testid}-drop` : null },
    h('span', {}, multiple ? 'Drop files here, or ' : 'Drop a file here, or '), fileInput, chosen);
  zone.addEventListener('dragover', (ev) => { ev.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    dropped = [...ev.dataTransfer.files].slice(0, multiple ? undefined : 1);
    showChosen();
  });
  const id = nextId('m');
  text.id = id;
  const el = h('fieldset', { class: 'material', testid },
    h('legend', {}, label), zone, h('label', { for: id, class: 'sub' }, 'Text'), text);
  return {
    el,
    files() { return [...fileInput.files, ...dropped]; },
    async value() {
      const files = this.files();
      if (certificates) {
        const pem = (await certificatesAsPem(files)) + (text.value.trim() ? `${text.value.trim()}\n` : '');
        return pem ? { text: pem } : null;
      }
      if (files.length) return readMaterial(files[0]);
      return text.value.trim() ? { text: `${text.value.trim()}\n` } : null;
    },
  };
}

/** The string the API takes for a piece of material (PEM text or base64 DER). */
export function materialString(m) {
  return m.text !== undefined ? m.text : m.der;
}

/** The note shown wherever a private key is uploaded or downloaded. */
export function keyNotice(direction) {
  const where = overTls()
    ? 'This page is connected over TLS (wss://), the only way certmgr moves private keys.'
    : 'This page is NOT connected over TLS: certmgr will refuse to move private keys on this connection.';
  const what = direction === 'download'
    ? 'The private key leaves the broker: whoever holds the file can impersonate this broker. Keep it secret, and delete it when done.'
    : 'The private key travels to the broker, which stores it unencrypted (mode 0600).';
  return h('p', { class: overTls() ? 'notice' : 'notice warn', testid: 'key-notice' }, `${what} ${where}`);
}

/** A select of the tenants, which keeps the choice between pages. */
let chosenTenant = null;
export async function tenantPicker(onchange, testid) {
  const { tenants } = await api.call('listTenants');
  const names = tenants.map((t) => t.tenant);
  if (!names.includes(chosenTenant)) chosenTenant = names.includes('default') ? 'default' : names[0];
  const s = h('select', { testid: testid || 'tenant-picker' }, names.map((n) => h('option', { value: n }, n)));
  s.value = chosenTenant;
  s.addEventListener('change', () => { chosenTenant = s.value; onchange(s.value); });
  return { el: field('Tenant', s), get value() { return s.value; }, names };
}

export function chooseTenant(name) { chosenTenant = name; }

function extension(cert, name) {
  const e = (cert.extensions || []).find((x) => x.name === name);
  return e ? e.value : '';
}

function keyText(c) {
  if (!c.keyType) return '';
  return [c.keyType.toUpperCase(), c.curve || (c.keyBits ? `${c.keyBits} bits` : '')].filter(Boolean).join(' ');
}

/** Validity with a badge when the certificate is expired or not yet valid. */
export function validity(c) {
  const now = new Date();
  const state = new Date(c.notAfter) < now ? badge('expired', 'bad')
    : (c.notBefore && new Date(c.notBefore) > now ? badge('not yet valid', 'warn') : null);
  const span = c.notBefore ? `${fmtTime(c.notBefore)} – ${fmtTime(c.notAfter)} ` : `${fmtTime(c.notAfter)} `;
  return h('span', {}, span, state);
}

/** The details of a certificate as getCA, inspectCertificate and getServerCertificate give them. */
export function certificateFacts(c) {
  return h('div', { class: 'cert-facts', testid: 'cert-facts' },
    facts([
      ['Subject', c.subject],
      ['Issuer', c.issuer],
      ['Serial', c.serial],
      ['Validity', validity(c)],
      ['Subject alt. names', extension(c, 'X509v3 Subject Alternative Name')],
      ['Key', keyText(c)],
      ['Kind', c.isCA ? 'CA certificate' : 'end-entity certificate'],
      ['SHA-256', h('code', { testid: 'sha256' }, c.sha256 || c.id)],
      ['SHA-1', c.sha1 ? h('code', {}, c.sha1) : null],
    ]),
    c.extensions && c.extensions.length ? h('details', {}, h('summary', {}, `Extensions (${c.extensions.length})`),
      table([
        { title: 'Name', cell: (e) => e.name },
        { title: 'Critical', cell: (e) => (e.critical ? 'yes' : 'no') },
        { title: 'Value', cell: (e) => e.value },
      ], c.extensions)) : null);
}

/** PEM and DER downloads of a certificate given as PEM. */
export function certificateDownloads(c, pem) {
  const base = fileBase(commonNameOf(c), c.id);
  return h('div', { class: 'buttons' },
    h('button', { type: 'button', testid: 'download-pem', onclick: () => downloadPem(base, pem) }, 'Download PEM'),
    h('button', { type: 'button', testid: 'download-der', onclick: () => downloadDer(base, pem) }, 'Download DER'));
}

export function commonNameOf(c) {
  if (c.commonName) return c.commonName;
  const m = /(?:^|,)CN=([^,]*)/.exec(c.subject || '');
  return m ? m[1] : '';
}

/** A section of a page with a title and buttons beside it. */
export function section(title, tools, ...body) {
  return h('section', { class: 'card' },
    h('div', { class: 'card-head' }, h('h2', {}, title), h('div', { class: 'buttons' }, tools)),
    body);
}

