// The welcome plugin's page: the smallest page on the UI kit. No build step;
// the kit (served by the kernel) talks to the API through the portal.
import * as kit from '/ui/kit/kit.js';

function show(id, text) {
  var node = document.getElementById(id);
  node.textContent = text;
  node.hidden = false;
}

function render(data) {
  show('greeting', kit.tr('greeting', { name: data.user || kit.tr('guest') }));
  show('subtitle', kit.tr('subtitle'));
  document.getElementById('org').textContent = data.org || '—';
  document.getElementById('plugin').textContent = data.plugin || 'welcome';
  document.getElementById('version').textContent = data.version || '—';
  document.getElementById('details').hidden = false;
}

function load() {
  document.querySelectorAll('[data-lang]').forEach(function (b) {
    b.setAttribute('aria-pressed', String(b.getAttribute('data-lang') === kit.lang()));
  });
  return kit.api('GET', '').then(function (res) {
    if (kit.ok(res) && res.body) return render(res.body);
    show('greeting', kit.tr('title'));
    show('error', kit.errorText(res));
  });
}

document.querySelectorAll('[data-lang]').forEach(function (b) {
  b.addEventListener('click', function () {
    kit.setLang(b.getAttribute('data-lang')).then(load);
  });
});

kit.start({ plugin: 'welcome', texts: true }).then(load);
