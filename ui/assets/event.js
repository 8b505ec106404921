// One event: the events API's answer and the event's receipt, verified together in the browser
// (cairn_verify_event: the receipt against the auditor's policy, then the event shown must be
// the proven leaf, and its payload must hash to its payload_hash (schema 1) or every opening of
// a personal field must open the leaf's commitment (schema 2). An erased payload or erased
// contents show as erased, with the proof intact. Admins also see the payload erasure.

import * as api from './api.js';
import { verifyEvent } from './verify.js';
import { el, fill, banner, facts, table, pretty } from './dom.js';
import { receiptDetails } from './dropzone.js';

function body() { return document.getElementById('event-body'); }

/** The receipt, or why there is none yet. */
async function fetchReceipt(id) {
  const { status, text } = await api.request('GET', `/v1/events/${encodeURIComponent(id)}/proof`);
  if (status === 202) return { pending: true };
  return { text };
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const link = el('a', { href: url, download: name }, 'Download the receipt (' + name + ')');
  return link;
}

function eraseForm(id, onDone) {
  const reason = el('input', { id: 'erase-reason', autocomplete: 'off', maxlength: 256 });
  const status = el('p', { role: 'status' });
  const form = el('form', { class: 'stack' },
    el('h3', {}, 'Erase the payload (admin)'),
    el('p', { class: 'note' }, 'The payload bytes are destroyed; the leaf, its proof and every receipt stay valid. The erasure is itself logged as an event. Refused while a legal hold covers the event.'),
    el('label', { for: 'erase-reason' }, 'Reason (logged with the erasure)'), reason,
    el('div', { class: 'row' }, el('button', { type: 'submit', class: 'danger' }, 'Erase the payload')),
    status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!window.confirm('Erase this event\'s payload for good?')) return;
    try {
      await api.request('DELETE', `/v1/events/${encodeURIComponent(id)}/payload` + api.query({ reason: reason.value.trim() }));
      onDone();
    } catch (error) {
      fill(status, banner('bad', 'Not erased.', error.message));
    }
  });
  return form;
}

function payloadSection(verdict) {
  const payload = verdict.payload;
  if (payload.status === 'erased') {
    return el('div', {},
      el('p', { class: 'erased' }, 'Payload erased.'),
      payload.erased_by ? el('p', {}, 'Erasure recorded by event ', el('a', { href: '#event/' + encodeURIComponent(payload.erased_by) }, payload.erased_by), '.') : null);
  }
  if (payload.status === 'none') return el('p', {}, 'The event has no payload.');
  return el('pre', { tabindex: 0, 'aria-label': 'payload, canonical JSON' }, pretty(payload.canonical ?? ''));
}

/**
 * Self-audit: the event that records this view (the answer's `Cairn-Self-Audit` header), as a
 * link, or a plain statement that the log records none.
 */
function recordNote(recordId) {
  if (!recordId) return el('p', { class: 'note warn' }, 'Self-audit: this log does not record event views (self_audit = false).');
  return el('p', { class: 'note', id: 'view-record' }, 'Self-audit: this view was recorded as event ',
    el('a', { href: '#event/' + encodeURIComponent(recordId) }, recordId), ', by you.');
}

/** Shows event `id`. */
export async function showEvent(id) {
  fill(body(), 'Loading event ' + id + '…');
  let answer;
  let receipt;
  let recorded;
  try {
    const read = await api.request('GET', `/v1/events/${encodeURIComponent(id)}`);
    answer = read.text;
    recorded = recordNote(read.headers.get('cairn-self-audit'));
    receipt = await fetchReceipt(id);
  } catch (error) {
    fill(body(), banner('bad', 'The event could not be read.', error.message));
    return;
  }
  if (receipt.pending) {
    fill(body(),
      banner('warn', 'Not yet in a published checkpoint.', 'The event is durable; its receipt exists once a checkpoint covers it (usually within seconds).'),
      recorded,
      el('button', { type: 'button', onclick: () => showEvent(id) }, 'Try again'),
      el('h3', {}, 'As the server shows it (not verified)'),
      el('pre', { tabindex: 0, 'aria-label': 'the server\'s answer, not verified' }, pretty(answer)));
    return;
  }
  const policy = api.policy();
  if (!policy) {
    fill(body(),
      banner('warn', 'No policy: nothing verified.', 'Set the policy you trust (Policy) to verify this event in your browser.'),
      recorded,
      el('h3', {}, 'As the server shows it (not verified)'),
      el('pre', { tabindex: 0, 'aria-label': 'the server\'s answer, not verified' }, pretty(answer)),
      download(`receipt-${id}.json`, receipt.text));
    return;
  }
  const verdict = await verifyEvent(answer, receipt.text, policy);
  if (!verdict.receipt) {
    fill(body(), banner('bad', 'NOT verified.', verdict.error), recorded,
      el('h3', {}, 'As the server shows it'), el('pre', { tabindex: 0, 'aria-label': 'the server\'s answer, not verified' }, pretty(answer)),
      download(`receipt-${id}.json`, receipt.text));
    return;
  }
  const proven = verdict.receipt;
  const erased = verdict.payload.status === 'erased';
  fill(body(),
    verdict.ok
      ? banner('good', erased ? 'Verified: payload erased, proof intact.' : 'Verified.',
        `Event ${proven.index} is in ${proven.origin} at tree size ${proven.tree_size}, as your policy requires; computed in this browser.`)
      : banner('bad', 'NOT verified.', verdict.error),
    recorded,
    el('h3', {}, 'Checks'),
    table(null, ['Check', 'Result', 'Detail'], verdict.checks.map((check) =>
      [check.name, el('span', { class: check.ok ? 'good' : 'bad' }, check.ok ? 'passed' : 'FAILED'), check.detail])),
    verdict.event.opened ? el('h3', {}, 'The event in clear (each personal field checked against the leaf\'s commitment)') : null,
    verdict.event.opened ? el('pre', { tabindex: 0, 'aria-label': 'event in clear, canonical JSON' }, pretty(verdict.event.opened)) : null,
    el('h3', {}, 'The event as logged (canonical form, the proven leaf)'),
    el('pre', { tabindex: 0, 'aria-label': 'event, canonical JSON' }, pretty(verdict.event.canonical ?? '')),
    facts([['Schema version', String(verdict.event.schema_version)], ['Event ID', verdict.event.event_id, true]]),
    el('h3', {}, 'Payload'),
    payloadSection(verdict),
    receiptDetails(proven),
    download(`receipt-${id}.json`, receipt.text),
    api.role() === 'admin' && verdict.payload.status === 'held' ? eraseForm(id, () => showEvent(id)) : null);
}

