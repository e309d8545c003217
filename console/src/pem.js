// PEM and DER in the browser: the API takes and gives PEM or base64 DER;
// files a user picks may be either. Downloads go through Blob URLs.

export function bytesToBase64(bytes) {
  let s = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
  }
  return btoa(s);
}

export function base64ToBytes(b64) {
  const s = atob(b64.replace(/\s+/g, ''));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i += 1) out[i] = s.charCodeAt(i);
  return out;
}

/** The blocks of a PEM text: [{label, base64}]. */
export function pemBlocks(text) {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  const out = [];
  let m = re.exec(text);
  while (m) {
    out.push({ label: m[1], base64: m[2].replace(/\s+/g, '') });
    m = re.exec(text);
  }
  return out;
}

export function toPem(label, base64) {
  const body = base64.match(/.{1,64}/g) || [];
  return `-----BEGIN ${label}-----\n${body.join('\n')}\n-----END ${label}-----\n`;
}

/** The DER of the first block of that label in a PEM text. */
export function firstBlockDer(pem, label) {
  const want = label || 'CERTIFICATE';
  const b = pemBlocks(pem).find((x) => x.label === want);
  if (!b) throw new Error(`no ${want} in the PEM text`);
  return base64ToBytes(b.base64);
}

function looksLikeText(bytes) {
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 4096));
  return head.includes('-----BEGIN');
}

/**
 * A file as the API takes it: its text when it is PEM, else its bytes as
 * base64 (DER, PKCS#12). Resolves {name, text, der} with one of the two.
 */
export async function readMaterial(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (looksLikeText(bytes)) return { name: file.name, text: new TextDecoder().decode(bytes) };
  return { name: file.name, der: bytesToBase64(bytes) };
}

/**
 * Certificate files (PEM with any number of certificates, or DER) as one
 * PEM text, DER files wrapped, so that a bundle can be previewed and
 * trusted in one request.
 */
export async function certificatesAsPem(files) {
  let out = '';
  for (const f of files) {
    const m = await readMaterial(f);
    if (m.text) {
      const blocks = pemBlocks(m.text).filter((b) => b.label === 'CERTIFICATE');
      if (!blocks.length) throw new Error(`${f.name}: no certificate in this PEM file`);
      out += blocks.map((b) => toPem('CERTIFICATE', b.base64)).join('');
    } else {
      out += toPem('CERTIFICATE', m.der);
    }
  }
  return out;
}

/** Offers data (a string or bytes) as a file download. */
export function download(name, data, type) {
  const blob = new Blob([data], { type: type || 'application/octet-stream' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** A file name from a certificate's common name or id. */
export function fileBase(name, id) {
  const base = (name || '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '');
  return base || (id ? id.slice(0, 16) : 'certificate');
}

export function downloadPem(name, pem) {
  download(`${name}.pem`, pem, 'application/x-pem-file');
}

/** The first certificate (or other block) of a PEM text, as DER. */
export function downloadDer(name, pem, label) {
  download(`${name}.der`, firstBlockDer(pem, label), 'application/pkix-cert');
}
