// Status: getStatus's counts, expiry and host-name warnings, shared CAs,
// CRL health and, on a fleet node, the node's view of etcd.
import { api } from '../api.js';
import { h, table, facts, fmtTime, shortId, badge } from '../dom.js';
import { frame, } from '../page.js';
import { section } from '../widgets.js';

function where(x) {
  return x.slot ? `slot ${x.slot}` : (x.tenant ? `tenant ${x.tenant}` : '');
}

function counters(s) {
  const items = [
    ['Tenants', s.tenants], ['CAs', s.cas], ['Pinned', s.pinned], ['Rejected chains', s.rejected],
    ['Connected devices', s.connectedDevices], ['Administrators with an admin certificate', s.connectedAdministrators],
    ['Handshakes', s.handshakes], ['Store generation', s.generation],
  ];
  return h('div', { class: 'counters', testid: 'status-counters' },
    items.map(([k, v]) => h('div', { class: 'counter', 'data-key': k }, h('span', { class: 'value' }, String(v ?? '–')), h('span', { class: 'label' }, k))));
}

function crlHealth(crls) {
  return table([
    { title: 'Tenant', cell: (c) => c.tenant },
    { title: 'CA', cell: (c) => c.commonName || shortId(c.id) },
    { title: 'Source', cell: (c) => c.source },
    { title: 'State', cell: (c) => (c.stale ? badge('stale', 'bad') : (c.failures ? badge(`${c.failures} failures`, 'warn') : badge('fresh', 'good'))) },
    { title: 'Last fetch', cell: (c) => fmtTime(c.lastSuccess) },
    { title: 'Next update', cell: (c) => fmtTime(c.nextUpdate) },
    { title: 'Next attempt', cell: (c) => fmtTime(c.nextAttempt) },
    { title: 'Revoked', cell: (c) => String(c.revoked ?? '') },
    { title: 'Stale policy', cell: (c) => c.stalePolicy || '' },
    { title: 'Last error', cell: (c) => c.lastError || '' },
  ], crls || [], { testid: 'crl-health', empty: 'No CA has a CRL or a URL for one.' });
}

function fleet(f) {
  return section('Fleet node', null, facts([
    ['Store', f.store], ['Node', f.node], ['Endpoints', (f.endpoints || []).join(', ')], ['Prefix', f.prefix],
    ['etcd', f.etcd === 'connected' ? badge('connected', 'good') : badge(f.etcd || 'unknown', 'bad')],
    ['Unreachable since', fmtTime(f.unreachableSince)], ['Last error', f.lastError],
    ['Applied revision', f.appliedRevision], ['Live nodes', f.nodes], ['Changes sent', f.changesSent],
    ['Conflicts', f.conflicts], ['Apply errors', f.applyErrors], ['Last apply error', f.lastApplyError],
    ['Resyncs', f.resyncs], ['Watch restarts', f.watchRestarts],
  ]));
}

async function load() {
  const { status: s } = await api.call('getStatus');
  const ne = s.nearestExpiry;
  return [
    counters(s),
    ne ? h('p', { class: 'nearest', testid: 'nearest-expiry' },
      `Expires first: ${ne.kind} certificate ${shortId(ne.id)} (${where(ne)}) on ${fmtTime(ne.notAfter)}.`) : null,
    section('Expiring soon', null, table([
      { title: 'Kind', cell: (x) => x.kind },
      { title: 'Where', cell: (x) => where(x) },
      { title: 'Id', cell: (x) => h('code', { title: x.id }, shortId(x.id)) },
      { title: 'Expires', cell: (x) => fmtTime(x.notAfter) },
    ], s.expiring || [], { testid: 'expiring', empty: 'No certificate expires within the warning window.' })),
    section('Host-name warnings', null, table([
      { title: 'Tenant', cell: (x) => x.tenant },
      { title: 'Host name', cell: (x) => x.hostname },
      { title: 'Slot', cell: (x) => x.slot },
      { title: 'Served certificate', cell: (x) => h('code', { title: x.id }, shortId(x.id)) },
    ], s.hostnameWarnings || [], { testid: 'hostname-warnings', empty: 'Every tenant host name is covered by the certificate it is served with.' })),
    section('CAs shared between tenants', null, table([
      { title: 'Tenant', cell: (x) => x.tenant },
      { title: 'CA', cell: (x) => h('code', { title: x.ca }, shortId(x.ca)) },
      { title: 'Also trusted by', cell: (x) => x.alsoTrustedBy },
      { title: 'Via', cell: (x) => (x.via ? shortId(x.via) : '') },
      { title: 'Warning', cell: (x) => x.warning },
    ], s.sharedCAs || [], { testid: 'shared-cas', empty: 'No CA is trusted by two tenants.' })),
    section('CRL health', null, crlHealth(s.crls)),
    s.fleet ? fleet(s.fleet) : null,
  ];
}

export default {
  id: 'status',
  title: 'Status',
  render(container) {
    frame(container, { title: 'Status', load });
  },
};
