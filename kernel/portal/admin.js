// The admin console and self-service pages of the portal: users, the org
// tree, role bindings, plugins, the audit trail, dead letters, the system
// page (for the platform administrator and for administrators of an org
// subtree, who see and change only their subtree: the kernel decides every
// call), and "my account" for every user (password, sessions, API tokens).
// Plain JavaScript like portal.js; the shell hands over #/admin/… and
// #/account through window.TianshanAdmin.route and the login's forced
// password change through window.TianshanAdmin.forcedChange.
(function () {
  'use strict';

  var messages = {};      // lang → the admin dictionary
  var ctx = null;         // the shell's context at the last route
  var view = null;        // the <section> this file draws into
  var renderSeq = 0;      // drops answers for a page that is no longer shown
  var orgCache = null;    // the visible org tree, flattened (reset per route)

  var KERNEL_ROLES = ['member', 'org-admin', 'auditor', 'platform-admin'];

  // ---- small helpers ----------------------------------------------------------

  function t(key, values) {
    var dict = (ctx && messages[ctx.lang]) || {};
    var s = dict[key];
    if (s == null && ctx) s = ctx.tr(key, values);
    return String(s == null ? key : s).replace(/\{(\w+)\}/g, function (_, k) {
      return values && values[k] != null ? String(values[k]) : '';
    });
  }

  // h('tag.class', {attr: …, on: {click: fn}}, [children or text])
  function h(spec, attrs, children) {
    var parts = spec.split('.');
    var node = document.createElement(parts[0]);
    if (parts.length > 1) node.className = parts.slice(1).join(' ');
    attrs = attrs || {};
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v == null || v === false) return;
      if (k === 'on') {
        Object.keys(v).forEach(function (ev) { node.addEventListener(ev, v[ev]); });
      } else if (k === 'text') {
        node.textContent = v;
      } else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden') {
        node[k] = v;
      } else {
        node.setAttribute(k, v === true ? '' : String(v));
      }
    });
    [].concat(children == null ? [] : children).forEach(function (c) {
      if (c == null || c === false) return;
      node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    });
    return node;
  }

  function when(seconds) {
    if (!seconds) return '—';
    try {
      return new Date(seconds * 1000).toLocaleString(ctx.lang);
    } catch (e) {
      return new Date(seconds * 1000).toISOString();
    }
  }

  function orgLabel(org) {
    if (!org) return '';
    return (ctx.localized(org.name) || org.id) + ' (' + org.code + ')';
  }

  // An API error in the reader's language: the kernel's stable code picks
  // the sentence; its own (English) message is the fallback.
  function errorText(res) {
    var e = res && res.body && res.body.error;
    if (!e) return t('admin.error.generic', { status: res ? res.status : '—' });
    var dict = messages[ctx.lang] || {};
    var key = 'admin.error.' + e.code;
    if (dict[key] == null) return e.message;
    var text = t(key, e.params || {});
    if (e.field) {
      var hint = dict['admin.fieldHint.' + e.field];
      text += ' ' + (hint != null ? hint : t('admin.field', { field: e.field }));
    }
    // The kernel's own sentence is English: it adds detail for English readers.
    if (ctx.lang === 'en' && e.message) text += ' (' + e.message + ')';
    return text;
  }

  function call(method, path, body) {
    return ctx.api(method, path, body).then(function (res) {
      if (res.status === 401 && path !== '/api/v1/auth/password') ctx.sessionExpired();
      return res;
    });
  }

  // Raw bytes (a plugin package), with the credentials ctx.api would send.
  function upload(method, path, file) {
    var headers = { Accept: 'application/json', 'Content-Type': 'application/octet-stream' };
    if (ctx.org) headers['X-Tianshan-Org'] = ctx.org;
    if (ctx.csrf) headers['X-CSRF-Token'] = ctx.csrf;
    return fetch(path, { method: method, credentials: 'same-origin', cache: 'no-store', headers: headers, body: file })
      .then(function (r) {
        return r.json().catch(function () { return null; }).then(function (b) { return { status: r.status, body: b }; });
      });
  }

  function banner(box, kind, text) {
    box.textContent = text || '';
    box.className = 'admin-banner ' + (text ? 'admin-' + kind : '');
    box.hidden = !text;
  }

  function roles() {
    return ((ctx.me && ctx.me.bindings) || []).map(function (b) { return b.role; });
  }

  function has(role) { return roles().indexOf(role) >= 0; }

  function isAdmin() { return has('platform-admin') || has('org-admin'); }

  function mayAudit() { return isAdmin() || has('auditor'); }

  function isPlatformAdmin() { return !!(ctx.me && ctx.me.is_platform_admin) || has('platform-admin'); }

  // ---- menu -------------------------------------------------------------------

  var NAV = [
    { id: 'account', hash: '#/account', icon: '◉', show: function () { return true; } },
    { id: 'overview', hash: '#/overview', icon: '◧', show: function () { return true; } },
    { id: 'datacenter', hash: '#/datacenter', icon: '▤', show: function () { return true; } },
    { id: 'dashboards', hash: '#/dashboards', icon: '▣', show: function () { return true; } },
    { id: 'users', hash: '#/admin/users', icon: '☺', show: isAdmin },
    { id: 'orgs', hash: '#/admin/orgs', icon: '⌬', show: isAdmin },
    { id: 'plugins', hash: '#/admin/plugins', icon: '▦', show: isAdmin },
    { id: 'audit', hash: '#/admin/audit', icon: '☰', show: mayAudit },
    { id: 'dead', hash: '#/admin/dead', icon: '⚠', show: isPlatformAdmin },
    { id: 'system', hash: '#/admin/system', icon: '⚙', show: isPlatformAdmin }
  ];

  function renderMenu(active) {
    var menu = document.getElementById('menu');
    if (!menu) return;
    var box = document.getElementById('admin-menu');
    if (!box) {
      box = h('div.admin-menu', { id: 'admin-menu' });
      menu.appendChild(box);
    }
    box.textContent = '';
    var items = NAV.filter(function (n) { return n.show(); });
    var adminItems = items.filter(function (n) { return ['account', 'datacenter', 'overview', 'dashboards'].indexOf(n.id) < 0; });
    box.appendChild(h('p.menu-heading', { text: t(adminItems.length ? 'admin.menu.heading' : 'admin.menu.mine') }));
    items.forEach(function (n) {
      var a = h('a.menu-entry' + (n.id === active ? '.active' : ''), {
        href: n.hash, 'data-admin': n.id, 'aria-current': n.id === active ? 'page' : null
      }, [h('span.menu-icon', { 'aria-hidden': 'true', text: n.icon }), h('span.menu-label', { text: t('admin.nav.' + n.id) })]);
      box.appendChild(a);
    });
  }

  // ---- routing ----------------------------------------------------------------

  function parse(hash) {
    var m = /^#\/account$/.exec(hash || '');
    if (m) return { page: 'account' };
    m = /^#\/datacenter(?:\/([^/?#]+))?$/.exec(hash || '');
    if (m) {
      try { return { page: 'datacenter', arg: m[1] ? decodeURIComponent(m[1]) : null }; } catch (e) { return null; }
    }
    m = /^#\/dashboards(?:\/([^/?#]+))?$/.exec(hash || '');
    if (m) {
      try { return { page: 'dashboards', arg: m[1] ? decodeURIComponent(m[1]) : null }; } catch (e) { return null; }
    }
    m = /^#\/overview(?:\/([^/?#]+))?$/.exec(hash || '');
    if (m) {
      try { return { page: 'overview', arg: m[1] ? decodeURIComponent(m[1]) : null }; } catch (e) { return null; }
    }
    m = /^#\/admin\/(users|orgs|plugins|audit|dead|system)(?:\/([^/]+))?$/.exec(hash || '');
    if (!m) return null;
    var arg = null;
    try { arg = m[2] ? decodeURIComponent(m[2]) : null; } catch (e) { return null; }
    return { page: m[1], arg: arg };
  }

  function loadMessages(lang) {
    if (messages[lang]) return Promise.resolve();
    return fetch('/portal/i18n/admin.' + lang + '.json', { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error('admin i18n ' + r.status);
      return r.json();
    }).then(function (dict) { messages[lang] = dict; }, function () { messages[lang] = messages[lang] || {}; });
  }

  function ensureView() {
    if (view && view.isConnected) return view;
    view = h('section.admin', { id: 'admin-view', hidden: true });
    var main = document.getElementById('main');
    if (main) main.insertBefore(view, main.firstChild);
    return view;
  }

  function owns(hash) { return parse(hash) !== null; }

  // Called by the shell on every route; answers whether the page is ours.
  function route(hash, shell) {
    ctx = shell;
    ensureView();
    var target = parse(hash);
    var lang = shell.lang;
    var seq = ++renderSeq;
    loadMessages(lang).then(function () {
      if (seq !== renderSeq) return;
      renderMenu(target ? target.page : null);
      if (!target) return;
      orgCache = null;
      document.title = t('admin.nav.' + target.page) + ' · ' + ctx.tr('platform.name');
      view.textContent = '';
      PAGES[target.page](target.arg, seq);
    });
    return !!target;
  }

  function page(titleKey, intro) {
    var box = h('div.admin-page');
    box.appendChild(h('h1.section-title', { text: t(titleKey) }));
    if (intro) box.appendChild(h('p.admin-intro', { text: intro }));
    var note = h('p.admin-banner', { role: 'alert', hidden: true });
    box.appendChild(note);
    view.appendChild(box);
    return { box: box, note: note };
  }

  function card(titleKey, children) {
    return h('div.admin-card', null, [titleKey ? h('h2', { text: t(titleKey) }) : null].concat(children));
  }

  function field(labelKey, input, hint) {
    var id = 'admin-f-' + Math.random().toString(36).slice(2, 9);
    input.id = input.id || id;
    return h('div.field', null, [h('label', { for: input.id, text: t(labelKey) }), input, hint ? h('small.admin-hint', { text: hint }) : null]);
  }

  function input(name, type, value) {
    return h('input', { name: name, type: type || 'text', value: value == null ? '' : value, autocomplete: 'off' });
  }

  function button(key, onClick, kind) {
    return h('button.button.' + (kind || 'button-secondary'), { type: 'button', text: t(key), on: { click: onClick } });
  }

  function table(headKeys, rows) {
    var thead = h('thead', null, h('tr', null, headKeys.map(function (k) { return h('th', { text: t(k) }); })));
    var tbody = h('tbody', null, rows);
    return h('div.admin-table-wrap', null, h('table.admin-table', null, [thead, tbody]));
  }

  function td(content) { return h('td', null, content); }

  // Busy while a call runs, then the note says how it went.
  function act(note, el, promise, okKey, after) {
    if (el) el.disabled = true;
    return promise.then(function (res) {
      if (el) el.disabled = false;
      if (res.status >= 200 && res.status < 300) {
        banner(note, 'ok', okKey ? t(okKey) : '');
        if (after) after(res);
      } else {
        banner(note, 'error', errorText(res));
      }
      return res;
    }, function () {
      if (el) el.disabled = false;
      banner(note, 'error', ctx.tr('error.network'));
    });
  }

  // The visible org tree, flattened with depth, in tree order.
  function loadOrgs() {
    if (orgCache) return Promise.resolve(orgCache);
    return call('GET', '/api/v1/orgs').then(function (res) {
      var flat = [];
      function walk(list, depth) {
        (list || []).forEach(function (o) {
          flat.push({ org: o, depth: depth });
          walk(o.children, depth + 1);
        });
      }
      if (res.status === 200 && res.body) walk(res.body.orgs, 0);
      orgCache = flat;
      return flat;
    });
  }

  function orgSelect(flat, filter, selected) {
    var select = h('select', { name: 'org' });
    flat.filter(function (x) { return !filter || filter(x.org); }).forEach(function (x) {
      var o = h('option', { value: x.org.id, text: '\u00a0\u00a0'.repeat(x.depth) + orgLabel(x.org) });
      if (x.org.id === selected) o.selected = true;
      select.appendChild(o);
    });
    return select;
  }

  // ---- my account (every user) -----------------------------------------------

  function accountPage(_, seq) {
    var p = page('admin.nav.account');
    var current = input('current_password', 'password');
    current.setAttribute('autocomplete', 'current-password');
    var next = input('new_password', 'password');
    next.setAttribute('autocomplete', 'new-password');
    var again = input('new_password_again', 'password');
    again.setAttribute('autocomplete', 'new-password');
    var change = button('admin.account.change', function () {
      if (next.value !== again.value) {
        banner(p.note, 'error', t('admin.account.mismatch'));
        return;
      }
      act(p.note, change, call('POST', '/api/v1/auth/password', {
        current_password: current.value, new_password: next.value
      }), null, function () {
        // Every session ended, this one too: sign in with the new password.
        ctx.sessionExpired();
      });
    }, 'button-primary');
    change.id = 'admin-password-change';
    p.box.appendChild(card('admin.account.password', [
      h('p.admin-intro', { text: t('admin.account.passwordIntro') }),
      field('admin.account.current', current), field('admin.account.new', next), field('admin.account.again', again), change
    ]));

    // 出差代理: while away, the approvals' steps go to a colleague.
    var away = h('div', { id: 'admin-delegation' });
    var delegate = input('delegate');
    var from = input('from', 'date');
    var until = input('until', 'date');
    var note = input('note');
    delegate.id = 'admin-delegation-delegate';
    from.id = 'admin-delegation-from';
    until.id = 'admin-delegation-until';
    var save = button('admin.delegation.save', function () {
      act(p.note, save, call('PUT', '/api/v1/me/delegation', {
        delegate: delegate.value, from: from.value, until: until.value, note: note.value || null
      }), 'admin.done', loadDelegation);
    }, 'button-primary');
    save.id = 'admin-delegation-save';
    p.box.appendChild(card('admin.account.delegation', [
      h('p.admin-intro', { text: t('admin.delegation.intro') }),
      away,
      h('div.admin-row', null, [field('admin.delegation.delegate', delegate), field('admin.delegation.from', from),
        field('admin.delegation.until', until), field('admin.delegation.note', note)]),
      save
    ]));
    function loadDelegation() {
      call('GET', '/api/v1/me/delegation').then(function (res) {
        if (seq !== renderSeq) return;
        away.textContent = '';
        if (res.status !== 200) return banner(p.note, 'error', errorText(res));
        var d = res.body.delegation;
        if (!d) return away.appendChild(h('p.admin-intro', { text: t('admin.delegation.none') }));
        var end = button('admin.delegation.end', function () {
          act(p.note, end, call('DELETE', '/api/v1/me/delegation'), 'admin.done', loadDelegation);
        });
        away.appendChild(h('p', { 'data-delegate': d.delegate }, [
          h('span', { text: t(d.active ? 'admin.delegation.active' : 'admin.delegation.planned',
            { name: d.delegate_name, from: d.from, until: d.until }) }), ' ', end
        ]));
      });
    }
    loadDelegation();

    var sessions = h('div', { id: 'admin-sessions' });
    p.box.appendChild(card('admin.account.sessions', [sessions]));
    function loadSessions() {
      call('GET', '/api/v1/auth/sessions').then(function (res) {
        if (seq !== renderSeq) return;
        sessions.textContent = '';
        if (res.status !== 200) return banner(p.note, 'error', errorText(res));
        sessions.appendChild(table(['admin.col.opened', 'admin.col.lastSeen', 'admin.col.address', 'admin.col.actions'],
          res.body.sessions.map(function (s) {
            var end = s.current ? h('span.admin-tag', { text: t('admin.account.thisSession') }) :
              button('admin.account.end', function () {
                act(p.note, end, call('DELETE', '/api/v1/auth/sessions/' + encodeURIComponent(s.id)), 'admin.done', loadSessions);
              });
            return h('tr', { 'data-session': s.id }, [td(when(s.created_at)), td(when(s.last_seen_at)), td(s.address || '—'), td(end)]);
          })));
      });
    }
    loadSessions();

    var tokens = h('div', { id: 'admin-tokens' });
    var tname = input('name');
    var tperms = input('permissions', 'text', 'kernel.orgs.read');
    var tdays = input('expires_in_days', 'number', '30');
    var secret = h('p.admin-secret', { hidden: true });
    var create = button('admin.tokens.create', function () {
      act(p.note, create, call('POST', '/api/v1/tokens', {
        name: tname.value,
        permissions: tperms.value.split(/[\s,]+/).filter(Boolean),
        expires_in_days: Number(tdays.value)
      }), 'admin.tokens.created', function (res) {
        secret.hidden = false;
        secret.textContent = t('admin.tokens.secret', { token: res.body.token });
        loadTokens();
      });
    }, 'button-primary');
    p.box.appendChild(card('admin.account.tokens', [
      tokens,
      h('div.admin-row', null, [field('admin.tokens.name', tname), field('admin.tokens.permissions', tperms), field('admin.tokens.days', tdays)]),
      create, secret
    ]));
    function loadTokens() {
      call('GET', '/api/v1/tokens').then(function (res) {
        if (seq !== renderSeq) return;
        tokens.textContent = '';
        if (res.status !== 200) return banner(p.note, 'error', errorText(res));
        tokens.appendChild(table(['admin.tokens.name', 'admin.tokens.permissions', 'admin.col.expires', 'admin.col.lastUsed', 'admin.col.actions'],
          res.body.tokens.map(function (tok) {
            var revoke = tok.revoked_at ? h('span.admin-tag', { text: t('admin.tokens.revoked') }) :
              button('admin.tokens.revoke', function () {
                act(p.note, revoke, call('DELETE', '/api/v1/tokens/' + encodeURIComponent(tok.id)), 'admin.done', loadTokens);
              });
            return h('tr', null, [td(tok.name), td((tok.permissions || []).join(', ')), td(when(tok.expires_at)), td(when(tok.last_used_at)), td(revoke)]);
          })));
      });
    }
    loadTokens();
  }

  // ---- users --------------------------------------------------------------------

  function usersPage(userId, seq) {
    if (userId) return userPage(userId, seq);
    var p = page('admin.nav.users', t('admin.users.intro'));
    loadOrgs().then(function (flat) {
      if (seq !== renderSeq) return;
      if (!flat.length) return banner(p.note, 'error', t('admin.noOrgs'));
      var scope = orgSelect(flat, null, flat[0].org.id);
      scope.id = 'admin-users-org';
      var q = input('q', 'search');
      var list = h('div', { id: 'admin-users' });
      function load() {
        var path = '/api/v1/users?limit=200&org=' + encodeURIComponent(scope.value) +
          (q.value ? '&q=' + encodeURIComponent(q.value) : '');
        call('GET', path).then(function (res) {
          if (seq !== renderSeq) return;
          list.textContent = '';
          if (res.status !== 200) return banner(p.note, 'error', errorText(res));
          var byId = {};
          flat.forEach(function (x) { byId[x.org.id] = x.org; });
          list.appendChild(table(['admin.col.username', 'admin.col.name', 'admin.col.unit', 'admin.col.status', 'admin.col.actions'],
            res.body.users.map(function (u) { return userRow(u, byId, p.note, load); })));
        });
      }
      scope.addEventListener('change', load);
      q.addEventListener('input', function () { clearTimeout(q._timer); q._timer = setTimeout(load, 250); });
      p.box.appendChild(card(null, [h('div.admin-row', null, [field('admin.users.scope', scope), field('admin.users.search', q)]), list]));
      p.box.appendChild(newUserCard(flat, p.note, load));
      load();
    });
  }

  function statusText(u) {
    var parts = [];
    parts.push(t(u.disabled ? 'admin.users.disabled' : 'admin.users.active'));
    if (u.must_change_password) parts.push(t('admin.users.mustChange'));
    return parts.join(' · ');
  }

  function userRow(u, byId, note, reload) {
    var open = h('a', { href: '#/admin/users/' + encodeURIComponent(u.id), text: u.username });
    var toggle = button(u.disabled ? 'admin.users.enable' : 'admin.users.disable', function () {
      act(note, toggle, call('PATCH', '/api/v1/users/' + encodeURIComponent(u.id), { disabled: !u.disabled }), 'admin.done', reload);
    });
    var reset = button('admin.users.reset', function () { location.hash = '#/admin/users/' + encodeURIComponent(u.id); });
    return h('tr', { 'data-user': u.username }, [
      td(open), td(u.display_name), td(orgLabel(byId[u.org_id]) || u.org_id), td(statusText(u)),
      td(h('div.admin-actions', null, [reset, toggle]))
    ]);
  }

  function newUserCard(flat, note, reload) {
    var username = input('username');
    username.id = 'admin-new-username';
    var name = input('display_name');
    name.id = 'admin-new-name';
    var unit = orgSelect(flat, function (o) { return o.level === 'unit' && o.active; });
    unit.id = 'admin-new-unit';
    var password = input('password', 'password');
    password.id = 'admin-new-password';
    password.setAttribute('autocomplete', 'new-password');
    var must = h('input', { type: 'checkbox', checked: true, id: 'admin-new-must-change' });
    var create = button('admin.users.create', function () {
      act(note, create, call('POST', '/api/v1/users', {
        username: username.value.trim(), display_name: name.value.trim(), password: password.value,
        org_id: unit.value, must_change_password: must.checked
      }), 'admin.users.created', function () {
        username.value = ''; name.value = ''; password.value = '';
        reload();
      });
    }, 'button-primary');
    create.id = 'admin-new-create';
    return card('admin.users.new', [
      h('div.admin-row', null, [field('admin.col.username', username), field('admin.col.name', name)]),
      h('div.admin-row', null, [field('admin.col.unit', unit), field('admin.users.initialPassword', password, t('admin.users.passwordRule'))]),
      h('label.admin-check', null, [must, ' ', t('admin.users.mustChangeBox')]),
      create
    ]);
  }

  function userPage(id, seq) {
    var p = page('admin.users.one');
    p.box.insertBefore(h('p', null, h('a', { href: '#/admin/users', text: '← ' + t('admin.nav.users') })), p.box.firstChild);
    Promise.all([call('GET', '/api/v1/users/' + encodeURIComponent(id)), loadOrgs(), call('GET', '/api/v1/post-ranks')]).then(function (r) {
      if (seq !== renderSeq) return;
      var res = r[0];
      var flat = r[1];
      var ranks = (r[2].status === 200 && r[2].body.post_ranks) || [];
      if (res.status !== 200) return banner(p.note, 'error', errorText(res));
      var u = res.body.user;
      var byId = {};
      flat.forEach(function (x) { byId[x.org.id] = x.org; });
      function reload() { if (seq === renderSeq) { view.textContent = ''; userPage(id, ++renderSeq); } }

      var name = input('display_name', 'text', u.display_name);
      // The profile plugins read through identity.profile-of (the office
      // area standard goes by the post rank).
      var rank = h('select', { name: 'post_rank', id: 'admin-user-rank' },
        [h('option', { value: '', text: t('admin.users.rankNone') })].concat(ranks.map(function (x) {
          return h('option', { value: x.code, text: x.label[ctx.lang] || x.label['zh-CN'] || x.code });
        })));
      rank.value = u.post_rank || '';
      var position = input('position', 'text', u.position || '');
      position.id = 'admin-user-position';
      var department = input('department', 'text', u.department || '');
      department.id = 'admin-user-department';
      var save = button('admin.save', function () {
        act(p.note, save, call('PATCH', '/api/v1/users/' + encodeURIComponent(id), {
          display_name: name.value, post_rank: rank.value, position: position.value, department: department.value
        }), 'admin.done');
      });
      save.id = 'admin-user-save';
      var toggle = button(u.disabled ? 'admin.users.enable' : 'admin.users.disable', function () {
        act(p.note, toggle, call('PATCH', '/api/v1/users/' + encodeURIComponent(id), { disabled: !u.disabled }), 'admin.done', reload);
      });
      var locked = res.body.locked_until;
      var unlock = button('admin.users.unlock', function () {
        act(p.note, unlock, call('POST', '/api/v1/users/' + encodeURIComponent(id) + '/unlock', {}), 'admin.users.unlocked', reload);
      });
      unlock.id = 'admin-unlock';
      p.box.appendChild(card(null, [
        h('dl.admin-facts', null, [
          h('dt', { text: t('admin.col.username') }), h('dd', { id: 'admin-user-username', text: u.username }),
          h('dt', { text: t('admin.col.unit') }), h('dd', { text: orgLabel(byId[u.org_id]) || u.org_id }),
          h('dt', { text: t('admin.col.status') }), h('dd', { id: 'admin-user-status', text: statusText(u) }),
          h('dt', { text: t('admin.users.lock') }), h('dd', { text: locked ? t('admin.users.lockedUntil', { at: when(locked) }) : t('admin.users.notLocked') })
        ]),
        h('div.admin-row', null, [field('admin.col.name', name), field('admin.users.rank', rank)]),
        h('div.admin-row', null, [field('admin.users.position', position), field('admin.users.department', department)]),
        h('div.admin-actions', null, [save, toggle, unlock])
      ]));

      var password = input('password', 'password');
      password.id = 'admin-reset-password';
      password.setAttribute('autocomplete', 'new-password');
      var must = h('input', { type: 'checkbox', checked: true });
      var reset = button('admin.users.reset', function () {
        act(p.note, reset, call('POST', '/api/v1/users/' + encodeURIComponent(id) + '/password', {
          password: password.value, must_change_password: must.checked
        }), 'admin.users.resetDone', function () { password.value = ''; reload(); });
      }, 'button-primary');
      reset.id = 'admin-reset-submit';
      p.box.appendChild(card('admin.users.reset', [
        field('admin.users.newPassword', password, t('admin.users.passwordRule')),
        h('label.admin-check', null, [must, ' ', t('admin.users.mustChangeBox')]),
        reset
      ]));

      var bindings = res.body.bindings || [];
      var rows = bindings.map(function (b) {
        var remove = button('admin.bindings.remove', function () {
          act(p.note, remove, call('DELETE', '/api/v1/bindings/' + encodeURIComponent(b.id)), 'admin.done', reload);
        });
        return h('tr', null, [td(b.role), td(orgLabel(byId[b.org_id]) || b.org_id), td(remove)]);
      });
      var role = h('input', { list: 'admin-roles', name: 'role', value: 'member' });
      var roleList = h('datalist', { id: 'admin-roles' }, KERNEL_ROLES.map(function (r) { return h('option', { value: r }); }));
      var at = orgSelect(flat, function (o) { return o.active; });
      var grant = button('admin.bindings.grant', function () {
        act(p.note, grant, call('POST', '/api/v1/bindings', { user: id, role: role.value.trim(), org: at.value }), 'admin.done', reload);
      }, 'button-primary');
      p.box.appendChild(card('admin.bindings.title', [
        table(['admin.col.role', 'admin.col.org', 'admin.col.actions'], rows),
        h('div.admin-row', null, [field('admin.col.role', role), roleList, field('admin.col.org', at)]),
        grant
      ]));
    });
  }

  // ---- the org tree ----------------------------------------------------------

  function orgsPage(_, seq) {
    var p = page('admin.nav.orgs', t('admin.orgs.intro'));
    loadOrgs().then(function (flat) {
      if (seq !== renderSeq) return;
      if (!flat.length) return banner(p.note, 'error', t('admin.noOrgs'));
      function reload() { if (seq === renderSeq) { view.textContent = ''; orgsPage(null, ++renderSeq); } }
      var rows = flat.map(function (x) {
        var o = x.org;
        var pick = h('a', { href: '#', text: ctx.localized(o.name), on: { click: function (ev) { ev.preventDefault(); edit(o); } } });
        return h('tr', { 'data-org': o.id, class: o.active ? null : 'admin-muted' }, [
          h('td', { style: 'padding-left:' + (0.5 + x.depth * 1.2) + 'rem' }, pick),
          td(o.code), td(t('admin.level.' + o.level)),
          td(o.headcount_actual + ' / ' + o.headcount_authorized),
          td(t(o.active ? 'admin.orgs.active' : 'admin.orgs.inactive'))
        ]);
      });
      var editor = h('div', { id: 'admin-org-editor' });
      p.box.appendChild(card(null, [table(['admin.col.name', 'admin.col.code', 'admin.col.level', 'admin.orgs.headcount', 'admin.col.status'], rows)]));
      p.box.appendChild(editor);

      function edit(o) {
        editor.textContent = '';
        var zh = input('name_zh', 'text', o.name['zh-CN']);
        var en = input('name_en', 'text', o.name.en);
        var authorized = input('headcount_authorized', 'number', o.headcount_authorized);
        var actual = input('headcount_actual', 'number', o.headcount_actual);
        var parent = orgSelect(flat, function (x) { return x.id !== o.id && x.level !== 'unit'; }, o.parent_id);
        var save = button('admin.save', function () {
          var body = { name: { 'zh-CN': zh.value, en: en.value },
            headcount_authorized: Number(authorized.value), headcount_actual: Number(actual.value) };
          act(p.note, save, call('PATCH', '/api/v1/orgs/' + encodeURIComponent(o.id), body), 'admin.done', reload);
        }, 'button-primary');
        var move = button('admin.orgs.move', function () {
          act(p.note, move, call('PATCH', '/api/v1/orgs/' + encodeURIComponent(o.id), { parent_id: parent.value }), 'admin.done', reload);
        });
        var toggle = button(o.active ? 'admin.orgs.deactivate' : 'admin.orgs.activate', function () {
          act(p.note, toggle, call('PATCH', '/api/v1/orgs/' + encodeURIComponent(o.id), { active: !o.active }), 'admin.done', reload);
        });
        var cLevel = h('select', null, ['prefecture', 'county', 'unit'].map(function (l) {
          return h('option', { value: l, text: t('admin.level.' + l) });
        }));
        var cCode = input('code');
        var cZh = input('name_zh');
        var cEn = input('name_en');
        var create = button('admin.orgs.create', function () {
          act(p.note, create, call('POST', '/api/v1/orgs', {
            parent_id: o.id, level: cLevel.value, code: cCode.value.trim(),
            name: { 'zh-CN': cZh.value, en: cEn.value }
          }), 'admin.done', reload);
        }, 'button-primary');
        editor.appendChild(card(null, [
          h('h2', { text: orgLabel(o) }),
          h('div.admin-row', null, [field('admin.orgs.nameZh', zh), field('admin.orgs.nameEn', en)]),
          h('div.admin-row', null, [field('admin.orgs.authorized', authorized), field('admin.orgs.actual', actual)]),
          save,
          h('div.admin-row', null, [field('admin.orgs.parent', parent)]),
          h('div.admin-actions', null, [move, toggle])
        ]));
        editor.appendChild(card('admin.orgs.child', [
          h('div.admin-row', null, [field('admin.col.level', cLevel), field('admin.col.code', cCode, t('admin.orgs.codeRule'))]),
          h('div.admin-row', null, [field('admin.orgs.nameZh', cZh), field('admin.orgs.nameEn', cEn)]),
          create
        ]));
        editor.scrollIntoView({ block: 'nearest' });
      }
    });
  }

  // ---- plugins ------------------------------------------------------------------

  function pluginsPage(id, seq) {
    if (id) return pluginPage(id, seq);
    var p = page('admin.nav.plugins', t('admin.plugins.intro'));
    var list = h('div', { id: 'admin-plugins' });
    function load() {
      call('GET', '/api/v1/plugins').then(function (res) {
        if (seq !== renderSeq) return;
        list.textContent = '';
        if (res.status !== 200) return banner(p.note, 'error', errorText(res));
        list.appendChild(table(['admin.col.plugin', 'admin.col.version', 'admin.col.org', 'admin.col.status', 'admin.col.actions'],
          res.body.plugins.map(function (pl) {
            var enabled = pl.state === 'enabled';
            var toggle = button(enabled ? 'admin.plugins.disable' : 'admin.plugins.enable', function () {
              act(p.note, toggle, call('POST', '/api/v1/plugins/' + encodeURIComponent(pl.id) + (enabled ? '/disable' : '/enable')), 'admin.done', load);
            });
            var remove = button('admin.plugins.uninstall', function () {
              if (!window.confirm(t('admin.plugins.confirmUninstall', { id: pl.id }))) return;
              act(p.note, remove, call('DELETE', '/api/v1/plugins/' + encodeURIComponent(pl.id)), 'admin.done', load);
            });
            return h('tr', { 'data-plugin': pl.id }, [
              td(h('a', { href: '#/admin/plugins/' + encodeURIComponent(pl.id), text: ctx.localized(pl.name) + ' (' + pl.id + ')' })),
              td(pl.version), td(pl.org_id || t('admin.plugins.platformWide')),
              td(t('admin.plugins.state.' + pl.state)), td(h('div.admin-actions', null, [toggle, remove]))
            ]);
          })));
      });
    }
    var file = h('input', { type: 'file', accept: '.tspkg' });
    var scope = h('input', { name: 'org', placeholder: t('admin.plugins.scopeHint') });
    var install = button('admin.plugins.install', function () {
      if (!file.files || !file.files[0]) return banner(p.note, 'error', t('admin.plugins.pickFile'));
      var path = '/api/v1/plugins' + (scope.value.trim() ? '?org=' + encodeURIComponent(scope.value.trim()) : '');
      act(p.note, install, upload('POST', path, file.files[0]), 'admin.plugins.installed', load);
    }, 'button-primary');
    p.box.appendChild(card(null, [list]));
    p.box.appendChild(card('admin.plugins.upload', [h('p.admin-intro', { text: t('admin.plugins.uploadIntro') }),
      h('div.admin-row', null, [field('admin.plugins.package', file), field('admin.plugins.scope', scope)]), install]));
    load();
  }

  function pluginPage(id, seq) {
    var p = page('admin.plugins.one');
    p.box.insertBefore(h('p', null, h('a', { href: '#/admin/plugins', text: '← ' + t('admin.nav.plugins') })), p.box.firstChild);
    Promise.all([
      call('GET', '/api/v1/plugins/' + encodeURIComponent(id)),
      call('GET', '/api/v1/plugins/' + encodeURIComponent(id) + '/subscriptions')
    ]).then(function (r) {
      if (seq !== renderSeq) return;
      var res = r[0];
      if (res.status !== 200) return banner(p.note, 'error', errorText(res));
      function reload() { if (seq === renderSeq) { view.textContent = ''; pluginPage(id, ++renderSeq); } }
      var d = res.body;
      var m = d.manifest || {};
      p.box.appendChild(card(null, [h('dl.admin-facts', null, [
        h('dt', { text: t('admin.col.plugin') }), h('dd', { text: ctx.localized(d.plugin.name) + ' (' + id + ')' }),
        h('dt', { text: t('admin.col.version') }), h('dd', { text: d.plugin.version }),
        h('dt', { text: t('admin.plugins.publisher') }), h('dd', { text: d.plugin.publisher }),
        h('dt', { text: t('admin.plugins.contract') }), h('dd', { text: d.plugin.contract }),
        h('dt', { text: t('admin.plugins.limits') }), h('dd', { text: d.limits.memory_mib + ' MiB · ' + d.limits.timeout_ms + ' ms' }),
        h('dt', { text: t('admin.plugins.history') }), h('dd', { id: 'admin-plugin-versions', text: (d.stored_versions || []).join(', ') }),
        h('dt', { text: 'SHA-256' }), h('dd.admin-mono', { text: d.plugin.sha256 })
      ])]));
      var perms = (m.permissions || []).map(function (perm) {
        return h('tr', null, [td(perm.id), td(ctx.localized(perm.label)), td((perm.roles || []).join(', '))]);
      });
      p.box.appendChild(card('admin.plugins.permissions', [table(['admin.col.permission', 'admin.col.name', 'admin.col.role'], perms)]));
      var subs = (r[1].status === 200 && r[1].body.subscriptions) || [];
      var boxes = subs.map(function (s) {
        var cb = h('input', { type: 'checkbox', checked: s.granted, value: s.topic });
        return h('label.admin-check', null, [cb, ' ', s.topic]);
      });
      var grant = button('admin.plugins.grant', function () {
        var topics = boxes.map(function (l) { return l.firstChild; }).filter(function (c) { return c.checked; }).map(function (c) { return c.value; });
        act(p.note, grant, call('PUT', '/api/v1/plugins/' + encodeURIComponent(id) + '/subscriptions', { topics: topics }), 'admin.done', reload);
      }, 'button-primary');
      p.box.appendChild(card('admin.plugins.subscriptions', subs.length ? boxes.concat([grant]) : [h('p.admin-intro', { text: t('admin.plugins.noSubscriptions') })]));
      var file = h('input', { type: 'file', accept: '.tspkg' });
      var upgrade = button('admin.plugins.upgrade', function () {
        if (!file.files || !file.files[0]) return banner(p.note, 'error', t('admin.plugins.pickFile'));
        act(p.note, upgrade, upload('PUT', '/api/v1/plugins/' + encodeURIComponent(id), file.files[0]), 'admin.plugins.upgraded', reload);
      }, 'button-primary');
      p.box.appendChild(card('admin.plugins.upgrade', [field('admin.plugins.package', file), upgrade]));
    });
  }

  // ---- the audit trail ------------------------------------------------------------

  function auditPage(_, seq) {
    var p = page('admin.nav.audit', t('admin.audit.intro'));
    var actor = input('actor');
    var action = input('action');
    action.id = 'admin-audit-action';
    var outcome = h('select', { name: 'outcome' }, ['', 'ok', 'denied', 'failed'].map(function (o) {
      return h('option', { value: o, text: o ? t('admin.audit.outcome.' + o) : t('admin.audit.any') });
    }));
    var since = input('since', 'date');
    var until = input('until', 'date');
    var list = h('div', { id: 'admin-audit' });
    var more = button('admin.audit.more', function () { load(true); });
    var exportLink = h('a.button.button-secondary', { href: '#', id: 'admin-audit-export', text: t('admin.audit.export') });
    var before = null;
    var rows = [];
    function query() {
      var q = [];
      if (actor.value.trim()) q.push('actor=' + encodeURIComponent(actor.value.trim()));
      if (action.value.trim()) q.push('action=' + encodeURIComponent(action.value.trim()));
      if (outcome.value) q.push('outcome=' + encodeURIComponent(outcome.value));
      if (since.value) q.push('since=' + Math.floor(new Date(since.value + 'T00:00:00').getTime() / 1000));
      if (until.value) q.push('until=' + Math.floor(new Date(until.value + 'T23:59:59').getTime() / 1000));
      return q;
    }
    function load(append) {
      var q = query();
      q.push('limit=100');
      if (append && before) q.push('before=' + before);
      exportLink.href = '/api/v1/audit/export?' + query().join('&');
      call('GET', '/api/v1/audit?' + q.join('&')).then(function (res) {
        if (seq !== renderSeq) return;
        if (res.status !== 200) return banner(p.note, 'error', errorText(res));
        if (!append) rows = [];
        rows = rows.concat(res.body.records);
        before = res.body.next_before;
        more.hidden = !before;
        list.textContent = '';
        list.appendChild(table(['admin.col.seq', 'admin.col.at', 'admin.col.actor', 'admin.col.action', 'admin.col.outcome', 'admin.col.org', 'admin.col.target'],
          rows.map(function (r) {
            return h('tr', { 'data-action': r.action }, [td(String(r.seq)), td(when(r.at)), td(r.actor), td(r.action),
              td(r.outcome), td(r.org_id || '—'), td(r.target || '—')]);
          })));
      });
    }
    var apply = button('admin.audit.apply', function () { load(false); }, 'button-primary');
    apply.id = 'admin-audit-apply';
    // The whole chain, checked by the kernel with its key and anchors; only
    // an auditor at the root may ask (others see the refusal's words).
    var verdict = h('span', { id: 'admin-audit-verdict', role: 'status' });
    var verify = button('admin.audit.verify', function () {
      verdict.textContent = t('admin.audit.verifying');
      call('GET', '/api/v1/audit/verify').then(function (res) {
        if (res.status !== 200) { verdict.textContent = errorText(res); return; }
        var v = res.body;
        verdict.textContent = v.intact
          ? t('admin.audit.intact', { records: v.records, keyed: v.keyed, anchors: v.anchors })
          : t('admin.audit.broken', { seq: v.seq, reason: v.reason });
        verdict.className = v.intact ? 'ok' : 'error';
      });
    });
    verify.id = 'admin-audit-verify';
    p.box.appendChild(card(null, [
      h('div.admin-row', null, [field('admin.col.actor', actor), field('admin.col.action', action), field('admin.col.outcome', outcome),
        field('admin.audit.since', since), field('admin.audit.until', until)]),
      h('div.admin-actions', null, [apply, exportLink]),
      h('div.admin-actions', null, [verify, verdict])
    ]));
    p.box.appendChild(card(null, [list, more]));
    load(false);
  }

  // ---- dead letters -----------------------------------------------------------------

  function deadPage(_, seq) {
    var p = page('admin.nav.dead', t('admin.dead.intro'));
    var list = h('div', { id: 'admin-dead' });
    var counts = h('p.admin-intro');
    function load() {
      call('GET', '/api/v1/events/dead').then(function (res) {
        if (seq !== renderSeq) return;
        list.textContent = '';
        if (res.status !== 200) return banner(p.note, 'error', errorText(res));
        counts.textContent = Object.keys(res.body.counts || {}).map(function (k) {
          return t('admin.dead.count', { status: k, n: res.body.counts[k] });
        }).join(' · ');
        list.appendChild(table(['admin.dead.subscriber', 'admin.dead.topic', 'admin.col.org', 'admin.dead.attempts', 'admin.dead.error', 'admin.col.at', 'admin.col.actions'],
          res.body.dead.map(function (d) {
            var replay = button('admin.dead.replay', function () {
              act(p.note, replay, call('POST', '/api/v1/events/dead/' + encodeURIComponent(d.subscriber) + '/' + d.event_seq + '/replay'), 'admin.dead.replayed', load);
            });
            var payload = h('details', null, [h('summary', { text: t('admin.dead.payload') }), h('pre.admin-mono', { text: d.payload || '' })]);
            return h('tr', null, [td(d.subscriber), td([d.topic, payload]), td(d.org_id || '—'), td(String(d.attempts)),
              td(d.last_error || ''), td(when(d.failed_at)), td(replay)]);
          })));
      });
    }
    p.box.appendChild(card(null, [counts, list]));
    load();
  }

  // ---- the system page -------------------------------------------------------------

  function systemPage(_, seq) {
    var p = page('admin.nav.system');
    call('GET', '/api/v1/system').then(function (res) {
      if (seq !== renderSeq) return;
      if (res.status !== 200) return banner(p.note, 'error', errorText(res));
      var s = res.body;
      p.box.appendChild(card(null, [h('dl.admin-facts', { id: 'admin-system' }, [
        h('dt', { text: t('admin.system.version') }), h('dd', { text: s.version }),
        h('dt', { text: t('admin.system.node') }), h('dd', { text: s.node }),
        h('dt', { text: t('admin.system.database') }), h('dd', { text: t('admin.system.databaseLine', {
          kind: s.database.kind, schema: s.database.schema_version, ms: s.database.round_trip_ms.toFixed(1) }) }),
        h('dt', { text: 'NATS' }), h('dd', { text: t(!s.nats.configured ? 'admin.system.natsOff' : s.nats.connected ? 'admin.system.natsUp' : 'admin.system.natsDown') }),
        h('dt', { text: t('admin.system.queue') }), h('dd', { text: Object.keys(s.deliveries).map(function (k) { return k + ': ' + s.deliveries[k]; }).join(' · ') || '0' })
      ])]));
      p.box.appendChild(card('admin.nav.plugins', [table(['admin.col.plugin', 'admin.col.version', 'admin.col.org', 'admin.col.status'],
        s.plugins.map(function (pl) {
          return h('tr', null, [td(pl.id), td(pl.version), td(pl.org_id || t('admin.plugins.platformWide')), td(t('admin.plugins.state.' + pl.state))]);
        }))]));
    });
  }

  // ---- the data center: the catalogue, one indicator, manual entry -----------------
  //
  // Every signed-in user reads the catalogue (the government's, not a
  // plugin's) and the values of the orgs their bindings reach; the kernel
  // answers only those. The plan's indicators nobody's system measures
  // (standards issued) are entered here by whoever holds
  // kernel.datacenter.write.

  function nameOf(ind) { return (ind.name && (ind.name[ctx.lang] || ind.name['zh-CN'])) || ind.code; }

  // A catalogue unit in the viewer's language where it is a word.
  function unitText(unit) { return ctx.unitText(unit); }

  function number(v) {
    return v == null ? '—' : Number(v).toLocaleString(ctx.lang, { maximumFractionDigits: 3 });
  }

  function targetText(ind) {
    var tg = ind.target;
    if (!tg) return '—';
    return t('admin.dc.target.' + tg.kind, { value: number(tg.value), unit: unitText(ind.unit), period: tg.period || '', baseline: tg.baseline_period || '' });
  }

  function datacenterPage(code, seq) {
    if (code) return indicatorPage(code, seq);
    var p = page('admin.nav.datacenter', t('admin.dc.intro'));
    var filter = input('q', 'search');
    filter.id = 'dc-filter';
    var wall = h('a.button.button-secondary', { href: '/wall/', target: '_blank', rel: 'noopener', id: 'dc-wall', text: t('admin.dc.wall') });
    var openPage = h('a.button.button-secondary', { href: '/open/', target: '_blank', rel: 'noopener', id: 'dc-open', text: t('admin.dc.openPage') });
    var sharing = h('select', { name: 'sharing', id: 'dc-sharing-filter' }, ['', 'private', 'shared', 'open'].map(function (s) {
      return h('option', { value: s, text: s ? t('admin.dc.sharing.' + s) : t('admin.dc.anySharing') });
    }));
    var list = h('div', { id: 'dc-catalogue' });
    p.box.appendChild(card(null, [h('div.admin-toolbar', null, [field('admin.dc.search', filter), field('admin.dc.sharingFilter', sharing), wall, openPage]), list]));
    call('GET', '/api/v1/datacenter/indicators').then(function (res) {
      if (seq !== renderSeq) return;
      if (res.status !== 200) return banner(p.note, 'error', errorText(res));
      var all = res.body.indicators || [];
      function draw() {
        var q = filter.value.trim().toLowerCase();
        list.textContent = '';
        var rows = all.filter(function (ind) {
          if (sharing.value && ind.sharing !== sharing.value) return false;
          return !q || ind.code.toLowerCase().indexOf(q) >= 0 || nameOf(ind).toLowerCase().indexOf(q) >= 0;
        }).map(function (ind) {
          return h('tr', { 'data-code': ind.code }, [
            td(h('a', { href: '#/datacenter/' + encodeURIComponent(ind.code), text: nameOf(ind) })),
            td(h('code', { text: ind.code })), td(ind.owner), td(unitText(ind.unit)),
            td(t('admin.dc.agg.' + ind.aggregation)), td(t('admin.dc.gran.' + ind.granularity)),
            td(t('admin.dc.sharing.' + ind.sharing)), td(targetText(ind))
          ]);
        });
        list.appendChild(table(['admin.dc.name', 'admin.dc.code', 'admin.dc.owner', 'admin.dc.unit', 'admin.dc.aggregation',
          'admin.dc.granularity', 'admin.dc.sharingCol', 'admin.dc.targetCol'], rows));
        list.appendChild(h('p.admin-intro', { text: t('admin.dc.count', { n: rows.length, total: all.length }) }));
      }
      filter.addEventListener('input', draw);
      sharing.addEventListener('change', draw);
      draw();
    });
  }

  function indicatorPage(code, seq) {
    var p = page('admin.nav.datacenter');
    var base = '/api/v1/datacenter/indicators/' + encodeURIComponent(code);
    call('GET', base).then(function (res) {
      if (seq !== renderSeq) return;
      if (res.status !== 200) return banner(p.note, 'error', errorText(res));
      var ind = res.body.indicator;
      p.box.querySelector('h1').textContent = nameOf(ind);
      p.box.appendChild(card(null, [h('dl.admin-facts', { id: 'dc-facts' }, [
        h('dt', { text: t('admin.dc.code') }), h('dd', null, h('code', { text: ind.code })),
        h('dt', { text: t('admin.dc.owner') }), h('dd', { text: ind.owner }),
        h('dt', { text: t('admin.dc.unit') }), h('dd', { text: unitText(ind.unit) }),
        h('dt', { text: t('admin.dc.aggregation') }), h('dd', { text: t('admin.dc.agg.' + ind.aggregation) }),
        h('dt', { text: t('admin.dc.granularity') }), h('dd', { text: t('admin.dc.gran.' + ind.granularity) }),
        h('dt', { text: t('admin.dc.sharingCol') }), h('dd', { text: t('admin.dc.sharing.' + ind.sharing) }),
        h('dt', { text: t('admin.dc.targetCol') }), h('dd', { text: targetText(ind) })
      ]), h('p', null, h('a', { href: '#/datacenter', text: t('admin.dc.back') }))]));
      var byOrg = h('div', { id: 'dc-by-org' });
      var byYear = h('div', { id: 'dc-by-year' });
      function download(format, group) {
        return button('admin.dc.export.' + format, function () {
          var a = h('a', { href: base + '/values?format=' + format + '&group=' + group + '&per=year', download: '' });
          document.body.appendChild(a);
          a.click();
          a.remove();
        });
      }
      p.box.appendChild(card('admin.dc.byOrg', [byOrg, h('div.admin-actions', null, [download('csv', 'org'), download('xlsx', 'org')])]));
      p.box.appendChild(card('admin.dc.byYear', [byYear]));
      function load() {
        Promise.all([
          call('GET', base + '/values?group=org&per=year'),
          call('GET', base + '/values?per=year')
        ]).then(function (r) {
          if (seq !== renderSeq) return;
          byOrg.textContent = '';
          byYear.textContent = '';
          if (r[0].status !== 200) return banner(p.note, 'error', errorText(r[0]));
          byOrg.appendChild(table(['admin.col.org', 'admin.dc.period', 'admin.dc.value'], r[0].body.rows.map(function (row) {
            var o = (r[0].body.orgs || {})[row.org];
            return h('tr', { 'data-org': row.org }, [td(o ? ctx.localized(o.name) || o.code : row.org), td(row.period), td(number(row.value))]);
          })));
          if (r[1].status === 200) {
            byYear.appendChild(table(['admin.dc.period', 'admin.dc.value'], r[1].body.rows.map(function (row) {
              return h('tr', null, [td(row.period), td(number(row.value))]);
            })));
          }
        });
      }
      if (ind.owner === 'kernel') p.box.appendChild(card('admin.dc.enter', [entryForm(base, p.note, load)]));
      if (isPlatformAdmin()) {
        p.box.appendChild(sharingCard(ind, base, p.note, function (saved) {
          ind = saved.body.indicator;
          var dd = p.box.querySelector('#dc-facts dd:nth-of-type(6)');
          if (dd) dd.textContent = t('admin.dc.sharing.' + ind.sharing);
        }));
      }
      load();
    });
  }

  function entryForm(base, note, after) {
    var org = input('org', 'text', (ctx.me && ctx.me.org) || '');
    org.id = 'dc-entry-org';
    var period = input('period', 'text', String(new Date().getFullYear()));
    period.id = 'dc-entry-period';
    var value = input('value', 'number');
    value.id = 'dc-entry-value';
    value.step = 'any';
    var save = button('admin.save', function () {
      act(note, save, call('POST', base + '/values', { values: [{ org: org.value.trim() || null, period: period.value.trim(), value: Number(value.value) }] }),
        'admin.dc.entered', after);
    }, 'button-primary');
    save.id = 'dc-entry-save';
    return h('div.admin-form', null, [
      h('p.admin-intro', { text: t('admin.dc.enterIntro') }),
      field('admin.col.org', org, t('admin.dc.orgHint')), field('admin.dc.period', period), field('admin.dc.value', value),
      h('div.admin-actions', null, [save])
    ]);
  }

  // ---- the leaders' overview: region → prefecture → county → unit -------------------
  //
  // One read of the data center's overview per org, the same answer the LED
  // wall draws. The kernel decides which orgs the viewer reaches: an org
  // outside reach answers 404 like one that does not exist, so a hand-typed
  // address shows nothing more than the menu would.

  // The indicator the viewer picked at each org, and the last one picked
  // anywhere, which follows them down a level until they pick another.
  var overviewChoice = {};
  var overviewLastPick = null;

  function progressStatus(pr) {
    return pr.met === true ? 'met' : pr.met === false ? 'unmet' : 'unknown';
  }

  function overviewPage(orgId, seq) {
    var p = page('admin.nav.overview', t('admin.ov.intro'));
    var query = orgId ? '?org=' + encodeURIComponent(orgId) : '';
    var kit = ctx.kit ? ctx.kit() : Promise.resolve(null);
    Promise.all([call('GET', '/api/v1/datacenter/overview' + query), loadOrgs(), kit]).then(function (r) {
      if (seq !== renderSeq) return;
      if (r[0].status !== 200) return banner(p.note, 'error', errorText(r[0]));
      drawOverview(p.box, r[0].body, r[1], r[2]);
    });
  }

  // The path from the highest org the viewer sees down to `org`.
  function orgPath(flat, org) {
    var byId = {};
    var parent = {};
    flat.forEach(function (x) {
      byId[x.org.id] = x.org;
      (x.org.children || []).forEach(function (c) { parent[c.id] = x.org.id; });
    });
    var path = [{ id: org.id, name: org.name }];
    for (var at = parent[org.id]; at && path.length < 16; at = parent[at]) {
      path.unshift({ id: at, name: byId[at].name });
    }
    return path;
  }

  function drawOverview(box, ov, flat, kit) {
    var org = ov.org;
    var here = ctx.localized(org.name) || org.code;
    box.querySelector('h1').textContent = t('admin.ov.title', { org: here });
    var crumbs = h('nav.ov-crumbs', { id: 'ov-crumbs', 'aria-label': t('admin.ov.path') });
    orgPath(flat, org).forEach(function (o, i, all) {
      if (i) crumbs.appendChild(h('span.ov-sep', { 'aria-hidden': 'true', text: '›' }));
      var name = ctx.localized(o.name) || o.id;
      crumbs.appendChild(i === all.length - 1
        ? h('span.ov-crumb-here', { 'aria-current': 'page', text: name })
        : h('a', { href: '#/overview/' + encodeURIComponent(o.id), 'data-org': o.id, text: name }));
    });
    var facts = h('p.ov-facts', null, [
      h('span', { id: 'ov-approvals', text: t('admin.ov.approvals', { n: ov.approvals_running == null ? '—' : number(ov.approvals_running) }) }),
      h('a.button.button-secondary', { href: '/wall/?org=' + encodeURIComponent(org.id), target: '_blank', rel: 'noopener', id: 'ov-wall', text: t('admin.dc.wall') })
    ]);
    box.insertBefore(crumbs, box.children[1]);
    box.appendChild(facts);

    var progress = ov.progress || [];
    var rankings = {};
    (ov.rankings || []).forEach(function (rk) { rankings[rk.code] = rk; });
    var has = function (code) { return progress.some(function (pr) { return pr.code === code; }); };
    var picked = has(overviewChoice[org.id]) ? overviewChoice[org.id] : overviewLastPick;
    if (!has(picked)) {
      var ranked = progress.filter(function (pr) { return rankings[pr.code] && rankings[pr.code].rows.length; })[0];
      picked = (ranked || progress[0] || {}).code;
    }
    var cards = h('div.ov-cards', { id: 'ov-cards' });
    var below = h('div', { id: 'ov-below' });
    var trend = h('div', { id: 'ov-trend' });
    box.appendChild(card('admin.ov.indicators', [progress.length ? cards : h('p.admin-intro', { text: t('admin.ov.noIndicators') })]));
    box.appendChild(card(null, [below]));
    box.appendChild(card(null, [trend]));

    function drawCards() {
      cards.textContent = '';
      progress.forEach(function (pr) {
        var status = progressStatus(pr);
        var value = pr.latest == null ? '—' : number(pr.latest) + ' ' + unitText(pr.unit);
        var change = pr.change_pct == null ? '' : t('admin.ov.change', { pct: (pr.change_pct > 0 ? '+' : '') + number(pr.change_pct) });
        cards.appendChild(h('button.ov-card.ov-' + status + (pr.code === picked ? '.ov-picked' : ''), {
          type: 'button', 'data-code': pr.code, 'aria-pressed': String(pr.code === picked),
          on: { click: function () { picked = pr.code; overviewChoice[org.id] = picked; overviewLastPick = picked; drawCards(); drawBelow(); drawTrend(); } }
        }, [
          h('span.ov-card-name', { text: nameOf(pr) }),
          h('span.ov-card-value', { text: value }),
          h('span.ov-card-meta', { text: (pr.latest_period ? pr.latest_period + ' · ' : '') + change }),
          h('span.ov-card-target', { text: targetText(pr) }),
          h('span.ov-badge', { text: t('admin.ov.status.' + status) })
        ]));
      });
    }

    function drawBelow() {
      below.textContent = '';
      var pr = progress.filter(function (x) { return x.code === picked; })[0];
      below.appendChild(h('h2', { text: pr ? t('admin.ov.below', { indicator: nameOf(pr) }) : t('admin.ov.belowPlain') }));
      var children = ov.children || [];
      if (!children.length) {
        below.appendChild(h('p.admin-intro', { id: 'ov-no-below', text: t('admin.ov.noBelow') }));
        return;
      }
      var rk = pr ? rankings[pr.code] : null;
      var values = {};
      ((rk && rk.rows) || []).forEach(function (row) { values[row.org] = row.value; });
      var rows = children.slice().sort(function (a, b) {
        var va = values[a.id], vb = values[b.id];
        if (va == null && vb == null) return a.code < b.code ? -1 : 1;
        if (va == null) return 1;
        if (vb == null) return -1;
        return vb - va;
      });
      var max = 0;
      rows.forEach(function (c) { if (values[c.id] != null) max = Math.max(max, Math.abs(values[c.id])); });
      if (rk && rk.period) below.appendChild(h('p.admin-intro', { text: t('admin.ov.period', { period: rk.period }) }));
      below.appendChild(table(['admin.ov.rank', 'admin.col.org', 'admin.dc.value', 'admin.ov.share', 'admin.col.actions'], rows.map(function (c, i) {
        var v = values[c.id];
        var bar = h('span.ov-bar', null, h('span.ov-bar-fill', { style: 'width:' + (v == null || !max ? 0 : Math.round(Math.abs(v) / max * 100)) + '%' }));
        var name = ctx.localized(c.name) || c.code;
        return h('tr', { 'data-org': c.id }, [
          td(v == null ? '—' : String(i + 1)),
          td(h('a', { href: '#/overview/' + encodeURIComponent(c.id), text: name })),
          td(v == null ? '—' : number(v) + ' ' + (pr ? unitText(pr.unit) : '')),
          td(bar),
          td(h('a.ov-drill', { href: '#/overview/' + encodeURIComponent(c.id), text: t('admin.ov.drill') }))
        ]);
      })));
    }

    function drawTrend() {
      trend.textContent = '';
      var pr = progress.filter(function (x) { return x.code === picked; })[0];
      var tr = (ov.trends || []).filter(function (x) { return x.code === picked && x.per === 'year'; })[0];
      trend.appendChild(h('h2', { text: t('admin.ov.trend') }));
      if (!pr || !tr || !tr.points.length) {
        trend.appendChild(h('p.admin-intro', { text: t('admin.ov.noTrend') }));
        return;
      }
      var el = h('div.ov-chart', { id: 'ov-trend-chart' });
      trend.appendChild(el);
      var spec = {
        type: 'line', unit: unitText(pr.unit), categories: tr.points.map(function (pt) { return pt.period; }),
        series: [{ name: nameOf(pr), data: tr.points.map(function (pt) { return pt.value; }) }],
        categoryLabel: t('admin.dc.period'), height: 260
      };
      if (kit) kit.chart(el, spec);
      else el.appendChild(table(['admin.dc.period', 'admin.dc.value'], tr.points.map(function (pt) {
        return h('tr', null, [td(pt.period), td(number(pt.value))]);
      })));
    }

    drawCards();
    drawBelow();
    drawTrend();
  }

  // ---- sharing of one indicator (platform administrators) ------------------------------
  //
  // Sharing is the platform's decision (kernel.datacenter.share at the root
  // org): private to its owner, shared with named plugins (read, or
  // publish into it), or open to anyone through /api/v1/open/ and /open/.
  // The kernel replaces the whole grant list on each save.

  function sharingCard(ind, base, note, after) {
    var level = h('select', { name: 'sharing', id: 'dc-sharing' }, ['private', 'shared', 'open'].map(function (s) {
      return h('option', { value: s, text: t('admin.dc.sharing.' + s), selected: s === ind.sharing });
    }));
    var grants = (ind.shared_with || []).map(function (g) { return { plugin: g.plugin, access: g.access }; });
    var list = h('div', { id: 'dc-grants' });
    var plugins = [];
    function draw() {
      list.textContent = '';
      if (!grants.length) list.appendChild(h('p.admin-intro', { text: t('admin.dc.noGrants') }));
      grants.forEach(function (g, i) {
        var plugin = h('select', { name: 'plugin', 'data-grant': String(i) });
        var ids = plugins.map(function (pl) { return pl.id; });
        if (ids.indexOf(g.plugin) < 0 && g.plugin) ids.push(g.plugin);
        ids.forEach(function (id) {
          var pl = plugins.filter(function (x) { return x.id === id; })[0];
          plugin.appendChild(h('option', { value: id, text: pl ? ctx.localized(pl.name) + ' (' + id + ')' : id, selected: id === g.plugin }));
        });
        if (!g.plugin && ids.length) g.plugin = ids[0];
        plugin.addEventListener('change', function () { g.plugin = plugin.value; });
        var access = h('select', { name: 'access' }, ['read', 'publish'].map(function (a) {
          return h('option', { value: a, text: t('admin.dc.access.' + a), selected: a === g.access });
        }));
        access.addEventListener('change', function () { g.access = access.value; });
        var remove = button('admin.dc.removeGrant', function () { grants.splice(i, 1); draw(); });
        list.appendChild(h('div.admin-row.dc-grant', null, [plugin, access, remove]));
      });
    }
    var add = button('admin.dc.addGrant', function () { grants.push({ plugin: '', access: 'read' }); draw(); });
    add.id = 'dc-add-grant';
    var save = button('admin.save', function () {
      act(note, save, call('PUT', base + '/sharing', { sharing: level.value, grants: grants.filter(function (g) { return g.plugin; }) }),
        'admin.dc.shared', after);
    }, 'button-primary');
    save.id = 'dc-sharing-save';
    call('GET', '/api/v1/plugins').then(function (res) {
      if (res.status === 200 && res.body) plugins = res.body.plugins || [];
      draw();
    });
    return card('admin.dc.sharingTitle', [h('p.admin-intro', { text: t('admin.dc.sharingIntro') }),
      field('admin.dc.sharingCol', level), h('h3', { text: t('admin.dc.grants') }), list,
      h('div.admin-actions', null, [add, save])]);
  }


  // ---- dashboards (stored definitions the wall draws) ----------------------------------
  //
  // A dashboard is data: its org, name, seconds per page and panels in
  // order, drawn by the wall at /wall/?dashboard=<id>. The list shows the
  // dashboards of every org the viewer reads; where they may change them
  // (kernel.datacenter.write at the org) the editor opens. Plugins offer
  // ready-made panels (their manifests' [[panels]]). The kernel checks every
  // panel and names the one that is wrong (panels[i].field).

  var PANEL_KINDS = ['plan', 'value', 'ranking', 'trend', 'map', 'approvals', 'positions'];
  var PANEL_CHARTS = {
    plan: ['cards'], value: ['number'], approvals: ['number'],
    ranking: ['bar', 'table'], trend: ['line', 'bar', 'table'], map: ['tiles'], positions: ['points']
  };

  function showsIndicator(kind) { return kind !== 'plan' && kind !== 'approvals' && kind !== 'positions'; }

  function dashboardsPage(arg, seq) {
    if (arg) return dashboardEditor(arg === 'new' ? null : arg, seq);
    var p = page('admin.nav.dashboards', t('admin.dash.intro'));
    Promise.all([call('GET', '/api/v1/dashboards'), loadOrgs()]).then(function (r) {
      if (seq !== renderSeq) return;
      if (r[0].status !== 200) return banner(p.note, 'error', errorText(r[0]));
      var items = (r[0].body && r[0].body.items) || [];
      var names = {};
      r[1].forEach(function (x) { names[x.org.id] = orgLabel(x.org); });
      p.box.appendChild(h('div.admin-actions', null, [
        h('a.button.button-primary', { href: '#/dashboards/new', id: 'dash-new', text: t('admin.dash.new') })
      ]));
      if (!items.length) {
        p.box.appendChild(h('p.admin-intro', { id: 'dash-none', text: t('admin.dash.none') }));
        return;
      }
      p.box.appendChild(h('div', { id: 'dash-list' }, table(
        ['admin.dash.name', 'admin.col.org', 'admin.dash.panels', 'admin.dash.updated', 'admin.col.actions'],
        items.map(function (d) {
          var actions = [h('a.button.button-secondary.dash-wall', { href: '/wall/?dashboard=' + encodeURIComponent(d.id), target: '_blank', rel: 'noopener', text: t('admin.dash.openWall') })];
          if (d.editable) {
            actions.push(h('a.button.button-secondary.dash-edit', { href: '#/dashboards/' + encodeURIComponent(d.id), text: t('admin.dash.edit') }));
            var del = button('admin.dash.delete', function () {
              // A second click confirms, so nothing goes by accident.
              if (!del.classList.contains('armed')) {
                del.classList.add('armed');
                del.textContent = t('admin.dash.confirmDelete');
                return;
              }
              act(p.note, del, call('DELETE', '/api/v1/dashboards/' + encodeURIComponent(d.id)), 'admin.dash.deleted', function () {
                route(location.hash, ctx);
              });
            });
            del.classList.add('dash-delete');
            actions.push(del);
          }
          return h('tr', { 'data-dashboard': d.id }, [
            td(ctx.localized(d.name)), td(names[d.org] || d.org), td(String(d.panels.length)),
            td(when(d.updated_at)), td(h('div.admin-row-actions', null, actions))
          ]);
        }))));
    });
  }

  function dashboardEditor(id, seq) {
    var p = page(id ? 'admin.dash.editTitle' : 'admin.dash.newTitle', t('admin.dash.editorIntro'));
    Promise.all([
      id ? call('GET', '/api/v1/dashboards/' + encodeURIComponent(id)) : Promise.resolve({ status: 200, body: null }),
      call('GET', '/api/v1/datacenter/indicators'),
      call('GET', '/api/v1/dashboards/panels'),
      loadOrgs()
    ]).then(function (r) {
      if (seq !== renderSeq) return;
      for (var i = 0; i < 3; i++) if (r[i].status !== 200) return banner(p.note, 'error', errorText(r[i]));
      var existing = r[0].body && r[0].body.dashboard;
      if (existing && !r[0].body.editable) return banner(p.note, 'error', t('admin.dash.readOnly'));
      var catalogue = (r[1].body && r[1].body.indicators) || [];
      var offered = (r[2].body && r[2].body.items) || [];
      // The plugins whose terminals a positions panel can show: those
      // offering one.
      var tracked = offered.filter(function (o) { return o.panel.kind === 'positions'; })
        .map(function (o) { return o.plugin; })
        .filter(function (id, i, all) { return all.indexOf(id) === i; });
      var d = existing || { name: { 'zh-CN': '', en: '' }, org: ctx.org, rotate: 30, panels: [{ kind: 'plan' }] };
      var panels = d.panels.map(function (x) { return JSON.parse(JSON.stringify(x)); });

      var nameZh = input('name_zh', 'text', d.name['zh-CN']);
      nameZh.id = 'dash-name-zh';
      var nameEn = input('name_en', 'text', d.name.en);
      nameEn.id = 'dash-name-en';
      var org = orgSelect(r[3], null, d.org);
      org.id = 'dash-org';
      var rotate = input('rotate', 'number', d.rotate);
      rotate.id = 'dash-rotate';
      rotate.min = '0';
      var list = h('div.dash-panels', { id: 'dash-panels' });

      function select(name, values, current, label) {
        var sel = h('select', { name: name });
        values.forEach(function (v) {
          var o = h('option', { value: v, text: label(v) });
          if (v === current) o.selected = true;
          sel.appendChild(o);
        });
        return sel;
      }

      function drawPanels() {
        list.textContent = '';
        panels.forEach(function (panel, i) {
          var kind = select('kind', PANEL_KINDS, panel.kind, function (k) { return t('admin.dash.kind.' + k); });
          kind.addEventListener('change', function () {
            panel.kind = kind.value;
            delete panel.chart;
            if (!showsIndicator(panel.kind)) { delete panel.indicator; delete panel.per; }
            else if (!panel.indicator && catalogue.length) panel.indicator = catalogue[0].code;
            if (panel.kind !== 'positions') delete panel.plugin;
            else if (!panel.plugin && tracked.length) panel.plugin = tracked[0];
            drawPanels();
          });
          var row = h('div.dash-panel', { 'data-index': String(i) }, [
            h('span.dash-number', { text: String(i + 1) }), field('admin.dash.kindLabel', kind)
          ]);
          if (showsIndicator(panel.kind)) {
            var ind = select('indicator', catalogue.map(function (c) { return c.code; }), panel.indicator, function (code) {
              var c = catalogue.filter(function (x) { return x.code === code; })[0];
              return nameOf(c) + ' · ' + code;
            });
            ind.addEventListener('change', function () { panel.indicator = ind.value; });
            row.appendChild(field('admin.dash.indicator', ind));
            var per = select('per', ['', 'year', 'month'], panel.per || '', function (v) { return t('admin.dash.per.' + (v || 'own')); });
            per.addEventListener('change', function () { if (per.value) panel.per = per.value; else delete panel.per; });
            row.appendChild(field('admin.dash.perLabel', per));
          }
          if (panel.kind === 'positions') {
            var plugin = select('plugin', tracked, panel.plugin, function (id) {
              var o = offered.filter(function (x) { return x.plugin === id; })[0];
              return (o ? ctx.localized(o.plugin_name) + ' · ' : '') + id;
            });
            plugin.addEventListener('change', function () { panel.plugin = plugin.value; });
            row.appendChild(field('admin.dash.pluginLabel', plugin));
          }
          var charts = PANEL_CHARTS[panel.kind] || [];
          if (charts.length > 1) {
            var chart = select('chart', charts, panel.chart || charts[0], function (c) { return t('admin.dash.chart.' + c); });
            chart.addEventListener('change', function () { panel.chart = chart.value; });
            row.appendChild(field('admin.dash.chartLabel', chart));
          }
          var span = select('span', ['1', '2', '3'], String(panel.span || 1), function (n) { return t('admin.dash.spanCols', { n: n }); });
          span.addEventListener('change', function () { if (span.value === '1') delete panel.span; else panel.span = Number(span.value); });
          row.appendChild(field('admin.dash.spanLabel', span));
          var title = input('title_zh', 'text', panel.title ? panel.title['zh-CN'] : '');
          title.placeholder = t('admin.dash.titlePlaceholder');
          title.addEventListener('change', function () {
            var v = title.value.trim();
            if (v) panel.title = { 'zh-CN': v, en: (panel.title && panel.title.en) || v };
            else delete panel.title;
          });
          row.appendChild(field('admin.dash.title', title));
          var move = function (by) {
            var j = i + by;
            if (j < 0 || j >= panels.length) return;
            var x = panels[i]; panels[i] = panels[j]; panels[j] = x;
            drawPanels();
          };
          var up = button('admin.dash.up', function () { move(-1); });
          up.classList.add('dash-up');
          var down = button('admin.dash.down', function () { move(1); });
          down.classList.add('dash-down');
          var remove = button('admin.dash.remove', function () { panels.splice(i, 1); drawPanels(); });
          remove.classList.add('dash-remove');
          row.appendChild(h('div.admin-row-actions', null, [up, down, remove]));
          list.appendChild(row);
        });
        if (!panels.length) list.appendChild(h('p.admin-intro', { text: t('admin.dash.noPanels') }));
      }

      var add = button('admin.dash.addPanel', function () {
        panels.push(catalogue.length ? { kind: 'value', indicator: catalogue[0].code } : { kind: 'plan' });
        drawPanels();
      });
      add.id = 'dash-add-panel';
      var pick = h('select', { id: 'dash-offered' }, offered.map(function (o, i) {
        return h('option', { value: String(i), text: ctx.localized(o.plugin_name) + ' · ' + ctx.localized(o.panel.title) });
      }));
      var addOffered = button('admin.dash.addOffered', function () {
        var o = offered[Number(pick.value)];
        if (o) { panels.push(JSON.parse(JSON.stringify(o.panel))); drawPanels(); }
      });
      addOffered.id = 'dash-add-offered';

      var save = button('admin.dash.save', function () {
        var body = {
          org: org.value,
          name: { 'zh-CN': nameZh.value.trim(), en: nameEn.value.trim() },
          rotate: Number(rotate.value),
          panels: panels
        };
        var path = existing ? '/api/v1/dashboards/' + encodeURIComponent(existing.id) : '/api/v1/dashboards';
        list.querySelectorAll('.dash-error').forEach(function (x) { x.classList.remove('dash-error'); });
        act(p.note, save, call(existing ? 'PUT' : 'POST', path, body), 'admin.dash.saved', function (res) {
          var saved = res.body.dashboard;
          if (!existing) location.hash = '#/dashboards/' + encodeURIComponent(saved.id);
        }).then(function (res) {
          // The kernel names the panel at fault: mark its row.
          var f = res && res.body && res.body.error && res.body.error.field;
          var m = f && /^panels\[(\d+)\]/.exec(f);
          var row = m && list.querySelector('.dash-panel[data-index="' + m[1] + '"]');
          if (row) row.classList.add('dash-error');
        });
      }, 'button-primary');
      save.id = 'dash-save';

      var actions = [save];
      if (existing) actions.push(h('a.button.button-secondary', { id: 'dash-open', href: '/wall/?dashboard=' + encodeURIComponent(existing.id), target: '_blank', rel: 'noopener', text: t('admin.dash.openWall') }));
      actions.push(h('a.button.button-secondary', { href: '#/dashboards', text: t('admin.dash.back') }));

      p.box.appendChild(card('admin.dash.settings', [
        field('admin.dash.nameZh', nameZh), field('admin.dash.nameEn', nameEn, t('admin.dash.nameEnHint')),
        field('admin.col.org', org), field('admin.dash.rotate', rotate, t('admin.dash.rotateHint'))
      ]));
      p.box.appendChild(card('admin.dash.panels', [list, h('div.admin-actions', null, [add].concat(offered.length ? [pick, addOffered] : []))]));
      p.box.appendChild(h('div.admin-actions', null, actions));
      drawPanels();
    });
  }

  var PAGES = {
    account: accountPage, users: usersPage, orgs: orgsPage, plugins: pluginsPage,
    audit: auditPage, dead: deadPage, system: systemPage, datacenter: datacenterPage,
    overview: overviewPage, dashboards: dashboardsPage
  };

  // ---- the forced password change at login ------------------------------------------

  // The login answered password_change_required: the password was right
  // but an administrator chose it. Ask for a new one in the login card,
  // change it without a session, then sign in with it.
  function forcedChange(shell) {
    ctx = shell;
    loadMessages(shell.lang).then(function () {
      var form = document.getElementById('login-form');
      if (!form) return;
      var old = document.getElementById('admin-forced');
      if (old) old.remove();
      form.hidden = true;
      var next = input('new_password', 'password');
      next.id = 'admin-forced-new';
      next.setAttribute('autocomplete', 'new-password');
      var again = input('new_password_again', 'password');
      again.id = 'admin-forced-again';
      again.setAttribute('autocomplete', 'new-password');
      var note = h('p.form-error', { id: 'admin-forced-error', role: 'alert' });
      var submit = h('button.button.button-primary.button-block', { type: 'submit', id: 'admin-forced-submit', text: t('admin.forced.submit') });
      var box = h('form.admin-forced', { id: 'admin-forced', novalidate: true }, [
        h('p.admin-forced-intro', { id: 'admin-forced-intro', text: t('admin.forced.intro', { username: shell.username }) }),
        field('admin.account.new', next, t('admin.users.passwordRule')), field('admin.account.again', again), note, submit
      ]);
      box.addEventListener('submit', function (ev) {
        ev.preventDefault();
        note.classList.remove('visible');
        if (next.value !== again.value) {
          note.textContent = t('admin.account.mismatch');
          note.classList.add('visible');
          return;
        }
        submit.disabled = true;
        shell.api('POST', '/api/v1/auth/password', {
          username: shell.username, current_password: shell.password, new_password: next.value
        }).then(function (res) {
          submit.disabled = false;
          if (res.status === 204) {
            box.remove();
            form.hidden = false;
            shell.done(next.value);
            return;
          }
          note.textContent = errorText(res);
          note.classList.add('visible');
        }, function () {
          submit.disabled = false;
          note.textContent = shell.tr('error.network');
          note.classList.add('visible');
        });
      });
      form.parentNode.insertBefore(box, form.nextSibling);
      next.focus();
    });
  }

  window.TianshanAdmin = { route: route, owns: owns, forcedChange: forcedChange };
})();
