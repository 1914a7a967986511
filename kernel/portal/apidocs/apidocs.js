// Renders /api/v1/openapi.json as a browsable list: one section per tag,
// one expandable entry per operation. No framework, nothing from a CDN.
(function () {
  "use strict";
  var TEXT = {
    "zh-CN": {
      title: "天山平台 API 文档",
      filter: "筛选路径或标签",
      intro: "本页由 /api/v1/openapi.json 生成（OpenAPI 3.1），包含内核 API 以及提供了 ui/openapi.json 的插件接口。",
      loading: "正在加载…",
      failed: "无法加载 API 文档：",
      parameters: "路径参数",
      auth: "凭据",
      anonymous: "无需登录",
      signedIn: "需要登录（Bearer 令牌或会话 Cookie）",
      errors: "错误均为统一格式：",
      other: "English"
    },
    en: {
      title: "Tianshan platform API",
      filter: "Filter by path or tag",
      intro: "Generated from /api/v1/openapi.json (OpenAPI 3.1): the kernel API and the APIs of plugins that ship ui/openapi.json.",
      loading: "Loading…",
      failed: "Could not load the API document: ",
      parameters: "Path parameters",
      auth: "Credentials",
      anonymous: "none needed",
      signedIn: "sign-in needed (bearer token or session cookie)",
      errors: "Errors share one shape: ",
      other: "中文"
    }
  };
  var lang = (localStorage.getItem("tianshan.lang") || navigator.language || "zh-CN").indexOf("zh") === 0 ? "zh-CN" : "en";
  var spec = null;

  function t(key) { return TEXT[lang][key]; }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  function translate() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach(function (n) { n.textContent = t(n.getAttribute("data-i18n")); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (n) { n.placeholder = t(n.getAttribute("data-i18n-placeholder")); });
    document.getElementById("lang").textContent = t("other");
    document.title = t("title");
  }

  function render() {
    var root = document.getElementById("doc");
    root.textContent = "";
    if (!spec) return;
    var needle = document.getElementById("filter").value.trim().toLowerCase();
    var byTag = {};
    Object.keys(spec.paths || {}).sort().forEach(function (path) {
      var item = spec.paths[path];
      Object.keys(item).forEach(function (method) {
        var op = item[method];
        if (typeof op !== "object" || !op.responses) return;
        var tag = (op.tags && op.tags[0]) || "other";
        if (needle && (path + " " + tag + " " + method).toLowerCase().indexOf(needle) < 0) return;
        (byTag[tag] = byTag[tag] || []).push({ path: path, method: method, op: op });
      });
    });
    Object.keys(byTag).sort().forEach(function (tag) {
      var section = el("section", { "class": "tag" }, [el("h2", { text: tag })]);
      byTag[tag].forEach(function (entry) {
        var op = entry.op;
        var params = (op.parameters || []).map(function (p) { return p.name; });
        var anonymous = (op.security || []).some(function (s) { return Object.keys(s).length === 0; });
        var body = el("div", { "class": "body" }, [
          el("p", { text: t("auth") + ": " + (anonymous ? t("anonymous") : t("signedIn")) })
        ]);
        if (params.length) body.appendChild(el("p", { text: t("parameters") + ": " + params.join(", ") }));
        if (op.description) body.appendChild(el("p", { text: op.description }));
        body.appendChild(el("pre", { text: JSON.stringify(op, null, 2) }));
        section.appendChild(el("details", { "class": "op" }, [
          el("summary", {}, [
            el("span", { "class": "method " + entry.method, text: entry.method.toUpperCase() }),
            el("code", { "class": "path", text: entry.path }),
            el("span", { "class": "summary", text: op.summary || "" })
          ]),
          body
        ]));
      });
      root.appendChild(section);
    });
    root.appendChild(el("p", { "class": "muted", text: t("errors") + '{"error":{"code","message","field"}}' }));
  }

  document.getElementById("lang").addEventListener("click", function () {
    lang = lang === "en" ? "zh-CN" : "en";
    localStorage.setItem("tianshan.lang", lang);
    translate();
    render();
  });
  document.getElementById("filter").addEventListener("input", render);
  translate();
  fetch("/api/v1/openapi.json", { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function (doc) { spec = doc; render(); })
    .catch(function (e) {
      var root = document.getElementById("doc");
      root.textContent = "";
      root.appendChild(el("p", { text: t("failed") + e.message }));
    });
})();
