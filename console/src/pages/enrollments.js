// Enrollments: a tenant's requests awaiting approval, approve or reject,
// pre-registered identities, and its enrollment policy and issuing CA.
import { api } from '../api.js';
import { h, field, select, checkbox, button, table, fmtTime, badge, dialog, action, facts, lines, shortId } from '../dom.js';
import { tenantPage } from '../page.js';
import { KEYS, KEY_LABELS } from './certificates.js';
import { section } from '../widgets.js';

function rejectDialog(ctx, tenant, e) {
  const reason = h('input', { testid: 'reject-reason', placeholder: 'told to the device' });
  dialog({
    title: `Reject ${e.identity}`,
    testid: 'reject-dialog',
    submit: 'Reject',
    body: [field('Reason (optional)', reason)],
    async onsubmit() {
      const fields = { tenant, identity: e.identity };
      if (reason.value) fields.reason = reason.value;
      await api.call('rejectEnrollment', fields);
      await ctx.refresh();
      ctx.msgs.ok(`Rejected ${e.identity}.`);
    },
  });
}

function policyDialog(ctx, tenant, en) {
  const p = en || {};
  const mode = select([['approval', 'approval: an operator approves each request'], ['auto', 'auto: sign every matching request'], ['allowlist', 'allowlist: sign pre-registered identities, once']], { testid: 'policy-mode', value: p.mode || 'approval' });
  const idPattern = h('input', { testid: 'policy-pattern', value: p.idPattern || '', placeholder: 'd:sensor:*' });
  const num = (v, step, testid) => h('input', { type: 'number', min: 0, step, value: v, testid });
  const validityDays = num(p.validityDays ?? 365, 1, 'policy-validity');
  const renewWithinDays = num(p.renewWithinDays ?? 30, 'any', 'policy-renew');
  const graceDays = num(p.graceDays ?? 1, 'any', 'policy-grace');
  const minRsaBits = num(p.minRsaBits ?? 2048, 1, 'policy-rsa');
  const types = ['ec', 'rsa', 'ed25519'].map((t) => [t, checkbox(t, { checked: (p.keyTypes || ['ec', 'rsa']).includes(t), testid: `policy-key-${t}` })]);
  const identityIn = select([['cn', 'the common name'], ['email', 'a SubjectAltName e-mail'], ['both', 'both']], { testid: 'policy-identity', value: p.identityIn || 'cn' });
  const pop = checkbox('Require proof of possession for new CAs', { checked: !!p.requireProofOfPossession, testid: 'policy-pop' });
  dialog({
    title: `Enrollment policy of ${tenant}`,
    testid: 'policy-dialog',
    submit: 'Save',
    wide: true,
    body: [
      field('Mode', mode), field('Identity pattern', idPattern, 'A shell pattern over d:<type>:<id>; empty: any.'),
      h('div', { class: 'grid' }, field('Validity (days)', validityDays), field('Renewal opens (days before expiry)', renewWithinDays),
        field('Grace after renewal (days)', graceDays), field('Smallest RSA key (bits)', minRsaBits)),
      h('fieldset', { class: 'inline' }, h('legend', {}, 'Key types'), types.map(([, c]) => c)),
      field('Identity in', identityIn), pop,
    ],
    async onsubmit() {
      const enrollment = {
        mode: mode.value,
        validityDays: Number(validityDays.value),
        renewWithinDays: Number(renewWithinDays.value),
        graceDays: Number(graceDays.value),
        minRsaBits: Number(minRsaBits.value),
        keyTypes: types.filter(([, c]) => c.querySelector('input').checked).map(([t]) => t),
        identityIn: identityIn.value,
      };
      if (idPattern.value.trim()) enrollment.idPattern = idPattern.value.trim();
      await api.call('modifyTenant', { tenant, enrollment, requireProofOfPossession: pop.querySelector('input').checked });
      await ctx.refresh();
      ctx.msgs.ok(`Saved the enrollment policy of ${tenant}.`);
    },
  });
}

function issuingCaDialog(ctx, tenant, tenants) {
  const cn = h('input', { testid: 'issuing-cn', required: true, value: `${tenant} devices issuing CA` });
  const o = h('input', { testid: 'issuing-o' });
  const key = select(KEY_LABELS, { testid: 'issuing-key' });
  const days = h('input', { type: 'number', min: 1, value: 3650, testid: 'issuing-days' });
  const parent = select([['', 'none: self-signed'], ...tenants.filter((t) => t !== tenant)], { testid: 'issuing-parent' });
  dialog({
    title: `Create the issuing CA of ${tenant}`,
    testid: 'issuing-dialog',
    submit: 'Create',
    body: [h('p', {}, 'certmgr makes the key and keeps it in the tenant\'s record; the CA joins the trust list and signs the devices\' certificates and its own CRL.'),
      field('Common name', cn), field('Organisation (optional)', o), field('Key', key), field('Validity (days)', days),
      field('Signed by the issuing CA of', parent)],
    async onsubmit() {
      const fields = { tenant, subject: { CN: cn.value.trim() }, validityDays: Number(days.value), key: KEYS[key.value] };
      if (o.value.trim()) fields.subject.O = o.value.trim();
      if (parent.value) fields.parent = parent.value;
      const { ca } = await api.call('createIssuingCA', fields);
      await ctx.refresh();
      ctx.msgs.ok(`Created the issuing CA ${ca.subject}.`);
    },
  });
}

function preRegisterForm(ctx, tenant) {
  const ids = h('textarea', { rows: 3, testid: 'prereg-ids', placeholder: 'd:sensor:s1\nd:sensor:s2' });
  const form = h('form', { testid: 'prereg-form' }, field('Identities to pre-register, one a line (for the allowlist mode)', ids),
    h('button', { type: 'submit', testid: 'prereg-submit' }, 'Pre-register'));
  form.addEventListener('submit', action(ctx.msgs, async (ev) => {
    ev.preventDefault();
    const { preRegistered } = await api.call('preRegisterDevices', { tenant, ids: lines(ids.value) });
    await ctx.refresh();
    ctx.msgs.ok(`${tenant} holds ${preRegistered} pre-registered identities.`);
  }));
  return form;
}

const STATE = { pending: 'warn', approved: 'good', rejected: 'bad' };

export default tenantPage({
  id: 'enrollments',
  title: 'Enrollments',
  intro: 'Devices get and renew their certificates over MQTT from the tenant\'s issuing CA; in the approval mode each request waits here.',
  async load(ctx, tenant, picker) {
    const [list, { tenant: t }] = await Promise.all([api.call('listEnrollments', { tenant }), api.call('getTenant', { tenant })]);
    const en = t.enrollment;
    return [
      h('div', { class: 'toolbar' }, picker.el),
      section('Requests', null, table([
        { title: 'Identity', cell: (e) => e.identity },
        { title: 'State', cell: (e) => badge(e.state, STATE[e.state]) },
        { title: 'Client id', cell: (e) => e.clientId || '' },
        { title: 'Key', cell: (e) => h('code', { title: e.keyId }, shortId(e.keyId)) },
        { title: 'Requested', cell: (e) => fmtTime(e.requested) },
        { title: 'Decided', cell: (e) => fmtTime(e.decided) },
        { title: 'Reason', cell: (e) => e.reason || '' },
        {
          title: 'Actions',
          cell: (e) => (e.state !== 'pending' ? '' : h('div', { class: 'buttons' },
            button('Approve', action(ctx.msgs, async () => {
              await api.call('approveEnrollment', { tenant, identity: e.identity });
              await ctx.refresh();
              ctx.msgs.ok(`Approved ${e.identity}: its certificate is signed, and pushed to it if it is connected.`);
            }), { testid: 'enroll-approve', class: 'primary' }),
            button('Reject…', () => rejectDialog(ctx, tenant, e), { testid: 'enroll-reject', class: 'danger' }))),
        },
      ], list.enrollments, { testid: 'enrollments', rowId: (e) => e.identity, empty: 'No enrollment request.' })),
      section('Pre-registered identities', null,
        h('p', { testid: 'preregistered' }, list.preRegistered.length ? list.preRegistered.join(', ') : 'None.'),
        preRegisterForm(ctx, tenant)),
      section('Policy', [
        button('Edit policy…', () => policyDialog(ctx, tenant, en), { testid: 'policy-open' }),
        en && en.issuingCA ? null : button('Create issuing CA…', () => issuingCaDialog(ctx, tenant, picker.names), { testid: 'issuing-open' }),
      ], en ? facts([
        ['Mode', en.mode], ['Identity pattern', en.idPattern || 'any'], ['Validity', `${en.validityDays} days`],
        ['Renewal opens', `${en.renewWithinDays} days before expiry`], ['Grace', `${en.graceDays} days`],
        ['Key types', (en.keyTypes || []).join(', ')], ['Smallest RSA key', en.minRsaBits], ['Identity in', en.identityIn],
        ['Proof of possession for new CAs', en.requireProofOfPossession ? 'required' : 'not required'],
        ['Issuing CA', en.issuingCA ? h('code', { title: en.issuingCA }, shortId(en.issuingCA)) : 'none'],
        ['Counts', `${en.preRegistered} pre-registered, ${en.requests} requests, ${en.revoked} revoked`],
      ]) : h('p', {}, 'No enrollment policy set: the defaults apply once an issuing CA exists.')),
    ];
  },
});
