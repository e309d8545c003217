// Tenants: list, create, edit (host names, org id, policies, topic
// patterns, the server certificate of each slot), delete.
import { api } from '../api.js';
import { h, field, select, button, table, dialog, confirmDialog, lines, action } from '../dom.js';
import { frame } from '../page.js';
import { chooseTenant } from '../widgets.js';
import { SLOTS } from './certificates.js';

const POLICIES = [['certificate', 'certificate: a trusted client certificate alone'],
  ['certificate+token', 'certificate+token: certificate, then user name and password'],
  ['token', 'token: no client certificate, the broker\'s other means'],
  ['bridge', 'bridge: peer brokers by certificate, any client id']];
const REVOCATION = [['when-available', 'when-available: check the CRLs that are known'],
  ['required', 'required: refuse a chain whose CRL is unknown or stale']];

async function tenantDialog(ctx, name) {
  const [t, ...slotLists] = await Promise.all([
    name ? api.call('getTenant', { tenant: name }).then((d) => d.tenant) : Promise.resolve(null),
    ...SLOTS.map((s) => api.call('listServerCertificates', { slot: s }).then((d) => d.certificates)),
  ]);
  const tenantName = h('input', { testid: 'tenant-name', required: true, pattern: '[a-z0-9][a-z0-9_\\-]{0,63}', value: t ? t.tenant : '', disabled: !!t });
  const orgId = h('input', { testid: 'tenant-org', value: t ? t.orgId : '', placeholder: 'the tenant name' });
  const hostnames = h('textarea', { rows: 3, testid: 'tenant-hostnames', placeholder: 'mqtt.example.com\n*.devices.example.com' });
  hostnames.value = t ? t.hostnames.join('\n') : '';
  const policy = select(POLICIES, { testid: 'tenant-policy', value: t ? t.policy : 'certificate' });
  const revocation = select(REVOCATION, { testid: 'tenant-revocation', value: t ? t.revocation : 'when-available' });
  const pub = h('textarea', { rows: 2, testid: 'tenant-publish' });
  const sub = h('textarea', { rows: 2, testid: 'tenant-subscribe' });
  pub.value = t ? t.publishPatterns.join('\n') : '{org}/{type}/{id}/#';
  sub.value = t ? t.subscribePatterns.join('\n') : '{org}/{type}/{id}/#';
  const served = SLOTS.map((s, i) => {
    const current = t && t.serverCertificates ? (t.serverCertificates[s] || '') : '';
    return [s, select([['', 'the slot\'s default'], ...slotLists[i].map((c) => [c.id, `${c.commonName} (${c.id.slice(0, 12)}…)${c.default ? ', default' : ''}`])],
      { testid: `tenant-cert-${s}`, value: current })];
  });
  dialog({
    title: t ? `Edit tenant ${t.tenant}` : 'Create a tenant',
    testid: 'tenant-dialog',
    submit: t ? 'Save' : 'Create',
    wide: true,
    body: [
      field('Name', tenantName, '1 to 64 of a-z 0-9 - _, starting with a letter or digit.'),
      field('Org id', orgId, 'In device client ids d:<orgId>:<type>:<id>.'),
      field('SNI host names, one a line', hostnames, '*.example.com matches one label.'),
      field('Policy', policy), field('Revocation', revocation),
      field('Publish patterns, one a line', pub, '{org}, {type} and {id} are filled from the client id.'),
      field('Subscribe patterns, one a line', sub),
      h('fieldset', {}, h('legend', {}, 'Served with'), served.map(([s, el]) => field(`${s} slot`, el))),
    ],
    async onsubmit(form, msgs) {
      const wanted = {
        hostnames: lines(hostnames.value),
        policy: policy.value,
        revocation: revocation.value,
        publishPatterns: lines(pub.value),
        subscribePatterns: lines(sub.value),
      };
      if (orgId.value.trim()) wanted.orgId = orgId.value.trim();
      const certs = Object.fromEntries(served.map(([s, el]) => [s, el.value]));
      if (Object.values(certs).some(Boolean) || (t && Object.values(t.serverCertificates || {}).some(Boolean))) {
        wanted.serverCertificates = certs;
      }
      // An edit sends what changed only: a policy or org id given again
      // would count as a change, and disconnect the tenant's devices.
      const fields = { tenant: tenantName.value.trim() };
      for (const [k, v] of Object.entries(wanted)) {
        const before = t && (k === 'serverCertificates'
          ? Object.fromEntries(SLOTS.map((s) => [s, (t.serverCertificates || {})[s] || ''])) : t[k]);
        if (!t || JSON.stringify(before) !== JSON.stringify(v)) fields[k] = v;
      }
      if (t && Object.keys(fields).length === 1) {
        msgs.ok('Nothing changed.');
        return false;
      }
      const r = await api.call(t ? 'modifyTenant' : 'createTenant', fields);
      await ctx.refresh();
      ctx.msgs.ok(t ? `Saved tenant ${r.tenant.tenant}.` : `Created tenant ${r.tenant.tenant}.`);
    },
  });
}

async function load(ctx) {
  const { tenants } = await api.call('listTenants');
  return h('section', { class: 'card' }, table([
    { title: 'Name', cell: (t) => t.tenant },
    { title: 'Org id', cell: (t) => t.orgId },
    { title: 'Policy', cell: (t) => t.policy },
    { title: 'Revocation', cell: (t) => t.revocation },
    { title: 'Host names', cell: (t) => (t.hostnames.length ? t.hostnames.join(', ') : '(none: handshakes without a known name)') },
    { title: 'CAs', cell: (t) => String(t.caCount) },
    {
      title: 'Actions',
      cell: (t) => h('div', { class: 'buttons' },
        button('Edit…', action(ctx.msgs, () => tenantDialog(ctx, t.tenant)), { testid: 'tenant-edit' }),
        button('Trust list', () => { chooseTenant(t.tenant); location.hash = `#/trust/${encodeURIComponent(t.tenant)}`; }, { testid: 'tenant-trust' }),
        t.tenant === 'default' ? null : button('Delete', action(ctx.msgs, async () => {
          if (!await confirmDialog('Delete the tenant', `Delete tenant ${t.tenant} with its trust list, blocks and enrollment records? Its devices are refused from the next handshake.`, 'Delete')) return;
          await api.call('deleteTenant', { tenant: t.tenant });
          await ctx.refresh();
          ctx.msgs.ok(`Deleted tenant ${t.tenant}.`);
        }), { testid: 'tenant-delete', class: 'danger' })),
    },
  ], tenants, { testid: 'tenants', rowId: (t) => t.tenant }));
}

export default {
  id: 'tenants',
  title: 'Tenants',
  render(container) {
    frame(container, {
      title: 'Tenants',
      intro: 'A tenant is an organisation: its devices are picked by the SNI host name of the handshake; the default tenant serves the rest.',
      load,
      tools: (ctx) => button('Create tenant…', action(ctx.msgs, () => tenantDialog(ctx, null)), { testid: 'tenant-create', class: 'primary' }),
    });
  },
};
