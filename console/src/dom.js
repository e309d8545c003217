// Small DOM helpers: an element builder, tables, dialogs, messages. The
// console is plain JavaScript; these keep its pages short and alike.

/** h('button', {class: 'x', onclick: f, testid: 'y'}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A unique id for label/control pairs. */
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form field. control is an input, select or textarea. */
export function field(label, control, hint) {
  if (!control.id) control.id = nextId('f');
  return h('div', { class: 'field' },
    h('label', { for: control.id }, label),
    control,
    hint ? h('small', { class: 'hint' }, hint) : null);
}

export function checkbox(label, attrs) {
  const box = h('input', { type: 'checkbox', ...attrs });
  box.id = box.id || nextId('c');
  return h('div', { class: 'field check' }, box, h('label', { for: box.id }, label));
}

export function select(options, attrs) {
  const s = h('select', attrs);
  for (const o of options) {
    const [value, text] = Array.isArray(o) ? o : [o, o];
    s.append(h('option', { value }, text));
  }
  if (attrs && attrs.value !== undefined) s.value = attrs.value;
  return s;
}

export function button(text, onclick, attrs) {
  return h('button', { type: 'button', onclick, ...attrs }, text);
}

/** A scrolling table. columns: [{title, cell: row => node|string}]. */
export function table(columns, rows, attrs) {
  const opts = attrs || {};
  if (!rows.length) {
    return h('p', { class: 'empty', testid: opts.testid ? `${opts.testid}-empty` : null }, opts.empty || 'Nothing here.');
  }
  return h('div', { class: 'table-wrap' },
    h('table', { testid: opts.testid },
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.title)))),
      h('tbody', {}, rows.map((r) => h('tr', { 'data-id': opts.rowId ? opts.rowId(r) : null },
        columns.map((c) => h('td', { 'data-label': c.title }, c.cell(r))))))));
}

/** A definition list of [term, value] pairs; values that are empty are left out. */
export function facts(pairs, attrs) {
  return h('dl', { class: 'facts', ...attrs }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** An area for the answer of a command: errors exactly as the API gives them. */
export function messageArea(testid) {
  const el = h('div', { class: 'messages', 'aria-live': 'polite', testid });
  return {
    el,
    error(text) {
      clear(el, h('p', { class: 'error', role: 'alert', testid: 'error' }, text));
    },
    ok(text) {
      clear(el, h('p', { class: 'ok', role: 'status', testid: 'ok' }, text));
    },
    clear() { clear(el); },
  };
}

/**
 * A modal dialog (native <dialog>: Escape closes it, focus stays inside).
 * body is built by the caller; onsubmit(form, msgs) may return a promise;
 * the dialog closes when it resolves to anything but false, and shows the
 * error when it rejects.
 */
export function dialog({ title, testid, body, submit, onsubmit, wide }) {
  const msgs = messageArea(testid ? `${testid}-messages` : null);
  const submitBtn = submit ? h('button', { type: 'submit', class: 'primary', testid: testid ? `${testid}-submit` : null }, submit) : null;
  const form = h('form', { method: 'dialog', class: 'dialog-form' },
    h('header', {}, h('h2', {}, title),
      h('button', { type: 'button', class: 'icon', 'aria-label': 'Close', title: 'Close (Escape)', onclick: () => close() }, '×')),
    h('div', { class: 'dialog-body' }, body),
    msgs.el,
    h('footer', {},
      h('button', { type: 'button', onclick: () => close(), testid: testid ? `${testid}-cancel` : null }, submit ? 'Cancel' : 'Close'),
      submitBtn));
  const dlg = h('dialog', { class: wide ? 'wide' : null, testid, 'aria-label': title }, form);
  function close() {
    if (dlg.open) dlg.close();
  }
  dlg.addEventListener('close', () => dlg.remove());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!onsubmit) { close(); return; }
    msgs.clear();
    if (submitBtn) submitBtn.disabled = true;
    try {
      const r = await onsubmit(form, msgs);
      if (r !== false) close();
    } catch (e) {
      msgs.error(e.message);
    } finally {
      if (submitBtn) submitBtn.disabled = false;
    }
  });
  // A new task: the answer of the previous one leaves the page.
  for (const m of document.querySelectorAll('main .messages')) clear(m);
  document.body.append(dlg);
  dlg.showModal();
  const first = dlg.querySelector('.dialog-body :is(input, select, textarea):not([disabled]):not([type=hidden])');
  if (first) first.focus();
  return { dlg, form, msgs, close };
}

/** Asks before something that cannot be undone; resolves true or false. */
export function confirmDialog(title, text, confirmText, testid) {
  return new Promise((resolve) => {
    let answered = false;
    const d = dialog({
      title, testid: testid || 'confirm', submit: confirmText || 'Confirm',
      body: typeof text === 'string' ? h('p', {}, text) : text,
      onsubmit: () => { answered = true; resolve(true); },
    });
    d.dlg.addEventListener('close', () => { if (!answered) resolve(false); });
  });
}

/** Splits a textarea's value into its non-empty lines. */
export function lines(text) {
  return text.split('\n').map((s) => s.trim()).filter(Boolean);
}

export function fmtTime(t) {
  if (!t) return '';
  return t.replace('T', ' ').replace('Z', ' UTC');
}

export function shortId(id) {
  return id ? `${id.slice(0, 16)}…` : '';
}

export function badge(text, kind) {
  return h('span', { class: `badge ${kind || ''}` }, text);
}

/** Wraps an async action of a button: disables it meanwhile, reports errors to msgs. */
export function action(msgs, fn) {
  return async (ev) => {
    const btn = ev && ev.currentTarget;
    msgs.clear();
    if (btn) btn.disabled = true;
    try {
      await fn(ev);
    } catch (e) {
      msgs.error(e.message);
    } finally {
      if (btn) btn.disabled = false;
    }
  };
}
