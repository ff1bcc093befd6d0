// The live recommendation list of the User page: each item with its explanation (reason, layer,
// topic, the past events behind it) and LIKE / DISLIKE / SKIP buttons. A button sends the
// feedback with the list's id and draws the list the console answers with; the time from the
// click to that list on screen is kept in window.driftwiseRefreshes (milliseconds).

import { getJson, postJson, settle } from '../api.js';
import { capitalise, el, errorBox, fmtNum, fmtPct, itemLink, replace } from '../dom.js';

window.driftwiseRefreshes = window.driftwiseRefreshes || [];

function explanation(x) {
  const parts = [];
  if (x.layer && x.layer !== 'unspecified') parts.push(`${x.layer} layer`);
  if (x.topic) parts.push(`topic ${x.topic} (${fmtPct(x.topic_weight)})`);
  if (x.similarity) parts.push(`similarity ${fmtNum(x.similarity)}`);
  return parts.join(' · ');
}

function evidence(x) {
  if (!x.evidence.length) return null;
  const what = x.reason === 'sequence' ? 'often chosen right after' : 'because of';
  return el('div', { class: 'evidence' }, el('span', { class: 'muted' }, `${what}: `),
    el('ul', {}, x.evidence.map((e) => el('li', {}, e.item_id ? itemLink(e.item_id, e.text) : e.text,
      el('span', { class: 'muted' }, ` ${fmtNum(e.similarity)}`)))));
}

function itemRow(item, position, act) {
  const x = item.explanation;
  const buttons = ['like', 'dislike', 'skip'].map((kind) => el('button', {
    type: 'button', class: `act ${kind}`, dataset: { action: kind }, onclick: () => act(kind, item),
  }, kind.toUpperCase()));
  return el('li', { class: 'rec', dataset: { itemId: item.item_id, position } },
    el('div', { class: 'rec-head' },
      itemLink(item.item_id, item.title),
      el('span', { class: `badge reason-${x.reason}` }, x.reason.replaceAll('_', ' ')),
      el('span', { class: 'score', title: 'score' }, fmtNum(item.score, 3))),
    el('div', { class: 'rec-why muted' }, [item.category, explanation(x)].filter(Boolean).join(' · ')),
    x.summary ? el('div', { class: 'rec-summary' }, capitalise(x.summary)) : null,
    evidence(x),
    el('div', { class: 'actions' }, buttons));
}

export function renderList(container, state, knobs) {
  const status = el('div', { id: 'feedback-status' });
  const head = el('p', { class: 'muted', id: 'recs-head' });
  const list = el('ol', { id: 'recs', class: 'recs' });
  replace(container, head, list, status);

  const draw = (recs) => {
    state.listVersion = recs.profile_version;
    list.dataset.recommendationId = recs.recommendation_id;
    list.dataset.profileVersion = String(recs.profile_version);
    replace(head, `${recs.source.replaceAll('_', ' ')} · list `, el('code', {}, recs.recommendation_id.slice(0, 12)),
      ` · profile version ${recs.profile_version}`);
    replace(list, recs.items.map((item, i) => itemRow(item, i + 1, act)));
    if (!recs.items.length) replace(list, el('li', { class: 'muted' }, 'nothing to recommend'));
  };

  async function act(kind, item) {
    const started = performance.now();
    state.busy = true;
    for (const b of list.querySelectorAll('button')) b.disabled = true;
    const { diversity, temperature } = knobs();
    const result = await settle(postJson('/api/feedback', {
      user_id: state.userId, item_id: item.item_id, type: kind, impression_id: list.dataset.recommendationId, diversity, temperature,
    }));
    state.busy = false;
    if (result.error) {
      replace(status, errorBox(result.error));
      for (const b of list.querySelectorAll('button')) b.disabled = false;
      return;
    }
    draw(result.data.recommendations);
    replace(status, el('span', { class: 'muted' }, `${kind.toUpperCase()} on “`, item.title, `” recorded (profile version ${result.data.ack.profile_version}).`));
    requestAnimationFrame(() => {
      const ms = performance.now() - started;
      window.driftwiseRefreshes.push(ms);
      list.dataset.refreshMs = ms.toFixed(1);
    });
  }

  async function load() {
    const { diversity, temperature } = knobs();
    const result = await settle(getJson('/api/recommendations', { user_id: state.userId, diversity, temperature }));
    if (result.error) replace(list, el('li', {}, errorBox(result.error)));
    else draw(result.data);
  }

  return { load };
}
