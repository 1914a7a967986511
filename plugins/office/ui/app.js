// 协同办公: the office plugin's pages on the UI kit — outgoing documents
// with their red-header preview, approvals and marked revisions; the
// incoming box; notices; supervision; search; to-dos. Every text comes
// from i18n/{lang}.json or the kit's; the API is /api/v1/p/office/….
import * as kit from '/ui/kit/kit.js';

(function () {
  'use strict';

  var h = kit.h;
  var tr = kit.tr;
  var PAGE = 50;

  // ---- small helpers ---------------------------------------------------------

  function view() { return document.getElementById('view'); }

  function show(children) {
    var v = view();
    v.textContent = '';
    kit.append(v, children);
  }

  function failed(res) { show(h('p', { class: 'form-error', id: 'load-error' }, kit.errorText(res))); }

  // A stored record's fields (the API answers {id, org, revision, data}).
  function data(r) { return (r && r.data) || {}; }

  // A status given by code in an error's params shows by its label.
  function labelParams(res) {
    var e = res && res.body && res.body.error;
    if (e && e.params && typeof e.params.status === 'string') {
      var code = e.params.status;
      var names = e.code === 'incoming_state' ? ['in_status'] : ['out_status', 'in_status'];
      for (var i = 0; i < names.length; i++) {
        var text = term(names[i], code);
        if (text !== code) { e.params.status = text; break; }
      }
    }
    return res;
  }

  function api(method, path, body) {
    return kit.api(method, path, body).then(labelParams);
  }

  var term = kit.term;
  var codes = kit.terms;

  function choose(name, selected, withAll) {
    var sel = h('select', null, withAll ? [h('option', { value: '' }, tr('common.all'))] : []);
    codes(name).forEach(function (c) {
      sel.appendChild(h('option', { value: c, selected: c === selected }, term(name, c)));
    });
    return sel;
  }

  function badge(name, code) {
    return h('span', { class: 'badge', 'data-status': code }, term(name, code));
  }

  function column(key, render, extra) {
    var c = { key: key, label: tr('field.' + key), render: render };
    Object.keys(extra || {}).forEach(function (k) { c[k] = extra[k]; });
    return c;
  }

  function enc(id) { return encodeURIComponent(id); }

  // Seconds or milliseconds since the epoch, or a date text, for people.
  function when(v) {
    if (v == null || v === '') return '—';
    if (typeof v === 'number') {
      var ms = v < 1e11 ? v * 1000 : v;
      try { return new Date(ms).toLocaleString(kit.lang(), { hour12: false }); } catch (e) { return String(v); }
    }
    return String(v).replace('T', ' ').slice(0, 16);
  }

  // `2026-12-02` as the document prints it (2026年12月2日).
  function docDate(text) {
    var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(text || '');
    if (!m) return '';
    return tr('preview.date', { y: m[1], m: Number(m[2]), d: Number(m[3]) });
  }

  function today() { return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10); }

  function ctx() { return kit.context() || {}; }
  function me() { var u = ctx().user || {}; return u.user_id || u.id || ''; }
  function myOrg() { return kit.actingOrg() || (ctx().user || {}).org_id || ctx().home_org || ''; }

  // Whether the caller holds a role that grants `perm` (the manifest's
  // permissions); the server decides in the end, this only hides forms.
  var GRANTS = {
    'office.clerk': ['org-admin', 'office.clerk'],
    'office.instruct': ['org-admin', 'office.signer']
  };
  function can(perm) {
    if (ctx().is_platform_admin) return true;
    var roles = (ctx().bindings || []).map(function (b) { return b.role; });
    return (GRANTS[perm] || []).some(function (r) { return roles.indexOf(r) >= 0; });
  }

  function list(text) {
    return String(text || '').split(/[,，、\s]+/).map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function gridForm(id, fields, button, extra) {
    return h('form', { class: 'grid-form', id: id, novalidate: true }, fields.concat([
      kit.formError(),
      h('div', { class: 'actions' }, [h('button', { type: 'submit', class: 'button primary', id: id + '-submit' }, button)].concat(extra || []))
    ]));
  }

  // ---- outgoing documents (发文) ------------------------------------------------

  function outgoing(parts, params, live) {
    if (parts[1] === 'new') return outgoingDoc(null, live);
    if (parts[1]) return outgoingDoc(parts[1], live);
    var status = params.get('status') || '';
    var docType = params.get('doc_type') || '';
    var q = params.get('q') || '';
    var sort = params.get('sort') || '-updated-at';
    var statusSel = choose('out_status', status, true);
    var typeSel = choose('doc_type', docType, true);
    var box = kit.input('search', { value: q, id: 'outgoing-q', placeholder: tr('outgoing.searchHint') });
    var filters = h('form', { class: 'filters', id: 'outgoing-filters' }, [
      kit.field('status', tr('field.status'), statusSel),
      kit.field('doc_type', tr('field.doc_type'), typeSel),
      kit.field('q', tr('field.q'), box),
      h('div', { class: 'actions' }, [h('button', { type: 'submit', class: 'button' }, tr('common.search'))])
    ]);
    function filterQuery(extra) {
      var p = { status: statusSel.value, doc_type: typeSel.value, q: box.value.trim(), sort: sort };
      Object.keys(extra || {}).forEach(function (k) { p[k] = extra[k]; });
      return p;
    }
    filters.addEventListener('submit', function (ev) {
      ev.preventDefault();
      location.hash = '#/outgoing' + kit.query(filterQuery());
    });
    var exportsBox = h('div', { class: 'exports' }, ['csv', 'xlsx'].map(function (format) {
      return h('button', { type: 'button', class: 'button', id: 'export-' + format, onclick: function () {
        kit.download('outgoing' + kit.query({ status: status, doc_type: docType, q: q, sort: sort, format: format }), 'outgoing.' + format)
          .then(function (res) { if (!kit.ok(res)) listBox.insertBefore(h('p', { class: 'form-error' }, kit.errorText(res)), listBox.firstChild); });
      } }, tr(format === 'csv' ? 'common.exportCsv' : 'common.exportXlsx'));
    }));
    var listBox = h('div', { id: 'outgoing-list-box' });
    var desc = sort.charAt(0) === '-';
    var sortKey = desc ? sort.slice(1) : sort;
    var cursors = [];
    function load(cursor, page) {
      return api('GET', 'outgoing' + kit.query({ status: status, doc_type: docType, q: q, sort: sort, limit: PAGE, cursor: cursor })).then(function (res) {
        if (!live()) return;
        listBox.textContent = '';
        if (!kit.ok(res)) return kit.append(listBox, h('p', { class: 'form-error' }, kit.errorText(res)));
        kit.append(listBox, [
          kit.table([
            column('no', function (r) { return data(r).no || h('span', { class: 'muted' }, tr('outgoing.noPending')); }, { sort: 'no' }),
            column('title', function (r) { return h('a', { href: '#/outgoing/' + enc(r.id), 'data-id': r.id }, data(r).title || '—'); }, { sort: 'title' }),
            column('doc_type', function (r) { return term('doc_type', data(r).doc_type); }),
            column('urgency', function (r) { return term('urgency', data(r).urgency); }),
            column('drafter', function (r) { return data(r).drafter_name; }),
            column('status', function (r) { return badge('out_status', data(r).status); }),
            column('updated_at', function (r) { return when(r.updated_at); }, { sort: 'updated-at' })
          ], res.body.records || [], {
            id: 'outgoing-list', empty: true,
            sort: { key: sortKey, desc: desc },
            onSort: function (key, d) { location.hash = '#/outgoing' + kit.query(filterQuery({ sort: (d ? '-' : '') + key })); }
          }),
          kit.cursorPager(res.body, cursors, page, load)
        ]);
      });
    }
    show([
      h('div', { class: 'head' }, [
        h('h1', null, tr('outgoing.title')),
        h('div', { class: 'tools' }, [
          exportsBox,
          h('a', { class: 'button primary', id: 'outgoing-new', href: '#/outgoing/new' }, tr('outgoing.new'))
        ])
      ]),
      filters, listBox
    ]);
    return load('', 1);
  }

  // The drafting form's fields, in the order GB/T 9704 prints them.
  var OUT_FIELDS = [
    ['doc_type', 'select'], ['urgency', 'select'], ['copy_no', 'text'], ['publicity', 'select'],
    ['organ_mark', 'text', true], ['organ_code', 'text'], ['signer', 'text'],
    ['title', 'text', true], ['main_recipients', 'text', true], ['body', 'body', true],
    ['attachments_note', 'area', true], ['issuing_organ', 'text'], ['printing_organ', 'text'],
    ['notes', 'text', true], ['cc', 'text', true], ['distribute_to', 'orgs', true]
  ];

  function outgoingDoc(id, live) {
    var loads = id
      ? Promise.all([api('GET', 'outgoing/' + enc(id)), api('GET', 'outgoing/' + enc(id) + '/revisions')])
      : Promise.resolve([{ status: 200, body: { document: null, approvals: [] } }, null]);
    return loads.then(function (r) {
      if (!live()) return;
      if (!kit.ok(r[0])) return failed(r[0]);
      renderOutgoing(id, r[0].body, r[1], live);
    });
  }

  function renderOutgoing(id, body, revRes, live) {
    var doc = body.document;
    var d = doc ? doc.data : { doc_type: 'notice', urgency: 'normal', publicity: 'not_public', status: 'draft', distribute_to: [] };
    var status = d.status || 'draft';
    var editable = !doc || status === 'draft';
    var controls = {};
    var fields = OUT_FIELDS.map(function (f) {
      var name = f[0];
      var c;
      if (f[1] === 'select') c = choose(name, d[name]);
      else if (f[1] === 'body') c = h('textarea', { rows: '18', class: 'body-text', value: d.body || '', placeholder: tr('outgoing.bodyHint') });
      else if (f[1] === 'area') c = h('textarea', { rows: '2', value: d[name] || '' });
      else if (f[1] === 'orgs') c = kit.orgsPicker(name, d.distribute_to, editable);
      else c = kit.input('text', { value: d[name] || '', maxlength: name === 'title' ? 200 : name === 'copy_no' ? 6 : null, inputmode: name === 'copy_no' ? 'numeric' : null });
      if (!editable && c.tagName) c.disabled = true;
      controls[name] = c;
      return kit.field(name, tr('field.' + name), c, f[2]);
    });
    var saveState = h('span', { class: 'muted', id: 'save-state', role: 'status' },
      doc ? tr('outgoing.revision', { revision: doc.revision }) : tr('outgoing.unsaved'));
    var buttons = [];
    if (editable) {
      buttons.push(h('button', { type: 'submit', class: 'button', id: 'outgoing-save' }, tr('outgoing.save')));
      buttons.push(h('button', { type: 'button', class: 'button primary', id: 'outgoing-submit', onclick: submitIt }, tr('outgoing.submit')));
    }
    // The drafter takes his document back while it is in review.
    if (doc && status === 'reviewing' && d.drafter === me()) {
      buttons.push(h('button', { type: 'button', class: 'button', id: 'outgoing-withdraw', onclick: withdrawIt }, tr('outgoing.withdraw')));
    }
    var form = h('form', { class: 'grid-form', id: 'outgoing-form', novalidate: true }, fields.concat([
      kit.formError(),
      h('div', { class: 'actions' }, buttons.concat([saveState]))
    ]));
    var dirty = !doc;

    function input() {
      var out = { classification: 'none', attachments: d.attachments || [] };
      OUT_FIELDS.forEach(function (f) {
        var name = f[0];
        out[name] = f[1] === 'orgs' ? controls[name].ids() : controls[name].value;
      });
      return out;
    }
    function reload(newId) {
      if (newId && newId !== id) location.hash = '#/outgoing/' + enc(newId);
      else outgoingDoc(id, live);
    }
    function save() {
      if (!doc) return api('POST', 'outgoing', input());
      var b = input();
      b.revision = doc.revision;
      return api('PUT', 'outgoing/' + enc(id), b);
    }
    form.addEventListener('input', function () { dirty = true; preview.replaceWith(preview = redhead(previewData())); });
    form.addEventListener('change', function () { dirty = true; preview.replaceWith(preview = redhead(previewData())); });
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      kit.clearErrors(form);
      kit.busy(form, true);
      save().then(function (res) {
        kit.busy(form, false);
        if (!kit.ok(res)) return kit.showError(form, res);
        reload(res.body.id);
      });
    });
    function submitIt() {
      kit.clearErrors(form);
      kit.busy(form, true);
      var saved = dirty ? save() : Promise.resolve({ status: 200, body: doc });
      saved.then(function (res) {
        if (!kit.ok(res)) { kit.busy(form, false); return kit.showError(form, res); }
        var target = res.body.id;
        return api('POST', 'outgoing/' + enc(target) + '/submit').then(function (sub) {
          kit.busy(form, false);
          if (!kit.ok(sub)) {
            kit.showError(form, sub);
            if (target !== id) location.hash = '#/outgoing/' + enc(target);
            return;
          }
          reload(target);
        });
      });
    }
    function withdrawIt() {
      kit.confirm(tr('outgoing.confirmWithdraw', { title: d.title })).then(function (yes) {
        if (!yes) return;
        kit.clearErrors(form);
        kit.busy(form, true);
        api('POST', 'outgoing/' + enc(id) + '/withdraw').then(function (res) {
          kit.busy(form, false);
          if (!kit.ok(res)) return kit.showError(form, res);
          // The kernel's outcome puts the draft back; read it again shortly.
          setTimeout(function () { if (live()) reload(); }, 400);
        });
      });
    }
    function previewData() {
      var p = {};
      Object.keys(d).forEach(function (k) { p[k] = d[k]; });
      if (editable) {
        var now = input();
        Object.keys(now).forEach(function (k) { p[k] = now[k]; });
      }
      return p;
    }

    var preview = redhead(previewData());
    var printButton = h('button', { type: 'button', class: 'button', id: 'print-redhead', onclick: function () { kit.print(preview); } }, tr('preview.print'));
    var panel = h('div', { id: 'approval' });
    var title = doc ? (d.title || tr('outgoing.untitled')) : tr('outgoing.new');
    var parts = [
      h('div', { class: 'head' }, [
        h('h1', { id: 'doc-title' }, [title, ' ', doc ? badge('out_status', status) : null]),
        h('div', { class: 'tools' }, [h('a', { class: 'button', href: '#/outgoing' }, tr('outgoing.back'))])
      ]),
      doc && d.no ? h('p', { id: 'doc-no' }, [tr('field.no') + '：', h('strong', null, d.no)]) : null,
      // A draft is written beside its preview; a document past drafting
      // reads from the preview first (on a phone: above its elements).
      h('div', { class: 'doc-layout' }, (function () {
        var drafting = h('section', null, [h('h2', null, editable ? tr('outgoing.drafting') : tr('outgoing.elements')), form]);
        var shown = h('section', null, [
          h('div', { class: 'head' }, [h('h2', null, tr('preview.title')), printButton]),
          preview
        ]);
        return editable ? [drafting, shown] : [shown, drafting];
      })())
    ];
    if (doc) {
      parts.push(h('h2', null, tr('outgoing.approvals')), panel);
      if ((d.deliveries || []).length) parts.push(deliveries(d.deliveries));
      if (status === 'issued' && can('office.clerk')) parts.push(archiveForm('outgoing/' + enc(id) + '/archive', function () { reload(); }));
      if (d.archive) parts.push(archived(d.archive));
      parts.push(revisions(id, revRes));
      parts.push(kit.recordTimeline(d.timeline, { id: 'timeline' }));
    }
    show(parts);
    if (doc) {
      kit.approvalPanel(panel, { approvals: body.approvals || [], withdraw: false, onDone: function () {
        setTimeout(function () { if (live()) reload(); }, 400);
      } });
    }
  }

  // The red-header preview: the document as GB/T 9704 lays it out.
  function redhead(d) {
    var upward = d.doc_type === 'report' || d.doc_type === 'request';
    var no = d.no ? h('span', { class: 'rh-no-text' }, d.no) : h('span', { class: 'rh-no-text muted' }, tr('preview.noPending'));
    var paragraphs = String(d.body || '').split(/\n+/).map(function (s) { return s.trim(); }).filter(Boolean);
    var issued = d.issued_on ? docDate(d.issued_on) : tr('preview.datePending');
    var printed = d.printed_on ? docDate(d.printed_on) : tr('preview.datePending');
    var top = [];
    if (d.copy_no) top.push(h('span', { id: 'rh-copy' }, d.copy_no));
    if (d.urgency && d.urgency !== 'normal') top.push(h('span', { id: 'rh-urgency' }, term('urgency', d.urgency)));
    var record = [];
    if (d.cc) record.push(h('div', { id: 'rh-cc' }, tr('preview.cc', { cc: d.cc })));
    record.push(h('div', { class: 'rh-printed' }, [
      h('span', { id: 'rh-printing-organ' }, d.printing_organ || ''),
      h('span', { id: 'rh-printed-on' }, tr('preview.printed', { date: printed }))
    ]));
    return h('article', { class: 'redhead', id: 'redhead', 'data-status': d.status || 'draft' }, [
      h('div', { class: 'rh-top' }, top),
      h('div', { class: 'rh-mark', id: 'rh-mark' }, d.organ_mark || tr('preview.markPending')),
      h('div', { class: 'rh-no' + (upward ? ' upward' : ''), id: 'rh-no' }, [
        no,
        upward ? h('span', { id: 'rh-signer' }, tr('preview.signer', { signer: d.signer || '' })) : null
      ]),
      h('hr', { class: 'rh-line' }),
      h('h2', { class: 'rh-title', id: 'rh-title' }, d.title || ''),
      d.main_recipients ? h('p', { id: 'rh-recipients' }, tr('preview.recipients', { to: d.main_recipients })) : null,
      h('div', { class: 'rh-body', id: 'rh-body' }, paragraphs.map(function (p) { return h('p', null, p); })),
      d.attachments_note ? h('p', { class: 'rh-attachments', id: 'rh-attachments' }, tr('preview.attachments', { note: d.attachments_note })) : null,
      h('div', { class: 'rh-sign', id: 'rh-sign' }, [
        h('p', null, d.issuing_organ || ''),
        h('p', { id: 'rh-issued-on' }, issued)
      ]),
      d.notes ? h('p', { class: 'rh-notes', id: 'rh-notes' }, tr('preview.notes', { notes: d.notes })) : null,
      h('div', { class: 'rh-record', id: 'rh-record' }, record)
    ]);
  }

  function deliveries(list) {
    return h('section', { id: 'deliveries' }, [
      h('h2', null, tr('outgoing.deliveries')),
      kit.table([
        column('org', function (x) { return x.org_name || kit.orgLabel(x.org); }),
        column('incoming_no', function (x) { return x.no; })
      ], list)
    ]);
  }

  function archived(a) {
    return h('section', { id: 'archived' }, [
      h('h2', null, tr('archive.title')),
      h('dl', { class: 'fields' }, [
        h('dt', null, tr('field.archive_no')), h('dd', { id: 'archive-no' }, a.archive_no),
        h('dt', null, tr('field.category')), h('dd', null, a.category),
        h('dt', null, tr('field.retention')), h('dd', null, term('retention', a.retention)),
        h('dt', null, tr('field.archived_on')), h('dd', null, a.archived_on)
      ])
    ]);
  }

  function archiveForm(path, done) {
    var category = kit.input('text', { required: true, maxlength: 100, id: 'archive-category' });
    var retention = choose('retention', 'y30');
    retention.id = 'archive-retention';
    var form = gridForm('archive-form', [
      h('h3', { class: 'wide' }, tr('archive.title')),
      kit.field('category', tr('field.category'), category),
      kit.field('retention', tr('field.retention'), retention)
    ], tr('archive.do'));
    return kit.onSubmit(form, function () {
      return api('POST', path, { category: category.value, retention: retention.value });
    }, done);
  }

  // Saved versions and the compare view of two of them.
  function revisions(id, res) {
    var box = h('section', { id: 'revisions' }, [h('h2', null, tr('revision.title'))]);
    if (!res || !kit.ok(res)) {
      box.appendChild(h('p', { class: 'form-error' }, kit.errorText(res)));
      return box;
    }
    var versions = res.body.versions || [];
    box.appendChild(kit.pagedRows([
      column('revision', function (v) { return String(v.revision); }, { num: true }),
      column('at', function (v) { return when(v.at); }),
      column('by', function (v) { return v.by_name || v.by; }),
      column('status', function (v) { return v.status ? term('out_status', v.status) : '—'; }),
      column('title', function (v) { return v.title; })
    ], versions, { id: 'revision-list', empty: true }, 10));
    if (versions.length < 2) return box;
    function pick(selected) {
      return h('select', null, versions.map(function (v) {
        return h('option', { value: String(v.revision), selected: v.revision === selected }, tr('revision.option', { revision: v.revision, at: when(v.at) }));
      }));
    }
    var from = pick(versions[versions.length - 2].revision);
    var to = pick(versions[versions.length - 1].revision);
    var out = h('div', { id: 'diff', class: 'diff', hidden: true });
    var form = h('form', { class: 'filters', id: 'diff-form' }, [
      kit.field('from', tr('field.from'), from),
      kit.field('to', tr('field.to'), to),
      kit.formError(),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button', id: 'diff-compare' }, tr('revision.compare')))
    ]);
    kit.onSubmit(form, function () {
      return api('GET', 'outgoing/' + enc(id) + '/diff' + kit.query({ from: from.value, to: to.value }));
    }, function (r) {
      out.textContent = '';
      var changed = (r.body.title || []).some(function (o) { return o.op !== 'same'; });
      if (changed) {
        out.appendChild(h('p', { class: 'diff-title' }, [h('strong', null, tr('field.title') + '：')].concat(ops(r.body.title))));
      }
      kit.append(out, ops(r.body.ops || []));
      if (!(r.body.ops || []).some(function (o) { return o.op !== 'same'; }) && !changed) {
        out.appendChild(h('p', { class: 'muted' }, tr('revision.same')));
      }
      out.hidden = false;
    });
    box.appendChild(form);
    box.appendChild(h('p', { class: 'muted' }, [tr('revision.legend') + ' ', h('ins', null, tr('revision.inserted')), ' ', h('del', null, tr('revision.deleted'))]));
    box.appendChild(out);
    return box;
  }

  // Marked changes: insertions green and underlined, deletions red and struck through.
  function ops(list) {
    return (list || []).map(function (o) {
      if (o.op === 'insert') return h('ins', null, o.text);
      if (o.op === 'delete') return h('del', null, o.text);
      return document.createTextNode(o.text);
    });
  }

  // ---- incoming documents (收文) ------------------------------------------------

  function open(status) { return ['registered', 'proposed', 'instructed', 'handling'].indexOf(status) >= 0; }

  function isOverdue(x) { return !!x.deadline && x.deadline < today() && open(x.status); }

  function incoming(parts, params, live) {
    if (parts[1]) return incomingDoc(parts[1], live);
    var status = params.get('status') || '';
    var overdue = params.get('overdue') === 'true';
    var q = params.get('q') || '';
    var statusSel = choose('in_status', status, true);
    var overdueBox = kit.input('checkbox', { checked: overdue, id: 'incoming-overdue' });
    var box = kit.input('search', { value: q, id: 'incoming-q' });
    var filters = h('form', { class: 'filters', id: 'incoming-filters' }, [
      kit.field('status', tr('field.status'), statusSel),
      kit.field('q', tr('field.q'), box),
      h('label', { class: 'check' }, [overdueBox, tr('incoming.overdueOnly')]),
      h('div', { class: 'actions' }, [h('button', { type: 'submit', class: 'button' }, tr('common.search'))])
    ]);
    filters.addEventListener('submit', function (ev) {
      ev.preventDefault();
      location.hash = '#/incoming' + kit.query({ status: statusSel.value, q: box.value.trim(), overdue: overdueBox.checked ? 'true' : '' });
    });
    var listBox = h('div', { id: 'incoming-list-box' });
    var cursors = [];
    function load(cursor, page) {
      return api('GET', 'incoming' + kit.query({ status: status, q: q, overdue: overdue ? 'true' : '', limit: PAGE, cursor: cursor })).then(function (res) {
        if (!live()) return;
        listBox.textContent = '';
        if (!kit.ok(res)) return kit.append(listBox, h('p', { class: 'form-error' }, kit.errorText(res)));
        var rows = (res.body.records || []).map(function (r) {
          r.__props = isOverdue(data(r)) ? { class: 'overdue', 'data-overdue': 'true' } : null;
          return r;
        });
        kit.append(listBox, [
          kit.table([
            column('incoming_no', function (r) { return h('a', { href: '#/incoming/' + enc(r.id), 'data-id': r.id }, data(r).no || '—'); }),
            column('title', function (r) { return h('a', { href: '#/incoming/' + enc(r.id) }, data(r).title); }),
            column('source_organ', function (r) { return data(r).source_organ; }),
            column('source_no', function (r) { return data(r).source_no; }),
            column('urgency', function (r) { return term('urgency', data(r).urgency); }),
            column('received_on', function (r) { return data(r).received_on; }),
            column('deadline', function (r) {
              var x = data(r);
              return x.deadline ? h('span', { class: isOverdue(x) ? 'overdue-mark' : null }, isOverdue(x) ? tr('incoming.overdue', { deadline: x.deadline }) : x.deadline) : '—';
            }),
            column('status', function (r) { return badge('in_status', data(r).status); })
          ], rows, { id: 'incoming-list', empty: true }),
          kit.cursorPager(res.body, cursors, page, load)
        ]);
      });
    }
    show([
      h('div', { class: 'head' }, [h('h1', null, tr('incoming.title'))]),
      can('office.clerk') ? registerPaper(function () { load('', 1); }) : null,
      filters, listBox
    ]);
    return load('', 1);
  }

  function registerPaper(done) {
    var f = {
      source_organ: kit.input('text', { required: true, maxlength: 200 }),
      source_no: kit.input('text', { maxlength: 60 }),
      title: kit.input('text', { required: true, maxlength: 200 }),
      doc_type: choose('doc_type', 'notice'),
      urgency: choose('urgency', 'normal'),
      received_on: kit.input('date', { value: today(), max: today() }),
      deadline: kit.input('date')
    };
    var form = gridForm('register-form', Object.keys(f).map(function (name) {
      return kit.field(name, tr('field.' + name), f[name], name === 'title');
    }), tr('incoming.register'));
    var details = h('details', { class: 'box', id: 'register-box' }, [h('summary', null, tr('incoming.registerPaper')), form]);
    kit.onSubmit(form, function () {
      var b = {};
      Object.keys(f).forEach(function (k) { b[k] = f[k].value; });
      b.attachments = [];
      return api('POST', 'incoming', b);
    }, function () { form.reset(); details.open = false; done(); });
    return details;
  }

  function incomingDoc(id, live) {
    return api('GET', 'incoming/' + enc(id)).then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      var doc = res.body.document;
      var d = doc.data;
      var reload = function () { incomingDoc(id, live); };
      var path = 'incoming/' + enc(id) + '/';
      var rows = [
        ['incoming_no', d.no], ['source_organ', d.source_organ], ['source_no', d.source_no],
        ['doc_type', d.doc_type ? term('doc_type', d.doc_type) : ''], ['urgency', term('urgency', d.urgency)],
        ['received_on', d.received_on], ['deadline', d.deadline], ['proposal', d.proposal],
        ['instruction', d.instruction], ['lead', d.lead], ['assisting', (d.assisting || []).join('、')],
        ['completion', d.completion]
      ].filter(function (x) { return x[1]; });
      var readers = d.readers || [];
      var mine = readers.filter(function (r) { return r.user === me(); })[0];
      var actions = [];
      var s = d.status;
      if (s === 'registered' && can('office.clerk')) {
        actions.push(noteForm('propose', 'opinion', tr('incoming.propose'), path, reload));
      }
      if ((s === 'registered' || s === 'proposed') && can('office.instruct')) actions.push(instructForm(path, reload));
      if (s === 'instructed' || s === 'handling') {
        actions.push(noteForm('report', 'note', tr('incoming.report'), path, reload));
        actions.push(noteForm('complete', 'note', tr('incoming.complete'), path, reload));
      }
      if (open(s) && can('office.clerk')) actions.push(circulateForm(path, reload));
      if (s === 'completed' && can('office.clerk')) actions.push(archiveForm(path + 'archive', reload));
      if (mine && !mine.read_on) {
        actions.push(h('div', { class: 'actions' }, h('button', { type: 'button', class: 'button primary', id: 'incoming-read', onclick: function (ev) {
          ev.target.disabled = true;
          api('POST', path + 'read').then(function (r) {
            if (!kit.ok(r)) { ev.target.disabled = false; ev.target.parentNode.appendChild(h('p', { class: 'form-error' }, kit.errorText(r))); return; }
            reload();
          });
        } }, tr('incoming.markRead'))));
      }
      var paragraphs = String(d.body || '').split(/\n+/).map(function (x) { return x.trim(); }).filter(Boolean);
      show([
        h('div', { class: 'head' }, [
          h('h1', { id: 'doc-title' }, [d.title, ' ', badge('in_status', s),
            res.body.overdue ? h('span', { class: 'badge overdue-mark', id: 'overdue-badge' }, tr('incoming.overdueBadge')) : null]),
          h('div', { class: 'tools' }, [h('a', { class: 'button', href: '#/incoming' }, tr('incoming.back'))])
        ]),
        h('section', { class: 'panel', id: 'incoming-fields' }, h('dl', { class: 'fields' }, rows.map(function (x) {
          return [h('dt', null, tr('field.' + x[0])), h('dd', { 'data-field': x[0] }, x[1])];
        }))),
        paragraphs.length ? h('section', { class: 'panel', id: 'incoming-body' }, paragraphs.map(function (p) { return h('p', null, p); })) : null,
        readers.length ? h('section', { id: 'readers' }, [
          h('h2', null, tr('incoming.readers')),
          kit.table([
            column('name', function (r) { return r.name || r.user; }),
            column('read_on', function (r) { return r.read_on || tr('incoming.unread'); })
          ], readers)
        ]) : null,
        (d.reports || []).length ? h('section', { id: 'reports' }, [
          h('h2', null, tr('incoming.reports')),
          kit.table([
            column('on', function (r) { return r.on; }),
            column('by', function (r) { return r.by; }),
            column('note', function (r) { return r.note; })
          ], d.reports)
        ]) : null,
        d.archive ? archived(d.archive) : null,
        actions.length ? h('section', { id: 'incoming-actions' }, [h('h2', null, tr('incoming.actions'))].concat(actions)) : null,
        kit.recordTimeline(d.timeline, { id: 'timeline' })
      ]);
    });
  }

  // One text and a button: 拟办 (opinion), 办理情况 (note), 办结 (note).
  function noteForm(action, field, button, path, done) {
    var text = h('textarea', { rows: '3', required: true, maxlength: 2000, id: action + '-' + field });
    var form = gridForm(action + '-form', [kit.field(field, tr('field.' + field), text, true)], button);
    return kit.onSubmit(form, function () {
      var b = {};
      b[field] = text.value;
      return api('POST', path + action, b);
    }, done);
  }

  function instructForm(path, done) {
    var opinion = h('textarea', { rows: '3', required: true, maxlength: 2000, id: 'instruct-opinion' });
    var lead = kit.input('text', { required: true, maxlength: 100, id: 'instruct-lead' });
    var assisting = kit.input('text', { maxlength: 500, placeholder: tr('incoming.listHint'), id: 'instruct-assisting' });
    var deadline = kit.input('date', { id: 'instruct-deadline' });
    var form = gridForm('instruct-form', [
      kit.field('opinion', tr('field.instruction'), opinion, true),
      kit.field('lead', tr('field.lead'), lead),
      kit.field('assisting', tr('field.assisting'), assisting),
      kit.field('deadline', tr('field.deadline'), deadline)
    ], tr('incoming.instruct'));
    return kit.onSubmit(form, function () {
      return api('POST', path + 'instruct', { opinion: opinion.value, lead: lead.value, assisting: list(assisting.value), deadline: deadline.value });
    }, done);
  }

  function circulateForm(path, done) {
    var readers = kit.input('text', { required: true, placeholder: tr('incoming.readersHint'), id: 'circulate-readers' });
    var note = kit.input('text', { maxlength: 500, id: 'circulate-note' });
    var form = gridForm('circulate-form', [
      kit.field('readers', tr('field.readers'), readers),
      kit.field('note', tr('field.note'), note)
    ], tr('incoming.circulate'));
    return kit.onSubmit(form, function () {
      return api('POST', path + 'circulate', { readers: list(readers.value), note: note.value });
    }, done);
  }

  // ---- notices (通知公告) --------------------------------------------------------

  function notices(parts, params, live) {
    if (parts[1] && parts[2] === 'receipts') return receipts(parts[1], live);
    if (parts[1]) return notice(parts[1], live);
    return api('GET', 'notices' + kit.query({ limit: 100 })).then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      var rows = (res.body.records || res.body.notices || []).map(function (r) {
        var read = r.read != null ? r.read : data(r).read;
        r.__props = read ? { 'data-read': 'true' } : { class: 'unread', 'data-read': 'false' };
        r.__read = !!read;
        return r;
      });
      show([
        h('div', { class: 'head' }, [h('h1', null, tr('notice.title'))]),
        can('office.clerk') ? publishForm(function () { notices(parts, params, live); }) : null,
        kit.table([
          column('title', function (r) {
            return h('span', null, [
              h('a', { href: '#/notices/' + enc(r.id), 'data-id': r.id }, data(r).title),
              r.__read ? null : [' ', h('span', { class: 'badge unread-badge' }, tr('notice.unread'))]
            ]);
          }),
          column('publisher', function (r) { return data(r).publisher_name; }),
          column('audience', function (r) { return term('audience', data(r).audience); }),
          column('published_at', function (r) { return data(r).published_on || when(data(r).published_at); })
        ], rows, { id: 'notice-list', empty: true })
      ]);
    });
  }

  function publishForm(done) {
    var f = {
      title: kit.input('text', { required: true, maxlength: 200 }),
      audience_org: kit.orgPicker({ name: 'audience_org', level: null, value: myOrg() }),
      audience: choose('audience', 'all'),
      body: h('textarea', { rows: '6', required: true })
    };
    var form = gridForm('notice-form', Object.keys(f).map(function (name) {
      return kit.field(name, tr('field.' + name), f[name], name === 'title' || name === 'body');
    }), tr('notice.publish'));
    var details = h('details', { class: 'box', id: 'publish-box' }, [h('summary', null, tr('notice.new')), form]);
    kit.onSubmit(form, function () {
      return api('POST', 'notices', {
        title: f.title.value, body: f.body.value,
        audience_org: form.elements.audience_org.value, audience: f.audience.value
      });
    }, done);
    return details;
  }

  function notice(id, live) {
    return api('GET', 'notices/' + enc(id)).then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      var n = res.body.notice || res.body.document || res.body;
      var d = data(n);
      show([
        h('div', { class: 'head' }, [
          h('h1', { id: 'notice-title' }, d.title),
          h('div', { class: 'tools' }, [
            can('office.clerk') ? h('a', { class: 'button', id: 'notice-receipts', href: '#/notices/' + enc(id) + '/receipts' }, tr('notice.receipts')) : null,
            h('a', { class: 'button', href: '#/notices' }, tr('notice.back'))
          ])
        ]),
        h('p', { class: 'muted' }, [d.publisher_name || '', ' · ', d.published_on || when(d.published_at), ' · ', term('audience', d.audience)]),
        h('div', { class: 'panel notice-body', id: 'notice-body' }, d.body)
      ]);
    });
  }

  function receipts(id, live) {
    return api('GET', 'notices/' + enc(id) + '/receipts').then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      var read = res.body.read || [];
      show([
        h('div', { class: 'head' }, [
          h('h1', null, tr('notice.receipts')),
          h('div', { class: 'tools' }, [h('a', { class: 'button', href: '#/notices/' + enc(id) }, tr('notice.backToNotice'))])
        ]),
        h('p', { id: 'receipt-count' }, tr('notice.readCount', { count: res.body.count == null ? read.length : res.body.count })),
        kit.pagedRows([
          column('name', function (r) { return r.name || r.user; }),
          column('org', function (r) { return r.org ? kit.orgLabel(r.org, r.org_name) : '—'; }),
          column('read_at', function (r) { return when(r.at); })
        ], read, { id: 'receipt-list', empty: true }, 50)
      ]);
    });
  }

  // ---- supervision (督办) ---------------------------------------------------------

  function matters(parts, params, live) {
    var status = params.get('status') || '';
    var overdue = params.get('overdue') === 'true';
    var statusSel = choose('matter_status', status, true);
    var overdueBox = kit.input('checkbox', { checked: overdue, id: 'matters-overdue' });
    var filters = h('form', { class: 'filters', id: 'matter-filters' }, [
      kit.field('status', tr('field.status'), statusSel),
      h('label', { class: 'check' }, [overdueBox, tr('incoming.overdueOnly')]),
      h('div', { class: 'actions' }, [h('button', { type: 'submit', class: 'button' }, tr('common.search'))])
    ]);
    filters.addEventListener('submit', function (ev) {
      ev.preventDefault();
      location.hash = '#/matters' + kit.query({ status: statusSel.value, overdue: overdueBox.checked ? 'true' : '' });
    });
    var reload = function () { matters(parts, params, live); };
    return api('GET', 'matters' + kit.query({ status: status, overdue: overdue ? 'true' : '', limit: 100 })).then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return failed(res);
      var rows = (res.body.records || []).map(function (r) {
        var late = r.overdue != null ? r.overdue : data(r).overdue;
        r.__props = late ? { class: 'overdue', 'data-overdue': 'true', 'data-id': r.id } : { 'data-id': r.id };
        r.__late = !!late;
        return r;
      });
      show([
        h('div', { class: 'head' }, [h('h1', null, tr('matter.title'))]),
        can('office.clerk') ? matterForm(reload) : null,
        filters,
        kit.table([
          column('title', function (r) { return data(r).title; }),
          column('org', function (r) { return kit.orgLabel(r.org); }),
          column('owner', function (r) { return data(r).owner_name || data(r).owner; }),
          column('deadline', function (r) {
            return r.__late ? h('span', { class: 'overdue-mark' }, tr('incoming.overdue', { deadline: data(r).deadline })) : data(r).deadline;
          }),
          column('percent', function (r) { return (data(r).percent || 0) + '%'; }, { num: true }),
          column('status', function (r) { return badge('matter_status', data(r).status); }),
          column('actions', function (r) { return data(r).status === 'open' ? matterActions(r, reload) : null; })
        ], rows, { id: 'matter-list', empty: true })
      ]);
    });
  }

  function matterForm(done) {
    var f = {
      title: kit.input('text', { required: true, maxlength: 200 }),
      org: kit.orgPicker({ name: 'org', level: null, value: myOrg() }),
      owner: kit.input('text', { required: true, placeholder: tr('matter.ownerHint') }),
      deadline: kit.input('date', { required: true }),
      incoming_id: kit.input('text')
    };
    var form = gridForm('matter-form', Object.keys(f).map(function (name) {
      return kit.field(name, tr('field.' + name), f[name], name === 'title');
    }), tr('matter.create'));
    var details = h('details', { class: 'box', id: 'matter-box' }, [h('summary', null, tr('matter.new')), form]);
    kit.onSubmit(form, function () {
      var b = { title: f.title.value, org: form.elements.org.value, owner: f.owner.value.trim(), deadline: f.deadline.value };
      if (f.incoming_id.value.trim()) b.incoming_id = f.incoming_id.value.trim();
      return api('POST', 'matters', b);
    }, done);
    return details;
  }

  function matterActions(r, done) {
    var path = 'matters/' + enc(r.id) + '/';
    var note = kit.input('text', { required: true, maxlength: 500, id: 'progress-note-' + r.id });
    var percent = kit.input('number', { min: 0, max: 100, step: 1, value: data(r).percent || 0, id: 'progress-percent-' + r.id });
    var progress = h('form', { class: 'grid-form progress-form', novalidate: true }, [
      kit.field('note', tr('field.note'), note),
      kit.field('percent', tr('field.percent'), percent),
      kit.formError(),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button' }, tr('matter.progress')))
    ]);
    kit.onSubmit(progress, function () { return api('POST', path + 'progress', { note: note.value, percent: Number(percent.value) }); }, done);
    var last = kit.input('text', { required: true, maxlength: 500, id: 'complete-note-' + r.id });
    var complete = h('form', { class: 'grid-form complete-form', novalidate: true }, [
      kit.field('note', tr('field.completion'), last),
      kit.formError(),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary' }, tr('matter.complete')))
    ]);
    kit.onSubmit(complete, function () { return api('POST', path + 'complete', { note: last.value }); }, done);
    return h('details', { class: 'matter-actions' }, [h('summary', null, tr('matter.handle')), progress, complete]);
  }

  // ---- search (检索) --------------------------------------------------------------

  function search(parts, params, live) {
    var q = params.get('q') || '';
    var box = kit.input('search', { value: q, id: 'search-q', maxlength: 50, placeholder: tr('search.hint') });
    var form = h('form', { class: 'filters', id: 'search-form' }, [
      kit.field('q', tr('field.q'), box),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary', id: 'search-submit' }, tr('common.search')))
    ]);
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var next = '#/search' + kit.query({ q: box.value.trim() });
      if (location.hash === next) search(parts, new URLSearchParams('q=' + encodeURIComponent(box.value.trim())), live);
      else location.hash = next;
    });
    var out = h('div', { id: 'search-out' });
    show([h('div', { class: 'head' }, [h('h1', null, tr('search.title'))]), form, out]);
    if (!q) return Promise.resolve();
    return api('GET', 'search' + kit.query({ q: q })).then(function (res) {
      if (!live()) return;
      if (!kit.ok(res)) return kit.append(out, h('p', { class: 'form-error', id: 'search-error' }, kit.errorText(res)));
      var results = res.body.results || [];
      kit.append(out, [
        h('p', { class: 'muted', id: 'search-count' }, tr('search.count', { count: results.length })),
        h('ul', { class: 'results', id: 'search-results' }, results.map(function (x) {
          var href = (x.kind === 'incoming' ? '#/incoming/' : '#/outgoing/') + enc(x.id);
          return h('li', { 'data-kind': x.kind, 'data-id': x.id }, [
            h('div', null, [
              h('span', { class: 'badge' }, tr('search.kind.' + x.kind)), ' ',
              h('a', { href: href, class: 'result-title' }, (x.title_hits || []).length ? marked(x.title_hits) : x.title || '—'), ' ',
              x.no ? h('span', { class: 'muted' }, x.no) : null, ' ',
              x.status ? badge(x.kind === 'incoming' ? 'in_status' : 'out_status', x.status) : null
            ]),
            (x.snippet || []).length ? h('p', { class: 'snippet' }, marked(x.snippet)) : null
          ]);
        }))
      ]);
    });
  }

  // Snippet pieces as text, the matched ones in <mark> (never parsed as HTML).
  function marked(pieces) {
    return pieces.map(function (p) {
      return p.hit ? h('mark', null, p.text) : document.createTextNode(p.text);
    });
  }

  // ---- to-dos ---------------------------------------------------------------------

  function todos() {
    show([h('h1', null, tr('nav.todos')), h('div', { id: 'todos' })]);
    return kit.todoList(document.getElementById('todos'), {
      open: function (item) { return '#/outgoing/' + enc(item.approval.subject_id); }
    });
  }

  // ---- start ----------------------------------------------------------------------

  function markNav() {
    var name = kit.parseHash().parts[0] || 'outgoing';
    document.querySelectorAll('#nav a').forEach(function (a) {
      a.classList.toggle('active', a.getAttribute('data-route') === name);
    });
    if (hint) hint.update();
  }

  var hint = null;

  kit.start({ plugin: 'office', texts: true, vocab: true }).then(function () {
    kit.applyTexts(document);
    hint = kit.scrollHint(document.getElementById('nav'));
    window.addEventListener('hashchange', markNav);
    markNav();
    kit.router({
      outgoing: outgoing, incoming: incoming, notices: notices, matters: matters,
      search: search, todos: todos
    }, 'outgoing').run();
  });
})();
