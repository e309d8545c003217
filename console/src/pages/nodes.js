// Fleet nodes: every live node of an etcd fleet with the revision of the
// tenants it applied, and this node's own view of etcd.
import { api } from '../api.js';
import { h, table, badge, facts, fmtTime } from '../dom.js';
import { frame } from '../page.js';
import { section } from '../widgets.js';

async function load() {
  const [nodes, { status }] = await Promise.all([api.call('listNodes'), api.call('getStatus')]);
  const revisions = new Set(nodes.nodes.map((n) => n.revision));
  const f = status.fleet || {};
  return [
    h('p', { testid: 'nodes-summary' }, `Answered by ${nodes.node}. `,
      revisions.size <= 1 ? badge(`converged at revision ${[...revisions][0] ?? '–'}`, 'good') : badge(`revisions differ: ${[...revisions].join(', ')}`, 'warn')),
    section('Nodes', null, table([
      { title: 'Name', cell: (n) => h('span', {}, n.name, n.self ? ' ' : '', n.self ? badge('this node') : null) },
      { title: 'Address', cell: (n) => n.address || '' },
      { title: 'Revision', cell: (n) => String(n.revision) },
      { title: 'Devices', cell: (n) => String(n.devices) },
      { title: 'etcd', cell: (n) => (n.etcd === 'connected' ? badge('connected', 'good') : badge(n.etcd, 'bad')) },
      { title: 'CRLs', cell: (n) => (n.crl ? `${n.crl.withCrl}/${n.crl.cas} CAs, ${n.crl.failing} failing, ${n.crl.stale} stale` : '') },
    ], nodes.nodes, { testid: 'nodes', rowId: (n) => n.name })),
    section('This node and etcd', null, facts([
      ['Applied revision', f.appliedRevision], ['etcd', f.etcd], ['Unreachable since', fmtTime(f.unreachableSince)],
      ['Last error', f.lastError], ['Changes sent', f.changesSent], ['Conflicts', f.conflicts],
      ['Apply errors', f.applyErrors], ['Resyncs', f.resyncs], ['Watch restarts', f.watchRestarts],
    ])),
  ];
}

export default {
  id: 'nodes',
  title: 'Fleet nodes',
  render(container) {
    frame(container, {
      title: 'Fleet nodes',
      intro: 'The nodes of a fleet sharing one etcd (plugin_opt_store etcd): each live node and the revision of the tenants it applied.',
      load,
    });
  },
};
