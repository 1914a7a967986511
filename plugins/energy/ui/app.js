// 公共机构能耗: the energy plugin's pages on the UI kit. Every text comes
// from i18n/{lang}.json or the kit's; the API is /api/v1/p/energy/….
import * as kit from '/ui/kit/kit.js';

(function () {
  'use strict';

  var h = kit.h;
  var tr = kit.tr;

  function view() { return document.getElementById('view'); }

  function show(children) {
    var v = view();
    v.textContent = '';
    kit.append(v, children);
  }

  function failed(res) { show(h('p', { class: 'form-error' }, kit.errorText(res))); }

  var label = kit.term;

  function options(name, selected) {
    return h('select', null, kit.terms(name).map(function (code) {
      return h('option', { value: code, selected: code === selected }, label(name, code));
    }));
  }

  function num(v, digits) {
    if (v == null || v === '' || isNaN(Number(v))) return '—';
    return Number(v).toLocaleString(kit.lang(), { maximumFractionDigits: digits == null ? 2 : digits });
  }

  function column(key, render, extra) {
    var c = { key: key, label: tr('field.' + key), render: render };
    Object.keys(extra || {}).forEach(function (k) { c[k] = extra[k]; });
    return c;
  }

  function myOrg() { return kit.actingOrg() || ((kit.context() || {}).user || {}).org_id; }

  function thisMonth() {
    var d = new Date(Date.now() + 8 * 3600 * 1000);
    return d.toISOString().slice(0, 7);
  }

  function lastMonth() {
    var d = new Date(Date.now() + 8 * 3600 * 1000);
    d.setUTCDate(1);
    d.setUTCMonth(d.getUTCMonth() - 1);
    return d.toISOString().slice(0, 7);
  }

  function thisYear() { return thisMonth().slice(0, 4); }

  function statusBadge(code) {
    return h('span', { class: 'badge status-' + code, 'data-status': code }, label('status', code));
  }

  // 报表: the subtree's statements of one month, and a way to one's own.
  function statements(parts, params, live) {
    var period = params.get('period') || lastMonth();
    var status = params.get('status') || '';
    var month = kit.input('month', { value: period, id: 'list-period' });
    var statusSel = options('status', status);
    statusSel.insertBefore(h('option', { value: '', selected: !status }, tr('common.all')), statusSel.firstChild);
    var filters = h('form', { class: 'form inline' }, [
      kit.field('period', tr('field.period'), month),
      kit.field('status', tr('field.status'), statusSel),
      h('button', { type: 'submit' }, tr('common.search')),
      h('a', { class: 'button primary', id: 'my-statement', href: '#/statement/' + encodeURIComponent(myOrg()) + '/' + period }, tr('statement.mine'))
    ]);
    filters.addEventListener('submit', function (ev) {
      ev.preventDefault();
      location.hash = '#/statements' + kit.query({ period: month.value, status: statusSel.value });
    });
    return kit.api('GET', 'statements' + kit.query({ period: period, status: status, limit: 200 })).then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      show([
        h('h2', null, tr('nav.statements')), filters,
        kit.table([
          column('org', function (r) { return h('a', { href: '#/statement/' + encodeURIComponent(r.org) + '/' + r.data.period }, kit.orgLabel(r.org)); }),
          column('period', function (r) { return r.data.period; }),
          column('kgce', function (r) { return num(r.data.kgce); }, { num: true }),
          column('co2_kg', function (r) { return num(r.data.co2_kg); }, { num: true }),
          column('water_m3', function (r) { return num(r.data.water_m3); }, { num: true }),
          column('status', function (r) { return statusBadge(r.stage); })
        ], res.body.records, { empty: tr('common.empty'), id: 'statement-list' }),
        h('p', { class: 'muted' }, tr('statement.total', { n: res.body.total == null ? res.body.records.length : res.body.total })),
        h('button', { type: 'button', onclick: function () { kit.download('statements' + kit.query({ period: period, format: 'xlsx' }), 'statements.xlsx'); } }, tr('common.export'))
      ]);
    });
  }

  // 填报: one institution's month, prefilled from its meters and bills.
  function statement(parts, params, live) {
    var org = parts[1] || myOrg();
    var period = parts[2] || lastMonth();
    var base = 'statements/' + encodeURIComponent(org) + '/' + period;
    return kit.api('GET', base).then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      var b = res.body;
      var s = b.statement;
      var stage = s.stage;
      var editable = stage === 'not_filed' || stage === 'draft' || stage === 'returned';
      var lines = {};
      (s.data.lines || []).forEach(function (l) { lines[l.type] = l; });
      var prefill = {};
      (b.prefill || []).forEach(function (l) { prefill[l.type] = l; });
      var inputs = {};
      var rows = b.factors.data.types.map(function (t) {
        var l = lines[t.code] || prefill[t.code] || {};
        var q = kit.input('number', { step: 'any', min: 0, value: l.quantity == null ? '' : l.quantity, disabled: !editable, 'data-type': t.code, class: 'qty' });
        var cost = kit.input('number', { step: '0.01', min: 0, value: l.cost_fen ? (l.cost_fen / 100).toFixed(2) : '', disabled: !editable, 'data-cost': t.code });
        inputs[t.code] = { q: q, cost: cost, source: l.source || 'entered' };
        q.addEventListener('input', function () { inputs[t.code].source = 'entered'; });
        var fromMeter = prefill[t.code] && prefill[t.code].source;
        return h('tr', null, [
          h('td', { 'data-label': tr('field.type') }, kit.lang() === 'en' ? t.name_en : t.name_zh),
          h('td', { 'data-label': tr('field.quantity') }, [q, ' ', t.unit]),
          h('td', { 'data-label': tr('field.cost') }, cost),
          h('td', { 'data-label': tr('field.source') }, fromMeter ? h('span', { class: 'badge', 'data-prefill': t.code }, tr('source.' + fromMeter) + ' ' + num(prefill[t.code].quantity)) : '—')
        ]);
      });
      var form = h('form', { id: 'statement-form', class: 'form' }, [
        h('div', { class: 'table-wrap' }, h('table', null, [
          h('thead', null, h('tr', null, ['type', 'quantity', 'cost', 'source'].map(function (k) { return h('th', null, tr('field.' + k)); }))),
          h('tbody', null, rows)
        ])),
        h('span', { class: 'field-error', 'data-error-for': 'lines', role: 'alert' }),
        kit.field('note', tr('field.note'), kit.input('text', { value: s.data.note || '', disabled: !editable, maxlength: 500 }), true),
        editable ? h('div', { class: 'actions' }, [
          h('button', { type: 'submit', id: 'statement-save' }, tr('statement.save')),
          h('button', { type: 'button', class: 'primary', id: 'statement-submit', onclick: submitIt }, tr('statement.submit'))
        ]) : null
      ]);
      function body() {
        var out = [];
        Object.keys(inputs).forEach(function (code) {
          var i = inputs[code];
          if (i.q.value === '') return;
          out.push({ type: code, quantity: Number(i.q.value), cost_fen: Math.round(Number(i.cost.value || 0) * 100), source: i.source });
        });
        return { lines: out, note: form.elements.note.value };
      }
      kit.onSubmit(form, function () { return kit.api('PUT', base, body()); }, function () { statement(parts, params, live); });
      function submitIt() {
        kit.clearErrors(form);
        kit.busy(form, true);
        kit.api('PUT', base, body()).then(function (saved) {
          if (!kit.ok(saved)) { kit.busy(form, false); return kit.showError(form, saved); }
          return kit.api('POST', base + '/submit').then(function (sub) {
            kit.busy(form, false);
            if (!kit.ok(sub)) return kit.showError(form, sub);
            statement(parts, params, live);
          });
        });
      }
      var totals = h('div', { class: 'figures', id: 'statement-totals' }, [
        h('div', null, [tr('field.kgce'), h('b', { id: 'total-kgce' }, num(s.data.kgce))]),
        h('div', null, [tr('field.co2_kg'), h('b', null, num(s.data.co2_kg))]),
        h('div', null, [tr('field.water_m3'), h('b', null, num(s.data.water_m3))]),
        h('div', null, [tr('field.cost'), h('b', null, kit.fenText(s.data.cost_fen || 0))])
      ]);
      var panel = h('div', { id: 'approval' });
      var reopen = null;
      if (stage === 'locked') {
        var reason = kit.input('text', { required: true, maxlength: 500 });
        reopen = kit.onSubmit(h('form', { class: 'form inline', id: 'reopen-form' }, [
          kit.field('reason', tr('field.reason'), reason),
          h('button', { type: 'submit' }, tr('statement.reopen'))
        ]), function () { return kit.api('POST', base + '/reopen', { reason: reason.value }); },
        function () { statement(parts, params, live); });
      }
      show([
        h('h2', null, [kit.orgLabel(org), ' · ', period, ' ', statusBadge(stage)]),
        b.profile ? null : h('p', { class: 'warn', id: 'no-profile' }, [tr('statement.noProfile'), ' ', h('a', { href: '#/profile/' + encodeURIComponent(org) + '/' + period.slice(0, 4) }, tr('nav.profiles'))]),
        (b.gaps || []).length ? h('p', { class: 'warn', id: 'gaps' }, tr('statement.gaps') + ': ' + b.gaps.map(function (g) { return g.name; }).join('、')) : null,
        totals, form, reopen, panel,
        h('p', null, h('a', { href: '#/statements' + kit.query({ period: period }) }, tr('statement.back')))
      ]);
      if ((b.approvals || []).length) {
        kit.approvalPanel(panel, { approvals: b.approvals, onDone: function () { statement(parts, params, live); } });
      }
    });
  }

  // 计量表: meters with their latest values; manual ones are read on a phone.
  function meters(parts, params, live) {
    return kit.api('GET', 'meters?limit=200').then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      var f = {
        name: kit.input('text', { required: true, maxlength: 100 }),
        building: kit.input('text', { maxlength: 100 }),
        energy_type: h('select', null, ['electricity', 'water', 'natural_gas', 'heat', 'lpg', 'coal', 'gasoline', 'diesel'].map(function (c) { return h('option', { value: c }, tr('type.' + c)); })),
        sub_item: options('sub_item', 'total'),
        kind: options('meter_kind', 'manual'),
        external_id: kit.input('text', { maxlength: 64 }),
        account_no: kit.input('text', { maxlength: 64 }),
        multiplier: kit.input('number', { step: 'any', min: 0, value: 1 }),
        initial_reading: kit.input('number', { step: 'any', min: 0 })
      };
      var form = h('form', { class: 'form grid-form', id: 'meter-form' }, Object.keys(f).map(function (name) {
        return kit.field(name, tr('field.' + name), f[name]);
      }).concat([h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, tr('meter.add')))]));
      kit.onSubmit(form, function () {
        var body = {
          name: f.name.value, building: f.building.value, energy_type: f.energy_type.value,
          sub_item: f.sub_item.value, kind: f.kind.value, external_id: f.external_id.value,
          account_no: f.account_no.value, multiplier: Number(f.multiplier.value || 1)
        };
        if (f.initial_reading.value !== '') body.initial_reading = Number(f.initial_reading.value);
        return kit.api('POST', 'meters', body);
      }, function () { meters(parts, params, live); });
      var cells = {};
      var table = kit.table([
        column('name', function (r) { return r.data.kind === 'manual' ? h('a', { href: '#/read/' + encodeURIComponent(r.id), 'data-meter': r.data.name }, r.data.name) : r.data.name; }),
        column('org', function (r) { return kit.orgLabel(r.org); }),
        column('energy_type', function (r) { return tr('type.' + r.data.energy_type); }),
        column('sub_item', function (r) { return label('sub_item', r.data.sub_item); }),
        column('kind', function (r) { return label('meter_kind', r.data.kind); }),
        column('latest', function (r) {
          var cell = h('span', { 'data-latest': r.id }, r.latest ? num(r.latest.value) + ' · ' + new Date(r.latest.at).toLocaleString(kit.lang()) : '—');
          cells[r.id] = cell;
          return cell;
        })
      ], res.body.records, { empty: tr('common.empty'), id: 'meter-list' });
      show([h('h2', null, tr('nav.meters')), table, h('h3', null, tr('meter.add')), form]);
      // Online meters move as the kernel stores their readings.
      var stop = kit.live({
        onLatest: function (l) {
          var cell = cells[l.device];
          if (!live()) { stop(); return; }
          if (cell) cell.textContent = num(l.value) + ' · ' + new Date(l.at).toLocaleString(kit.lang());
        }
      });
    });
  }

  // 抄表: one manual meter read on a phone, with a photo of the dial.
  function read(parts, params, live) {
    var id = parts[1];
    return kit.api('GET', 'meters/' + encodeURIComponent(id)).then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      var m = res.body.meter;
      var value = kit.input('number', { step: 'any', min: 0, required: true, inputmode: 'decimal', id: 'reading-value' });
      var on = kit.input('date', { value: new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10) });
      var photo = kit.input('file', { accept: 'image/*', capture: 'environment' });
      var form = h('form', { class: 'form', id: 'reading-form' }, [
        kit.field('value', tr('field.value'), value),
        kit.field('on', tr('field.on'), on),
        kit.field('photo', tr('field.photo'), photo),
        h('button', { type: 'submit', class: 'primary', id: 'reading-submit' }, tr('meter.record'))
      ]);
      kit.onSubmit(form, function () {
        var file = photo.files && photo.files[0];
        var upload = file
          ? kit.api('POST', 'meters/' + encodeURIComponent(id) + '/photos' + kit.query({ name: file.name }), file)
          : Promise.resolve(null);
        return upload.then(function (up) {
          if (up && !kit.ok(up)) return up;
          return kit.api('POST', 'meters/' + encodeURIComponent(id) + '/readings', {
            value: Number(value.value), on: on.value, photo: up ? up.body.file.id : null
          });
        });
      }, function () { read(parts, params, live); });
      show([
        h('h2', null, m.data.name),
        h('div', { class: 'figures' }, [
          h('div', null, [tr('meter.last'), h('b', { id: 'last-reading' }, res.body.latest ? num(res.body.latest.value) : '—')]),
          h('div', null, [tr('field.energy_type'), h('b', null, tr('type.' + m.data.energy_type))])
        ]),
        form,
        h('h3', null, tr('meter.months')),
        kit.table([
          column('period', function (r) { return r.period; }),
          column('consumption', function (r) { return num(r.consumption); }, { num: true })
        ], res.body.months, { empty: tr('common.empty') }),
        h('p', null, h('a', { href: '#/meters' }, tr('nav.meters')))
      ]);
    });
  }

  // 名录库: the institution's profile for a year.
  function profile(parts, params, live) {
    var org = parts[1] || myOrg();
    var year = parts[2] || thisYear();
    var base = 'profiles/' + encodeURIComponent(org) + '/' + year;
    return kit.api('GET', base).then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      var p = res.body.profile;
      var f = {
        nature: options('nature', p.nature),
        building_m2: kit.input('number', { step: 'any', min: 0, value: p.building_m2 || '', required: true }),
        heating_m2: kit.input('number', { step: 'any', min: 0, value: p.heating_m2 || '' }),
        energy_users: kit.input('number', { step: 1, min: 1, value: p.energy_users || '', required: true }),
        headcount: kit.input('number', { step: 1, min: 0, value: p.headcount || '' }),
        building_type: options('building_type', p.building_type),
        climate_zone: options('climate_zone', p.climate_zone),
        key_user: kit.input('checkbox', { checked: !!p.key_user }),
        model_unit: kit.input('checkbox', { checked: !!p.model_unit })
      };
      var form = h('form', { class: 'form grid-form', id: 'profile-form' }, Object.keys(f).map(function (name) {
        return kit.field(name, tr('field.' + name), f[name]);
      }).concat([h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, tr('common.save')))]));
      kit.onSubmit(form, function () {
        return kit.api('PUT', base, {
          year: Number(year), nature: f.nature.value, building_m2: Number(f.building_m2.value),
          heating_m2: Number(f.heating_m2.value || 0), energy_users: Number(f.energy_users.value),
          headcount: Number(f.headcount.value || 0), building_type: f.building_type.value,
          climate_zone: f.climate_zone.value, key_user: f.key_user.checked, model_unit: f.model_unit.checked,
          area_source: p.area_source || ''
        });
      }, function () { profile(parts, params, live); });
      var prop = res.body.property || {};
      show([
        h('h2', null, [tr('nav.profiles'), ' · ', kit.orgLabel(org), ' · ', year]),
        res.body.stored ? null : h('p', { class: 'warn' }, tr('profile.draft')),
        prop.building_m2 ? h('p', { class: 'good' }, tr('profile.fromProperty', { m2: num(prop.building_m2), people: prop.energy_users == null ? '—' : prop.energy_users })) : null,
        form
      ]);
    });
  }

  // 目标与定额: this org's year against its target, the quota and 2020.
  function targets(parts, params, live) {
    var year = params.get('year') || thisYear();
    return Promise.all([
      kit.api('GET', 'tracking' + kit.query({ year: year })),
      kit.api('GET', 'targets' + kit.query({ year: year, limit: 200 })),
      kit.api('GET', 'quotas')
    ]).then(function (r) {
      if (!live()) return;
      for (var i = 0; i < r.length; i++) if (!kit.ok(r[i])) return failed(r[i]);
      var t = r[0].body;
      var target = t.target ? t.target.data : {};
      var keys = ['per_area', 'per_capita', 'water_per_capita', 'carbon_per_area'];
      var tracking = kit.table([
        { key: 'what', label: tr('field.indicator'), render: function (k) { return tr('indicator.' + k); } },
        { key: 'now', label: tr('field.current'), num: true, render: function (k) { return num(t.current[k]); } },
        { key: 'base', label: tr('field.baseline'), num: true, render: function (k) { return num(t.baseline[k]); } },
        { key: 'change', label: tr('field.change_pct'), num: true, render: function (k) { return t.change_pct[k] == null ? '—' : num(t.change_pct[k]) + '%'; } },
        { key: 'target', label: tr('field.target'), num: true, render: function (k) { return num(target[k]); } },
        { key: 'state', label: tr('field.state'), render: function (k) {
          if (target[k] == null || t.current[k] == null) return '—';
          return t.current[k] <= target[k] ? h('span', { class: 'good' }, tr('target.met')) : h('span', { class: 'warn' }, tr('target.over'));
        } }
      ], keys, { id: 'tracking' });
      var quota = t.quota;
      show([
        h('h2', null, [tr('nav.targets'), ' · ', year]),
        tracking,
        quota ? h('p', { class: t.current.per_area > quota.constraint ? 'warn' : 'good', id: 'quota-line' },
          tr('target.quota', { constraint: num(quota.constraint), baseline: num(quota.baseline), guide: num(quota.guide), now: num(t.current.per_area) })) : null,
        h('h3', null, tr('target.issued')),
        kit.table([
          column('org', function (x) { return kit.orgLabel(x.org); }),
          column('per_area', function (x) { return num(x.data.per_area); }, { num: true }),
          column('per_capita', function (x) { return num(x.data.per_capita); }, { num: true }),
          column('status', function (x) {
            if (x.data.status === 'issued' && x.org === myOrg()) {
              return h('button', { type: 'button', onclick: function () {
                kit.api('POST', 'targets/' + encodeURIComponent(x.id) + '/accept').then(function () { targets(parts, params, live); });
              } }, tr('target.accept'));
            }
            return tr(x.data.status === 'issued' ? 'target.issued_status' : 'target.accepted');
          })
        ], r[1].body.records, { empty: tr('common.empty') }),
        h('h3', null, tr('target.quotas')),
        kit.table([
          column('building_type', function (q) { return label('building_type', q.data.building_type); }),
          column('climate_zone', function (q) { return label('climate_zone', q.data.climate_zone); }),
          column('constraint', function (q) { return num(q.data.constraint); }, { num: true }),
          column('baseline', function (q) { return num(q.data.baseline); }, { num: true }),
          column('guide', function (q) { return num(q.data.guide); }, { num: true })
        ], r[2].body.records, { empty: tr('common.empty') })
      ]);
    });
  }

  // 预警: open alerts, each closed with a note.
  function alerts(parts, params, live) {
    return kit.api('GET', 'alerts?state=open&limit=200').then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      show([h('h2', null, tr('nav.alerts')), kit.table([
        column('org', function (a) { return kit.orgLabel(a.org); }),
        column('period', function (a) { return a.data.period; }),
        column('kind', function (a) { return label('alert_kind', a.data.kind); }),
        column('value', function (a) { return a.data.kind === 'meter_offline' ? a.data.meter : num(a.data.value) + ' / ' + num(a.data.limit); }),
        column('note', function (a) {
          var note = kit.input('text', { required: true, maxlength: 500 });
          return kit.onSubmit(h('form', { class: 'form inline' }, [note, h('button', { type: 'submit' }, tr('alert.close'))]),
            function () { return kit.api('POST', 'alerts/' + encodeURIComponent(a.id) + '/close', { note: note.value }); },
            function () { alerts(parts, params, live); });
        })
      ], res.body.records, { empty: tr('common.empty'), id: 'alert-list' })]);
    });
  }

  // 分析: structure, months against last year, ranking below, the summary form.
  function analysis(parts, params, live) {
    var year = params.get('year') || thisYear();
    var by = params.get('by') || 'area';
    return Promise.all([
      kit.api('GET', 'analysis' + kit.query({ year: year })),
      kit.api('GET', 'summary' + kit.query({ year: year, by: by }))
    ]).then(function (r) {
      if (!live()) return;
      for (var i = 0; i < r.length; i++) if (!kit.ok(r[i])) return failed(r[i]);
      var a = r[0].body;
      var s = r[1].body;
      var own = s.rows.filter(function (x) { return x.key === a.org; })[0];
      var pie = h('div', { class: 'chart', id: 'chart-structure' });
      var trend = h('div', { class: 'chart', id: 'chart-months' });
      var rank = h('div', { class: 'chart', id: 'chart-ranking' });
      var yearInput = kit.input('number', { value: year, min: 2015, max: 2100 });
      var bySel = h('select', null, ['area', 'category'].map(function (k) { return h('option', { value: k, selected: k === by }, tr('summary.' + k)); }));
      var filters = h('form', { class: 'form inline' }, [kit.field('year', tr('field.year'), yearInput), kit.field('by', tr('field.by'), bySel), h('button', { type: 'submit' }, tr('common.search'))]);
      filters.addEventListener('submit', function (ev) { ev.preventDefault(); location.hash = '#/analysis' + kit.query({ year: yearInput.value, by: bySel.value }); });
      var total = s.rows.reduce(function (acc, x) { return { kgce: acc.kgce + (x.kgce || 0) }; }, { kgce: 0 });
      show([
        h('h2', null, [tr('nav.analysis'), ' · ', kit.orgLabel(a.org), ' · ', year]),
        filters,
        h('div', { class: 'figures', id: 'analysis-figures' }, [
          h('div', null, [tr('indicator.per_area'), h('b', { id: 'own-per-area' }, own ? num(own.per_area) : '—')]),
          h('div', null, [tr('indicator.per_capita'), h('b', null, own ? num(own.per_capita) : '—')]),
          h('div', null, [tr('indicator.carbon_per_area'), h('b', null, own ? num(own.carbon_per_area) : '—')]),
          h('div', null, [tr('field.tce'), h('b', null, num(total.kgce / 1000))])
        ]),
        h('h3', null, tr('analysis.structure')), pie,
        h('h3', null, tr('analysis.months')), trend,
        h('h3', null, tr('analysis.ranking')), rank,
        h('h3', null, [tr('summary.title'), ' ', h('button', { type: 'button', id: 'summary-xlsx', onclick: function () {
          kit.download('summary' + kit.query({ year: year, by: by, format: 'xlsx' }), 'summary.xlsx');
        } }, tr('common.export'))]),
        kit.table([
          column('name', function (x) { return x.name; }),
          column('tce', function (x) { return num(x.tce, 3); }, { num: true }),
          column('co2_t', function (x) { return num(x.co2_t, 3); }, { num: true }),
          column('water_m3', function (x) { return num(x.water_m3, 0); }, { num: true }),
          column('building_m2', function (x) { return num(x.building_m2, 0); }, { num: true }),
          column('per_area', function (x) { return num(x.per_area); }, { num: true }),
          column('per_capita', function (x) { return num(x.per_capita); }, { num: true })
        ], s.rows, { empty: tr('common.empty'), id: 'summary' })
      ]);
      kit.chart(pie, {
        type: 'pie',
        categories: a.structure.map(function (x) { return kit.lang() === 'en' ? x.name_en : x.name; }),
        series: [{ name: tr('field.kgce'), data: a.structure.map(function (x) { return x.kgce; }) }],
        unit: 'kgce'
      });
      var months = ['01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12'];
      var at = function (rows, y) {
        var m = {};
        rows.forEach(function (x) { m[x.period] = x.kgce; });
        return months.map(function (mm) { return m[y + '-' + mm] == null ? null : m[y + '-' + mm]; });
      };
      kit.chart(trend, {
        type: 'line',
        categories: months,
        series: [
          { name: year, data: at(a.months, year) },
          { name: String(Number(year) - 1), data: at(a.months_before, String(Number(year) - 1)) }
        ],
        unit: 'kgce'
      });
      kit.chart(rank, {
        type: 'bar', horizontal: true,
        categories: a.ranking.map(function (x) { return x.name; }),
        series: [{ name: tr('indicator.per_area'), data: a.ranking.map(function (x) { return x.per_area; }) }],
        unit: 'kgce/m²'
      });
    });
  }

  function factors(parts, params, live) {
    return kit.api('GET', 'factors').then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      show([h('h2', null, tr('nav.factors'))].concat(res.body.records.map(function (set) {
        return h('section', null, [
          h('h3', null, set.data.name + ' · ' + tr('factor.from', { year: set.data.effective_from })),
          kit.table([
            column('type', function (t) { return kit.lang() === 'en' ? t.name_en : t.name_zh; }),
            column('unit', function (t) { return t.unit; }),
            column('kgce_per_unit', function (t) { return num(t.kgce, 4); }, { num: true }),
            column('co2_per_unit', function (t) { return num(t.co2, 4); }, { num: true }),
            column('source', function (t) { return t.source; })
          ], set.data.types)
        ]);
      })));
    });
  }

  function todos() {
    show([h('h2', null, tr('nav.todos')), h('div', { id: 'todos' })]);
    return kit.todoList(document.getElementById('todos'), {
      open: function (item) {
        var sub = item.approval.subject_id || '';
        var m = /^st-(.+)-(\d{4}-\d{2})$/.exec(sub);
        return m ? '#/statement/' + encodeURIComponent(m[1]) + '/' + m[2] : null;
      }
    });
  }

  kit.start({ plugin: 'energy', texts: true, vocab: true }).then(function () {
    kit.applyTexts(document);
    kit.router({
      statements: statements, statement: statement, meters: meters, read: read,
      profile: profile, profiles: profile, targets: targets, alerts: alerts,
      analysis: analysis, factors: factors, todos: todos
    }, 'statements').run();
  });
})();
