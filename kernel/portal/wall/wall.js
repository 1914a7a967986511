// The LED wall (/wall/, docs/wall.md): one org's plan indicators, the
// orgs below it and their trends, read from the kernel in one call
// (GET /api/v1/datacenter/overview) and read again when the data center
// says values changed (GET /api/v1/datacenter/stream, server-sent events).
//
// It runs unattended for days, so: every element and chart is made once and
// updated in place (charts with setOption), one EventSource at a time, no
// timer that reads the server more often than every 5 minutes (but a
// positions panel's, one small read every 10 s), and every
// failure leads back to a retry, never to a dead screen.
(function () {
  'use strict';

  var DEFAULT_LANG = 'zh-CN';
  var LANGS = ['zh-CN', 'en'];
  var LANG_KEY = 'tianshan.lang'; // the portal's choice, shared
  var DEBOUNCE_MS = 300;
  // A read of everything now and then, for what no event announced
  // (values written on another node; a stream that was down).
  var SAFETY_REFRESH_MS = 5 * 60 * 1000;
  var BACKOFF_MIN_MS = 2000;
  var BACKOFF_MAX_MS = 60000;

  var params = new URLSearchParams(location.search);
  var state = {
    lang: pickLang(),
    t: {},
    codes: {},
    askedOrg: params.get('org') || '',
    rotateMs: rotateSeconds() * 1000,
    fixedIndicator: params.get('indicator') || '',
    // `?per=month` or `year` fixes the trend panel to one kind of series.
    trendPer: params.get('per') || '',
    // A stored dashboard (`?dashboard=<id>`, docs/wall.md "Dashboards")
    // instead of the plan's overview.
    dashboard: params.get('dashboard') || '',
    board: null,
    rotateTimer: null,
    data: null,
    org: null,
    page: 0,
    indicatorIndex: 0,
    poolSize: 0,
    echarts: null,
    vendor: {},
    // Region maps by province (two digits of the division code): a promise
    // while loading, then the registered map or false.
    maps: {},
    charts: {},
    cards: {},
    tiles: {},
    es: null,
    backoff: BACKOFF_MIN_MS,
    reconnectTimer: null,
    refreshTimer: null,
    loading: false,
    again: false,
    streamWasDown: false
  };

  function $(id) { return document.getElementById(id); }

  function pickLang() {
    var asked = params.get('lang');
    if (asked && LANGS.indexOf(asked) >= 0) return asked;
    var stored = null;
    try { stored = localStorage.getItem(LANG_KEY); } catch (e) { stored = null; }
    return stored && LANGS.indexOf(stored) >= 0 ? stored : DEFAULT_LANG;
  }

  function rotateSeconds() {
    var r = params.get('rotate');
    if (r == null || r === '') return 30;
    var n = Number(r);
    return isFinite(n) && n >= 0 ? Math.max(n, n === 0 ? 0 : 5) : 30;
  }

  function format(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (_, key) {
      return values && values[key] != null ? String(values[key]) : '';
    });
  }

  function tr(key, values) {
    var s = state.t[key];
    return format(s == null ? key : s, values);
  }

  // A catalogue unit in the viewer's language where it is a word
  // (`vehicles` → 辆); symbols (kgce/m², %) stay as they are.
  function unitText(unit) {
    var s = state.t['unit.' + unit];
    return s == null ? unit : s;
  }

  function localized(value) {
    if (value == null) return '';
    if (typeof value === 'string') return value;
    return value[state.lang] || value[DEFAULT_LANG] || value.en || '';
  }

  function number(value) {
    if (value == null || !isFinite(value)) return '—';
    var digits = Math.abs(value) >= 1000 ? 0 : Math.abs(value) >= 100 ? 1 : 2;
    return Number(value).toLocaleString(state.lang, { maximumFractionDigits: digits });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function loadJson(url) {
    return fetch(url, { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error(url + ': ' + r.status);
      return r.json();
    });
  }

  function loadTexts() {
    // The kit's texts give every kernel error code its words.
    return Promise.all([
      loadJson('/wall/i18n/' + state.lang + '.json'),
      loadJson('/ui/kit/i18n/' + state.lang + '.json').catch(function () { return {}; })
    ]).then(function (both) {
      state.t = both[0];
      state.codes = both[1];
    }, function () {
      state.t = {};
    }).then(function () {
      document.documentElement.lang = state.lang;
      var nodes = document.querySelectorAll('[data-i18n]');
      for (var i = 0; i < nodes.length; i++) {
        nodes[i].textContent = tr(nodes[i].getAttribute('data-i18n'));
      }
      document.title = tr('wall.title');
    });
  }

  // ---- the library -------------------------------------------------------------

  // ECharts as the UI kit serves it (/ui/kit/vendor/, docs/ui-kit.md); null
  // when the kernel was built without it: the charts are tables then.
  function loadCharts() {
    return import('/ui/kit/vendor/index.js').then(function (m) {
      state.vendor = m.vendor || {};
      var e = m.vendor && m.vendor['echarts.min.js'];
      if (!e || !(e.size > 0)) return null;
      if (window.echarts) return window.echarts;
      return new Promise(function (resolve) {
        var script = document.createElement('script');
        script.src = e.url;
        script.async = true;
        script.addEventListener('load', function () { resolve(window.echarts || null); });
        script.addEventListener('error', function () { resolve(null); });
        document.head.appendChild(script);
      });
    }).catch(function () { return null; });
  }

  // The chart drawn in `box` (made once, kept under `name`).
  function chart(name, box) {
    if (!state.echarts) return null;
    if (!state.charts[name]) {
      state.charts[name] = state.echarts.init(box || $(name + '-chart'), 'dark', { renderer: 'canvas', locale: state.lang === 'en' ? 'EN' : 'ZH' });
    }
    return state.charts[name];
  }

  // ---- reading -----------------------------------------------------------------

  function showMessage(text) {
    var box = $('wall-message');
    box.textContent = text || '';
    box.hidden = !text;
  }

  function errorText(status, body) {
    var e = body && body.error;
    if (status === 404 && state.dashboard && !(e && e.field === 'org')) return tr('error.dashboardNotFound', { id: state.dashboard });
    if (status === 404) return tr('error.orgNotFound', { org: state.askedOrg || '' });
    if (status === 403) return tr('error.forbidden');
    var byCode = e && e.code && state.codes['code.' + e.code];
    return tr('error.generic', { message: byCode || (e && e.message) || String(status) });
  }

  function signIn() {
    location.replace('/?next=' + encodeURIComponent(location.pathname + location.search));
  }

  // Reads the overview; a read asked for while one runs follows it.
  function load() {
    if (state.loading) {
      state.again = true;
      return Promise.resolve();
    }
    state.loading = true;
    var url = (state.dashboard
      ? '/api/v1/dashboards/' + encodeURIComponent(state.dashboard) + '/data'
      : '/api/v1/datacenter/overview') + (state.askedOrg ? '?org=' + encodeURIComponent(state.askedOrg) : '');
    return fetch(url, { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (body) {
        if (r.status === 401) {
          signIn();
          return false;
        }
        if (r.status >= 500 || !body) {
          // The kernel is restarting or failing: keep what is shown.
          showMessage(errorText(r.status, body));
          return true;
        }
        if (r.status !== 200) {
          // Never data of an org the viewer may not see: the message only.
          state.data = null;
          $('wall-pages').hidden = true;
          $('wall-board').hidden = true;
          showMessage(errorText(r.status, body));
          return false;
        }
        showMessage('');
        state.data = body;
        state.org = body.org;
        if (state.dashboard) {
          $('wall-board').hidden = false;
          renderBoard();
        } else {
          $('wall-pages').hidden = false;
          render();
        }
        return false;
      });
    }, function () {
      showMessage(tr('error.network'));
      return true;
    }).then(function (retry) {
      state.loading = false;
      if (state.again) {
        state.again = false;
        scheduleRefresh(0);
      }
      return retry;
    });
  }

  // A change while a read is already due is folded into it, not a reason
  // to wait longer: pushing the timer back on every event would starve a
  // wall under a steady stream (one publish every 250 ms) of all reads.
  function scheduleRefresh(delay) {
    if (state.refreshTimer && delay > 0) return;
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(function () {
      state.refreshTimer = null;
      load();
    }, delay);
  }

  // ---- the stream ----------------------------------------------------------------

  function setLive(kind) {
    $('wall-live').setAttribute('data-state', kind);
    $('wall-live-text').textContent = tr('live.' + kind);
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (state.es) {
      state.es.close();
      state.es = null;
    }
    if (!state.org) return;
    setLive('connecting');
    var es = new EventSource('/api/v1/datacenter/stream?org=' + encodeURIComponent(state.org.id));
    state.es = es;
    es.addEventListener('open', function () {
      setLive('live');
      state.backoff = BACKOFF_MIN_MS;
      // What changed while the stream was down was not announced.
      if (state.streamWasDown) {
        state.streamWasDown = false;
        scheduleRefresh(0);
      }
    });
    es.addEventListener('changed', function () { scheduleRefresh(DEBOUNCE_MS); });
    es.addEventListener('resync', function () { scheduleRefresh(DEBOUNCE_MS); });
    es.addEventListener('error', function () {
      if (state.es !== es) return;
      setLive('down');
      state.streamWasDown = true;
      // CONNECTING: the browser retries by itself (the kernel asks 2 s).
      // CLOSED: the kernel refused it (signed out, org gone): read the
      // overview again, which says why, and try again later, backing off.
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        state.es = null;
        var wait = state.backoff;
        state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
        state.reconnectTimer = setTimeout(function () {
          load().then(resume);
        }, wait);
      }
    });
  }

  // After a read: stream when there is data; retry, backing off, when the
  // kernel could not answer; stop at a refusal (the message stays).
  function resume(retry) {
    if (retry) {
      var wait = state.backoff;
      state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
      clearTimeout(state.reconnectTimer);
      state.reconnectTimer = setTimeout(function () { load().then(resume); }, wait);
    } else if (state.data) {
      connect();
    }
  }

  // ---- what is shown ---------------------------------------------------------------

  function progressOf(code) {
    var list = (state.data && state.data.progress) || [];
    for (var i = 0; i < list.length; i++) if (list[i].code === code) return list[i];
    return null;
  }

  function rankingOf(code) {
    var list = (state.data && state.data.rankings) || [];
    for (var i = 0; i < list.length; i++) if (list[i].code === code) return list[i];
    return null;
  }

  function trendOf(code) {
    var list = (state.data && state.data.trends) || [];
    for (var i = 0; i < list.length; i++) if (list[i].code === code && list[i].per === 'year') return list[i];
    return null;
  }

  function childName(id) {
    var children = (state.data && state.data.children) || [];
    for (var i = 0; i < children.length; i++) if (children[i].id === id) return localized(children[i].name);
    return id;
  }

  // The indicator the ranking, trend and map show: the asked one, else one
  // of those with values below, in turn.
  function selectedIndicator() {
    var progress = (state.data && state.data.progress) || [];
    if (state.fixedIndicator && progressOf(state.fixedIndicator)) return progressOf(state.fixedIndicator);
    var withRows = progress.filter(function (p) {
      var r = rankingOf(p.code);
      return r && r.rows.length > 0;
    });
    var pool = withRows.length ? withRows : progress;
    state.poolSize = pool.length;
    if (!pool.length) return null;
    return pool[state.indicatorIndex % pool.length];
  }

  function targetText(p) {
    var t = p.target;
    if (!t) return '';
    if (t.kind === 'change_at_most') return tr('target.change_at_most', { value: number(Math.abs(t.value)) });
    return tr('target.' + t.kind, { value: number(t.value) + ' ' + unitText(p.unit) });
  }

  // How far along the target a value is, 0 to 1, for the bar.
  function fraction(p) {
    var t = p.target;
    if (!t) return 0;
    if (t.kind === 'change_at_most') {
      if (p.change_pct == null || t.value === 0) return 0;
      return Math.max(0, Math.min(1, p.change_pct / t.value));
    }
    if (p.latest == null || !t.value) return 0;
    return Math.max(0, Math.min(1, p.latest / t.value));
  }

  function setReady(panel, ready) {
    $(panel).setAttribute('data-ready', ready ? 'true' : 'false');
  }

  function render() {
    var d = state.data;
    $('wall-org').textContent = localized(d.org.name);
    renderPlan(d.progress || []);
    renderApprovals(d.approvals_running);
    renderSummary(d.progress || []);
    renderSelected();
    var at = new Date(d.generated_at || Date.now());
    $('wall-updated').textContent = tr('updated', { time: at.toLocaleTimeString(state.lang, { hour12: false }) });
  }

  function renderPlan(progress) {
    setReady('panel-plan', drawCards($('plan-grid'), state.cards, progress));
  }

  // The plan's cards in `grid`, kept in `cards` (code → elements) and
  // updated in place; whether any has a value.
  function drawCards(grid, cards, progress) {
    progress.forEach(function (p, i) {
      var card = cards[p.code];
      if (!card) {
        card = {
          root: el('div', 'plan-card'),
          name: el('div', 'plan-name'),
          value: el('div', 'plan-value'),
          bar: el('span'),
          target: el('div', 'plan-meta'),
          baseline: el('div', 'plan-meta'),
          badge: el('span', 'plan-badge')
        };
        card.root.setAttribute('data-code', p.code);
        var bar = el('div', 'plan-bar');
        bar.appendChild(card.bar);
        [card.name, card.value, bar, card.target, card.baseline, card.badge].forEach(function (n) {
          card.root.appendChild(n);
        });
        cards[p.code] = card;
      }
      if (grid.children[i] !== card.root) grid.insertBefore(card.root, grid.children[i] || null);
      card.name.textContent = localized(p.name);
      card.value.textContent = p.latest == null ? tr('plan.noValue') : number(p.latest);
      card.value.setAttribute('data-value', p.latest == null ? '' : String(p.latest));
      card.value.classList.toggle('none', p.latest == null);
      if (p.latest != null) {
        card.value.appendChild(el('small', null, unitText(p.unit)));
      }
      card.bar.style.width = Math.round(fraction(p) * 100) + '%';
      card.target.textContent = targetText(p);
      card.baseline.textContent = [
        p.latest_period ? tr('plan.latest', { period: p.latest_period }) : '',
        p.baseline != null ? tr('plan.baseline', { period: p.target && p.target.baseline_period, value: number(p.baseline) }) : '',
        p.change_pct != null ? tr('plan.change', { value: (p.change_pct > 0 ? '+' : '') + number(p.change_pct) }) : ''
      ].filter(Boolean).join(' · ');
      var met = p.met == null ? 'null' : String(p.met);
      card.root.setAttribute('data-met', met);
      card.badge.textContent = tr('met.' + met);
    });
    // Indicators gone from the catalogue leave the grid.
    Object.keys(cards).forEach(function (code) {
      if (!progress.some(function (p) { return p.code === code; })) {
        cards[code].root.remove();
        delete cards[code];
      }
    });
    return progress.some(function (p) { return p.latest != null; });
  }

  function renderApprovals(count) {
    $('approvals-count').textContent = count == null ? '—' : number(count);
    $('approvals-note').textContent = count == null ? tr('approvals.hidden') : tr('approvals.scope');
    setReady('panel-approvals', count != null);
  }

  function renderSummary(progress) {
    var box = $('summary');
    var counts = { met: 0, notMet: 0, unknown: 0 };
    progress.forEach(function (p) {
      if (p.met === true) counts.met++;
      else if (p.met === false) counts.notMet++;
      else counts.unknown++;
    });
    ['met', 'notMet', 'unknown'].forEach(function (kind) {
      var row = box.querySelector('[data-kind="' + kind + '"]');
      if (!row) {
        row = el('div', 'summary-row');
        row.setAttribute('data-kind', kind);
        row.appendChild(el('span'));
        row.appendChild(el('b'));
        box.appendChild(row);
      }
      row.firstChild.textContent = tr('summary.' + kind);
      row.lastChild.textContent = String(counts[kind]);
    });
    setReady('panel-summary', progress.length > 0);
  }

  function renderSelected() {
    var p = selectedIndicator();
    var label = p ? localized(p.name) : '';
    var subs = document.querySelectorAll('[data-role="indicator"]');
    for (var i = 0; i < subs.length; i++) subs[i].textContent = label;
    var ranking = p ? rankingOf(p.code) : null;
    var rows = ranking ? ranking.rows : [];
    renderRanking(p, rows);
    renderTrend(p, p ? trendOf(p.code) : null);
    renderMap(p, rows);
  }

  // A table in place of a chart (no ECharts), rebuilt: a few rows.
  function table(box, head, rows) {
    var t = box.querySelector('table');
    if (!t) {
      box.textContent = '';
      t = el('table');
      t.appendChild(el('thead'));
      t.appendChild(el('tbody'));
      box.appendChild(t);
    }
    var tr1 = el('tr');
    head.forEach(function (h) { tr1.appendChild(el('th', null, h)); });
    t.tHead.replaceChildren(tr1);
    t.tBodies[0].replaceChildren.apply(t.tBodies[0], rows.map(function (r) {
      var row = el('tr');
      r.forEach(function (c) { row.appendChild(el('td', null, c)); });
      return row;
    }));
  }

  function empty(box, text) {
    var note = box.querySelector('.empty');
    if (!note) {
      note = el('p', 'empty');
      box.appendChild(note);
    }
    note.textContent = text || '';
    note.hidden = !text;
  }

  function renderRanking(p, rows) {
    setReady('panel-ranking', drawRanking($('ranking-chart'), 'ranking', p && p.unit, rows, 'bar'));
  }

  // Orgs below, best first, as bars (or a table); whether there are rows.
  function drawRanking(box, key, unit, rows, kind) {
    var names = rows.map(function (r) { return childName(r.org); });
    var values = rows.map(function (r) { return r.value; });
    var c = kind === 'table' ? null : chart(key, box);
    if (c) {
      // Best at the top: ECharts draws a category axis from the bottom.
      c.setOption({
        backgroundColor: 'transparent',
        grid: { left: 8, right: 56, top: 8, bottom: 8, containLabel: true },
        textStyle: { fontSize: fontPx(0.8) },
        xAxis: { type: 'value', axisLabel: { fontSize: fontPx(0.7) }, splitLine: { lineStyle: { color: 'rgba(255,255,255,.08)' } } },
        yAxis: { type: 'category', inverse: true, data: names, axisLabel: { fontSize: fontPx(0.8) } },
        series: [{
          type: 'bar',
          data: values,
          barMaxWidth: fontPx(1.4),
          itemStyle: { color: '#39c6ff', borderRadius: [0, 4, 4, 0] },
          label: { show: true, position: 'right', color: '#fff', fontSize: fontPx(0.75), formatter: function (v) { return number(v.value); } }
        }]
      });
      empty(box, rows.length ? '' : tr('ranking.noData'));
    } else {
      table(box, [tr('table.org'), tr('table.value') + (unit ? ' (' + unitText(unit) + ')' : '')],
        rows.map(function (r, i) { return [(i + 1) + '. ' + childName(r.org), number(r.value)]; }));
      empty(box, rows.length ? '' : tr('ranking.noData'));
    }
    return rows.length > 0;
  }

  // The monthly series of the overview (the catalogue's monthly
  // indicators with values here).
  function monthlyTrends() {
    return ((state.data && state.data.trends) || []).filter(function (t) { return t.per === 'month' && t.points.length; });
  }

  // The selected indicator by year; when there are monthly series, every
  // other round of the indicators shows them by month instead, in turn, so
  // each indicator's yearly trend still comes round.
  function renderTrend(p, trend) {
    var monthly = monthlyTrends();
    var title = $('panel-trend').querySelector('h2');
    var round = Math.floor(state.indicatorIndex / Math.max(1, state.poolSize || 1));
    var byMonth = state.trendPer === 'month' || (!state.trendPer && !state.fixedIndicator && round % 2 === 1);
    if (monthly.length && byMonth) {
      var m = monthly[state.indicatorIndex % monthly.length];
      title.firstChild.textContent = tr('panel.trendMonthly');
      title.lastChild.textContent = localized(m.name);
      $('panel-trend').setAttribute('data-per', 'month');
      setReady('panel-trend', drawTrend($('trend-chart'), 'trend', null, m.unit, m.points, 'line'));
      return;
    }
    title.firstChild.textContent = tr('panel.trend');
    $('panel-trend').setAttribute('data-per', 'year');
    setReady('panel-trend', drawTrend($('trend-chart'), 'trend', p, p && p.unit, trend ? trend.points : [], 'line'));
  }

  // `points` over time as a line (or bars, or a table), with the target
  // and baseline of `p` when given; whether there are points.
  function drawTrend(box, key, p, unit, points, kind) {
    var c = kind === 'table' ? null : chart(key, box);
    if (c) {
      var marks = [];
      if (p && p.target && p.target.kind !== 'change_at_most') marks.push({ yAxis: p.target.value, name: tr('trend.target') });
      if (p && p.baseline != null) marks.push({ yAxis: p.baseline, name: tr('trend.baseline') });
      c.setOption({
        backgroundColor: 'transparent',
        grid: { left: 8, right: 64, top: 24, bottom: 8, containLabel: true },
        xAxis: { type: 'category', data: points.map(function (x) { return x.period; }), axisLabel: { fontSize: fontPx(0.75) } },
        yAxis: { type: 'value', scale: true, axisLabel: { fontSize: fontPx(0.7) }, splitLine: { lineStyle: { color: 'rgba(255,255,255,.08)' } } },
        series: [{
          type: kind === 'bar' ? 'bar' : 'line',
          smooth: true,
          symbolSize: fontPx(0.5),
          data: points.map(function (x) { return x.value; }),
          lineStyle: { width: 3, color: '#39c6ff' },
          itemStyle: { color: '#39c6ff' },
          areaStyle: { color: 'rgba(57,198,255,.15)' },
          // A label per point only where they have room (yearly series, not 24 months).
          label: { show: points.length <= 12, color: '#fff', fontSize: fontPx(0.7), formatter: function (v) { return number(v.value); } },
          markLine: { symbol: 'none', label: { formatter: '{b}', color: '#c9a227' }, lineStyle: { color: '#c9a227', type: 'dashed' }, data: marks }
        }]
      });
      empty(box, points.length ? '' : tr('trend.noData'));
    } else {
      table(box, [tr('table.period'), tr('table.value') + (unit ? ' (' + unitText(unit) + ')' : '')],
        points.map(function (x) { return [x.period, number(x.value)]; }));
      empty(box, points.length ? '' : tr('trend.noData'));
    }
    return points.length > 0;
  }

  // The orgs below as tiles in the tree's order (by code): a schematic map,
  // each tile coloured by the selected indicator from low to high.
  function renderMap(p, rows) {
    setReady('panel-map', drawMap($('map'), $('map-legend'), state.tiles, rows, 'map'));
  }

  // The map of the org's province (GeoJSON of its prefectures from the
  // pinned china-geojson package, /ui/kit/vendor/map-<province>.json),
  // registered with ECharts once: `{name, features}`, false when there is
  // none, undefined while it loads (the panels are drawn again then).
  function regionMap(org) {
    var province = String((org && org.code) || '').slice(0, 2);
    var file = state.vendor['map-' + province + '.json'];
    if (!state.echarts || !file || !(file.size > 0)) return false;
    var known = state.maps[province];
    if (known === undefined) {
      state.maps[province] = null;
      loadJson(file.url).then(function (geo) {
        var name = 'region-' + province;
        state.echarts.registerMap(name, geo);
        state.maps[province] = {
          name: name,
          features: (geo.features || []).map(function (f) { return f.properties && f.properties.name; }).filter(Boolean)
        };
      }, function () {
        state.maps[province] = false;
      }).then(redraw);
      return undefined;
    }
    return known === null ? undefined : known;
  }

  // The map's feature for each org below: the one whose name shares the
  // longest beginning with the org's (at least two characters), as the
  // maps' names are older than some orgs' (吐鲁番地区 for 吐鲁番市). None
  // unless most orgs below have one: a prefecture's counties are not on it.
  function featuresOf(map, children) {
    var out = {};
    var found = 0;
    children.forEach(function (child) {
      var name = (child.name && (child.name['zh-CN'] || child.name.zh)) || '';
      var best = null;
      var bestLength = 1;
      map.features.forEach(function (f) {
        var n = 0;
        while (n < f.length && n < name.length && f[n] === name[n]) n++;
        if (n > bestLength) { best = f; bestLength = n; }
      });
      if (best) { out[child.id] = best; found++; }
    });
    return found * 2 > children.length ? out : null;
  }

  function redraw() {
    if (!state.data) return;
    if (state.dashboard) renderBoard();
    else renderSelected();
  }

  // The orgs below coloured by `rows` on the region's map when there is
  // one for them, else as tiles (`drawTiles`); whether any org is shown.
  function drawMap(box, legend, tiles, rows, key) {
    var children = (state.data && state.data.children) || [];
    var map = children.length ? regionMap(state.data.org) : false;
    var features = map ? featuresOf(map, children) : null;
    if (!features) {
      if (box.classList.contains('as-geo')) {
        box.classList.remove('as-geo');
        if (state.charts[key]) { state.charts[key].dispose(); delete state.charts[key]; }
        box.replaceChildren();
      }
      return drawTiles(box, legend, tiles, rows);
    }
    var fresh = !box.classList.contains('as-geo') || box.getAttribute('data-map') !== map.name;
    if (!box.classList.contains('as-geo')) {
      box.replaceChildren(el('div', 'map-geo'));
      box.classList.add('as-geo');
      Object.keys(tiles).forEach(function (id) { delete tiles[id]; });
    }
    var values = {};
    rows.forEach(function (r) { values[r.org] = r.value; });
    var known = rows.map(function (r) { return r.value; });
    var lo = Math.min.apply(null, known.length ? known : [0]);
    var hi = Math.max.apply(null, known.length ? known : [0]);
    var nameMap = {};
    var data = [];
    children.forEach(function (child) {
      var feature = features[child.id];
      if (!feature) return;
      nameMap[feature] = localized(child.name);
      data.push({ name: nameMap[feature], value: values[child.id] == null ? NaN : values[child.id], org: child.id });
    });
    box.setAttribute('data-map', map.name);
    box.setAttribute('data-areas', String(data.length));
    var c = chart(key, box.firstChild);
    c.setOption({
      animationDurationUpdate: 800,
      tooltip: { trigger: 'item', formatter: function (p) { return p.name + ' ' + (isNaN(p.value) ? tr('map.noData') : number(p.value)); } },
      visualMap: { show: false, min: lo, max: hi > lo ? hi : lo + 1, inRange: { color: ['#163a6b', '#39c6ff'] } },
      series: [{
        type: 'map',
        map: map.name,
        nameMap: nameMap,
        roam: false,
        selectedMode: false,
        layoutCenter: ['50%', '50%'],
        layoutSize: '100%',
        itemStyle: { areaColor: '#26354b', borderColor: '#5aaaff', borderWidth: 1 },
        emphasis: { label: { color: '#fff' }, itemStyle: { areaColor: '#2f6db5' } },
        label: { show: true, color: '#fff', fontSize: fontPx(0.7), formatter: function (p) { return p.name + (isNaN(p.value) ? '' : '\n' + number(p.value)); } },
        data: data
      }]
    // Built anew only for a new map; later values are merged in, so a
    // wall that runs for days does not rebuild the map on every change.
    }, fresh);
    drawLegend(legend, known, lo, hi);
    return true;
  }

  // The orgs below as tiles in `box` (kept in `tiles`), with the legend.
  function drawTiles(box, legend, tiles, rows) {
    var children = (state.data && state.data.children) || [];
    var values = {};
    rows.forEach(function (r) { values[r.org] = r.value; });
    var known = rows.map(function (r) { return r.value; });
    var lo = Math.min.apply(null, known.length ? known : [0]);
    var hi = Math.max.apply(null, known.length ? known : [0]);
    var cols = Math.max(1, Math.ceil(Math.sqrt(children.length * 1.4)));
    box.style.gridTemplateColumns = 'repeat(' + cols + ', minmax(0, 1fr))';
    var seen = {};
    children.forEach(function (child, i) {
      seen[child.id] = true;
      var tile = tiles[child.id];
      if (!tile) {
        tile = { root: el('div', 'map-tile'), name: el('b'), value: el('span') };
        tile.root.setAttribute('data-org', child.id);
        tile.root.appendChild(tile.name);
        tile.root.appendChild(tile.value);
        tiles[child.id] = tile;
      }
      if (box.children[i] !== tile.root) box.insertBefore(tile.root, box.children[i] || null);
      tile.name.textContent = localized(child.name);
      var v = values[child.id];
      tile.value.textContent = v == null ? tr('map.noData') : number(v);
      tile.root.style.backgroundColor = v == null ? '' : shade(hi > lo ? (v - lo) / (hi - lo) : 1);
    });
    Object.keys(tiles).forEach(function (id) {
      if (!seen[id]) {
        tiles[id].root.remove();
        delete tiles[id];
      }
    });
    empty(box, children.length ? '' : tr('map.noChildren'));
    drawLegend(legend, known, lo, hi);
    return children.length > 0;
  }

  function drawLegend(legend, known, lo, hi) {
    if (!legend.firstChild) {
      legend.appendChild(el('span'));
      legend.appendChild(el('i'));
      legend.appendChild(el('span'));
    }
    legend.firstChild.textContent = tr('map.low') + ' ' + (known.length ? number(lo) : '');
    legend.lastChild.textContent = tr('map.high') + ' ' + (known.length ? number(hi) : '');
  }

  // #163a6b → #39c6ff.
  function shade(f) {
    var a = [0x16, 0x3a, 0x6b];
    var b = [0x39, 0xc6, 0xff];
    var c = a.map(function (x, i) { return Math.round(x + (b[i] - x) * f); });
    return 'rgb(' + c.join(',') + ')';
  }

  function fontPx(rem) {
    return Math.round(parseFloat(getComputedStyle(document.documentElement).fontSize) * rem);
  }


  // ---- a stored dashboard ----------------------------------------------------------
  //
  // The definition's panels in order, six to a page on a 16:9 wall and
  // twelve on a wall three times wider than high. Pages and panels are
  // built once per definition and updated in place; a changed definition
  // (an editor saved it) rebuilds them, disposing the old charts.

  function perPage() {
    return wide() ? 12 : 6;
  }

  function renderBoard() {
    var d = state.data;
    var def = d.dashboard;
    var shape = JSON.stringify([def.panels, perPage()]);
    if (!state.board || state.board.shape !== shape) buildBoard(def, shape);
    document.querySelector('.wall-head h1').textContent = localized(def.name);
    $('wall-org').textContent = localized(d.org.name);
    d.panels.forEach(function (entry, i) { drawBoardPanel(state.board.panels[i], entry); });
    var at = new Date(d.generated_at || Date.now());
    $('wall-updated').textContent = tr('updated', { time: at.toLocaleTimeString(state.lang, { hour12: false }) });
    if (!params.get('rotate')) setRotation(def.rotate * 1000);
  }

  // The panels of each page: in order, each taking `span` of the grid's
  // columns in a row (one that does not fit the row's rest starts the
  // next), two rows a page.
  function paginate(panels, cols) {
    var pages = [];
    var page = null;
    var row = 0;
    var used = 0;
    panels.forEach(function (panel, i) {
      var span = Math.min(cols, panel.span || 1);
      if (page && used + span > cols) { row++; used = 0; }
      if (!page || row >= 2) { page = { items: [], rows: 1, cells: 0 }; pages.push(page); row = 0; used = 0; }
      page.items.push({ index: i, span: span });
      page.rows = row + 1;
      used += span;
      // The columns its fullest row fills.
      page.cells = Math.max(page.cells, used);
    });
    return pages;
  }

  function buildBoard(def, shape) {
    Object.keys(state.charts).forEach(function (k) {
      if (k.indexOf('board-') === 0) {
        state.charts[k].dispose();
        delete state.charts[k];
      }
    });
    var root = $('wall-board');
    root.replaceChildren();
    $('wall-pager').replaceChildren();
    var cols = perPage() / 2;
    var pageOf = [];
    paginate(def.panels, cols).forEach(function (p, n) {
      var page = el('section', 'wall-page board-page');
      page.setAttribute('data-page', 'board');
      page.setAttribute('data-n', String(n + 1));
      // As many columns as the page's panels fill, in at most two rows.
      page.style.gridTemplateColumns = 'repeat(' + p.cells + ', minmax(0, 1fr))';
      page.style.gridTemplateRows = 'repeat(' + p.rows + ', minmax(0, 1fr))';
      root.appendChild(page);
      p.items.forEach(function (item) { pageOf[item.index] = { page: page, span: item.span }; });
    });
    var panels = def.panels.map(function (panel, i) {
      var box = el('article', 'panel board-panel board-' + panel.kind);
      if (pageOf[i].span > 1) box.style.gridColumn = 'span ' + pageOf[i].span;
      box.setAttribute('data-index', String(i));
      box.setAttribute('data-kind', panel.kind);
      if (panel.indicator) box.setAttribute('data-indicator', panel.indicator);
      var title = el('h2');
      var body = el('div', panel.kind === 'plan' ? 'plan-grid' : panel.kind === 'map' ? 'map' : panel.kind === 'value' || panel.kind === 'approvals' ? 'board-number' : panel.kind === 'positions' ? 'positions' : 'chart');
      box.appendChild(title);
      box.appendChild(body);
      var legend = null;
      var alerts = null;
      if (panel.kind === 'map') {
        legend = el('div', 'map-legend');
        box.appendChild(legend);
      }
      if (panel.kind === 'positions') {
        body.appendChild(el('div', 'positions-map'));
        alerts = el('ol', 'alerts');
        body.appendChild(alerts);
      }
      pageOf[i].page.appendChild(box);
      return { root: box, title: title, body: body, legend: legend, alerts: alerts, key: 'board-' + i, cards: {}, tiles: {} };
    });
    state.board = { shape: shape, panels: panels };
    state.page = 0;
    showPage(0);
  }

  function panelTitle(entry) {
    var panel = entry.panel;
    if (panel.title) return localized(panel.title);
    var ind = entry.data && entry.data.indicator;
    if (ind) return localized(ind.name);
    return tr('panel.' + panel.kind);
  }

  function drawBoardPanel(view, entry) {
    var panel = entry.panel;
    var data = entry.data || {};
    var ind = data.indicator;
    var chartKind = panel.chart || null;
    view.panel = panel;
    view.title.textContent = panelTitle(entry);
    var ready = false;
    if (data.missing) {
      view.body.textContent = tr('board.missing', { code: data.missing });
    } else if (panel.kind === 'plan') {
      ready = drawCards(view.body, view.cards, data.progress || []);
    } else if (panel.kind === 'approvals') {
      ready = drawNumber(view.body, data.running, tr('approvals.unit'), data.running == null ? tr('approvals.hidden') : tr('approvals.scope'));
    } else if (panel.kind === 'value') {
      var p = data.progress || {};
      var note = [p.latest_period ? tr('board.period', { period: p.latest_period }) : '', targetText(p), p.met == null ? '' : tr('met.' + p.met)]
        .filter(Boolean).join(' · ');
      ready = drawNumber(view.body, p.latest, unitText(ind ? ind.unit : ''), note);
    } else if (panel.kind === 'ranking') {
      ready = drawRanking(view.body, view.key, ind && ind.unit, (data.ranking && data.ranking.rows) || [], chartKind);
    } else if (panel.kind === 'map') {
      ready = drawMap(view.body, view.legend, view.tiles, (data.ranking && data.ranking.rows) || [], view.key);
    } else if (panel.kind === 'positions') {
      ready = drawPositions(view, data);
    } else if (panel.kind === 'trend') {
      var marks = ind && ind.per === 'year' && ind.target ? { target: ind.target, baseline: null } : null;
      ready = drawTrend(view.body, view.key, marks, ind && ind.unit, data.points || [], chartKind);
    }
    view.root.setAttribute('data-ready', ready ? 'true' : 'false');
  }

  // ---- live positions -----------------------------------------------------------------
  //
  // A positions panel shows one plugin's terminals where they last reported
  // (GET /api/v1/telemetry/positions, read again every POSITIONS_MS while
  // the board is up: positions are not data-center values, so no event
  // announces them) on the region's map, and its newest alerts beside.

  var POSITIONS_MS = 10000;

  function drawPositions(view, data) {
    var mapBox = view.body.firstChild;
    if (data.unavailable) {
      mapBox.textContent = tr('positions.unavailable', { plugin: data.unavailable });
      view.alerts.replaceChildren();
      return false;
    }
    var points = data.positions || [];
    view.body.setAttribute('data-positions', String(points.length));
    var fast = function (p) { return p.speed_kmh > 120 || p.alarm !== 0; };
    var map = regionMap(state.data.org);
    var c = chart(view.key, mapBox);
    if (c) {
      var series = {
        type: 'scatter',
        symbolSize: fontPx(0.55),
        itemStyle: { color: function (p) { return p.data.fast ? '#ff6b6b' : p.data.parked ? '#8ea3c4' : '#39e6a5'; } },
        data: points.map(function (p) {
          return { name: p.name, value: [p.longitude, p.latitude, p.speed_kmh], fast: fast(p), parked: p.speed_kmh === 0 };
        })
      };
      var option = {
        tooltip: { trigger: 'item', formatter: function (p) { return p.name + ' ' + number(p.value[2]) + ' km/h'; } },
        series: [series]
      };
      if (map) {
        option.geo = {
          map: map.name, roam: false, silent: true, layoutCenter: ['50%', '50%'], layoutSize: '100%',
          itemStyle: { areaColor: '#16263f', borderColor: '#3b6fa8' },
          label: { show: false }
        };
        series.coordinateSystem = 'geo';
        mapBox.setAttribute('data-map', map.name);
      } else {
        option.grid = { left: 8, right: 8, top: 8, bottom: 8, containLabel: true };
        option.xAxis = { type: 'value', scale: true, axisLabel: { show: false }, splitLine: { show: false } };
        option.yAxis = { type: 'value', scale: true, axisLabel: { show: false }, splitLine: { show: false } };
      }
      // Replaced only when the map comes or goes: otherwise the points
      // move from where they were instead of growing in again each read.
      var mode = map ? map.name : 'plane';
      c.setOption(option, view.mode !== mode);
      view.mode = mode;
    } else {
      table(mapBox, [tr('positions.vehicle'), tr('positions.speed')], points.slice(0, 12).map(function (p) {
        return [p.name, number(p.speed_kmh) + ' km/h'];
      }));
    }
    var list = data.alerts || [];
    view.alerts.replaceChildren.apply(view.alerts, list.slice(0, 6).map(function (a) {
      var at = new Date(a.at);
      var item = el('li');
      item.setAttribute('data-rule', a.rule);
      item.appendChild(el('time', null, at.toLocaleTimeString(state.lang, { hour12: false, hour: '2-digit', minute: '2-digit' })));
      item.appendChild(el('b', null, a.name));
      item.appendChild(el('span', null, tr('alert.' + a.rule) === 'alert.' + a.rule ? a.rule : tr('alert.' + a.rule)));
      return item;
    }));
    if (!list.length) view.alerts.appendChild(el('li', 'alerts-none', tr('positions.noAlerts')));
    var moving = points.filter(function (p) { return p.speed_kmh > 0; }).length;
    view.title.textContent = panelTitle({ panel: view.panel, data: data }) + ' · ' + tr('positions.count', { n: points.length, moving: moving });
    return points.length > 0;
  }

  // Reads each positions panel's answer again, in place.
  function refreshPositions() {
    if (!state.board || !state.data || !state.dashboard) return;
    state.board.panels.forEach(function (view) {
      if (!view.panel || view.panel.kind !== 'positions' || !view.panel.plugin) return;
      var url = '/api/v1/telemetry/positions?plugin=' + encodeURIComponent(view.panel.plugin) +
        '&org=' + encodeURIComponent(state.data.org.id);
      fetch(url, { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (answer) {
        if (answer && state.board && state.board.panels.indexOf(view) >= 0) {
          view.root.setAttribute('data-ready', drawPositions(view, answer) ? 'true' : 'false');
        }
      }, function () { /* the next round tries again */ });
    });
  }

  // One big figure with its unit and a line under it; whether it has one.
  function drawNumber(box, value, unit, note) {
    if (!box.firstChild) {
      box.appendChild(el('p', 'big-number'));
      box.appendChild(el('p', 'panel-note'));
    }
    var big = box.firstChild;
    big.textContent = value == null ? tr('plan.noValue') : number(value);
    big.setAttribute('data-value', value == null ? '' : String(value));
    if (value != null && unit) big.appendChild(el('small', null, unit));
    box.lastChild.textContent = note || '';
    return value != null;
  }

  function setRotation(ms) {
    if (state.rotateMs === ms && state.rotateTimer) return;
    state.rotateMs = ms;
    clearInterval(state.rotateTimer);
    state.rotateTimer = ms > 0 ? setInterval(rotate, ms) : null;
  }

  // ---- pages and time ---------------------------------------------------------------

  function wide() {
    return window.matchMedia('(min-aspect-ratio: 3/1)').matches;
  }

  function showPage(n) {
    var pages = (state.dashboard ? $('wall-board') : $('wall-pages')).querySelectorAll('.wall-page');
    if (!pages.length) return;
    state.page = n % pages.length;
    var pager = $('wall-pager');
    for (var i = 0; i < pages.length; i++) {
      pages[i].classList.toggle('active', i === state.page);
      var dot = pager.children[i];
      if (!dot) {
        var name = pages[i].getAttribute('data-page');
        dot = el('span', null, name === 'board' ? tr('page.board', { n: pages[i].getAttribute('data-n') }) : tr('page.' + name));
        pager.appendChild(dot);
      }
      dot.classList.toggle('active', i === state.page);
    }
  }

  function rotate() {
    if (state.dashboard) return showPage(state.page + 1);
    // On a wide wall both pages show: only the indicator turns.
    if (wide() || state.page === 1) {
      state.indicatorIndex++;
      if (state.data) renderSelected();
    }
    if (!wide()) showPage(state.page + 1);
  }

  function tick() {
    var now = new Date();
    $('wall-clock').textContent = now.toLocaleString(state.lang, {
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false
    });
  }

  function onResize() {
    Object.keys(state.charts).forEach(function (k) { state.charts[k].resize(); });
    if (state.data && state.dashboard) renderBoard();
    else if (state.data) renderSelected();
  }

  function boot() {
    showPage(0);
    tick();
    setInterval(tick, 1000);
    setRotation(state.rotateMs);
    setInterval(function () { if (state.data) load(); }, SAFETY_REFRESH_MS);
    setInterval(refreshPositions, POSITIONS_MS);
    var resizeTimer = null;
    window.addEventListener('resize', function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(onResize, 200);
    });
    Promise.all([loadTexts(), loadCharts()]).then(function (got) {
      state.echarts = got[1];
      document.body.setAttribute('data-charts', state.echarts ? 'echarts' : 'tables');
      setLive('connecting');
      var pager = $('wall-pager');
      pager.replaceChildren();
      showPage(0);
      return load();
    }).then(resume);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
