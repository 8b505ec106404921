// The monitor's last verdicts and active alerts on the health panel: the monitor the log's
// configuration names ([ui] monitor_url, told by GET /ui/config.json; the page's
// Content-Security-Policy then allows that origin and no other) is asked GET /status
// (spec/docs/monitor-api.md) every 5 s while the page is open. Its verdicts are the monitor's
// claims, shown as such: this page verifies the log's checkpoints itself above.

import * as api from './api.js';
import { el, fill, table, unixTime } from './dom.js';

const SAMPLE_MS = 5000;
const REQUEST_TIMEOUT_MS = 10000;
/** Most bytes of a status document read. */
const MAX_STATUS_BYTES = 4 << 20;
/** Verdicts drawn per log (the newest). */
const MAX_BARS = 120;
const SVG = 'http://www.w3.org/2000/svg';

const state = { url: undefined, document: null, error: null, timer: null };

function $(id) { return document.getElementById(id); }

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

async function monitorUrl() {
  if (state.url !== undefined) return state.url;
  try {
    const { text } = await api.request('GET', '/ui/config.json', { auth: false });
    const url = JSON.parse(text).monitor_url;
    state.url = typeof url === 'string' ? url : null;
  } catch (error) {
    state.error = 'GET /ui/config.json: ' + error.message;
    return null;
  }
  return state.url;
}

async function sample() {
  const url = await monitorUrl();
  if (url) {
    try {
      const response = await fetch(url + '/status', {
        cache: 'no-store', credentials: 'omit', redirect: 'error', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      const text = await response.text();
      if (text.length > MAX_STATUS_BYTES) throw new Error('the status is larger than 4 MiB');
      const parsed = JSON.parse(text);
      if (parsed.format !== 'cairn.monitor-status/v1' || !Array.isArray(parsed.logs)) throw new Error('not a cairn.monitor-status/v1 document');
      state.document = parsed;
      state.error = null;
    } catch (error) {
      state.error = `GET ${url}/status: ${error.message}`;
    }
  }
  render();
}

/** A log's verdicts as bars, oldest first: height by verified size, colour and label by verdict. */
function chart(origin, verdicts) {
  const shown = verdicts.slice(-MAX_BARS);
  const width = 600;
  const height = 120;
  const pad = { left: 70, right: 10, top: 10, bottom: 22 };
  const sizes = shown.map((verdict) => verdict.size ?? 0);
  const maxSize = Math.max(1, ...sizes);
  const step = (width - pad.left - pad.right) / Math.max(shown.length, 1);
  const counts = { verified: 0, alert: 0, failed: 0 };
  for (const verdict of shown) counts[verdict.verdict] = (counts[verdict.verdict] || 0) + 1;
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`, class: 'chart verdicts', role: 'img', id: 'monitor-chart-svg',
    'aria-label': `The monitor's last ${shown.length} polls of ${origin}: ${counts.verified} verified, ${counts.alert} verified with an alert active, ${counts.failed} failed`,
  });
  root.append(
    svg('line', { class: 'axis', x1: pad.left, y1: height - pad.bottom, x2: width - pad.right, y2: height - pad.bottom }),
    svg('text', { x: pad.left - 6, y: pad.top + 10, 'text-anchor': 'end' }, String(maxSize)),
    svg('text', { x: pad.left - 6, y: height - pad.bottom, 'text-anchor': 'end' }, '0'));
  shown.forEach((verdict, position) => {
    const barHeight = verdict.verdict === 'failed' ? 6 : Math.max(2, ((verdict.size ?? 0) / maxSize) * (height - pad.top - pad.bottom));
    const rect = svg('rect', {
      class: 'v-' + verdict.verdict, x: (pad.left + position * step + 1).toFixed(1), width: Math.max(1, step - 2).toFixed(1),
      y: (height - pad.bottom - barHeight).toFixed(1), height: barHeight.toFixed(1),
    });
    rect.append(svg('title', {}, `${unixTime(verdict.at)}: ${verdict.verdict}${verdict.size === null ? '' : ', size ' + verdict.size}`));
    root.append(rect);
  });
  if (shown.length) {
    root.append(
      svg('text', { x: pad.left, y: height - 6 }, new Date(shown[0].at * 1000).toLocaleTimeString()),
      svg('text', { x: width - pad.right, y: height - 6, 'text-anchor': 'end' }, new Date(shown[shown.length - 1].at * 1000).toLocaleTimeString()));
  }
  return root;
}

function words(verdict) {
  if (verdict.verdict === 'verified') return el('span', { class: 'good' }, 'verified');
  if (verdict.verdict === 'alert') return el('span', { class: 'bad' }, 'verified, ALERT active');
  return el('span', { class: 'bad' }, 'FAILED' + (verdict.problem ? ': ' + verdict.problem : ''));
}

function render() {
  const target = $('monitor-body');
  if (!target) return;
  if (state.url === null && !state.error) {
    fill(target, el('p', { class: 'note' }, 'No monitor: this log names none ([ui] monitor_url in its configuration).'));
    return;
  }
  const parts = [el('p', { class: 'note' }, `The monitor at ${state.url ?? '…'} says (its own claims, read every 5 s):`)];
  if (state.error) parts.push(el('p', { class: 'bad', role: 'status' }, 'The monitor could not be read: ' + state.error));
  const logs = state.document ? state.document.logs : [];
  if (state.document && !logs.length) parts.push(el('p', { id: 'monitor-summary', role: 'status' }, 'The monitor has not polled any log yet.'));
  for (const log of logs) {
    const verdicts = Array.isArray(log.verdicts) ? log.verdicts : [];
    const alerts = Array.isArray(log.alerts) ? log.alerts : [];
    const last = verdicts[verdicts.length - 1];
    parts.push(
      el('h4', {}, String(log.origin)),
      el('p', { id: 'monitor-summary', role: 'status' },
        last ? ['Last verdict: ', words(last), ` at ${unixTime(last.at)}`, last.size === null ? '' : `, tree size ${last.size}`, '. '] : 'No verdict yet. ',
        alerts.length ? el('strong', { class: 'bad' }, `${alerts.length} active alert(s).`) : el('span', { class: 'good' }, 'No active alert.')),
      el('figure', {}, chart(String(log.origin), verdicts),
        el('figcaption', {}, 'Each poll of the monitor, oldest first: green verified (height: tree size), amber verified with an alert active, red failed.')),
      alerts.length
        ? table('Active alerts', ['Kind', 'Since (UTC)', 'Incident', 'Detail'],
          alerts.map((alert) => [el('span', { class: 'bad' }, String(alert.kind)), unixTime(alert.active_since), alert.incident === null ? '—' : String(alert.incident), String(alert.detail)]))
        : null);
  }
  fill(target, parts);
}

/** Starts reading the monitor; it goes on while the page is open. */
export function initMonitor() {
  if (state.timer) return;
  sample();
  state.timer = setInterval(sample, SAMPLE_MS);
}

export function showMonitor() { render(); }
