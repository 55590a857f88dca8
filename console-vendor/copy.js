// Copy the files the console serves from node_modules to api/console/static/vendor (run by `npm run vendor`).
// One list of files: scripts/console_vendor.sh and the Dockerfile's console stage both run this.
const fs = require("fs");
const path = require("path");

const FILES = [
  ["uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
  ["uplot/dist/uPlot.min.css", "uPlot.min.css"],
  ["uplot/LICENSE", "uPlot.LICENSE.txt"],
];

const out = path.join(__dirname, "..", "api", "console", "static", "vendor");
fs.mkdirSync(out, { recursive: true });
for (const [from, to] of FILES) {
  fs.copyFileSync(path.join(__dirname, "node_modules", from), path.join(out, to));
}
