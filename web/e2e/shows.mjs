// Opens the page of a running server (SCORCH_URL) on its default range, the
// last hour, in headless Chromium and checks that each named frame is drawn,
// with no console error and no request leaving the server:
//
//   SCORCH_URL=http://127.0.0.1:4040 node web/e2e/shows.mjs inner outer
//
// Used by end-to-end tests whose data reaches the store some other way than
// the fixture (e.g. pushed by an agent).

import { launch, target, newPage, open, drawn } from './lib.mjs';

const frames = process.argv.slice(2);
const base = await target();
if (!base.external || frames.length === 0) {
  console.error('usage: SCORCH_URL=URL node shows.mjs FRAME [FRAME...]');
  process.exit(2);
}
const browser = await launch();
try {
  const { page, guard } = await newPage(browser, base);
  await open(page, base);
  const names = new Set((await drawn(page)).map((r) => r.name));
  const missing = frames.filter((f) => !names.has(f));
  const problems = [
    ...missing.map((f) => `frame "${f}" is not drawn (drawn: ${[...names].slice(0, 40).join(', ')})`),
    ...guard.errors,
    ...guard.violations.map((u) => `request left the server: ${u}`),
  ];
  if (problems.length) {
    console.error(problems.join('\n'));
    process.exitCode = 1;
  } else {
    console.log(`drawn: ${frames.join(', ')}`);
  }
} finally {
  await browser.close();
}
