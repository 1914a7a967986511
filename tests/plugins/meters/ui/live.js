// The meters test page: shows the latest values and alerts of the plugin's
// devices as kit.live delivers them (no reload, no polling). The #probe
// button then tries to stream beyond its plugin through the bridge and
// reports in #probe-report what arrived.
import * as kit from '/ui/kit/kit.js';

function show(list, key, text) {
  var node = document.querySelector('#' + list + ' [data-key="' + key + '"]');
  if (!node) {
    node = kit.h('li', { 'data-key': key });
    document.getElementById(list).appendChild(node);
  }
  node.textContent = text;
}

kit.start({ plugin: 'meters' }).then(function () {
  kit.live({
    onLatest: function (l) { show('values', l.device + '/' + l.channel, l.device + '/' + l.channel + ' = ' + l.value); },
    onAlert: function (a) { show('alerts', a.rule + '/' + a.device, a.rule + ' ' + a.device + ' ' + a.detail.value); },
    onStatus: function (s) { document.getElementById('status').textContent = s; }
  });
});

// What a page could try: name another plugin in the bridge message (the
// portal streams its own plugin regardless), and ask the bridge for the
// kernel's stream as an API call.
document.getElementById('probe').addEventListener('click', function () {
  var nonce = new URLSearchParams(location.search).get('bridge');
  var report = { events: [], request: null };
  window.addEventListener('message', function (ev) {
    var d = ev.data;
    if (ev.source === window.parent && d && d.tianshan === 'bridge-live' && /^probe/.test(d.key || '')) {
      report.events.push({ key: d.key, type: d.type, device: d.data && d.data.device, value: d.data && d.data.value });
    }
  });
  ['probe-named', 'probe-all'].forEach(function (key, i) {
    var message = { tianshan: 'bridge', nonce: nonce, id: 900000 + i, op: 'live', key: key, plugin: 'meters2' };
    if (key === 'probe-named') message.devices = ['x1'];
    window.parent.postMessage(message, location.origin);
  });
  kit.api('GET', '/api/v1/telemetry/stream?plugin=meters2').then(function (res) {
    report.request = res.status;
  });
  var node = document.getElementById('probe-report');
  setInterval(function () { node.textContent = JSON.stringify(report); }, 200);
});
