// Evaluation: the latest report of `driftwise eval` the console finds (console.eval_report):
// the test metrics per method as a table and a chart, the ablations, the self-tuning, and the
// report's own plot when it has one.

import { getJson, settle } from '../api.js';
import { barChart, groupedBars } from '../charts.js';
import { definitionList, el, errorBox, fmtInt, fmtNum, fmtTime, replace, section, table } from '../dom.js';

const COLUMNS = ['hr@10', 'ndcg@10', 'mrr@10', 'hr@20', 'ndcg@20', 'coverage@10', 'lists with a new item'];
const PLOTTED = ['hr@10', 'ndcg@10', 'mrr@10'];

function metricsTable(test) {
  const columns = COLUMNS.filter((c) => Object.values(test).some((m) => c in m));
  return table(['method', ...columns],
    Object.entries(test).map(([method, m]) => [method, ...columns.map((c) => (c in m ? fmtNum(m[c], 4) : ''))]),
    { class: 'compact metrics' });
}

function tuning(t) {
  if (!t || !t.status) return el('p', { class: 'muted' }, 'no self-tuning in this report');
  const half = (name) => (t[name] ? `HR@10 ${fmtNum(t[name]['hr@10'], 4)}, NDCG@10 ${fmtNum(t[name]['ndcg@10'], 4)} (${t[name].users} users)` : '–');
  return definitionList([
    ['Status', t.status],
    ['Chosen', Object.entries(t.chosen || {}).map(([k, v]) => `${k} = ${v}`).join(', ') || 'none'],
    ['Report half, configured', half('defaults_report')],
    ['Report half, chosen', half('chosen_report')],
  ]);
}

export async function render(main) {
  const result = await settle(getJson('/api/evaluation'));
  replace(main, el('h1', {}, 'Evaluation'));
  if (result.error) return main.appendChild(errorBox(result.error));
  if (!result.data.report) {
    return main.appendChild(section('No report yet',
      el('p', {}, 'Run ', el('code', {}, 'driftwise eval --out DIR'), ' and point the console at DIR (', el('code', {}, '--eval-report'), ' or console.eval_report).'),
      el('p', { class: 'muted' }, `Looked in ${result.data.looked_in}.`)));
  }
  const report = result.data.report;
  const r = report.results;
  const methods = Object.keys(r.test).filter((m) => !m.includes(' without '));
  const ablations = Object.keys(r.test).filter((m) => m.includes(' without '));
  const served = r.test['driftwise (served)'];
  main.append(
    section('Report', definitionList([
      ['Written', fmtTime(report.written)], ['File', report.path], ['Dataset', r.dataset],
      ['Test users', fmtInt(r.users)], ['Items', fmtInt(r.items)],
    ])),
    section('Test metrics', metricsTable(r.test),
      groupedBars(PLOTTED, methods.map((m) => ({ name: m, values: PLOTTED.map((c) => r.test[m][c]) })), { format: (v) => fmtNum(v, 3), className: 'eval-chart' })),
    ablations.length && served ? section('Ablations: NDCG@10 with one part off',
      barChart(['driftwise (served)', ...ablations].map((m) => ({ label: m.replace('driftwise ', ''), value: r.test[m]['ndcg@10'] })), { format: (v) => fmtNum(v, 4), width: 620, labelWidth: 260 })) : '',
    section('Self-tuning', tuning(r.self_tuning)),
    report.has_plot ? section('The report’s plot', el('img', { src: '/api/evaluation/plot.png', alt: 'metrics per method (driftwise eval)', class: 'plot' })) : '');
  return null;
}
