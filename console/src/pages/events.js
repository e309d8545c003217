// The live feed of $SYS/broker/certmgr/events, kept from sign-in on (the
// latest 500), whatever page is shown.
import { api } from '../api.js';
import { h, clear, select, button } from '../dom.js';

const MAX = 500;
const log = [];
const views = new Set();
let started = false;
let paused = false;

export function startEventLog() {
  if (started) return;
  started = true;
  api.onEvent((ev) => {
    log.unshift({ at: new Date(), ev });
    if (log.length > MAX) log.pop();
    if (!paused) for (const v of views) v();
  });
}

/** One line that says what happened, from the event's own fields. */
function summary(ev) {
  const parts = [];
  for (const k of ['command', 'who', 'tenant', 'slot', 'clientId', 'identity', 'outcome', 'kind', 'reason', 'why', 'notAfter']) {
    if (ev[k] !== undefined && ev[k] !== null && typeof ev[k] !== 'object') parts.push(`${k}=${ev[k]}`);
  }
  if (ev.id) parts.push(`id=${/^[0-9a-f]{64}$/.test(ev.id) ? `${ev.id.slice(0, 16)}…` : ev.id}`);
  return parts.join('  ');
}

function render(container) {
  const kinds = () => ['', ...new Set(log.map((e) => e.ev.event).filter(Boolean))];
  const filter = select([['', 'all events']], { testid: 'event-filter' });
  const list = h('ol', { class: 'events', testid: 'event-list', 'aria-live': 'polite' });
  const count = h('span', { class: 'hint', testid: 'event-count' });
  const pauseBtn = button('Pause', () => {
    paused = !paused;
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    pauseBtn.setAttribute('aria-pressed', String(paused));
    if (!paused) draw();
  }, { testid: 'event-pause', 'aria-pressed': String(paused) });
  pauseBtn.textContent = paused ? 'Resume' : 'Pause';
  function draw() {
    if (!container.isConnected) { views.delete(draw); return; }
    const want = filter.value;
    const have = kinds();
    if (filter.options.length !== have.length) {
      clear(filter, have.map((k) => h('option', { value: k }, k || 'all events')));
      filter.value = have.includes(want) ? want : '';
    }
    const shown = log.filter((e) => !filter.value || e.ev.event === filter.value);
    count.textContent = `${shown.length} of ${log.length} events since sign-in`;
    clear(list, shown.map((e) => h('li', { 'data-event': e.ev.event || '' },
      h('details', {},
        h('summary', {},
          h('time', { datetime: e.at.toISOString() }, e.at.toLocaleTimeString()),
          h('span', { class: 'badge' }, e.ev.event || '?'),
          h('span', { class: 'event-summary' }, summary(e.ev))),
        h('pre', {}, JSON.stringify(e.ev, null, 2))))));
    if (!shown.length) list.append(h('li', { class: 'empty' }, 'No event yet. Changes, CRL updates, expiry warnings, disconnections, audits and enrollments appear here as they happen.'));
  }
  filter.addEventListener('change', draw);
  clear(container,
    h('div', { class: 'page-head' }, h('h1', {}, 'Events'),
      h('div', { class: 'buttons' }, pauseBtn, button('Clear', () => { log.length = 0; draw(); }, { testid: 'event-clear' }))),
    h('p', { class: 'intro' }, 'The live feed of $SYS/broker/certmgr/events (not retained: what happened while this page is signed in).'),
    api.eventsRefused ? h('p', { class: 'error', role: 'alert', testid: 'events-refused' }, 'The broker refused the subscription to $SYS/broker/certmgr/events: no event will arrive.') : null,
    h('div', { class: 'page-body', 'data-loaded': String(Date.now()) },
      h('div', { class: 'toolbar' }, h('label', {}, 'Show ', filter), count),
      list));
  views.add(draw);
  draw();
}

export default { id: 'events', title: 'Events', render };
