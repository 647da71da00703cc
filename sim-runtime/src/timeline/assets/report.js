// A resilience report: its tables, and under each chaos test its plots over virtual time
// (throughput, latency percentiles, error rate, backlog) with the fault windows shaded.
// d3 draws the scales, axes and lines.
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('sim-data').textContent);
  const app = document.getElementById('app');
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
    }
    kids.forEach(k => e.appendChild(k));
    return e;
  };
  const header = el('header', {}, el('h1', { text: data.title }));
  data.preamble.split('\n').filter(Boolean).forEach(p => header.appendChild(el('p', { text: p })));
  app.appendChild(header);
  const body = el('div', { class: 'report' });
  app.appendChild(body);

  const COLORS = d3.schemeTableau10;
  const W = 380, H = 150, M = { top: 8, right: 10, bottom: 24, left: 46 };

  function panel(container, plot, p) {
    const box = el('div', { class: 'plot', 'data-panel': p.title });
    box.appendChild(el('h3', { text: `${p.title} (${p.unit})` }));
    container.appendChild(box);
    const svg = d3.select(box).append('svg').attr('viewBox', `0 0 ${W} ${H}`).attr('width', '100%');
    const all = p.lines.flatMap(l => l.points);
    const xMax = Math.max(plot.end_s, d3.max(all, d => d[0]) || 1);
    const x = d3.scaleLinear().domain([0, xMax]).range([M.left, W - M.right]);
    const y = d3.scaleLinear().domain([0, (d3.max(all, d => d[1]) || 1) * 1.08]).nice().range([H - M.bottom, M.top]);
    svg.append('g').selectAll('rect').data(plot.faults).join('rect')
      .attr('class', 'fault-window')
      .attr('x', f => x(f.start_s)).attr('width', f => Math.max(1.5, x(Math.min(f.end_s, xMax)) - x(f.start_s)))
      .attr('y', M.top).attr('height', H - M.top - M.bottom)
      .append('title').text(f => f.label);
    svg.append('g').attr('transform', `translate(0,${H - M.bottom})`)
      .call(d3.axisBottom(x).ticks(6).tickFormat(t => t + ' s'));
    svg.append('g').attr('transform', `translate(${M.left},0)`).call(d3.axisLeft(y).ticks(4).tickFormat(d3.format('~g')));
    const line = d3.line().x(d => x(d[0])).y(d => y(d[1])).defined(d => d[1] !== null);
    p.lines.forEach((l, i) => {
      svg.append('path').attr('class', 'series').attr('stroke', COLORS[i % COLORS.length]).attr('d', line(l.points))
        .append('title').text(l.name);
    });
    if (p.lines.length > 1) {
      const legend = el('div', { class: 'legend' });
      p.lines.forEach((l, i) => { const s = el('span', { text: l.name }); s.style.setProperty('--c', COLORS[i % COLORS.length]); legend.appendChild(s); });
      box.appendChild(legend);
    }
  }

  function plots(container, list) {
    list.forEach(plot => {
      const wrap = el('div', { class: 'chaos-plot', 'data-test': plot.test });
      wrap.appendChild(el('h2', { text: `${plot.test}: over virtual time` }));
      if (plot.note) wrap.appendChild(el('p', { text: plot.note }));
      const grid = el('div', { class: 'plot-grid' });
      wrap.appendChild(grid);
      plot.panels.forEach(p => panel(grid, plot, p));
      container.appendChild(wrap);
    });
  }

  const placed = new Set();
  data.sections.forEach(sec => {
    body.appendChild(el('h2', { text: sec.heading }));
    sec.text.split('\n').filter(Boolean).forEach(p => body.appendChild(el('p', { text: p })));
    const table = el('table');
    const tr = el('tr');
    sec.table.headers.forEach(h => tr.appendChild(el('th', { text: h })));
    table.appendChild(el('thead', {}, tr));
    const tb = el('tbody');
    sec.table.rows.forEach(r => { const row = el('tr'); r.forEach(c => row.appendChild(el('td', { text: c }))); tb.appendChild(row); });
    table.appendChild(tb);
    body.appendChild(table);
    const mine = (data.plots || []).filter(p => p.section === sec.heading);
    mine.forEach(p => placed.add(p));
    plots(body, mine);
  });
  const rest = (data.plots || []).filter(p => !placed.has(p));
  if (rest.length) {
    body.appendChild(el('h2', { text: 'Plots' }));
    plots(body, rest);
  }
  Object.assign(document.body.dataset, {
    rendered: 'true',
    plots: String((data.plots || []).length),
    tables: String(data.sections.length),
    renderMs: String(Math.round(performance.now())),
  });
})();
