// 房地产管理: the property plugin's pages on the Tianshan UI kit. Every
// text comes from i18n/{lang}.json (vocabulary labels too: `{vocab}.{code}`)
// or the kit's; the API is /api/v1/p/property/…
import * as kit from '/ui/kit/kit.js';

(function () {
  'use strict';

  var h = kit.h, tr = kit.tr, ok = kit.ok;
  var VOCAB = {};          // GET vocab: {name: [{code, …}]}
  var view = function () { return document.getElementById('view'); };

  function codes(name) { return (VOCAB[name] || []).map(function (t) { return t.code; }); }
  function label(vocab, code) {
    if (code == null || code === '') return '—';
    return kit.has(vocab + '.' + code) ? tr(vocab + '.' + code) : String(code);
  }
  function m2(v) { return v == null ? '—' : Number(v).toFixed(2) + ' m²'; }
  function show(children) { var v = view(); v.textContent = ''; kit.append(v, children); }
  window.addEventListener('hashchange', function () { var n = document.getElementById('notice'); if (n) n.remove(); });
  function fail(res) { show(h('p', { class: 'warn' }, kit.errorText(res))); }
  function link(hash, text) { return h('a', { href: hash }, text); }
  // A message above the view (sandboxed pages may not open dialogs).
  function notify(message, cls) {
    var old = document.getElementById('notice');
    if (old) old.remove();
    view().parentNode.insertBefore(h('p', { id: 'notice', class: cls || 'warn', role: 'status' }, message), view());
  }

  // A form from [{name, label, control}] posting `build(elements)`; `done`
  // gets the answer.
  function form(fields, submitText, send, done) {
    var f = h('form', { class: 'inline' }, fields.map(function (x) {
      return kit.field(x.name, tr(x.label), x.control);
    }).concat([h('button', { class: 'button primary', type: 'submit' }, tr(submitText))]));
    f.addEventListener('submit', function (ev) {
      ev.preventDefault();
      kit.clearErrors(f);
      kit.busy(f, true);
      send(f.elements).then(function (res) {
        kit.busy(f, false);
        if (!ok(res)) return kit.showError(f, res);
        done(res);
      });
    });
    return f;
  }
  function text(name, props) { var i = kit.input('text', props); i.name = name; return i; }
  function num(name, props) { var i = kit.input('number', Object.assign({ step: '0.01' }, props)); i.name = name; return i; }
  function choice(name, vocab, selected) { var s = kit.select(codes(vocab), vocab, selected); s.name = name; return s; }
  function numberOf(el) { return el.value === '' ? null : Number(el.value); }

  // ---- the space tree --------------------------------------------------------

  function treeView(parts) {
    if (parts[1] === 'compound') return compoundView(parts[2]);
    if (parts[1] === 'building') return buildingView(parts[2]);
    kit.api('GET', 'compounds?limit=100').then(function (res) {
      if (!ok(res)) return fail(res);
      show([
        h('h2', null, tr('tree.compounds')),
        kit.table([
          { key: 'name', label: tr('field.name'), render: function (r) { return link('#/tree/compound/' + r.id, r.data.name); } },
          { key: 'address', label: tr('field.address'), render: function (r) { return r.data.address; } }
        ], res.body.records, { empty: true }),
        h('h3', null, tr('tree.newCompound')),
        form([{ name: 'name', label: 'field.name', control: text('name') },
              { name: 'address', label: 'field.address', control: text('address') }],
          'common.save',
          function (e) { return kit.api('POST', 'compounds', { name: e.name.value, address: e.address.value }); },
          function () { treeView([]); })
      ]);
    });
  }

  function compoundView(id) {
    kit.api('GET', 'buildings?limit=100&compound_id=' + encodeURIComponent(id)).then(function (res) {
      if (!ok(res)) return fail(res);
      show([
        h('p', null, link('#/tree', tr('common.back'))),
        h('h2', null, tr('tree.buildings')),
        kit.table([
          { key: 'name', label: tr('field.name'), render: function (r) { return link('#/tree/building/' + r.id, r.data.name); } },
          { key: 'cert', label: tr('field.cert_no'), render: function (r) { return r.data.cert_no; } },
          { key: 'measured', label: tr('field.measured_m2'), num: true, render: function (r) { return m2(r.data.measured_m2); } },
          { key: 'reg', label: tr('field.registration'), render: function (r) { return label('registration', r.data.registration); } }
        ], res.body.records, { empty: true }),
        h('h3', null, tr('tree.newBuilding')),
        form([
          { name: 'name', label: 'field.name', control: text('name') },
          { name: 'owner', label: 'field.owner', control: text('owner') },
          { name: 'cert_no', label: 'field.cert_no', control: text('cert_no') },
          { name: 'registered_m2', label: 'field.registered_m2', control: num('registered_m2') },
          { name: 'measured_m2', label: 'field.measured_m2', control: num('measured_m2') },
          { name: 'floors', label: 'field.floors', control: num('floors', { step: '1' }) },
          { name: 'structure', label: 'field.structure', control: choice('structure', 'structure') },
          { name: 'built_year', label: 'field.built_year', control: num('built_year', { step: '1' }) },
          { name: 'acquisition', label: 'field.acquisition', control: choice('acquisition', 'acquisition') },
          { name: 'usage', label: 'field.usage', control: text('usage') }
        ], 'common.save', function (e) {
          return kit.api('POST', 'buildings', {
            compound_id: id, name: e.name.value, owner: e.owner.value, cert_no: e.cert_no.value,
            registered_m2: numberOf(e.registered_m2), measured_m2: Number(e.measured_m2.value),
            floors: Number(e.floors.value), structure: e.structure.value,
            built_year: Number(e.built_year.value), acquisition: e.acquisition.value, usage: e.usage.value
          });
        }, function () { compoundView(id); })
      ]);
    });
  }

  var NEXT_STEPS = { pending: ['in_progress'], in_progress: ['registered', 'defective'], defective: ['in_progress', 'registered'], registered: [] };

  function buildingView(id) {
    kit.api('GET', 'buildings/' + encodeURIComponent(id)).then(function (res) {
      if (!ok(res)) return fail(res);
      var b = res.body.building, d = b.data;
      var steps = NEXT_STEPS[d.registration] || [];
      show([
        h('p', null, link('#/tree/compound/' + d.compound_id, tr('common.back'))),
        h('h2', null, d.name),
        h('div', { class: 'figures' }, [
          h('div', null, [h('b', null, label('registration', d.registration)), tr('field.registration')]),
          h('div', null, [h('b', null, m2(d.measured_m2)), tr('field.measured_m2')]),
          h('div', null, [h('b', null, d.cert_no || '—'), tr('field.cert_no')])
        ]),
        d.defects.length ? h('p', { class: 'warn' }, tr('registration.defects') + ': ' + d.defects.join('；')) : null,
        steps.length ? form([
          { name: 'status', label: 'field.registration', control: (function () { var s = kit.select(steps, 'registration'); s.name = 'status'; return s; })() },
          { name: 'cert_no', label: 'field.cert_no', control: text('cert_no', { value: d.cert_no }) },
          { name: 'defects', label: 'registration.defects', control: text('defects') }
        ], 'registration.change', function (e) {
          return kit.api('POST', 'buildings/' + id + '/registration', {
            status: e.status.value, cert_no: e.cert_no.value,
            defects: e.defects.value ? e.defects.value.split(/[;；]/) : []
          });
        }, function (r) {
          notify(tr('registration.rate', { rate: r.body.rate.rate }), 'good');
          buildingView(id);
        }) : null,
        importBox(id),
        h('h3', null, tr('tree.floors')),
        kit.table([
          { key: 'level', label: tr('field.level'), render: function (f) { return link('#/floor/' + f.id, f.data.name || String(f.data.level)); } },
          { key: 'plan', label: tr('field.plan'), render: function (f) { return f.data.plan_file ? '✓' : '—'; } }
        ], res.body.floors, { empty: true }),
        form([{ name: 'level', label: 'field.level', control: num('level', { step: '1' }) },
              { name: 'name', label: 'field.name', control: text('name') }],
          'tree.newFloor',
          function (e) { return kit.api('POST', 'floors', { building_id: id, level: Number(e.level.value), name: e.name.value }); },
          function () { buildingView(id); })
      ]);
    });
  }

  // A room register from Excel or CSV: every problem listed, nothing
  // imported unless there is none.
  function importBox(buildingId) {
    var box = h('div');
    var file = kit.input('file', { accept: '.xlsx,.xls,.csv' });
    file.addEventListener('change', function () {
      if (!file.files[0]) return;
      kit.api('POST', 'buildings/' + buildingId + '/rooms/import', file.files[0]).then(function (res) {
        var out = box.querySelector('.import-result');
        if (out) out.remove();
        if (ok(res)) return box.appendChild(h('p', { class: 'good import-result' }, tr('import.done', { count: res.body.imported })));
        var errors = (res.body && res.body.errors) || [];
        box.appendChild(h('div', { class: 'import-result' }, [
          h('p', { class: 'warn' }, kit.errorText(res)),
          errors.length ? kit.table([
            { key: 'row', label: '#', num: true },
            { key: 'column', label: tr('import.title') },
            { key: 'message', label: '' }
          ], errors) : null
        ]));
      });
    });
    kit.append(box, [h('h3', null, tr('import.title')), h('p', { class: 'muted' }, tr('import.hint')), file]);
    return box;
  }

  // ---- 以图管房: the floor plan ------------------------------------------------

  function roomClass(r) {
    if (r.over) return 'over';
    if (r.class !== 'office') return 'other';
    return r.vacant ? 'vacant' : 'office';
  }

  function floorView(parts) {
    var id = parts[1];
    kit.api('GET', 'floors/' + encodeURIComponent(id) + '/view').then(function (res) {
      if (!ok(res)) return fail(res);
      var floor = res.body.floor, rooms = res.body.rooms;
      var size = floor.data.plan_size;
      var editing = null;   // {room, points}
      var box = h('div', { class: 'plan', style: 'aspect-ratio:' + size[0] + '/' + size[1] });
      var svg = kit.svg('svg', { viewBox: '0 0 ' + size[0] + ' ' + size[1], role: 'img' });
      if (floor.data.plan_file) box.appendChild(kit.fileImage(floor.data.plan_file, { alt: tr('field.plan') }));
      else if (floor.data.plan_svg) {
        // Shown as an image: an SVG's scripts never run in an <img>.
        var plan = h('img', { alt: tr('field.plan') });
        kit.fetchBlob('GET', 'floors/' + id + '/plan.svg').then(function (r) {
          if (ok(r) && r.blob) plan.src = URL.createObjectURL(new Blob([r.blob], { type: 'image/svg+xml' }));
        });
        box.appendChild(plan);
      }
      box.appendChild(svg);
      var hint = h('p', { class: 'muted' }, tr('plan.hint'));
      var saveButton = h('button', { class: 'button primary', type: 'button', hidden: true, onclick: save }, tr('plan.saveOutline'));
      var clearButton = h('button', { class: 'button', type: 'button', hidden: true, onclick: function () { editing.points = []; draw(); } }, tr('plan.clear'));

      function toPlan(ev) {
        var pt = svg.createSVGPoint();
        pt.x = ev.clientX; pt.y = ev.clientY;
        var p = pt.matrixTransform(svg.getScreenCTM().inverse());
        return [Math.round(Math.max(0, Math.min(size[0], p.x))), Math.round(Math.max(0, Math.min(size[1], p.y)))];
      }
      function draw() {
        svg.textContent = '';
        rooms.forEach(function (r) {
          var pts = editing && editing.room.id === r.id ? editing.points : r.outline;
          if (!pts || pts.length < 3) return;
          var poly = kit.svg('polygon', {
            points: pts.map(function (p) { return p.join(','); }).join(' '),
            class: editing && editing.room.id === r.id ? 'editing' : roomClass(r),
            'data-room': r.id
          }, [kit.svg('title', null, r.no + ' · ' + label('room_subtype', r.subtype))]);
          poly.addEventListener('click', function (ev) {
            if (editing) return;
            ev.stopPropagation();
            location.hash = '#/room/' + r.id;
          });
          svg.appendChild(poly);
          var c = pts.reduce(function (a, p) { return [a[0] + p[0] / pts.length, a[1] + p[1] / pts.length]; }, [0, 0]);
          svg.appendChild(kit.svg('text', { x: c[0] - 20, y: c[1] }, r.no + (r.over ? ' ⚠' : '')));
        });
        if (editing) {
          editing.points.forEach(function (p, i) {
            var dot = kit.svg('circle', { cx: p[0], cy: p[1], r: 8 });
            dot.addEventListener('pointerdown', function (ev) {
              ev.stopPropagation();
              dot.setPointerCapture(ev.pointerId);
              dot.onpointermove = function (m) { editing.points[i] = toPlan(m); draw(); };
              dot.onpointerup = function () { dot.onpointermove = null; };
            });
            svg.appendChild(dot);
          });
        }
      }
      svg.addEventListener('click', function (ev) {
        if (!editing) return;
        editing.points.push(toPlan(ev));
        draw();
      });
      function save() {
        kit.api('PUT', 'rooms/' + editing.room.id + '/outline', { outline: editing.points }).then(function (r) {
          if (!ok(r)) return notify(kit.errorText(r));
          editing.room.outline = editing.points;
          editing = null;
          saveButton.hidden = clearButton.hidden = true;
          draw();
        });
      }
      var picker = kit.select(rooms.map(function (r) { return r.id; }), 'none');
      Array.prototype.forEach.call(picker.options, function (o, i) { o.textContent = rooms[i].no; });
      var editButton = h('button', { class: 'button', type: 'button', onclick: function () {
        var room = rooms.filter(function (r) { return r.id === picker.value; })[0];
        if (!room) return;
        editing = { room: room, points: (room.outline || []).slice() };
        saveButton.hidden = clearButton.hidden = false;
        draw();
      } }, tr('plan.editOutline'));
      var upload = kit.input('file', { accept: 'image/*,.svg' });
      upload.addEventListener('change', function () {
        var file = upload.files[0];
        if (!file) return;
        if (file.type === 'image/svg+xml' || /\.svg$/i.test(file.name)) {
          return kit.api('PUT', 'floors/' + id + '/plan.svg', file).then(function (p) {
            if (!ok(p)) return notify(kit.errorText(p));
            floorView(parts);
          });
        }
        kit.api('POST', '/api/v1/files', file).then(function (r) {
          if (!ok(r)) return notify(kit.errorText(r));
          return kit.api('PUT', 'floors/' + id + '/plan', { file_id: r.body.id }).then(function (p) {
            if (!ok(p)) return notify(kit.errorText(p));
            floorView(parts);
          });
        });
      });
      draw();
      show([
        h('p', null, link('#/tree/building/' + floor.data.building_id, tr('common.back'))),
        h('h2', null, tr('plan.title', { floor: floor.data.name || floor.data.level })),
        h('p', { class: 'legend' }, ['office', 'vacant', 'over', 'other'].map(function (k) {
          return h('span', { class: 'legend-' + k, style: 'background:' + { office: '#a5d6a7', vacant: '#ffe082', over: '#ef9a9a', other: '#90caf9' }[k] }, tr('plan.legend.' + k));
        })),
        box, hint,
        h('div', { class: 'inline' }, [picker, editButton, clearButton, saveButton]),
        kit.field('plan', tr('plan.upload'), upload),
        h('h3', null, tr('tree.newRoom')),
        form([
          { name: 'no', label: 'field.room_no', control: text('no') },
          { name: 'class', label: 'field.class', control: choice('class', 'room_class') },
          { name: 'subtype', label: 'field.subtype', control: choice('subtype', 'room_subtype') },
          { name: 'usable_m2', label: 'field.usable_m2', control: num('usable_m2') },
          { name: 'gross_m2', label: 'field.gross_m2', control: num('gross_m2') }
        ], 'common.save', function (e) {
          return kit.api('POST', 'rooms', {
            floor_id: id, no: e.no.value, class: e['class'].value, subtype: e.subtype.value,
            usable_m2: Number(e.usable_m2.value), gross_m2: Number(e.gross_m2.value)
          });
        }, function () { floorView(parts); })
      ]);
    });
  }

  // ---- a room and its occupants ----------------------------------------------

  function checkBox(check) {
    if (!check.applies) return h('p', { class: 'muted' }, tr('check.notOffice'));
    if (!check.over) return h('p', { class: 'good' }, tr('check.within'));
    return h('p', { class: 'warn', role: 'alert' }, tr('check.over', { excess: check.excess_m2 }));
  }

  function roomView(parts) {
    var id = parts[1];
    kit.api('GET', 'rooms/' + encodeURIComponent(id)).then(function (res) {
      if (!ok(res)) return fail(res);
      var room = res.body.room, d = room.data, check = res.body.check;
      var ranks = codes('post_rank').filter(function (c) { return c.indexOf(check.organ_level + '.') === 0; });
      var rank = kit.select(ranks, 'post_rank'); rank.name = 'rank';
      var today = new Date().toISOString().slice(0, 10);
      show([
        h('p', null, link('#/floor/' + d.floor_id, tr('common.back'))),
        h('h2', null, tr('room.title', { no: d.no })),
        h('div', { class: 'figures' }, [
          h('div', null, [h('b', null, label('room_subtype', d.subtype)), label('room_class', d['class'])]),
          h('div', null, [h('b', null, m2(d.usable_m2)), tr('field.usable_m2')]),
          h('div', null, [h('b', null, m2(d.gross_m2)), tr('field.gross_m2')]),
          h('div', null, [h('b', null, label('organ_level', check.organ_level)), tr('field.organ_level')])
        ]),
        checkBox(check),
        kit.table([
          { key: 'person', label: tr('field.person') },
          { key: 'rank', label: tr('field.rank'), render: function (p) { return label('post_rank', p.rank); } },
          { key: 'position', label: tr('field.position') },
          { key: 'standard_m2', label: tr('check.standard'), num: true, render: function (p) { return m2(p.standard_m2); } },
          { key: 'actual_m2', label: tr('check.actual'), num: true, render: function (p) { return m2(p.actual_m2); } },
          { key: 'excess_m2', label: tr('check.excess'), num: true, render: function (p) { return p.over ? h('strong', { class: 'warn' }, m2(p.excess_m2)) : m2(0); } },
          { key: 'end', label: '', render: function (p) {
            return h('button', { class: 'button', type: 'button', onclick: function () {
              kit.api('POST', 'occupancies/' + p.occupancy_id + '/end', { end_on: today }).then(function (r) {
                if (!ok(r)) return notify(kit.errorText(r));
                roomView(parts);
              });
            } }, tr('room.moveOut'));
          } }
        ], check.occupants, { empty: true }),
        h('h3', null, tr('room.assign')),
        form([
          { name: 'person', label: 'field.person', control: text('person') },
          { name: 'rank', label: 'field.rank', control: rank },
          { name: 'position', label: 'field.position', control: text('position') },
          { name: 'start_on', label: 'field.start_on', control: (function () { var i = kit.input('date', { value: today }); i.name = 'start_on'; return i; })() }
        ], 'room.assign', function (e) {
          return kit.api('POST', 'rooms/' + id + '/occupants', {
            person: e.person.value, rank: e.rank.value, position: e.position.value, start_on: e.start_on.value
          });
        }, function (r) {
          if (r.body.check.over) notify(tr('check.over', { excess: r.body.check.excess_m2 }));
          roomView(parts);
        }),
        h('h3', null, tr('room.history')),
        kit.table([
          { key: 'person', label: tr('field.person'), render: function (o) { return o.data.person; } },
          { key: 'rank', label: tr('field.rank'), render: function (o) { return label('post_rank', o.data.rank); } },
          { key: 'start', label: tr('field.start_on'), render: function (o) { return o.data.start_on; } },
          { key: 'end', label: tr('field.end_on'), render: function (o) { return o.data.end_on; } }
        ], res.body.occupancies, { empty: true })
      ]);
    });
  }

  // ---- over-standard lists ---------------------------------------------------

  function overView() {
    kit.api('GET', 'overstandard').then(function (res) {
      if (!ok(res)) return fail(res);
      show([
        h('h2', null, tr('nav.overstandard')),
        h('p', null, [
          h('button', { class: 'button', type: 'button', onclick: function () { kit.download('overstandard?format=xlsx', 'overstandard.xlsx'); } }, tr('common.exportXlsx')),
          ' ',
          h('button', { class: 'button', type: 'button', onclick: function () { kit.download('overstandard?format=csv', 'overstandard.csv'); } }, tr('common.exportCsv'))
        ]),
        h('h3', null, tr('over.units')),
        kit.table([
          { key: 'org', label: tr('field.unit'), render: function (u) { return kit.orgLabel(u.org, u.org_name); } },
          { key: 'persons', label: tr('over.persons'), num: true },
          { key: 'excess_m2', label: tr('check.excess'), num: true, render: function (u) { return m2(u.excess_m2); } }
        ], res.body.units, { empty: true }),
        h('h3', null, tr('over.people')),
        kit.table([
          { key: 'room_no', label: tr('field.room_no'), render: function (p) { return link('#/room/' + p.room_id, p.room_no); } },
          { key: 'person', label: tr('field.person') },
          { key: 'rank', label: tr('field.rank'), render: function (p) { return label('post_rank', p.rank); } },
          { key: 'standard_m2', label: tr('check.standard'), num: true, render: function (p) { return m2(p.standard_m2); } },
          { key: 'actual_m2', label: tr('check.actual'), num: true, render: function (p) { return m2(p.actual_m2); } },
          { key: 'excess_m2', label: tr('check.excess'), num: true, render: function (p) { return m2(p.excess_m2); } }
        ], res.body.persons, { empty: true })
      ]);
    });
  }

  // ---- allocation requests ---------------------------------------------------

  function allocationsView(parts) {
    if (parts[1]) return allocationView(parts[1]);
    kit.api('GET', 'allocations?limit=100').then(function (res) {
      if (!ok(res)) return fail(res);
      show([
        h('h2', null, tr('nav.allocations')),
        kit.table([
          { key: 'no', label: tr('field.no'), render: function (a) { return link('#/allocations/' + a.id, a.data.no); } },
          { key: 'kind', label: tr('field.kind'), render: function (a) { return label('allocation_kind', a.data.kind); } },
          { key: 'area', label: tr('field.area_m2'), num: true, render: function (a) { return m2(a.data.area_m2); } },
          { key: 'status', label: tr('field.status'), render: function (a) { return label('allocation_status', a.data.status); } }
        ], res.body.records, { empty: true }),
        h('h3', null, tr('allocation.new')),
        form([
          { name: 'kind', label: 'field.kind', control: choice('kind', 'allocation_kind') },
          { name: 'room_id', label: 'field.room_id', control: text('room_id') },
          { name: 'area_m2', label: 'field.area_m2', control: num('area_m2') },
          { name: 'reason', label: 'field.reason', control: text('reason') }
        ], 'common.save', function (e) {
          return kit.api('POST', 'allocations', { kind: e.kind.value, room_id: e.room_id.value || null, area_m2: Number(e.area_m2.value), reason: e.reason.value });
        }, function (r) { location.hash = '#/allocations/' + r.body.id; })
      ]);
    });
  }

  function allocationView(id) {
    kit.api('GET', 'allocations/' + encodeURIComponent(id)).then(function (res) {
      if (!ok(res)) return fail(res);
      var a = res.body.allocation, d = a.data;
      var panel = h('div');
      function act(path) {
        return function () {
          kit.api('POST', 'allocations/' + id + '/' + path).then(function (r) {
            if (!ok(r)) return notify(kit.errorText(r));
            allocationView(id);
          });
        };
      }
      show([
        h('p', null, link('#/allocations', tr('common.back'))),
        h('h2', null, d.no),
        h('div', { class: 'figures' }, [
          h('div', null, [h('b', null, label('allocation_kind', d.kind)), tr('field.kind')]),
          h('div', null, [h('b', null, label('allocation_status', d.status)), tr('field.status')]),
          h('div', null, [h('b', null, m2(d.area_m2)), tr('field.area_m2')])
        ]),
        h('p', null, d.reason),
        d.room_id ? h('p', null, link('#/room/' + d.room_id, tr('field.room_id'))) : null,
        d.status === 'draft' ? h('button', { class: 'button primary', type: 'button', onclick: act('submit') }, tr('allocation.submit')) : null,
        d.status === 'approved' ? h('button', { class: 'button primary', type: 'button', onclick: act('handover') }, tr('allocation.handover')) : null,
        panel
      ]);
      if (res.body.approvals.length) kit.approvalPanel(panel, { approvals: res.body.approvals });
    });
  }

  function todosView() {
    var box = h('div');
    show([h('h2', null, tr('nav.todos')), box]);
    kit.todoList(box, { kind: 'pending' });
  }

  // ---- reports ---------------------------------------------------------------

  function reportsView() {
    Promise.all([kit.api('GET', 'reports/summary'), kit.api('GET', 'reports/area?by=class'), kit.api('GET', 'reports/area?by=org')]).then(function (all) {
      var bad = all.filter(function (r) { return !ok(r); })[0];
      if (bad) return fail(bad);
      var s = all[0].body;
      var byClass = h('div', { style: 'height:280px' }), byOrg = h('div', { style: 'height:320px' });
      function fig(key, value) { return h('div', null, [h('b', null, value), tr('report.' + key)]); }
      show([
        h('h2', null, tr('nav.reports')),
        h('div', { class: 'figures' }, [
          fig('usable', m2(s.usable_m2)), fig('office', m2(s.office_m2)),
          fig('perPerson', m2(s.office_m2_per_person)), fig('idle', m2(s.idle_office_m2)),
          fig('idleRate', s.idle_rate + ' %'), fig('registration', s.registration_rate + ' %'),
          fig('overPersons', String(s.over_standard_persons)), fig('excess', m2(s.excess_m2))
        ]),
        h('h3', null, tr('report.byClass')), byClass,
        h('h3', null, tr('report.byOrg')), byOrg,
        h('p', null, ['class', 'org', 'building'].map(function (by) {
          return h('button', { class: 'button', type: 'button', onclick: function () { kit.download('reports/area?by=' + by + '&format=xlsx', 'area-' + by + '.xlsx'); } }, tr('report.export.' + by));
        }))
      ]);
      var rows = all[1].body.rows;
      kit.chart(byClass, { type: 'pie', categories: rows.map(function (r) { return r.label; }), series: [{ name: tr('field.usable_m2'), data: rows.map(function (r) { return r.usable_m2; }) }], unit: 'm²' });
      var orgRows = all[2].body.rows;
      kit.chart(byOrg, { type: 'bar', horizontal: true, categories: orgRows.map(function (r) { return r.label; }), series: [{ name: tr('field.usable_m2'), data: orgRows.map(function (r) { return r.usable_m2; }) }], unit: 'm²' });
    });
  }

  function standardsView() {
    kit.api('GET', 'standards').then(function (res) {
      if (!ok(res)) return fail(res);
      show([
        h('h2', null, tr('nav.standards')),
        h('p', { class: 'muted' }, tr('standards.source')),
        kit.table([
          { key: 'organ_level', label: tr('field.organ_level'), render: function (s) { return label('organ_level', s.organ_level); } },
          { key: 'rank', label: tr('field.rank'), render: function (s) { return label('post_rank', s.rank); } },
          { key: 'm2', label: tr('check.standard'), num: true, render: function (s) {
            var i = kit.input('number', { value: s.m2, step: '0.5', style: 'width:6em' });
            i.addEventListener('change', function () {
              kit.api('PUT', 'standards/' + s.rank, { m2: Number(i.value) }).then(function (r) {
                if (!ok(r)) { notify(kit.errorText(r)); i.value = s.m2; }
              });
            });
            return i;
          } }
        ], res.body.standards)
      ]);
    });
  }

  // The portal's menu and language switch are the page's own.
  kit.start({ plugin: 'property', texts: true }).then(function () {
    kit.applyTexts(document);
    return kit.api('GET', 'vocab');
  }).then(function (res) {
    if (ok(res)) VOCAB = res.body;
    kit.router({
      tree: treeView, floor: floorView, room: roomView, overstandard: overView,
      allocations: allocationsView, todos: todosView, reports: reportsView, standards: standardsView
    }, 'tree').run();
  });
})();
