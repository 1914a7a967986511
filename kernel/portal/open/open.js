// The open data page (/open/): the data center's open indicators for
// anyone, without signing in — the catalogue, then one indicator rolled up
// at the region (or any org) by year, the orgs one level below, and its
// files. It reads only /api/v1/open/, which serves open indicators and
// rolled-up values and nothing else; the kernel decides what is open.
import * as kit from '/ui/kit/kit.js';

var LANGS = ['zh-CN', 'en'];
var LANG_KEY = 'tianshan.lang'; // the portal's choice, shared
var texts = {};
var catalogue = null;
var seq = 0;

function $(id) { return document.getElementById(id); }

function tr(key, values) {
  var s = texts[key];
  return kit.format(s == null ? key : s, values);
}

function pickLang() {
  var asked = new URLSearchParams(location.search).get('lang');
  if (LANGS.indexOf(asked) >= 0) return asked;
  var stored = null;
  try { stored = localStorage.getItem(LANG_KEY); } catch (e) { stored = null; }
  return LANGS.indexOf(stored) >= 0 ? stored : 'zh-CN';
}

function useLang(lang) {
  return Promise.all([
    fetch('/open/i18n/' + lang + '.json').then(function (r) { return r.ok ? r.json() : {}; }, function () { return {}; }),
    kit.setLang(lang)
  ]).then(function (both) {
    texts = both[0];
    document.querySelectorAll('[data-i18n]').forEach(function (node) {
      node.textContent = tr(node.getAttribute('data-i18n'));
    });
    document.title = tr('open.title');
  });
}

function get(path) {
  return fetch(path, { credentials: 'omit', headers: { Accept: 'application/json' } }).then(function (r) {
    return r.json().catch(function () { return null; }).then(function (body) { return { status: r.status, body: body }; });
  }, function () { return { status: 0, body: null }; });
}

function message(text) {
  $('open-message').textContent = text || '';
  $('open-message').hidden = !text;
}

function failure(res) {
  return res.status === 0 ? tr('open.network') : kit.errorText(res);
}

function name(ind) { return kit.localized(ind.name) || ind.code; }

function unitText(unit) {
  var s = texts['unit.' + unit];
  return s == null ? unit || '' : s;
}

// The system an indicator comes from: the bundled ones by name, a local
// module by its id.
function ownerText(owner) {
  var s = texts['open.system.' + owner];
  return s == null ? owner : s;
}

function number(v) {
  if (v == null || !isFinite(v)) return '—';
  return Number(v).toLocaleString(kit.lang(), { maximumFractionDigits: 2 });
}

function show(id) {
  $('open-list').hidden = id !== 'open-list';
  $('open-detail').hidden = id !== 'open-detail';
}

// #/ the catalogue; #/d/{code} one indicator at the region; #/d/{code}/{org} at an org.
function route() {
  var m = /^#\/d\/([^/?#]+)(?:\/([^/?#]+))?$/.exec(location.hash);
  message('');
  if (!m) return showCatalogue();
  try {
    return showIndicator(decodeURIComponent(m[1]), m[2] ? decodeURIComponent(m[2]) : null);
  } catch (e) {
    return showCatalogue();
  }
}

function loadCatalogue() {
  if (catalogue) return Promise.resolve(catalogue);
  return get('/api/v1/open/datasets').then(function (res) {
    if (res.status !== 200 || !res.body) { message(failure(res)); return []; }
    catalogue = res.body.datasets || [];
    return catalogue;
  });
}

function showCatalogue() {
  var mine = ++seq;
  show('open-list');
  var box = $('open-list');
  loadCatalogue().then(function (all) {
    if (mine !== seq) return;
    box.textContent = '';
    var search = kit.h('input', { type: 'search', class: 'open-search', id: 'open-search', placeholder: tr('open.search'), 'aria-label': tr('open.search') });
    var list = kit.h('div', { id: 'open-datasets' });
    function draw() {
      var q = search.value.trim().toLowerCase();
      var rows = all.filter(function (ind) {
        return !q || ind.code.toLowerCase().indexOf(q) >= 0 || name(ind).toLowerCase().indexOf(q) >= 0;
      });
      list.textContent = '';
      list.appendChild(kit.table([
        { label: tr('open.name'), render: function (ind) { return kit.h('a', { href: '#/d/' + encodeURIComponent(ind.code) }, name(ind)); } },
        { label: tr('open.unit'), render: function (ind) { return unitText(ind.unit); } },
        { label: tr('open.granularity'), render: function (ind) { return tr('open.per.' + ind.granularity); } },
        { label: tr('open.owner'), render: function (ind) { return ownerText(ind.owner); } }
      ], rows.map(function (ind) { ind.__props = { 'data-code': ind.code }; return ind; }), { empty: tr('open.none') }));
    }
    search.addEventListener('input', draw);
    box.appendChild(kit.h('div', { class: 'open-card' }, [kit.h('h2', null, tr('open.catalogue')), search, list]));
    draw();
  });
}

function orgName(orgs, id) {
  var o = orgs && orgs[id];
  return o ? kit.localized(o.name) || o.code : id;
}

function showIndicator(code, org) {
  var mine = ++seq;
  show('open-detail');
  var box = $('open-detail');
  box.textContent = '';
  var base = '/api/v1/open/datasets/' + encodeURIComponent(code);
  var at = org ? '&org=' + encodeURIComponent(org) : '';
  Promise.all([loadCatalogue(), get(base + '?per=year' + at), get(base + '?per=year&group=org' + at)]).then(function (r) {
    if (mine !== seq) return;
    var ind = r[0].filter(function (x) { return x.code === code; })[0];
    if (!ind || r[1].status !== 200) {
      message(ind ? failure(r[1]) : tr('open.notOpen'));
      return;
    }
    var own = r[1].body;
    var here = own.rows.length ? orgName(own.orgs, own.rows[0].org) : (org ? org : tr('open.region'));
    var crumbs = kit.h('nav', { class: 'open-crumbs', id: 'open-crumbs' }, [
      kit.h('a', { href: '#/' }, tr('open.catalogue')), '›',
      org ? kit.h('a', { href: '#/d/' + encodeURIComponent(code) }, tr('open.region')) : null, org ? '›' : null,
      kit.h('span', null, here)
    ]);
    box.appendChild(crumbs);
    box.appendChild(kit.h('div', { class: 'open-card' }, [
      kit.h('h2', { id: 'open-name' }, name(ind) + ' · ' + here),
      kit.h('dl', { class: 'open-facts' }, [
        kit.h('dt', null, tr('open.code')), kit.h('dd', null, kit.h('code', null, ind.code)),
        kit.h('dt', null, tr('open.unit')), kit.h('dd', null, unitText(ind.unit)),
        kit.h('dt', null, tr('open.granularity')), kit.h('dd', null, tr('open.per.' + ind.granularity)),
        kit.h('dt', null, tr('open.aggregation')), kit.h('dd', null, tr('open.agg.' + ind.aggregation))
      ]),
      kit.h('div', { class: 'open-actions' }, ['csv', 'xlsx'].map(function (f) {
        return kit.h('a', { href: base + '?per=year&group=org&format=' + f + at, download: '', 'data-format': f }, tr('open.download.' + f));
      }))
    ]));

    var years = own.rows.map(function (row) { return row.period; });
    var chartBox = kit.h('div', { class: 'open-chart', id: 'open-trend' });
    box.appendChild(kit.h('div', { class: 'open-card' }, [kit.h('h2', null, tr('open.byYear')), years.length ? chartBox : kit.h('p', { class: 'muted' }, tr('open.noValues')),
      kit.table([{ label: tr('open.period'), key: 'period' }, { label: tr('open.value'), num: true, render: function (row) { return number(row.value); } }],
        own.rows, { id: 'open-years' })]));
    if (years.length) {
      kit.chart(chartBox, { type: 'line', unit: unitText(ind.unit), categories: years, categoryLabel: tr('open.period'),
        series: [{ name: name(ind), data: own.rows.map(function (row) { return row.value; }) }], height: 260 });
    }

    var below = r[2].status === 200 && r[2].body ? r[2].body : { rows: [], orgs: {} };
    var latest = below.rows.reduce(function (m, row) { return row.period > m ? row.period : m; }, '');
    var rows = below.rows.filter(function (row) { return row.period === latest && row.org !== (own.rows[0] || {}).org; })
      .sort(function (a, b) { return b.value - a.value; });
    box.appendChild(kit.h('div', { class: 'open-card' }, [
      kit.h('h2', null, latest ? tr('open.belowIn', { period: latest }) : tr('open.below')),
      kit.table([
        { label: tr('open.org'), render: function (row) {
          return kit.h('a', { href: '#/d/' + encodeURIComponent(code) + '/' + encodeURIComponent(row.org) }, orgName(below.orgs, row.org));
        } },
        { label: tr('open.value'), num: true, render: function (row) { return number(row.value); } }
      ], rows.map(function (row) { row.__props = { 'data-org': row.org }; return row; }), { id: 'open-below', empty: tr('open.noBelow') })
    ]));
  });
}

$('open-lang').addEventListener('click', function () {
  var next = kit.lang() === 'en' ? 'zh-CN' : 'en';
  try { localStorage.setItem(LANG_KEY, next); } catch (e) { /* private mode: this page only */ }
  useLang(next).then(route);
});
window.addEventListener('hashchange', route);
useLang(pickLang()).then(route);
