// The page's frame: which view the address shows (#search, #event/<id>, #verify, #health,
// #policy, #sign-in), who is signed in, and the sign-in and policy forms.

import * as api from './api.js';
import { checkPolicy } from './verify.js';
import { el, fill, banner } from './dom.js';
import { initSearch } from './search.js';
import { showEvent } from './event.js';
import { initDropZone } from './dropzone.js';
import { initHealth, showHealth } from './health.js';
import { initMonitor, showMonitor } from './monitor.js';

const VIEWS = ['sign-in', 'policy', 'search', 'event', 'verify', 'health'];

function $(id) { return document.getElementById(id); }

function showWho() {
  const role = api.role();
  fill($('who'), role ? `Signed in (${role}).` : 'Not signed in.',
    api.policy() ? ' Policy kept.' : ' No policy: verdicts need one.');
}

/** Shows the view the address names; views that need a token send to sign-in without one. */
function route() {
  const hash = decodeURIComponent(location.hash.slice(1));
  let [view, ...rest] = hash.split('/');
  if (!VIEWS.includes(view)) view = api.token() ? 'search' : 'sign-in';
  if ((view === 'search' || view === 'event') && !api.token()) view = 'sign-in';
  for (const name of VIEWS) $('view-' + name).hidden = name !== view;
  for (const link of document.querySelectorAll('nav a[data-view]')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (view === 'event') showEvent(rest.join('/'));
  if (view === 'health') { showHealth(); showMonitor(); }
  const heading = $('view-' + view).querySelector('h2');
  document.title = heading ? heading.textContent + ' — Cairn audit' : 'Cairn audit';
  $('main').focus();
}

function initSignIn() {
  $('sign-in-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const status = $('sign-in-status');
    const candidate = $('token').value.trim();
    fill(status, 'Checking the token…');
    try {
      const role = await api.signIn(candidate);
      $('token').value = '';
      fill(status, banner('good', `Signed in as ${role}.`));
      showWho();
      location.hash = '#search';
    } catch (error) {
      fill(status, banner('bad', 'Not signed in.', error.message));
    }
  });
  $('sign-out').addEventListener('click', () => {
    api.signOut();
    fill($('sign-in-status'), 'Signed out: the token is gone from this tab.');
    showWho();
  });
}

async function describePolicy(text) {
  const verdict = await checkPolicy(text);
  if (!verdict.ok) return [false, banner('bad', 'Not a usable policy.', verdict.error)];
  return [true, el('div', {},
    banner('good', 'Policy checked.'),
    el('ul', {},
      el('li', {}, 'Logs: ', verdict.logs.join(', ') || '—'),
      el('li', {}, 'Witnesses: ', verdict.witnesses.join(', ') || '—',
        '; quorum: ', verdict.quorum ?? 'none'),
      el('li', {}, 'Timestamp authorities: ', verdict.tsas.join(', ') || '—',
        `; at least ${verdict.tsa_quorum} must have timestamped a checkpoint`)))];
}

function initPolicy() {
  const text = $('policy-text');
  text.value = api.policy();
  if (text.value) describePolicy(text.value).then(([, shown]) => fill($('policy-status'), shown));
  $('policy-file').addEventListener('change', async () => {
    const file = $('policy-file').files[0];
    if (file) text.value = await file.text();
  });
  $('policy-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const [ok, shown] = await describePolicy(text.value);
    if (ok) api.setPolicy(text.value);
    fill($('policy-status'), shown);
    showWho();
  });
  $('policy-forget').addEventListener('click', () => {
    api.forgetPolicy();
    text.value = '';
    fill($('policy-status'), 'Policy forgotten.');
    showWho();
  });
}

initSignIn();
initPolicy();
initSearch();
initDropZone();
initHealth();
initMonitor();
showWho();
window.addEventListener('hashchange', route);
route();
