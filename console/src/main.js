// The console's shell: sign-in, navigation, and the router (#/<page>/<arg>).
import './style.css';
import { api, overTls } from './api.js';
import { h, clear, field } from './dom.js';
import { startEventLog } from './pages/events.js';
import statusPage from './pages/status.js';
import certificatesPage from './pages/certificates.js';
import tenantsPage from './pages/tenants.js';
import trustPage from './pages/trust.js';
import rejectedPage from './pages/rejected.js';
import devicesPage from './pages/devices.js';
import enrollmentsPage from './pages/enrollments.js';
import nodesPage from './pages/nodes.js';
import eventsPage from './pages/events.js';

const pages = [statusPage, certificatesPage, tenantsPage, trustPage, rejectedPage,
  devicesPage, enrollmentsPage, nodesPage, eventsPage];

const app = document.getElementById('app');

function signInView(message) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, testid: 'login-user', autofocus: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, testid: 'login-password' });
  const error = h('div', { 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'primary', testid: 'login-submit' }, 'Sign in');
  const form = h('form', { class: 'login card', testid: 'login-form' },
    h('h1', {}, 'certmgr console'),
    h('p', {}, `Sign in to the broker at ${location.host} as an administrator (a user of plugin_opt_admin_users).`),
    overTls() ? null : h('p', { class: 'notice warn' }, 'This page was not loaded over TLS.'),
    field('User name', user), field('Password', password), error, submit);
  if (message) clear(error, h('p', { class: 'error', role: 'alert', testid: 'login-error' }, message));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    clear(error, h('p', { role: 'status' }, 'Connecting…'));
    try {
      await api.signIn(user.value, password.value);
      startShell();
    } catch (e) {
      clear(error, h('p', { class: 'error', role: 'alert', testid: 'login-error' }, e.message));
      submit.disabled = false;
      password.select();
    }
  });
  clear(app, h('main', { class: 'login-page' }, form));
  user.focus();
}

let shell = null;

function startShell() {
  startEventLog();
  const menuBtn = h('button', { type: 'button', class: 'menu-toggle', 'aria-expanded': 'false', 'aria-controls': 'nav', testid: 'menu-toggle' }, 'Menu');
  const nav = h('nav', { id: 'nav', 'aria-label': 'Pages', testid: 'nav' },
    h('ul', {}, pages.map((p) => h('li', {}, h('a', { href: `#/${p.id}`, testid: `nav-${p.id}`, 'data-page': p.id }, p.title)))));
  const state = h('span', { class: 'conn', testid: 'connection-state' }, 'connected');
  const signOut = h('button', { type: 'button', testid: 'sign-out', onclick: () => { api.signOut(); location.hash = ''; signInView(); } }, 'Sign out');
  const main = h('main', { id: 'main', tabindex: '-1', testid: 'page' });
  menuBtn.addEventListener('click', () => {
    const open = document.body.classList.toggle('nav-open');
    menuBtn.setAttribute('aria-expanded', String(open));
  });
  nav.addEventListener('click', (ev) => {
    if (ev.target.closest('a')) {
      document.body.classList.remove('nav-open');
      menuBtn.setAttribute('aria-expanded', 'false');
    }
  });
  clear(app,
    h('a', { class: 'skip', href: '#main', onclick: (ev) => { ev.preventDefault(); main.focus(); } }, 'Skip to content'),
    h('header', { class: 'top' },
      menuBtn,
      h('span', { class: 'brand' }, 'certmgr'),
      h('span', { class: 'who', testid: 'signed-in-user' }, `${api.user}@${location.host}`),
      state, signOut),
    h('div', { class: 'layout' }, nav, main));
  shell = { main, nav, state };
  api.onState((s) => {
    if (!shell) return;
    shell.state.textContent = s;
    shell.state.className = `conn ${s}`;
  });
  route();
}

function route() {
  if (!shell) return;
  const [, id, ...rest] = location.hash.split('/');
  const page = pages.find((p) => p.id === id) || pages[0];
  for (const a of shell.nav.querySelectorAll('a')) {
    if (a.dataset.page === page.id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${page.title} · certmgr`;
  clear(shell.main);
  shell.main.dataset.page = page.id;
  page.render(shell.main, rest.map(decodeURIComponent));
}

window.addEventListener('hashchange', route);
api.onState((s) => { if (s === 'signed-out') shell = null; });
signInView();
