// Items: search the catalogue by meaning (the text encoded by the server's encoder on Triton, the
// items searched in Milvus: InsightService.SearchItems), or browse it by title (ListItems).

import { getJson, settle } from '../api.js';
import { el, errorBox, fmtInt, fmtNum, itemLink, pageUrl, replace, section, table } from '../dom.js';

function searchForm(text) {
  return el('form', { class: 'inline', action: '/items', method: 'get' },
    el('input', { type: 'search', name: 'q', value: text, placeholder: 'a heist that goes wrong', maxlength: 1000, size: 40 }),
    el('button', { type: 'submit' }, 'Search by meaning'));
}

function browseForm(title) {
  return el('form', { class: 'inline', action: '/items', method: 'get' },
    el('input', { type: 'search', name: 'title', value: title, placeholder: 'title contains…', maxlength: 512 }),
    el('button', { type: 'submit' }, 'Browse by title'));
}

const tags = (item) => item.tags.join(', ');

async function searchResults(box, text) {
  const result = await settle(getJson('/api/search', { text }));
  if (result.error) return replace(box, errorBox(result.error));
  return replace(box, table(['item', 'category', 'tags', 'similarity'],
    result.data.items.map((h) => [itemLink(h.item.item_id, h.item.title), h.item.category, tags(h.item), fmtNum(h.similarity, 3)]),
    { class: 'items search-results' }));
}

async function browseResults(box, title, pageToken) {
  const result = await settle(getJson('/api/items', { title, page_token: pageToken }));
  if (result.error) return replace(box, errorBox(result.error));
  const page = result.data;
  return replace(box,
    el('p', { class: 'muted' }, `${fmtInt(page.total_items)} items in the catalogue.`),
    table(['item', 'id', 'category', 'tags'],
      page.items.map((i) => [itemLink(i.item_id, i.title), el('span', { class: 'id' }, i.item_id), i.category, tags(i)]),
      { class: 'items' }),
    page.next_page_token ? el('a', { class: 'button', href: pageUrl('/items', { title, page_token: page.next_page_token }) }, 'Next page') : null);
}

export async function render(main, params) {
  const text = params.get('q') || '';
  const title = params.get('title') || '';
  const box = el('div', { id: 'item-results' });
  replace(main, el('h1', {}, 'Items'),
    section('Find items', searchForm(text), browseForm(title)),
    section(text ? 'Nearest to your text' : 'The catalogue', box));
  if (text) await searchResults(box, text);
  else await browseResults(box, title, params.get('page_token') || '');
}
