// Item: one item with its nearest neighbours, the items users most often choose right after it
// (the co-occurrence of the last refit) and who interacted with it lately (InsightService.GetItem).

import { getJson, settle } from '../api.js';
import { barChart } from '../charts.js';
import {
  definitionList, el, errorBox, fmtInt, fmtNum, fmtPct, fmtTime, itemLink, replace, section, table, userLink,
} from '../dom.js';

function details(item, positives) {
  const attributes = Object.entries(item.attributes).map(([k, v]) => `${k}: ${v}`).join('; ');
  return section('Item', definitionList([
    ['Id', el('span', { class: 'id' }, item.item_id)],
    ['Category', item.category || '–'],
    ['Tags', item.tags.join(', ') || '–'],
    ['Created', fmtTime(item.create_time)],
    ['Description', item.description || '–'],
    ['Attributes', attributes || '–'],
    ['Positive events', fmtInt(positives)],
  ]));
}

export async function render(main, params) {
  const itemId = params.get('id') || '';
  const result = await settle(getJson('/api/item', { item_id: itemId }));
  if (result.error) {
    replace(main, el('h1', {}, 'Item ', el('span', { class: 'id' }, itemId)), errorBox(result.error));
    return;
  }
  const d = result.data;
  replace(main,
    el('h1', { id: 'item-title' }, d.item.title),
    details(d.item, d.positive_events),
    el('div', { class: 'columns' },
      section('Nearest neighbours',
        table(['item', 'similarity'], d.neighbours.map((h) => [itemLink(h.item.item_id, h.item.title), fmtNum(h.similarity, 3)]), { class: 'compact neighbours' })),
      section('Often chosen right after it',
        d.followed_by.length
          ? barChart(d.followed_by.map((f) => ({ label: f.item.title, value: f.share, note: fmtPct(f.share) })), { format: fmtPct, className: 'followers' })
          : el('p', { class: 'muted' }, 'nothing yet (the co-occurrence of the last refit)'),
        d.followed_by.length ? el('ul', { class: 'plain' }, d.followed_by.map((f) => el('li', {}, itemLink(f.item.item_id, f.item.title)))) : null)),
    section('Recent interactions',
      d.recent_interactions.length
        ? table(['when', 'user', 'what'], d.recent_interactions.map((x) => [fmtTime(x.event_time), userLink(x.user_id), x.type]), { class: 'compact' })
        : el('p', { class: 'muted' }, 'nobody yet')));
}
