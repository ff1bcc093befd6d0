// Online quality: what became of the items Recommend issued, from the feedback that came back with
// their lists' ids (InsightService.GetOnlineQuality, counted by the server): click, like and skip
// rates over time and by explanation reason, layer and position. Refreshed every 10 s.

import { getJson, settle } from '../api.js';
import { groupedBars, lineChart } from '../charts.js';
import { el, errorBox, fmtInt, fmtPct, replace, section, table } from '../dom.js';

const REFRESH_MS = 10000;
const RATES = [['clicks', 'click rate'], ['likes', 'like rate'], ['skips', 'skip rate'], ['dislikes', 'dislike rate']];
const BUCKETS = [[60, 30, 'minutes (last 30)'], [300, 36, '5 minutes (last 3 h)'], [3600, 48, 'hours (last 2 days)']];

const rate = (counts, key) => (counts.issued ? counts[key] / counts.issued : null);
const rateText = (counts, key) => (counts.issued ? fmtPct(rate(counts, key), 1) : '–');

function tiles(total) {
  return el('div', { class: 'tiles' },
    el('div', { class: 'tile', dataset: { metric: 'issued' } }, el('div', { class: 'tile-name' }, 'Items issued'), el('div', { class: 'tile-value' }, fmtInt(total.issued))),
    RATES.map(([key, name]) => el('div', { class: 'tile', dataset: { metric: key } },
      el('div', { class: 'tile-name' }, name), el('div', { class: 'tile-value' }, rateText(total, key)),
      el('div', { class: 'tile-note' }, `${fmtInt(total[key])} ${key}`))));
}

function split(title, rows, nameOf) {
  const names = rows.map(nameOf);
  const series = RATES.slice(0, 3).map(([key, name]) => ({ name, values: rows.map((r) => rate(r.counts, key) ?? 0) }));
  return section(title,
    rows.length ? groupedBars(names, series, { width: 700, height: 200, minTop: 0.1, format: (v) => fmtPct(v, 0), className: 'quality-chart' })
      : el('p', { class: 'muted' }, 'nothing issued yet'),
    table(['', 'issued', ...RATES.map(([, n]) => n)],
      rows.map((r) => [nameOf(r), fmtInt(r.counts.issued), ...RATES.map(([k]) => rateText(r.counts, k))]), { class: 'compact' }));
}

function overTime(buckets) {
  const series = RATES.slice(0, 3).map(([key, name]) => ({
    name,
    points: buckets.filter((b) => b.counts.issued).map((b) => ({ x: new Date(b.start_time).getTime(), y: rate(b.counts, key) })),
  }));
  const issued = buckets.reduce((n, b) => n + b.counts.issued, 0);
  const starts = buckets.map((b) => new Date(b.start_time).getTime());
  const xRange = starts.length ? [Math.min(...starts), Math.max(...starts)] : null;
  return section('Rates over time',
    el('p', { class: 'muted' }, `${fmtInt(issued)} items issued in the window; buckets without any are left out.`),
    lineChart(series, { minTop: 0.1, xRange, yFormat: (v) => fmtPct(v, 0), className: 'quality-time' }));
}

function draw(body, result) {
  if (result.error) {
    replace(body, errorBox(result.error));
    return;
  }
  const q = result.data;
  replace(body,
    section('Since the server started', tiles(q.total)),
    overTime(q.over_time),
    split('By explanation reason', q.by_reason, (r) => r.reason.replaceAll('_', ' ')),
    split('By layer', q.by_layer, (r) => r.layer),
    split('By position', q.by_position, (r) => (r.position >= 20 ? '20+' : String(r.position))));
}

export async function render(main) {
  const choice = el('select', { id: 'bucket' }, BUCKETS.map(([s, n, name], i) => el('option', { value: i }, `${name}`)));
  const body = el('div', { id: 'quality' });
  replace(main, el('h1', {}, 'Online quality'),
    el('p', { class: 'lede' }, 'Feedback on the lists Recommend issued, matched by their ids; counted by the server since it started. Buckets of ', choice, '.'),
    body);
  const load = async () => {
    const [bucketSeconds, buckets] = BUCKETS[Number(choice.value)];
    draw(body, await settle(getJson('/api/quality', { bucket_seconds: bucketSeconds, buckets })));
  };
  choice.addEventListener('change', load);
  await load();
  setInterval(load, REFRESH_MS);
}
