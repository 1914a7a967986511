// 公务用车管理: the vehicles plugin's pages on the UI kit. Every text comes
// from i18n/{lang}.json or the kit's; the API is /api/v1/p/vehicles/…
import * as kit from '/ui/kit/kit.js';

(function () {
  'use strict';

  var h = kit.h;
  var tr = kit.tr;

  function view() { return document.getElementById('view'); }

  var label = kit.term;

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

  function tripTime(r) { return r.data.start_at.replace('T', ' ') + ' – ' + r.data.end_at.slice(11); }

  // 用车申请: a phone-sized form and the caller's own trips.
  function trips() {
    var f = {
      reason: kit.input('text', { required: true }),
      destination: kit.input('text', { required: true }),
      start_at: kit.input('datetime-local', { required: true }),
      end_at: kit.input('datetime-local', { required: true }),
      passengers: kit.input('number', { min: 1, max: 60, value: 1 }),
      emergency: kit.input('checkbox')
    };
    var form = h('form', { id: 'trip-form', class: 'form' }, Object.keys(f).map(function (name) {
      return kit.field(name, tr('field.' + name), f[name]);
    }).concat([h('button', { type: 'submit', class: 'primary', id: 'trip-submit' }, tr('trip.request'))]));
    var list = h('div', { id: 'trip-list' });
    kit.onSubmit(form, function () {
      return kit.api('POST', 'trips', {
        reason: f.reason.value, destination: f.destination.value,
        start_at: f.start_at.value.slice(0, 16), end_at: f.end_at.value.slice(0, 16),
        passengers: Number(f.passengers.value || 1), emergency: f.emergency.checked
      });
    }, function () { form.reset(); load(); });
    function load() {
      var me = (kit.context().user || {}).id;
      return kit.api('GET', 'trips?sort=-start_at&limit=50').then(function (res) {
        list.textContent = '';
        if (!kit.ok(res)) return kit.append(list, h('p', { class: 'form-error' }, kit.errorText(res)));
        var mine = res.body.records.filter(function (r) { return !me || r.data.applicant === me; });
        kit.append(list, kit.pagedRows([
          column('no', function (r) { return r.data.no; }),
          column('destination', function (r) { return r.data.destination; }),
          column('start_at', tripTime),
          column('status', function (r) { return label('trip_status', r.data.status); }),
          column('plate', function (r) { return r.data.plate + (r.data.driver_name ? ' · ' + r.data.driver_name : ''); })
        ], mine, { empty: tr('common.empty') }, 10));
      });
    }
    show([h('h2', null, tr('trip.request')), form, h('h2', null, tr('trip.mine')), list]);
    return load();
  }

  // 派车台: approved trips to dispatch, dispatched ones to take back.
  function board() {
    return Promise.all([
      kit.api('GET', 'trips?status=approved&sort=start_at&limit=100'),
      kit.api('GET', 'trips?status=dispatched&sort=start_at&limit=100'),
      kit.api('GET', 'vehicles?state=in_service&limit=200'),
      kit.api('GET', 'drivers?limit=200')
    ]).then(function (r) {
      for (var i = 0; i < r.length; i++) if (!kit.ok(r[i])) return failed(r[i]);
      var cars = r[2].body.records;
      var drivers = r[3].body.records;
      function choose(rows, text) {
        return h('select', null, rows.map(function (x) { return h('option', { value: x.id }, text(x)); }));
      }
      var waiting = r[0].body.records.map(function (t) {
        var car = choose(cars, function (x) { return x.data.plate + ' ' + label('energy_type', x.data.energy_type); });
        var driver = choose(drivers, function (x) { return x.data.name; });
        var form = h('form', { class: 'form inline', 'data-trip': t.data.no }, [
          kit.field('vehicle_id', tr('field.plate'), car),
          kit.field('driver_id', tr('field.driver'), driver),
          h('button', { type: 'submit', class: 'primary' }, tr('trip.dispatch'))
        ]);
        kit.onSubmit(form, function () {
          return kit.api('POST', 'trips/' + t.id + '/dispatch', { vehicle_id: car.value, driver_id: driver.value });
        }, board);
        return h('div', { class: 'card' }, [
          h('p', null, [h('strong', null, t.data.no + (t.data.emergency ? ' · ' + tr('field.emergency') : '')), ' ',
            t.data.applicant_name + ' · ' + t.data.destination + ' · ' + tripTime(t)]),
          form
        ]);
      });
      var out = r[1].body.records.map(function (t) {
        var f = {
          odometer_out: kit.input('number', { step: '0.1', required: true }),
          odometer_in: kit.input('number', { step: '0.1', required: true }),
          tolls: kit.input('number', { step: '0.01', min: 0 }),
          parking: kit.input('number', { step: '0.01', min: 0 })
        };
        var form = h('form', { class: 'form inline', 'data-trip': t.data.no }, Object.keys(f).map(function (name) {
          return kit.field(name, tr('field.' + name), f[name]);
        }).concat([h('button', { type: 'submit' }, tr('trip.return'))]));
        var fen = function (x) { return Math.round(Number(x.value || 0) * 100); };
        kit.onSubmit(form, function () {
          return kit.api('POST', 'trips/' + t.id + '/return', {
            odometer_out: Number(f.odometer_out.value), odometer_in: Number(f.odometer_in.value),
            tolls: fen(f.tolls), parking: fen(f.parking)
          });
        }, board);
        return h('div', { class: 'card' }, [
          h('p', null, [h('strong', null, t.data.no), ' ', t.data.plate + ' · ' + t.data.driver_name + ' · ' + tripTime(t)]),
          form
        ]);
      });
      show([
        h('h2', null, tr('trip.waiting')), waiting.length ? waiting : h('p', { class: 'muted' }, tr('common.empty')),
        h('h2', null, tr('trip.out')), out.length ? out : h('p', { class: 'muted' }, tr('common.empty'))
      ]);
    });
  }

  // 实时监控: the fleet where its terminals last reported, on the region's
  // map, and the alerts of the last day (the kit reads them again).
  var liveMap = null;
  function live() {
    var box = h('div', { id: 'live', class: 'kit-positions' });
    show([h('h2', null, tr('live.title')), box]);
    liveMap = kit.positionsMap(box);
    return liveMap.ready;
  }

  // 告警处理: the terminals' alerts, each handled to a verdict with a note.
  function alerts() {
    return Promise.all([
      kit.api('GET', 'alerts?status=open&limit=100'),
      kit.api('GET', 'alerts?limit=50')
    ]).then(function (r) {
      if (!kit.ok(r[0])) return failed(r[0]);
      if (!kit.ok(r[1])) return failed(r[1]);
      var when = function (a) { return new Date(a.data.at).toLocaleString(kit.lang(), { hour12: false }); };
      var rule = function (a) { return kit.has('alert.' + a.data.rule) ? tr('alert.' + a.data.rule) : a.data.rule; };
      var open = r[0].body.records.map(function (a) {
        var note = kit.input('text', { name: 'note', maxlength: 500, placeholder: tr('alerts.note') });
        var form = h('form', { class: 'form inline', 'data-alert': a.id });
        var decide = function (verdict) {
          return function (e) {
            e.preventDefault();
            kit.clearErrors(form);
            kit.api('POST', 'alerts/' + a.id + '/verdict', { verdict: verdict, note: note.value }).then(function (res) {
              if (!kit.ok(res)) return kit.showError(form, res);
              alerts();
            });
          };
        };
        kit.append(form, [
          kit.field('note', tr('alerts.note'), note, true),
          h('button', { type: 'button', class: 'primary', 'data-verdict': 'compliant', onclick: decide('compliant') }, tr('alerts.compliant')),
          h('button', { type: 'button', 'data-verdict': 'violation', onclick: decide('violation') }, tr('alerts.violation'))
        ]);
        return h('div', { class: 'card' }, [
          h('p', null, [h('strong', null, a.data.plate || a.data.vehicle_id), ' · ', rule(a), ' · ', when(a)]),
          form
        ]);
      });
      var decided = r[1].body.records.filter(function (a) { return a.data.status !== 'open'; });
      show([
        h('h2', null, tr('alerts.open')), open.length ? open : h('p', { class: 'muted' }, tr('common.empty')),
        h('h2', null, tr('alerts.decided')),
        kit.table([
          column('plate', function (a) { return a.data.plate; }),
          column('rule', rule),
          column('at', when),
          column('status', function (a) { return tr('status.' + a.data.status); }),
          column('note', function (a) { return a.data.note; }),
          column('decided_by', function (a) { return a.data.decided_by; })
        ], decided, { empty: tr('common.empty') })
      ]);
    });
  }

  // 充电桩: the piles in reach and a form to register one.
  function piles() {
    var f = {
      name: kit.input('text', { required: true, maxlength: 100 }),
      current: h('select', null, kit.terms('current').map(function (c) {
        return h('option', { value: c, selected: c === 'dc' }, label('current', c));
      })),
      power_kw: kit.input('number', { step: '0.1', min: 0, required: true }),
      location: kit.input('text', { maxlength: 200 }),
      meter_id: kit.input('text', { maxlength: 128 })
    };
    var labels = { name: 'pile_name' };
    var form = h('form', { id: 'pile-form', class: 'form' }, Object.keys(f).map(function (name) {
      return kit.field(name, tr('field.' + (labels[name] || name)), f[name]);
    }).concat([h('button', { type: 'submit', class: 'primary', id: 'pile-submit' }, tr('piles.add'))]));
    var list = h('div', { id: 'pile-list' });
    kit.onSubmit(form, function () {
      return kit.api('POST', 'piles', {
        name: f.name.value, current: f.current.value, power_kw: Number(f.power_kw.value || 0),
        location: f.location.value, meter_id: f.meter_id.value
      });
    }, function () { form.reset(); load(); });
    function load() {
      return kit.api('GET', 'piles?limit=200').then(function (res) {
        list.textContent = '';
        if (!kit.ok(res)) return kit.append(list, h('p', { class: 'form-error' }, kit.errorText(res)));
        kit.append(list, kit.table([
          column('pile_name', function (r) { return r.data.name; }),
          column('current', function (r) { return label('current', r.data.current); }),
          column('power_kw', function (r) { return String(r.data.power_kw); }),
          column('location', function (r) { return r.data.location; }),
          column('meter_id', function (r) { return r.data.meter_id || '—'; })
        ], res.body.records, { empty: tr('common.empty') }));
      });
    }
    show([h('h2', null, tr('piles.title')), list, h('h2', null, tr('piles.add')), form]);
    return load();
  }

  var routes = {
    vehicles: vehicles, purchases: purchases, quotas: quotas, nev: nev, todos: todos,
    trips: trips, board: board, live: live, alerts: alerts, piles: piles
  };

  function route() {
    if (liveMap) { liveMap.stop(); liveMap = null; }
    var name = (location.hash.replace(/^#\//, '').split('?')[0]) || 'vehicles';
    // The portal's address, breadcrumb and menu follow the section.
    kit.reportRoute(kit.has('nav.' + name) ? tr('nav.' + name) : '');
    (routes[name] || vehicles)();
  }

  kit.start({ plugin: 'vehicles', texts: true, vocab: true }).then(function () {
    kit.applyTexts(document);
    window.addEventListener('hashchange', route);
    route();
  });
})();
