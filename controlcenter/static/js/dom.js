// Building the control room's DOM: an element with attributes (``class``, ``testid`` for
// ``data-testid``, any other attribute as given) and children.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "testid") node.setAttribute("data-testid", value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}
