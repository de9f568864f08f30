// `make kiosk`: bundles src/kiosk.js with livekit-client into ../static/kiosk.js, which is
// committed, so running the kiosk needs no npm. The first line names the livekit-client version
// inside (tests/test_kiosk.py checks it against package-lock.json).
import { readFileSync } from "node:fs";
import { build } from "esbuild";

const { version } = JSON.parse(readFileSync(new URL("node_modules/livekit-client/package.json", import.meta.url)));

await build({
  entryPoints: ["src/kiosk.js"],
  outfile: "../static/kiosk.js",
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  legalComments: "eof",
  // plain modules the kiosk serves as they are: the page's view, and the dashboard's waterfall
  external: ["/static/view.js", "/dashboard/*"],
  banner: { js: `// livekit-client ${version} (Apache-2.0) bundled by \`make kiosk\` from agent/kiosk/web; do not edit` },
  logLevel: "info",
});
