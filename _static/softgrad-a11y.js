// softgrad book: small accessibility repairs of the theme's markup (book-infra owns this file).
// Jupyter Book loads every script in _static/ on every page. Checked by tests/test_browser.py (axe-core).
document.addEventListener("DOMContentLoaded", () => {
  // A control's accessible name must contain its visible text (WCAG 2.5.3): the search button
  // shows "Search Ctrl+K" but is named "Search"; a folded cell shows "Show code cell source" but
  // is named "Toggle hidden content". Where a control shows text, let that text be its name.
  for (const el of document.querySelectorAll("button[aria-label], summary[aria-label], a[aria-label]")) {
    const visible = el.innerText.replace(/\s+/g, " ").trim();
    const label = el.getAttribute("aria-label").trim();
    if (visible && !label.toLowerCase().includes(visible.toLowerCase())) el.removeAttribute("aria-label");
  }
  // The colour-mode button is named "Color mode"; its icons' own titles ("Light", "Dark", ...) are
  // decoration. Font Awesome turns the icons into <svg> with a <title> later, so watch the button.
  const quietIcons = (button) => {
    for (const icon of button.querySelectorAll("svg, i")) {
      if (icon.getAttribute("aria-hidden") !== "true") icon.setAttribute("aria-hidden", "true");
      if (icon.hasAttribute("aria-labelledby")) icon.removeAttribute("aria-labelledby");
      if (icon.hasAttribute("title")) icon.removeAttribute("title");
      for (const title of icon.querySelectorAll("title")) title.remove();
    }
  };
  for (const button of document.querySelectorAll(".theme-switch-button")) {
    quietIcons(button);
    new MutationObserver(() => quietIcons(button)).observe(button, { childList: true, subtree: true });
  }
  // Sphinx marks the bibliography's citation list role="list", but its entries are not list items.
  for (const el of document.querySelectorAll(".citation-list[role='list']")) el.removeAttribute("role");
});
