// Overview: what the server holds and does (InsightService.GetServerStats) and its last refit
// with the self-tuned settings and their held-out metrics (also from RankingService.GetModelStatus,
// for servers that do not implement InsightService). Refreshed every 5 s.

import { getJson, settle } from '../api.js';
import {
  definitionList, el, errorBox, fmtAgo, fmtDuration, fmtInt, fmtNum, fmtTime, replace, section, table,
} from '../dom.js';

const REFRESH_MS = 5000;

function tile(name, value, note, key) {
  return el('div', { class: 'tile', dataset: { metric: key } },
    el('div', { class: 'tile-name' }, name), el('div', { class: 'tile-value' }, value),
    note ? el('div', { class: 'tile-note' }, note) : null);
}

function health(name, dep) {
  const up = dep && dep.up;
  return el('div', { class: `health ${up ? 'up' : 'down'}`, dataset: { dependency: name } },
    el('span', { class: 'dot', 'aria-hidden': 'true' }),
    el('strong', {}, name), ` ${up ? 'up' : 'down'}`,
    dep && dep.address ? el('span', { class: 'muted' }, ` · ${dep.address}`) : null,
    dep && dep.detail ? el('span', { class: 'muted' }, ` · ${dep.detail}`) : null);
}

function now(stats) {
  if (stats.error) return section('Now', errorBox(stats.error));
  const s = stats.data;
  const lat = s.recommend_latency;
  const window = `last ${fmtDuration(lat.window_seconds)}, ${fmtInt(lat.calls)} calls`;
  return section('Now',
    el('div', { class: 'tiles' },
      tile('Items', fmtInt(s.items), null, 'items'),
      tile('Users', fmtInt(s.users), null, 'users'),
      tile('Events', fmtInt(s.events), null, 'events'),
      tile('Events/s', fmtNum(s.events_per_second, 1), 'last minute', 'events_per_second'),
      tile('Recommend p50', lat.calls ? `${fmtNum(lat.p50_ms, 1)} ms` : '–', window, 'p50'),
      tile('Recommend p99', lat.calls ? `${fmtNum(lat.p99_ms, 1)} ms` : '–', window, 'p99')),
    el('div', { class: 'healths' }, health('Triton', s.encoder), health('Milvus', s.vector_store)),
    definitionList([
      ['Encoder model', `${s.encoder_model || '–'} (${s.embedding_dimension} dimensions)`],
      ['Role', s.role || '–'],
      ['Started', `${fmtTime(s.start_time)} (${fmtAgo(s.start_time)})`],
    ]));
}

function holdoutRows(t) {
  const row = (name, q) => [name, q ? fmtInt(q.users) : '–', q ? fmtNum(q.hr_at_10, 4) : '–', q ? fmtNum(q.ndcg_at_10, 4) : '–'];
  return [
    row('configured, tune half', t.defaults_tune), row('chosen, tune half', t.chosen_tune),
    row('configured, report half', t.defaults_report), row('chosen, report half (the figure to trust)', t.chosen_report),
  ];
}

function settingsTable(settings) {
  const rows = Object.entries(settings).map(([name, value]) => [el('code', {}, `ranking.${name}`), value]);
  return rows.length ? table(['setting', 'value'], rows, { class: 'compact' }) : el('p', { class: 'muted' }, 'none changed');
}

function refit(m) {
  if (!m) return el('p', { class: 'muted' }, 'No refit yet: ranking uses the configured settings.');
  const t = m.tuning;
  const anyHoldout = ['defaults_tune', 'chosen_tune', 'defaults_report', 'chosen_report'].some((k) => t[k]);
  return el('div', {},
    definitionList([
      ['Refit', m.refit_time ? `${fmtTime(m.refit_time)} (${fmtAgo(m.refit_time)})` : 'none yet'],
      ['On', `${fmtInt(m.fitted_events)} events`],
      ['Took', fmtDuration(m.refit_seconds)],
      ['Self-tuning', `${t.status.replaceAll('_', ' ')} · ${fmtInt(t.trials)} settings tried on ${fmtInt(t.held_out_users)} held-out users in ${fmtDuration(t.seconds)}`],
    ]),
    el('div', { class: 'columns' },
      el('div', {}, el('h3', {}, 'Self-tuned settings'), settingsTable(t.chosen),
        Object.keys(t.rejected).length ? [el('h3', {}, 'Chosen, not served (no gain)'), settingsTable(t.rejected)] : null),
      el('div', {}, el('h3', {}, 'Held-out metrics'),
        anyHoldout ? table(['settings', 'users', 'HR@10', 'NDCG@10'], holdoutRows(t), { class: 'compact' })
          : el('p', { class: 'muted' }, 'none (no self-tuning yet)'))));
}

function lastRefit(stats, model) {
  if (stats.data && stats.data.model) return section('Last refit', refit(stats.data.model));
  if (model.error) return section('Last refit', errorBox(model.error));
  return section('Last refit', refit(model.data.models[0]));
}

function draw(body, stats, model) {
  replace(body, now(stats), lastRefit(stats, model));
}

export async function render(main) {
  const body = el('div', { id: 'overview' });
  replace(main, el('h1', {}, 'Overview'), body);
  const [stats, model] = await Promise.all([settle(getJson('/api/stats')), settle(getJson('/api/model'))]);
  draw(body, stats, model);
  if (stats.error && stats.error.code === 'UNIMPLEMENTED') return; // nothing that would change
  setInterval(async () => {
    const [s, m] = await Promise.all([settle(getJson('/api/stats')), settle(getJson('/api/model'))]);
    draw(body, s, m);
  }, REFRESH_MS);
}
