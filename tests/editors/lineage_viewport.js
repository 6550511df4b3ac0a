// Renders a lineage page in headless Chromium at 1280x800 and prints, as JSON, where each node
// is, the viewport, and what clicking a node and its failed-test badge shows.
'use strict';
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) errors.push('network: ' + r.url()); });
  await page.goto(process.argv[2]);
  await page.waitForTimeout(300);
  const nodes = () => page.$$eval('.node', (els) => els.map((e) => {
    const r = e.querySelector('rect.box').getBoundingClientRect();
    return { name: e.dataset.name, cls: e.getAttribute('class'), x: r.left, y: r.top, right: r.right, bottom: r.bottom,
      width: r.width, height: r.height, failed: Number(e.dataset.testsFailed) };
  }));
  const out = { nodes: await nodes(), errors };
  const failing = out.nodes.find((n) => n.failed > 0);
  if (failing) {
    await page.locator(`.node[data-name="${failing.name}"] .badge.fail`).click();
    out.failedDetails = await page.locator('#details').innerText();
    out.dimmed = await page.$$eval('.node.dim', (els) => els.map((e) => e.dataset.name));
    await page.locator('#focus-one').click();
    await page.waitForTimeout(100);
    out.focused = await page.$$eval('.node:not(.hidden)', (els) => els.map((e) => e.dataset.name));
  }
  await page.screenshot({ path: process.argv[3] });
  await browser.close();
  process.stdout.write(JSON.stringify(out));
})();
