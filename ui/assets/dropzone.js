// Offline verification of a dropped file: a receipt, a tlog-proof or an export bundle, read in
// the browser and verified by cairn_verify_document against the kept policy or one chosen for
// this check. Nothing is sent to any server.

import * as api from './api.js';
import { verifyDocument, MAX_INPUT_BYTES } from './verify.js';
import { el, fill, banner, facts, table, unixTime } from './dom.js';

function $(id) { return document.getElementById(id); }

/** The proof part of a verified receipt: inclusion proof, checkpoint, witnesses, timestamps. */
export function receiptDetails(receipt) {
  return el('div', {},
    el('h3', {}, 'Inclusion proof'),
    facts([
      ['Log', receipt.origin],
      ['Index', String(receipt.index)],
      ['Tree size', String(receipt.tree_size)],
      ['Leaf hash', receipt.leaf_hash, true],
      ['Root', receipt.root, true],
    ]),
    receipt.inclusion_proof.length
      ? el('ol', { class: 'mono', 'aria-label': 'inclusion proof hashes, from the leaf up' }, receipt.inclusion_proof.map((hash) => el('li', {}, hash)))
      : el('p', {}, 'The tree has one leaf: the proof is empty.'),
    el('h3', {}, 'Cosigned checkpoint'),
    el('pre', { tabindex: 0, 'aria-label': 'checkpoint note' }, receipt.checkpoint),
    table('Witnesses whose cosignatures verified', ['Witness', 'Cosigned at (UTC)'],
      receipt.witnesses.map((witness) => [witness.name, unixTime(witness.cosigned_at)])),
    receipt.unknown_signatures ? el('p', { class: 'note' }, `${receipt.unknown_signatures} signature(s) by keys your policy does not know were not checked.`) : null,
    table('RFC 3161 timestamp tokens that verified', ['Timestamp authority', 'Time (UTC)'],
      receipt.timestamps.map((stamp) => [stamp.tsa ?? '(a TSA your policy does not name)', stamp.time])));
}

function showReceipt(verdict) {
  const leaf = verdict.leaf;
  return el('div', {},
    banner('good', 'Verified.', `Leaf ${verdict.index} is in ${verdict.origin} at tree size ${verdict.tree_size}, as your policy requires; computed in this browser.`),
    el('h3', {}, 'The leaf'),
    !leaf.present ? el('p', {}, 'The receipt carries only the leaf hash.')
      : leaf.text !== null ? el('pre', { tabindex: 0, 'aria-label': 'the leaf, as text' }, leaf.text) : el('p', {}, `${leaf.bytes} bytes, not text.`),
    receiptDetails(verdict));
}

function showExport(verdict) {
  const erased = verdict.events.filter((event) => event.erased).length;
  return el('div', {},
    banner('good', 'Verified.', `${verdict.event_count} event(s) of ${verdict.origin}, all included in tree size ${verdict.tree_size}, as your policy requires` +
      (erased ? `; ${erased} with contents erased, their proofs intact.` : '.')),
    facts([
      ['Format', verdict.format],
      ['Root', verdict.root, true],
      verdict.unchecked_timestamps ? ['Timestamps not checked', String(verdict.unchecked_timestamps)] : null,
    ]),
    table(verdict.events_listed < verdict.event_count ? `The first ${verdict.events_listed} events` : 'Events',
      ['Index', 'Event ID', 'Schema', 'Contents'],
      verdict.events.map((event) => [String(event.index), event.event_id, String(event.schema_version),
        el('span', { class: event.erased ? 'erased' : null }, event.contents)])),
    el('h3', {}, 'Checkpoint'),
    el('pre', { tabindex: 0, 'aria-label': 'checkpoint note' }, verdict.checkpoint));
}

async function verifyFile(file) {
  const result = $('verify-result');
  if (file.size > MAX_INPUT_BYTES) {
    fill(result, banner('bad', 'Not verified.', `${file.name} has ${file.size} bytes, more than ${MAX_INPUT_BYTES}.`));
    return;
  }
  const chosen = $('verify-policy-file').files[0];
  const policy = chosen ? await chosen.text() : api.policy();
  fill(result, `Verifying ${file.name}…`);
  const verdict = await verifyDocument(new Uint8Array(await file.arrayBuffer()), policy);
  if (!verdict.ok) {
    fill(result, banner('bad', 'NOT verified.', `${file.name}: ${verdict.error}`));
    return;
  }
  fill(result, el('p', {}, `${file.name}, against ${chosen ? chosen.name : 'the kept policy'}:`),
    verdict.kind === 'export' ? showExport(verdict) : showReceipt(verdict));
}

function describePolicy() {
  const chosen = $('verify-policy-file').files[0];
  fill($('verify-policy-name'), chosen ? `Policy for this check: ${chosen.name}.`
    : api.policy() ? 'Policy: the kept one (Policy).' : 'No policy kept: choose one (Policy, or below).');
}

export function initDropZone() {
  const zone = $('drop-zone');
  const input = $('document-file');
  input.addEventListener('change', () => { if (input.files[0]) verifyFile(input.files[0]); });
  $('verify-policy-file').addEventListener('change', describePolicy);
  zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    const file = event.dataTransfer.files[0];
    if (file) verifyFile(file);
  });
  // A file dropped beside the zone is not opened by the browser in place of the page.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());
  window.addEventListener('hashchange', describePolicy);
  describePolicy();
}
