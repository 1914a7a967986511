// The welcome plugin's page: plain JavaScript, no build step, no external URLs.
(function () {
  'use strict';

  var LANGS = ['zh-CN', 'en'];
  var DEFAULT_LANG = 'zh-CN';
  var STORAGE_KEY = 'tianshan.lang';
  var API = '/api/v1/p/welcome/';

  function pickLang() {
    var fromQuery = new URLSearchParams(location.search).get('lang');
    if (fromQuery && LANGS.indexOf(fromQuery) >= 0) {
      try { localStorage.setItem(STORAGE_KEY, fromQuery); } catch (e) { /* storage disabled */ }
      return fromQuery;
    }
    var stored = null;
    try { stored = localStorage.getItem(STORAGE_KEY); } catch (e) { /* storage disabled */ }
    return stored && LANGS.indexOf(stored) >= 0 ? stored : DEFAULT_LANG;
  }

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) {
      return values[key] == null ? '' : String(values[key]);
    });
  }

  function show(id, text) {
    var el = document.getElementById(id);
    el.textContent = text;
    el.hidden = false;
  }

  function loadMessages(lang) {
    return fetch('i18n/' + lang + '.json', { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error('i18n ' + r.status);
      return r.json();
    });
  }

  function applyStatic(t, lang) {
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-i18n]').forEach(function (el) {
      var key = el.getAttribute('data-i18n');
      if (t[key]) el.textContent = t[key];
    });
    document.querySelectorAll('[data-lang]').forEach(function (a) {
      a.setAttribute('aria-current', String(a.getAttribute('data-lang') === lang));
    });
  }

  function render(t, data) {
    var name = data.user || t.guest;
    show('greeting', format(t.greeting, { name: name }));
    show('subtitle', t.subtitle);
    document.getElementById('org').textContent = data.org || '—';
    document.getElementById('plugin').textContent = data.plugin || 'welcome';
    document.getElementById('version').textContent = data.version || '—';
    document.getElementById('details').hidden = false;
  }

  function renderError(t, status, body) {
    show('greeting', t.title);
    var message = status === 401 ? t.signIn
      : status === 403 ? t.forbidden
      : format(t.failed, { status: status || '—' });
    if (body && body.error && body.error.message) message += ' (' + body.error.message + ')';
    show('error', message);
  }

  var lang = pickLang();
  loadMessages(lang)
    .catch(function () { return lang === DEFAULT_LANG ? {} : loadMessages(DEFAULT_LANG); })
    .then(function (t) {
      applyStatic(t, lang);
      return fetch(API, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (r) {
          return r.json().catch(function () { return null; }).then(function (body) {
            if (r.ok && body) render(t, body);
            else renderError(t, r.status, body);
          });
        })
        .catch(function () { renderError(t, 0, null); });
    });
})();
