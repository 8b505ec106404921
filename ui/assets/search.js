// Event search: the log's GET /v1/events with its filters (actor, resource, action, time
// window), paged by the log's opaque cursor; a stack of the cursors seen gives "Previous".

import * as api from './api.js';
import { el, fill, banner, table } from './dom.js';

function $(id) { return document.getElementById(id); }

/** A datetime-local value (the auditor's local time) as RFC 3339 UTC, or '' if empty. */
export function rfc3339(local) {
  if (!local) return '';
  const date = new Date(local);
  if (Number.isNaN(date.getTime())) throw new Error('not a date: ' + local);
  return date.toISOString().replace(/\.000Z$/, 'Z');
}

const state = { filters: null, cursors: [''], page: 0 };

async function load() {
  const status = $('search-status');
  const cursor = state.cursors[state.page];
  fill(status, 'Searching…');
  $('page-prev').disabled = true;
  $('page-next').disabled = true;
  let answer;
  try {
    const { text } = await api.request('GET', '/v1/events' + api.query({ ...state.filters, cursor }));
    answer = JSON.parse(text);
  } catch (error) {
    fill(status, banner('bad', 'The search failed.', error.message));
    fill($('search-results'));
    return;
  }
  const events = answer.events || [];
  const rows = events.map((event) => [
    el('a', { href: '#event/' + encodeURIComponent(event.event_id), 'aria-label': `event ${event.index}: ${event.action} by ${event.actor}` }, String(event.index)),
    event.time, event.action, event.actor, `${event.resource_type}: ${event.resource}`, event.received_at,
  ]);
  fill($('search-results'), rows.length
    ? table(`Page ${state.page + 1}: ${rows.length} event(s), in log order`,
      ['Index', 'Time (producer)', 'Action', 'Actor', 'Resource', 'Received (log)'], rows)
    : el('p', {}, 'No event on this page.'));
  showRecord(answer.self_audit);
  if (answer.next_cursor && state.cursors.length === state.page + 1) state.cursors.push(answer.next_cursor);
  const more = Boolean(answer.next_cursor);
  fill(status, more && events.length < Number(state.filters.limit)
    ? 'This page is short: the log examined its bound of candidates without filling it; there may be more on the next page.'
    : '');
  $('page-prev').disabled = state.page === 0;
  $('page-next').disabled = !more;
  fill($('page-number'), `Page ${state.page + 1}`);
}

/**
 * Self-audit: the log records every search as an event of the searching principal and names
 * it in the answer (`self_audit`); shown with a link to that event, or said plainly when the
 * log records none (`self_audit = false`).
 */
function showRecord(record) {
  if (record && typeof record.event_id === 'string') {
    fill($('self-audit'), 'Self-audit: this search was recorded as event ',
      el('a', { href: '#event/' + encodeURIComponent(record.event_id), id: 'self-audit-link' }, record.event_id),
      ` (index ${record.index}), by you.`);
  } else {
    fill($('self-audit'), banner('warn', 'Self-audit: this log does not record searches (self_audit = false).'));
  }
}

export function initSearch() {
  fill($('self-audit'), 'Self-audit: every search you run here is recorded by the log as an event, which is named here once it answers.');
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    let filters;
    try {
      filters = {
        actor: $('q-actor').value.trim(),
        resource: $('q-resource').value.trim(),
        action: $('q-action').value.trim(),
        from: rfc3339($('q-from').value),
        to: rfc3339($('q-to').value),
        limit: String(Math.min(1000, Math.max(1, Number($('q-limit').value) || 50))),
      };
    } catch (error) {
      fill($('search-status'), banner('bad', 'Check the search.', error.message));
      return;
    }
    state.filters = filters;
    state.cursors = [''];
    state.page = 0;
    load();
  });
  $('page-next').addEventListener('click', () => { state.page += 1; load(); });
  $('page-prev').addEventListener('click', () => { state.page = Math.max(0, state.page - 1); load(); });
}
