// The Tianshan UI kit: what every plugin page needs, written once. Plain ES
// module served by the kernel at /ui/kit/kit.js, so a plugin author needs no
// build step:
//
//   <script type="module" src="app.js"></script>
//   // app.js
//   import * as kit from '/ui/kit/kit.js';
//   await kit.start({ plugin: 'my-module' });
//   kit.api('GET', 'items').then(function (res) { … });
//
// A plugin page runs sandboxed (an opaque origin: no cookie, no session, no
// CSRF token). Every API call goes through the portal's bridge: the kit
// posts the request to the portal, which checks that it comes from this
// plugin's frame and reaches only this plugin's API and the few kernel calls
// a page needs (the org tree, this plugin's to-dos, approvals and files),
// then performs it with the session. See docs/plugin-guide.md, "The UI kit".

var LANGS = ['zh-CN', 'en'];
var DEFAULT_LANG = 'zh-CN';
var SVG_NS = 'http://www.w3.org/2000/svg';

var state = {
  plugin: null,      // this page's plugin id
  lang: DEFAULT_LANG,
  kitT: {},          // the kit's own texts
  pluginT: {},       // the plugin's texts (win over the kit's)
  context: null,     // the caller as the portal describes them (no secrets)
  org: null,         // the acting org for this page, when chosen here
  seq: 0,
  pending: {},
  nonce: null,
  base: null,        // the plugin's page base (/ui/{plugin}/)
  vocab: {}          // the plugin's GET /vocab: {name: [{code, zh-CN, en}]}
};

// ---- the bridge --------------------------------------------------------------

function bridged() {
  return window.parent !== window && !!state.nonce;
}

window.addEventListener('message', function (ev) {
  // Only the portal (the parent frame) answers; its answers carry our nonce.
  if (ev.source !== window.parent) return;
  var d = ev.data;
  if (!d || d.tianshan !== 'bridge-reply' || d.nonce !== state.nonce) return;
  var resolve = state.pending[d.id];
  if (!resolve) return;
  delete state.pending[d.id];
  resolve(d);
});

function call(op, args) {
  if (!bridged()) {
    return Promise.resolve({
      status: 0,
      body: { error: { code: 'bridge_unavailable', message: 'open this page in the portal' } }
    });
  }
  return new Promise(function (resolve) {
    var id = ++state.seq;
    state.pending[id] = resolve;
    var message = { tianshan: 'bridge', nonce: state.nonce, id: id, op: op };
    Object.keys(args || {}).forEach(function (k) { message[k] = args[k]; });
    // location.origin is the kernel's even in the sandbox: the message goes
    // to the portal and nowhere else.
    window.parent.postMessage(message, location.origin);
  });
}

// ---- live values -------------------------------------------------------------

// Latest values and alerts of this plugin's devices as they are stored,
// without polling: the portal opens the kernel's stream for the page
// (GET /api/v1/telemetry/stream) and forwards its events. Call after
// kit.start(). options: {devices: ['m1', …] (none: every device of the
// plugin the viewer reaches), onLatest({device, channel, at, value,
// quality}) — the current values first, then each new one —,
// onAlert({id, rule, device, org, at, detail}), onStatus('open' |
// 'error')}. Returns a function that stops it. The portal reopens a
// stream that was cut (a kernel restart) and resumes after its last event.
var liveSubs = {};
var liveSeq = 0;

export function live(options) {
  var o = options || {};
  var key = 'live-' + (++liveSeq) + '-' + Math.random().toString(36).slice(2, 10);
  liveSubs[key] = {
    devices: (o.devices || []).map(String),
    onLatest: o.onLatest, onAlert: o.onAlert, onStatus: o.onStatus,
    alerts: []
  };
  liveOpen(key);
  return function stop() {
    if (!liveSubs[key]) return;
    delete liveSubs[key];
    if (bridged()) call('live-stop', { key: key });
  };
}

function liveOpen(key) {
  var sub = liveSubs[key];
  if (!sub) return;
  call('live', { key: key, devices: sub.devices }).then(function (res) {
    if (res.status !== 204 && liveSubs[key] === sub && sub.onStatus) sub.onStatus('error', res);
  });
}

window.addEventListener('message', function (ev) {
  if (ev.source !== window.parent) return;
  var d = ev.data;
  if (!d || d.tianshan !== 'bridge-live' || !state.nonce || d.nonce !== state.nonce) return;
  // A document loaded in the frame and the portal ended every stream:
  // this page's open again.
  if (d.type === 'reset') return Object.keys(liveSubs).forEach(liveOpen);
  var sub = liveSubs[d.key];
  if (!sub) return;
  if (d.type === 'latest' && sub.onLatest) sub.onLatest(d.data);
  else if (d.type === 'alert' && sub.onAlert && d.data) {
    // A resumed stream may repeat its last few seconds.
    if (sub.alerts.indexOf(d.data.id) >= 0) return;
    sub.alerts.push(d.data.id);
    if (sub.alerts.length > 200) sub.alerts.shift();
    sub.onAlert(d.data);
  } else if ((d.type === 'open' || d.type === 'error') && sub.onStatus) sub.onStatus(d.type);
});

window.addEventListener('pagehide', function () {
  Object.keys(liveSubs).forEach(function (key) {
    delete liveSubs[key];
    if (bridged()) call('live-stop', { key: key });
  });
});

// ---- texts -------------------------------------------------------------------

export function format(template, values) {
  return String(template).replace(/\{(\w+)\}/g, function (_, key) {
    return values && values[key] != null ? String(values[key]) : '';
  });
}

// The text for `key` in the page's language: the plugin's, else the kit's,
// else the key itself (so a missing text shows, rather than vanishing).
export function tr(key, values) {
  var s = state.pluginT[key];
  if (s == null) s = state.kitT[key];
  return format(s == null ? key : s, values);
}

// The raw text for `key` (placeholders kept), or undefined.
export function text(key) {
  var s = state.pluginT[key];
  return s == null ? state.kitT[key] : s;
}

// The text for `key` as parts to append(): each `{name}` becomes
// values[name] — a string, or an element (a link) in its place in the
// sentence, wherever the language puts it.
export function trParts(key, values) {
  var s = text(key);
  if (s == null) s = key;
  var out = [];
  var re = /\{(\w+)\}/g;
  var at = 0;
  var m;
  while ((m = re.exec(s))) {
    if (m.index > at) out.push(s.slice(at, m.index));
    var v = values ? values[m[1]] : null;
    if (v != null) out.push(typeof v === 'object' ? v : String(v));
    at = re.lastIndex;
  }
  if (at < s.length) out.push(s.slice(at));
  return out;
}

export function has(key) {
  return state.pluginT[key] != null || state.kitT[key] != null;
}

export function lang() { return state.lang; }

// A {"zh-CN": …, "en": …} value in the page's language.
export function localized(value) {
  if (value == null) return '';
  if (typeof value === 'string') return value;
  if (value[state.lang]) return value[state.lang];
  if (value[DEFAULT_LANG]) return value[DEFAULT_LANG];
  for (var k in value) {
    if (Object.prototype.hasOwnProperty.call(value, k) && value[k]) return String(value[k]);
  }
  return '';
}

function loadJson(url) {
  return fetch(url, { credentials: 'omit' }).then(function (r) {
    if (!r.ok) throw new Error(url + ' ' + r.status);
    return r.json();
  });
}

// Loads the kit's and the plugin's texts for `next` (the plugin's from its
// own ui/i18n/{lang}.json) and fills every [data-i18n] element.
export function setLang(next) {
  if (LANGS.indexOf(next) < 0) next = DEFAULT_LANG;
  var kitT = loadJson('/ui/kit/i18n/' + next + '.json').catch(function () { return {}; });
  var own = state.base ? loadJson(state.base + 'i18n/' + next + '.json').catch(function () { return null; }) : Promise.resolve({});
  return Promise.all([kitT, own]).then(function (both) {
    state.lang = next;
    state.kitT = both[0] || {};
    state.pluginT = both[1] || {};
    applyTexts(document);
  });
}

export function applyTexts(root) {
  document.documentElement.lang = state.lang;
  (root || document).querySelectorAll('[data-i18n]').forEach(function (node) {
    var key = node.getAttribute('data-i18n');
    if (has(key)) node.textContent = tr(key);
  });
}

// ---- start -------------------------------------------------------------------

// Starts the page: learns who is looking (from the portal), picks the
// language (the portal's, or ?lang=) and loads the texts.
// options: { plugin: id (default: the first path segment after /ui/),
//            texts: true to load the page's own ui/i18n/{lang}.json }.
export function start(options) {
  var o = options || {};
  var params = new URLSearchParams(location.search);
  state.nonce = params.get('bridge');
  var m = /^\/ui\/([^/]+)\//.exec(location.pathname);
  state.plugin = o.plugin || (m ? m[1] : null);
  state.base = m && o.texts ? '/ui/' + m[1] + '/' : null;
  return call('context').then(function (res) {
    state.context = res.status === 200 ? res.body : null;
    var fromQuery = params.get('lang');
    var chosen = state.context && state.context.lang ? state.context.lang : fromQuery;
    return setLang(chosen || DEFAULT_LANG);
  }).then(function () {
    // `vocab: true`: the plugin's one vocabulary source (the SDK's
    // GET /vocab), so pages never retype its code lists.
    if (!o.vocab || !state.context) return null;
    return api('GET', 'vocab').then(function (res) {
      if (ok(res) && res.body && typeof res.body === 'object') state.vocab = res.body;
    });
  }).then(function () { return state.context; });
}

// A vocabulary code's label in the viewer's language, from the plugin's
// GET /vocab (kit.start({vocab: true})); else the page's text
// `label.{name}.{code}`; else the code itself; '—' for no code.
export function term(name, code) {
  if (code == null || code === '') return '—';
  var terms = state.vocab[name] || [];
  for (var i = 0; i < terms.length; i++) {
    if (terms[i].code === code) return localized({ 'zh-CN': terms[i]['zh-CN'], en: terms[i].en });
  }
  var key = 'label.' + name + '.' + code;
  return has(key) ? tr(key) : String(code);
}

// A vocabulary's codes, in the order the plugin defines them.
export function terms(name) {
  return (state.vocab[name] || []).map(function (t) { return t.code; });
}

// The caller: { user: {user_id, username, display_name, org_id, roles}, unit,
// home_org, is_platform_admin, bindings, org (the acting org), lang, plugin },
// or null outside the portal or signed out. Never a token or a secret.
export function context() { return state.context; }

// Acts in `org` for the calls that follow (null: the portal's choice).
export function actAs(org) { state.org = org || null; }

export function actingOrg() {
  return state.org || (state.context && state.context.org) || null;
}

// Opens a portal page: '#/todos', '#/approvals/{id}' or this plugin's
// menu entries ('#/p/{plugin}/{entry}'); the portal refuses anything else.
export function navigate(hash) {
  return call('navigate', { hash: hash });
}

// Tells the portal the page's own route (its location.hash, '#/view/…')
// and the view's title, so the portal's address becomes a deep link
// ('#/p/{plugin}/view/…') and its breadcrumb and menu follow the page.
// kit.router() calls it on every route; a page with its own router calls
// it once per view.
export function reportRoute(title) {
  if (!bridged() || !/^#\/[^/?#]/.test(location.hash)) return Promise.resolve(null);
  return call('route', { hash: location.hash, title: title || '' });
}

// ---- the API -----------------------------------------------------------------

// path: relative to this plugin's API (`items?page=2`), or absolute
// (`/api/v1/p/{plugin}/…`, `/api/v1/orgs`, `/api/v1/todos`, …).
// body: an object (sent as JSON), a Blob or File (sent as is), or undefined.
// opts.org: act in this org for this call only. Answers {status, body}:
// the parsed JSON (null when none); status 0 when the call did not happen.
export function api(method, path, body, opts) {
  return request(method, path, body, opts, 'json');
}

// As api(), answering {status, body (the error, when not 2xx), blob,
// type, filename} for files, exports and images.
export function fetchBlob(method, path, body, opts) {
  return request(method, path, body, opts, 'blob');
}

export function apiUrl(path) {
  return path.charAt(0) === '/' ? path : '/api/v1/p/' + state.plugin + '/' + path;
}

function request(method, path, body, opts, as) {
  var o = opts || {};
  var args = { method: method, path: apiUrl(path), as: as, org: o.org || state.org || null, accept: o.accept || null };
  if (body instanceof Blob) {
    args.body = body;
    args.contentType = body.type || 'application/octet-stream';
  } else if (body !== undefined) {
    args.body = JSON.stringify(body);
    args.contentType = 'application/json';
  }
  return call('request', args).then(function (res) {
    return res;
  }, function () {
    return { status: 0, body: null };
  });
}

export function ok(res) { return res && res.status >= 200 && res.status < 300; }

// Downloads what the API answers (an export, a template, a file) under the
// name the server gives; a refusal comes back as {status, body} instead.
export function download(path, fallbackName) {
  return fetchBlob('GET', path, undefined, { accept: '*/*' }).then(function (res) {
    if (!ok(res) || !res.blob) return res;
    saveBlob(res.blob, res.filename || fallbackName);
    return res;
  });
}

export function saveBlob(blob, name) {
  var a = h('a', { href: URL.createObjectURL(blob), download: name || 'download', hidden: true });
  document.body.appendChild(a);
  a.click();
  setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// An <img> of a file the plugin stored (a photo), fetched through the bridge.
export function fileImage(fileId, props) {
  var img = h('img', props || { alt: fileId });
  fetchBlob('GET', '/api/v1/files/' + encodeURIComponent(fileId)).then(function (res) {
    if (ok(res) && res.blob) img.src = URL.createObjectURL(res.blob);
    else img.dispatchEvent(new Event('error'));
  });
  return img;
}

// Codes whose words say nothing of the case at hand: the server's detail
// follows them. Any other code with a text (`code.{code}` in the page's or
// the kit's i18n) is shown in those words alone, filled from the error's
// params — the English message never reaches a Chinese screen.
var GENERIC_CODES = ['validation_failed', 'bad_request', 'conflict', 'not_found', 'forbidden', 'internal', 'invalid_json'];

// The words for an API error's code, filled from its params (and {field},
// the field's name as the page calls it); null when there are none or the
// code is generic.
export function codeText(e) {
  if (!e || !e.code || GENERIC_CODES.indexOf(e.code) >= 0 || !has('code.' + e.code)) return null;
  var values = {};
  var p = e.params || {};
  Object.keys(p).forEach(function (k) {
    var v = p[k];
    // A vocabulary value given by code shows by its label when the page
    // has one (`{status}` → `label.status.draft` is the page's business).
    values[k] = v != null && typeof v === 'object' ? JSON.stringify(v) : v;
  });
  if (e.field) values.field = fieldName(e.field);
  return tr('code.' + e.code, values);
}

// What went wrong, for people: the words for the error's code when the
// page or the kit has them; else the kit's words for the status or the
// generic code, with the server's detail after.
export function errorText(res) {
  var e = res && res.body && res.body.error;
  if (!res || res.status === 0) return tr('err.network');
  if (res.status === 401) return tr('err.signIn');
  var own = codeText(e);
  if (own != null) return own;
  var base = res.status === 403 ? tr('err.forbidden')
    : res.status === 404 && !(e && e.message) ? tr('err.notFound')
    : e && e.code && has('code.' + e.code) ? tr('code.' + e.code)
    : tr('err.failed', { status: res.status });
  if (e && e.message) {
    var where = e.field ? fieldName(e.field) + ': ' : '';
    return base + ' — ' + where + e.message;
  }
  return base;
}

// A field's name as the page calls it: `field.{name}` or `form.{name}`.
export function fieldName(field) {
  if (has('field.' + field)) return tr('field.' + field);
  if (has('form.' + field)) return tr('form.' + field);
  return field;
}

// ---- building elements -------------------------------------------------------

// h('div', {class: 'x', onclick: f}, [children or text])
export function h(tag, props, children) {
  var node = document.createElement(tag);
  setProps(node, props);
  append(node, children);
  return node;
}

// The same for SVG elements (attributes only).
export function svg(tag, attrs, children) {
  var node = document.createElementNS(SVG_NS, tag);
  Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
  append(node, children);
  return node;
}

export function setProps(node, props) {
  Object.keys(props || {}).forEach(function (k) {
    var v = props[k];
    if (v == null || v === false) return;
    if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'value') node.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'selected') node[k] = !!v;
    else node.setAttribute(k, v === true ? '' : v);
  });
}

export function append(node, children) {
  if (children == null) return;
  if (!Array.isArray(children)) children = [children];
  children.forEach(function (c) {
    if (c == null || c === false) return;
    if (Array.isArray(c)) return append(node, c);
    node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  });
}

// ---- dialogs ----------------------------------------------------------------

// Asks the user to confirm `text`; resolves true or false. A sandboxed page
// may not use window.confirm (the sandbox has no allow-modals, so a page
// cannot pose as the browser or the portal), hence a dialog in the page.
export function confirm(text) {
  return new Promise(function (resolve) {
    var dialog = h('dialog', { class: 'kit-confirm', id: 'kit-confirm', 'aria-modal': 'true' }, [
      h('p', null, text),
      h('div', { class: 'actions' }, [
        h('button', { type: 'button', class: 'button', id: 'kit-confirm-cancel', onclick: function () { done(false); } }, tr('common.cancel')),
        h('button', { type: 'button', class: 'button primary', id: 'kit-confirm-ok', onclick: function () { done(true); } }, tr('common.ok'))
      ])
    ]);
    function done(value) {
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(value);
    }
    dialog.addEventListener('cancel', function (ev) { ev.preventDefault(); done(false); });
    document.body.appendChild(dialog);
    try { dialog.showModal(); } catch (e) { dialog.setAttribute('open', ''); }
  });
}

// ---- tables ------------------------------------------------------------------

// A table; columns [{key, label, render(row), money, num, sort}]. With
// opts.sort = {key, desc} and opts.onSort(key, desc), columns with `sort`
// are clickable (the page re-queries the API with its sort allowlist).
// opts.money formats money columns; opts.empty (true or a text) shows a
// line when there are no rows; other opts are the <table>'s attributes.
// Narrow screens show each row as a card,
// labelled by data-label.
export function table(columns, rows, opts) {
  var o = opts || {};
  var sort = o.sort || null;
  var head = h('tr', null, columns.map(function (c) {
    var cls = c.money || c.num ? 'num' : null;
    if (!c.sort || !o.onSort) return h('th', { class: cls }, c.label);
    var key = c.sort === true ? c.key : c.sort;
    var active = sort && sort.key === key;
    var th = h('th', { class: (cls ? cls + ' ' : '') + 'sortable', 'aria-sort': active ? (sort.desc ? 'descending' : 'ascending') : 'none' },
      h('button', { type: 'button', class: 'sort', 'data-sort': key, onclick: function () {
        o.onSort(key, active ? !sort.desc : false);
      } }, [c.label, active ? (sort.desc ? ' ↓' : ' ↑') : '']));
    return th;
  }));
  var body = h('tbody', null, rows.map(function (row) {
    return h('tr', row.__props || null, columns.map(function (c) {
      var v = c.render ? c.render(row) : row[c.key];
      if (c.money && !c.render && o.money) v = o.money(v);
      return h('td', { 'data-label': c.label, class: c.money || c.num ? 'num' : null },
        v == null || v === '' ? '—' : v);
    }));
  }));
  var props = {};
  Object.keys(o).forEach(function (k) {
    if (k !== 'sort' && k !== 'onSort' && k !== 'money' && k !== 'empty') props[k] = o[k];
  });
  var t = h('table', props, [h('thead', null, head), body]);
  if (!rows.length && o.empty) {
    return h('div', { class: 'table-wrap' }, [t, h('p', { class: 'muted empty' }, o.empty === true ? tr('common.empty') : o.empty)]);
  }
  return h('div', { class: 'table-wrap' }, t);
}

// Paging by cursor: a total, the page number, previous and next.
export function pager(total, page, hasNext, onPrev, onNext) {
  return h('div', { class: 'pager' }, [
    h('span', { class: 'pager-total', 'data-total': total == null ? '' : total },
      total == null ? '' : tr('common.total', { total: total })),
    h('span', null, tr('common.page', { page: page })),
    h('button', { type: 'button', class: 'button', disabled: page <= 1, onclick: onPrev }, tr('common.prev')),
    h('button', { type: 'button', class: 'button', disabled: !hasNext, onclick: onNext }, tr('common.next'))
  ]);
}

// Paging a list endpoint's cursor pages (`{records, next_cursor, total}`):
// `cursors` keeps the cursor of each page seen, so previous works without
// the server; `go(cursor, page)` loads one. Answers the pager, or just the
// total when everything fits on one page.
export function cursorPager(body, cursors, page, go) {
  var total = body.total;
  if (!(body.next_cursor || page > 1)) {
    return total == null ? null : h('p', { class: 'muted pager-total', 'data-total': total }, tr('common.total', { total: total }));
  }
  return pager(total, page, !!body.next_cursor,
    function () { go(cursors[page - 2] || '', page - 1); },
    function () { cursors[page] = body.next_cursor; go(body.next_cursor, page + 1); });
}

// Rows the page already holds, shown `size` at a time with a pager, so a
// long list (a campaign's hundreds of tasks, a label sheet's cards) does
// not make a phone page tens of thousands of pixels tall. Same columns
// and opts as table(); answers the container.
export function pagedRows(columns, rows, opts, size) {
  var per = size || 20;
  var box = h('div', { class: 'paged-rows' });
  function show(page) {
    box.textContent = '';
    var start = (page - 1) * per;
    box.appendChild(table(columns, rows.slice(start, start + per), opts));
    if (rows.length > per) {
      box.appendChild(pager(rows.length, page, start + per < rows.length,
        function () { show(page - 1); }, function () { show(page + 1); }));
    }
  }
  show(1);
  return box;
}

// ---- forms -------------------------------------------------------------------

// A labelled control with a slot for the API's error about it.
export function field(name, labelText, control, wide) {
  // A composite control (an org picker) is labelled by its text box and
  // named by its hidden input.
  var labelled = control.input || control;
  labelled.id = labelled.id || 'f-' + name.replace(/\W/g, '-');
  if (control.hiddenInput) {
    if (!control.hiddenInput.name || control.hiddenInput.name === 'org') control.hiddenInput.name = name;
  } else if (!control.name) control.name = name;
  return h('div', { class: 'field' + (wide ? ' wide' : ''), 'data-field': name }, [
    h('label', { for: labelled.id }, labelText),
    control,
    h('span', { class: 'field-error', 'data-error-for': name, role: 'alert' })
  ]);
}

export function input(type, props) {
  // The type first: a value is kept or cleaned by the type it is set under.
  var node = h('input', { type: type });
  setProps(node, props);
  return node;
}

// A <select> of vocabulary values labelled `{prefix}.{value}`.
export function select(values, prefix, selected, withAll) {
  var options = withAll ? [h('option', { value: '' }, tr('common.all'))] : [];
  values.forEach(function (v) {
    var key = prefix + '.' + v;
    options.push(h('option', { value: v, selected: v === selected }, has(key) ? tr(key) : v));
  });
  return h('select', null, options);
}

// ---- orgs outside the caller's reach ------------------------------------------

var directoryCache = {};

// One org of the kernel's directory by its id — {id, code, name, level,
// parent_id}, or null — for naming an org the caller cannot open (another
// district's unit, a transfer's original owner). An org's id is `org-` and
// its code, so the code finds it; answers are kept for the page's life.
export function directoryOrg(id) {
  if (!id) return Promise.resolve(null);
  if (!directoryCache[id]) {
    var code = String(id).replace(/^org-/, '');
    directoryCache[id] = api('GET', '/api/v1/orgs/directory' + query({ q: code, limit: 20 })).then(function (res) {
      var found = ok(res) && res.body && res.body.orgs ? res.body.orgs.filter(function (o) { return o.id === id; }) : [];
      return found[0] || null;
    });
  }
  return directoryCache[id];
}

// An org's name as an element: the id at first, the name once the
// directory answers (`known` — a {zh-CN, en} name the page already holds —
// shows at once).
export function orgLabel(id, known) {
  var now = localized(known);
  var node = h('span', { class: 'org-name', 'data-org-id': id || '' }, now || id || '—');
  if (!now && id) {
    directoryOrg(id).then(function (o) {
      if (o && o.name) node.textContent = localized(o.name);
    });
  }
  return node;
}

// A searchable picker of the directory's orgs: the user types part of a
// name or a code and picks one of the matches. The chosen id is the value
// of a hidden input named `name` (so `form.elements[name].value` reads it
// and kit.field/showError find it); typing again clears the choice, so a
// text that names no org is never submitted.
// opts: { name, level ('unit' by default), exclude: [ids], value: an id,
//         valueName: its {zh-CN, en} name when the page knows it,
//         placeholder, limit (20), onPick(org) }.
// Answers the picker's element; `.input` is its text box.
export function orgPicker(opts) {
  var o = opts || {};
  var exclude = o.exclude || [];
  var hidden = h('input', { type: 'hidden', name: o.name || 'org', value: o.value || '' });
  var box = input('search', {
    class: 'kit-org-search', autocomplete: 'off', role: 'combobox', 'aria-expanded': 'false',
    'aria-autocomplete': 'list', placeholder: o.placeholder || tr('org.pickerHint')
  });
  var list = h('ul', { class: 'kit-org-options', role: 'listbox', hidden: true });
  var wrap = h('div', { class: 'kit-org-picker' }, [box, hidden, list]);
  wrap.input = box;
  wrap.hiddenInput = hidden;
  var timer = null;
  var seq = 0;
  var active = -1;
  var shown = [];

  function labelOf(org) {
    return localized(org.name) + (org.code ? ' (' + org.code + ')' : '');
  }
  function close() {
    list.hidden = true;
    box.setAttribute('aria-expanded', 'false');
  }
  function pick(org) {
    // A search still under way would reopen the list over the page.
    seq += 1;
    clearTimeout(timer);
    hidden.value = org.id;
    box.value = labelOf(org);
    box.removeAttribute('aria-invalid');
    close();
    hidden.dispatchEvent(new Event('change', { bubbles: true }));
    if (o.onPick) o.onPick(org);
  }
  function mark(i) {
    active = i;
    list.querySelectorAll('[role="option"]').forEach(function (li, j) {
      li.classList.toggle('active', j === i);
      li.setAttribute('aria-selected', String(j === i));
    });
  }
  function render(orgs, q) {
    list.textContent = '';
    list.setAttribute('data-q', q);
    shown = orgs;
    active = -1;
    if (!orgs.length) {
      list.appendChild(h('li', { class: 'kit-org-none muted' }, tr('org.pickerNone', { q: q })));
    }
    orgs.forEach(function (org, i) {
      list.appendChild(h('li', {
        role: 'option', 'data-org-id': org.id, 'aria-selected': 'false',
        // mousedown, not click: the text box's blur must not close the
        // list before the pick lands.
        onmousedown: function (ev) { ev.preventDefault(); pick(org); },
        onmouseenter: function () { mark(i); }
      }, [localized(org.name), ' ', h('small', { class: 'muted' }, org.code || '')]));
    });
    list.hidden = false;
    box.setAttribute('aria-expanded', 'true');
  }
  function search() {
    var q = box.value.trim();
    var mine = ++seq;
    var path = '/api/v1/orgs/directory' + query({ level: o.level === undefined ? 'unit' : o.level, q: q, limit: o.limit || 20 });
    api('GET', path).then(function (res) {
      if (mine !== seq) return;
      if (!ok(res)) {
        list.textContent = '';
        list.appendChild(h('li', { class: 'kit-org-none form-error' }, errorText(res)));
        list.hidden = false;
        return;
      }
      var orgs = ((res.body && res.body.orgs) || []).filter(function (org) { return exclude.indexOf(org.id) < 0; });
      orgs.forEach(function (org) { directoryCache[org.id] = Promise.resolve(org); });
      render(orgs, q);
    });
  }
  box.addEventListener('input', function () {
    hidden.value = '';
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  box.addEventListener('focus', function () { if (!hidden.value) search(); });
  box.addEventListener('blur', function () { setTimeout(close, 150); });
  box.addEventListener('keydown', function (ev) {
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      if (list.hidden || !shown.length) return;
      ev.preventDefault();
      var n = shown.length;
      mark(ev.key === 'ArrowDown' ? (active + 1) % n : (active - 1 + n) % n);
    } else if (ev.key === 'Enter') {
      // Enter picks the marked match (or the only one); it never submits
      // the form with a half-typed name.
      if (!list.hidden && (active >= 0 || shown.length === 1)) {
        ev.preventDefault();
        pick(shown[active >= 0 ? active : 0]);
      } else if (!hidden.value) {
        ev.preventDefault();
      }
    } else if (ev.key === 'Escape') {
      close();
    }
  });
  if (o.value) {
    if (o.valueName) box.value = localized(o.valueName);
    else {
      box.value = o.value;
      directoryOrg(o.value).then(function (org) {
        if (org && hidden.value === o.value) box.value = labelOf(org);
      });
    }
  }
  return wrap;
}

// Several orgs picked from the kernel's directory and shown as chips; their
// ids are the value of a hidden input named `name` (comma-separated), and
// `.ids()` answers them. Read-only when not `editable`.
export function orgsPicker(name, ids, editable) {
  var chosen = (ids || []).slice();
  var hidden = h('input', { type: 'hidden', name: name, value: chosen.join(',') });
  var chips = h('ul', { class: 'chips', 'data-orgs': name });
  var box = h('div', { class: 'org-list' });
  var picker = null;
  function changed() { box.dispatchEvent(new Event('input', { bubbles: true })); }
  function render() {
    hidden.value = chosen.join(',');
    chips.textContent = '';
    chosen.forEach(function (id) {
      chips.appendChild(h('li', { 'data-org-id': id }, [
        orgLabel(id),
        editable ? h('button', { type: 'button', class: 'chip-remove', 'aria-label': tr('common.remove'), onclick: function () {
          chosen = chosen.filter(function (x) { return x !== id; });
          render();
          changed();
        } }, '×') : null
      ]));
    });
    if (!chosen.length && !editable) chips.appendChild(h('li', { class: 'muted' }, '—'));
  }
  if (editable) {
    picker = orgPicker({
      name: name + '_pick', level: null, placeholder: tr('common.addOrg'),
      onPick: function (org) {
        if (chosen.indexOf(org.id) < 0) chosen.push(org.id);
        picker.input.value = '';
        picker.hiddenInput.value = '';
        render();
        changed();
      }
    });
    box.appendChild(picker);
    box.input = picker.input;
  } else {
    box.input = h('span', { tabindex: '-1' });
    box.appendChild(box.input);
  }
  box.appendChild(hidden);
  box.appendChild(chips);
  box.hiddenInput = hidden;
  box.ids = function () { return chosen.slice(); };
  render();
  return box;
}

// A record's own timeline as the SDK's `document::Timeline` keeps it
// (`{on, actor, action, note}`, oldest first): the action in the page's
// words (`action.<code>`), the kernel's own entries as "system".
export function recordTimeline(entries, opts) {
  var list = entries || [];
  return h('section', { class: 'record-timeline', id: (opts && opts.id) || null }, [
    h('h2', null, tr('timeline.title')),
    list.length ? h('ul', { class: 'kit-timeline' }, list.map(function (t) {
      var key = 'action.' + t.action;
      var note = t.note == null || t.note === '' ? null : typeof t.note === 'object' ? JSON.stringify(t.note) : String(t.note);
      return h('li', { 'data-action': t.action }, [
        h('time', { class: 'muted' }, t.on || ''), ' ',
        h('span', { class: 'kit-timeline-who' }, t.actor === 'system' ? tr('timeline.system') : (t.actor_name || t.actor)), ' ',
        h('strong', { class: 'kit-timeline-what' }, has(key) ? tr(key) : t.action),
        note ? h('p', { class: 'kit-timeline-comment' }, note) : null
      ]);
    })) : h('p', { class: 'muted' }, tr('common.empty'))
  ]);
}

export function formError() {
  return h('p', { class: 'form-error', role: 'alert' });
}

export function clearErrors(form) {
  form.querySelectorAll('.field-error').forEach(function (e) { e.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach(function (e) { e.removeAttribute('aria-invalid'); });
  var top = form.querySelector('.form-error');
  if (top) top.textContent = '';
}

export function setFieldError(form, name, text) {
  var slot = form.querySelector('[data-error-for="' + name + '"]');
  if (!slot) return false;
  slot.textContent = text;
  var control = form.querySelector('[name="' + name + '"]');
  // A hidden value (an org picker's) is shown and focused by its text box.
  if (control && control.type === 'hidden' && control.parentNode && control.parentNode.input) control = control.parentNode.input;
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    control.focus();
  }
  return true;
}

// Shows an API error next to the field it names (or the first of
// `aliases(field)` the form has), else above the buttons. Answers whether
// a field took it.
export function showError(form, res, aliases) {
  var e = res && res.body && res.body.error;
  var f = e && e.field;
  if (f) {
    // `readers[1]` is shown by the list's own field when the form has no
    // control for the one item.
    var candidates = aliases ? aliases(f) : [f, f.replace(/\[\d+\]$/, '')];
    // Next to the field, the words for the code (else the server's own
    // about it) — and only there: the message is shown once.
    var own = codeText(e);
    var text = own != null ? own : e.message;
    for (var i = 0; i < candidates.length; i++) {
      if (setFieldError(form, candidates[i], text)) {
        var top0 = form.querySelector('.form-error');
        if (top0) top0.textContent = '';
        return true;
      }
    }
  }
  var top = form.querySelector('.form-error');
  if (top) top.textContent = errorText(res);
  return false;
}

export function busy(form, on) {
  form.querySelectorAll('button').forEach(function (b) { b.disabled = on; });
  form.setAttribute('aria-busy', String(on));
}

// The usual submit: clears the form's errors, marks it busy, runs `call()`
// (a promise of an API answer) and either puts the refusal next to its
// field or runs `done(res)`. Answers the form, so a view can build and
// wire it in one expression.
export function onSubmit(form, call, done) {
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    clearErrors(form);
    busy(form, true);
    Promise.resolve(call()).then(function (res) {
      busy(form, false);
      if (!ok(res)) return showError(form, res);
      if (done) done(res);
    });
  });
  return form;
}

// Marks a horizontally scrolling bar (`.nav`) with `more-left` /
// `more-right` while there is more of it on that side (the kit's CSS fades
// that edge), and keeps its active link in view.
export function scrollHint(bar) {
  function mark() {
    var more = bar.scrollWidth - bar.clientWidth;
    bar.classList.toggle('more-left', more > 1 && bar.scrollLeft > 1);
    bar.classList.toggle('more-right', more > 1 && bar.scrollLeft < more - 1);
  }
  bar.addEventListener('scroll', mark, { passive: true });
  window.addEventListener('resize', mark);
  mark();
  return {
    update: function () {
      var active = bar.querySelector('.active');
      if (active && active.scrollIntoView) active.scrollIntoView({ block: 'nearest', inline: 'nearest' });
      mark();
    }
  };
}

// ---- libraries: charts and codes ------------------------------------------------

// The front-end libraries the kernel serves at /ui/kit/vendor/ (pinned in
// kernel/portal/vendor/package-lock.json, installed by the kernel's build),
// described by /ui/kit/vendor/index.js: {name: {package, version, global,
// size, url}}. size 0: the kernel was built without them.
var vendorIndex = null;
var vendorLoads = {};

function vendorEntry(name) {
  if (!vendorIndex) {
    vendorIndex = import('./vendor/index.js').then(function (m) { return m.vendor || {}; },
      function () { return {}; });
  }
  return vendorIndex.then(function (all) {
    var e = all[name];
    return e && e.size > 0 ? e : null;
  });
}

// Loads the library `name` ('echarts.min.js', 'zxing.min.js') once, as a
// classic script from the kernel (script-src 'self' allows it); resolves
// with its global (window.echarts, window.ZXing), or null when the kernel
// has none or it did not load.
export function library(name) {
  if (!vendorLoads[name]) {
    vendorLoads[name] = vendorEntry(name).then(function (e) {
      if (!e) return null;
      if (window[e.global]) return window[e.global];
      return new Promise(function (resolve) {
        var script = h('script', { src: e.url, async: true });
        script.addEventListener('load', function () { resolve(window[e.global] || null); });
        script.addEventListener('error', function () { resolve(null); });
        document.head.appendChild(script);
      });
    });
  }
  return vendorLoads[name];
}

// A number for people, with its unit: '12,345.67 元' → '12,345.67元' in
// Chinese, '12,345.67 yuan' in English; '%' always sits right after.
function withUnit(value, unit) {
  if (value == null || value === '' || isNaN(Number(value))) return '—';
  var n;
  try { n = Number(value).toLocaleString(state.lang, { maximumFractionDigits: 2 }); } catch (e) { n = String(value); }
  if (!unit) return n;
  return n + (unit === '%' || state.lang !== 'en' ? '' : ' ') + unit;
}

function compactNumber(value) {
  try { return Number(value).toLocaleString(state.lang, { notation: 'compact', maximumFractionDigits: 1 }); } catch (e) { return String(value); }
}

var liveCharts = [];   // {el, dispose}: charts on the page, disposed once it drops them
var waitingCharts = []; // {el, show}: loaded, waiting for their element to be in the page
var chartWatch = null;

function watchCharts() {
  if (chartWatch || typeof MutationObserver !== 'function') return;
  chartWatch = new MutationObserver(function () {
    waitingCharts = waitingCharts.filter(function (w) {
      if (!w.el.isConnected) return true;
      w.show();
      return false;
    });
    liveCharts = liveCharts.filter(function (c) {
      if (c.el.isConnected) return true;
      c.dispose();
      return false;
    });
  });
  chartWatch.observe(document.documentElement, { childList: true, subtree: true });
}

function chartTable(spec, fmt) {
  var series = spec.series || [];
  var rows = (spec.categories || []).map(function (c, i) {
    return { category: c, values: series.map(function (s) { return (s.data || [])[i]; }) };
  });
  var columns = [{ label: spec.categoryLabel || '', key: 'category' }].concat(series.map(function (s, j) {
    return { label: s.name || '', num: true, render: function (r) { return fmt(r.values[j]); } };
  }));
  return table(columns, rows, { class: 'kit-chart-table' });
}

function chartOption(spec, fmt) {
  var type = spec.type || 'bar';
  var series = spec.series || [];
  var categories = (spec.categories || []).map(String);
  var legend = series.length > 1 || type === 'pie';
  var option = {
    aria: { enabled: true },
    tooltip: { trigger: type === 'pie' ? 'item' : 'axis', confine: true, valueFormatter: fmt },
    legend: { show: legend, type: 'scroll', top: type === 'pie' ? null : 0, bottom: type === 'pie' ? 0 : null }
  };
  if (type === 'pie') {
    var first = series[0] || { data: [] };
    option.series = [{
      type: 'pie', name: first.name, radius: ['30%', '62%'], center: ['50%', '45%'],
      label: { formatter: '{b} {d}%' },
      data: categories.map(function (c, i) { return { name: c, value: (first.data || [])[i] }; })
    }];
    return option;
  }
  var horizontal = !!spec.horizontal;
  var categoryAxis = { type: 'category', data: categories, inverse: horizontal,
    // Names wrap rather than being cut: a unit or category is read whole.
    axisLabel: { width: horizontal ? 160 : 80, overflow: 'break', interval: horizontal ? 0 : 'auto', hideOverlap: !horizontal } };
  var valueAxis = { type: 'value', axisLabel: { formatter: compactNumber } };
  option.grid = { left: 8, right: 24, top: legend ? 36 : 16, bottom: 8 };
  option.xAxis = horizontal ? valueAxis : categoryAxis;
  option.yAxis = horizontal ? categoryAxis : valueAxis;
  option.series = series.map(function (s) {
    return { type: type, name: s.name, data: s.data || [], barMaxWidth: 28 };
  });
  return option;
}

function chartHeight(spec) {
  if (spec.height) return spec.height;
  var n = (spec.categories || []).length;
  if (spec.type === 'pie') return 300;
  // Room for a name wrapped onto two lines beside each category's bars.
  if (spec.horizontal) return Math.max(160, n * Math.max(36, Math.max(1, (spec.series || []).length) * 20 + 8) + 70);
  return 300;
}

// A chart in `element`, drawn by ECharts (loaded on first use):
//   kit.chart(el, { type: 'bar' | 'line' | 'pie', categories: ['A', 'B'],
//     series: [{ name: '原值', data: [12.5, 30] }], unit: '元',
//     horizontal: true (bars along the x axis), height: 320 (px),
//     format: function (v) { … } (instead of the number and unit),
//     categoryLabel: '单位' (the fallback table's first heading) })
// Its texts follow the viewer's language, it resizes with its element,
// and it is disposed once the element leaves the page. Tooltip numbers
// carry the unit. Without ECharts (a kernel built offline) the element
// shows the same numbers as a table. Answers {ready: a promise of 'chart'
// or 'table', dispose()}.
export function chart(element, spec) {
  var o = spec || {};
  var fmt = o.format || function (v) { return withUnit(v, o.unit); };
  var disposed = false;
  var instance = null;
  var resize = null;
  element.textContent = '';
  element.classList.add('kit-chart');
  function dispose() {
    disposed = true;
    if (resize) resize.disconnect();
    if (instance) instance.dispose();
    instance = null;
  }
  var ready = library('echarts.min.js').then(function (echarts) {
    if (disposed) return 'disposed';
    if (!echarts) {
      element.classList.add('kit-chart-absent');
      element.appendChild(chartTable(o, fmt));
      return 'table';
    }
    return new Promise(function (resolve) {
      function show() {
        if (disposed) return resolve('disposed');
        element.style.height = chartHeight(o) + 'px';
        var old = echarts.getInstanceByDom(element);
        if (old) old.dispose();
        instance = echarts.init(element, null, { locale: state.lang === 'en' ? 'EN' : 'ZH', renderer: 'canvas' });
        instance.setOption(chartOption(o, fmt));
        if (typeof ResizeObserver === 'function') {
          resize = new ResizeObserver(function () { if (instance) instance.resize(); });
          resize.observe(element);
        }
        liveCharts.push({ el: element, dispose: dispose });
        resolve('chart');
      }
      watchCharts();
      if (element.isConnected) show();
      else waitingCharts.push({ el: element, show: show });
    });
  });
  return { ready: ready, dispose: dispose };
}

var CODE_FORMATS = ['qr_code', 'code_128', 'ean_13'];

// Draws `source` (a File or Blob, an <img>, a <video>, a <canvas>) into a
// canvas at most `max` pixels on its longer side; null when it has no
// picture (yet).
function codeCanvas(source, max) {
  if (source instanceof Blob) {
    return new Promise(function (resolve) {
      var url = URL.createObjectURL(source);
      var img = new Image();
      img.onload = function () { URL.revokeObjectURL(url); resolve(codeCanvas(img, max)); };
      img.onerror = function () { URL.revokeObjectURL(url); resolve(null); };
      img.src = url;
    });
  }
  var w = source.videoWidth || source.naturalWidth || source.width || 0;
  var ht = source.videoHeight || source.naturalHeight || source.height || 0;
  if (!w || !ht) return Promise.resolve(null);
  var scale = Math.min(1, max / Math.max(w, ht));
  var canvas = document.createElement('canvas');
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(ht * scale);
  canvas.getContext('2d', { willReadFrequently: true }).drawImage(source, 0, 0, canvas.width, canvas.height);
  return Promise.resolve(canvas);
}

function zxingRead(ZX, canvas) {
  var w = canvas.width;
  var ht = canvas.height;
  var rgba = canvas.getContext('2d', { willReadFrequently: true }).getImageData(0, 0, w, ht).data;
  var grey = new Uint8ClampedArray(w * ht);
  for (var i = 0, j = 0; i < grey.length; i += 1, j += 4) {
    grey[i] = (rgba[j] * 306 + rgba[j + 1] * 601 + rgba[j + 2] * 117) >> 10;
  }
  var hints = new Map();
  hints.set(ZX.DecodeHintType.POSSIBLE_FORMATS, [ZX.BarcodeFormat.QR_CODE, ZX.BarcodeFormat.CODE_128, ZX.BarcodeFormat.EAN_13]);
  hints.set(ZX.DecodeHintType.TRY_HARDER, true);
  var reader = new ZX.MultiFormatReader();
  reader.setHints(hints);
  try {
    return reader.decode(new ZX.BinaryBitmap(new ZX.HybridBinarizer(new ZX.RGBLuminanceSource(grey, w, ht)))).getText();
  } catch (e) {
    return null; // no code in this picture
  }
}

function detector() {
  if (typeof window.BarcodeDetector !== 'function') return null;
  try { return new window.BarcodeDetector({ formats: CODE_FORMATS }); } catch (e) { return null; }
}

// Whether this browser can read codes from pictures: the browser's own
// BarcodeDetector (Chrome on Android, macOS) or the ZXing library the kit
// serves (iOS Safari, the WeChat browser, desktop Linux).
// ---- where the plugin's terminals are ----------------------------------------------
//
// kit.positionsMap(el, {org, every}) draws the plugin's terminals where
// they last reported (GET /api/v1/telemetry/positions; the portal always
// names this page's plugin) on the region's map — the pinned GeoJSON of
// the org's province, /ui/kit/vendor/map-<two digits>.json — with a table
// of them and the newest alerts under it, read again every `every` ms
// (10 s) while `el` is in the page. Without ECharts the table alone.
// Answers {refresh(), stop(), last()}: last() is the newest answer.

var mapLoads = {};

function regionMapOf(org, echarts) {
  var province = String(org || '').replace(/^org-/, '').slice(0, 2);
  if (!/^\d\d$/.test(province)) return Promise.resolve(null);
  if (!mapLoads[province]) {
    mapLoads[province] = vendorEntry('map-' + province + '.json').then(function (e) {
      if (!e) return null;
      return fetch(e.url).then(function (r) { return r.ok ? r.json() : null; }).then(function (geo) {
        if (!geo) return null;
        var name = 'region-' + province;
        echarts.registerMap(name, geo);
        return name;
      });
    }).catch(function () { return null; });
  }
  return mapLoads[province];
}

export function positionsMap(el, opts) {
  var o = opts || {};
  var every = o.every || 10000;
  var org = o.org || actingOrg();
  var box = h('div', { class: 'kit-positions-map' });
  var count = h('p', { class: 'kit-positions-count muted' });
  var list = h('div', { class: 'kit-positions-list' });
  var alerts = h('div', { class: 'kit-positions-alerts' });
  el.textContent = '';
  append(el, [count, box, h('h3', null, tr('positions.alerts')), alerts, h('h3', null, tr('positions.list')), list]);
  var instance = null;
  var drawnAs = null;
  var timer = null;
  var latest = null;
  var echartsReady = library('echarts.min.js');

  function draw(answer) {
    latest = answer;
    var points = answer.positions || [];
    var moving = points.filter(function (p) { return p.speed_kmh > 0; }).length;
    count.textContent = tr('positions.count', { n: points.length, moving: moving });
    el.setAttribute('data-positions', String(points.length));
    list.textContent = '';
    append(list, table([
      { key: 'name', label: tr('positions.vehicle'), render: function (p) { return p.name; } },
      { key: 'speed', label: tr('positions.speed'), render: function (p) { return withUnit(p.speed_kmh, 'km/h'); } },
      { key: 'at', label: tr('positions.at'), render: function (p) { return new Date(p.at).toLocaleString(state.lang, { hour12: false }); } },
      { key: 'where', label: tr('positions.where'), render: function (p) { return p.latitude.toFixed(5) + ', ' + p.longitude.toFixed(5); } }
    ], points, { empty: tr('positions.none') }));
    alerts.textContent = '';
    append(alerts, table([
      { key: 'at', label: tr('positions.at'), render: function (a) { return new Date(a.at).toLocaleString(state.lang, { hour12: false }); } },
      { key: 'name', label: tr('positions.vehicle'), render: function (a) { return a.name; } },
      { key: 'rule', label: tr('positions.rule'), render: function (a) { return has('alert.' + a.rule) ? tr('alert.' + a.rule) : a.rule; } }
    ], answer.alerts || [], { empty: tr('positions.noAlerts') }));
    return echartsReady.then(function (echarts) {
      if (!echarts || !el.isConnected) return;
      return regionMapOf(org, echarts).then(function (map) {
        if (!el.isConnected) return;
        if (!instance) instance = echarts.init(box, null, { renderer: 'canvas', locale: state.lang === 'en' ? 'EN' : 'ZH' });
        var series = {
          type: 'scatter',
          symbolSize: 12,
          itemStyle: { borderColor: '#fff', borderWidth: 1.5, color: function (p) { return p.data.fast ? '#d93025' : p.data.parked ? '#8a94a6' : '#1a7f37'; } },
          data: points.map(function (p) {
            return { name: p.name, value: [p.longitude, p.latitude, p.speed_kmh], fast: p.speed_kmh > 120 || p.alarm !== 0, parked: p.speed_kmh === 0 };
          })
        };
        var option = {
          tooltip: { trigger: 'item', formatter: function (p) { return p.name + ' ' + withUnit(p.value[2], 'km/h'); } },
          series: [series]
        };
        if (map) {
          // No area names: the package's are from 2016 (吐鲁番地区).
          option.geo = { map: map, roam: true, itemStyle: { areaColor: '#eef3fb', borderColor: '#7a9cc6' }, label: { show: false }, emphasis: { label: { show: false } } };
          series.coordinateSystem = 'geo';
          box.setAttribute('data-map', map);
        } else {
          option.xAxis = { type: 'value', scale: true };
          option.yAxis = { type: 'value', scale: true };
        }
        // Replaced only when the map comes or goes: otherwise the points
        // move from where they were instead of growing in again each read.
        var mode = map || 'plane';
        instance.setOption(option, drawnAs !== mode);
        drawnAs = mode;
      });
    });
  }

  function refresh() {
    if (!el.isConnected && timer) return stop();
    return api('GET', '/api/v1/telemetry/positions' + query({ org: org })).then(function (res) {
      if (!ok(res)) {
        count.textContent = errorText(res);
        return res;
      }
      return draw(res.body);
    });
  }

  function stop() {
    clearInterval(timer);
    timer = null;
    if (instance) instance.dispose();
    instance = null;
    drawnAs = null;
  }

  timer = setInterval(refresh, every);
  var first = refresh();
  return { refresh: refresh, stop: stop, last: function () { return latest; }, ready: first };
}

export function canReadCodes() {
  if (detector()) return Promise.resolve(true);
  return vendorEntry('zxing.min.js').then(function (e) { return !!e; });
}

// Reads a QR code or barcode (QR, Code 128, EAN-13) from `source`: a File
// from `<input type=file accept=image/* capture=environment>`, an <img>, a
// <video> showing the camera, or a <canvas>. Resolves with its text, or
// null when there is none or no decoder. BarcodeDetector where the browser
// has one, else ZXing.
export function readCode(source) {
  var found = detector();
  return codeCanvas(source, source instanceof Blob ? 1600 : 960).then(function (canvas) {
    if (!canvas) return null;
    if (found) {
      return found.detect(canvas).then(function (codes) {
        return codes && codes[0] ? codes[0].rawValue : null;
      }, function () { return null; });
    }
    return library('zxing.min.js').then(function (ZX) { return ZX ? zxingRead(ZX, canvas) : null; });
  });
}

// ---- routing -----------------------------------------------------------------

// '#/cards/12?page=2' → {parts: ['cards', '12'], params: URLSearchParams}.
export function parseHash() {
  var raw = location.hash.replace(/^#\/?/, '');
  var qi = raw.indexOf('?');
  var path = qi >= 0 ? raw.slice(0, qi) : raw;
  var params = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
  var parts = path.split('/').filter(Boolean).map(function (p) {
    try { return decodeURIComponent(p); } catch (e) { return p; }
  });
  return { parts: parts, params: params };
}

export function query(params) {
  var parts = [];
  Object.keys(params).forEach(function (k) {
    var v = params[k];
    if (v != null && v !== '') parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(v));
  });
  return parts.length ? '?' + parts.join('&') : '';
}

// A hash router: routes {name: function (parts, params, live)}; the first
// path segment picks the route (`fallback` when none matches). `live()`
// turns false once the user has moved on, so late answers are dropped.
export function router(routes, fallback) {
  var seq = 0;
  function run() {
    var mine = ++seq;
    var r = parseHash();
    var name = r.parts[0] || fallback;
    var view = routes[name] || routes[fallback];
    reportRoute(routes[name] && has('nav.' + name) ? tr('nav.' + name) : '');
    if (view) view(r.parts, r.params, function () { return mine === seq; });
  }
  window.addEventListener('hashchange', run);
  return {
    run: run,
    go: function (hash) {
      if (location.hash === hash) run();
      else location.hash = hash;
    }
  };
}

// ---- approvals: the subject summary, the panel, the to-do list ------------------
//
// An approval's `form` is the JSON its plugin passed to approvals::start.
// The convention the kit and the portal render (docs/plugin-guide.md,
// "What the approver sees"):
//   { "title":   {"zh-CN": "资产登记 DJ…", "en": "Registration DJ…"},
//     "summary": [{"label": {"zh-CN": "原值", "en": "Original value"},
//                  "value": 520000, "format": "money_fen", "unit": "元"}],
//     "files":   ["<file id>", …],
//     …the plugin's own keys, which the summary leaves alone }
// format: money_fen (fen shown as yuan, thousands separators), number,
// date, text (the default); unit and label may be a {zh-CN, en} pair. A
// form without `summary` is shown as a key/value table.

// A kernel title or step name in the viewer's language only: a
// {zh-CN, en} pair by the language, a "中文 English" string (how flows
// name their steps) by its Chinese or its English half, never both.
export function oneLang(value) {
  if (value == null) return '';
  if (typeof value === 'object') return localized(value);
  var s = String(value);
  var m = /^([^A-Za-z]*[\u3400-\u9fff][^A-Za-z]*?)\s+([A-Za-z][\x20-\x7e]*)$/.exec(s);
  if (!m) return s;
  return state.lang === 'en' ? m[2].trim() : m[1].trim();
}

// An approval's title for the viewer: the form's {zh-CN, en} title when
// the plugin gave one, else the kernel's title in one language.
export function approvalTitle(a) {
  var t = a && a.form && a.form.title;
  if (t && typeof t === 'object') return localized(t);
  return oneLang(a ? a.title || a.flow_title : '');
}

function joinUnit(n, unit) {
  if (!unit) return n;
  return n + (unit === '%' || state.lang !== 'en' ? '' : ' ') + unit;
}

function numberText(n, digits) {
  var o = digits == null ? { maximumFractionDigits: 2 } : { minimumFractionDigits: digits, maximumFractionDigits: digits };
  try { return Number(n).toLocaleString(state.lang, o); } catch (e) { return String(n); }
}

// An amount in fen as yuan for people: 1234567 → '12,345.67元'
// ('12,345.67 yuan' in English; `unit` replaces the unit).
export function fenText(fen, unit) {
  if (fen == null || fen === '' || isNaN(Number(fen))) return '—';
  return joinUnit(numberText(Number(fen) / 100, 2), unit == null ? tr('summary.yuan') : unit);
}

function dateText(v) {
  if (typeof v === 'number') {
    try { return new Date(v * 1000).toLocaleDateString(state.lang); } catch (e) { return String(v); }
  }
  return String(v);
}

// One summary line's value as text, by its format.
export function summaryValue(item) {
  var v = item ? item.value : null;
  var unit = item && item.unit != null ? localized(item.unit) : null;
  if (v == null || v === '') return '—';
  switch (item.format) {
    case 'money_fen': return fenText(v, unit);
    case 'number': return isNaN(Number(v)) ? String(v) : joinUnit(numberText(v), unit);
    case 'date': return dateText(v);
    default: return joinUnit(typeof v === 'object' ? localized(v) || JSON.stringify(v) : String(v), unit);
  }
}

function plainValue(v) {
  if (v == null || v === '') return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// What is being approved: the form's summary lines and attached files, or
// (for a form without `summary`) its keys and values. opts.api(method,
// path) answers {status, body} (the kit's bridge by default; the portal
// passes its own) and opts.openFile(id, name) opens a file (default:
// download it).
export function approvalSummary(form, opts) {
  var o = opts || {};
  var call0 = o.api || api;
  var f = form && typeof form === 'object' ? form : {};
  var box = h('div', { class: 'kit-summary' });
  if (Array.isArray(f.summary)) {
    box.appendChild(h('dl', { class: 'kit-summary-lines' }, f.summary.map(function (item) {
      var numeric = item && (item.format === 'money_fen' || item.format === 'number');
      return h('div', { class: 'kit-summary-line', 'data-format': (item && item.format) || 'text' }, [
        h('dt', null, localized(item && item.label)),
        h('dd', { class: numeric ? 'num' : null }, summaryValue(item))
      ]);
    })));
  } else {
    var keys = Object.keys(f).filter(function (k) { return k !== 'title' && k !== 'files'; });
    if (keys.length) {
      box.appendChild(h('table', { class: 'kit-summary-raw' }, h('tbody', null, keys.map(function (k) {
        return h('tr', null, [h('th', { scope: 'row' }, k), h('td', null, plainValue(f[k]))]);
      }))));
    } else if (!Array.isArray(f.files) || !f.files.length) {
      box.appendChild(h('p', { class: 'muted' }, tr('common.empty')));
    }
  }
  var files = Array.isArray(f.files) ? f.files.filter(function (id) { return typeof id === 'string' && id; }) : [];
  if (files.length) {
    box.appendChild(h('p', { class: 'kit-summary-files-title' }, tr('summary.files')));
    box.appendChild(h('ul', { class: 'kit-files' }, files.map(function (id) {
      var link = h('a', { href: '#', 'data-file-id': id }, id);
      link.addEventListener('click', function (ev) {
        ev.preventDefault();
        if (o.openFile) o.openFile(id, link.textContent);
        else download('/api/v1/files/' + encodeURIComponent(id), link.textContent);
      });
      call0('GET', '/api/v1/files/' + encodeURIComponent(id) + '/meta').then(function (res) {
        var meta = res && res.status === 200 && res.body && res.body.file;
        if (meta && meta.name) link.textContent = meta.name;
      });
      return h('li', null, link);
    })));
  }
  return box;
}

function when(seconds) {
  try { return new Date(seconds * 1000).toLocaleString(state.lang); } catch (e) { return String(seconds); }
}

function stepName(a, step) {
  var s = a && a.steps && a.steps[step - 1];
  return s ? oneLang(s.name) : '';
}

// The approval panel for a record's page: status, current step, what is
// being approved, the timeline, and what the viewer may do — withdraw (the
// applicant, while it runs), approve, reject or send back to an earlier
// step (an approver holding the task; the last two need a reason), each
// confirmed first.
//   kit.approvalPanel(el, { approvalId })        — one approval
//   kit.approvalPanel(el, { approvals: list })   — the newest of a record's
//     approvals (the plugin's API gives them: approvals::for_subject)
// opts.onDone(action, detail) runs after an action took effect;
// opts.summary: false leaves the summary out; opts.withdraw: false leaves
// withdrawing to the record's own button. Answers {ready, reload()}.
export function approvalPanel(el, opts) {
  var o = opts || {};
  var id = o.approvalId;
  if (!id && Array.isArray(o.approvals) && o.approvals.length) {
    var newest = o.approvals.slice().sort(function (x, y) { return (x.created_at || 0) - (y.created_at || 0); });
    id = newest[newest.length - 1].id;
  }
  el.classList.add('kit-approval-panel');
  function load() {
    if (!id) {
      el.textContent = '';
      el.appendChild(h('p', { class: 'muted kit-approval-none' }, tr('panel.none')));
      return Promise.resolve(null);
    }
    return api('GET', '/api/v1/approvals/' + encodeURIComponent(id)).then(function (res) {
      el.textContent = '';
      if (!ok(res) || !res.body) {
        el.appendChild(h('p', { class: 'form-error' }, errorText(res)));
        return null;
      }
      renderPanel(el, res.body, o, load);
      return res.body;
    });
  }
  return { ready: load(), reload: load };
}

function renderPanel(el, d, o, reload) {
  var a = d.approval;
  el.setAttribute('data-approval', a.id);
  el.setAttribute('data-status', a.status);
  var current = a.status === 'running' ? stepName(a, a.current_step) : '';
  var parts = [
    h('div', { class: 'kit-approval-head' }, [
      h('strong', { class: 'kit-approval-title' }, approvalTitle(a)),
      h('span', { class: 'kit-badge kit-approval-status', 'data-status': a.status }, tr('panel.status.' + a.status)),
      current ? h('span', { class: 'muted kit-approval-step' }, tr('panel.currentStep', { step: current })) : null
    ])
  ];
  if (o.summary !== false) parts.push(approvalSummary(a.form, o));
  parts.push(h('ol', { class: 'kit-steps' }, (a.steps || []).map(function (s, i) {
    var cls = a.status === 'running' && i + 1 === a.current_step ? 'current'
      : a.status === 'approved' || (a.status === 'running' && i + 1 < a.current_step) ? 'done' : null;
    return h('li', { class: cls }, oneLang(s.name));
  })));
  parts.push(h('p', { class: 'kit-timeline-title' }, tr('panel.timeline')));
  parts.push(h('ul', { class: 'kit-timeline' }, (d.timeline || []).map(function (t) {
    var what = tr('panel.action.' + t.action);
    if (t.action === 'rejected' && t.detail && t.detail.to_step > 0) {
      what = tr('panel.action.returned', { step: stepName(a, t.detail.to_step) });
    }
    var step = t.step > 0 ? stepName(a, t.step) : '';
    return h('li', { 'data-action': t.action }, [
      h('span', { class: 'kit-timeline-who' }, t.actor_name || t.actor),
      ' ',
      h('span', { class: 'kit-timeline-what' }, what),
      step ? h('span', { class: 'muted' }, ' · ' + step) : null,
      h('time', { class: 'muted' }, ' ' + when(t.at)),
      t.comment ? h('p', { class: 'kit-timeline-comment' }, t.comment) : null
    ]);
  })));
  if (d.can_act || (d.can_withdraw && o.withdraw !== false)) parts.push(approvalActions(a, d, o, reload));
  el.textContent = '';
  append(el, parts);
}

function approvalActions(a, d, o, reload) {
  var comment = h('textarea', { rows: '2', class: 'kit-approval-comment', placeholder: tr('panel.commentHint') });
  var form = h('form', { class: 'kit-approval-actions kit-no-print', novalidate: true });
  var fields = [field('comment', tr('panel.comment'), comment, true)];
  var toStep = null;
  if (d.can_act && a.current_step > 1) {
    toStep = h('select', null, (a.steps || []).slice(0, a.current_step - 1).map(function (s, i) {
      return h('option', { value: String(i + 1) }, oneLang(s.name));
    }));
    fields.push(field('to_step', tr('panel.toStep'), toStep));
  }
  var buttons = [];
  function button(action, cls) {
    var b = h('button', { type: 'button', class: 'button ' + action + (cls ? ' ' + cls : ''), 'data-action': action,
      onclick: function () { decide(action); } }, tr('panel.' + action));
    buttons.push(b);
  }
  if (d.can_act) {
    button('approve', 'primary');
    button('reject', 'danger');
    if (toStep) button('sendBack');
  }
  if (d.can_withdraw && o.withdraw !== false) button('withdraw');
  append(form, fields.concat([formError(), h('div', { class: 'actions' }, buttons)]));
  form.addEventListener('submit', function (ev) { ev.preventDefault(); });
  function decide(action) {
    clearErrors(form);
    var text = comment.value.trim();
    if ((action === 'reject' || action === 'sendBack') && !text) {
      setFieldError(form, 'comment', tr('panel.reasonRequired'));
      return;
    }
    var step = action === 'sendBack' ? stepName(a, Number(toStep.value)) : '';
    confirm(tr('panel.confirm.' + action, { title: approvalTitle(a), step: step })).then(function (yes) {
      if (!yes) return;
      var body = { comment: text };
      var path = action;
      if (action === 'reject') body.to_step = 0;
      if (action === 'sendBack') { path = 'reject'; body.to_step = Number(toStep.value); }
      if (!text) delete body.comment;
      busy(form, true);
      api('POST', '/api/v1/approvals/' + encodeURIComponent(a.id) + '/' + path, body).then(function (res) {
        busy(form, false);
        if (!ok(res)) return showError(form, res);
        if (o.onDone) o.onDone(action, res.body);
        else reload();
      });
    });
  }
  return form;
}

// This plugin's to-dos from the kernel (the portal's bridge keeps only
// this plugin's approvals), a page at a time.
//   kit.todoList(el, { kind: 'pending' | 'copied' | 'started',
//     open: function (item) { return '#/documents/' + item.approval.subject_id; },
//     detail: function (item) { return element or null },  // under the summary
//     empty: 'text', pageSize: 20, onDone(action, detail) })
// Clicking an item goes to open(item) (the plugin's own record); without
// `open` it unfolds the approval panel inside the item. Answers
// {ready, reload()}.
export function todoList(el, opts) {
  var o = opts || {};
  var per = o.pageSize || 20;
  var page = 1;
  el.classList.add('kit-todos');
  function load() {
    var path = '/api/v1/todos' + query({ kind: o.kind || 'pending', limit: per, offset: (page - 1) * per });
    return api('GET', path).then(function (res) {
      el.textContent = '';
      if (!ok(res) || !res.body) {
        el.appendChild(h('p', { class: 'form-error' }, errorText(res)));
        return null;
      }
      var items = res.body.items || [];
      var list = h('ul', { class: 'kit-todo-list', id: o.id || 'todo-list' });
      if (!items.length) {
        list.appendChild(h('li', { class: 'muted empty', id: 'todo-empty' }, o.empty || tr('todo.empty')));
      }
      items.forEach(function (item) { list.appendChild(todoItem(item, o, load)); });
      el.appendChild(list);
      var total = res.body.total;
      if (total > per || page > 1) {
        el.appendChild(pager(total, page, res.body.next_offset != null,
          function () { page -= 1; load(); }, function () { page += 1; load(); }));
      }
      return res.body;
    });
  }
  return { ready: load(), reload: load };
}

function todoItem(item, o, reload) {
  var a = item.approval;
  var panel = h('div', { class: 'kit-todo-panel', hidden: true });
  var title = h('a', { href: o.open ? o.open(item) : '#', class: 'todo-title' }, approvalTitle(a));
  title.addEventListener('click', function (ev) {
    if (o.open) return;
    ev.preventDefault();
    if (!panel.hidden) { panel.hidden = true; return; }
    panel.hidden = false;
    approvalPanel(panel, { approvalId: a.id, summary: false, onDone: function (action, d) {
      if (o.onDone) o.onDone(action, d);
      else reload();
    } });
  });
  var meta = [oneLang(a.flow_title)];
  if (item.step_name) meta.push(tr('panel.currentStep', { step: oneLang(item.step_name) }));
  meta.push(tr('todo.since', { when: when(item.since) }));
  return h('li', { class: 'todo', 'data-approval': a.id, 'data-plugin': a.plugin }, [
    h('div', { class: 'todo-head' }, [title,
      item.urged_at ? h('span', { class: 'todo-urged' }, tr('todo.urged')) : null,
      h('span', { class: 'muted todo-meta' }, meta.join(' · '))]),
    approvalSummary(a.form, o),
    o.detail ? o.detail(item) : null,
    panel
  ]);
}

// ---- printing ------------------------------------------------------------------

// Prints the page (a record with its approval timeline) on A4: no menu,
// no buttons, no forms (kit.css's print rules, which also hold while
// <html> has the class `kit-print`; `.kit-no-print` hides anything else).
// `el` (optional) is printed alone. A sandboxed page may not open the
// print dialog itself, so the portal prints its frame.
export function print(el) {
  var root = document.documentElement;
  root.classList.add('kit-print');
  if (el) { el.classList.add('kit-print-target'); root.classList.add('kit-print-only'); }
  function done() {
    root.classList.remove('kit-print', 'kit-print-only');
    if (el) el.classList.remove('kit-print-target');
    window.removeEventListener('afterprint', done);
  }
  window.addEventListener('afterprint', done);
  var height = Math.max(document.documentElement.scrollHeight, document.body.scrollHeight);
  return call('print', { height: height }).then(function (res) {
    if (!res || res.status !== 204) {
      try { window.print(); } catch (e) { /* no dialog in the sandbox */ }
    }
    setTimeout(done, 1000);
    return res;
  });
}

// Loads the kit's texts for `lang` without touching the document: for the
// portal, which renders approval summaries with the kit.
export function useTexts(lang) {
  if (LANGS.indexOf(lang) < 0) lang = DEFAULT_LANG;
  return loadJson('/ui/kit/i18n/' + lang + '.json').catch(function () { return {}; }).then(function (t) {
    state.lang = lang;
    state.kitT = t || {};
  });
}
