// Devices: the inventory of a tenant, blocks of device ids and
// certificates, and fleet audits.
import { api } from '../api.js';
import { h, clear, field, select, button, table, fmtTime, badge, dialog, action, facts, shortId, messageArea } from '../dom.js';
import { tenantPage } from '../page.js';
import { materialInput, materialString, section, validity } from '../widgets.js';

const PAGE = 50;
const query = { filter: '', prefix: '', offset: 0 };

function blockDialog(ctx, tenant, what, preset) {
  const isDevice = what === 'device';
  const id = h('input', { testid: 'block-id', required: isDevice, value: preset || '', placeholder: isDevice ? 'd:<org>:<type>:<id>' : 'SHA-256 fingerprint' });
  const pem = isDevice ? null : materialInput({ label: 'or the certificate (PEM)', testid: 'block-cert', accept: '.pem,.crt', rows: 3 });
  const reason = h('input', { testid: 'block-reason', maxlength: 200 });
  dialog({
    title: isDevice ? `Block a device of ${tenant}` : `Block a certificate in ${tenant}`,
    testid: 'block-dialog',
    submit: 'Block',
    body: [
      h('p', {}, isDevice ? 'The device id is refused whatever certificate it presents; if it is connected it is disconnected at once.'
        : 'The certificate is refused whatever id it claims; devices connected with it are disconnected at once.'),
      field(isDevice ? 'Device id (client id)' : 'Fingerprint', id), pem ? pem.el : null,
      field('Reason', reason, 'Optional, up to 200 characters.'),
    ],
    async onsubmit() {
      const fields = { tenant };
      if (reason.value) fields.reason = reason.value;
      let r;
      if (isDevice) {
        fields.id = id.value.trim();
        r = (await api.call('blockDevice', fields)).blocked;
      } else {
        const m = pem && await pem.value();
        if (id.value.trim()) fields.fingerprint = id.value.trim();
        else if (m) fields.certificate = materialString(m);
        else throw new Error('Give the fingerprint or the certificate.');
        r = (await api.call('blockCertificate', fields)).blocked;
      }
      await ctx.refresh();
      ctx.msgs.ok(`Blocked ${r.id || r.fingerprint}${r.reason ? ` (${r.reason})` : ''}.`);
    },
  });
}

async function deviceDialog(tenant, id) {
  const { device: d, nodes } = await api.call('getDevice', { tenant, id });
  const c = d.certificate || {};
  dialog({
    title: d.id,
    testid: 'device-dialog',
    wide: true,
    body: facts([
      ['Connected', d.connected ? `yes, on ${d.node} (${d.connections} connection${d.connections === 1 ? '' : 's'})` : 'no'],
      ['Blocked', d.blocked ? 'yes' : 'no'],
      ['First seen', fmtTime(d.firstSeen)], ['Last seen', fmtTime(d.lastSeen)],
      ['Certificates seen', d.certificates],
      ['Certificate fingerprint', h('code', {}, c.fingerprint)], ['Serial', c.serial],
      ['Issued by (trust-list entry)', c.issuer || 'none known'], ['Expires', c.notAfter ? validity({ notAfter: c.notAfter }) : null],
      ['Key', c.keyType ? `${c.keyType} ${c.keyBits || ''}` : null], ['Signature', c.signatureAlgorithm],
      ['Got its certificate', d.enrolled ? 'by enrollment over MQTT' : 'from a CA the operator registered'],
      ['Last refusal', d.lastRefusal ? `${d.lastRefusal.reason} at ${fmtTime(d.lastRefusal.time)}` : 'none'],
      ['Answered by', (nodes || []).map((n) => `${n.node}${n.answered ? '' : ' (no answer)'}`).join(', ')],
    ]),
  });
}

function devicesTable(ctx, tenant, devices) {
  return table([
    { title: 'Device id', cell: (d) => h('span', {}, d.id, ' ', d.blocked ? badge('blocked', 'bad') : null) },
    { title: 'Connected', cell: (d) => (d.connected ? badge(`on ${d.node}`, 'good') : 'no') },
    { title: 'Certificate', cell: (d) => (d.certificate ? h('code', { title: d.certificate.fingerprint }, shortId(d.certificate.fingerprint)) : '') },
    { title: 'Expires', cell: (d) => (d.certificate && d.certificate.notAfter ? validity({ notAfter: d.certificate.notAfter }) : '') },
    { title: 'Last seen', cell: (d) => fmtTime(d.lastSeen) },
    { title: 'Last refusal', cell: (d) => (d.lastRefusal ? `${d.lastRefusal.reason}, ${fmtTime(d.lastRefusal.time)}` : '') },
    {
      title: 'Actions',
      cell: (d) => h('div', { class: 'buttons' },
        button('Details', action(ctx.msgs, () => deviceDialog(tenant, d.id)), { testid: 'device-details' }),
        button('Block…', () => blockDialog(ctx, tenant, 'device', d.id), { testid: 'device-block', class: 'danger' }),
        d.certificate ? button('Block cert…', () => blockDialog(ctx, tenant, 'certificate', d.certificate.fingerprint), { testid: 'device-block-cert', class: 'danger' }) : null),
    },
  ], devices, { testid: 'devices', rowId: (d) => d.id, empty: 'No device matches.' });
}

function blocksTables(ctx, tenant, blocked) {
  const unblock = (command, key, value) => action(ctx.msgs, async () => {
    const r = await api.call(command, { tenant, [key]: value });
    await ctx.refresh();
    ctx.msgs.ok(`Unblocked ${r.unblocked}.`);
  });
  const cols = (key, command) => [
    { title: key === 'id' ? 'Device id' : 'Fingerprint', cell: (b) => (key === 'id' ? b.id : h('code', { title: b.fingerprint }, shortId(b.fingerprint))) },
    { title: 'Reason', cell: (b) => b.reason || '' },
    { title: 'By', cell: (b) => b.by || '' },
    { title: 'Blocked at', cell: (b) => fmtTime(b.blockedAt) },
    { title: 'Actions', cell: (b) => button('Unblock', unblock(command, key, b[key]), { testid: 'unblock' }) },
  ];
  return [
    h('h3', {}, 'Device ids'),
    table(cols('id', 'unblockDevice'), blocked.devices, { testid: 'blocked-devices', rowId: (b) => b.id, empty: 'No blocked device id.' }),
    h('h3', {}, 'Certificates'),
    table(cols('fingerprint', 'unblockCertificate'), blocked.certificates, { testid: 'blocked-certificates', rowId: (b) => b.fingerprint, empty: 'No blocked certificate.' }),
  ];
}

function auditForm(tenant) {
  const scope = select([['tenant', `tenant ${tenant}`], ['all', 'every tenant']], { testid: 'audit-scope' });
  const expiring = h('input', { type: 'number', min: 0, max: 3650, value: 30, testid: 'audit-expiring' });
  const seen = h('input', { type: 'number', min: 0, value: 30, testid: 'audit-seen' });
  const out = h('div', { testid: 'audit-result' });
  const msgs = messageArea('audit-messages');
  const form = h('form', { class: 'inline-form', testid: 'audit-form' },
    field('Audit', scope), field('Expiring within (days)', expiring), field('Seen within (days)', seen),
    h('button', { type: 'submit', testid: 'audit-run' }, 'Run audit'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msgs.clear();
    clear(out, h('p', { role: 'status' }, 'Auditing…'));
    try {
      const fields = { expiringWithinDays: Number(expiring.value), seenWithinDays: Number(seen.value) };
      if (scope.value === 'tenant') fields.tenant = tenant;
      const r = await api.call('auditFleet', fields);
      clear(out,
        h('div', { class: 'counters small' }, Object.entries(r.counts).map(([k, v]) => h('div', { class: `counter ${v ? 'warn' : ''}` }, h('span', { class: 'value' }, String(v)), h('span', { class: 'label' }, k)))),
        r.truncated ? h('p', { class: 'notice warn' }, 'Some findings were left out (1,000 of each kind are listed).') : null,
        table([
          { title: 'Finding', cell: (f) => f.finding },
          { title: 'Tenant', cell: (f) => f.tenant || '' },
          { title: 'Devices', cell: (f) => (f.devices || []).join(', ') },
          { title: 'CAs', cell: (f) => (f.cas || []).map(shortId).join(', ') },
          { title: 'Details', cell: (f) => ['certificate', 'notAfter', 'keyType', 'keyBits', 'signatureAlgorithm'].filter((k) => f[k] !== undefined).map((k) => `${k}: ${k === 'certificate' ? shortId(f[k]) : f[k]}`).join('; ') },
        ], r.findings, { testid: 'audit-findings', empty: 'No finding.' }));
    } catch (e) {
      clear(out);
      msgs.error(e.message);
    }
  });
  return [form, msgs.el, out];
}

export default tenantPage({
  id: 'devices',
  title: 'Devices',
  intro: 'The devices this node admitted, per tenant; blocks of device ids and certificates (they take effect at once); fleet audits.',
  changed: () => { query.offset = 0; },
  async load(ctx, tenant, picker) {
    const fields = { tenant, limit: PAGE, offset: query.offset };
    if (query.filter) fields.filter = query.filter;
    if (query.prefix) fields.prefix = query.prefix;
    const [list, blocked] = await Promise.all([api.call('listDevices', fields), api.call('listBlocked', { tenant })]);
    const filter = select([['', 'all'], ['connected', 'connected'], ['expiring', 'expiring'], ['refused', 'refused'], ['blocked', 'blocked']], { testid: 'device-filter', value: query.filter });
    const prefix = h('input', { type: 'search', testid: 'device-prefix', value: query.prefix, placeholder: 'd:org:type:' });
    const search = h('form', { class: 'inline-form', testid: 'device-search' }, field('Show', filter), field('Id starts with', prefix), h('button', { type: 'submit' }, 'Search'));
    search.addEventListener('submit', (ev) => {
      ev.preventDefault();
      query.filter = filter.value;
      query.prefix = prefix.value.trim();
      query.offset = 0;
      ctx.refresh();
    });
    filter.addEventListener('change', () => search.requestSubmit());
    const last = Math.min(list.offset + list.devices.length, list.total);
    const pager = h('div', { class: 'pager' },
      h('span', { testid: 'device-total' }, `${list.total ? list.offset + 1 : 0}–${last} of ${list.total}`),
      button('Previous', () => { query.offset = Math.max(0, query.offset - PAGE); ctx.refresh(); }, { disabled: list.offset === 0 }),
      button('Next', () => { query.offset += PAGE; ctx.refresh(); }, { disabled: last >= list.total }));
    return [
      h('div', { class: 'toolbar' }, picker.el,
        button('Block a device id…', () => blockDialog(ctx, tenant, 'device'), { testid: 'block-device-open' }),
        button('Block a certificate…', () => blockDialog(ctx, tenant, 'certificate'), { testid: 'block-cert-open' })),
      section('Inventory', null, search, devicesTable(ctx, tenant, list.devices), pager,
        h('p', { class: 'hint' }, `Answered by ${(list.nodes || []).map((n) => n.node).join(', ')}.`)),
      section('Blocks', null, blocksTables(ctx, tenant, blocked)),
      section('Fleet audit', null, auditForm(tenant)),
    ];
  },
});
