// The frame of every page: its title, a refresh button, the messages of
// its commands, and a body that refresh() rebuilds.
import { h, clear, messageArea } from './dom.js';

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
