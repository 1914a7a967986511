// 资产管理: the assets plugin's pages on the Tianshan UI kit (/ui/kit/kit.js:
// element builder, the bridge-backed API client, texts, tables, paging,
// form fields, hash routing, charts, code reading). Every text comes
// from i18n/{lang}.json or the kit's; the API is /api/v1/p/assets/…
import * as kit from '/ui/kit/kit.js';

(function () {
  'use strict';

  var FILTER_KEY = 'assets.cardFilter';
  var API = '/api/v1/p/assets/';
  var XLSX_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

  var STATES = ['draft', 'pending', 'booked', 'incoming', 'transferred', 'disposed'];
  var USE_STATUSES = ['in_use', 'idle', 'rented', 'lent', 'in_warehouse', 'repairing', 'awaiting_disposal'];
  var ACQUISITION = ['purchase', 'transfer_in', 'donation', 'swap', 'self_built', 'surplus', 'other'];
  var VALUE_TYPES = ['cost', 'provisional', 'replacement', 'appraised', 'nominal'];
  var KINDS = ['plan', 'registration', 'change', 'transfer', 'lease', 'repair', 'disposal'];
  var DOC_STATUSES = ['draft', 'in_approval', 'approved', 'completed', 'rejected', 'withdrawn', 'void'];
  var METHODS = ['transfer', 'sale', 'swap', 'scrap', 'write_off', 'donation'];
  var CHANGEABLE = ['name', 'spec', 'brand', 'department', 'custodian', 'location', 'use_status',
    'original_value', 'life_months', 'voucher_no', 'warranty_until'];
  var MONEY_KEYS = /(^|_)(value|original_value|net_value|idle_value|accumulated|charge|income|amount|unit_price|total_value|funding_fiscal|funding_other)$/;

  var state = {
    lang: 'zh-CN',     // kit.lang(), kept here for the many places that read it
    me: null,          // kit.context(): the caller, from the portal
    categories: null,  // [{code, parent, name, …}] once loaded
    seq: 0,            // bumped per route; stale answers are dropped
    cursors: [null],   // the card list's pages: cursor per page
    stream: null,      // the scanner's camera stream
    flashNext: null
  };

  // ---- the kit's building blocks, under the names this file uses ------------

  var $ = function (id) { return document.getElementById(id); };
  var h = kit.h;
  var setProps = kit.setProps;
  var append = kit.append;
  var format = kit.format;
  var tr = kit.tr;
  var ok = kit.ok;
  var errorText = kit.errorText;
  var localized = kit.localized;
  var query = kit.query;
  var parseHash = kit.parseHash;
  var pager = kit.pager;
  var field = kit.field;
  var input = kit.input;
  var select = kit.select;
  var clearErrors = kit.clearErrors;
  var setFieldError = kit.setFieldError;
  var formError = kit.formError;
  var busy = kit.busy;

  // Storage is unavailable to a sandboxed page: choices last for the page.
  function storage(area, key, value) {
    try {
      if (value === undefined) return window[area].getItem(key);
      if (value === null) window[area].removeItem(key);
      else window[area].setItem(key, value);
    } catch (e) { /* storage disabled */ }
    return null;
  }

  // A vocabulary value's label, or the value itself when there is none.
  function label(prefix, value) {
    if (value == null || value === '') return '—';
    var t = kit.text(prefix + '.' + value);
    return t != null ? t : String(value);
  }

  // path: relative to the plugin's API, or absolute (/api/v1/…).
  // body: an object (sent as JSON) or a Blob/File (sent as is).
  // org: act in this org for this call only (else the portal's).
  function api(method, path, body, org) {
    return kit.api(method, path, body, org ? { org: org } : undefined);
  }

  function table(columns, rows, props) {
    var o = { money: money };
    Object.keys(props || {}).forEach(function (k) { o[k] = props[k]; });
    return kit.table(columns, rows, o);
  }

  // Downloads a file the API answers (exports, templates); a refusal shows
  // as a message instead of a broken file.
  function download(path, fallbackName) {
    return kit.download(path, fallbackName).then(function (res) {
      if (!ok(res)) flash(errorText(res), true);
    });
  }

  function exportButtons(pathFn, name) {
    return h('span', { class: 'exports' }, [
      h('button', { type: 'button', class: 'button', 'data-export': 'xlsx', onclick: function () {
        download(withParam(pathFn(), 'format', 'xlsx'), name + '.xlsx');
      } }, tr('common.exportXlsx')),
      h('button', { type: 'button', class: 'button', 'data-export': 'csv', onclick: function () {
        download(withParam(pathFn(), 'format', 'csv'), name + '.csv');
      } }, tr('common.exportCsv'))
    ]);
  }

  // Fen (integer hundredths of a yuan) as ¥1,234.56.
  function money(fen) {
    if (fen == null || fen === '' || isNaN(Number(fen))) return '—';
    var n = Math.round(Number(fen));
    var sign = n < 0 ? '-' : '';
    n = Math.abs(n);
    var whole = String(Math.floor(n / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    var cents = String(n % 100);
    return sign + '¥' + whole + '.' + (cents.length < 2 ? '0' + cents : cents);
  }

  // "1,234.5" → 123450; null when it is not an amount with ≤ 2 decimals.
  function yuanToFen(text) {
    var t = String(text == null ? '' : text).replace(/[,，¥￥\s]/g, '');
    var m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(t);
    if (!m) return null;
    return Number(m[1]) * 100 + Number(((m[2] || '') + '00').slice(0, 2));
  }

  function percent(rate) {
    if (rate == null || isNaN(Number(rate))) return '—';
    var r = Number(rate);
    if (r <= 1) r *= 100;
    return r.toFixed(1) + '%';
  }

  function thisMonth() {
    var d = new Date();
    return d.getFullYear() + '-' + ('0' + (d.getMonth() + 1)).slice(-2);
  }

  // The month `n` months before this one, as YYYY-MM.
  function monthsBack(n) {
    var d = new Date();
    d.setDate(1);
    d.setMonth(d.getMonth() - n);
    return d.getFullYear() + '-' + ('0' + (d.getMonth() + 1)).slice(-2);
  }

  function lastMonth() {
    return monthsBack(1);
  }

  function withParam(path, key, value) {
    return path + (path.indexOf('?') >= 0 ? '&' : '?') + encodeURIComponent(key) + '=' + encodeURIComponent(value);
  }

  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  // Org names: the caller's bindings and unit, and the org tree when the
  // caller may read it (administrators); any other org is named through
  // the kernel's directory when shown (orgNode).
  function loadOrgs() {
    var names = {};
    var me = kit.context() || {};
    (me.bindings || []).forEach(function (b) { if (b.org_name) names[b.org_id] = b.org_name; });
    if (me.unit && me.unit.id) names[me.unit.id] = me.unit.name;
    return api('GET', '/api/v1/orgs').then(function (res) {
      // Acting where only a plugin role is held (a keeper at the
      // prefecture), the tree is read where the caller is staff.
      if (res.status !== 403) return res;
      var reader = (me.bindings || []).filter(function (b) {
        return ['member', 'auditor', 'org-admin'].indexOf(b.role) >= 0;
      })[0];
      return reader ? api('GET', '/api/v1/orgs', undefined, reader.org_id) : res;
    }).then(function (res) {
      var parents = {};
      var levels = {};
      var walk = function (nodes, parent) {
        (nodes || []).forEach(function (o) {
          names[o.id] = o.name;
          parents[o.id] = parent;
          levels[o.id] = o.level;
          walk(o.children, o.id);
        });
      };
      if (ok(res) && res.body) walk(res.body.orgs, null);
      state.orgNames = names;
      state.orgParents = parents;
      state.orgLevels = levels;
    });
  }

  // Numbers repeat across units (every unit has its ZC2026000001): the
  // unit goes with a number wherever one is the title.
  function unitTag(org, id) {
    return org ? h('small', { class: 'unit-tag', id: id }, orgNode(org)) : null;
  }

  // An org's name as an element: known names at once; an org the tree
  // did not include (another district's unit, a warehouse's owner) is
  // asked for by its id and filled in when the answer comes, so people
  // see a unit's name, not `org-11650500MB0000001T`.
  function orgNode(id) {
    var known = state.orgNames && localized(state.orgNames[id]);
    if (known || !id) return known || '—';
    // The kernel's directory names any active org to anyone signed in;
    // GET /orgs/{id} would refuse one outside the caller's reach.
    var node = kit.orgLabel(id);
    kit.directoryOrg(id).then(function (o) {
      if (o && o.name) {
        state.orgNames = state.orgNames || {};
        state.orgNames[id] = o.name;
      }
    });
    return node;
  }

  function orgName(id) {
    var n = state.orgNames && localized(state.orgNames[id]);
    return n || id || '—';
  }

  function loadCategories() {
    if (state.categories) return Promise.resolve(state.categories);
    return api('GET', 'categories').then(function (res) {
      if (ok(res) && res.body) state.categories = res.body.categories || [];
      return state.categories || [];
    });
  }

  function categoryName(code) {
    var list = state.categories || [];
    for (var i = 0; i < list.length; i++) {
      if (list[i].code === code) return (state.lang === 'en' ? list[i].name_en : list[i].name_zh) || list[i].name;
    }
    return '';
  }

  function categoryLevel(c) {
    var depth = 0;
    var p = c.parent;
    var guard = 0;
    while (p && guard++ < 8) {
      depth++;
      var parent = null;
      for (var i = 0; i < state.categories.length; i++) {
        if (state.categories[i].code === p) { parent = state.categories[i]; break; }
      }
      p = parent && parent.parent;
    }
    return depth;
  }

  function categoryOptions(selected, withAll, topOnly) {
    var options = [];
    if (withAll) options.push(h('option', { value: '' }, tr('common.all')));
    else options.push(h('option', { value: '' }, '—'));
    (state.categories || []).forEach(function (c) {
      var depth = categoryLevel(c);
      if (topOnly && depth > 1) return;
      var name = state.lang === 'en' ? c.name_en : c.name_zh;
      options.push(h('option', { value: c.code, selected: c.code === selected },
        '\u00a0\u00a0'.repeat(depth) + c.code + ' ' + (name || c.name)));
    });
    return options;
  }

  // ---- page furniture -------------------------------------------------------

  function flash(text, isError) {
    var box = $('flash');
    box.textContent = text || '';
    box.hidden = !text;
    box.classList.toggle('error', !!isError);
    box.setAttribute('role', isError ? 'alert' : 'status');
    if (text) box.scrollIntoView({ block: 'nearest' });
  }

  function setView(children) {
    var view = $('view');
    view.textContent = '';
    append(view, children);
  }

  function loadingView() {
    setView(h('p', { class: 'muted' }, tr('loading')));
  }

  function errorBox(res) {
    return h('p', { class: 'error', role: 'alert' }, errorText(res));
  }

  function section(titleText, children, props) {
    var p = props || {};
    p.class = 'panel' + (p.class ? ' ' + p.class : '');
    return h('section', p, [titleText ? h('h2', null, titleText) : null].concat(children));
  }

  function dl(pairs) {
    var list = h('dl', { class: 'fields' });
    pairs.forEach(function (p) {
      if (!p) return;
      list.appendChild(h('dt', null, p[0]));
      list.appendChild(h('dd', p[2] || null, p[1] == null || p[1] === '' ? '—' : p[1]));
    });
    return list;
  }

  function badge(kind, value, text) {
    return h('span', { class: 'badge badge-' + kind + '-' + value, 'data-value': value }, text);
  }

  // ---- forms ----------------------------------------------------------------

  // Shows a structured error next to the field it names (the API may name
  // `original_value` for what the form asks in yuan), else above the buttons.
  function showError(form, res) {
    var took = kit.showError(form, res, function (f) {
      var candidates = [f, f + '_yuan', f.replace(/^changes\./, ''), f.replace(/_yuan$/, '')];
      if (f.indexOf('changes.') === 0) candidates.unshift('value');
      return candidates;
    });
    if (!took && !form.querySelector('.form-error')) flash(errorText(res), true);
  }

  // ---- routing --------------------------------------------------------------

  function route() {
    var seq = ++state.seq;
    stopCamera();
    var r = parseHash();
    var name = r.parts[0] || 'cards';
    // The portal's address, breadcrumb and menu (the one menu: the page
    // has none of its own) follow the route.
    kit.reportRoute(kit.has('nav.' + name) ? tr('nav.' + name) : '');
    if (state.flashNext) {
      flash(state.flashNext.text, state.flashNext.error);
      state.flashNext = null;
    } else {
      flash(null);
    }
    var live = function () { return seq === state.seq; };
    var views = {
      cards: r.parts[1] ? function () { cardView(r.parts[1], live); } : function () { cardsView(r.params, live); },
      documents: r.parts[1] ? function () { documentView(r.parts[1], live); } : function () { documentsView(r.params, live); },
      todos: function () { todosView(live); },
      reports: function () { reportsView(live); },
      'import': function () { importView(live); },
      labels: function () { labelsView(live); },
      scan: function () { scanView(r.params, live); },
      stocktakes: function () {
        if (r.parts[1] && r.parts[2] === 'tasks' && r.parts[3]) taskView(r.parts[1], r.parts[3], live);
        else if (r.parts[1]) stocktakeView(r.parts[1], live);
        else stocktakesView(r.params, live);
      },
      warehouse: function () { warehouseRoute(r, live); }
    };
    (views[name] || views.cards)();
  }

  function navigateWithFlash(hash, text) {
    state.flashNext = { text: text, error: false };
    go(hash);
  }

  // ---- #/cards --------------------------------------------------------------

  var CARD_FILTERS = ['q', 'category', 'state', 'use_status', 'location'];

  function cardsView(params, live) {
    var filter = {};
    CARD_FILTERS.forEach(function (k) { filter[k] = params.get(k) || ''; });
    storage('sessionStorage', FILTER_KEY, JSON.stringify(filter));
    var page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);
    if (page > state.cursors.length) page = 1;

    var q = input('search', { value: filter.q, placeholder: tr('cards.q'), id: 'cards-q', name: 'q' });
    var category = h('select', { id: 'cards-category', name: 'category' });
    var stateSel = select(STATES, 'state', filter.state, true);
    stateSel.id = 'cards-state';
    stateSel.name = 'state';
    var useSel = select(USE_STATUSES, 'use', filter.use_status, true);
    useSel.id = 'cards-use';
    useSel.name = 'use_status';
    var location_ = input('text', { value: filter.location, id: 'cards-location', name: 'location' });

    function filterHash(extra) {
      var f = {
        q: q.value.trim(), category: category.value, state: stateSel.value,
        use_status: useSel.value, location: location_.value.trim()
      };
      Object.keys(extra || {}).forEach(function (k) { f[k] = extra[k]; });
      return '#/cards' + query(f);
    }

    var form = h('form', { class: 'filters', id: 'cards-filter', onsubmit: function (ev) {
      ev.preventDefault();
      state.cursors = [null];
      go(filterHash());
    } }, [
      field('q', tr('common.search'), q),
      field('category', tr('field.category'), category),
      field('state', tr('field.state'), stateSel),
      field('use_status', tr('field.use_status'), useSel),
      field('location', tr('field.location'), location_),
      h('div', { class: 'actions' }, [
        h('button', { type: 'submit', class: 'button primary', id: 'cards-search' }, tr('common.search')),
        h('button', { type: 'button', class: 'button', onclick: function () {
          state.cursors = [null];
          go('#/cards');
        } }, tr('common.reset'))
      ])
    ]);

    var listPath = function () {
      var f = {};
      CARD_FILTERS.forEach(function (k) { f[k] = filter[k]; });
      return 'cards' + query(f);
    };
    var results = h('div', { id: 'cards-results' }, h('p', { class: 'muted' }, tr('loading')));
    var newForm = h('div', { id: 'new-card-panel', hidden: true });
    // Batch transfer and disposal: booked, free cards picked across pages.
    var selected = state.selected = state.selected || {};
    var batchCount = h('span', { id: 'batch-count', class: 'muted' });
    var batchPanel = h('div', { id: 'batch-panel', hidden: true });
    var batchButtons = ['transfer', 'disposal'].map(function (kind) {
      return h('button', { type: 'button', class: 'button', id: 'batch-' + kind, onclick: function () {
        var ids = Object.keys(selected);
        if (!ids.length) return flash(tr('err.chooseCards'), true);
        var first = selected[ids[0]];
        batchPanel.hidden = false;
        batchPanel.textContent = '';
        batchPanel.appendChild(h('h2', null, tr('batch.title', { kind: label('kind', kind), count: ids.length })));
        batchPanel.appendChild(documentForm(kind, { id: ids[0], org: first.org, data: first.c }, ids.slice(1)));
      } }, tr('batch.' + kind));
    });
    function updateBatch() {
      var n = Object.keys(selected).length;
      batchCount.textContent = tr('batch.selected', { count: n });
      batchButtons.forEach(function (b) { b.disabled = n === 0; });
    }
    updateBatch();

    setView([
      h('div', { class: 'head' }, [
        h('h1', null, tr('cards.title')),
        h('div', { class: 'tools' }, [
          h('button', { type: 'button', class: 'button primary', id: 'new-card', onclick: function () {
            newForm.hidden = !newForm.hidden;
            if (!newForm.hidden) {
              newForm.textContent = '';
              newForm.appendChild(newCardForm());
              newForm.querySelector('input').focus();
            }
          } }, tr('cards.new')),
          exportButtons(listPath, 'cards'),
          h('a', { class: 'button', href: '#/labels' }, tr('cards.toLabels'))
        ])
      ]),
      newForm,
      form,
      h('div', { class: 'actions batch-bar', id: 'batch-bar' }, [batchCount].concat(batchButtons, [
        h('button', { type: 'button', class: 'button', id: 'batch-clear', onclick: function () {
          Object.keys(selected).forEach(function (k) { delete selected[k]; });
          results.querySelectorAll('input.pick').forEach(function (b) { b.checked = false; });
          batchPanel.hidden = true;
          updateBatch();
        } }, tr('batch.clear'))
      ])),
      batchPanel,
      results
    ]);

    loadCategories().then(function () {
      if (!live()) return;
      append(category, categoryOptions(filter.category, true, true));
    });

    var cursor = state.cursors[page - 1];
    api('GET', withParam(listPath(), 'limit', '20') + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''))
      .then(function (res) {
        return loadCategories().then(function () { return res; });
      })
      .then(function (res) {
        if (!live()) return;
        results.textContent = '';
        if (!ok(res)) return results.appendChild(errorBox(res));
        var b = res.body || {};
        var rows = (b.records || []).map(function (doc) {
          var c = doc.data || {};
          return {
            __props: { 'data-card': doc.id, 'data-asset-no': c.asset_no },
            id: doc.id, org: doc.org, c: c
          };
        });
        state.cursors = state.cursors.slice(0, page);
        if (b.next_cursor) state.cursors[page] = b.next_cursor;
        results.appendChild(rows.length ? table([
          { label: tr('batch.pick'), render: function (r) {
            // Only what a document may take: booked and not held by another.
            if (r.c.state !== 'booked' || r.c.locked_by) return '';
            return input('checkbox', { class: 'pick', value: r.id, checked: !!selected[r.id],
              'aria-label': r.c.asset_no, onchange: function (ev) {
                if (ev.target.checked) selected[r.id] = { org: r.org, c: r.c };
                else delete selected[r.id];
                updateBatch();
              } });
          } },
          { label: tr('field.asset_no'), render: function (r) {
            return h('a', { href: '#/cards/' + encodeURIComponent(r.id) }, r.c.asset_no || r.id);
          } },
          { label: tr('field.name'), render: function (r) { return r.c.name; } },
          { label: tr('field.category'), render: function (r) {
            return (r.c.category || '') + ' ' + categoryName(r.c.category);
          } },
          { label: tr('field.org'), render: function (r) { return orgNode(r.org); } },
          { label: tr('field.location'), render: function (r) { return r.c.location; } },
          { label: tr('field.original_value'), money: true, render: function (r) { return money(r.c.original_value); } },
          { label: tr('field.net_value'), money: true, render: function (r) { return money(r.c.net_value); } },
          { label: tr('field.use_status'), render: function (r) { return label('use', r.c.use_status); } },
          { label: tr('field.state'), render: function (r) {
            return badge('state', r.c.state, label('state', r.c.state));
          } }
        ], rows, { id: 'cards-table' }) : h('p', { class: 'muted empty' }, tr('common.empty')));
        results.appendChild(pager(b.total, page, !!b.next_cursor,
          function () { go(filterHash({ page: page - 1 })); },
          function () { go(filterHash({ page: page + 1 })); }));
      });
  }

  function newCardForm() {
    var category = h('select', { name: 'category', required: true });
    append(category, categoryOptions('', false, false));
    loadCategories().then(function () {
      if (category.options.length <= 1) {
        category.textContent = '';
        append(category, categoryOptions('', false, false));
      }
    });
    var acq = select(ACQUISITION, 'acq', 'purchase');
    var vt = select(VALUE_TYPES, 'vt', 'cost');
    var use = select(['in_use', 'idle'], 'use', 'in_use');
    var form = h('form', { id: 'card-form', class: 'grid-form', novalidate: true, onsubmit: onSubmit }, [
      h('h2', { class: 'wide' }, tr('cards.newTitle')),
      field('name', tr('field.name') + ' *', input('text', { maxlength: '100', required: true })),
      field('category', tr('field.category') + ' *', category),
      field('acquired_on', tr('field.acquired_on') + ' *', input('date', { required: true })),
      field('original_value_yuan', tr('field.original_value_yuan') + ' *', input('text', { inputmode: 'decimal', required: true, placeholder: '0.00' })),
      field('quantity', tr('field.quantity'), input('number', { min: '1', step: '1', value: '1' })),
      field('spec', tr('field.spec'), input('text')),
      field('brand', tr('field.brand'), input('text')),
      field('acquisition_method', tr('field.acquisition_method'), acq),
      field('value_type', tr('field.value_type'), vt),
      field('department', tr('field.department'), input('text')),
      field('custodian', tr('field.custodian'), input('text')),
      field('location', tr('field.location'), input('text')),
      field('use_status', tr('field.use_status'), use),
      field('supplier', tr('field.supplier'), input('text')),
      field('invoice_no', tr('field.invoice_no'), input('text')),
      field('warranty_until', tr('field.warranty_until'), input('date')),
      formError(),
      h('div', { class: 'actions wide' }, [
        h('button', { type: 'submit', class: 'button primary', id: 'card-submit' }, tr('cards.create')),
        h('button', { type: 'button', class: 'button', onclick: function () {
          $('new-card-panel').hidden = true;
        } }, tr('common.cancel'))
      ])
    ]);

    function onSubmit(ev) {
      ev.preventDefault();
      clearErrors(form);
      var v = function (n) { return form.elements[n].value.trim(); };
      var missing = false;
      ['name', 'category', 'acquired_on', 'original_value_yuan'].forEach(function (n) {
        if (!v(n)) {
          if (!missing) setFieldError(form, n, tr('err.required'));
          else form.querySelector('[data-error-for="' + n + '"]').textContent = tr('err.required');
          missing = true;
        }
      });
      if (missing) return;
      if (yuanToFen(v('original_value_yuan')) == null) {
        setFieldError(form, 'original_value_yuan', tr('err.yuan'));
        return;
      }
      var body = {};
      ['name', 'category', 'acquired_on', 'original_value_yuan', 'spec', 'brand', 'acquisition_method',
        'value_type', 'department', 'custodian', 'location', 'use_status', 'supplier', 'invoice_no',
        'warranty_until'].forEach(function (n) { if (v(n)) body[n] = v(n); });
      var qty = parseInt(v('quantity'), 10);
      if (qty) body.quantity = qty;
      busy(form, true);
      api('POST', 'cards', body).then(function (res) {
        busy(form, false);
        if (!ok(res)) return showError(form, res);
        navigateWithFlash('#/cards/' + encodeURIComponent(res.body.id),
          tr('cards.created', { no: res.body.data.asset_no }));
      });
    }
    return form;
  }

  // ---- #/cards/{id} ---------------------------------------------------------

  function cardView(id, live) {
    loadingView();
    Promise.all([api('GET', 'cards/' + encodeURIComponent(id)), loadCategories()]).then(function (all) {
      if (!live()) return;
      var res = all[0];
      if (!ok(res)) return setView([h('p', null, h('a', { href: '#/cards' }, tr('common.back'))), errorBox(res)]);
      renderCard(res.body, live);
    });
  }

  function renderCard(d, live) {
    var doc = d.card;
    var c = doc.data;
    var cat = d.category || {};
    var catName = (state.lang === 'en' ? cat.name_en : cat.name_zh) || categoryName(c.category);
    var ext = c.ext || {};
    var extPairs = Object.keys(ext).map(function (k) { return [k, String(ext[k])]; });

    var actions = h('div', { id: 'card-actions', class: 'actions' });
    var actionForm = h('div', { id: 'card-action-form' });

    if (c.locked_by) {
      var lockedHref = /^(rk|ck)\d/.test(c.locked_by) ? '#/warehouse/orders/'
        : /^gwc\d/.test(c.locked_by) ? '#/warehouse/items/' : '#/documents/';
      // The document's number sits where the sentence names it.
      var lockLink = h('a', { href: lockedHref + encodeURIComponent(c.locked_by) }, c.locked_by.split('.')[0].toUpperCase());
      actions.appendChild(h('p', { class: 'notice', id: 'card-locked' },
        kit.trParts(lockedHref === '#/warehouse/items/' ? 'card.inWarehouse' : 'card.lockedBy', { doc: lockLink })));
    } else if (c.state === 'draft') {
      actions.appendChild(h('p', { class: 'muted wide' }, tr('card.draftHint')));
      actions.appendChild(h('button', { type: 'button', class: 'button primary', id: 'register', onclick: function (ev) {
        ev.target.disabled = true;
        api('POST', 'documents', { kind: 'registration', card_ids: [doc.id], submit: true }).then(function (res) {
          ev.target.disabled = false;
          if (!ok(res)) return flash(errorText(res), true);
          state.flashNext = { text: tr('card.registered', { no: res.body.data.no }) };
          route();
        });
      } }, tr('card.register')));
      actions.appendChild(h('button', { type: 'button', class: 'button danger', id: 'delete-card', onclick: function () {
        kit.confirm(tr('common.confirm')).then(function (yes) {
          if (!yes) return;
          api('DELETE', 'cards/' + encodeURIComponent(doc.id)).then(function (res) {
            if (!ok(res)) return flash(errorText(res), true);
            navigateWithFlash('#/cards', tr('card.deleted'));
          });
        });
      } }, tr('card.delete')));
    } else if (c.state === 'booked') {
      ['change', 'transfer', 'lease', 'repair', 'disposal'].forEach(function (kind) {
        actions.appendChild(h('button', { type: 'button', class: 'button', 'data-kind': kind, onclick: function () {
          actionForm.textContent = '';
          actionForm.appendChild(documentForm(kind, doc));
          var first = actionForm.querySelector('input, select, textarea');
          if (first) first.focus();
        } }, tr('kind.' + kind)));
      });
      // An idle booked card may be offered to the public warehouse.
      if (c.use_status === 'idle') {
        actions.appendChild(h('button', { type: 'button', class: 'button', id: 'offer-warehouse', onclick: function () {
          actionForm.textContent = '';
          actionForm.appendChild(intakeForm(doc));
          actionForm.querySelector('select').focus();
        } }, tr('wh.offer')));
      }
    } else if (c.state === 'incoming') {
      actions.appendChild(h('button', { type: 'button', class: 'button primary', id: 'receive-card', onclick: function () {
        api('POST', 'receipts', { card_ids: [doc.id] }).then(function (res) {
          if (!ok(res)) return flash(errorText(res), true);
          state.flashNext = { text: tr('docs.received', { count: res.body.received }) };
          route();
        });
      } }, tr('card.receive')));
    }

    var photoInput = input('file', { accept: 'image/*', capture: 'environment', id: 'photo-file' });
    var photos = h('div', { class: 'photos' }, (c.photos || []).length ? c.photos.map(function (fid) {
      var img = kit.fileImage(fid, { alt: fid, loading: 'lazy' });
      img.addEventListener('error', function () { img.replaceWith(h('span', { class: 'muted' }, fid)); });
      return img;
    }) : h('span', { class: 'muted' }, tr('card.noPhotos')));

    var activity = (d.activity || []).map(function (a) {
      var x = a.data || {};
      return { on: x.on, action: x.action, actor: who(x), document: x.document_id };
    });

    setView([
      h('p', null, h('a', { href: '#/cards' }, '← ' + tr('nav.cards'))),
      h('div', { class: 'head' }, [
        h('h1', { id: 'card-title' }, [c.name, ' ', h('small', { id: 'card-no' }, c.asset_no), unitTag(doc.org, 'card-unit')]),
        h('div', { class: 'tools' }, [
          badge('state', c.state, label('state', c.state)),
          badge('use', c.use_status, label('use', c.use_status))
        ])
      ]),
      section(tr('card.actions'), [actions, actionForm], { id: 'card-actions-panel' }),
      h('div', { class: 'columns' }, [
        section(tr('card.basic'), dl([
          [tr('field.asset_no'), c.asset_no],
          [tr('field.name'), c.name],
          [tr('field.category'), c.category + ' ' + catName],
          [tr('field.spec'), c.spec],
          [tr('field.brand'), c.brand],
          [tr('field.quantity'), c.quantity + ' ' + (c.measure_unit || '')],
          [tr('field.org'), orgNode(doc.org)],
          [tr('field.department'), c.department],
          [tr('field.custodian'), c.custodian],
          [tr('field.location'), c.location],
          [tr('field.acquisition_method'), label('acq', c.acquisition_method)],
          c.transferred_from_org ? [tr('field.transferred_from_org'), orgNode(c.transferred_from_org), { id: 'card-from-org' }] : null,
          [tr('field.acquired_on'), c.acquired_on],
          [tr('field.booked_on'), c.booked_on],
          [tr('field.supplier'), c.supplier],
          [tr('field.invoice_no'), c.invoice_no],
          [tr('field.warranty_until'), c.warranty_until],
          [tr('field.state'), label('state', c.state), { id: 'card-state' }],
          [tr('field.use_status'), label('use', c.use_status)],
          c.lease ? [tr('field.lease'), (c.lease.counterparty || '') + ' ' + (c.lease.from || '') + ' – ' + (c.lease.until || '')] : null,
          c.disposal_method ? [tr('field.disposal_method'), label('method', c.disposal_method)] : null,
          c.reduced_on ? [tr('field.reduced_on'), c.reduced_on] : null
        ].concat(extPairs))),
        section(tr('card.value'), dl([
          [tr('field.value_type'), label('vt', c.value_type)],
          [tr('field.original_value'), money(c.original_value), { id: 'card-original-value' }],
          [tr('field.funding_fiscal'), money(c.funding_fiscal)],
          [tr('field.funding_other'), money(c.funding_other)],
          [tr('field.accumulated_depreciation'), money(c.accumulated_depreciation)],
          [tr('field.net_value'), money(c.net_value)],
          [tr('field.net_value_now'), money(d.net_value_now)],
          [tr('field.life_months'), c.life_months],
          [tr('field.depreciated_through'), c.depreciated_through]
        ]))
      ]),
      section(tr('field.photos'), [photos, h('form', { class: 'inline-form', id: 'photo-form', onsubmit: function (ev) {
        ev.preventDefault();
        var file = photoInput.files && photoInput.files[0];
        if (!file) return flash(tr('err.chooseFile'), true);
        api('POST', 'cards/' + encodeURIComponent(doc.id) + '/files' + query({ name: file.name, kind: 'photo' }), file)
          .then(function (res) {
            if (!ok(res)) return flash(errorText(res), true);
            state.flashNext = { text: tr('card.photoUploaded') };
            route();
          });
      } }, [photoInput, h('button', { type: 'submit', class: 'button' }, tr('card.photo'))])]),
      section(tr('card.activity'), activity.length ? table([
        { label: tr('act.on'), key: 'on' },
        { label: tr('act.action'), render: function (r) { return actionLabel(r.action); } },
        { label: tr('act.actor'), key: 'actor' },
        { label: tr('act.document'), render: function (r) {
          return r.document ? h('a', { href: '#/documents/' + encodeURIComponent(r.document) }, r.document) : '—';
        } }
      ], activity, { id: 'card-activity' }) : h('p', { class: 'muted' }, tr('common.empty'))),
      section(tr('card.approvals'), approvalsList(d.approvals || []))
    ]);
    void live;
  }

  function actionLabel(action) {
    if (kit.text('action.' + action) != null) return kit.text('action.' + action);
    var m = /^(\w+?)_(opened|approved|completed)$/.exec(action || '');
    if (m && kit.text('kind.' + m[1])) return tr('kind.' + m[1]) + ' · ' + tr('action.suffix.' + m[2]);
    return action || '—';
  }

  function approvalsList(list) {
    if (!list.length) return h('p', { class: 'muted' }, tr('common.empty'));
    return h('ul', { class: 'approvals' }, list.map(function (a) {
      var step = a.current_step > 0 && a.steps && a.steps[a.current_step - 1];
      return h('li', { 'data-approval': a.id, 'data-status': a.status }, [
        h('strong', null, a.title || a.flow_title), ' ',
        badge('approval', a.status, label('approval.status', a.status)), ' ',
        step ? h('span', { class: 'muted' }, tr('approval.step', { step: step.name })) : null, ' ',
        h('a', { href: '#', onclick: function (ev) { ev.preventDefault(); kit.navigate('#/approvals/' + encodeURIComponent(a.id)); } }, tr('doc.openApproval'))
      ]);
    }));
  }

  // A change / transfer / lease / repair / disposal form for one card (and
  // `more` card ids with it: a batch from the card list).
  function documentForm(kind, doc, more) {
    var c = doc.data;
    var fields = [];
    var valueSlot = h('div', { class: 'field-slot' });
    if (kind === 'change') {
      var which = select(CHANGEABLE, 'field', 'location');
      which.name = 'changes_field';
      var renderValue = function () {
        valueSlot.textContent = '';
        var f = which.value;
        var control;
        if (f === 'use_status') control = select(['in_use', 'idle'], 'use', c.use_status);
        else if (f === 'warranty_until') control = input('date', { value: c[f] || '' });
        else if (f === 'life_months') control = input('number', { min: '1', step: '1', value: c[f] || '' });
        else if (f === 'original_value') control = input('text', { inputmode: 'decimal', value: (c.original_value / 100).toFixed(2) });
        else control = input('text', { value: c[f] || '' });
        valueSlot.appendChild(field('value', tr('form.newValue') + (f === 'original_value' ? ' (¥)' : ''), control));
      };
      which.addEventListener('change', renderValue);
      renderValue();
      fields.push(field('changes_field', tr('form.changes'), which), valueSlot,
        field('reason', tr('form.reason') + ' *', h('textarea', { rows: '2' }), true));
    } else if (kind === 'transfer') {
      // Any active unit of the directory, another district's too: the
      // receiver confirms the cards onto its own books.
      var to = kit.orgPicker({ name: 'to_org', exclude: [doc.org] });
      fields.push(field('to_org', tr('form.to_org') + ' *', to),
        field('reason', tr('form.reason') + ' *', h('textarea', { rows: '2' }), true));
    } else if (kind === 'lease') {
      fields.push(field('mode', tr('form.mode'), select(['rent', 'lend'], 'mode', 'rent')),
        field('counterparty', tr('form.counterparty') + ' *', input('text')),
        field('from', tr('form.from') + ' *', input('date')),
        field('until', tr('form.until') + ' *', input('date')),
        field('income_yuan', tr('form.income_yuan'), input('text', { inputmode: 'decimal' })));
    } else if (kind === 'repair') {
      fields.push(field('description', tr('form.description') + ' *', h('textarea', { rows: '3' }), true));
    } else if (kind === 'disposal') {
      fields.push(field('method', tr('form.method'), select(METHODS, 'method', 'scrap')),
        field('reason', tr('form.reason') + ' *', h('textarea', { rows: '2' }), true));
    }
    var submitNow = input('checkbox', { checked: true, name: 'submit_now', id: 'f-submit-now' });
    var form = h('form', { class: 'grid-form', id: 'doc-form', 'data-kind': kind, novalidate: true }, [
      h('h3', { class: 'wide' }, tr('kind.' + kind))
    ].concat(fields).concat([
      h('label', { class: 'check wide' }, [submitNow, ' ', tr('common.submitNow')]),
      formError(),
      h('div', { class: 'actions wide' }, [
        h('button', { type: 'submit', class: 'button primary' }, tr('form.create')),
        h('button', { type: 'button', class: 'button', onclick: function () { form.remove(); } }, tr('common.cancel'))
      ])
    ]));
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearErrors(form);
      var val = function (n) { var e = form.elements[n]; return e ? e.value.trim() : ''; };
      var body = { kind: kind, card_ids: [doc.id].concat(more || []), submit: submitNow.checked };
      var required = [];
      if (kind === 'change') {
        var f = val('changes_field');
        var raw = val('value');
        var value = raw;
        if (f === 'original_value') {
          value = yuanToFen(raw);
          if (value == null) return setFieldError(form, 'value', tr('err.yuan'));
        } else if (f === 'life_months') {
          value = parseInt(raw, 10) || 0;
        }
        body.changes = {};
        body.changes[f] = value;
        body.reason = val('reason');
        required = ['reason'];
      } else if (kind === 'transfer') {
        body.to_org = val('to_org');
        body.reason = val('reason');
        required = ['to_org', 'reason'];
      } else if (kind === 'lease') {
        body.mode = val('mode');
        body.counterparty = val('counterparty');
        body.from = val('from');
        body.until = val('until');
        if (val('income_yuan')) {
          if (yuanToFen(val('income_yuan')) == null) return setFieldError(form, 'income_yuan', tr('err.yuan'));
          body.income_yuan = val('income_yuan');
        }
        required = ['counterparty', 'from', 'until'];
      } else if (kind === 'repair') {
        body.description = val('description');
        required = ['description'];
      } else if (kind === 'disposal') {
        body.method = val('method');
        body.reason = val('reason');
        required = ['reason'];
      }
      for (var i = 0; i < required.length; i++) {
        if (!val(required[i])) return setFieldError(form, required[i], tr('err.required'));
      }
      busy(form, true);
      api('POST', 'documents', body).then(function (res) {
        busy(form, false);
        if (!ok(res)) return showError(form, res);
        if (more && more.length) state.selected = {};
        navigateWithFlash('#/documents/' + encodeURIComponent(res.body.id), tr('form.created', { no: res.body.data.no }));
      });
    });
    return form;
  }

  // ---- #/documents ----------------------------------------------------------

  function documentsView(params, live) {
    var kind = select(KINDS, 'kind', params.get('kind') || '', true);
    kind.id = 'docs-kind';
    var status = select(DOC_STATUSES, 'status', params.get('status') || '', true);
    status.id = 'docs-status';
    var page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);
    var cursors = state.docCursors || [null];
    if (page > cursors.length) page = 1;
    var listPath = function () {
      return 'documents' + query({ kind: params.get('kind') || '', status: params.get('status') || '' });
    };
    var hashFor = function (extra) {
      var f = { kind: kind.value, status: status.value };
      Object.keys(extra || {}).forEach(function (k) { f[k] = extra[k]; });
      return '#/documents' + query(f);
    };
    var results = h('div', null, h('p', { class: 'muted' }, tr('loading')));
    var incoming = h('div', { id: 'incoming' });
    var planPanel = h('div', { id: 'plan-panel', hidden: true });
    var togglePlan = function () {
      planPanel.hidden = !planPanel.hidden;
      if (!planPanel.hidden) {
        planPanel.textContent = '';
        planPanel.appendChild(planForm(function () { planPanel.hidden = true; }));
        planPanel.querySelector('input').focus();
      }
    };
    setView([
      h('div', { class: 'head' }, [h('h1', null, tr('docs.title')), h('div', { class: 'tools' }, [
        h('button', { type: 'button', class: 'button primary', id: 'new-plan', onclick: togglePlan }, tr('plan.new')),
        exportButtons(listPath, 'documents')
      ])]),
      planPanel,
      incoming,
      h('form', { class: 'filters', onsubmit: function (ev) {
        ev.preventDefault();
        state.docCursors = [null];
        go(hashFor());
      } }, [
        field('kind', tr('docs.kind'), kind),
        field('status', tr('docs.status'), status),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary' }, tr('common.search')))
      ]),
      results
    ]);
    if (params.get('new') === 'plan') loadCategories().then(function () { if (live() && planPanel.hidden) togglePlan(); });
    var cursor = cursors[page - 1];
    api('GET', withParam(listPath(), 'limit', '20') + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '')).then(function (res) {
      if (!live()) return;
      results.textContent = '';
      if (!ok(res)) return results.appendChild(errorBox(res));
      var b = res.body || {};
      state.docCursors = cursors.slice(0, page);
      if (b.next_cursor) state.docCursors[page] = b.next_cursor;
      var rows = (b.records || []).map(function (d) {
        var x = d.data || {};
        x.__props = { 'data-document': d.id };
        x.id = d.id;
        return x;
      });
      results.appendChild(rows.length ? table([
        { label: tr('docs.no'), render: function (r) { return h('a', { href: '#/documents/' + encodeURIComponent(r.id) }, r.no || r.id); } },
        { label: tr('docs.kind'), render: function (r) { return label('kind', r.kind); } },
        { label: tr('docs.status'), render: function (r) { return badge('status', r.status, label('status', r.status)); } },
        { label: tr('docs.cards'), num: true, render: function (r) { return (r.card_ids || []).length; } },
        { label: tr('docs.total'), money: true, render: function (r) { return money(r.total_value); } },
        { label: tr('docs.createdBy'), key: 'created_by' },
        { label: tr('docs.createdOn'), key: 'created_on' }
      ], rows, { id: 'documents-table' }) : h('p', { class: 'muted empty' }, tr('common.empty')));
      results.appendChild(pager(b.total, page, !!b.next_cursor,
        function () { go(hashFor({ page: page - 1 })); },
        function () { go(hashFor({ page: page + 1 })); }));
    });
    // Cards a transfer sent here, waiting for this unit to confirm receipt.
    api('GET', 'cards?state=incoming&limit=200&total=false').then(function (res) {
      if (!live() || !ok(res) || !res.body || !(res.body.records || []).length) return;
      var boxes = [];
      var rows = res.body.records.map(function (d) {
        var box = input('checkbox', { value: d.id, checked: true });
        boxes.push(box);
        return { box: box, id: d.id, c: d.data || {} };
      });
      var form = h('form', { onsubmit: function (ev) {
        ev.preventDefault();
        var ids = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
        if (!ids.length) return flash(tr('err.chooseCards'), true);
        api('POST', 'receipts', { card_ids: ids }).then(function (r) {
          if (!ok(r)) return flash(errorText(r), true);
          state.flashNext = { text: tr('docs.received', { count: r.body.received }) };
          route();
        });
      } }, [
        table([
          { label: '', render: function (r) { return r.box; } },
          { label: tr('field.asset_no'), render: function (r) { return h('a', { href: '#/cards/' + encodeURIComponent(r.id) }, r.c.asset_no); } },
          { label: tr('field.name'), render: function (r) { return r.c.name; } },
          { label: tr('field.transferred_from_org'), render: function (r) { return r.c.transferred_from_org ? orgNode(r.c.transferred_from_org) : '—'; } },
          { label: tr('field.original_value'), money: true, render: function (r) { return money(r.c.original_value); } }
        ], rows, { id: 'incoming-table' }),
        h('button', { type: 'submit', class: 'button primary', id: 'receive-selected' }, tr('docs.receive'))
      ]);
      incoming.appendChild(section(tr('docs.incoming'), form));
    });
  }

  function documentView(id, live) {
    loadingView();
    api('GET', 'documents/' + encodeURIComponent(id)).then(function (res) {
      if (!live()) return;
      if (!ok(res)) return setView([h('p', null, h('a', { href: '#/documents' }, tr('common.back'))), errorBox(res)]);
      var d = res.body.document;
      var x = d.data || {};
      var act = function (action, method) {
        return function (ev) {
          ev.target.disabled = true;
          var path = 'documents/' + encodeURIComponent(d.id) + (action ? '/' + action : '');
          api(method || 'POST', path, method === 'DELETE' ? undefined : {}).then(function (r) {
            ev.target.disabled = false;
            if (!ok(r)) return flash(errorText(r), true);
            state.flashNext = { text: tr('common.done') };
            if (method === 'DELETE') go('#/documents'); else route();
          });
        };
      };
      var buttons = [];
      if (x.status === 'draft') {
        buttons.push(h('button', { type: 'button', class: 'button primary', id: 'doc-submit', onclick: act('submit') }, tr('doc.submit')));
        buttons.push(h('button', { type: 'button', class: 'button danger', id: 'doc-void', onclick: act('', 'DELETE') }, tr('doc.void')));
      } else if (x.status === 'in_approval') {
        buttons.push(h('button', { type: 'button', class: 'button', id: 'doc-withdraw', onclick: act('withdraw') }, tr('doc.withdraw')));
      } else if (x.status === 'approved' && x.kind === 'lease') {
        buttons.push(h('button', { type: 'button', class: 'button primary', id: 'doc-return', onclick: act('return') }, tr('doc.return')));
      } else if (x.status === 'approved' && (x.kind === 'repair' || x.kind === 'transfer')) {
        buttons.push(h('button', { type: 'button', class: 'button primary', id: 'doc-complete', onclick: act('complete') }, tr('doc.complete')));
      }
      var cards = (x.cards || []).map(function (c) { return c; });
      var history = (x.history || []).map(function (e) {
        var note = e.note && typeof e.note === 'object'
          ? [noteBy(e.note), e.note.comment, e.note.flow].filter(Boolean).join(' · ') : '';
        return { on: e.on, actor: who(e), action: e.action, note: note };
      });
      setView([
        h('p', null, h('a', { href: '#/documents' }, '← ' + tr('nav.documents'))),
        h('div', { class: 'head' }, [
          h('h1', { id: 'doc-title' }, [tr('doc.title', { kind: label('kind', x.kind), no: x.no }), unitTag(d.org, 'doc-unit')]),
          h('div', { class: 'tools' }, badge('status', x.status, label('status', x.status)))
        ]),
        h('div', { class: 'actions', id: 'doc-actions' }, buttons.concat([printButton()])),
        section(null, dl([
          [tr('docs.no'), x.no],
          [tr('docs.kind'), label('kind', x.kind)],
          [tr('docs.status'), label('status', x.status), { id: 'doc-status' }],
          [tr('field.org'), orgNode(d.org)],
          [tr('docs.total'), money(x.total_value)],
          [tr('docs.createdBy'), x.created_by_name || x.created_by, { id: 'doc-created-by' }],
          [tr('docs.createdOn'), x.created_on]
        ])),
        section(tr('doc.cards'), cards.length ? table([
          { label: tr('field.asset_no'), render: function (r) { return h('a', { href: '#/cards/' + encodeURIComponent(r.id) }, r.asset_no); } },
          { label: tr('field.name'), key: 'name' },
          { label: tr('field.original_value'), money: true, key: 'original_value' },
          { label: tr('field.net_value'), money: true, key: 'net_value' }
        ], cards) : h('p', { class: 'muted' }, tr('common.empty'))),
        section(tr('doc.payload'), payloadView(x.payload || {})),
        section(tr('doc.history'), table([
          { label: tr('act.on'), key: 'on' },
          { label: tr('act.action'), render: function (r) { return actionLabel(r.action); } },
          { label: tr('act.actor'), key: 'actor' },
          { label: '', key: 'note' }
        ], history, { id: 'doc-history' })),
        section(tr('doc.approvals'), approvalPanel(res.body.approvals || [], 'doc-approval'))
      ]);
    });
  }

  function payloadValue(key, v) {
    if (v == null || v === '') return '—';
    if (key === 'method') return label('method', v);
    if (/(^|_)org$/.test(key) && typeof v === 'string') return orgNode(v);
    if (key === 'mode') return label('mode', v);
    if (MONEY_KEYS.test(key) && typeof v === 'number') return money(v);
    if (key === 'changes' && typeof v === 'object') {
      return Object.keys(v).map(function (f) {
        var nv = v[f];
        if (f === 'original_value') nv = money(nv);
        else if (f === 'use_status') nv = label('use', nv);
        return kit.fieldName(f) + ' → ' + (typeof nv === 'object' ? JSON.stringify(nv) : nv);
      }).join('；');
    }
    if (Array.isArray(v)) {
      return v.map(function (line) {
        if (line && typeof line === 'object') {
          return [line.category, line.name, line.quantity, line.amount != null ? money(line.amount) : null]
            .filter(function (p) { return p != null && p !== ''; }).join(' ');
        }
        return String(line);
      }).join('；');
    }
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function payloadView(p) {
    var keys = Object.keys(p);
    if (!keys.length) return h('p', { class: 'muted' }, tr('common.empty'));
    return dl(keys.map(function (k) { return [kit.fieldName(k), payloadValue(k, p[k])]; }));
  }

  // ---- #/todos: this plugin's approvals awaiting the caller -----------------

  // The kernel's list, which the portal keeps to this plugin's approvals;
  // an item unfolds the kit's approval panel (approve, or send back with a
  // reason).
  function todosView(live) {
    var box = h('div', { class: 'todos' });
    setView([
      h('div', { class: 'head' }, [
        h('h1', null, tr('todos.title')),
        h('div', { class: 'tools' }, h('button', { type: 'button', class: 'button', onclick: function () { kit.navigate('#/todos'); } }, tr('todos.portal')))
      ]),
      h('p', { class: 'muted' }, tr('todos.hint')),
      box
    ]);
    kit.todoList(box, {
      kind: 'pending',
      empty: tr('todos.empty'),
      detail: function (item) {
        var f = item.approval.form || {};
        return h('p', { class: 'todo-links' }, [
          f.no ? h('a', { href: '#/documents/' + encodeURIComponent(item.approval.subject_id) }, f.no) : null,
          (f.cards || []).map(function (c) { return h('span', { class: 'muted' }, [' · ', c.asset_no, ' ', money(c.original_value)]); })
        ]);
      },
      onDone: function (action, d) {
        if (!live()) return;
        state.flashNext = { text: tr(action === 'approve' ? 'todos.approved' : 'todos.rejected') + '：' + kit.approvalTitle(d.approval) };
        route();
      }
    });
  }

  // A record's approval through the kit's panel: status, summary, timeline
  // and the approver's actions; withdrawing stays the record's own button.
  function approvalPanel(list, id) {
    var box = h('div', { id: id });
    kit.approvalPanel(box, { approvals: list, withdraw: false, onDone: function () {
      state.flashNext = { text: tr('common.done') };
      route();
    } });
    return box;
  }

  function printButton() {
    return h('button', { type: 'button', class: 'button', id: 'doc-print', onclick: function () { kit.print(); } }, tr('common.print'));
  }

  // ---- #/reports ------------------------------------------------------------

  // Fen as yuan, the unit report charts show money in.
  function yuan(fen) {
    return fen == null || fen === '' || isNaN(Number(fen)) ? null : Math.round(Number(fen)) / 100;
  }

  // A report chart through the kit (ECharts; the same numbers as a table
  // where the kernel has none): rows [{label, values}], one series per name.
  // opts: money (values in fen, shown in yuan), unit, type ('bar', 'line',
  // 'pie'), vertical (bars upright, for months; else along the x axis).
  function reportChart(rows, series, opts) {
    var o = opts || {};
    var box = h('div', { class: 'report-chart' });
    kit.chart(box, {
      type: o.type || 'bar',
      horizontal: !o.type && !o.vertical,
      categories: rows.map(function (r) { return r.label; }),
      series: series.map(function (name, j) {
        return { name: name, data: rows.map(function (r) { return o.money ? yuan(r.values[j]) : Number(r.values[j]) || 0; }) };
      }),
      unit: o.money ? tr('unit.yuan') : o.unit || ''
    });
    return box;
  }

  // One report panel: controls, export buttons, then chart and table from
  // the answer. build(body) returns the nodes to show.
  function reportPanel(id, titleKey, controls, pathFn, build, live) {
    var out = h('div', { class: 'report-body', id: id + '-body' }, h('p', { class: 'muted' }, tr('loading')));
    function load() {
      out.textContent = '';
      out.appendChild(h('p', { class: 'muted' }, tr('loading')));
      api('GET', pathFn()).then(function (res) {
        if (!live()) return;
        out.textContent = '';
        if (!ok(res)) {
          out.appendChild(res.status === 404 && !(res.body && res.body.error && res.body.error.field)
            ? h('p', { class: 'error' }, tr('err.notAvailable') + ' (' + errorText(res) + ')')
            : errorBox(res));
          return;
        }
        append(out, build(res.body || {}));
      });
    }
    var form = h('form', { class: 'filters', onsubmit: function (ev) { ev.preventDefault(); load(); } },
      controls.concat([h('div', { class: 'actions' }, [
        h('button', { type: 'submit', class: 'button primary' }, tr('common.search')),
        exportButtons(pathFn, id)
      ])]));
    load();
    return section(tr(titleKey), [form, out], { id: id });
  }

  function moneyColumns(keys) {
    return keys.map(function (k) {
      return { label: tr('col.' + k), money: MONEY_KEYS.test(k), num: k === 'count' || /_count$/.test(k), key: k,
        render: k === 'idle_rate' ? function (r) { return percent(r.idle_rate); } : null };
    });
  }

  // The by-unit totals rolled up the org tree: under `root` (null: the
  // top of what the caller reads), one row per child org summing the
  // units below it; a unit directly under `root` stays a row of its own.
  // Rows whose unit is not in the tree are kept as they are.
  function rollUp(rows, root, keys) {
    var parents = state.orgParents || {};
    var groups = {};
    var order = [];
    rows.forEach(function (r) {
      var id = r.key;
      if (!(id in parents)) { groups[id] = r; order.push(id); return; }
      // Walk up to the ancestor whose parent is `root`.
      var at = id;
      var seen = 0;
      while (at && parents[at] !== (root || null) && seen++ < 20) at = parents[at];
      if (!at) return; // not under root
      if (at === id) { groups[id] = r; order.push(id); return; }
      if (!groups[at]) {
        groups[at] = { key: at, label: orgName(at), units: 0, __props: { 'data-key': at, 'data-level': (state.orgLevels || {})[at] || '' } };
        keys.forEach(function (k) { groups[at][k] = 0; });
        order.push(at);
      }
      var g = groups[at];
      if (g === r) return;
      g.units += 1;
      keys.forEach(function (k) { g[k] += Number(r[k]) || 0; });
    });
    return order.map(function (k) { return groups[k]; });
  }

  function sumRow(rows, keys, first) {
    var total = { __props: { class: 'sum' } };
    total[first] = tr('common.sum');
    keys.forEach(function (k) {
      total[k] = rows.reduce(function (t, r) { return t + (Number(r[k]) || 0); }, 0);
    });
    return total;
  }

  // By unit: rolled up one level at a time (the region's prefectures,
  // a prefecture's counties and bureaus, …) with drill-down by a click,
  // and a trail back up.
  function unitRollUp(rows, keys) {
    var box = h('div', { id: 'totals-rollup' });
    function show(root, trail) {
      box.textContent = '';
      var grouped = rollUp(rows, root, keys);
      var crumbs = h('p', { class: 'crumbs', id: 'totals-trail' }, [
        h('a', { href: '#', onclick: function (ev) { ev.preventDefault(); show(null, []); } }, tr('reports.allLevels'))
      ].concat(trail.map(function (t, i) {
        return [' / ', h('a', { href: '#', onclick: function (ev) { ev.preventDefault(); show(t, trail.slice(0, i + 1)); } }, orgName(t))];
      }).reduce(function (a, b) { return a.concat(b); }, [])));
      // One level down: a group's own name links to its members.
      var columns = [{ label: tr('col.name'), render: function (r) {
        if (!r.units) return r.label;
        return h('a', { href: '#', class: 'drill', 'data-org': r.key, onclick: function (ev) {
          ev.preventDefault();
          show(r.key, trail.concat([r.key]));
        } }, [r.label, ' ', h('small', { class: 'muted' }, tr('reports.units', { count: r.units }))]);
      } }].concat(moneyColumns(keys));
      box.appendChild(crumbs);
      box.appendChild(reportChart(grouped.map(function (r) {
        return { label: r.label, values: keys.indexOf('net_value') >= 0 ? [r.original_value, r.net_value] : [r.original_value] };
      }), keys.indexOf('net_value') >= 0 ? [tr('col.original_value'), tr('col.net_value')] : [tr('col.original_value')], { money: true }));
      box.appendChild(table(columns, grouped.concat([sumRow(grouped, keys, 'label')]), { id: 'totals-table' }));
    }
    show(null, []);
    return box;
  }

  // An annual-report table (年报) as the API lays it out: its number and
  // title, the filing unit, year and money unit, grouped column heads (a
  // second header row where columns share a group), indented lines, and
  // the notes under it. Looks like the paper form and prints as one.
  function annualTable(b) {
    var cols = b.columns || [];
    var grouped = cols.some(function (c) { return c.group; });
    var top = [];
    var sub = [];
    cols.forEach(function (c, i) {
      if (!c.group) {
        top.push(h('th', grouped ? { rowspan: '2', scope: 'col' } : { scope: 'col' }, c.label));
        return;
      }
      if (i > 0 && cols[i - 1].group === c.group) top[top.length - 1].colSpan += 1;
      else top.push(h('th', { colspan: '1', scope: 'colgroup' }, c.group));
      sub.push(h('th', { scope: 'col' }, c.label));
    });
    var thead = h('thead', null, [h('tr', null, top), grouped ? h('tr', null, sub) : null]);
    var tbody = h('tbody', null, (b.rows || []).map(function (r) {
      return h('tr', { class: 'level-' + (r.level == null ? 1 : r.level), 'data-key': r.key }, cols.map(function (c, i) {
        var v = r[c.key];
        if (i === 0 || typeof v === 'string') return h('td', null, v == null || v === '' ? '—' : String(v));
        return h('td', { class: 'num' }, c.money ? moneyPlain(v) : numberText(v));
      }));
    }));
    return h('div', { class: 'annual-form', id: 'annual-form' }, [
      h('h3', { class: 'annual-title' }, [h('span', { class: 'annual-number' }, b.number), ' ', b.title]),
      h('p', { class: 'annual-meta' }, [
        h('span', null, tr('annual.unit', { org: b.org_name || orgName(b.org) })),
        h('span', null, tr('annual.yearOf', { year: b.year })),
        h('span', null, tr('annual.money'))
      ]),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table annual-table', id: 'annual-table' }, [thead, tbody])),
      (b.notes || []).length ? h('ul', { class: 'annual-notes' }, b.notes.map(function (n) { return h('li', null, n); })) : null
    ]);
  }

  // Fen as 1,234.56 (the form's money unit, 元, is said once above it).
  function moneyPlain(fen) {
    var t = money(fen);
    return t === '—' ? t : t.replace('¥', '');
  }

  function numberText(v) {
    if (v == null || v === '' || isNaN(Number(v))) return '—';
    return Number(v).toLocaleString(kit.lang && kit.lang() === 'en' ? 'en' : 'zh-CN', { maximumFractionDigits: 2 });
  }

  function reportsView(live) {
    var by = h('select', { name: 'by', id: 'totals-by' }, ['unit', 'category', 'funding'].map(function (b) {
      return h('option', { value: b }, tr('reports.by.' + b));
    }));
    var year = new Date().getFullYear();
    var from = input('month', { name: 'from', value: year + '-01' });
    var to = input('month', { name: 'to', value: thisMonth() });
    var month = input('month', { name: 'month', value: lastMonth() });
    var dispYear = input('number', { name: 'year', value: String(year), min: '2000', max: '2999' });
    var trendFrom = input('month', { name: 'from', value: monthsBack(11) });
    var trendTo = input('month', { name: 'to', value: thisMonth() });
    var annualForm = h('select', { name: 'form', id: 'annual-which' }, ['fixed', 'houses', 'vehicles', 'disposals', 'leases'].map(function (f) {
      return h('option', { value: f }, tr('annual.form.' + f));
    }));
    var annualYear = input('number', { name: 'year', value: String(year), min: '2000', max: String(year) });

    setView([
      h('h1', null, tr('reports.title')),
      reportPanel('totals', 'reports.totals', [field('by', tr('reports.by'), by)],
        function () { return 'reports/totals' + query({ by: by.value }); },
        function (b) {
          var rows = (b.rows || []).map(function (r) {
            var x = Object.assign({}, r);
            // By unit the key is the org id: show the org's name.
            x.label = r.name && r.name !== r.key ? r.name : orgName(r.key);
            x.__props = { 'data-key': r.key };
            return x;
          });
          if (!rows.length) return h('p', { class: 'muted' }, tr('common.empty'));
          // By funding both rows count the same cards and carry no net value.
          var funding = rows.every(function (r) { return r.net_value == null; });
          var keys = funding ? ['original_value'] : ['count', 'original_value', 'net_value'];
          if (b.by === 'unit' || by.value === 'unit') return unitRollUp(rows, keys);
          return [
            reportChart(rows.map(function (r) {
              return { label: r.label, values: funding ? [r.original_value] : [r.original_value, r.net_value] };
            }), funding ? [tr('col.original_value')] : [tr('col.original_value'), tr('col.net_value')], { money: true }),
            table([{ label: tr('col.name'), key: 'label' }].concat(moneyColumns(keys)),
              rows.concat([sumRow(rows, keys, 'label')]), { id: 'totals-table' })
          ];
        }, live),
      reportPanel('trend', 'reports.trend', [
        field('from', tr('reports.fromMonth'), trendFrom), field('to', tr('reports.toMonth'), trendTo)
      ], function () { return 'reports/trend' + query({ from: trendFrom.value, to: trendTo.value }); }, function (b) {
        var rows = b.rows || [];
        if (!rows.length) return h('p', { class: 'muted' }, tr('common.empty'));
        var withNet = rows.some(function (r) { return r.net_value != null; });
        var box = h('div', { class: 'report-chart', id: 'trend-chart' });
        kit.chart(box, {
          type: 'line',
          categories: rows.map(function (r) { return r.month; }),
          series: [{ name: tr('col.original_value'), data: rows.map(function (r) { return yuan(r.original_value); }) }]
            .concat(withNet ? [{ name: tr('col.net_value'), data: rows.map(function (r) { return yuan(r.net_value); }) }] : []),
          unit: tr('unit.yuan')
        });
        return [
          box,
          withNet ? null : h('p', { class: 'muted', id: 'trend-no-net' }, tr('reports.trendNoNet')),
          table([{ label: tr('reports.month'), key: 'month' }].concat(moneyColumns(['count', 'original_value',
            'additions_count', 'additions_value', 'reductions_count', 'reductions_value', 'net_value']).map(function (c) {
            c.label = tr('trend.' + c.key);
            return c;
          })), rows, { id: 'trend-table' })
        ];
      }, live),
      reportPanel('changes', 'reports.changes', [
        field('from', tr('reports.fromMonth'), from), field('to', tr('reports.toMonth'), to)
      ], function () { return 'reports/changes' + query({ from: from.value, to: to.value }); }, function (b) {
        var items = ['opening', 'additions', 'reductions', 'closing'].map(function (k) {
          var v = b[k] || {};
          return { item: tr('reports.' + k), count: v.count, value: v.value };
        });
        var nodes = [
          reportChart(items.map(function (r) { return { label: r.item, values: [r.value] }; }), [tr('col.value')], { money: true }),
          table([{ label: tr('col.item'), key: 'item' }].concat(moneyColumns(['count', 'value'])), items, { id: 'changes-table' })
        ];
        var cats = b.by_category || [];
        if (cats.length) {
          var cols = [{ label: tr('col.category'), render: function (r) { return (r.key || '') + ' ' + (r.name || ''); } }];
          ['opening', 'additions', 'reductions', 'closing'].forEach(function (k) {
            cols.push({ label: tr('reports.' + k) + ' · ' + tr('col.count'), key: k + '_count', num: true });
            cols.push({ label: tr('reports.' + k) + ' · ' + tr('col.value'), key: k + '_value', money: true });
          });
          nodes.push(h('h3', null, tr('reports.byCategory')));
          nodes.push(table(cols, cats, { id: 'changes-categories' }));
        }
        return nodes;
      }, live),
      reportPanel('depreciation', 'reports.depreciation', [field('month', tr('reports.month'), month)],
        function () { return 'reports/depreciation' + query({ month: month.value }); },
        function (b) {
          var rows = (b.rows || []).map(function (r) {
            var x = Object.assign({}, r);
            x.label = r.name || r.category;
            return x;
          });
          // Whether the month is booked, which months are, and the run.
          var months = (b.booked_months || []).filter(function (m) { return m.finished; }).map(function (m) { return m.month; });
          var status = h('div', { id: 'depreciation-status', class: b.booked ? 'notice' : 'notice warn' }, [
            h('p', null, b.booked ? tr('dep.booked', { month: b.month })
              : tr('dep.notBooked', { month: b.month, last: b.last_booked || tr('dep.never') })),
            h('p', { class: 'muted', id: 'depreciation-months' }, tr('dep.months', { months: months.length ? months.join('、') : tr('dep.never') })),
            !b.booked && b.runnable ? h('button', { type: 'button', class: 'button primary', id: 'depreciation-run', onclick: function (ev) {
              ev.target.disabled = true;
              api('POST', 'depreciation/run' + query({ month: b.month })).then(function (res) {
                ev.target.disabled = false;
                if (!ok(res)) return flash(errorText(res), true);
                flash(tr('dep.ran', { month: b.month }));
                route();
              });
            } }, tr('dep.run', { month: b.month })) : null
          ]);
          if (!rows.length) return [status, h('p', { class: 'muted' }, tr('common.empty'))];
          return [
            status,
            reportChart(rows.map(function (r) { return { label: r.label, values: [r.charge, r.accumulated] }; }),
              [tr('col.charge'), tr('col.accumulated')], { money: true }),
            table([{ label: tr('col.category'), key: 'category' }, { label: tr('col.name'), key: 'name' }]
              .concat(moneyColumns(['original_value', 'accumulated', 'net_value', 'charge'])),
            rows.concat([sumRow(rows, ['original_value', 'accumulated', 'net_value', 'charge'], 'category')]), { id: 'depreciation-table' })
          ];
        }, live),
      reportPanel('idle', 'reports.idle', [], function () { return 'reports/idle'; }, function (b) {
        var rows = b.rows || [];
        if (!rows.length) return h('p', { class: 'muted' }, tr('common.empty'));
        return [
          reportChart(rows.map(function (r) {
            var rate = Number(r.idle_rate) || 0;
            return { label: orgName(r.org), values: [Math.round((rate <= 1 ? rate * 100 : rate) * 10) / 10] };
          }), [tr('col.idle_rate')], { unit: '%' }),
          table([{ label: tr('col.org'), render: function (r) { return orgNode(r.org); } }]
            .concat(moneyColumns(['count', 'idle_count', 'idle_value', 'original_value', 'idle_rate'])), rows, { id: 'idle-table' })
        ];
      }, live),
      reportPanel('disposals', 'reports.disposals', [field('year', tr('reports.year'), dispYear)],
        function () { return 'reports/disposals' + query({ year: dispYear.value }); },
        function (b) {
          var rows = (b.rows || []).map(function (r) {
            var x = Object.assign({}, r);
            x.label = label('method', r.method);
            return x;
          });
          if (!rows.length) return h('p', { class: 'muted' }, tr('common.empty'));
          var byValue = rows.some(function (r) { return Number(r.original_value) > 0; });
          return [
            reportChart(rows.map(function (r) { return { label: r.label, values: [byValue ? r.original_value : r.count] }; }),
              [byValue ? tr('col.original_value') : tr('col.count')], { type: 'pie', money: byValue, unit: tr('unit.cards') }),
            table([{ label: tr('col.method'), key: 'label' }].concat(moneyColumns(['count', 'original_value', 'net_value'])),
              rows, { id: 'disposals-table' })
          ];
        }, live),
      reportPanel('annual', 'reports.annual', [field('form', tr('annual.which'), annualForm), field('year', tr('reports.year'), annualYear)],
        function () { return 'reports/annual' + query({ form: annualForm.value, year: annualYear.value }); },
        function (b) {
          return [
            h('div', { class: 'actions kit-no-print' }, h('button', { type: 'button', class: 'button', id: 'annual-print', onclick: function () { kit.print(document.getElementById('annual-form')); } }, tr('common.print'))),
            annualTable(b)
          ];
        }, live)
    ]);
  }

  // ---- #/import -------------------------------------------------------------

  function importView(live) {
    var file = input('file', { accept: '.xlsx,.xls,.csv,' + XLSX_TYPE, id: 'import-file', name: 'file' });
    var out = h('div', { id: 'import-result' });
    var form = h('form', { class: 'grid-form', id: 'import-form', novalidate: true }, [
      field('file', tr('import.file'), file, true),
      formError(),
      h('div', { class: 'actions wide' }, [
        h('button', { type: 'button', class: 'button', id: 'import-check', onclick: function () { run(true); } }, tr('import.check')),
        h('button', { type: 'button', class: 'button primary', id: 'import-run', onclick: function () { run(false); } }, tr('import.run'))
      ])
    ]);
    function run(dry) {
      clearErrors(form);
      out.textContent = '';
      var f = file.files && file.files[0];
      if (!f) return setFieldError(form, 'file', tr('err.chooseFile'));
      var blob = f.type ? f : new Blob([f], { type: XLSX_TYPE });
      busy(form, true);
      api('POST', 'import' + query({ dry_run: dry ? 'true' : 'false' }), blob).then(function (res) {
        busy(form, false);
        if (!live()) return;
        if (!ok(res) && !(res.body && res.body.errors)) return showError(form, res);
        var b = res.body || {};
        var errors = b.errors || [];
        if (b.ok && !errors.length) {
          // What came in (or would): each card by its number, so the
          // unit sees its own numbers kept; rows already in the register
          // are listed as skipped.
          var listed = (dry ? b.would_import : b.cards) || [];
          var skipped = b.skipped || [];
          out.appendChild(h('p', { class: 'success', role: 'status', id: 'import-summary' },
            tr(dry ? 'import.ok' : 'import.imported', { rows: listed.length, skipped: skipped.length })));
          if (!dry && listed.length) out.appendChild(h('p', { class: 'muted' }, tr('import.toApproval')));
          if (listed.length) {
            out.appendChild(table([
              { label: tr('import.row'), key: 'row', num: true },
              { label: tr('field.asset_no'), key: 'asset_no' },
              { label: tr('field.name'), key: 'name' },
              { label: tr('field.category'), key: 'category' },
              { label: tr('field.original_value'), key: 'original_value', money: true }
            ], listed, { id: 'import-cards' }));
          }
          if (skipped.length) {
            out.appendChild(h('h2', null, tr('import.skipped', { count: skipped.length })));
            out.appendChild(table([
              { label: tr('import.row'), key: 'row', num: true },
              { label: tr('field.asset_no'), key: 'asset_no' },
              { label: tr('field.name'), key: 'name' },
              { label: tr('import.problem'), key: 'message' }
            ], skipped, { id: 'import-skipped' }));
          }
        } else {
          out.appendChild(h('p', { class: 'error', role: 'alert' }, tr('import.errors', { count: errors.length })));
          out.appendChild(table([
            { label: tr('import.row'), key: 'row', num: true },
            { label: tr('import.column'), key: 'column' },
            { label: tr('import.problem'), render: function (r) { return r.message || r.problem; } }
          ], errors, { id: 'import-errors' }));
        }
      });
    }
    setView([
      h('div', { class: 'head' }, [
        h('h1', null, tr('import.title')),
        h('div', { class: 'tools' }, h('button', { type: 'button', class: 'button', id: 'import-template', onclick: function () {
          download('import/template', 'template.xlsx');
        } }, tr('import.template')))
      ]),
      h('p', { class: 'muted' }, tr('import.hint')),
      section(null, [form, out])
    ]);
  }

  // ---- #/labels -------------------------------------------------------------

  function labelsView(live) {
    var filter = {};
    try { filter = JSON.parse(storage('sessionStorage', FILTER_KEY) || '{}') || {}; } catch (e) { filter = {}; }
    var desc = CARD_FILTERS.filter(function (k) { return filter[k]; }).map(function (k) {
      var v = filter[k];
      if (k === 'state') v = label('state', v);
      if (k === 'use_status') v = label('use', v);
      return kit.fieldName(k === 'q' ? 'name' : k) + '=' + v;
    }).join('，');
    var list = h('div', { id: 'labels-cards' }, h('p', { class: 'muted' }, tr('loading')));
    var sheet = h('div', { id: 'labels-sheet', class: 'labels-sheet' });
    var boxes = [];
    setView([
      h('div', { class: 'head' }, [h('h1', null, tr('labels.title')),
        h('div', { class: 'tools' }, h('a', { class: 'button', href: '#/cards' + query(filter) }, '← ' + tr('nav.cards')))]),
      h('p', { class: 'muted' }, tr('labels.hint')),
      h('p', null, tr('labels.filter', { filter: desc || tr('labels.noFilter') })),
      list,
      sheet
    ]);
    var f = {};
    CARD_FILTERS.forEach(function (k) { f[k] = filter[k]; });
    f.limit = '200';
    f.total = 'false';
    api('GET', 'cards' + query(f)).then(function (res) {
      if (!live()) return;
      list.textContent = '';
      if (!ok(res)) return list.appendChild(errorBox(res));
      var rows = ((res.body && res.body.records) || []).map(function (d) {
        var box = input('checkbox', { value: d.id, checked: true, 'aria-label': d.data.asset_no });
        boxes.push(box);
        return { box: box, c: d.data };
      });
      if (!rows.length) return list.appendChild(h('p', { class: 'muted' }, tr('common.empty')));
      var all = input('checkbox', { checked: true, onchange: function () {
        boxes.forEach(function (b) { b.checked = all.checked; });
      } });
      list.appendChild(h('label', { class: 'check' }, [all, ' ', tr('labels.selectAll')]));
      // Paged (the choices are kept across pages): 200 cards are a very
      // long page on a phone.
      list.appendChild(kit.pagedRows([
        { label: '', render: function (r) { return r.box; } },
        { label: tr('field.asset_no'), render: function (r) { return r.c.asset_no; } },
        { label: tr('field.name'), render: function (r) { return r.c.name; } },
        { label: tr('field.location'), render: function (r) { return r.c.location; } }
      ], rows, { money: money }, 20));
      list.appendChild(h('div', { class: 'actions' }, h('button', { type: 'button', class: 'button primary', id: 'labels-make', onclick: make }, tr('labels.make'))));
    });
    function make() {
      var ids = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
      sheet.textContent = '';
      if (!ids.length) return flash(tr('err.chooseCards'), true);
      var path = API + 'labels?ids=' + ids.map(encodeURIComponent).join(',');
      kit.fetchBlob('GET', path, undefined, { accept: 'image/png' }).then(function (res) {
        if (!ok(res) || !res.blob) return sheet.appendChild(errorBox(res));
        var reader = new FileReader();
        reader.onload = function () {
          sheet.appendChild(h('img', { src: reader.result, alt: tr('labels.title'), class: 'labels-image' }));
          sheet.appendChild(h('p', null, h('a', { href: URL.createObjectURL(res.blob), target: '_blank', rel: 'noopener' }, tr('labels.open'))));
        };
        reader.readAsDataURL(res.blob);
      });
    }
  }

  // ---- #/scan ---------------------------------------------------------------

  function stopCamera() {
    if (state.stream) {
      state.stream.getTracks().forEach(function (t) { t.stop(); });
      state.stream = null;
    }
  }

  function scanView(params, live) {
    var code = input('text', { id: 'scan-code', name: 'code', autocomplete: 'off', autocapitalize: 'none', enterkeyhint: 'search' });
    var stocktake = h('select', { id: 'scan-stocktake', name: 'stocktake' }, h('option', { value: '' }, tr('scan.noStocktake')));
    var task = h('select', { id: 'scan-task', name: 'task_id' });
    var where = input('text', { id: 'scan-location', name: 'location', value: storage('localStorage', 'assets.scanLocation') || '' });
    var result = h('div', { id: 'scan-result', 'aria-live': 'polite' });
    var video = h('video', { class: 'scan-video', playsinline: true, muted: true, hidden: true });
    var stNote = h('p', { class: 'muted', hidden: true }, tr('scan.noStocktakes'));
    // Codes are read by the browser's BarcodeDetector where it has one, else
    // by the ZXing library the kit serves (iOS Safari, the WeChat browser):
    // live from the camera, or from a photo where there is no live camera.
    var canCamera = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
    var cameraButton = h('button', { type: 'button', class: 'button', id: 'scan-camera', hidden: true, onclick: toggleCamera },
      tr('scan.camera'));
    var photo = input('file', { id: 'scan-photo', name: 'photo', accept: 'image/*', capture: 'environment' });
    var noReader = h('p', { class: 'muted', id: 'scan-no-reader', hidden: true }, tr('scan.noCamera'));
    var form = h('form', { class: 'grid-form scan-form', novalidate: true, onsubmit: function (ev) {
      ev.preventDefault();
      resolve(code.value.trim());
    } }, [
      field('code', tr('scan.code'), code, true),
      h('div', { class: 'actions wide' }, [h('button', { type: 'submit', class: 'button primary' }, tr('scan.lookup')), cameraButton]),
      field('photo', tr('scan.photo'), photo, true),
      field('stocktake', tr('scan.stocktake'), stocktake),
      field('task_id', tr('scan.task'), task, false),
      field('location', tr('scan.location'), where),
      stNote
    ]);
    setView([
      h('h1', null, tr('scan.title')),
      noReader,
      video,
      form,
      result
    ]);
    code.focus();
    photo.closest('.field').hidden = true;
    kit.canReadCodes().then(function (can) {
      if (!live()) return;
      cameraButton.hidden = !(can && canCamera);
      photo.closest('.field').hidden = !can;
      noReader.hidden = can;
    });
    photo.addEventListener('change', function () {
      var picture = photo.files && photo.files[0];
      if (!picture) return;
      clearErrors(form);
      result.textContent = '';
      result.appendChild(h('p', { class: 'muted', role: 'status' }, tr('scan.reading')));
      kit.readCode(picture).then(function (text) {
        photo.value = '';
        if (!live()) return;
        result.textContent = '';
        if (!text) return setFieldError(form, 'photo', tr('scan.noCodeInPhoto'));
        code.value = text;
        resolve(text);
      });
    });
    // Scans go into a running stocktake's open task.
    api('GET', 'stocktakes?status=in_progress&limit=100').then(function (res) {
      if (!live()) return;
      if (!ok(res)) { stNote.hidden = false; return; }
      ((res.body && res.body.records) || []).forEach(function (d) {
        var x = d.data || {};
        stocktake.appendChild(h('option', { value: d.id }, [x.no, x.name || x.title].filter(Boolean).join(' ') || d.id));
      });
      // Opened from a campaign (#/scan?stocktake=…&task=…): that one is chosen.
      var wanted = params.get('stocktake');
      if (wanted && Array.prototype.some.call(stocktake.options, function (o) { return o.value === wanted; })) {
        stocktake.value = wanted;
        stocktake.dispatchEvent(new Event('change'));
      }
    });
    task.closest('.field').hidden = true;
    stocktake.addEventListener('change', function () {
      task.textContent = '';
      task.closest('.field').hidden = !stocktake.value;
      if (!stocktake.value) return;
      // Every open task, page by page: a district campaign has hundreds.
      var chosen = stocktake.value;
      listAll('stocktakes/' + encodeURIComponent(chosen) + '/tasks?status=open', function (records) {
        if (!live() || stocktake.value !== chosen) return false;
        records.forEach(function (t) {
          var x = t.data || {};
          task.appendChild(h('option', { value: t.id, selected: t.id === params.get('task') }, [x.no, x.label || x.key].filter(Boolean).join(' ')));
        });
        return true;
      }).then(function (res) {
        if (!live() || stocktake.value !== chosen) return;
        if (!ok(res)) return flash(errorText(res), true);
        task.setAttribute('data-count', String(task.options.length));
      });
    });

    var busyScan = false;
    function toggleCamera() {
      if (state.stream) {
        stopCamera();
        video.hidden = true;
        cameraButton.textContent = tr('scan.camera');
        return;
      }
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return flash(tr('scan.noCamera'), true);
      navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false }).then(function (stream) {
        if (!live()) { stream.getTracks().forEach(function (t) { t.stop(); }); return; }
        state.stream = stream;
        video.srcObject = stream;
        video.hidden = false;
        video.play();
        cameraButton.textContent = tr('scan.stop');
        var last = '';
        var tick = function () {
          if (!state.stream || !live()) return;
          if (busyScan || video.readyState < 2) return setTimeout(tick, 300);
          kit.readCode(video).then(function (found) {
            if (found && found !== last) {
              last = found;
              code.value = found;
              resolve(found);
            }
          }).catch(function () { /* a frame the detector could not read */ }).then(function () { setTimeout(tick, 300); });
        };
        tick();
      }, function (e) { flash(tr('scan.noCamera') + ' (' + (e && e.name) + ')', true); });
    }

    function resolve(text) {
      if (!text) return setFieldError(form, 'code', tr('err.required'));
      clearErrors(form);
      busyScan = true;
      result.textContent = '';
      api('GET', 'lookup' + query({ code: text })).then(function (res) {
        if (!live()) return;
        if (!ok(res)) {
          busyScan = false;
          result.appendChild(errorBox(res));
          return;
        }
        var d = res.body;
        var c = d.data || {};
        result.appendChild(section(null, [
          h('h2', null, [c.name, ' ', h('small', null, c.asset_no)]),
          dl([
            [tr('field.category'), c.category],
            [tr('field.location'), c.location],
            [tr('field.custodian'), c.custodian],
            [tr('field.state'), label('state', c.state)],
            [tr('field.use_status'), label('use', c.use_status)],
            [tr('field.original_value'), money(c.original_value)]
          ]),
          h('a', { href: '#/cards/' + encodeURIComponent(d.id) }, tr('common.details'))
        ], { id: 'scan-card' }));
        if (!stocktake.value) { busyScan = false; return; }
        storage('localStorage', 'assets.scanLocation', where.value.trim());
        var body = { code: text };
        if (!task.value) return result.appendChild(errorBox({ status: 422, body: { error: { field: 'task_id', message: tr('err.required') } } }));
        body.task_id = task.value;
        if (where.value.trim()) body.location = where.value.trim();
        api('POST', 'stocktakes/' + encodeURIComponent(stocktake.value) + '/scan', body).then(function (r) {
          busyScan = false;
          if (!live()) return;
          if (!ok(r)) return result.appendChild(errorBox(r));
          var b = r.body || {};
          var rec = (b.result && b.result.data) || {};
          var outcome = rec.result ? label('scan.result', rec.result) : tr('common.done');
          if (b.duplicate) {
            // The label was scanned before: its first result stands.
            result.appendChild(h('p', { class: 'warning', role: 'status', id: 'scan-duplicate' },
              tr('scan.duplicate', { result: outcome, on: rec.on || '', by: rec.by_name || rec.by || '' })));
            code.value = '';
            code.focus();
            return;
          }
          if (rec.differences && rec.differences.length) {
            outcome += ' — ' + rec.differences.map(function (d) {
              return kit.fieldName(d.field) + ': ' + (d.book || '—') + ' → ' + (d.found || '—');
            }).join('；');
          }
          result.appendChild(h('p', { class: 'success', role: 'status' }, tr('scan.recorded', { result: outcome })));
          code.value = '';
          code.focus();
        });
      });
    }
  }

  // ---- shared bits for the stocktake and warehouse pages ----------------------

  // Follows `next_cursor` through every page of a list (at most `max`
  // pages), handing each page's records to `each` (which answers false to
  // stop); resolves with the last answer.
  function listAll(path, each, max) {
    var pages = 0;
    function one(cursor) {
      var url = withParam(path, 'limit', '50');
      if (cursor) url = withParam(url, 'cursor', cursor);
      return api('GET', url).then(function (res) {
        if (!ok(res)) return res;
        var b = res.body || {};
        if (each(b.records || []) === false) return res;
        pages += 1;
        if (b.next_cursor && pages < (max || 100)) return one(b.next_cursor);
        return res;
      });
    }
    return one(null);
  }

  function today() {
    var d = new Date();
    return d.getFullYear() + '-' + ('0' + (d.getMonth() + 1)).slice(-2) + '-' + ('0' + d.getDate()).slice(-2);
  }

  function monthsBack(n) {
    var d = new Date();
    d.setDate(1);
    d.setMonth(d.getMonth() - n);
    return d.getFullYear() + '-' + ('0' + (d.getMonth() + 1)).slice(-2);
  }

  // Keepers run the public warehouse; administrators may too.
  function isKeeper() {
    return ((state.me && state.me.bindings) || []).some(function (b) {
      return b.role === 'assets.keeper' || b.role === 'org-admin';
    });
  }

  function categoryText(code) {
    if (!code) return '—';
    var name = categoryName(code);
    return name ? code + ' ' + name : code;
  }

  // A list that pages with next_cursor; pathFn() gives the path with its
  // filters; columns are a table's, or a function(rows) that draws them.
  // Answers {node, load(reset)}; deferLoad: the caller loads it first.
  function pagedTable(pathFn, columns, props, live, mapRow, deferLoad) {
    var node = h('div', { id: props.id + '-results' }, h('p', { class: 'muted' }, tr('loading')));
    var cursors = [null];
    var page = 1;
    function load(reset) {
      if (reset) { cursors = [null]; page = 1; }
      var cursor = cursors[page - 1];
      api('GET', withParam(pathFn(), 'limit', '20') + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '')).then(function (res) {
        if (!live()) return;
        node.textContent = '';
        if (!ok(res)) return node.appendChild(errorBox(res));
        var b = res.body || {};
        cursors = cursors.slice(0, page);
        if (b.next_cursor) cursors[page] = b.next_cursor;
        var rows = (b.records || []).map(mapRow);
        var shown = typeof columns === 'function' ? columns(rows) : table(columns, rows, props);
        node.appendChild(rows.length ? shown : h('p', { class: 'muted empty' }, tr('common.empty')));
        node.appendChild(pager(b.total, page, !!b.next_cursor,
          function () { page--; load(); }, function () { page++; load(); }));
      });
    }
    if (!deferLoad) load();
    return { node: node, load: load };
  }

  function recordRow(d) {
    return { id: d.id, org: d.org, x: d.data || {}, __props: { 'data-id': d.id } };
  }

  function historyTable(list, id) {
    var rows = (list || []).map(function (e) {
      var note = e.note;
      if (note && typeof note === 'object') {
        var by = noteBy(note);
        note = [by].concat(Object.keys(note).filter(function (k) { return k !== 'by' && k !== 'by_name'; }).map(function (k) {
          return note[k];
        })).filter(function (v) {
          return v != null && v !== '' && typeof v !== 'object';
        }).join(' · ');
      }
      return { on: e.on, actor: who(e), action: label('hist', e.action), note: note };
    });
    if (!rows.length) return h('p', { class: 'muted' }, tr('common.empty'));
    return table([
      { label: tr('act.on'), key: 'on' },
      { label: tr('act.action'), key: 'action' },
      { label: tr('act.actor'), key: 'actor' },
      { label: tr('common.note'), key: 'note' }
    ], rows, id ? { id: id } : null);
  }

  // Who did it, as people know them: the name recorded with the entry;
  // the kernel's own steps (an approval's outcome) as "the system".
  function who(e) {
    if (e.actor_name && e.actor_name !== 'system') return e.actor_name;
    if (!e.actor || e.actor === 'system') return tr('act.system');
    return e.actor;
  }

  // The approver of an outcome note, by name; never a bare user id.
  function noteBy(note) {
    if (note.by_name) return tr('act.by', { name: note.by_name });
    return '';
  }

  function progressBar(done, total) {
    var pct = total > 0 ? Math.min(100, Math.round(done / total * 100)) : 0;
    return h('span', { class: 'progress-cell' }, [
      h('span', { class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': String(total),
        'aria-valuenow': String(done) }, h('span', { class: 'progress-fill', style: 'width:' + pct + '%' })),
      ' ' + tr('st.progress', { done: done, total: total, pct: pct })
    ]);
  }

  // A button that POSTs and re-renders the page when it succeeds.
  function actionButton(id, text, path, body, cls, confirmText) {
    return h('button', { type: 'button', class: 'button ' + (cls || ''), id: id, onclick: function (ev) {
      var button = ev.target;
      (confirmText ? kit.confirm(confirmText) : Promise.resolve(true)).then(function (yes) {
        if (!yes) return;
        button.disabled = true;
        api('POST', path, body || {}).then(function (res) {
          button.disabled = false;
          if (!ok(res)) return flash(errorText(res), true);
          state.flashNext = { text: tr('common.done') };
          route();
        });
      });
    } }, text);
  }

  // ---- #/stocktakes ---------------------------------------------------------

  var ST_STATUSES = ['plan', 'in_progress', 'reconciling', 'completed', 'archived'];
  var ST_NEXT = { plan: 'start', in_progress: 'close', reconciling: 'complete', completed: 'archive' };
  var ST_RESULTS = ['matched', 'mismatch', 'surplus', 'loss'];
  var RESOLVE_FOR = { surplus: ['registration', 'accept'], loss: ['write_off', 'accept'], mismatch: ['change', 'accept'] };

  function stocktakesView(params, live) {
    var status = select(ST_STATUSES, 'st.status', params.get('status') || '', true);
    status.id = 'st-filter-status';
    var q = input('search', { id: 'st-q', value: params.get('q') || '', placeholder: tr('st.q') });
    var newPanel = h('div', { id: 'new-stocktake-panel', hidden: true });
    var list = pagedTable(function () {
      return 'stocktakes' + query({ status: status.value, q: q.value.trim() });
    }, [
      { label: tr('st.no'), render: function (r) { return h('a', { href: '#/stocktakes/' + encodeURIComponent(r.id) }, r.x.no || r.id); } },
      { label: tr('st.name'), render: function (r) { return r.x.name; } },
      { label: tr('field.org'), render: function (r) { return orgNode(r.org); } },
      { label: tr('st.planned'), render: function (r) { return (r.x.planned_from || '') + ' – ' + (r.x.planned_to || ''); } },
      { label: tr('st.groupBy'), render: function (r) { return label('st.group', r.x.group_by); } },
      { label: tr('st.bookCards'), num: true, render: function (r) { return r.x.book_cards; } },
      { label: tr('st.status'), render: function (r) { return badge('st', r.x.status, label('st.status', r.x.status)); } }
    ], { id: 'stocktakes-table' }, live, recordRow);
    setView([
      h('div', { class: 'head' }, [
        h('h1', null, tr('stocktakes.title')),
        h('div', { class: 'tools' }, [
          h('button', { type: 'button', class: 'button primary', id: 'new-stocktake', onclick: function () {
            newPanel.hidden = !newPanel.hidden;
            if (!newPanel.hidden) {
              newPanel.textContent = '';
              newPanel.appendChild(stocktakeForm(function () { newPanel.hidden = true; }));
              newPanel.querySelector('input').focus();
            }
          } }, tr('st.new')),
          h('a', { class: 'button', href: '#/scan' }, tr('nav.scan'))
        ])
      ]),
      newPanel,
      h('form', { class: 'filters', onsubmit: function (ev) { ev.preventDefault(); list.load(true); } }, [
        field('status', tr('st.status'), status),
        field('q', tr('st.no'), q),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary', id: 'st-search' }, tr('common.search')))
      ]),
      list.node
    ]);
    loadCategories();
  }

  function stocktakeForm(onCancel) {
    var category = h('select', null, categoryOptions('', false, false));
    loadCategories().then(function () {
      if (category.options.length <= 1) { category.textContent = ''; append(category, categoryOptions('', false, false)); }
    });
    var form = h('form', { id: 'stocktake-form', class: 'grid-form', novalidate: true }, [
      h('h2', { class: 'wide' }, tr('st.newTitle')),
      field('name', tr('st.name') + ' *', input('text', { maxlength: '100' }), true),
      field('planned_from', tr('st.plannedFrom') + ' *', input('date', { value: today() })),
      field('planned_to', tr('st.plannedTo') + ' *', input('date')),
      field('group_by', tr('st.groupBy'), select(['location', 'custodian'], 'st.group', 'location')),
      field('location', tr('st.scopeLocation'), input('text', { maxlength: '100' })),
      field('category', tr('st.scopeCategory'), category),
      h('p', { class: 'muted wide' }, tr('st.scopeHint')),
      formError(),
      h('div', { class: 'actions wide' }, [
        h('button', { type: 'submit', class: 'button primary', id: 'stocktake-submit' }, tr('st.create')),
        h('button', { type: 'button', class: 'button', onclick: onCancel }, tr('common.cancel'))
      ])
    ]);
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearErrors(form);
      var v = function (n) { return form.elements[n].value.trim(); };
      var required = ['name', 'planned_from', 'planned_to'];
      for (var i = 0; i < required.length; i++) {
        if (!v(required[i])) return setFieldError(form, required[i], tr('err.required'));
      }
      var body = { name: v('name'), planned_from: v('planned_from'), planned_to: v('planned_to'), group_by: v('group_by') };
      if (v('location')) body.location = v('location');
      if (v('category')) body.category = v('category');
      busy(form, true);
      api('POST', 'stocktakes', body).then(function (res) {
        busy(form, false);
        if (!ok(res)) return showError(form, res);
        navigateWithFlash('#/stocktakes/' + encodeURIComponent(res.body.id), tr('st.created', { no: res.body.data.no }));
      });
    });
    return form;
  }

  function stocktakeView(id, live) {
    loadingView();
    var base = 'stocktakes/' + encodeURIComponent(id);
    Promise.all([api('GET', base), api('GET', base + '/report'), loadCategories()]).then(function (all) {
      if (!live()) return;
      var res = all[0];
      if (!ok(res)) return setView([h('p', null, h('a', { href: '#/stocktakes' }, '← ' + tr('nav.stocktakes'))), errorBox(res)]);
      var doc = res.body.stocktake;
      var x = doc.data || {};
      var open = res.body.open_differences || 0;
      var report = ok(all[1]) ? all[1].body : null;
      var actions = [];
      var next = ST_NEXT[x.status];
      if (next) {
        actions.push(actionButton('st-' + next, tr('st.action.' + next), base + '/' + next, {},
          'primary', next === 'close' ? tr('st.confirmClose') : null));
      }
      if (x.status === 'in_progress') {
        actions.push(h('a', { class: 'button', id: 'st-scan', href: '#/scan?stocktake=' + encodeURIComponent(doc.id) }, tr('st.toScan')));
      }
      if (x.status === 'plan') {
        actions.push(h('button', { type: 'button', class: 'button danger', id: 'st-delete', onclick: function () {
          kit.confirm(tr('common.confirm')).then(function (yes) {
            if (!yes) return;
            api('DELETE', base).then(function (r) {
              if (!ok(r)) return flash(errorText(r), true);
              navigateWithFlash('#/stocktakes', tr('common.done'));
            });
          });
        } }, tr('st.delete')));
      }
      var nodes = [
        h('p', null, h('a', { href: '#/stocktakes' }, '← ' + tr('nav.stocktakes'))),
        h('div', { class: 'head' }, [
          h('h1', { id: 'st-title' }, [x.name, ' ', h('small', null, x.no)]),
          h('div', { class: 'tools' }, badge('st', x.status, label('st.status', x.status)))
        ]),
        actions.length ? h('div', { class: 'actions', id: 'st-actions' }, actions) : null,
        section(null, dl([
          [tr('st.status'), label('st.status', x.status), { id: 'st-status' }],
          [tr('field.org'), orgNode(doc.org)],
          [tr('st.planned'), (x.planned_from || '') + ' – ' + (x.planned_to || '')],
          [tr('st.groupBy'), label('st.group', x.group_by)],
          [tr('st.scopeLocation'), x.location],
          [tr('st.scopeCategory'), x.category ? categoryText(x.category) : null],
          [tr('st.bookCards'), x.book_cards],
          [tr('st.bookValue'), x.book_value != null ? money(x.book_value) : null],
          [tr('st.openDifferences'), String(open), { id: 'st-open' }],
          [tr('st.createdBy'), x.created_by_name || x.created_by],
          x.started_on ? [tr('st.startedOn'), x.started_on] : null,
          x.closed_on ? [tr('st.closedOn'), x.closed_on] : null,
          x.completed_on ? [tr('st.completedOn'), x.completed_on] : null
        ]))
      ];
      if (x.status === 'plan') {
        nodes.push(section(tr('st.tasks'), h('p', { class: 'muted', id: 'st-tasks' }, tr('st.tasksAfterStart'))));
      } else {
        nodes.push(section(tr('st.tasks'), tasksTable(doc, report), { id: 'st-tasks-panel' }));
        if (x.status === 'in_progress' || x.status === 'reconciling' || open > 0) {
          nodes.push(differencesPanel(doc, live));
        }
        nodes.push(stocktakeReport(doc, report));
      }
      nodes.push(section(tr('doc.history'), historyTable(x.history, 'st-history')));
      setView(nodes);
    });
  }

  function tasksTable(st, report) {
    var rows = ((report && report.tasks) || []).map(function (t) {
      var scanned = (t.matched || 0) + (t.mismatch || 0);
      t.scanned = scanned;
      t.__props = { 'data-task': t.task_id };
      return t;
    });
    if (!rows.length) return h('p', { class: 'muted', id: 'st-tasks' }, tr('common.empty'));
    // Paged: a district campaign has hundreds of tasks.
    return kit.pagedRows([
      { label: tr('st.taskNo'), render: function (r) {
        return h('a', { href: '#/stocktakes/' + encodeURIComponent(st.id) + '/tasks/' + encodeURIComponent(r.task_id) }, r.no);
      } },
      { label: tr('st.taskLabel'), render: function (r) { return r.label; } },
      { label: tr('field.org'), render: function (r) { return orgNode(r.org); } },
      { label: tr('st.status'), render: function (r) { return badge('task', r.status, label('st.task', r.status)); } },
      { label: tr('st.expected'), num: true, key: 'expected' },
      { label: tr('st.scanned'), num: true, key: 'scanned' },
      { label: tr('st.progressCol'), render: function (r) { return progressBar(r.scanned, r.expected || 0); } },
      { label: label('scan.result', 'surplus'), num: true, key: 'surplus' },
      { label: label('scan.result', 'loss'), num: true, key: 'loss' },
      { label: tr('st.matchRate'), num: true, render: function (r) { return percent(r.match_rate); } }
    ], rows, { id: 'st-tasks', money: money }, 10);
  }

  function differencesPanel(st, live) {
    var base = 'stocktakes/' + encodeURIComponent(st.id);
    var canResolve = st.data.status === 'in_progress' || st.data.status === 'reconciling';
    var result = select(['mismatch', 'surplus', 'loss'], 'scan.result', '', true);
    result.id = 'diff-result';
    var list = pagedTable(function () { return base + '/results' + query({ status: 'open', result: result.value }); }, [
      { label: tr('field.asset_no'), render: function (r) {
        return r.x.card_id ? h('a', { href: '#/cards/' + encodeURIComponent(r.x.card_id) }, r.x.asset_no || r.x.card_id) : (r.x.code || '—');
      } },
      { label: tr('field.name'), render: function (r) { return r.x.name; } },
      { label: tr('st.result'), render: function (r) { return badge('result', r.x.result, label('scan.result', r.x.result)); } },
      { label: tr('st.reason'), render: function (r) { return label('st.reason', r.x.reason); } },
      { label: tr('st.booked'), render: function (r) { return [r.x.book_location, r.x.book_custodian].filter(Boolean).join(' · '); } },
      { label: tr('st.found'), render: function (r) { return [r.x.location, r.x.custodian].filter(Boolean).join(' · '); } },
      { label: tr('field.original_value'), money: true, render: function (r) { return money(r.x.original_value); } },
      { label: '', render: function (r) {
        if (!canResolve) return '';
        var slot = h('div', { class: 'resolve-slot' });
        var button = h('button', { type: 'button', class: 'button resolve-open', onclick: function () {
          if (slot.firstChild) { slot.textContent = ''; return; }
          slot.appendChild(resolveForm(st, r));
        } }, tr('st.resolve'));
        return h('div', null, [button, slot]);
      } }
    ], { id: 'st-differences' }, live, function (d) {
      var r = recordRow(d);
      r.__props['data-result'] = r.x.result;
      return r;
    });
    return section(tr('st.differences'), [
      h('form', { class: 'filters', onsubmit: function (ev) { ev.preventDefault(); list.load(true); } }, [
        field('result', tr('st.result'), result),
        h('div', { class: 'actions' }, [
          h('button', { type: 'submit', class: 'button primary' }, tr('common.search')),
          exportButtons(function () { return base + '/results' + query({ status: 'open', result: result.value }); }, 'differences')
        ])
      ]),
      list.node
    ], { id: 'st-differences-panel' });
  }

  // How one difference is resolved: the fields each action needs.
  function resolveForm(st, r) {
    var x = r.x;
    var actions = RESOLVE_FOR[x.result] || ['accept'];
    var action = select(actions, 'st.resolveAction', actions[0]);
    action.id = 'f-action-' + r.id.replace(/\W/g, '-');
    var slot = h('div', { class: 'field-slot' });
    var form = h('form', { class: 'grid-form resolve-form', novalidate: true, 'data-result-id': r.id }, [
      field('action', tr('st.resolveWith'), action),
      slot,
      formError(),
      h('div', { class: 'actions wide' }, h('button', { type: 'submit', class: 'button primary resolve-submit' }, tr('st.resolveSubmit')))
    ]);
    function render() {
      slot.textContent = '';
      var a = action.value;
      if (a === 'registration') {
        var cat = h('select', null, categoryOptions('', false, false));
        append(slot, [
          field('card.name', tr('field.name') + ' *', input('text', { value: x.name || '' })),
          field('card.category', tr('field.category') + ' *', cat),
          field('card.acquired_on', tr('field.acquired_on') + ' *', input('date', { value: today() })),
          field('card.original_value_yuan', tr('field.original_value_yuan') + ' *', input('text', { inputmode: 'decimal' })),
          field('card.location', tr('field.location'), input('text', { value: x.location || '' }))
        ]);
      } else if (a === 'write_off') {
        slot.appendChild(field('reason', tr('form.reason'), h('textarea', { rows: '2' }), true));
      } else if (a === 'change') {
        append(slot, [
          field('changes.location', tr('field.location'), input('text', { value: x.location || '' })),
          field('changes.custodian', tr('field.custodian'), input('text', { value: x.custodian || '' })),
          field('reason', tr('form.reason'), h('textarea', { rows: '2' }), true)
        ]);
      } else {
        slot.appendChild(field('note', tr('st.acceptNote') + ' *', h('textarea', { rows: '2' }), true));
      }
      // The same form's fields get unique ids per row.
      slot.querySelectorAll('[id]').forEach(function (e) { e.id = e.id + '-' + r.id.replace(/\W/g, '-'); });
      slot.querySelectorAll('label[for]').forEach(function (l) { l.setAttribute('for', l.getAttribute('for') + '-' + r.id.replace(/\W/g, '-')); });
    }
    action.addEventListener('change', render);
    render();
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearErrors(form);
      var val = function (n) { var e = form.elements[n]; return e ? e.value.trim() : ''; };
      var a = action.value;
      var body = { action: a };
      if (a === 'registration') {
        var need = ['card.name', 'card.category', 'card.acquired_on', 'card.original_value_yuan'];
        for (var i = 0; i < need.length; i++) {
          if (!val(need[i])) return setFieldError(form, need[i], tr('err.required'));
        }
        if (yuanToFen(val('card.original_value_yuan')) == null) return setFieldError(form, 'card.original_value_yuan', tr('err.yuan'));
        body.card = { name: val('card.name'), category: val('card.category'), acquired_on: val('card.acquired_on'),
          original_value_yuan: val('card.original_value_yuan') };
        if (val('card.location')) body.card.location = val('card.location');
      } else if (a === 'write_off') {
        if (val('reason')) body.reason = val('reason');
      } else if (a === 'change') {
        var changes = {};
        if (val('changes.location')) changes.location = val('changes.location');
        if (val('changes.custodian')) changes.custodian = val('changes.custodian');
        if (Object.keys(changes).length) body.changes = changes;
        if (val('reason')) body.reason = val('reason');
      } else {
        if (!val('note')) return setFieldError(form, 'note', tr('err.required'));
        body.note = val('note');
      }
      busy(form, true);
      api('POST', 'stocktakes/' + encodeURIComponent(st.id) + '/results/' + encodeURIComponent(r.id) + '/resolve', body).then(function (res) {
        busy(form, false);
        if (!ok(res)) return showError(form, res);
        var rs = (res.body && res.body.data && res.body.data.resolution) || {};
        state.flashNext = { text: tr('st.resolved', { what: rs.document_no || rs.asset_no || label('st.resolveAction', a) }) };
        route();
      });
    });
    return form;
  }

  function stocktakeReport(st, report) {
    var base = 'stocktakes/' + encodeURIComponent(st.id);
    if (!report) return section(tr('st.report'), h('p', { class: 'muted' }, tr('err.notAvailable')), { id: 'st-report' });
    var s = report.summary || {};
    var rows = ST_RESULTS.map(function (k) {
      var v = s[k] || {};
      return { key: k, label: label('scan.result', k), count: v.count || 0, value: v.value || 0, __props: { 'data-result': k } };
    });
    return section(tr('st.report'), [
      h('div', { class: 'actions' }, exportButtons(function () { return base + '/report'; }, 'stocktake-' + (st.data.no || 'report'))),
      dl([
        [tr('st.bookCards'), s.book_cards],
        [tr('st.bookValue'), money(s.book_value)],
        [tr('st.notYetFound'), s.not_yet_found],
        [tr('st.matchRate'), percent(s.match_rate), { id: 'st-match-rate' }],
        [tr('st.foundRate'), percent(s.found_rate)]
      ]),
      reportChart(rows.map(function (r) { return { label: r.label, values: [r.count] }; }), [tr('col.count')], { unit: tr('unit.cards') }),
      table([
        { label: tr('st.result'), key: 'label' },
        { label: tr('col.count'), num: true, key: 'count' },
        { label: tr('col.original_value'), money: true, key: 'value' }
      ], rows, { id: 'st-summary' })
    ], { id: 'st-report' });
  }

  function taskView(stId, taskId, live) {
    loadingView();
    var base = 'stocktakes/' + encodeURIComponent(stId);
    Promise.all([api('GET', base), api('GET', base + '/tasks/' + encodeURIComponent(taskId))]).then(function (all) {
      if (!live()) return;
      var back = h('p', null, h('a', { href: '#/stocktakes/' + encodeURIComponent(stId) }, '← ' + tr('st.backToCampaign')));
      if (!ok(all[0])) return setView([back, errorBox(all[0])]);
      if (!ok(all[1])) return setView([back, errorBox(all[1])]);
      var st = all[0].body.stocktake;
      var b = all[1].body;
      var t = (b.task && b.task.data) || {};
      var actions = [];
      if (st.data.status === 'in_progress' && t.status === 'open') {
        actions.push(h('a', { class: 'button primary', id: 'task-scan', href: '#/scan?stocktake=' + encodeURIComponent(stId) + '&task=' + encodeURIComponent(taskId) }, tr('st.toScan')));
        actions.push(actionButton('task-close', tr('st.closeTask'), base + '/tasks/' + encodeURIComponent(taskId) + '/close', {}, '', tr('st.confirmCloseTask')));
      }
      var cards = (b.cards || []).map(function (c) {
        c.__props = { 'data-card': c.id, 'data-scan': c.scan ? c.scan.result : 'none' };
        return c;
      });
      var surplus = (b.surplus || []).map(function (d) { return d.data || {}; });
      setView([
        back,
        h('div', { class: 'head' }, [
          h('h1', { id: 'task-title' }, [t.label || t.key, ' ', h('small', null, [st.data.no, ' ', t.no].join(' '))]),
          h('div', { class: 'tools' }, badge('task', t.status, label('st.task', t.status)))
        ]),
        actions.length ? h('div', { class: 'actions', id: 'task-actions' }, actions) : null,
        section(null, dl([
          [tr('st.name'), st.data.name],
          [tr('field.org'), orgNode(b.task && b.task.org)],
          [tr('st.groupBy'), label('st.group', t.group_by)],
          [tr('st.expected'), t.expected],
          [tr('st.remaining'), b.remaining, { id: 'task-remaining' }],
          [tr('field.original_value'), money(t.book_value)]
        ])),
        section(tr('st.taskCards'), cards.length ? table([
          { label: tr('field.asset_no'), render: function (c) { return h('a', { href: '#/cards/' + encodeURIComponent(c.id) }, c.asset_no); } },
          { label: tr('field.name'), key: 'name' },
          { label: tr('field.category'), render: function (c) { return categoryText(c.category); } },
          { label: tr('field.location'), key: 'location' },
          { label: tr('field.custodian'), key: 'custodian' },
          { label: tr('field.original_value'), money: true, key: 'original_value' },
          { label: tr('st.scanResult'), render: function (c) {
            if (!c.scan) return badge('result', 'none', tr('st.notScanned'));
            var text = label('scan.result', c.scan.result);
            if (c.scan.status === 'open') text += ' · ' + tr('st.toResolve');
            if (c.scan.status === 'resolved') text += ' · ' + tr('st.isResolved');
            return badge('result', c.scan.result, text);
          } }
        ], cards, { id: 'task-cards' }) : h('p', { class: 'muted' }, tr('common.empty'))),
        surplus.length ? section(tr('st.surplusHere'), table([
          { label: tr('st.code'), key: 'code' },
          { label: tr('st.reason'), render: function (r) { return label('st.reason', r.reason); } },
          { label: tr('st.found'), render: function (r) { return [r.location, r.custodian].filter(Boolean).join(' · '); } },
          { label: tr('st.on'), key: 'on' }
        ], surplus, { id: 'task-surplus' })) : null
      ]);
    });
  }

  // ---- #/warehouse ----------------------------------------------------------

  var ITEM_STATUSES = ['in_stock', 'reserved', 'on_loan', 'refurbishing', 'out'];
  var WH_CONDITIONS = ['new', 'good', 'fair', 'poor'];
  var WH_SOURCES = ['idle', 'over_standard', 'event', 'temporary_body', 'restructuring', 'donated', 'confiscated', 'other'];
  var ORDER_KINDS = ['intake', 'reallocation', 'loan', 'lease', 'disposal', 'donation', 'withdrawal'];
  var OUT_KINDS = ['reallocation', 'loan', 'lease', 'disposal', 'donation', 'withdrawal'];
  var ORDER_STATUSES = ['requested', 'reserved', 'in_approval', 'on_loan', 'completed', 'rejected', 'cancelled'];
  var WH_DISPOSAL_METHODS = ['sale', 'swap', 'scrap', 'write_off'];
  var DEMAND_STATUSES = ['open', 'fulfilled', 'closed'];

  function needsApproval(kind) { return kind === 'reallocation' || kind === 'disposal' || kind === 'donation'; }

  function whNav(active) {
    return h('nav', { class: 'subnav', id: 'wh-nav', 'aria-label': tr('nav.warehouse') }, [
      ['catalogue', '#/warehouse'], ['orders', '#/warehouse/orders'], ['demands', '#/warehouse/demands'], ['report', '#/warehouse/report']
    ].map(function (p) {
      return h('a', { href: p[1], 'data-tab': p[0], class: p[0] === active ? 'active' : null,
        'aria-current': p[0] === active ? 'page' : null }, tr('wh.tab.' + p[0]));
    }));
  }

  function warehouseRoute(r, live) {
    var p = r.parts;
    if (p[1] === 'items' && p[2]) return itemView(p[2], r.params, live);
    if (p[1] === 'orders') return p[2] ? orderView(p[2], live) : ordersView(live);
    if (p[1] === 'demands') return p[2] ? demandView(p[2], live) : demandsView(live);
    if (p[1] === 'report') return whReportView(live);
    return catalogueView(r.params, live);
  }

  function loadWarehouses() {
    return api('GET', 'warehouse/warehouses?limit=100').then(function (res) {
      return ok(res) && res.body ? res.body.records || [] : [];
    });
  }

  function isOverdue(x) {
    return x.status === 'on_loan' && (x.overdue === true || (!!x.due_on && x.due_on < today()));
  }

  function dueCell(x) {
    if (!x.due_on) return '—';
    if (!isOverdue(x)) return x.due_on;
    return h('span', { class: 'overdue-mark' }, [x.due_on, ' ', badge('due', 'overdue', tr('wh.overdue'))]);
  }

  // A receiving unit: any active unit of the directory, found by typing
  // part of its name or code (the plugin refuses one the keeper does not
  // reach, in words of its own).
  function unitChooser(exclude, value) {
    return kit.orgPicker({ name: 'to_org', exclude: exclude, value: value || '', valueName: value && state.orgNames ? state.orgNames[value] : null });
  }

  // The catalogue: every unit under the warehouse's administration sees it.
  function catalogueView(params, live) {
    var q = input('search', { id: 'wh-q', value: params.get('q') || '', placeholder: tr('wh.q') });
    var category = h('select', { id: 'wh-category' });
    var status = select(ITEM_STATUSES, 'wh.item', params.get('status') || '', true);
    status.id = 'wh-status';
    var warehouse = h('select', { id: 'wh-warehouse' }, h('option', { value: '' }, tr('common.all')));
    var path = function () {
      return 'warehouse/items' + query({ q: q.value.trim(), category: category.value, status: status.value, warehouse_id: warehouse.value });
    };
    var list = pagedTable(path, [
      { label: tr('wh.itemNo'), render: function (r) { return h('a', { href: '#/warehouse/items/' + encodeURIComponent(r.id) }, r.x.no || r.id); } },
      { label: tr('field.asset_no'), render: function (r) { return r.x.asset_no; } },
      { label: tr('field.name'), render: function (r) { return r.x.name; } },
      { label: tr('field.category'), render: function (r) { return categoryText(r.x.category); } },
      { label: tr('wh.warehouse'), render: function (r) { return r.x.warehouse_name; } },
      { label: tr('wh.bin'), render: function (r) { return r.x.bin; } },
      { label: tr('wh.condition'), render: function (r) { return label('wh.cond', r.x.condition); } },
      { label: tr('wh.owner'), render: function (r) { return orgNode(r.x.card_org); } },
      { label: tr('field.original_value'), money: true, render: function (r) { return money(r.x.original_value); } },
      { label: tr('field.net_value'), money: true, render: function (r) { return money(r.x.net_value); } },
      { label: tr('wh.inOn'), render: function (r) { return r.x.in_on; } },
      { label: tr('wh.dueOn'), render: function (r) { return dueCell(r.x); } },
      { label: tr('st.status'), render: function (r) { return badge('item', r.x.status, label('wh.item', r.x.status)); } }
    ], { id: 'wh-items' }, live, function (d) {
      var r = recordRow(d);
      r.__props['data-asset-no'] = r.x.asset_no;
      if (isOverdue(r.x)) r.__props.class = 'overdue';
      return r;
    }, true);
    setView([
      h('div', { class: 'head' }, [h('h1', null, tr('warehouse.title')), h('div', { class: 'tools' }, exportButtons(path, 'warehouse-items'))]),
      whNav('catalogue'),
      h('form', { class: 'filters', id: 'wh-filter', onsubmit: function (ev) { ev.preventDefault(); list.load(true); } }, [
        field('q', tr('common.search'), q),
        field('category', tr('field.category'), category),
        field('status', tr('st.status'), status),
        field('warehouse_id', tr('wh.warehouse'), warehouse),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary', id: 'wh-search' }, tr('common.search')))
      ]),
      list.node
    ]);
    loadCategories().then(function () {
      if (!live()) return;
      append(category, categoryOptions(params.get('category') || '', true, false));
      list.load();
    });
    loadWarehouses().then(function (list_) {
      if (!live()) return;
      list_.forEach(function (w) {
        warehouse.appendChild(h('option', { value: w.id }, w.data.name + ' · ' + label('wh.kind', w.data.kind)));
      });
    });
  }

  function itemView(id, params, live) {
    loadingView();
    Promise.all([api('GET', 'warehouse/items/' + encodeURIComponent(id)), loadCategories()]).then(function (all) {
      if (!live()) return;
      var res = all[0];
      var back = h('p', null, h('a', { href: '#/warehouse' }, '← ' + tr('wh.tab.catalogue')));
      if (!ok(res)) return setView([back, errorBox(res)]);
      var doc = res.body.item;
      var x = doc.data || {};
      var orders = (res.body.orders || []).map(recordRow);
      var formSlot = h('div', { id: 'item-order-slot' });
      if (x.status === 'in_stock') formSlot.appendChild(orderForm(doc, params));
      var keeperActions = [];
      if (isKeeper() && x.status === 'in_stock') {
        keeperActions.push(actionButton('item-refurbish', tr('wh.refurbish'), 'warehouse/items/' + encodeURIComponent(doc.id) + '/refurbish', {}));
      }
      if (isKeeper() && x.status === 'refurbishing') {
        keeperActions.push(actionButton('item-ready', tr('wh.ready'), 'warehouse/items/' + encodeURIComponent(doc.id) + '/ready', {}, 'primary'));
      }
      setView([
        back,
        h('div', { class: 'head' }, [
          h('h1', { id: 'item-title' }, [x.name, ' ', h('small', null, x.no)]),
          h('div', { class: 'tools' }, badge('item', x.status, label('wh.item', x.status)))
        ]),
        keeperActions.length ? h('div', { class: 'actions' }, keeperActions) : null,
        h('div', { class: 'columns' }, [
          section(tr('card.basic'), dl([
            [tr('wh.itemNo'), x.no],
            [tr('field.asset_no'), x.card_id ? h('a', { href: '#/cards/' + encodeURIComponent(x.card_id) }, x.asset_no) : x.asset_no],
            [tr('field.name'), x.name],
            [tr('field.category'), categoryText(x.category)],
            [tr('field.spec'), x.spec],
            [tr('field.brand'), x.brand],
            [tr('field.quantity'), x.quantity],
            [tr('wh.owner'), orgNode(x.card_org)],
            [tr('field.original_value'), money(x.original_value)],
            [tr('field.net_value'), money(x.net_value)]
          ])),
          section(tr('wh.storage'), dl([
            [tr('wh.warehouse'), x.warehouse_name],
            [tr('wh.kindLabel'), label('wh.kind', x.warehouse_kind)],
            [tr('wh.bin'), x.bin],
            [tr('wh.condition'), label('wh.cond', x.condition)],
            [tr('wh.source'), label('wh.src', x.source)],
            [tr('wh.inOn'), x.in_on],
            [tr('wh.availableFrom'), x.available_from],
            [tr('st.status'), label('wh.item', x.status), { id: 'item-status' }],
            x.due_on ? [tr('wh.dueOn'), dueCell(x)] : null
          ]))
        ]),
        x.status === 'in_stock' ? section(tr('wh.newOrder'), formSlot, { id: 'item-order-panel' }) : null,
        section(tr('wh.orders'), orders.length ? ordersTable(orders, 'item-orders') : h('p', { class: 'muted' }, tr('common.empty'))),
        section(tr('doc.history'), historyTable(x.history, 'item-history'))
      ]);
    });
  }

  // An outflow order for one item; the fields follow the kind.
  function orderForm(item, params) {
    var x = item.data;
    var keeper = isKeeper();
    var kind = select(OUT_KINDS, 'wh.kind', params.get('demand') ? 'reallocation' : (keeper ? 'reallocation' : 'loan'));
    var slot = h('div', { class: 'field-slot' });
    var submitNow = input('checkbox', { checked: true, name: 'submit_now', id: 'f-order-submit-now' });
    var submitLabel = h('label', { class: 'check wide' }, [submitNow, ' ', tr('wh.submitNow')]);
    var form = h('form', { class: 'grid-form', id: 'order-form', novalidate: true }, [
      h('p', { class: 'muted wide' }, tr(keeper ? 'wh.orderHintKeeper' : 'wh.orderHintUnit')),
      field('kind', tr('wh.orderKind'), kind),
      slot,
      field('reason', tr('form.reason') + ' *', h('textarea', { rows: '2' }), true),
      submitLabel,
      formError(),
      h('div', { class: 'actions wide' }, h('button', { type: 'submit', class: 'button primary', id: 'order-submit' }, tr('wh.createOrder')))
    ]);
    function render() {
      slot.textContent = '';
      var k = kind.value;
      submitLabel.hidden = !(keeper && needsApproval(k));
      if (k === 'reallocation') {
        slot.appendChild(field('to_org', tr('wh.toOrg') + (keeper ? ' *' : ''), unitChooser([x.card_org], params.get('to_org'))));
        if (params.get('demand')) slot.appendChild(field('demand_id', tr('wh.demand'), input('text', { value: params.get('demand'), readonly: true })));
      } else if (k === 'loan' || k === 'lease') {
        if (k === 'loan') slot.appendChild(field('to_org', tr('wh.toOrg'), unitChooser([], '')));
        slot.appendChild(field('counterparty', tr('form.counterparty') + (k === 'lease' ? ' *' : ''), input('text')));
        slot.appendChild(field('due_on', tr('wh.dueOn') + ' *', input('date')));
        if (k === 'lease') slot.appendChild(field('income_yuan', tr('form.income_yuan'), input('text', { inputmode: 'decimal' })));
      } else if (k === 'disposal') {
        slot.appendChild(field('method', tr('form.method'), select(WH_DISPOSAL_METHODS, 'method', 'scrap')));
        slot.appendChild(field('appraisal', tr('wh.appraisal'), input('text')));
      } else if (k === 'donation') {
        slot.appendChild(field('counterparty', tr('wh.donee') + ' *', input('text')));
      }
    }
    kind.addEventListener('change', render);
    render();
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearErrors(form);
      var val = function (n) { var e = form.elements[n]; return e ? e.value.trim() : ''; };
      var k = kind.value;
      var body = { kind: k, item_ids: [item.id], reason: val('reason') };
      var required = ['reason'];
      ['to_org', 'counterparty', 'due_on', 'method', 'appraisal', 'demand_id'].forEach(function (n) {
        if (val(n)) body[n] = val(n);
      });
      if (k === 'loan' || k === 'lease') required.push('due_on');
      if (k === 'lease' || k === 'donation') required.push('counterparty');
      if (k === 'reallocation' && keeper) required.push('to_org');
      if (val('income_yuan')) {
        if (yuanToFen(val('income_yuan')) == null) return setFieldError(form, 'income_yuan', tr('err.yuan'));
        body.income_yuan = val('income_yuan');
      }
      for (var i = 0; i < required.length; i++) {
        if (!val(required[i])) return setFieldError(form, required[i], tr('err.required'));
      }
      if (keeper && needsApproval(k) && submitNow.checked) body.submit = true;
      busy(form, true);
      api('POST', 'warehouse/orders', body).then(function (res) {
        busy(form, false);
        if (!ok(res)) return showError(form, res);
        navigateWithFlash('#/warehouse/orders/' + encodeURIComponent(res.body.id), tr('wh.orderCreated', { no: res.body.data.no }));
      });
    });
    return form;
  }

  // The transitions an order allows now, as buttons; reject and return ask
  // for a few words first, in a small form beside them.
  function orderActions(d) {
    var x = d.data || d.x || {};
    var base = 'warehouse/orders/' + encodeURIComponent(d.id) + '/';
    var keeper = isKeeper();
    var box = h('div', { class: 'order-actions', 'data-order': d.id });
    var formSlot = h('div', { class: 'order-action-form' });
    var buttons = h('div', { class: 'actions' });
    var add = function (action, cls, body) {
      buttons.appendChild(actionButton(null, tr('wh.act.' + action), base + action, body || {}, (cls || '') + ' act-' + action));
    };
    var withForm = function (action, build) {
      buttons.appendChild(h('button', { type: 'button', class: 'button act-' + action, onclick: function () {
        formSlot.textContent = '';
        formSlot.appendChild(build());
      } }, tr('wh.act.' + action)));
    };
    var smallForm = function (action, fields, collect) {
      var form = h('form', { class: 'inline-form order-form-' + action, novalidate: true }, fields.concat([
        h('button', { type: 'submit', class: 'button primary' }, tr('wh.act.' + action)),
        h('span', { class: 'form-error', role: 'alert' })
      ]));
      form.addEventListener('submit', function (ev) {
        ev.preventDefault();
        var body = collect(form);
        if (!body) return;
        busy(form, true);
        api('POST', base + action, body).then(function (res) {
          busy(form, false);
          if (!ok(res)) { form.querySelector('.form-error').textContent = errorText(res); return; }
          state.flashNext = { text: tr('common.done') };
          route();
        });
      });
      return form;
    };
    var s = x.status;
    if (keeper && s === 'requested' && x.kind !== 'intake') {
      add('accept', 'primary');
      withForm('reject', function () {
        var note = input('text', { name: 'note', placeholder: tr('wh.rejectNote'), 'aria-label': tr('wh.rejectNote') });
        return smallForm('reject', [note], function () {
          if (!note.value.trim()) { note.setAttribute('aria-invalid', 'true'); note.focus(); return null; }
          return { note: note.value.trim() };
        });
      });
    }
    if (keeper && s === 'reserved' && needsApproval(x.kind)) add('submit', 'primary');
    if (keeper && s === 'reserved' && (x.kind === 'loan' || x.kind === 'lease' || x.kind === 'withdrawal')) add('issue', 'primary');
    if (keeper && s === 'on_loan') {
      withForm('return', function () {
        var cond = select(WH_CONDITIONS, 'wh.cond', 'good');
        cond.name = 'condition';
        cond.setAttribute('aria-label', tr('wh.condition'));
        var refurbish = input('checkbox', { name: 'refurbish' });
        var note = input('text', { name: 'note', placeholder: tr('common.note'), 'aria-label': tr('common.note') });
        return smallForm('return', [cond, h('label', { class: 'check' }, [refurbish, ' ', tr('wh.toRefurbish')]), note], function () {
          var b = { condition: cond.value, refurbish: refurbish.checked };
          if (note.value.trim()) b.note = note.value.trim();
          return b;
        });
      });
    }
    if (s === 'requested' || s === 'reserved' || (keeper && s === 'in_approval')) add('cancel', 'danger');
    if (!buttons.childNodes.length) return '—';
    box.appendChild(buttons);
    box.appendChild(formSlot);
    return box;
  }

  function ordersTable(rows, id, withActions) {
    var cols = [
      { label: tr('wh.orderNo'), render: function (r) { return h('a', { href: '#/warehouse/orders/' + encodeURIComponent(r.id) }, r.x.no || r.id); } },
      { label: tr('wh.orderKind'), render: function (r) { return label('wh.kind', r.x.kind); } },
      { label: tr('st.status'), render: function (r) { return badge('order', r.x.status, label('wh.order', r.x.status)); } },
      { label: tr('wh.items'), render: function (r) {
        return (r.x.items || []).map(function (i) { return [i.asset_no, i.name].filter(Boolean).join(' '); }).join('；');
      } },
      { label: tr('wh.party'), render: function (r) {
        return r.x.kind === 'intake' ? orgName(r.org) : (r.x.to_org ? orgNode(r.x.to_org) : (r.x.counterparty || '—'));
      } },
      { label: tr('wh.warehouse'), render: function (r) { return r.x.warehouse_name; } },
      { label: tr('wh.dueOn'), render: function (r) { return dueCell(r.x); } },
      { label: tr('docs.total'), money: true, render: function (r) { return money(r.x.total_value); } },
      { label: tr('docs.createdOn'), render: function (r) { return r.x.created_on; } }
    ];
    if (withActions) cols.push({ label: '', render: function (r) { return orderActions(r); } });
    return table(cols, rows, { id: id });
  }

  function orderRow(d) {
    var r = recordRow(d);
    r.__props['data-kind'] = r.x.kind;
    r.__props['data-status'] = r.x.status;
    if (isOverdue(r.x)) r.__props.class = 'overdue';
    return r;
  }

  // Keepers: intakes waiting for inspection, then every order with what it allows.
  function ordersView(live) {
    var keeper = isKeeper();
    var pending = h('div', { id: 'intake-pending' }, h('p', { class: 'muted' }, tr('loading')));
    var kind = select(ORDER_KINDS, 'wh.kind', '', true);
    kind.id = 'orders-kind';
    var status = select(ORDER_STATUSES, 'wh.order', '', true);
    status.id = 'orders-status';
    var overdue = input('checkbox', { id: 'orders-overdue' });
    var list = pagedTable(function () {
      return 'warehouse/orders' + query({ kind: kind.value, status: status.value, overdue: overdue.checked ? 'true' : '' });
    }, function (rows) { return ordersTable(rows, 'wh-orders', true); }, { id: 'wh-orders' }, live, orderRow);
    setView([
      h('div', { class: 'head' }, h('h1', null, tr('wh.ordersTitle'))),
      whNav('orders'),
      keeper ? section(tr('wh.pendingIntake'), pending, { id: 'intake-panel' }) : null,
      section(tr('wh.orders'), [
        h('form', { class: 'filters', onsubmit: function (ev) { ev.preventDefault(); list.load(true); } }, [
          field('kind', tr('wh.orderKind'), kind),
          field('status', tr('st.status'), status),
          h('label', { class: 'check' }, [overdue, ' ', tr('wh.overdueOnly')]),
          h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary', id: 'orders-search' }, tr('common.search')))
        ]),
        list.node
      ])
    ]);
    if (!keeper) return;
    Promise.all([api('GET', 'warehouse/orders?kind=intake&status=requested&limit=50'), loadWarehouses()]).then(function (all) {
      if (!live()) return;
      pending.textContent = '';
      var res = all[0];
      if (!ok(res)) return pending.appendChild(errorBox(res));
      var zones = {};
      all[1].forEach(function (w) { zones[w.id] = w.data.zones || []; });
      var records = (res.body && res.body.records) || [];
      if (!records.length) return pending.appendChild(h('p', { class: 'muted empty', id: 'intake-empty' }, tr('wh.noPendingIntake')));
      records.forEach(function (d) { pending.appendChild(intakeInspection(d, zones[d.data.warehouse_id] || [])); });
    });
  }

  function intakeInspection(d, zones) {
    var x = d.data || {};
    var item = (x.items || [])[0] || {};
    var bin = zones.length
      ? h('select', null, [h('option', { value: '' }, '—')].concat(zones.map(function (z) { return h('option', { value: z }, z); })))
      : input('text', { maxlength: '50' });
    var cond = select(WH_CONDITIONS, 'wh.cond', x.condition || 'good');
    var refurbish = input('checkbox', { name: 'refurbish' });
    var note = input('text', { maxlength: '200' });
    var suffix = '-' + d.id.replace(/\W/g, '-');
    bin.id = 'f-bin' + suffix;
    cond.id = 'f-condition' + suffix;
    note.id = 'f-note' + suffix;
    var form = h('form', { class: 'grid-form intake-inspection', novalidate: true, 'data-order': d.id, 'data-asset-no': item.asset_no }, [
      h('h3', { class: 'wide' }, [x.no, ' · ', item.asset_no, ' ', item.name]),
      h('p', { class: 'muted wide' }, tr('wh.intakeFrom', {
        org: orgName(d.org), warehouse: x.warehouse_name || '', value: money(x.total_value),
        condition: label('wh.cond', x.condition), source: label('wh.src', x.source)
      })),
      field('bin', tr('wh.bin'), bin),
      field('condition', tr('wh.condition'), cond),
      field('note', tr('wh.inspectionNote'), note, true),
      h('label', { class: 'check wide' }, [refurbish, ' ', tr('wh.toRefurbish')]),
      formError(),
      h('div', { class: 'actions wide' }, [
        h('button', { type: 'button', class: 'button primary inspect-accept', onclick: function () { inspect(true); } }, tr('wh.inspectAccept')),
        h('button', { type: 'button', class: 'button danger inspect-refuse', onclick: function () { inspect(false); } }, tr('wh.inspectRefuse'))
      ])
    ]);
    function inspect(accept) {
      clearErrors(form);
      var body = { accept: accept };
      if (note.value.trim()) body.note = note.value.trim();
      if (accept) {
        body.condition = cond.value;
        if (bin.value.trim()) body.bin = bin.value.trim();
        if (refurbish.checked) body.refurbish = true;
      } else if (!body.note) {
        return setFieldError(form, 'note', tr('wh.refuseNeedsNote'));
      }
      busy(form, true);
      api('POST', 'warehouse/orders/' + encodeURIComponent(d.id) + '/inspect', body).then(function (res) {
        busy(form, false);
        if (!ok(res)) return showError(form, res);
        state.flashNext = { text: tr(accept ? 'wh.inspected' : 'wh.refused', { no: item.asset_no || x.no }) };
        route();
      });
    }
    return form;
  }

  function orderView(id, live) {
    loadingView();
    api('GET', 'warehouse/orders/' + encodeURIComponent(id)).then(function (res) {
      if (!live()) return;
      var back = h('p', null, h('a', { href: '#/warehouse/orders' }, '← ' + tr('wh.tab.orders')));
      if (!ok(res)) return setView([back, errorBox(res)]);
      var d = res.body.order;
      var x = d.data || {};
      var items = (x.items || []).map(function (i) { return i; });
      setView([
        back,
        h('div', { class: 'head' }, [
          h('h1', { id: 'order-title' }, [tr('wh.orderTitle', { kind: label('wh.kind', x.kind), no: x.no }), unitTag(d.org, 'order-unit')]),
          h('div', { class: 'tools' }, [badge('order', x.status, label('wh.order', x.status)),
            isOverdue(x) ? badge('due', 'overdue', tr('wh.overdue')) : null])
        ]),
        h('div', { id: 'order-actions' }, orderActions(d)),
        section(null, dl([
          [tr('wh.orderKind'), label('wh.kind', x.kind)],
          [tr('st.status'), label('wh.order', x.status), { id: 'order-status' }],
          [tr('field.org'), orgNode(d.org)],
          [tr('wh.warehouse'), x.warehouse_name],
          x.to_org ? [tr('wh.toOrg'), orgNode(x.to_org)] : null,
          x.counterparty ? [tr('form.counterparty'), x.counterparty] : null,
          x.due_on ? [tr('wh.dueOn'), dueCell(x)] : null,
          x.method ? [tr('form.method'), label('method', x.method)] : null,
          x.condition ? [tr('wh.condition'), label('wh.cond', x.condition)] : null,
          [tr('docs.total'), money(x.total_value)],
          x.saving ? [tr('wh.saving'), money(x.saving)] : null,
          x.reason ? [tr('form.reason'), x.reason] : null,
          x.inspection_note ? [tr('wh.inspectionNote'), x.inspection_note] : null,
          [tr('docs.createdBy'), x.created_by],
          [tr('docs.createdOn'), x.created_on]
        ])),
        section(tr('wh.items'), table([
          { label: tr('wh.itemNo'), render: function (i) {
            var itemId = i.item_id || (x.item_ids || [])[0];
            return itemId ? h('a', { href: '#/warehouse/items/' + encodeURIComponent(itemId) }, i.no || itemId) : '—';
          } },
          { label: tr('field.asset_no'), render: function (i) { return h('a', { href: '#/cards/' + encodeURIComponent(i.card_id) }, i.asset_no); } },
          { label: tr('field.name'), key: 'name' },
          { label: tr('field.category'), render: function (i) { return categoryText(i.category); } },
          { label: tr('field.original_value'), money: true, key: 'original_value' }
        ], items, { id: 'order-items' })),
        section(tr('doc.history'), historyTable(x.history, 'order-history')),
        section(tr('doc.approvals'), approvalPanel(res.body.approvals || [], 'order-approval'))
      ]);
    });
  }

  function demandsView(live) {
    var status = select(DEMAND_STATUSES, 'wh.demandStatus', 'open', true);
    status.id = 'demands-status';
    var newPanel = h('div', { id: 'new-demand-panel', hidden: true });
    var list = pagedTable(function () { return 'warehouse/demands' + query({ status: status.value }); }, [
      { label: tr('field.category'), render: function (r) { return h('a', { href: '#/warehouse/demands/' + encodeURIComponent(r.id) }, categoryText(r.x.category)); } },
      { label: tr('wh.demandDescription'), render: function (r) { return r.x.description; } },
      { label: tr('field.org'), render: function (r) { return orgNode(r.org); } },
      { label: tr('field.quantity'), num: true, render: function (r) { return (r.x.fulfilled || 0) + ' / ' + r.x.quantity; } },
      { label: tr('wh.neededBy'), render: function (r) { return r.x.needed_by; } },
      { label: tr('wh.unitBudget'), money: true, render: function (r) { return money(r.x.unit_budget); } },
      { label: tr('st.status'), render: function (r) { return badge('demand', r.x.status, label('wh.demandStatus', r.x.status)); } },
      { label: tr('docs.createdOn'), render: function (r) { return r.x.created_on; } }
    ], { id: 'wh-demands' }, live, recordRow, true);
    setView([
      h('div', { class: 'head' }, [h('h1', null, tr('wh.demandsTitle')), h('div', { class: 'tools' },
        h('button', { type: 'button', class: 'button primary', id: 'new-demand', onclick: function () {
          newPanel.hidden = !newPanel.hidden;
          if (!newPanel.hidden) { newPanel.textContent = ''; newPanel.appendChild(demandForm(function () { newPanel.hidden = true; })); }
        } }, tr('wh.newDemand')))]),
      whNav('demands'),
      newPanel,
      h('form', { class: 'filters', onsubmit: function (ev) { ev.preventDefault(); list.load(true); } }, [
        field('status', tr('st.status'), status),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary' }, tr('common.search')))
      ]),
      list.node
    ]);
    loadCategories().then(function () { if (live()) list.load(); });
  }

  function demandForm(onCancel) {
    var category = h('select', null, categoryOptions('', false, false));
    var form = h('form', { id: 'demand-form', class: 'grid-form', novalidate: true }, [
      h('h2', { class: 'wide' }, tr('wh.newDemand')),
      field('category', tr('field.category') + ' *', category),
      field('quantity', tr('field.quantity') + ' *', input('number', { min: '1', max: '1000', step: '1', value: '1' })),
      field('needed_by', tr('wh.neededBy'), input('date')),
      field('unit_budget_yuan', tr('wh.unitBudgetYuan'), input('text', { inputmode: 'decimal' })),
      field('description', tr('wh.demandDescription') + ' *', h('textarea', { rows: '2', maxlength: '500' }), true),
      formError(),
      h('div', { class: 'actions wide' }, [
        h('button', { type: 'submit', class: 'button primary', id: 'demand-submit' }, tr('wh.postDemand')),
        h('button', { type: 'button', class: 'button', onclick: onCancel }, tr('common.cancel'))
      ])
    ]);
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearErrors(form);
      var val = function (n) { return form.elements[n].value.trim(); };
      var required = ['category', 'quantity', 'description'];
      for (var i = 0; i < required.length; i++) {
        if (!val(required[i])) return setFieldError(form, required[i], tr('err.required'));
      }
      var body = { category: val('category'), quantity: parseInt(val('quantity'), 10) || 0, description: val('description') };
      if (val('needed_by')) body.needed_by = val('needed_by');
      if (val('unit_budget_yuan')) {
        if (yuanToFen(val('unit_budget_yuan')) == null) return setFieldError(form, 'unit_budget_yuan', tr('err.yuan'));
        body.unit_budget_yuan = val('unit_budget_yuan');
      }
      busy(form, true);
      api('POST', 'warehouse/demands', body).then(function (res) {
        busy(form, false);
        if (!ok(res)) return showError(form, res);
        navigateWithFlash('#/warehouse/demands/' + encodeURIComponent(res.body.id), tr('wh.demandPosted'));
      });
    });
    return form;
  }

  function demandView(id, live) {
    loadingView();
    Promise.all([api('GET', 'warehouse/demands/' + encodeURIComponent(id)), loadCategories()]).then(function (all) {
      if (!live()) return;
      var res = all[0];
      var back = h('p', null, h('a', { href: '#/warehouse/demands' }, '← ' + tr('wh.tab.demands')));
      if (!ok(res)) return setView([back, errorBox(res)]);
      var d = res.body.demand;
      var x = d.data || {};
      var matches = res.body.matching_items || [];
      var orders = (res.body.orders || []).map(orderRow);
      setView([
        back,
        h('div', { class: 'head' }, [
          h('h1', { id: 'demand-title' }, tr('wh.demandTitle', { category: categoryText(x.category) })),
          h('div', { class: 'tools' }, badge('demand', x.status, label('wh.demandStatus', x.status)))
        ]),
        x.status === 'open' ? h('div', { class: 'actions' }, actionButton('demand-close', tr('wh.closeDemand'),
          'warehouse/demands/' + encodeURIComponent(d.id) + '/close', {}, 'danger', tr('common.confirm'))) : null,
        section(null, dl([
          [tr('field.org'), orgNode(d.org)],
          [tr('field.category'), categoryText(x.category)],
          [tr('field.quantity'), (x.fulfilled || 0) + ' / ' + x.quantity],
          [tr('wh.neededBy'), x.needed_by],
          [tr('wh.unitBudget'), money(x.unit_budget)],
          [tr('wh.demandDescription'), x.description],
          [tr('docs.createdBy'), x.created_by],
          [tr('docs.createdOn'), x.created_on]
        ])),
        section(tr('wh.matching'), matches.length ? table([
          { label: tr('wh.itemNo'), render: function (i) { return h('a', { href: '#/warehouse/items/' + encodeURIComponent(i.id) }, i.no); } },
          { label: tr('field.name'), key: 'name' },
          { label: tr('field.category'), render: function (i) { return categoryText(i.category); } },
          { label: tr('wh.condition'), render: function (i) { return label('wh.cond', i.condition); } },
          { label: tr('wh.warehouse'), key: 'warehouse_name' },
          { label: tr('field.original_value'), money: true, key: 'original_value' },
          { label: '', render: function (i) {
            return x.status === 'open' ? h('a', { class: 'button', href: '#/warehouse/items/' + encodeURIComponent(i.id) +
              query({ demand: d.id, to_org: d.org }) }, tr('wh.allocate')) : '';
          } }
        ], matches, { id: 'demand-matches' }) : h('p', { class: 'muted', id: 'demand-matches' }, tr('wh.noMatches'))),
        section(tr('wh.orders'), orders.length ? ordersTable(orders, 'demand-orders') : h('p', { class: 'muted' }, tr('common.empty'))),
        section(tr('doc.history'), historyTable(x.history))
      ]);
    });
  }

  function whReportView(live) {
    var from = input('month', { name: 'from', value: monthsBack(11) });
    var to = input('month', { name: 'to', value: thisMonth() });
    var warehouse = h('select', { name: 'warehouse_id' }, h('option', { value: '' }, tr('common.all')));
    loadWarehouses().then(function (list) {
      list.forEach(function (w) { warehouse.appendChild(h('option', { value: w.id }, w.data.name)); });
    });
    setView([
      h('h1', null, tr('wh.reportTitle')),
      whNav('report'),
      reportPanel('wh-report', 'wh.throughput', [
        field('from', tr('reports.fromMonth'), from),
        field('to', tr('reports.toMonth'), to),
        field('warehouse_id', tr('wh.warehouse'), warehouse)
      ], function () {
        return 'warehouse/report' + query({ from: from.value, to: to.value, warehouse_id: warehouse.value });
      }, function (b) {
        var t = b.totals || {};
        var months = (b.months || []).map(function (m) {
          var out = 0;
          Object.keys(m.items_out || {}).forEach(function (k) { out += m.items_out[k] || 0; });
          var row = Object.assign({}, m, { items_out_total: out });
          OUT_KINDS.forEach(function (k) { row['out_' + k] = (m.items_out || {})[k] || 0; });
          return row;
        });
        var nodes = [dl([
          [tr('wh.itemsIn'), t.items_in],
          [tr('wh.itemsOut'), t.items_out],
          [tr('wh.valueIn'), money(t.value_in)],
          [tr('wh.valueOut'), money(t.value_out)],
          [tr('wh.redeployed'), money(t.redeployed)],
          [tr('wh.saving'), money(t.saving), { id: 'wh-saving' }]
        ])];
        if (months.length) {
          nodes.push(reportChart(months.map(function (m) { return { label: m.month, values: [m.value_in, m.value_out, m.saving] }; }),
            [tr('wh.valueIn'), tr('wh.valueOut'), tr('wh.saving')], { money: true, vertical: true }));
          var cols = [{ label: tr('reports.month'), key: 'month' }, { label: tr('wh.itemsIn'), num: true, key: 'items_in' },
            { label: tr('wh.valueIn'), money: true, key: 'value_in' }];
          OUT_KINDS.forEach(function (k) { cols.push({ label: label('wh.kind', k), num: true, key: 'out_' + k }); });
          cols.push({ label: tr('wh.valueOut'), money: true, key: 'value_out' },
            { label: tr('wh.redeployed'), money: true, key: 'redeployed' },
            { label: tr('wh.saving'), money: true, key: 'saving' });
          nodes.push(table(cols, months, { id: 'wh-report-table' }));
        } else {
          nodes.push(h('p', { class: 'muted' }, tr('common.empty')));
        }
        var stock = (b.stock || []).map(function (s_) { return { status: label('wh.item', s_.status), count: s_.count, original_value: s_.original_value }; });
        nodes.push(h('h3', null, tr('wh.stockNow')));
        nodes.push(stock.length ? table([
          { label: tr('st.status'), key: 'status' },
          { label: tr('col.count'), num: true, key: 'count' },
          { label: tr('col.original_value'), money: true, key: 'original_value' }
        ], stock, { id: 'wh-stock' }) : h('p', { class: 'muted' }, tr('common.empty')));
        return nodes;
      }, live)
    ]);
  }

  // A booked idle card offered to a warehouse; the keeper inspects it.
  function intakeForm(doc) {
    var warehouse = h('select', null, h('option', { value: '' }, tr('loading')));
    loadWarehouses().then(function (list) {
      warehouse.textContent = '';
      var active = list.filter(function (w) { return w.data.active !== false; });
      warehouse.appendChild(h('option', { value: '' }, active.length ? '—' : tr('wh.noWarehouse')));
      active.forEach(function (w) {
        warehouse.appendChild(h('option', { value: w.id }, w.data.name + ' · ' + label('wh.kind', w.data.kind) + ' · ' + orgName(w.org)));
      });
    });
    var form = h('form', { class: 'grid-form', id: 'intake-form', novalidate: true }, [
      h('h3', { class: 'wide' }, tr('wh.offerTitle')),
      h('p', { class: 'muted wide' }, tr('wh.offerHint')),
      field('warehouse_id', tr('wh.warehouse') + ' *', warehouse),
      field('condition', tr('wh.condition') + ' *', select(WH_CONDITIONS, 'wh.cond', 'good')),
      field('source', tr('wh.source'), select(WH_SOURCES, 'wh.src', 'idle')),
      field('available_from', tr('wh.availableFrom'), input('date')),
      field('note', tr('common.note'), h('textarea', { rows: '2' }), true),
      formError(),
      h('div', { class: 'actions wide' }, [
        h('button', { type: 'submit', class: 'button primary', id: 'intake-submit' }, tr('wh.offer')),
        h('button', { type: 'button', class: 'button', onclick: function () { form.remove(); } }, tr('common.cancel'))
      ])
    ]);
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearErrors(form);
      var val = function (n) { return form.elements[n].value.trim(); };
      if (!val('warehouse_id')) return setFieldError(form, 'warehouse_id', tr('err.required'));
      var body = { card_id: doc.id, warehouse_id: val('warehouse_id'), condition: val('condition'), source: val('source') };
      if (val('available_from')) body.available_from = val('available_from');
      if (val('note')) body.note = val('note');
      busy(form, true);
      api('POST', 'warehouse/intake', body).then(function (res) {
        busy(form, false);
        if (!ok(res)) return showError(form, res);
        state.flashNext = { text: tr('wh.offered', { no: res.body.data.no }) };
        route();
      });
    });
    return form;
  }

  // ---- the configuration plan form (#/documents, kind plan) -----------------

  // Lines are named lines[i].field, as the API names its errors, so a
  // refused line shows its message next to the right input.
  function planForm(onCancel) {
    var year = input('number', { min: '2000', max: '2999', step: '1', value: String(new Date().getFullYear() + 1) });
    var headcount = input('number', { min: '1', step: '1' });
    var lines = h('div', { id: 'plan-lines', class: 'plan-lines wide' });
    var submitNow = input('checkbox', { checked: true, name: 'submit_now', id: 'f-plan-submit-now' });
    var form = h('form', { id: 'plan-form', class: 'grid-form', novalidate: true }, [
      h('h2', { class: 'wide' }, tr('plan.title')),
      h('p', { class: 'muted wide' }, tr('plan.hint')),
      field('year', tr('plan.year') + ' *', year),
      field('headcount', tr('plan.headcount') + ' *', headcount),
      field('lines', tr('plan.lines'), h('output', { class: 'muted' }, ''), true),
      lines,
      h('div', { class: 'actions wide' }, h('button', { type: 'button', class: 'button', id: 'plan-add-line', onclick: function () {
        addLine();
      } }, tr('plan.addLine'))),
      field('note', tr('common.note'), h('textarea', { rows: '2' }), true),
      h('label', { class: 'check wide' }, [submitNow, ' ', tr('common.submitNow')]),
      formError(),
      h('div', { class: 'actions wide' }, [
        h('button', { type: 'submit', class: 'button primary', id: 'plan-submit' }, tr('plan.create')),
        h('button', { type: 'button', class: 'button', onclick: onCancel }, tr('common.cancel'))
      ])
    ]);

    function addLine() {
      var i = lines.children.length;
      var n = function (f) { return 'lines[' + i + '].' + f; };
      var category = h('select', null, categoryOptions('', false, false));
      var check = h('div', { class: 'plan-check wide', 'aria-live': 'polite' });
      var justLabel = tr('plan.justification');
      var line = h('fieldset', { class: 'plan-line', 'data-line': String(i) }, [
        h('legend', null, tr('plan.line', { n: i + 1 })),
        field(n('category'), tr('field.category') + ' *', category),
        field(n('quantity'), tr('field.quantity') + ' *', input('number', { min: '1', step: '1', value: '1' })),
        field(n('unit_price_yuan'), tr('plan.unitPrice') + ' *', input('text', { inputmode: 'decimal', placeholder: '0.00' })),
        field(n('reason'), tr('plan.reason'), input('text', { maxlength: '200' })),
        check,
        field(n('justification'), justLabel, h('textarea', { rows: '2' }), true),
        h('div', { class: 'actions wide' }, h('button', { type: 'button', class: 'button danger plan-remove', onclick: function () {
          if (lines.children.length <= 1) return;
          line.remove();
          renumber();
        } }, tr('plan.removeLine')))
      ]);
      var asked = 0;
      category.addEventListener('change', function () {
        var code = category.value;
        var mine = ++asked;
        check.textContent = '';
        var jl = line.querySelector('.field[data-field$=".justification"] label');
        jl.textContent = justLabel;
        if (!code) return;
        check.appendChild(h('p', { class: 'muted' }, tr('loading')));
        api('GET', 'plan-check' + query({ category: code })).then(function (res) {
          if (mine !== asked) return;
          check.textContent = '';
          if (!ok(res)) return check.appendChild(errorBox(res));
          var b = res.body || {};
          var st = b.standard;
          check.appendChild(h('p', { class: 'plan-standard' }, st
            ? tr('plan.standard', {
              price: st.max_unit_price > 0 ? money(st.max_unit_price) : tr('plan.noLimit'),
              perPerson: st.max_per_person > 0 ? String(st.max_per_person) : tr('plan.noLimit'),
              years: st.min_use_years || '—'
            })
            : tr('plan.noStandard')));
          if (b.warehouse_available > 0) {
            jl.textContent = justLabel + ' *';
            check.appendChild(h('div', { class: 'notice warn plan-stock', role: 'note' }, [
              h('p', null, tr('plan.stock', { count: b.warehouse_available })),
              h('ul', null, (b.warehouse_items || []).map(function (it) {
                return h('li', null, [
                  h('a', { href: '#/warehouse/items/' + encodeURIComponent(it.id) }, it.no), ' ',
                  it.name, ' · ', label('wh.cond', it.condition), ' · ', it.warehouse_name || '', ' · ', money(it.original_value)
                ]);
              }))
            ]));
          }
        });
      });
      lines.appendChild(line);
      return line;
    }

    function renumber() {
      Array.prototype.forEach.call(lines.children, function (line, j) {
        line.setAttribute('data-line', String(j));
        line.querySelector('legend').textContent = tr('plan.line', { n: j + 1 });
        line.querySelectorAll('[name], [data-field], [data-error-for]').forEach(function (e) {
          ['name', 'data-field', 'data-error-for'].forEach(function (a) {
            var v = e.getAttribute(a);
            if (v) e.setAttribute(a, v.replace(/^lines\[\d+\]/, 'lines[' + j + ']'));
          });
        });
        line.querySelectorAll('[id], label[for]').forEach(function (e) {
          if (e.id) e.id = e.id.replace(/^f-lines-\d+-/, 'f-lines-' + j + '-');
          var f = e.getAttribute('for');
          if (f) e.setAttribute('for', f.replace(/^f-lines-\d+-/, 'f-lines-' + j + '-'));
        });
      });
    }

    addLine();
    loadCategories().then(function () {
      lines.querySelectorAll('select').forEach(function (sel) {
        if (sel.options.length <= 1) { sel.textContent = ''; append(sel, categoryOptions('', false, false)); }
      });
    });

    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearErrors(form);
      var val = function (n) { var e = form.elements[n]; return e ? e.value.trim() : ''; };
      if (!val('year')) return setFieldError(form, 'year', tr('err.required'));
      if (!val('headcount')) return setFieldError(form, 'headcount', tr('err.required'));
      var body = { kind: 'plan', year: parseInt(val('year'), 10) || 0, headcount: parseInt(val('headcount'), 10) || 0,
        lines: [], submit: submitNow.checked };
      if (val('note')) body.note = val('note');
      for (var i = 0; i < lines.children.length; i++) {
        var n = function (f) { return 'lines[' + i + '].' + f; };
        var required = [n('category'), n('quantity'), n('unit_price_yuan')];
        for (var j = 0; j < required.length; j++) {
          if (!val(required[j])) return setFieldError(form, required[j], tr('err.required'));
        }
        if (yuanToFen(val(n('unit_price_yuan'))) == null) return setFieldError(form, n('unit_price_yuan'), tr('err.yuan'));
        body.lines.push({
          category: val(n('category')),
          quantity: parseInt(val(n('quantity')), 10) || 0,
          unit_price_yuan: val(n('unit_price_yuan')),
          reason: val(n('reason')),
          justification: val(n('justification'))
        });
      }
      busy(form, true);
      api('POST', 'documents', body).then(function (res) {
        busy(form, false);
        if (!ok(res)) return showError(form, res);
        navigateWithFlash('#/documents/' + encodeURIComponent(res.body.id), tr('form.created', { no: res.body.data.no }));
      });
    });
    return form;
  }

  // ---- language and start-up ------------------------------------------------

  function applyStatic() {
    state.lang = kit.lang();
    kit.applyTexts(document);
  }

  // The portal's menu and language switch are the page's: it has neither
  // of its own, and the portal reloads it in the language chosen there.
  function start() {
    kit.start({ plugin: 'assets', texts: true }).then(function (me) {
      applyStatic();
      if (!me) {
        setView(errorBox({ status: 401, body: null }));
        return;
      }
      state.me = me;
      return loadOrgs().then(function () {
        window.addEventListener('hashchange', route);
        route();
      });
    });
  }

  start();
})();
