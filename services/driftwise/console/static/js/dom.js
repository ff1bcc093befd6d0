// Building the DOM without markup: every string becomes a text node, attributes are set one by
// one, links may only point into the console. Nothing is ever parsed as HTML, so a title such as
// "<script>…</script>" shows as the text it is.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

export function setAttributes(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.setAttribute('class', String(value));
    else if (name === 'href') node.setAttribute('href', safeHref(value));
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (name.startsWith('on') || name === 'style' || name === 'srcdoc') throw new Error(`attribute ${name} not allowed`);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
}

// Only paths of this console ("/user?id=…"); anything else (javascript:, other sites) becomes "#".
export function safeHref(href) {
  return typeof href === 'string' && href.startsWith('/') && !href.startsWith('//') ? href : '#';
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

export const pageUrl = (path, params) => `${path}?${new URLSearchParams(params)}`;
export const userLink = (id) => el('a', { href: pageUrl('/user', { id }), class: 'id' }, id);
export const itemLink = (id, title) => el('a', { href: pageUrl('/item', { id }) }, title || id);

export function section(title, ...children) {
  return el('section', { class: 'card' }, el('h2', {}, title), ...children);
}

export function table(headers, rows, attrs = {}) {
  return el(
    'table',
    attrs,
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((c) => el('td', {}, c))))),
  );
}

export function definitionList(pairs) {
  return el('dl', { class: 'facts' }, pairs.map(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]));
}

// An API error as the page shows it: "not available from this server" for UNIMPLEMENTED, the
// missing scope for PERMISSION_DENIED, otherwise the summary and the server's message.
export function errorBox(error) {
  const code = error && error.code;
  const kind = code === 'UNIMPLEMENTED' ? 'unavailable' : code === 'PERMISSION_DENIED' ? 'denied' : 'error';
  const summary = (error && error.summary) || 'the request failed';
  const detail = error && error.message && error.message !== summary ? error.message : '';
  return el('div', { class: `notice ${kind}`, dataset: { code: code || 'ERROR' } },
    el('strong', {}, capitalise(summary)), detail ? el('span', { class: 'detail' }, ` (${detail})`) : null);
}

export const capitalise = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
export const fmtInt = (n) => integer.format(Number(n) || 0);
export const fmtNum = (x, digits = 2) => (x === null || x === undefined ? '–' : Number(x).toFixed(digits));
export const fmtPct = (x, digits = 0) => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(digits)}%`);

export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['min', 60]]) {
    if (seconds >= size) return `${(seconds / size).toFixed(seconds >= 10 * size ? 0 : 1)} ${unit}`;
  }
  return `${Number(seconds).toFixed(seconds < 10 ? 1 : 0)} s`;
}

export function fmtAgo(iso) {
  if (!iso) return '–';
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  return seconds < 0 ? fmtTime(iso) : `${fmtDuration(seconds)} ago`;
}
