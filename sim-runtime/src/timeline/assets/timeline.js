// A run's timeline: lanes per node, request spans, message arrows, fault windows and the
// violation, over virtual time. d3 gives the scale, the axis and the zoom; the many items
// are drawn on a canvas (thousands of SVG elements would make a large run sluggish), the
// few (fault windows, the violation) in an SVG overlay, so the DOM shows what matters.
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('sim-data').textContent);
  const app = document.getElementById('app');
  const RESULTS = ['ok', 'rejected', 'error', 'timeout'];
  const css = getComputedStyle(document.documentElement);
  const COLOR = Object.fromEntries(RESULTS.map(r => [r, css.getPropertyValue('--' + r).trim() || '#888']));
  const LABEL_W = 170, AXIS_H = 30, STRIP_H = 14, ROW_H = 5, LANE_PAD = 6;
  // Past this many arrows in view, arrows are drawn as per-column counts instead.
  const AGGREGATE_OVER = 4000;
  const ms = ns => ns / 1e6;

  // ---- layout: a band of the schedule's named faults on top, then the lanes ----
  // The schedule's windows get rows of their own (overlapping ones stack), so that their
  // names stay readable; the lanes they hit are shaded from the trace's own fault events.
  const SCHED_ROW = 16;
  const scheduled = data.faults.map((f, fi) => ({ f, fi })).filter(d => d.f.kind === 'scheduled');
  const schedEnds = [];
  scheduled.forEach(d => {
    let r = schedEnds.findIndex(end => end <= d.f.start_ns);
    if (r < 0) { r = schedEnds.length; schedEnds.push(0); }
    schedEnds[r] = d.f.end_ns;
    d.row = r;
  });
  const bandH = schedEnds.length ? schedEnds.length * SCHED_ROW + 4 : 0;
  let y = bandH;
  const lanes = data.lanes.map((l, i) => {
    const h = LANE_PAD + STRIP_H + (l.rows ? l.rows * ROW_H + 4 : 0) + 4;
    const lane = { ...l, index: i, top: y, height: h, mid: y + LANE_PAD + STRIP_H / 2 };
    y += h;
    return lane;
  });
  const totalH = Math.max(y, 40);

  // ---- the page's frame ----
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
    }
    kids.forEach(k => e.appendChild(k));
    return e;
  };
  const header = el('header');
  const h1 = el('h1', { text: data.run.title });
  h1.appendChild(el('span', { class: 'badge ' + (data.run.failed ? 'fail' : 'pass'), text: data.run.failed ? 'FAIL' : 'pass' }));
  header.appendChild(h1);
  const dl = el('dl', { class: 'details' });
  const details = [['outcome', data.run.outcome], ...data.run.details,
    ['virtual time', (ms(data.end_ns) / 1000).toFixed(3) + ' s'],
    ['drawn', `${data.lanes.length} lanes, ${data.spans.length} requests, ${data.messages.arrows.length} of ${data.messages.total} messages` +
      (data.messages.sampled_every > 1 ? ` (every ${data.messages.sampled_every}th)` : '') +
      `, ${data.faults.length} fault windows, ${data.ticks.length} model events`]];
  details.forEach(([k, v]) => { dl.appendChild(el('dt', { text: k })); dl.appendChild(el('dd', { text: v })); });
  header.appendChild(dl);
  app.appendChild(header);

  const toolbar = el('div', { class: 'toolbar' });
  const button = (text, f) => { const b = el('button', { type: 'button', text }); b.addEventListener('click', f); toolbar.appendChild(b); return b; };
  app.appendChild(toolbar);

  const timeline = el('div', { id: 'timeline' });
  const labels = el('div', { id: 'labels' }, el('div', { class: 'axis-spacer' }));
  if (bandH) {
    const b = el('div', { class: 'lane schedule-band', text: 'fault schedule' });
    b.style.height = bandH + 'px';
    labels.appendChild(b);
  }
  lanes.forEach(l => {
    const d = el('div', { class: 'lane', 'data-node': String(l.node), title: `${l.name} (node ${l.node})` });
    d.style.height = l.height + 'px';
    d.appendChild(document.createTextNode(l.name));
    d.appendChild(el('span', { class: 'node', text: '#' + l.node }));
    labels.appendChild(d);
  });
  const plot = el('div', { id: 'plot' });
  timeline.appendChild(labels);
  timeline.appendChild(plot);
  app.appendChild(timeline);
  const inspector = el('section', { id: 'inspector' }, el('h2', { text: 'Selected' }));
  const inspectorText = el('p', { text: 'Click a request, a message, a fault window, an event tick or the violation to see its trace events.' });
  const inspectorPre = el('pre', { id: 'selected' });
  inspector.appendChild(inspectorText);
  inspector.appendChild(inspectorPre);
  app.appendChild(inspector);

  const svgAxis = d3.select(plot).append('svg').attr('class', 'axis').attr('height', AXIS_H);
  const axisG = svgAxis.append('g').attr('transform', `translate(0,${AXIS_H - 1})`);
  const canvas = d3.select(plot).append('canvas').style('top', AXIS_H + 'px');
  const overlay = d3.select(plot).append('svg').attr('class', 'overlay').style('top', AXIS_H + 'px');
  plot.style.height = (AXIS_H + totalH) + 'px';
  const ctx = canvas.node().getContext('2d');

  // ---- scales and zoom ----
  let width = 800;
  const x0 = d3.scaleLinear().domain([0, Math.max(ms(data.end_ns), 1)]);
  let x = x0.copy();
  const zoom = d3.zoom().scaleExtent([1, 1e7]).on('zoom', ev => { x = ev.transform.rescaleX(x0); draw(); });
  d3.select(plot).call(zoom).on('dblclick.zoom', null);
  const formatTime = t => {
    const span = x.domain()[1] - x.domain()[0];
    if (span > 5000) return d3.format(',.3~f')(t / 1000) + ' s';
    if (span > 5) return d3.format(',.3~f')(t) + ' ms';
    return d3.format(',.1f')(t * 1000) + ' µs';
  };
  const zoomTo = (a, b) => {
    const pad = Math.max((b - a) * 0.15, 0.5);
    a = Math.max(0, a - pad); b = b + pad;
    const k = Math.min(1e7, (x0.domain()[1] - x0.domain()[0]) / Math.max(b - a, 1e-6));
    d3.select(plot).transition().duration(350)
      .call(zoom.transform, d3.zoomIdentity.scale(k).translate(-x0(a), 0));
  };

  // ---- the overlay: fault windows and the violation ----
  const faultLanes = f => f.lanes.length ? [...new Set(f.lanes)].map(i => lanes[i]).filter(Boolean) : [null];
  const faultRects = [];
  data.faults.forEach((f, fi) => {
    if (f.kind !== 'scheduled') faultLanes(f).forEach(l => faultRects.push({ f, fi, l }));
  });
  const schedG = overlay.selectAll('g.scheduled').data(scheduled).join('g')
    .attr('class', 'fault-window-group scheduled')
    .attr('transform', d => `translate(0,${2 + d.row * SCHED_ROW})`);
  schedG.append('rect').attr('class', 'fault-window fault-scheduled').attr('data-kind', 'scheduled')
    .attr('height', SCHED_ROW - 3);
  schedG.append('text').attr('class', 'schedule-label').attr('y', SCHED_ROW - 7).attr('dx', 3).text(d => d.f.label);
  schedG.append('title').text(d => d.f.label);
  const rects = overlay.selectAll('rect.lane-fault').data(faultRects).join('rect')
    .attr('class', d => 'fault-window lane-fault fault-' + d.f.kind)
    .attr('data-kind', d => d.f.kind)
    .attr('y', d => d.l ? d.l.top : 0)
    .attr('height', d => d.l ? d.l.height : totalH);
  rects.append('title').text(d => d.f.label);
  let violationG = null;
  if (data.violation) {
    violationG = overlay.append('g').attr('id', 'violation');
    violationG.append('line').attr('y1', 0).attr('y2', totalH);
    violationG.append('text').attr('y', bandH + 14).attr('dx', 6)
      .text(`✖ ${data.violation.checker}: ${data.violation.message}`);
  }

  // ---- drawing ----
  const visible = (a, b) => b >= x.domain()[0] && a <= x.domain()[1];
  let aggregated = false;
  function resize() {
    width = Math.max(200, plot.clientWidth);
    const dpr = window.devicePixelRatio || 1;
    canvas.attr('width', width * dpr).attr('height', totalH * dpr)
      .style('width', width + 'px').style('height', totalH + 'px');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    svgAxis.attr('width', width);
    overlay.attr('width', width).attr('height', totalH);
    x0.range([6, width - 6]);
    x = d3.zoomTransform(plot).rescaleX(x0);
    zoom.translateExtent([[0, 0], [width, 0]]).extent([[0, 0], [width, 0]]);
    draw();
  }

  function draw() {
    axisG.call(d3.axisTop(x).ticks(Math.max(2, width / 110)).tickFormat(formatTime));
    ctx.clearRect(0, 0, width, totalH);
    lanes.forEach((l, i) => {
      ctx.fillStyle = i % 2 ? '#f7f8fa' : '#ffffff';
      ctx.fillRect(0, l.top, width, l.height);
      ctx.fillStyle = '#e3e6ec';
      ctx.fillRect(0, l.top + l.height - 1, width, 1);
    });
    // Model and service events as ticks in their lane's strip.
    ctx.fillStyle = 'rgba(60, 70, 90, 0.55)';
    for (const [lane, t] of data.ticks) {
      const px = x(ms(t));
      if (px < -2 || px > width + 2) continue;
      const l = lanes[lane];
      ctx.fillRect(px - 0.5, l.top + LANE_PAD, 1, STRIP_H);
    }
    // Requests, one bar per span in its lane's rows.
    for (const s of data.spans) {
      const [lane, row, a, b, result] = s;
      if (!visible(ms(a), ms(b))) continue;
      const l = lanes[lane];
      const x1 = x(ms(a)), x2 = Math.max(x(ms(b)), x1 + 1.5);
      ctx.fillStyle = COLOR[RESULTS[result]];
      ctx.fillRect(x1, l.top + LANE_PAD + STRIP_H + 3 + row * ROW_H, x2 - x1, ROW_H - 1);
    }
    drawArrows();
    // The events that lead to the violation.
    if (data.violation) {
      ctx.fillStyle = '#c0182b';
      for (const [lane, t] of data.violation.marks) {
        const px = x(ms(t));
        if (px < -4 || px > width + 4) continue;
        const cy = lanes[lane].mid;
        ctx.beginPath();
        ctx.moveTo(px, cy - 5); ctx.lineTo(px + 4, cy); ctx.lineTo(px, cy + 5); ctx.lineTo(px - 4, cy);
        ctx.fill();
      }
    }
    rects.attr('x', d => x(ms(d.f.start_ns)))
      .attr('width', d => Math.max(2, x(ms(d.f.end_ns)) - x(ms(d.f.start_ns))));
    schedG.select('rect').attr('x', d => x(ms(d.f.start_ns)))
      .attr('width', d => Math.max(2, x(ms(d.f.end_ns)) - x(ms(d.f.start_ns))));
    schedG.select('text').attr('x', d => Math.max(0, x(ms(d.f.start_ns))));
    if (violationG) {
      const vx = x(ms(data.violation.at_ns));
      violationG.attr('transform', `translate(${vx},0)`);
      violationG.select('text').attr('text-anchor', vx > width * 0.6 ? 'end' : 'start').attr('dx', vx > width * 0.6 ? -6 : 6);
    }
    status.textContent = `${formatTime(x.domain()[0])} – ${formatTime(x.domain()[1])}` +
      (aggregated ? ' · messages aggregated per column (zoom in for single arrows)' : '');
  }

  function drawArrows() {
    const arrows = data.messages.arrows;
    let inView = 0;
    for (const a of arrows) {
      const end = a[3] < 0 ? a[2] : a[3];
      if (visible(ms(a[2]), ms(end))) inView++;
    }
    aggregated = inView > AGGREGATE_OVER;
    if (aggregated) {
      // Counts per (column, lane pair), drawn as one line whose strength is the count.
      const COL = 4, counts = new Map();
      for (const a of arrows) {
        const px = x(ms(a[2]));
        if (px < 0 || px > width) continue;
        const key = `${Math.floor(px / COL)}|${a[0]}|${a[1]}`;
        counts.set(key, (counts.get(key) || 0) + 1);
      }
      ctx.lineWidth = 1;
      for (const [key, n] of counts) {
        const [c, from, to] = key.split('|').map(Number);
        ctx.strokeStyle = `rgba(70, 110, 190, ${Math.min(0.9, 0.08 + n / 25)})`;
        ctx.beginPath();
        ctx.moveTo(c * COL + COL / 2, lanes[from].mid);
        ctx.lineTo(c * COL + COL / 2, lanes[to].mid);
        ctx.stroke();
      }
      return;
    }
    ctx.lineWidth = 1;
    for (const a of arrows) {
      const [from, to, sent, delivered] = a;
      const end = delivered < 0 ? sent : delivered;
      if (!visible(ms(sent), ms(end))) continue;
      const x1 = x(ms(sent)), y1 = lanes[from].mid, y2 = lanes[to].mid;
      if (delivered < 0) {
        // Never delivered: a stub towards its destination, crossed out.
        ctx.strokeStyle = 'rgba(200, 40, 30, 0.8)';
        const ym = y1 + (y2 - y1) * 0.3;
        ctx.beginPath(); ctx.moveTo(x1, y1); ctx.lineTo(x1 + 6, ym); ctx.stroke();
        ctx.beginPath(); ctx.moveTo(x1 + 3, ym - 3); ctx.lineTo(x1 + 9, ym + 3);
        ctx.moveTo(x1 + 9, ym - 3); ctx.lineTo(x1 + 3, ym + 3); ctx.stroke();
        continue;
      }
      const x2 = x(ms(delivered));
      ctx.strokeStyle = 'rgba(70, 110, 190, 0.45)';
      ctx.beginPath(); ctx.moveTo(x1, y1); ctx.lineTo(x2, y2); ctx.stroke();
      // The head, when there is room for one.
      const len = Math.hypot(x2 - x1, y2 - y1);
      if (len > 12) {
        const ang = Math.atan2(y2 - y1, x2 - x1);
        ctx.fillStyle = 'rgba(70, 110, 190, 0.7)';
        ctx.beginPath();
        ctx.moveTo(x2, y2);
        ctx.lineTo(x2 - 6 * Math.cos(ang - 0.4), y2 - 6 * Math.sin(ang - 0.4));
        ctx.lineTo(x2 - 6 * Math.cos(ang + 0.4), y2 - 6 * Math.sin(ang + 0.4));
        ctx.fill();
      }
    }
  }

  // ---- selection: what is under the pointer, shown as its trace events ----
  function select(title, eventIdx) {
    inspectorText.textContent = title;
    inspectorPre.textContent = eventIdx.filter(i => i >= 0 && i < data.events.length)
      .map(i => JSON.stringify(data.events[i], null, 2)).join('\n\n') || '(no trace event)';
  }
  function hit(px, py) {
    const t = x.invert(px), tol = x.invert(px + 4) - t;
    const lane = lanes.find(l => py >= l.top && py < l.top + l.height);
    if (data.violation) {
      const vx = x(ms(data.violation.at_ns));
      if (Math.abs(px - vx) <= 4) {
        return [`Violation at ${formatTime(ms(data.violation.at_ns))}: ${data.violation.checker}: ${data.violation.message}` +
          ` (${data.violation.marks.length} events lead to it, marked ◆)`, data.violation.marks.map(m => m[2])];
      }
      if (lane) {
        const m = data.violation.marks.find(m => m[0] === lane.index && Math.abs(x(ms(m[1])) - px) <= 5);
        if (m) return [`An event that leads to the violation (${data.violation.checker})`, [m[2]]];
      }
    }
    if (lane) {
      const inStrip = py < lane.top + LANE_PAD + STRIP_H + 2;
      if (inStrip) {
        const near = data.ticks.filter(k => k[0] === lane.index && Math.abs(ms(k[1]) - t) <= tol).slice(0, 20);
        if (near.length) return [`${near.length} event(s) on ${lane.name} near ${formatTime(t)}`, near.map(k => k[2])];
      } else {
        const row = Math.floor((py - lane.top - LANE_PAD - STRIP_H - 3) / ROW_H);
        const s = data.spans.find(s => s[0] === lane.index && s[1] === row && ms(s[2]) - tol <= t && t <= ms(s[3]) + tol);
        if (s) return [`Request on ${lane.name}: ${RESULTS[s[4]]}, ${formatTime(ms(s[2]))} to ${formatTime(ms(s[3]))}`, [s[5]]];
      }
    }
    if (!aggregated) {
      let best = null, bestD = 5;
      for (const a of data.messages.arrows) {
        if (a[3] < 0) continue;
        const x1 = x(ms(a[2])), x2 = x(ms(a[3])), y1 = lanes[a[0]].mid, y2 = lanes[a[1]].mid;
        if (px < Math.min(x1, x2) - 5 || px > Math.max(x1, x2) + 5) continue;
        const dx = x2 - x1, dy = y2 - y1, len2 = dx * dx + dy * dy || 1;
        const u = Math.max(0, Math.min(1, ((px - x1) * dx + (py - y1) * dy) / len2));
        const d = Math.hypot(px - (x1 + u * dx), py - (y1 + u * dy));
        if (d < bestD) { bestD = d; best = a; }
      }
      if (best) {
        return [`Message ${data.messages.kinds[best[4]]}: ${lanes[best[0]].name} → ${lanes[best[1]].name}`, [best[5], best[6]]];
      }
    }
    if (py < bandH) {
      const d = scheduled.find(d => d.row === Math.floor((py - 2) / SCHED_ROW) &&
        ms(d.f.start_ns) <= t && t <= ms(d.f.end_ns));
      if (d) return [`Scheduled fault: ${d.f.label}, ${formatTime(ms(d.f.start_ns))} to ${formatTime(ms(d.f.end_ns))}`, d.f.events];
      return null;
    }
    const f = data.faults.find(f => f.kind !== 'scheduled' && ms(f.start_ns) <= t && t <= ms(f.end_ns) &&
      (!f.lanes.length || (lane && f.lanes.includes(lane.index))));
    if (f) return [`Fault window (${f.kind}): ${f.label}, ${formatTime(ms(f.start_ns))} to ${formatTime(ms(f.end_ns))}`, f.events];
    return null;
  }
  canvas.on('click', ev => {
    const [px, py] = d3.pointer(ev, canvas.node());
    const h = hit(px, py);
    if (h) select(h[0], h[1]);
  });

  // ---- toolbar ----
  button('Whole run', () => d3.select(plot).transition().duration(350).call(zoom.transform, d3.zoomIdentity));
  if (data.violation) {
    button('Violation', () => {
      const ts = data.violation.marks.map(m => ms(m[1])).concat([ms(data.violation.at_ns)]);
      zoomTo(Math.min(...ts), Math.max(...ts));
    });
  }
  if (data.faults.length) {
    button('Faults', () => zoomTo(Math.min(...data.faults.map(f => ms(f.start_ns))), Math.max(...data.faults.map(f => ms(f.end_ns)))));
  }
  const status = el('span', { id: 'status' });
  toolbar.appendChild(status);
  const legend = el('div', { class: 'legend' });
  RESULTS.forEach(r => { const s = el('span', { text: r }); s.style.setProperty('--c', COLOR[r]); legend.appendChild(s); });
  [['message', 'rgb(70,110,190)'], ['fault', 'rgba(220,60,50,0.5)'], ['violation', '#c0182b']].forEach(([t, c]) => {
    const s = el('span', { text: t }); s.style.setProperty('--c', c); legend.appendChild(s);
  });
  toolbar.appendChild(legend);

  window.addEventListener('resize', resize);
  resize();
  // What a test reads back from the DOM once the page has drawn.
  Object.assign(document.body.dataset, {
    rendered: 'true',
    lanes: String(lanes.length),
    spans: String(data.spans.length),
    arrows: String(data.messages.arrows.length),
    faults: String(data.faults.length),
    violation: data.violation ? 'true' : 'false',
    // From navigation to drawn: how long the page takes to open (a large run's budget is 2 s).
    renderMs: String(Math.round(performance.now())),
  });
})();
