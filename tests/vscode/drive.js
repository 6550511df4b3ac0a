// Drives a real VS Code (code-server) with Playwright through the steps of
// tests/vscode/test_vscode_e2e.py and prints one JSON object of what it saw.
// Usage: node drive.js <url> <mode: full|missing|python> <screenshot dir>
// At a checkpoint it prints {"checkpoint": name} and waits for one line on stdin: the test
// inspects processes and files there ("ok" goes on, anything else aborts the drive).
'use strict';
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const readline = require('node:readline');
const [url, mode, shots] = process.argv.slice(2);
const seen = { steps: [] };
const t0 = Date.now();
function step(name, extra) {
  seen.steps.push({ name, ms: Date.now() - t0, ...(extra || {}) });
}

const replies = [];
let waiting = null;
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (waiting) {
    const w = waiting;
    waiting = null;
    w(line);
  } else {
    replies.push(line);
  }
});

async function checkpoint(name) {
  process.stdout.write(JSON.stringify({ checkpoint: name }) + '\n');
  const reply = replies.length ? replies.shift() : await new Promise((resolve) => (waiting = resolve));
  if (reply.trim() !== 'ok') throw new Error(`checkpoint ${name}: ${reply}`);
  step(name);
}

async function palette(page, text) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill('>' + text);
  // The command whose label is exactly `text` (Enter would take the first fuzzy match).
  const exact = new RegExp('^' + text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$');
  const row = page.locator('.quick-input-widget .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: exact }) }).first();
  await row.click();
}

async function gotoLine(page, n) {
  await page.keyboard.press('Control+G');
  await page.locator('.quick-input-widget input').waitFor({ state: 'visible' });
  await page.keyboard.type(String(n));
  await page.keyboard.press('Enter');
}

async function lineText(page, n) {
  // The current line of the cursor is shown in the status bar; read the model through the DOM.
  return page.evaluate((i) => {
    const lines = [...document.querySelectorAll('.editor-instance .view-lines .view-line')];
    const sorted = lines.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
    return sorted[i - 1] ? sorted[i - 1].textContent.replace(/\u00a0/g, ' ') : null;
  }, n);
}

async function openFile(page, name, text) {
  await page.keyboard.press('Control+P');
  await page.locator('.quick-input-widget input').waitFor({ state: 'visible' });
  await page.keyboard.type(name);
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.editor-instance .view-line', { hasText: text }).waitFor();
}

// The Problems panel's rows once one of them has `source` (a line of its own) and `text`.
async function problemRows(page, source, text) {
  await page.waitForFunction(([src, txt]) => [...document.querySelectorAll('.markers-panel .monaco-list-row')]
    .some((r) => r.innerText.split('\n').includes(src) && r.innerText.includes(txt)), [source, text], { timeout: 60000 });
  return page.locator('.markers-panel .monaco-list-row').allInnerTexts();
}

async function toast(page, text, timeout) {
  const t = page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
  await t.waitFor({ timeout });
  return (await t.innerText()).replace(/\s+/g, ' ');
}

async function main() {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  try {
    await page.goto(url);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60000 });
    step('workbench');
    if (mode === 'missing') {
      const text = await toast(page, 'floe-lsp', 60000);
      const buttons = await page.locator('.notifications-toasts .notification-toast .monaco-button').allInnerTexts();
      seen.missing = { text, buttons };
      step('notification');
      return;
    }
    if (mode === 'python') {
      await python(page);
      return;
    }
    await openFile(page, 'floe.yaml', 'catalog: default');
    step('opened');
    // The server started from the workspace .venv: its lenses show up.
    await page.locator('.codelens-decoration', { hasText: 'Compile (dev)' }).first().waitFor({ timeout: 60000 });
    seen.lenses = (await page.locator('.codelens-decoration').allInnerTexts()).join(' ');
    step('lenses');
    // Completion after `catalog: `.
    await page.locator('.editor-instance .view-lines').click();
    await gotoLine(page, 7);
    await page.keyboard.press('End');
    await page.keyboard.press('Control+Shift+ArrowLeft');
    await page.keyboard.press('Backspace');
    seen.line7Blank = await lineText(page, 7);
    await page.keyboard.press('Control+Space');
    const suggest = page.locator('.suggest-widget.visible .monaco-list-row');
    await suggest.first().waitFor({ timeout: 20000 });
    seen.completion = await page.locator('.suggest-widget.visible .monaco-list-row').allInnerTexts();
    step('completion');
    await page.keyboard.press('Escape');
    // A wrong profile name: squiggle and a Problems entry FLOE010.
    const typed = Date.now();
    await page.keyboard.type('defualt');
    await page.locator('.squiggly-error').first().waitFor({ timeout: 20000 });
    seen.squiggleMs = Date.now() - typed;
    step('squiggle');
    await page.keyboard.press('Control+Shift+M');
    const problem = page.locator('.markers-panel .monaco-list-row', { hasText: "profile 'defualt'" }).filter({ hasText: 'FLOE010' }).first();
    await problem.waitFor({ timeout: 20000 });
    seen.problems = await page.locator('.markers-panel .monaco-list-row').allInnerTexts();
    await page.screenshot({ path: `${shots}/vscode-diagnostic.png` });
    step('problems');
    // Hover on `storage: default` shows each environment's profile.
    await page.locator('.editor-instance .view-lines').click();
    await gotoLine(page, 6);
    await page.keyboard.press('End');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('Control+K');
    await page.keyboard.press('Control+I');
    const hover = page.locator('.monaco-hover:not(.hidden)').first();
    await hover.waitFor({ timeout: 20000 });
    await page.waitForTimeout(300);
    seen.hover = await hover.innerText();
    step('hover');
    await page.keyboard.press('Escape');
    // Quick fix on the typo.
    await gotoLine(page, 7);
    await page.keyboard.press('End');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('Control+.');
    const actions = page.locator('.action-widget .monaco-list-row');
    await actions.first().waitFor({ timeout: 20000 });
    seen.quickFixes = await actions.allInnerTexts();
    for (let i = 0; i < 8; i++) {
      const focused = await page.locator('.action-widget .monaco-list-row.action.focused').first().innerText().catch(() => '');
      if (focused.includes("'default'")) break;
      await page.keyboard.press('ArrowDown');
    }
    await page.keyboard.press('Enter');
    await page.locator('.editor-instance .view-line', { hasText: 'catalog: default' }).waitFor();
    await page.keyboard.press('Control+S');
    await page.waitForFunction(() => document.querySelectorAll('.editor-instance .squiggly-error').length === 0, null, { timeout: 20000 });
    seen.line7Fixed = await lineText(page, 7);
    step('quickfix');
    // Compile lens.
    await page.locator('.codelens-decoration a', { hasText: 'Compile (dev)' }).first().click();
    seen.compile = await toast(page, 'floe compile (dev) succeeded', 120000);
    step('compile');
    // Status bar: switch environment to prod, then back to dev.
    const item = page.locator('.statusbar-item', { hasText: 'floe:' }).first();
    seen.statusBefore = await item.innerText();
    await item.click();
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'prod' }).first().click();
    await page.locator('.statusbar-item', { hasText: 'floe: prod' }).first().waitFor({ timeout: 20000 });
    await page.waitForFunction(() => {
      const t = [...document.querySelectorAll('.codelens-decoration')].map((e) => e.textContent).join(' ');
      return t.includes('Run (prod)') && !t.includes('Run (dev)');
    }, null, { timeout: 20000 }).catch(() => undefined);
    seen.lensesProd = (await page.locator('.codelens-decoration').allInnerTexts()).join(' ');
    await palette(page, 'Floe: Select Environment');
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'dev' }).first().click();
    await page.locator('.statusbar-item', { hasText: 'floe: dev' }).first().waitFor({ timeout: 20000 });
    seen.statusAfter = await page.locator('.statusbar-item', { hasText: 'floe:' }).first().innerText();
    step('environment');
    // Run, then Cancel in its progress notification: at 'hold-run' the test adds a model that
    // sleeps, at 'run-started' it sees the run's dbt process, at 'run-cancelled' it checks that
    // none is left and nothing reached the catalog.
    await checkpoint('hold-run');
    await page.locator('.editor-instance .view-lines').click();
    await palette(page, 'Floe: Run');
    const running = page.locator('.notifications-toasts .notification-toast', { hasText: 'floe run (dev)' })
      .filter({ has: page.locator('.monaco-button', { hasText: 'Cancel' }) }).first();
    await running.waitFor({ timeout: 30000 });
    await checkpoint('run-started');
    await running.locator('.monaco-button', { hasText: 'Cancel' }).click();
    seen.cancelled = await toast(page, 'floe run (dev) cancelled', 60000);
    await running.waitFor({ state: 'detached', timeout: 30000 });
    seen.progressAfterCancel = await page.locator('.notifications-toasts .notification-toast .monaco-progress-container.active').count();
    await checkpoint('run-cancelled');
    await palette(page, 'Notifications: Clear All Notifications');
    await page.locator('.notifications-toasts .notification-toast').first().waitFor({ state: 'detached', timeout: 10000 }).catch(() => undefined);
    // Run from the palette again: a cancellable progress notification, then success.
    await page.locator('.editor-instance .view-lines').click();
    await palette(page, 'Floe: Run');
    const progress = page.locator('.notifications-toasts .notification-toast', { hasText: 'floe run (dev)' }).first();
    await progress.waitFor({ timeout: 30000 });
    seen.progressCancellable = (await page.locator('.notifications-toasts .monaco-button', { hasText: 'Cancel' }).count()) > 0;
    seen.run = await toast(page, /floe run \(dev\) (succeeded|failed)/, 600000);
    step('run');
    // Open Lineage: a webview with the models.
    await palette(page, 'Floe: Open Lineage');
    let frame;
    for (let i = 0; i < 1200 && !frame; i++) {
      for (const f of page.frames()) {
        if (await f.locator('[data-name]').count().catch(() => 0)) {
          frame = f;
          break;
        }
      }
      if (!frame) await page.waitForTimeout(100);
    }
    if (!frame) throw new Error('no lineage webview');
    await page.waitForTimeout(500);
    seen.lineageNames = await frame.locator('[data-name]').evaluateAll((els) => els.map((e) => e.getAttribute('data-name')));
    seen.webviewTabs = await page.locator('.tab', { hasText: 'lineage' }).allInnerTexts();
    await page.keyboard.press('Control+J'); // hide the panel, then give the webview the window
    await page.keyboard.press('Control+B'); // and the side bar
    await page.locator('.tab', { hasText: 'Floe lineage' }).first().click();
    await palette(page, 'View: Close Editors in Other Groups').catch(() => page.keyboard.press('Escape'));
    await page.waitForTimeout(800);
    await page.screenshot({ path: `${shots}/vscode-lineage.png` });
    step('lineage');
    // A model's node opens its .sql file: click the node, then "Open orders.sql" in its details.
    await frame.locator('.node[data-name="orders"]').first().click();
    await frame.locator('#open-sql').click();
    await page.locator('.tab.active', { hasText: 'orders.sql' }).first().waitFor({ timeout: 20000 });
    // The breadcrumbs name the file by its path in the workspace.
    seen.openedPath = await page.locator('.editor-group-container.active .breadcrumbs-control .monaco-breadcrumb-item')
      .allInnerTexts();
    seen.openedText = await page.locator('.editor-group-container.active .editor-instance .view-lines').first().innerText();
    step('open-sql');
  } catch (err) {
    seen.error = String(err && err.stack || err);
    await page.screenshot({ path: `${shots}/failure-${mode}.png` }).catch(() => undefined);
  } finally {
    await browser.close();
    // stdin (the checkpoint replies) would keep node alive.
    process.stdout.write(JSON.stringify(seen) + '\n', () => process.exit(0));
  }
}

// The Python extension's interpreter (the stand-in in tests/vscode/python-standin), a tasks.json
// task filling the Problems panel, and a restart on an interpreter change.
async function python(page) {
  await openFile(page, 'floe.yaml', 'catalog: defualt');
  await page.locator('.squiggly-error').first().waitFor({ timeout: 60000 });
  step('squiggle');
  await checkpoint('server-started');
  // Tasks: Run Task → the tasks.json task → the problem matcher's entries.
  await palette(page, 'Tasks: Run Task');
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'floe validate' }).first().click();
  await page.getByRole('tab', { name: /^Problems/ }).first().click(); // the terminal has the focus
  seen.taskProblems = await problemRows(page, 'floe-runtime', 'FLOE010');
  step('task');
  // Python: Select Interpreter → another interpreter: the server restarts with it.
  await page.locator('.editor-instance .view-lines').first().click();
  await palette(page, 'Python: Select Interpreter');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(process.env.FLOE_OTHER_PYTHON);
  await page.keyboard.press('Enter');
  await checkpoint('interpreter-changed');
  // The new server publishes the typo again.
  await page.getByRole('tab', { name: /^Problems/ }).first().click();
  seen.problemsAfterRestart = await problemRows(page, 'floe', 'FLOE010');
  step('restarted');
}

main();
