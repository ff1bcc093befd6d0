// Charts as inline SVG, drawn here: horizontal bars, lines over time, grouped bars. Labels are
// text nodes (a <title> holds the full text of a shortened one); colours come from console.css
// (classes series-0 … series-7), so no style attribute is ever written.

const NS = 'http://www.w3.org/2000/svg';
const SERIES_COLOURS = 8;

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const shorten = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const seriesClass = (i) => `series-${i % SERIES_COLOURS}`;

function label(x, y, text, attrs = {}, max = 60) {
  const full = String(text);
  const node = svg('text', { x, y, ...attrs }, shorten(full, max));
  if (full.length > max) node.appendChild(svg('title', {}, full));
  return node;
}

// rows: [{label, value, note}] -> one bar each, value / max of the width; note printed after it.
export function barChart(rows, { max = null, width = 440, labelWidth = 190, format = String, className = '' } = {}) {
  const bar = 18;
  const gap = 7;
  const height = Math.max(rows.length * (bar + gap) + gap, 30);
  const top = max || Math.max(...rows.map((r) => r.value), 1e-9);
  const track = width - labelWidth - 70;
  const chart = svg('svg', {
    class: `chart bar-chart ${className}`.trim(), width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
  });
  if (!rows.length) chart.appendChild(label(4, 20, 'nothing yet', { class: 'muted' }));
  rows.forEach((row, i) => {
    const y = gap + i * (bar + gap);
    const w = Math.max(0, Math.min(1, row.value / top)) * track;
    chart.appendChild(label(labelWidth - 8, y + bar - 5, row.label, { 'text-anchor': 'end', class: 'label' }, Math.floor(labelWidth / 7)));
    chart.appendChild(svg('rect', { x: labelWidth, y, width: track, height: bar, class: 'track', rx: 3 }));
    chart.appendChild(svg('rect', { x: labelWidth, y, width: w.toFixed(1), height: bar, class: `bar ${seriesClass(row.series || 0)}`, rx: 3 },
      svg('title', {}, `${row.label}: ${format(row.value)}`)));
    chart.appendChild(label(labelWidth + w + 6, y + bar - 5, row.note === undefined ? format(row.value) : row.note, { class: 'value' }));
  });
  return chart;
}

function ticks(low, high, count) {
  const step = (high - low) / count;
  return Array.from({ length: count + 1 }, (_, i) => low + i * step);
}

function legend(names, width, y) {
  const group = svg('g', { class: 'legend' });
  let x = 0;
  let row = 0;
  names.forEach((name, i) => {
    const text = shorten(String(name), 34);
    const w = 22 + text.length * 6.6;
    if (x + w > width && x > 0) {
      x = 0;
      row += 1;
    }
    group.appendChild(svg('rect', { x, y: y + row * 18, width: 12, height: 12, rx: 2, class: `swatch ${seriesClass(i)}` }));
    group.appendChild(label(x + 16, y + row * 18 + 10, name, {}, 34));
    x += w + 12;
  });
  return { group, rows: row + 1 };
}

// series: [{name, points: [{x (ms since the epoch), y}]}]: one line each over time. xRange: the
// span to draw (else the points'); minTop: the least top of the y axis (else the largest y).
export function lineChart(series, {
  width = 760, height = 250, yMax = null, minTop = 0, xRange = null, yFormat = String, className = '',
} = {}) {
  const margin = { left: 52, right: 14, top: 10, bottom: 26 };
  const points = series.flatMap((s) => s.points);
  const lg = legend(series.map((s) => s.name), width, 0);
  const total = height + lg.rows * 18 + 8;
  const chart = svg('svg', { class: `chart line-chart ${className}`.trim(), width, height: total, viewBox: `0 0 ${width} ${total}`, role: 'img' });
  if (!points.length) {
    chart.appendChild(label(margin.left, 30, 'nothing yet', { class: 'muted' }));
    return chart;
  }
  let [x0, x1] = xRange || [Math.min(...points.map((p) => p.x)), Math.max(...points.map((p) => p.x))];
  if (x0 === x1) [x0, x1] = [x0 - 3600e3, x1 + 3600e3];
  const top = yMax || Math.max(Math.max(...points.map((p) => p.y)) * 1.1, minTop, 1e-9);
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const sx = (x) => margin.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y) => margin.top + plotH - (Math.max(0, y) / top) * plotH;
  for (const t of ticks(0, top, 4)) {
    chart.appendChild(svg('line', { x1: margin.left, x2: width - margin.right, y1: sy(t), y2: sy(t), class: 'grid' }));
    chart.appendChild(label(margin.left - 6, sy(t) + 4, yFormat(t), { 'text-anchor': 'end', class: 'axis' }));
  }
  const span = x1 - x0;
  ticks(x0, x1, 4).forEach((t, i) => {
    const iso = new Date(t).toISOString();
    const text = span > 3 * 86400e3 ? iso.slice(0, 10) : iso.slice(5, 16).replace('T', ' ');
    const anchor = i === 0 ? 'start' : i === 4 ? 'end' : 'middle';
    chart.appendChild(label(sx(t), height - 6, text, { 'text-anchor': anchor, class: 'axis' }));
  });
  series.forEach((s, i) => {
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    const path = sorted.map((p, j) => `${j ? 'L' : 'M'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
    chart.appendChild(svg('path', { d: path, class: `line ${seriesClass(i)}` }, svg('title', {}, s.name)));
    if (sorted.length <= 60) {
      for (const p of sorted) {
        chart.appendChild(svg('circle', { cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: 2.5, class: `dot ${seriesClass(i)}` },
          svg('title', {}, `${s.name}: ${yFormat(p.y)} at ${new Date(p.x).toISOString()}`)));
      }
    }
  });
  lg.group.setAttribute('transform', `translate(${margin.left},${height + 4})`);
  chart.appendChild(lg.group);
  return chart;
}

// groups: names along the x axis; series: [{name, values: [one per group]}]: grouped vertical bars.
export function groupedBars(groups, series, {
  width = 760, height = 260, minTop = 0, format = String, className = '',
} = {}) {
  const margin = { left: 52, right: 10, top: 10, bottom: 26 };
  const lg = legend(series.map((s) => s.name), width - margin.left, 0);
  const total = height + lg.rows * 18 + 8;
  const chart = svg('svg', { class: `chart grouped-bars ${className}`.trim(), width, height: total, viewBox: `0 0 ${width} ${total}`, role: 'img' });
  const values = series.flatMap((s) => s.values).filter((v) => Number.isFinite(v));
  const top = Math.max(Math.max(...values, 0) * 1.1, minTop, 1e-9);
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const sy = (y) => margin.top + plotH - (y / top) * plotH;
  for (const t of ticks(0, top, 4)) {
    chart.appendChild(svg('line', { x1: margin.left, x2: width - margin.right, y1: sy(t), y2: sy(t), class: 'grid' }));
    chart.appendChild(label(margin.left - 6, sy(t) + 4, format(t), { 'text-anchor': 'end', class: 'axis' }));
  }
  const groupW = plotW / Math.max(groups.length, 1);
  const barW = (groupW * 0.8) / Math.max(series.length, 1);
  groups.forEach((group, g) => {
    const gx = margin.left + g * groupW + groupW * 0.1;
    series.forEach((s, i) => {
      const v = s.values[g];
      if (!Number.isFinite(v)) return;
      chart.appendChild(svg('rect', { x: (gx + i * barW).toFixed(1), y: sy(v).toFixed(1), width: Math.max(barW - 2, 1).toFixed(1), height: (sy(0) - sy(v)).toFixed(1), class: `bar ${seriesClass(i)}` },
        svg('title', {}, `${s.name}, ${group}: ${format(v)}`)));
    });
    chart.appendChild(label(gx + groupW * 0.4, height - 6, group, { 'text-anchor': 'middle', class: 'axis' }));
  });
  lg.group.setAttribute('transform', `translate(${margin.left},${height + 4})`);
  chart.appendChild(lg.group);
  return chart;
}
