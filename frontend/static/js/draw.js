// Boxes as SVG over an <img>. Boxes are xyxy in original-image pixels; the SVG's viewBox is
// the image's pixel grid and its preserveAspectRatio matches the <img>'s object-fit: contain,
// so there is no coordinate maths here.

import { colorOf, state, visible } from "./state.js";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

// Black or white text, whichever reads better on the class colour (as the server draws it).
function textColour(hex) {
  const n = parseInt(hex.slice(1), 16);
  const luminance = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  return luminance > 150 ? "#000" : "#fff";
}

export function drawBoxes(svg, item, labelPx, highlight, labels = true) {
  svg.replaceChildren();
  const size = item.detail && item.detail.image;
  if (!size) return;
  svg.setAttribute("viewBox", `0 0 ${size.width} ${size.height}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const scale = Math.min(svg.clientWidth / size.width, svg.clientHeight / size.height) || 1;
  const fontSize = labelPx / scale;
  for (const d of visible(item)) {
    const [x0, y0, x1, y1] = d.box;
    const color = colorOf(d.label);
    const index = item.detail.detections.indexOf(d);
    const group = svgEl("g", { class: "det", "data-index": index });
    if (index === highlight) group.classList.add("highlight");
    group.append(svgEl("rect", {
      class: "box", x: x0, y: y0, width: x1 - x0, height: y1 - y0, stroke: color,
      "data-label": d.label, "data-score": d.score, "vector-effect": "non-scaling-stroke",
    }));
    if (state.showLabels && labels) {
      const text = `${d.label} ${d.score.toFixed(2)}`;
      const width = text.length * fontSize * 0.62 + fontSize * 0.5;
      const height = fontSize * 1.3;
      const top = y0 - height >= 0 ? y0 - height : y0;  // above the box unless at the edge
      const left = Math.max(0, Math.min(x0, size.width - width));  // inside the image
      const label = svgEl("text", { class: "label", x: left + fontSize * 0.25,
                                    y: top + fontSize * 1.0, "font-size": fontSize,
                                    fill: textColour(color) });
      label.textContent = text;
      group.append(svgEl("rect", { class: "label-bg", x: left, y: top, width, height,
                                   fill: color }), label);
    }
    svg.append(group);
  }
}

export function countsText(shown, total) {
  if (!total) return "Nothing found";
  const byLabel = new Map();
  for (const d of shown) byLabel.set(d.label, (byLabel.get(d.label) || 0) + 1);
  const parts = [...byLabel].map(([label, n]) => `${n} ${label}`);
  const head = shown.length === total ? `${total} found` : `${shown.length} of ${total} shown`;
  return parts.length ? `${head}: ${parts.join(", ")}` : head;
}
