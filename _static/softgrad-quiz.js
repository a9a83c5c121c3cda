// softgrad book: draw the self-test quizzes with jupyterquiz (its JavaScript is _static/jupyterquiz.js,
// from the pinned package; chapters/_ext/softgrad_quiz.py explains why). Each quiz's questions are a
// <script type="application/json" class="sg-quiz" data-for="ID"> next to jupyterquiz's container #ID.
// Jupyter Book loads every script in _static/ on every page. Tested by tests/test_browser.py.
(() => {
  // The text of an element with each typeset formula replaced by its TeX source: a name for a control
  // whose visible text is all math (MathJax's CHTML glyphs are not text that axe-core or a reader sees).
  const textWithTex = (el) => {
    const doc = window.MathJax && MathJax.startup && MathJax.startup.document;
    const items = doc && doc.getMathItemsWithin ? doc.getMathItemsWithin(el) : [];
    const tex = new Map(items.map((item) => [item.typesetRoot, item.math]));
    const walk = (node) => {
      if (node.nodeType === Node.TEXT_NODE) return node.textContent;
      if (tex.has(node)) return " " + tex.get(node) + " ";
      return Array.from(node.childNodes).map(walk).join("");
    };
    return walk(el).replace(/\s+/g, " ").trim();
  };
  // jupyterquiz's controls, named for assistive technology (WCAG 4.1.2): each hidden radio button by its
  // answer, and the numeric input by the label jupyterquiz puts before it.
  const nameControls = (box) => {
    for (const radio of box.querySelectorAll("label.MCButton input[type=radio]")) {
      radio.setAttribute("aria-label", textWithTex(radio.closest("label")));
    }
    for (const label of box.querySelectorAll("label.InpLabel")) {
      const input = label.nextElementSibling;
      if (input && input.id) label.htmlFor = input.id;
    }
  };
  const render = () => {
    if (typeof show_questions !== "function") return;  // jupyterquiz.js did not load
    for (const data of document.querySelectorAll('script.sg-quiz[type="application/json"]')) {
      const box = document.getElementById(data.dataset.for);
      if (!box || box.dataset.sgRendered) continue;
      box.dataset.sgRendered = "true";
      show_questions(JSON.parse(data.textContent), box);  // builds the questions and typesets them
      nameControls(box);
    }
  };
  // Deferred scripts (MathJax) have run by DOMContentLoaded; wait until MathJax has typeset the page,
  // so that jupyterquiz finds MathJax.typeset and typesets the questions with the book's own copy.
  document.addEventListener("DOMContentLoaded", () => {
    const mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) mj.startup.promise.then(render);
    else render();
  });
})();
