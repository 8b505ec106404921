// Small DOM helpers: elements built with text nodes only (never parsed as markup, so nothing a log or
// a file holds can become markup), times, and the verdict banner every page shows.

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') element.className = value;
    else if (name === 'text') element.textContent = value;
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Empties a node and fills it with `children`. */
export function fill(node, ...children) {
  node.replaceChildren();
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A two-column table of [label, value] rows. */
export function facts(rows) {
  return el('table', { class: 'facts' },
    el('tbody', {}, rows.filter(Boolean).map(([label, value, mono]) =>
      el('tr', {}, el('th', { scope: 'row' }, label), el('td', { class: mono ? 'mono' : null }, value)))));
}

/** A table with a header row. */
export function table(caption, headers, rows) {
  return el('table', {},
    caption ? el('caption', { class: 'note' }, caption) : null,
    el('thead', {}, el('tr', {}, headers.map((header) => el('th', { scope: 'col' }, header)))),
    el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((cell) =>
      cell instanceof Node ? el('td', {}, cell) : el('td', {}, cell === null ? '—' : String(cell)))))));
}

/** Unix seconds as RFC 3339 UTC. */
export function unixTime(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** A duration in seconds, for people. */
export function age(seconds) {
  if (seconds < 0) return 'in the future (' + Math.round(-seconds) + ' s)';
  if (seconds < 90) return Math.round(seconds) + ' s';
  if (seconds < 5400) return Math.round(seconds / 60) + ' min';
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + ' h';
  return (seconds / 86400).toFixed(1) + ' days';
}

/** JSON text pretty-printed if it parses, else as it is. */
export function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/**
 * The verdict banner: `good` (green, "Verified"), `bad` (red, "NOT verified") or `warn`; the
 * word is always written, colour is never the only signal.
 */
export function banner(kind, title, detail) {
  return el('div', { class: 'verdict ' + kind, role: 'status' },
    el('strong', {}, title), detail ? el('div', {}, detail) : null);
}
