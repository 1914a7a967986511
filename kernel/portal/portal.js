// The Tianshan portal shell: sign-in, the menu of plugin pages, an iframe
// for the chosen page. Plain JavaScript, no build step, no external URLs;
// served by the kernel under a CSP without inline scripts.
(function () {
  'use strict';

  var LANGS = ['zh-CN', 'en'];
  var DEFAULT_LANG = 'zh-CN';
  var LANG_KEY = 'tianshan.lang';
  var ORG_KEY = 'tianshan.org';
  var ORG_HEADER = 'X-Tianshan-Org';
  var CSRF_HEADER = 'X-CSRF-Token';

  var state = {
    lang: DEFAULT_LANG,
    t: {},
    me: null,          // the /api/v1/me answer while signed in
    csrf: null,        // kept in memory only; the session itself is the HttpOnly cookie
    orgs: [],          // distinct bindings by org id
    org: null,         // the chosen org, sent as X-Tianshan-Org (only when there is a choice)
    entries: [],
    menuLoaded: false,
    menuSeq: 0,
    frameSrc: null,
    bridge: null,      // {plugin, nonce} of the page in the frame; see bridge below
    loginError: null,  // {key, values} or {text}
    throttledUntil: 0,
    throttleTimer: null,
    todoKind: 'pending',
    todoSeq: 0,        // drops answers of superseded to-do requests
    approval: null     // the approval shown in detail
  };

  // ---- small helpers --------------------------------------------------------

  function $(id) { return document.getElementById(id); }

  function storageGet(area, key) {
    try { return window[area].getItem(key); } catch (e) { return null; }
  }

  function storageSet(area, key, value) {
    try {
      if (value == null) window[area].removeItem(key);
      else window[area].setItem(key, value);
    } catch (e) { /* storage disabled: the choice lasts for this page only */ }
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
  // (`vehicles` → 辆); symbols (元, kgce/m²) stay as they are.
  function unitText(unit) {
    var s = state.t['unit.' + unit];
    return s == null ? unit || '' : s;
  }

  // A {"zh-CN": …, "en": …} label (or a plain string) in the current language.
  function localized(value) {
    if (value == null) return '';
    if (typeof value === 'string') return value;
    if (value[state.lang]) return value[state.lang];
    if (value[DEFAULT_LANG]) return value[DEFAULT_LANG];
    for (var k in value) {
      if (Object.prototype.hasOwnProperty.call(value, k) && value[k]) return String(value[k]);
    }
    return '';
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  // Only same-origin paths may be framed or used as icons.
  function sameOriginUrl(url) {
    if (typeof url !== 'string' || url.charAt(0) !== '/' || url.charAt(1) === '/' || url.charAt(1) === '\\') {
      return null;
    }
    try {
      var u = new URL(url, location.origin);
      return u.origin === location.origin ? u : null;
    } catch (e) {
      return null;
    }
  }

  // ---- the API --------------------------------------------------------------

  function api(method, path, body) {
    var headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (state.org) headers[ORG_HEADER] = state.org;
    if (method !== 'GET' && method !== 'HEAD' && state.csrf) headers[CSRF_HEADER] = state.csrf;
    return fetch(path, {
      method: method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      if (r.status === 204) return { status: 204, body: null, response: r };
      return r.json().catch(function () { return null; }).then(function (b) {
        return { status: r.status, body: b, response: r };
      });
    });
  }

  function errorMessage(res) {
    var e = res && res.body && res.body.error;
    // A code with words of its own in the kit (an approval's refusal)
    // is said in the reader's language, not in the kernel's English.
    var own = kitReady && kitLang === state.lang ? kitReady.codeText(e) : null;
    if (own) return own;
    if (e && e.message) return e.message;
    return tr('error.generic', { status: res ? res.status : '—' });
  }

  function errorCode(res) {
    var e = res && res.body && res.body.error;
    return e && e.code;
  }

  // ---- language -------------------------------------------------------------

  function pickLang() {
    var stored = storageGet('localStorage', LANG_KEY);
    return stored && LANGS.indexOf(stored) >= 0 ? stored : DEFAULT_LANG;
  }

  function loadMessages(lang) {
    return fetch('/portal/i18n/' + lang + '.json', { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error('i18n ' + r.status);
      return r.json();
    });
  }

  function setLang(lang) {
    if (LANGS.indexOf(lang) < 0) lang = DEFAULT_LANG;
    return loadMessages(lang).then(function (t) {
      state.lang = lang;
      state.t = t;
      storageSet('localStorage', LANG_KEY, lang);
    }, function () {
      // Keep whatever was loaded before; the page stays usable.
    }).then(function () {
      applyStatic();
      renderLoginError();
      if (state.me) renderShell();
    });
  }

  function applyStatic() {
    document.documentElement.lang = state.lang;
    var nodes = document.querySelectorAll('[data-i18n]');
    for (var i = 0; i < nodes.length; i++) {
      var key = nodes[i].getAttribute('data-i18n');
      if (state.t[key] != null) nodes[i].textContent = state.t[key];
    }
    nodes = document.querySelectorAll('[data-i18n-aria-label]');
    for (i = 0; i < nodes.length; i++) {
      var k = nodes[i].getAttribute('data-i18n-aria-label');
      if (state.t[k] != null) nodes[i].setAttribute('aria-label', state.t[k]);
    }
    var buttons = document.querySelectorAll('#lang-switch [data-lang]');
    for (i = 0; i < buttons.length; i++) {
      buttons[i].setAttribute('aria-pressed', String(buttons[i].getAttribute('data-lang') === state.lang));
    }
  }

  // ---- views ----------------------------------------------------------------

  function showView(name) {
    document.body.classList.remove('booting');
    $('boot').hidden = name !== 'boot';
    $('login-view').hidden = name !== 'login';
    $('shell').hidden = name !== 'shell';
    var signedIn = name === 'shell';
    $('user-box').hidden = !signedIn;
    $('bell').hidden = !signedIn;
    $('logout').hidden = !signedIn;
    $('menu-toggle').hidden = !signedIn;
    $('org-picker').hidden = !signedIn || state.orgs.length < 2;
    document.body.classList.toggle('signed-in', signedIn);
  }

  function showLogin(error) {
    stopBell();
    state.me = null;
    state.orgs = [];
    state.org = null;
    state.entries = [];
    state.menuLoaded = false;
    state.menuSeq++;
    setFrame(null);
    closeMenu();
    document.title = tr('platform.name');
    showView('login');
    $('login-password').value = '';
    state.loginError = error || null;
    renderLoginError();
    var user = $('login-username');
    (user.value ? $('login-password') : user).focus();
  }

  function setLoginError(error) {
    state.loginError = error;
    renderLoginError();
  }

  function renderLoginError() {
    var e = state.loginError;
    var text = !e ? '' : e.key ? tr(e.key, e.values) : e.text;
    var box = $('login-error');
    box.textContent = text || '';
    box.classList.toggle('visible', !!text);
  }

  function showShellError(text) {
    var box = $('shell-error');
    box.textContent = text || '';
    box.hidden = !text;
  }

  // ---- session --------------------------------------------------------------

  // Where a page of the kernel's own sent the browser to sign in (the LED
  // wall: `/?next=/wall/?org=…`), to go back to once signed in. Only the
  // wall's own address is taken, so a link cannot send a signed-in user
  // anywhere else.
  function returnTo() {
    var m = /[?&]next=([^&#]*)/.exec(location.search);
    if (!m) return null;
    var next;
    try { next = decodeURIComponent(m[1]); } catch (e) { return null; }
    return /^\/wall\/(\?[^#\\]*)?$/.test(next) ? next : null;
  }

  function checkSession() {
    return api('GET', '/api/v1/me').then(function (res) {
      if (res.status === 200 && res.body && res.body.user) {
        var next = returnTo();
        if (next) {
          location.replace(next);
          return;
        }
        if (state.csrf) return enterShell(res.body);
        // After a reload the login answer is gone: the token comes from an
        // endpoint only the shell can read (plugin pages are sandboxed).
        return api('GET', '/api/v1/auth/csrf').then(function (c) {
          state.csrf = (c.body && c.body.csrf_token) || null;
          enterShell(res.body);
        });
      } else if (res.status === 401) {
        showLogin(null);
      } else {
        showLogin({ text: errorMessage(res) });
      }
    }, function () {
      showLogin({ key: 'error.network' });
    });
  }

  function enterShell(me) {
    state.me = me;
    setupOrgs();
    showView('shell');
    renderShell();
    loadMenu();
    startBell();
  }

  function sessionExpired() {
    state.csrf = null;
    showLogin({ key: 'shell.sessionExpired' });
  }

  function setupOrgs() {
    var me = state.me;
    var seen = {};
    var orgs = [];
    (me.bindings || []).forEach(function (b) {
      if (b && b.org_id && !seen[b.org_id]) {
        seen[b.org_id] = true;
        orgs.push(b);
      }
    });
    state.orgs = orgs;
    if (orgs.length > 1) {
      var stored = storageGet('sessionStorage', ORG_KEY);
      var own = me.user && me.user.org_id;
      state.org = stored && seen[stored] ? stored : own && seen[own] ? own : orgs[0].org_id;
    } else {
      state.org = null;
    }
  }

  function currentOrgName() {
    var id = state.org || (state.me && state.me.user && state.me.user.org_id);
    if (!id) return tr('home.noOrg');
    var bindings = (state.me && state.me.bindings) || [];
    for (var i = 0; i < bindings.length; i++) {
      if (bindings[i] && bindings[i].org_id === id) {
        return localized(bindings[i].org_name) || bindings[i].org_code || id;
      }
    }
    return id;
  }

  // ---- rendering the shell --------------------------------------------------

  function renderShell() {
    renderUser();
    renderOrgs();
    renderMenu();
    loadTodoCount();
    route();
  }

  function renderUser() {
    var user = state.me.user || {};
    var name = user.display_name || user.username || '';
    $('user-name').textContent = name;
    $('user-box').title = user.username || '';
    $('user-avatar').textContent = name ? Array.from(name)[0].toUpperCase() : '';
    $('welcome-title').textContent = tr('home.greeting', { name: name });
    $('welcome-org').textContent = tr('home.orgLine', { org: currentOrgName() });
    var date = '';
    try {
      date = new Intl.DateTimeFormat(state.lang, { dateStyle: 'full' }).format(new Date());
    } catch (e) { /* no Intl: no date */ }
    $('welcome-date').textContent = date;
  }

  function renderOrgs() {
    var select = $('org-switcher');
    select.textContent = '';
    state.orgs.forEach(function (b) {
      var option = el('option', null, localized(b.org_name) || b.org_code || b.org_id);
      option.value = b.org_id;
      option.selected = b.org_id === state.org;
      select.appendChild(option);
    });
    $('org-picker').hidden = state.orgs.length < 2;
  }

  function entryHash(e) {
    return '#/p/' + encodeURIComponent(e.plugin) + '/' + encodeURIComponent(e.id);
  }

  function entryIcon(e, className) {
    var box = el('span', className);
    box.setAttribute('aria-hidden', 'true');
    var icon = typeof e.icon === 'string' ? sameOriginUrl(e.icon) : null;
    if (icon) {
      var img = el('img');
      img.src = icon.pathname + icon.search;
      img.alt = '';
      box.appendChild(img);
    } else {
      var label = localized(e.label) || e.plugin;
      box.textContent = Array.from(label)[0] || '·';
    }
    return box;
  }

  function renderMenu() {
    var list = $('menu-entries');
    var grid = $('home-entries');
    list.textContent = '';
    grid.textContent = '';
    // One menu: a system with several sections shows them under its name
    // (its pages have no menu of their own), a system with one entry is
    // that entry. The home page offers each system once, at its first
    // section.
    var count = {};
    state.entries.forEach(function (e) { count[e.plugin] = (count[e.plugin] || 0) + 1; });
    var seen = {};
    state.entries.forEach(function (e) {
      var label = localized(e.label) || e.plugin;
      var system = localized(e.plugin_name) || label;
      var grouped = count[e.plugin] > 1;
      var first = !seen[e.plugin];
      seen[e.plugin] = true;

      if (grouped && first) {
        var head = el('p', 'menu-group', system);
        head.setAttribute('data-plugin', e.plugin);
        list.appendChild(head);
      }
      var a = el('a', grouped ? 'menu-entry in-group' : 'menu-entry');
      a.href = entryHash(e);
      a.setAttribute('data-plugin', e.plugin);
      a.setAttribute('data-entry', e.id);
      a.appendChild(entryIcon(e, 'menu-icon'));
      a.appendChild(el('span', 'menu-label', label));
      list.appendChild(a);

      if (!first) return;
      var card = el('a', 'entry-card');
      card.href = entryHash(e);
      card.setAttribute('data-plugin', e.plugin);
      card.setAttribute('data-entry', e.id);
      card.appendChild(entryIcon(e, 'entry-icon'));
      card.appendChild(el('span', 'entry-label', grouped ? system : label));
      card.appendChild(el('span', 'entry-open', tr('home.open') + ' →'));
      grid.appendChild(card);
    });
    var empty = state.menuLoaded && state.entries.length === 0;
    $('menu-empty').hidden = !empty;
    $('home-empty').hidden = !empty;
  }

  function validEntry(e) {
    if (!e || typeof e.plugin !== 'string' || !/^[a-z0-9][a-z0-9-]*$/.test(e.plugin) ||
        typeof e.id !== 'string' || !e.id) return false;
    var u = sameOriginUrl(e.url);
    return u !== null && u.pathname.indexOf('/ui/' + e.plugin + '/') === 0;
  }

  function loadMenu() {
    var seq = ++state.menuSeq;
    return api('GET', '/api/v1/portal/menu').then(function (res) {
      if (seq !== state.menuSeq || !state.me) return;
      if (res.status === 401) {
        sessionExpired();
        return;
      }
      if (res.status === 200 && res.body && Array.isArray(res.body.entries)) {
        state.entries = res.body.entries.filter(validEntry);
        showShellError('');
      } else {
        state.entries = [];
        showShellError(tr('error.menu', { message: errorMessage(res) }));
      }
      state.menuLoaded = true;
      renderMenu();
      route();
    }, function () {
      if (seq !== state.menuSeq || !state.me) return;
      state.menuLoaded = true;
      showShellError(tr('error.network'));
      renderMenu();
      route();
    });
  }

  // ---- routing: #/ is home, #/p/{plugin}/{id}[/…][?…] a plugin's page ------
  //
  // `#/p/{plugin}/{entry}` opens a menu entry. Anything after the entry is
  // the page's own route, so `#/p/assets/stocktakes/PD1` opens the
  // stocktakes entry at its `#/stocktakes/PD1`. A first segment that is not
  // an entry is a route of the plugin's page (`#/p/assets/scan` opens the
  // assets page at `#/scan`): deep links reach pages that have no menu
  // entry. The page reports its route as the user moves inside it (the
  // bridge's `route`), and the portal's address, breadcrumb and menu
  // follow, so a copied address opens the same view.

  function parseHash() {
    var m = /^#\/p\/([^/?]+)\/([^/?]+)((?:\/[^?]*)?)(\?.*)?$/.exec(location.hash);
    if (!m) return null;
    try {
      return { plugin: decodeURIComponent(m[1]), id: decodeURIComponent(m[2]), rest: m[3] || '', query: m[4] || '' };
    } catch (e) {
      return null;
    }
  }

  // The first segment of a page route ('#/stocktakes/PD1?x' → 'stocktakes').
  function firstSegment(hash) {
    var m = /^#\/?([^/?]*)/.exec(hash || '');
    return m ? m[1] : '';
  }

  // Where a parsed portal hash leads: {entry (the menu entry it names,
  // else the one whose page route it is in, else null), url (the page with
  // its inner route), label}; null when the plugin has no page here.
  function resolveTarget(target) {
    var named = null;
    var first = null;
    state.entries.forEach(function (e) {
      if (e.plugin !== target.plugin) return;
      if (!first) first = e;
      if (e.id === target.id && !named) named = e;
    });
    var base = named || first;
    var u = base ? sameOriginUrl(base.url) : null;
    if (!u) return null;
    var inner;
    if (named) inner = (u.hash || '#/' + encodeURIComponent(target.id)) + target.rest + target.query;
    else inner = '#/' + encodeURIComponent(target.id) + target.rest + target.query;
    u.hash = inner;
    return { entry: named || entryForRoute(target.plugin, inner), url: u };
  }

  // The menu entry whose page route `hash` is in, or null.
  function entryForRoute(plugin, hash) {
    var seg = firstSegment(hash);
    for (var i = 0; i < state.entries.length; i++) {
      var e = state.entries[i];
      if (e.plugin !== plugin) continue;
      var u = sameOriginUrl(e.url);
      if (u && firstSegment(u.hash) === seg) return e;
    }
    return null;
  }

  // The breadcrumb, the menu mark and the window title for a plugin page
  // at `entry` (or none), with the title the page gave its view.
  function showPluginChrome(plugin, entry, pageTitle) {
    var label = entry ? localized(entry.label) || entry.plugin : pageTitle || plugin;
    $('plugin-title').textContent = label;
    var sub = $('plugin-subtitle');
    var extra = entry && pageTitle && pageTitle !== label ? pageTitle : '';
    if (sub) {
      sub.textContent = extra;
      sub.hidden = !extra;
      var sep = $('plugin-sep2');
      if (sep) sep.hidden = !extra;
    }
    markActive(entry || { plugin: plugin, id: null });
    document.title = (extra || label) + ' · ' + tr('platform.name');
  }

  // src: the page (null: none); plugin: whose page it is, which is what
  // the bridge lets the page reach. Each load gets a fresh nonce in its URL:
  // only the document loaded with it knows it, so a page that navigates its
  // frame elsewhere (or is still there while another loads) cannot speak
  // for the next one.
  function setFrame(src, title, plugin) {
    var frame = $('plugin-frame');
    if (src === state.frameSrc) return;
    // The same page at another route of its own: moved there in place (a
    // fragment navigation keeps the page, its nonce and its state).
    var hashAt = src ? src.indexOf('#') : -1;
    var page = hashAt >= 0 ? src.slice(0, hashAt) : src;
    var inner = hashAt >= 0 ? src.slice(hashAt) : '';
    var b = state.bridge;
    if (src && b && b.plugin === plugin && b.page === page && frame.contentWindow) {
      state.frameSrc = src;
      if (b.inner !== inner) {
        b.inner = inner;
        b.title = '';
        frame.contentWindow.location.replace(b.loaded + inner);
      }
      return;
    }
    state.frameSrc = src;
    if (b) liveCloseAll(b);
    state.bridge = null;
    frame.title = title || '';
    var url = src || 'about:blank';
    if (src && plugin) {
      state.bridge = { plugin: plugin, nonce: randomNonce(), page: page, inner: inner };
      var u = new URL(src, location.origin);
      u.searchParams.set('bridge', state.bridge.nonce);
      state.bridge.loaded = u.pathname + u.search;
      url = u.pathname + u.search + u.hash;
    }
    // Replace rather than navigate, so the portal's history holds only hashes.
    if (frame.contentWindow) frame.contentWindow.location.replace(url);
    else frame.src = url;
  }

  function randomNonce() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  function markActive(entry) {
    var links = document.querySelectorAll('#menu a');
    for (var i = 0; i < links.length; i++) {
      var a = links[i];
      var on = entry === 'todos'
        ? a.id === 'menu-todos'
        : entry
        ? a.getAttribute('data-plugin') === entry.plugin && a.getAttribute('data-entry') === entry.id
        : a.id === 'menu-home';
      a.classList.toggle('active', on);
      if (on) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  function showSection(name) {
    var admin = $('admin-view');
    if (admin) admin.hidden = name !== 'admin';
    $('home').hidden = name !== 'home';
    $('plugin-view').hidden = name !== 'plugin';
    $('not-found').hidden = name !== 'not-found';
    $('todos').hidden = name !== 'todos';
  }

  // What the admin console (admin.js) needs from the shell.
  function shellContext() {
    return { api: api, tr: tr, localized: localized, lang: state.lang, me: state.me,
      csrf: state.csrf, org: state.org, sessionExpired: sessionExpired, kit: withKit, unitText: unitText };
  }

  function route() {
    if (!state.me) return;
    closeMenu();
    // #/account and #/admin/… are the admin console's (admin.js).
    var admin = window.TianshanAdmin;
    if (admin && admin.owns(location.hash)) {
      setFrame(null);
      showSection('admin');
      markActive('admin');
    }
    if (admin && admin.route(location.hash, shellContext())) return;
    var todo = parseTodoHash();
    if (todo) {
      setFrame(null);
      showSection('todos');
      markActive('todos');
      document.title = tr('todos.title') + ' · ' + tr('platform.name');
      if (todo.approval) {
        showTodos(state.todoKind, todo.approval);
        showApproval(todo.approval);
      } else {
        showTodos(todo.kind, null);
        $('approval').hidden = true;
        state.approval = null;
      }
      return;
    }
    var target = parseHash();
    var found = target ? resolveTarget(target) : null;
    if (!target) {
      setFrame(null);
      showSection('home');
      markActive(null);
      document.title = tr('platform.name');
      renderWorkbench();
    } else if (found) {
      var u = found.url;
      u.searchParams.set('lang', state.lang);
      var label = found.entry ? localized(found.entry.label) || target.plugin : target.plugin;
      showSection('plugin');
      setFrame(u.pathname + u.search + u.hash, label, target.plugin);
      showPluginChrome(target.plugin, found.entry, state.bridge && state.bridge.title);
    } else if (state.menuLoaded) {
      setFrame(null);
      showSection('not-found');
      markActive(null);
    }
    // else: the menu is still loading; route() runs again when it arrives.
  }

  // ---- the kit, for what the portal shows as plugin pages do ---------------
  //
  // Approval summaries (the form's `summary` and `files`) and titles and
  // step names in one language are rendered by the UI kit's own code
  // (/ui/kit/kit.js), loaded once, with its texts in the portal's language.

  var kitModule = null;
  var kitLang = null;
  var kitReady = null;

  function withKit() {
    if (!kitModule) kitModule = import('/ui/kit/kit.js').catch(function () { return null; });
    return kitModule.then(function (kit) {
      if (!kit || kitLang === state.lang) return kit;
      return kit.useTexts(state.lang).then(function () { kitLang = state.lang; kitReady = kit; return kit; });
    });
  }

  function oneLang(kit, value) { return kit ? kit.oneLang(value) : String(value == null ? '' : value); }

  function approvalTitle(kit, a) { return kit ? kit.approvalTitle(a) : a.title; }

  function openFile(id, name) {
    var a = el('a', '');
    a.href = '/api/v1/files/' + encodeURIComponent(id);
    a.download = name || '';
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  // ---- the bell: the notification centre -----------------------------------
  //
  // The kernel's stream (`/api/v1/me/notifications/stream`) tells the count
  // and each new notification as it is made, so the bell and the to-do
  // badge change without polling; the browser reconnects by itself and the
  // stream sends what it missed (Last-Event-ID).

  var bell = { source: null, next: null, open: false, seq: 0 };

  function startBell() {
    stopBell();
    if (typeof EventSource !== 'function') return;
    var source = new EventSource('/api/v1/me/notifications/stream');
    bell.source = source;
    source.addEventListener('unread', function (e) {
      var data = parseJson(e.data);
      if (data) setBellCount(data.unread);
    });
    source.addEventListener('notification', function (e) {
      var data = parseJson(e.data);
      if (!data) return;
      setBellCount(data.unread);
      // A new to-do or an outcome changes the to-do list too.
      loadTodoCount();
      if (!$('home').hidden) renderWorkbench();
      if (bell.open) loadBell(false);
    });
  }

  function stopBell() {
    if (bell.source) bell.source.close();
    bell.source = null;
    closeBell();
    setBellCount(0);
  }

  function parseJson(text) {
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  function setBellCount(n) {
    var badge = $('bell-count');
    badge.textContent = n > 99 ? '99+' : String(n || 0);
    badge.hidden = !n;
    $('bell-read-all').disabled = !n;
    $('bell-button').setAttribute('aria-label', n ? tr('bell.unread', { count: n }) : tr('bell.title'));
  }

  function toggleBell() {
    if (bell.open) closeBell();
    else {
      bell.open = true;
      $('bell-panel').hidden = false;
      $('bell-button').setAttribute('aria-expanded', 'true');
      loadBell(false);
    }
  }

  function closeBell() {
    bell.open = false;
    $('bell-panel').hidden = true;
    $('bell-button').setAttribute('aria-expanded', 'false');
  }

  // The newest notifications, or (more) the page after those shown.
  function loadBell(more) {
    var seq = ++bell.seq;
    var path = '/api/v1/me/notifications?limit=20' + (more && bell.next ? '&before=' + bell.next : '');
    Promise.all([api('GET', path), withKit()]).then(function (both) {
      var res = both[0];
      if (seq !== bell.seq) return;
      if (res.status === 401) return sessionExpired();
      if (res.status !== 200 || !res.body) {
        showShellError(tr('bell.error', { message: errorMessage(res) }));
        return;
      }
      var list = $('bell-list');
      if (!more) list.textContent = '';
      res.body.items.forEach(function (n) { list.appendChild(bellItem(both[1], n)); });
      bell.next = res.body.next;
      setBellCount(res.body.unread);
      $('bell-more').hidden = !res.body.next;
      $('bell-empty').hidden = list.children.length > 0;
    }, function () { showShellError(tr('error.network')); });
  }

  function bellText(kit, n) {
    var title = oneLang(kit, n.title);
    if (n.kind === 'decided') {
      return tr(n.detail && n.detail.status === 'approved' ? 'bell.kind.approved' : 'bell.kind.rejected', { title: title });
    }
    return tr('bell.kind.' + n.kind, { title: title, name: n.actor_name || '' });
  }

  function bellItem(kit, n) {
    var li = el('li', '');
    var a = el('a', n.read_at ? '' : 'bell-unread', bellText(kit, n));
    a.href = n.link;
    a.setAttribute('data-notification', String(n.id));
    a.appendChild(el('span', 'bell-when', when(n.created_at)));
    a.addEventListener('click', function () {
      closeBell();
      if (!n.read_at) {
        n.read_at = Date.now() / 1000;
        a.classList.remove('bell-unread');
        api('POST', '/api/v1/me/notifications/read', { ids: [n.id] }).then(function (res) {
          if (res.status === 200 && res.body) setBellCount(res.body.unread);
        });
      }
    });
    li.appendChild(a);
    return li;
  }

  function readAllBell() {
    api('POST', '/api/v1/me/notifications/read', { all: true }).then(function (res) {
      if (res.status === 401) return sessionExpired();
      if (res.status !== 200 || !res.body) return showShellError(errorMessage(res));
      setBellCount(res.body.unread);
      var unread = document.querySelectorAll('#bell-list .bell-unread');
      for (var i = 0; i < unread.length; i++) unread[i].classList.remove('bell-unread');
    }, function () { showShellError(tr('error.network')); });
  }

  // ---- the workbench on the home page: what this person has to act on -------
  //
  // Three cards, each from the kernel's own answer for the caller (nothing
  // is filtered here): the approvals waiting for them, their unread
  // notifications, and the plan's figures at the org they act for, with
  // the leaders' overview one click away. A card the caller may not read
  // (no data-center read at that org) is left out, not shown empty.

  var WORKBENCH_ITEMS = 5;
  var workbenchSeq = 0;

  function renderWorkbench() {
    var seq = ++workbenchSeq;
    var box = $('workbench');
    Promise.all([
      api('GET', '/api/v1/todos?kind=pending&limit=' + WORKBENCH_ITEMS),
      api('GET', '/api/v1/me/notifications?unread=true&limit=' + WORKBENCH_ITEMS),
      figuresOrg() ? api('GET', '/api/v1/datacenter/plan?org=' + encodeURIComponent(figuresOrg())) : Promise.resolve({ status: 0 }),
      withKit()
    ]).then(function (r) {
      if (seq !== workbenchSeq || !state.me) return;
      if (r[0].status === 401) return sessionExpired();
      var kit = r[3];
      box.textContent = '';
      box.appendChild(workbenchTodos(kit, r[0]));
      box.appendChild(workbenchAlerts(kit, r[1]));
      if (r[2].status === 200 && r[2].body) box.appendChild(workbenchFigures(r[2].body.indicators || []));
      $('workbench-block').hidden = false;
    }, function () {
      if (seq === workbenchSeq) $('workbench-block').hidden = true;
    });
  }

  // The org whose figures the workbench shows: the acting org where a
  // kernel role (each reads the data center) is bound there, else the
  // person's own unit, where every user is a member. A plugin role alone
  // reads no figures, and asking would only earn a refusal.
  var FIGURE_ROLES = ['member', 'org-admin', 'auditor', 'platform-admin'];

  function figuresOrg() {
    var acting = state.org || (state.me.user && state.me.user.org_id);
    var bound = (state.me.bindings || []).some(function (b) {
      return b && b.org_id === acting && FIGURE_ROLES.indexOf(b.role) >= 0;
    });
    return bound ? acting : state.me.home_org || null;
  }

  function workbenchCard(id, title, count, link, linkText) {
    var card = el('div', 'wb-card');
    card.id = id;
    var head = el('div', 'wb-head');
    head.appendChild(el('h2', 'wb-title', title));
    if (count != null) head.appendChild(el('span', 'wb-count', String(count)));
    card.appendChild(head);
    var list = el('ul', 'wb-list');
    card.appendChild(list);
    var more = el('a', 'wb-more', linkText + ' →');
    more.href = link;
    card.appendChild(more);
    return { card: card, list: list };
  }

  function workbenchLine(list, text, meta, href) {
    var li = el('li', '');
    var a = el('a', '', text);
    a.href = href;
    if (meta) a.appendChild(el('span', 'wb-meta', meta));
    li.appendChild(a);
    list.appendChild(li);
    return a;
  }

  function workbenchEmpty(list, key) {
    list.appendChild(el('li', 'wb-empty', tr(key)));
  }

  function workbenchTodos(kit, res) {
    var ok = res.status === 200 && res.body;
    var items = ok ? res.body.items || [] : [];
    var c = workbenchCard('wb-todos', tr('workbench.todos'), ok ? res.body.total : '—', '#/todos/pending', tr('workbench.allTodos'));
    items.forEach(function (item) {
      var a = item.approval;
      var meta = [oneLang(kit, a.flow_title)];
      if (item.step_name) meta.push(oneLang(kit, item.step_name));
      if (item.urged_at) meta.push(tr('todos.urged'));
      workbenchLine(c.list, approvalTitle(kit, a), meta.join(' · '), '#/approvals/' + encodeURIComponent(a.id))
        .setAttribute('data-approval', a.id);
    });
    if (!items.length) workbenchEmpty(c.list, ok ? 'workbench.noTodos' : 'workbench.unavailable');
    return c.card;
  }

  function workbenchAlerts(kit, res) {
    var ok = res.status === 200 && res.body;
    var items = ok ? res.body.items || [] : [];
    var c = workbenchCard('wb-alerts', tr('workbench.alerts'), ok ? res.body.unread : '—', '#/', tr('workbench.allAlerts'));
    c.card.querySelector('.wb-more').addEventListener('click', function (e) {
      e.preventDefault();
      if (!bell.open) toggleBell();
    });
    items.forEach(function (n) {
      workbenchLine(c.list, bellText(kit, n), when(n.created_at), n.link).setAttribute('data-notification', String(n.id));
    });
    if (!items.length) workbenchEmpty(c.list, ok ? 'workbench.noAlerts' : 'workbench.unavailable');
    return c.card;
  }

  function workbenchFigures(indicators) {
    var c = workbenchCard('wb-figures', tr('workbench.figures'), null, '#/overview', tr('workbench.overview'));
    var shown = indicators.filter(function (p) { return p.latest != null; }).slice(0, 6);
    shown.forEach(function (p) {
      var status = p.met === true ? 'met' : p.met === false ? 'unmet' : 'unknown';
      var li = el('li', 'wb-figure wb-' + status);
      li.setAttribute('data-code', p.code);
      li.appendChild(el('span', 'wb-figure-name', localized(p.name) || p.code));
      var value;
      try { value = Number(p.latest).toLocaleString(state.lang, { maximumFractionDigits: 2 }); } catch (e) { value = String(p.latest); }
      li.appendChild(el('span', 'wb-figure-value', value + ' ' + unitText(p.unit)));
      li.appendChild(el('span', 'wb-badge', tr('workbench.status.' + status)));
      c.list.appendChild(li);
    });
    if (!shown.length) workbenchEmpty(c.list, 'workbench.noFigures');
    return c.card;
  }

  // ---- the to-do list: approvals of every plugin, run by the kernel --------

  function parseTodoHash() {
    var m = /^#\/todos(?:\/(pending|copied|started))?$/.exec(location.hash);
    if (m) return { kind: m[1] || 'pending' };
    m = /^#\/approvals\/([0-9A-Za-z]+)$/.exec(location.hash);
    if (m) return { approval: m[1] };
    return null;
  }

  function when(seconds) {
    try {
      return new Date(seconds * 1000).toLocaleString(state.lang);
    } catch (e) {
      return new Date(seconds * 1000).toISOString();
    }
  }

  function loadTodoCount() {
    api('GET', '/api/v1/todos?limit=1').then(function (res) {
      if (res.status !== 200 || !res.body) return;
      var badge = $('todo-count');
      badge.textContent = String(res.body.total);
      badge.hidden = !res.body.total;
    }, function () { /* the badge is a convenience; the list itself reports errors */ });
  }

  function showTodos(kind, selected) {
    state.todoKind = kind;
    var tabs = document.querySelectorAll('#todo-tabs [data-kind]');
    for (var i = 0; i < tabs.length; i++) {
      tabs[i].setAttribute('aria-selected', String(tabs[i].getAttribute('data-kind') === kind));
    }
    var seq = ++state.todoSeq;
    Promise.all([api('GET', '/api/v1/todos?kind=' + encodeURIComponent(kind)), withKit()]).then(function (both) {
      var res = both[0];
      if (seq !== state.todoSeq) return;
      if (res.status === 401) return sessionExpired();
      if (res.status !== 200 || !res.body) {
        showShellError(tr('todos.error', { message: errorMessage(res) }));
        return;
      }
      renderTodoItems(res.body.items || [], selected, both[1]);
    }, function () {
      showShellError(tr('error.network'));
    });
  }

  function statusLabel(status) {
    return tr('approval.status.' + status);
  }

  function renderTodoItems(items, selected, kit) {
    var list = $('todo-list');
    list.textContent = '';
    items.forEach(function (item) {
      var a = item.approval;
      var li = el('li', 'todo-item');
      var link = el('a', a.id === selected ? 'active' : '');
      link.href = '#/approvals/' + encodeURIComponent(a.id);
      link.setAttribute('data-approval', a.id);
      link.appendChild(el('strong', 'todo-title', approvalTitle(kit, a)));
      // 催办: the applicant pressed for it.
      if (item.urged_at) link.appendChild(el('span', 'todo-urged', tr('todos.urged')));
      // 待阅: a copy not read yet.
      if (state.todoKind === 'copied' && !item.read_at) link.appendChild(el('span', 'todo-urged todo-unread', tr('todos.unread')));
      var meta = [oneLang(kit, a.flow_title), statusLabel(a.status)];
      if (item.step_name) meta.push(tr('todos.step', { step: oneLang(kit, item.step_name) }));
      meta.push(when(item.since));
      link.appendChild(el('div', 'todo-meta', meta.join(' · ')));
      li.appendChild(link);
      list.appendChild(li);
    });
    $('todo-empty').hidden = items.length > 0;
  }

  function showApproval(id) {
    Promise.all([api('GET', '/api/v1/approvals/' + encodeURIComponent(id)), withKit()]).then(function (both) {
      var res = both[0];
      if (res.status === 401) return sessionExpired();
      if (res.status !== 200 || !res.body) {
        state.approval = null;
        $('approval').hidden = false;
        $('approval-title').textContent = res.status === 404 ? tr('approval.notFound') : errorMessage(res);
        $('approval-meta').textContent = '';
        $('approval-summary').textContent = '';
        $('approval-steps').textContent = '';
        $('approval-timeline').textContent = '';
        $('approval-form').hidden = true;
        return;
      }
      renderApproval(res.body, both[1]);
    }, function () {
      showShellError(tr('error.network'));
    });
  }

  function renderApproval(d, kit) {
    var a = d.approval;
    state.approval = d;
    // Opening a copy (抄送) made to the viewer reads it (已阅).
    var me = state.me && state.me.user && state.me.user.user_id;
    var unreadCopy = (d.copies || []).some(function (c) { return c.user === me && !c.read_at; });
    if (unreadCopy) api('POST', '/api/v1/approvals/' + encodeURIComponent(a.id) + '/read', {});
    state.approvalKit = kit;
    $('approval').hidden = false;
    $('approval-title').textContent = approvalTitle(kit, a);
    $('approval-meta').textContent = tr('approval.meta', { flow: oneLang(kit, a.flow_title), status: statusLabel(a.status) });
    // What is being approved: the plugin's summary of the subject (the
    // form's `summary` lines and `files`), else the form's keys.
    var summary = $('approval-summary');
    summary.textContent = '';
    if (kit) summary.appendChild(kit.approvalSummary(a.form, { api: api, openFile: openFile }));
    var steps = $('approval-steps');
    steps.textContent = '';
    a.steps.forEach(function (s, i) {
      var li = el('li', i + 1 === a.current_step ? 'current' : '', oneLang(kit, s.name) + ' (' + tr('approval.mode.' + s.mode) + ')');
      steps.appendChild(li);
    });
    var timeline = $('approval-timeline');
    timeline.textContent = '';
    d.timeline.forEach(function (t) {
      var li = el('li', 'timeline-entry');
      li.setAttribute('data-action', t.action);
      var line = (t.actor_name || t.actor) + ' · ' + tr('approval.action.' + t.action);
      if (t.step > 0 && a.steps[t.step - 1]) line += ' · ' + oneLang(kit, a.steps[t.step - 1].name);
      if (t.detail && t.detail.name) line += ' · ' + t.detail.name;
      li.appendChild(el('span', 'what', line));
      li.appendChild(el('span', 'when', ' ' + when(t.at)));
      if (t.comment) li.appendChild(el('span', 'comment', t.comment));
      timeline.appendChild(li);
    });
    var form = $('approval-form');
    form.hidden = !d.can_act;
    $('approval-error').textContent = '';
    var select = $('approval-to-step');
    select.textContent = '';
    var back = el('option', '', tr('approval.toApplicant'));
    back.value = '0';
    select.appendChild(back);
    for (var i = 1; i < a.current_step; i++) {
      var o = el('option', '', oneLang(kit, a.steps[i - 1].name));
      o.value = String(i);
      select.appendChild(o);
    }
  }

  function onApprovalAction(action) {
    var d = state.approval;
    if (!d) return;
    var body = { comment: $('approval-comment').value.trim() };
    if (action === 'reject') {
      body.to_step = Number($('approval-to-step').value);
      // Sending back needs a reason the applicant can act on, and a
      // confirmation.
      if (!body.comment) {
        $('approval-error').textContent = tr('approval.rejectReason');
        $('approval-comment').focus();
        return;
      }
      if (!window.confirm(tr('approval.confirmReject'))) return;
    }
    var buttons = [$('approval-approve'), $('approval-reject')];
    buttons.forEach(function (b) { b.disabled = true; });
    api('POST', '/api/v1/approvals/' + encodeURIComponent(d.approval.id) + '/' + action, body).then(function (res) {
      if (res.status === 401) return sessionExpired();
      if (res.status !== 200 || !res.body) {
        $('approval-error').textContent = errorMessage(res);
        return;
      }
      $('approval-comment').value = '';
      renderApproval(res.body, state.approvalKit);
      showTodos(state.todoKind, res.body.approval.id);
      loadTodoCount();
    }, function () {
      $('approval-error').textContent = tr('error.network');
    }).then(function () {
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }

  // ---- the bridge: what a plugin page may ask the portal to do ------------
  //
  // A plugin page is sandboxed (CSP `sandbox` without allow-same-origin), so
  // it has no session and cannot read kernel answers. The kit posts requests
  // here; a request counts only when it comes from the frame's window with
  // the nonce of the page the portal loaded, and it reaches only:
  //   - any method on /api/v1/p/{that plugin}/…;
  //   - GET /api/v1/orgs and /api/v1/orgs/{id} (the org tree);
  //   - GET /api/v1/todos, filtered to that plugin's approvals;
  //   - GET /api/v1/approvals/{id} and POST …/{approve|reject|withdraw}, for
  //     that plugin's approvals only;
  //   - GET /api/v1/files/{id} and …/meta, for files that plugin stored;
  //   - the caller (`context`: /api/v1/me's answer, which has no secrets, the
  //     language and the acting org) and portal navigation to the to-dos,
  //     an approval or that plugin's own menu entries.
  // Everything else answers 403 `forbidden` without reaching the kernel.

  var BRIDGE_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

  function bridgeReply(source, b, id, payload) {
    // A reply for a page that has since been replaced is dropped.
    if (state.bridge !== b) return;
    payload.tianshan = 'bridge-reply';
    payload.id = id;
    payload.nonce = b.nonce;
    // The page's origin is opaque, so no target origin can name it; the
    // nonce check above is what keeps the answer with that page.
    source.postMessage(payload, '*');
  }

  function refused(message) {
    return Promise.resolve({ status: 403, body: { error: { code: 'forbidden', message: message } } });
  }

  function notFound() {
    return Promise.resolve({ status: 404, body: { error: { code: 'not_found', message: 'not found' } } });
  }

  function onBridgeMessage(ev) {
    var frame = $('plugin-frame');
    var b = state.bridge;
    if (!b || !frame.contentWindow || ev.source !== frame.contentWindow) return;
    var d = ev.data;
    if (!d || d.tianshan !== 'bridge' || d.nonce !== b.nonce || typeof d.id !== 'number') return;
    var work;
    if (d.op === 'context') work = Promise.resolve({ status: 200, body: bridgeContext(b.plugin) });
    else if (d.op === 'request') work = bridgeRequest(b.plugin, d);
    else if (d.op === 'navigate') work = bridgeNavigate(b.plugin, d.hash);
    else if (d.op === 'route') work = bridgeRoute(b, d.hash, d.title);
    else if (d.op === 'print') work = bridgePrint(frame, d.height);
    else if (d.op === 'live') work = bridgeLive(b, d);
    else if (d.op === 'live-stop') work = bridgeLiveStop(b, d);
    else work = refused('unknown bridge operation');
    work.then(function (payload) {
      bridgeReply(ev.source, b, d.id, payload);
    }, function () {
      bridgeReply(ev.source, b, d.id, { status: 0, body: null });
    });
  }

  function bridgeContext(plugin) {
    var me = state.me || {};
    return {
      plugin: plugin,
      lang: state.lang,
      org: state.org || (me.user && me.user.org_id) || null,
      user: me.user || null,
      unit: me.unit || null,
      home_org: me.home_org || null,
      is_platform_admin: !!me.is_platform_admin,
      bindings: me.bindings || []
    };
  }

  function bridgeNavigate(plugin, hash) {
    if (typeof hash !== 'string') return refused('no hash');
    var ok = /^#\/(todos(\/(pending|copied|started))?|approvals\/[0-9A-Za-z]+)?$/.test(hash);
    var m = /^#\/p\/([^/?]+)\/[^/?][^#]*$/.exec(hash);
    if (m && m[1] === encodeURIComponent(plugin)) ok = true;
    if (!ok) return refused('the portal opens only to-dos, approvals and this plugin\'s pages');
    location.hash = hash;
    return Promise.resolve({ status: 204, body: null });
  }

  // kit.print(): a sandboxed page may not open the print dialog, so the
  // portal prints — itself without its menu and bars (portal.css's print
  // rules), the frame as tall as the page it holds so nothing is cut.
  function bridgePrint(frame, height) {
    var h = typeof height === 'number' && height > 0 ? Math.min(Math.round(height), 100000) : 0;
    var old = frame.style.height;
    if (h) frame.style.height = h + 'px';
    document.documentElement.classList.add('printing');
    try { window.print(); } catch (e) { /* no dialog: nothing to print to */ }
    document.documentElement.classList.remove('printing');
    frame.style.height = old;
    return Promise.resolve({ status: 204, body: null });
  }

  // The page moved to `hash` (its own route, '#/stocktakes/PD1') under
  // `title`: the portal's address becomes '#/p/{plugin}/stocktakes/PD1'
  // (replaced, not pushed: the frame's own history entry is the step
  // back), and its breadcrumb and menu mark follow.
  function bridgeRoute(b, hash, title) {
    if (typeof hash !== 'string' || hash.length > 2000 || !/^#\/[^/?#][^#]*$/.test(hash)) {
      return refused('a route is a hash like #/view/…');
    }
    b.inner = hash;
    b.title = typeof title === 'string' ? title.slice(0, 200) : '';
    var portalHash = '#/p/' + encodeURIComponent(b.plugin) + hash.slice(1);
    state.frameSrc = b.page + hash;
    if (location.hash !== portalHash) history.replaceState(null, '', portalHash);
    showPluginChrome(b.plugin, entryForRoute(b.plugin, hash), b.title);
    return Promise.resolve({ status: 204, body: null });
  }

  // What a path is, for the plugin asking; null when it may not reach it.
  function bridgeTarget(plugin, method, path) {
    if (typeof path !== 'string' || path.charAt(0) !== '/' || path.charAt(1) === '/' || path.charAt(1) === '\\') return null;
    var u;
    try { u = new URL(path, location.origin); } catch (e) { return null; }
    if (u.origin !== location.origin) return null;
    var p = u.pathname;
    var own = '/api/v1/p/' + plugin;
    if (p === own || p.indexOf(own + '/') === 0) return { kind: 'plugin', url: u };
    if (method === 'GET' && (p === '/api/v1/orgs' || /^\/api\/v1\/orgs\/[^/]+$/.test(p))) return { kind: 'plain', url: u };
    if (method === 'GET' && p === '/api/v1/todos') return { kind: 'todos', url: u };
    var m = /^\/api\/v1\/approvals\/([0-9A-Za-z]+)(?:\/(approve|reject|withdraw))?$/.exec(p);
    if (m && (m[2] ? method === 'POST' : method === 'GET')) return { kind: 'approval', id: m[1], url: u };
    m = /^\/api\/v1\/files\/([0-9A-Za-z_-]+)(\/meta)?$/.exec(p);
    if (m && method === 'GET') return { kind: 'file', id: m[1], url: u };
    if (method === 'GET' && p === '/api/v1/me') return { kind: 'me', url: u };
    // The page's own plugin's terminals, whatever plugin the page names.
    if (method === 'GET' && p === '/api/v1/telemetry/positions') {
      u.searchParams.set('plugin', plugin);
      return { kind: 'plain', url: u };
    }
    return null;
  }

  function bridgeRequest(plugin, d) {
    var method = typeof d.method === 'string' ? d.method.toUpperCase() : '';
    if (BRIDGE_METHODS.indexOf(method) < 0) return refused('method not allowed through the portal');
    var target = bridgeTarget(plugin, method, d.path);
    if (!target) return refused('a plugin page reaches only its own plugin\'s API through the portal');
    if (target.kind === 'me') return Promise.resolve({ status: 200, body: bridgeContext(plugin) });
    var send = function () { return sessionFetch(method, target.url, d); };
    if (target.kind === 'approval') {
      return sessionFetch('GET', new URL('/api/v1/approvals/' + target.id, location.origin), {}).then(function (res) {
        var a = res.body && res.body.approval;
        if (res.status !== 200 || !a) return res;
        if (a.plugin !== plugin) return notFound();
        return method === 'GET' ? res : send();
      });
    }
    if (target.kind === 'file') {
      return sessionFetch('GET', new URL('/api/v1/files/' + target.id + '/meta', location.origin), {}).then(function (res) {
        var f = res.body && res.body.file;
        if (res.status !== 200 || !f) return res;
        if (f.plugin_id !== plugin) return notFound();
        return /\/meta$/.test(target.url.pathname) ? res : send();
      });
    }
    if (target.kind === 'todos') return bridgeTodos(plugin, target.url);
    return send();
  }

  // The caller's to-dos of `plugin` only, paged as the page asked (limit,
  // offset) over that plugin's items: the kernel's list is read a few
  // hundred at a time and filtered here, so `total` and `next_offset` count
  // this plugin's items and a page is never short of them.
  var TODO_SCAN = 200;
  var TODO_SCAN_MAX = 2000;

  function bridgeTodos(plugin, url) {
    var q = url.searchParams;
    var kind = q.get('kind') || 'pending';
    var limit = Math.max(1, Math.min(200, parseInt(q.get('limit'), 10) || 50));
    var offset = Math.max(0, parseInt(q.get('offset'), 10) || 0);
    var mine = [];
    function page(at) {
      var u = new URL('/api/v1/todos', location.origin);
      u.searchParams.set('kind', kind);
      u.searchParams.set('limit', String(TODO_SCAN));
      u.searchParams.set('offset', String(at));
      return sessionFetch('GET', u, {}).then(function (res) {
        if (res.status !== 200 || !res.body || !Array.isArray(res.body.items)) return res;
        res.body.items.forEach(function (i) {
          if (i && i.approval && i.approval.plugin === plugin) mine.push(i);
        });
        var next = res.body.next_offset;
        if (next != null && next < TODO_SCAN_MAX) return page(next);
        var items = mine.slice(offset, offset + limit);
        var end = offset + items.length;
        return { status: 200, body: { items: items, total: mine.length, next_offset: end < mine.length ? end : null } };
      });
    }
    return page(0);
  }

  // Performs a bridged request with the session: the page chooses the
  // method, path, body and its type, what to accept and the org to act in
  // (which the kernel checks); never any other header.
  function sessionFetch(method, url, d) {
    var headers = { 'Accept-Language': state.lang };
    headers.Accept = typeof d.accept === 'string' && /^[\w*+.\/-]+(\s*,\s*[\w*+.\/-]+)*$/.test(d.accept) ? d.accept : 'application/json';
    var org = typeof d.org === 'string' && d.org ? d.org : state.org;
    if (org) headers[ORG_HEADER] = org;
    if (method !== 'GET' && method !== 'HEAD' && state.csrf) headers[CSRF_HEADER] = state.csrf;
    var body;
    if (d.body !== undefined && d.body !== null && method !== 'GET') {
      if (typeof d.body !== 'string' && !(d.body instanceof Blob)) return Promise.resolve({ status: 400, body: null });
      body = d.body;
      var type = typeof d.contentType === 'string' && /^[\w.+-]+\/[\w.+-]+(;\s*[\w-]+=[\w.-]+)?$/.test(d.contentType)
        ? d.contentType : 'application/octet-stream';
      headers['Content-Type'] = type;
    }
    return fetch(url.pathname + url.search, {
      method: method,
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'manual',
      headers: headers,
      body: body
    }).then(function (r) {
      if (r.status === 401) sessionExpiredSoon();
      var ok = r.status >= 200 && r.status < 300;
      if (d.as === 'blob' && ok) {
        var disposition = r.headers.get('Content-Disposition') || '';
        var m = /filename\*=UTF-8''([^;]+)/i.exec(disposition) || /filename="?([^";]+)"?/i.exec(disposition);
        var name = null;
        if (m) { try { name = decodeURIComponent(m[1]); } catch (e) { name = m[1]; } }
        return r.blob().then(function (blob) {
          return { status: r.status, body: null, blob: blob, type: blob.type, filename: name };
        });
      }
      if (r.status === 204) return { status: 204, body: null };
      return r.json().catch(function () { return null; }).then(function (b) {
        return { status: r.status, body: b };
      });
    }, function () {
      return { status: 0, body: null };
    });
  }

  // ---- live values for plugin pages (kit.live) --------------------------------
  //
  // A sandboxed page cannot open an EventSource to the kernel (no cookie),
  // so the portal opens GET /api/v1/telemetry/stream for it — always for
  // the frame's own plugin, whatever the page names — and posts each event
  // into the frame as {tianshan: 'bridge-live', nonce, key, type, data}.
  // Streams end when the page stops them, when the portal loads another
  // page, and whenever a document loads in the frame (the page navigated
  // itself or reloaded): the portal then posts type 'reset', and a kit in
  // the new document opens its streams again. Refused or cut streams are
  // opened again with a backoff (1 s to 30 s), resuming after the last event.

  var LIVE_PER_PAGE = 4;
  var LIVE_DEVICE = /^[A-Za-z0-9_.:-]{1,64}$/;

  function bridgeLive(b, d) {
    if (typeof d.key !== 'string' || !/^[\w-]{1,64}$/.test(d.key)) return refused('a live stream needs a key');
    var list = d.devices == null ? [] : d.devices;
    if (!Array.isArray(list) || list.length > 500) return refused('devices: up to 500 device ids');
    for (var i = 0; i < list.length; i++) {
      if (typeof list[i] !== 'string' || !LIVE_DEVICE.test(list[i])) return refused('devices: device ids only');
    }
    if (!b.live) b.live = {};
    liveClose(b, d.key);
    if (Object.keys(b.live).length >= LIVE_PER_PAGE) return refused('at most ' + LIVE_PER_PAGE + ' live streams per page');
    var s = { devices: list.slice(), source: null, timer: null, last: null, backoff: 1000 };
    b.live[d.key] = s;
    liveConnect(b, d.key, s);
    return Promise.resolve({ status: 204, body: null });
  }

  function bridgeLiveStop(b, d) {
    if (typeof d.key === 'string') liveClose(b, d.key);
    return Promise.resolve({ status: 204, body: null });
  }

  function liveConnect(b, key, s) {
    s.timer = null;
    if (state.bridge !== b || !b.live || b.live[key] !== s) return;
    var q = new URLSearchParams();
    q.set('plugin', b.plugin);
    if (s.devices.length) q.set('devices', s.devices.join(','));
    if (state.org) q.set('org', state.org);
    if (s.last) q.set('last_event_id', s.last);
    var es = new EventSource('/api/v1/telemetry/stream?' + q.toString());
    s.source = es;
    es.addEventListener('open', function () {
      s.backoff = 1000;
      livePost(b, key, 'open', null);
    });
    ['latest', 'alert'].forEach(function (type) {
      es.addEventListener(type, function (ev) {
        if (ev.lastEventId) s.last = ev.lastEventId;
        var data;
        try { data = JSON.parse(ev.data); } catch (e) { return; }
        livePost(b, key, type, data);
      });
    });
    es.addEventListener('error', function () {
      // CONNECTING: the browser reconnects by itself (a kernel restart).
      // CLOSED: refused (signed out, too many streams) or not a stream.
      if (es.readyState !== EventSource.CLOSED || s.source !== es) return;
      es.close();
      s.source = null;
      livePost(b, key, 'error', null);
      // Refused as signed out: the shell says so (and ends the page).
      sessionExpiredSoon();
      s.timer = setTimeout(function () { liveConnect(b, key, s); }, s.backoff);
      s.backoff = Math.min(s.backoff * 2, 30000);
    });
  }

  function livePost(b, key, type, data) {
    var frame = $('plugin-frame');
    if (state.bridge !== b || !frame.contentWindow) return liveCloseAll(b);
    // As bridgeReply: the nonce keeps the events with the page.
    frame.contentWindow.postMessage({ tianshan: 'bridge-live', nonce: b.nonce, key: key, type: type, data: data }, '*');
  }

  function liveClose(b, key) {
    var s = b.live && b.live[key];
    if (!s) return;
    delete b.live[key];
    if (s.timer) clearTimeout(s.timer);
    if (s.source) s.source.close();
    s.source = null;
  }

  function liveCloseAll(b) {
    if (b && b.live) Object.keys(b.live).forEach(function (key) { liveClose(b, key); });
  }

  // A document loaded in the frame: whatever streams the previous one had
  // end; the new one (if it is the page, with its nonce) opens its own.
  function onFrameLoad() {
    var b = state.bridge;
    var frame = $('plugin-frame');
    if (!b) return;
    liveCloseAll(b);
    if (frame.contentWindow) frame.contentWindow.postMessage({ tianshan: 'bridge-live', nonce: b.nonce, type: 'reset' }, '*');
  }

  // A page's call found the session gone: the shell says so once.
  function sessionExpiredSoon() {
    if (state.me) api('GET', '/api/v1/me').then(function (res) { if (res.status === 401 && state.me) sessionExpired(); });
  }

  // ---- the mobile menu ------------------------------------------------------

  function openMenu(open) {
    $('shell').classList.toggle('menu-open', open);
    $('menu-toggle').setAttribute('aria-expanded', String(open));
    $('menu-backdrop').hidden = !open;
  }

  function closeMenu() { openMenu(false); }

  // ---- actions --------------------------------------------------------------

  function startThrottle(seconds) {
    state.throttledUntil = Date.now() + seconds * 1000;
    var submit = $('login-submit');
    submit.disabled = true;
    clearInterval(state.throttleTimer);
    function tick() {
      var left = Math.ceil((state.throttledUntil - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(state.throttleTimer);
        state.throttleTimer = null;
        submit.disabled = false;
        setLoginError(null);
        return;
      }
      setLoginError({ key: 'login.throttled', values: { seconds: left } });
    }
    tick();
    state.throttleTimer = setInterval(tick, 1000);
  }

  function setBusy(busy) {
    var submit = $('login-submit');
    submit.disabled = busy || state.throttledUntil > Date.now();
    submit.setAttribute('data-i18n', busy ? 'login.submitting' : 'login.submit');
    submit.textContent = tr(busy ? 'login.submitting' : 'login.submit');
    $('login-form').setAttribute('aria-busy', String(busy));
  }

  function onLogin(ev) {
    ev.preventDefault();
    if (state.throttledUntil > Date.now()) return;
    var username = $('login-username').value.trim();
    var password = $('login-password').value;
    if (!username || !password) {
      setLoginError({ key: 'login.required' });
      return;
    }
    setBusy(true);
    api('POST', '/api/v1/auth/login', { username: username, password: password }).then(function (res) {
      if (res.status === 200 && res.body) {
        state.csrf = res.body.csrf_token || null;
        $('login-password').value = '';
        setLoginError(null);
        return checkSession();
      }
      $('login-password').value = '';
      $('login-password').focus();
      if (res.status === 429) {
        var after = parseInt(res.response.headers.get('Retry-After'), 10);
        startThrottle(after > 0 ? after : 60);
      } else if (errorCode(res) === 'password_change_required' && window.TianshanAdmin) {
        // The right password, but an administrator chose it: pick a new one.
        var shell = shellContext();
        shell.username = username;
        shell.password = password;
        shell.done = function (newPassword) {
          $('login-password').value = newPassword;
          $('login-form').requestSubmit();
        };
        window.TianshanAdmin.forcedChange(shell);
      } else if (errorCode(res) === 'invalid_credentials') {
        setLoginError({ key: 'login.invalid' });
      } else {
        setLoginError({ key: 'login.failed', values: { message: errorMessage(res) } });
      }
    }, function () {
      setLoginError({ key: 'error.network' });
    }).then(function () {
      setBusy(false);
    });
  }

  function onLogout() {
    var button = $('logout');
    button.disabled = true;
    api('POST', '/api/v1/auth/logout').then(function (res) {
      // 401: the session was already gone; either way we are signed out.
      if (res.status === 204 || res.status === 200 || res.status === 401) return true;
      showShellError(errorMessage(res));
      return false;
    }, function () {
      showShellError(tr('error.network'));
      return false;
    }).then(function (signedOut) {
      button.disabled = false;
      if (!signedOut) return;
      state.csrf = null;
      storageSet('sessionStorage', ORG_KEY, null);
      history.replaceState(null, '', location.pathname + location.search);
      showLogin(null);
    });
  }

  function onOrgChange() {
    var value = $('org-switcher').value;
    if (value === state.org) return;
    state.org = value;
    storageSet('sessionStorage', ORG_KEY, value);
    // Another org has another menu: start from its home.
    if (location.hash && location.hash !== '#/') history.pushState(null, '', '#/');
    state.entries = [];
    state.menuLoaded = false;
    renderUser();
    renderMenu();
    route();
    loadMenu();
  }

  function onLangClick(ev) {
    var button = ev.target.closest ? ev.target.closest('[data-lang]') : null;
    if (!button) return;
    var lang = button.getAttribute('data-lang');
    if (lang !== state.lang) setLang(lang);
  }

  function boot() {
    $('login-form').addEventListener('submit', onLogin);
    $('logout').addEventListener('click', onLogout);
    $('bell-button').addEventListener('click', toggleBell);
    $('bell-read-all').addEventListener('click', readAllBell);
    $('bell-more').addEventListener('click', function () { loadBell(true); });
    document.addEventListener('keydown', function (e) {
      if (e.key === 'Escape' && bell.open) { closeBell(); $('bell-button').focus(); }
    });
    document.addEventListener('click', function (e) {
      if (bell.open && !$('bell').contains(e.target)) closeBell();
    });
    $('org-switcher').addEventListener('change', onOrgChange);
    $('lang-switch').addEventListener('click', onLangClick);
    $('menu-toggle').addEventListener('click', function () {
      openMenu(!$('shell').classList.contains('menu-open'));
    });
    $('menu-backdrop').addEventListener('click', closeMenu);
    $('approval-approve').addEventListener('click', function () { onApprovalAction('approve'); });
    $('approval-reject').addEventListener('click', function () { onApprovalAction('reject'); });
    document.addEventListener('keydown', function (ev) {
      if (ev.key === 'Escape') closeMenu();
    });
    window.addEventListener('hashchange', route);
    window.addEventListener('popstate', route);
    window.addEventListener('message', onBridgeMessage);
    $('plugin-frame').addEventListener('load', onFrameLoad);
    setLang(pickLang()).then(checkSession);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
