// User: the surface / middle / deep layers with their evidence and top topics (charts), the topic
// weights over time (computed by the server from the user's log), recent events, and the live
// recommendation list with each explanation. The list follows the profile: WatchProfile behind
// the server-sent events of /api/live. LIKE / DISLIKE / SKIP send the feedback and show the list
// that follows; the sliders preview diversity (MMR) and the topic temperature.

import { apiUrl, getJson, settle } from '../api.js';
import { barChart, lineChart } from '../charts.js';
import {
  capitalise, definitionList, el, errorBox, fmtAgo, fmtDuration, fmtInt, fmtNum, fmtPct, fmtTime, itemLink, replace, section, table,
} from '../dom.js';
import { renderList } from './recommendations.js';

const HISTORY_MIN_INTERVAL_MS = 5000;
const LAYERS = ['surface', 'middle', 'deep'];

function layerCard(layer) {
  const rows = layer.top_topics.map((t) => ({
    label: t.topic, value: t.weight, note: `${fmtPct(t.weight)} · affinity ${fmtNum(t.affinity)}`,
  }));
  return el('div', { class: 'layer', dataset: { layer: layer.layer } },
    el('h3', {}, capitalise(layer.layer)),
    el('p', { class: 'muted' }, `half-life ${fmtDuration(layer.half_life_seconds)} · evidence ${fmtNum(layer.mass, 1)} · last event ${fmtAgo(layer.last_event_time)}`),
    barChart(rows, { max: 1, width: 500, labelWidth: 240, format: (v) => fmtPct(v), className: 'layer-chart' }));
}

function historyChart(history, layer) {
  const best = new Map();
  for (const point of history.points) {
    for (const lt of point.layers.filter((l) => l.layer === layer)) {
      for (const t of lt.top_topics) best.set(t.topic, Math.max(best.get(t.topic) || 0, t.weight));
    }
  }
  const topics = [...best.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([topic]) => topic);
  const series = topics.map((topic) => ({
    name: topic,
    points: history.points.flatMap((point) => point.layers.filter((l) => l.layer === layer).flatMap((lt) => lt.top_topics
      .filter((t) => t.topic === topic).map((t) => ({ x: new Date(point.time).getTime(), y: t.weight })))),
  }));
  return lineChart(series, { yMax: 1, yFormat: (v) => fmtPct(v), className: 'history-chart' });
}

function recentEvents(profile) {
  return table(['when', 'what', 'item or text', 'weight'], profile.recent_events.map((e) => [
    fmtTime(e.event_time), e.type, e.item_id ? itemLink(e.item_id, e.text) : e.text, fmtNum(e.weight, 2),
  ]), { class: 'compact recent-events' });
}

function slider(id, name, min, max, step, describe) {
  const input = el('input', { type: 'range', id, min, max, step, value: 0 });
  const output = el('output', { for: id }, describe(0));
  input.addEventListener('input', () => replace(output, describe(Number(input.value))));
  return { input, box: el('label', { class: 'slider' }, el('span', {}, name), input, output) };
}

export async function render(main, params) {
  const userId = params.get('id') || '';
  if (!userId) {
    replace(main, el('h1', {}, 'User'), errorBox({ code: 'BAD_PARAMETER', summary: 'no user id', message: 'open a user from the Users page' }));
    return;
  }
  const state = { userId, listVersion: -1, profileVersion: -1, busy: false, historyAt: 0 };
  const facts = el('div', { id: 'user-facts' });
  const layers = el('div', { id: 'layers', class: 'layers' });
  const recent = el('div', { id: 'recent' });
  const history = el('div', { id: 'history' });
  const live = el('span', { id: 'live-status', class: 'muted' }, 'connecting…');
  const recs = el('div', { id: 'recs-box' });
  const diversity = slider('diversity', 'Diversity (MMR)', 0, 1, 0.05, (v) => fmtNum(v, 2));
  const temperature = slider('temperature', 'Topic temperature', 0, 2, 0.05, (v) => (v ? fmtNum(v, 2) : "server's"));
  const historyLayer = el('select', { id: 'history-layer' }, LAYERS.map((l) => el('option', { value: l, selected: l === 'deep' }, l)));
  replace(main,
    el('h1', {}, 'User ', el('span', { class: 'id' }, userId)),
    facts,
    el('div', { class: 'controls' }, diversity.box, temperature.box, el('span', { class: 'muted' }, 'previews only: nothing stored')),
    el('div', { class: 'user-grid' },
      section('Recommendations', el('p', { class: 'muted' }, live), recs),
      el('div', {}, section('Layers', layers), section('Recent events', recent))),
    section('Topic weights over time', el('p', { class: 'muted' }, 'Layer ', historyLayer, ': each layer’s heaviest topics after each event, recomputed from the log.'), history));

  const knobs = () => ({ diversity: Number(diversity.input.value), temperature: Number(temperature.input.value) });
  let historyData = null;

  const showProfile = (profile) => {
    state.profileVersion = profile.version;
    replace(facts, definitionList([
      ['Profile version', fmtInt(profile.version)], ['Events', fmtInt(profile.event_count)],
      ['Changed', `${fmtTime(profile.update_time)} (${fmtAgo(profile.update_time)})`],
    ]));
    replace(layers, profile.layers.map(layerCard));
    replace(recent, recentEvents(profile));
  };
  const loadProfile = async () => {
    const result = await settle(getJson('/api/profile', { user_id: userId, temperature: knobs().temperature }));
    if (result.error) {
      const none = result.error.code === 'NOT_FOUND';
      replace(layers, none ? el('p', { class: 'muted' }, 'No events yet.') : errorBox(result.error));
      replace(recent, none ? null : errorBox(result.error));
      if (none) replace(facts, el('p', { class: 'muted' }, 'This user has no events yet: the list is cold start.'));
    } else showProfile(result.data);
  };
  const list = renderList(recs, state, knobs);
  const loadHistory = async () => {
    state.historyAt = Date.now();
    const result = await settle(getJson('/api/history', { user_id: userId }));
    historyData = result.data || null;
    replace(history, result.error ? errorBox(result.error) : historyChart(historyData, historyLayer.value));
  };
  historyLayer.addEventListener('change', () => historyData && replace(history, historyChart(historyData, historyLayer.value)));
  for (const knob of [diversity.input, temperature.input]) {
    knob.addEventListener('change', () => Promise.all([knob === temperature.input ? loadProfile() : null, list.load()]));
  }
  await Promise.all([loadProfile(), list.load(), loadHistory()]);
  follow(state, { live, list, loadProfile, showProfile, loadHistory, knobs });
}

// The profile as it changes (server-sent events from WatchProfile): redraw it, then the list
// when the profile is newer than the list (the list a button brought back already is).
function follow(state, { live, list, loadProfile, showProfile, loadHistory, knobs }) {
  const source = new EventSource(apiUrl('/api/live', { user_id: state.userId }));
  source.addEventListener('open', () => replace(live, 'live: following the profile'));
  source.addEventListener('profile', (event) => {
    const profile = JSON.parse(event.data);
    replace(live, `live: profile version ${fmtInt(profile.version)}`);
    if (profile.version <= state.profileVersion && state.profileVersion >= 0) return;
    if (knobs().temperature) loadProfile();
    else showProfile(profile);
    if (profile.version > state.listVersion && !state.busy) list.load();
    if (Date.now() - state.historyAt > HISTORY_MIN_INTERVAL_MS) loadHistory();
  });
  source.addEventListener('failure', (event) => {
    const failure = JSON.parse(event.data);
    replace(live, errorBox(failure));
    if (failure.code !== 'UNAVAILABLE') source.close();
  });
  source.addEventListener('error', () => {
    if (source.readyState !== EventSource.CLOSED) replace(live, 'live: reconnecting…');
  });
  window.addEventListener('pagehide', () => source.close());
}
