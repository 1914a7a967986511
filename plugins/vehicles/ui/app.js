// 公务用车管理: the vehicles plugin's pages on the UI kit. Every text comes
// from i18n/{lang}.json or the kit's; the API is /api/v1/p/vehicles/…
import * as kit from '/ui/kit/kit.js';

(function () {
  'use strict';

  var h = kit.h;
  var tr = kit.tr;
  var vocab = {};

  function view() { return document.getElementById('view'); }

  function label(name, code) {
    var terms = vocab[name] || [];
    for (var i = 0; i < terms.length; i++) {
      if (terms[i].code === code) return kit.lang() === 'en' ? terms[i].en : terms[i]['zh-CN'];
    }
    return code;
  }

  function show(children) {
    var v = view();
    v.textContent = '';
    kit.append(v, children);
  }

  function failed(res) { show(h('p', { class: 'form-error' }, kit.errorText(res))); }

  function column(key, render) {
    return { key: key, label: tr('field.' + key), render: render };
  }

  function vehicles() {
    return kit.api('GET', 'vehicles?limit=50').then(function (res) {
      if (!kit.ok(res)) return failed(res);
      show(kit.table([
        column('plate', function (r) { return r.data.plate; }),
        column('brand', function (r) { return r.data.brand + ' ' + r.data.model; }),
        column('energy_type', function (r) { return label('energy_type', r.data.energy_type); }),
        column('category', function (r) { return label('category', r.data.category); }),
        column('odometer_km', function (r) { return String(r.data.odometer_km); }),
        column('state', function (r) { return label('state', r.data.state); })
      ], res.body.records, { empty: tr('common.empty') }));
    });
  }

  function purchases() {
    return kit.api('GET', 'purchases?limit=50').then(function (res) {
      if (!kit.ok(res)) return failed(res);
      show(kit.table([
        column('no', function (r) { return r.data.no; }),
        column('kind', function (r) { return label('kind', r.data.kind); }),
        column('category', function (r) { return label('category', r.data.category); }),
        column('energy_type', function (r) { return label('energy_type', r.data.energy_type); }),
        { key: 'price', label: tr('field.price'), money: true, render: function (r) { return r.data.price; } },
        column('status', function (r) { return r.data.status; })
      ], res.body.records, { empty: tr('common.empty') }));
    });
  }

  function quotas() {
    return kit.api('GET', 'quotas?limit=200').then(function (res) {
      if (!kit.ok(res)) return failed(res);
      show(kit.table([
        column('org', function (r) { return r.org; }),
        column('category', function (r) { return label('category', r.category); }),
        column('quota', function (r) { return String(r.quota); }),
        column('held', function (r) { return String(r.held); }),
        column('headroom', function (r) { return String(r.headroom); })
      ], res.body.records, { empty: tr('common.empty') }));
    });
  }

  function nev() {
    return kit.api('GET', 'indicators').then(function (res) {
      if (!kit.ok(res)) return failed(res);
      var box = h('div', { style: 'height:320px' });
      show([h('h2', null, tr('nev.fleet')), box]);
      var rows = res.body.nev_share_stock || [];
      kit.chart(box, {
        type: 'bar',
        categories: rows.map(function (r) { return r.org; }),
        series: [{ name: tr('nev.fleet'), data: rows.map(function (r) { return r.value; }) }],
        unit: '%'
      });
    });
  }

  function todos() {
    show(h('div', { id: 'todos' }));
    return kit.todoList(document.getElementById('todos'));
  }

  var routes = { vehicles: vehicles, purchases: purchases, quotas: quotas, nev: nev, todos: todos };

  function route() {
    var name = (location.hash.replace(/^#\//, '').split('?')[0]) || 'vehicles';
    (routes[name] || vehicles)();
  }

  kit.start({ plugin: 'vehicles' }).then(function () {
    return kit.api('GET', 'vocab');
  }).then(function (res) {
    if (kit.ok(res)) vocab = res.body;
    window.addEventListener('hashchange', route);
    route();
  });
})();
