// The log's health at a glance, sampled every 5 s while the page is open: the latest checkpoint
// (GET /checkpoint, public) verified against the auditor's policy, each witness's cosignature
// time, the checkpoint's age by its newest cosignature, tree size over time as a small SVG chart,
// and every new checkpoint proved to extend the one before (GET /proof/consistency, verified
// here). A shrinking tree, a failed signature or an inconsistent history is shown in red.

import * as api from './api.js';
import { verifyCheckpoint, verifyConsistency } from './verify.js';
import { el, fill, table, unixTime, age } from './dom.js';

const SAMPLE_MS = 5000;
/** Samples kept: one hour at one every 5 s. */
const MAX_SAMPLES = 720;
const MAX_LOG_LINES = 200;
const SVG = 'http://www.w3.org/2000/svg';

const state = { samples: [], last: null, lastVerdict: null, consistent: 0, problems: 0, log: [], timer: null };

function $(id) { return document.getElementById(id); }

function note(kind, text) {
  state.log.unshift({ time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), kind, text });
  state.log.length = Math.min(state.log.length, MAX_LOG_LINES);
  if (kind === 'bad') state.problems += 1;
}

async function sample() {
  let noteText;
  try {
    noteText = (await api.request('GET', '/checkpoint', { auth: false })).text;
  } catch (error) {
    note('bad', 'GET /checkpoint: ' + error.message);
    render();
    return;
  }
  const policy = api.policy();
  const verdict = await verifyCheckpoint(noteText, policy);
  if (verdict.tree_size === undefined) {
    note('bad', 'the checkpoint does not parse: ' + verdict.error);
    render();
    return;
  }
  if (verdict.verified && !verdict.ok) note('bad', `checkpoint of size ${verdict.tree_size}: ${verdict.error}`);
  const previous = state.last;
  if (previous && previous.text !== noteText) {
    if (verdict.tree_size < previous.size) {
      note('bad', `the tree shrank from ${previous.size} to ${verdict.tree_size}`);
    } else if (policy) {
      await checkConsistency(previous, noteText, verdict.tree_size, policy);
    } else {
      note('warn', `size ${previous.size} → ${verdict.tree_size}; set a policy to prove consistency`);
    }
  }
  state.last = { text: noteText, size: verdict.tree_size };
  state.lastVerdict = verdict;
  state.samples.push({ time: Date.now() / 1000, size: verdict.tree_size });
  if (state.samples.length > MAX_SAMPLES) state.samples.shift();
  render();
}

async function checkConsistency(previous, noteText, size, policy) {
  try {
    const { text } = await api.request('GET', '/proof/consistency' + api.query({ old: previous.size, new: size }), { auth: false });
    const verdict = await verifyConsistency(previous.text, noteText, text, policy);
    if (verdict.ok) {
      state.consistent += 1;
      note('good', `size ${previous.size} → ${size}: consistent (proof verified here)`);
    } else {
      note('bad', `size ${previous.size} → ${size}: ${verdict.error}`);
    }
  } catch (error) {
    note('bad', `consistency ${previous.size} → ${size}: ${error.message}`);
  }
}

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Tree size over time as an SVG line chart with its extremes written out. */
function chart(samples) {
  const width = 600;
  const height = 180;
  const pad = { left: 70, right: 10, top: 10, bottom: 24 };
  const first = samples[0];
  const last = samples[samples.length - 1];
  const minSize = Math.min(...samples.map((point) => point.size));
  const maxSize = Math.max(...samples.map((point) => point.size));
  const span = Math.max(1, last.time - first.time);
  const range = Math.max(1, maxSize - minSize);
  const x = (time) => pad.left + ((time - first.time) / span) * (width - pad.left - pad.right);
  const y = (size) => height - pad.bottom - ((size - minSize) / range) * (height - pad.top - pad.bottom);
  const growth = span > 1 ? ((last.size - first.size) / span) * 60 : 0;
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img',
    'aria-label': `Tree size from ${first.size} to ${last.size} over ${Math.round(span)} seconds, about ${growth.toFixed(1)} leaves a minute`,
  });
  root.append(
    svg('line', { class: 'axis', x1: pad.left, y1: height - pad.bottom, x2: width - pad.right, y2: height - pad.bottom }),
    svg('line', { class: 'axis', x1: pad.left, y1: pad.top, x2: pad.left, y2: height - pad.bottom }),
    svg('text', { x: pad.left - 6, y: pad.top + 10, 'text-anchor': 'end' }, String(maxSize)),
    svg('text', { x: pad.left - 6, y: height - pad.bottom, 'text-anchor': 'end' }, String(minSize)),
    svg('text', { x: pad.left, y: height - 6 }, new Date(first.time * 1000).toLocaleTimeString()),
    svg('text', { x: width - pad.right, y: height - 6, 'text-anchor': 'end' }, new Date(last.time * 1000).toLocaleTimeString()),
    svg('polyline', { class: 'series', points: samples.map((point) => `${x(point.time).toFixed(1)},${y(point.size).toFixed(1)}`).join(' ') }));
  if (samples.length === 1) root.append(svg('circle', { class: 'point', cx: x(first.time), cy: y(first.size), r: 3 }));
  return [root, growth];
}

function render() {
  const verdict = state.lastVerdict;
  if (!verdict) {
    fill($('health-figures'), el('div', {}, el('dt', {}, 'Checkpoint'), el('dd', {}, 'not read yet')));
  } else {
    const now = Date.now() / 1000;
    const times = verdict.verified
      ? (verdict.witnesses || []).map((witness) => witness.cosigned_at).filter((time) => time !== null)
      : verdict.signatures.map((signature) => signature.claimed_cosigned_at).filter((time) => time !== null);
    const newest = times.length ? Math.max(...times) : null;
    const [, growth] = state.samples.length ? chart(state.samples) : [null, 0];
    const status = !verdict.verified ? ['warn', 'not verified (no policy)'] : verdict.ok ? ['good', 'verified'] : ['bad', 'FAILED: ' + verdict.error];
    const figure = (label, value, kind) => el('div', {}, el('dt', {}, label), el('dd', { class: kind }, value));
    fill($('health-figures'),
      figure('Log', verdict.origin),
      figure('Tree size', String(verdict.tree_size)),
      figure('Checkpoint', status[1], status[0]),
      figure('Checkpoint age (newest cosignature)', newest === null ? 'no cosignature' : age(now - newest) + (verdict.verified ? '' : ' (claimed)')),
      figure('Growth while open', `${growth.toFixed(1)} leaves/min`),
      figure('History seen', `${state.consistent} consistent step(s), ${state.problems} problem(s)`, state.problems ? 'bad' : 'good'));
    const rows = verdict.verified
      ? (verdict.witnesses || []).map((witness) => [witness.name, unixTime(witness.cosigned_at),
        witness.cosigned_at === null ? el('span', { class: 'bad' }, 'did not cosign this checkpoint') : age(now - witness.cosigned_at) + ' ago'])
      : verdict.signatures.map((signature) => [signature.key_name + ' (unverified)', unixTime(signature.claimed_cosigned_at), '—']);
    fill($('health-witnesses'), table(verdict.verified ? 'Witnesses of your policy, on the latest checkpoint' : 'Signatures on the latest checkpoint (no policy: not verified)',
      ['Witness', 'Cosigned at (UTC)', 'Age'], rows));
  }
  fill($('health-chart'), state.samples.length ? chart(state.samples)[0] : el('p', {}, 'No sample yet.'));
  fill($('health-log'), state.log.map((line) => el('li', { class: line.kind }, `${line.time} ${line.text}`)));
}

/** Starts sampling; it goes on while the page is open. */
export function initHealth() {
  if (state.timer) return;
  sample();
  state.timer = setInterval(sample, SAMPLE_MS);
}

export function showHealth() { render(); }
