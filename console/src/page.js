// The frame of every page: its title, a refresh button, the messages of
// its commands, and a body that refresh() rebuilds.
import { h, clear, messageArea } from './dom.js';
import { tenantPicker, chooseTenant } from './widgets.js';

export function frame(container, { title, intro, load, tools }) {
  const msgs = messageArea('page-messages');
  const body = h('div', { class: 'page-body' });
  // keep: the message of the action that asked for the refresh stays.
  async function refresh(keep) {
    if (keep !== true) msgs.clear();
    body.setAttribute('aria-busy', 'true');
    try {
      clear(body, await load(ctx));
    } catch (e) {
      clear(body);
      msgs.error(e.message);
    } finally {
      body.removeAttribute('aria-busy');
      body.dataset.loaded = String(Date.now());
    }
  }
  const ctx = { msgs, body, refresh };
  clear(container,
    h('div', { class: 'page-head' },
      h('h1', {}, title),
      h('div', { class: 'buttons' }, tools ? tools(ctx) : null,
        h('button', { type: 'button', testid: 'refresh', onclick: () => refresh() }, 'Refresh'))),
    intro ? h('p', { class: 'intro' }, intro) : null,
    msgs.el, body);
  refresh();
  return ctx;
}

/**
 * A page about one tenant at a time, chosen at its top (and in the
 * address: #/<id>/<tenant>). load(ctx, tenant, picker) builds its body;
 * changed(name) runs before another tenant is shown.
 */
export function tenantPage({ id, title, intro, load, changed }) {
  return {
    id,
    title,
    render(container, [arg]) {
      let picker = null;
      frame(container, {
        title,
        intro,
        async load(ctx) {
          if (!picker) {
            if (arg) chooseTenant(arg);
            picker = await tenantPicker((name) => {
              if (changed) changed(name);
              location.hash = `#/${id}/${encodeURIComponent(name)}`;
            });
          }
          return load(ctx, picker.value, picker);
        },
      });
    },
  };
}
