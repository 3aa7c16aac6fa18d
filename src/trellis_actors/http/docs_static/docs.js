// Starts Swagger UI on /docs. The document comes from the web UI when a login session may
// read it (the session cookie is sent only under /ui, and the page never holds a token),
// else from /openapi.json (open on a server without tokens).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var sources = [root.dataset.sessionSpec, root.dataset.spec].filter(Boolean);

  function fetchSpec(url) {
    return fetch(url, {
      credentials: "same-origin",
      redirect: "manual", // a login redirect is a refusal, not a document
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) throw new Error(url + ": " + (response.status || "redirected"));
      return response.json();
    });
  }

  function refused() {
    var note = document.createElement("p");
    note.className = "docs-refused";
    note.textContent =
      "This server needs a token to read its API document. Log in to the web UI, then reload this page.";
    if (root.dataset.login) {
      var link = document.createElement("a");
      link.href = root.dataset.login;
      link.textContent = " Log in";
      note.appendChild(link);
    }
    root.appendChild(note);
  }

  function attempt(index) {
    if (index >= sources.length) return refused();
    fetchSpec(sources[index]).then(
      function (spec) {
        window.SwaggerUIBundle({ spec: spec, dom_id: "#swagger-ui", deepLinking: true });
      },
      function () {
        attempt(index + 1);
      }
    );
  }

  attempt(0);
})();
