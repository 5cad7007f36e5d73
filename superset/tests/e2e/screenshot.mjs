// Logs in to Superset with a headless Chromium, opens every dashboard and saves a full-page
// screenshot of each, then checks that every chart rendered (canvas / svg / table / number, no
// error) and that the PNG is not blank. Prints a JSON report on stdout; exit 1 on any failure.
//
//   SUPERSET_ADMIN_PASSWORD=... node screenshot.mjs --url http://127.0.0.1:8088 --out DIR \
//       [--user admin] [--timeout 90]
//
// Needs Debian's chromium (apt install chromium; CHROMIUM_PATH to override /usr/bin/chromium) and
// `npm ci` in this directory (playwright-core only: Playwright's browser download is not used).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const baseUrl = arg('url', 'http://127.0.0.1:8088').replace(/\/$/, '');
const outDir = arg('out', 'artifacts/screenshots');
const user = arg('user', process.env.SUPERSET_ADMIN_USERNAME || 'admin');
const password = process.env.SUPERSET_ADMIN_PASSWORD;
const timeoutMs = Number(arg('timeout', '90')) * 1000;
if (!password) {
  console.error('screenshot.mjs: SUPERSET_ADMIN_PASSWORD is not set');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const report = { url: baseUrl, dashboards: [], ok: true };
try {
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  const page = await context.newPage();

  // 1. log in through the React login form
  await page.goto(`${baseUrl}/login/`, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
  await page.locator('[data-test=username-input]').fill(user, { timeout: timeoutMs });
  await page.locator('[data-test=password-input]').fill(password);
  await page.locator('[data-test=login-button]').click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: timeoutMs });

  // 2. the dashboards, through the API with the session cookie of the browser
  const resp = await page.request.get(`${baseUrl}/api/v1/dashboard/?q=(page_size:100)`);
  if (!resp.ok()) throw new Error(`dashboard list: HTTP ${resp.status()}`);
  const dashboards = (await resp.json()).result;
  if (dashboards.length === 0) throw new Error('no dashboards');

  const checker = await context.newPage(); // about:blank, no CSP: decodes the PNGs
  for (const d of dashboards) {
    const slug = d.slug || String(d.id);
    const started = Date.now();
    const entry = { id: d.id, slug, title: d.dashboard_title, charts: [], ok: true };
    await page.goto(`${baseUrl}/superset/dashboard/${slug}/`, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
    await page.locator('.dashboard-component-chart-holder').first().waitFor({ timeout: timeoutMs });
    // wait until every chart holder has finished loading: something drawn, or an error
    await page.waitForFunction(() => {
      const holders = [...document.querySelectorAll('.dashboard-component-chart-holder')];
      return holders.length > 0 && holders.every((h) => {
        if (h.querySelector('.loading, [aria-label="Loading"], [data-test="loading-indicator"]')) return false;
        return h.querySelector('canvas, svg, table, [role="alert"], .ant-alert') ||
          /\d/.test(h.querySelector('.chart-container, .slice_container')?.innerText || '');
      });
    }, null, { timeout: timeoutMs, polling: 500 });
    await page.waitForTimeout(1500); // echarts' entry animation
    entry.charts = await page.$$eval('.dashboard-component-chart-holder', (holders) => holders.map((h) => {
      const title = (h.querySelector('[data-test="editable-title"], .header-title, .editable-title')?.innerText || '').trim();
      const alert = h.querySelector('[role="alert"], .ant-alert-error');
      const body = h.querySelector('.chart-container, .slice_container');
      const drawn = !!h.querySelector('canvas, svg, table') || /\d/.test(body?.innerText || '');
      const rows = h.querySelectorAll('table tbody tr').length;
      return { title, drawn, rows, error: alert ? alert.innerText.slice(0, 300) : null };
    }));
    const file = path.join(outDir, `dashboard-${slug}.png`);
    await page.screenshot({ path: file, fullPage: true });
    entry.screenshot = path.resolve(file);
    entry.seconds = (Date.now() - started) / 1000;

    // non-blank: decode the PNG on a canvas and count distinct colours / non-background pixels
    const b64 = fs.readFileSync(file).toString('base64');
    entry.image = await checker.evaluate(async (data) => {
      const img = new Image();
      img.src = `data:image/png;base64,${data}`;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.width; c.height = img.height;
      const ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const px = ctx.getImageData(0, 0, c.width, c.height).data;
      const colours = new Set();
      let nonWhite = 0;
      for (let i = 0; i < px.length; i += 16) { // every 4th pixel
        colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
        if (px[i] < 240 || px[i + 1] < 240 || px[i + 2] < 240) nonWhite += 1;
      }
      return { width: c.width, height: c.height, distinctColours: colours.size,
        nonWhiteShare: nonWhite / (px.length / 16) };
    }, b64);
    entry.ok = entry.charts.length > 0 &&
      entry.charts.every((c) => c.drawn && !c.error) &&
      entry.image.distinctColours > 50 && entry.image.nonWhiteShare > 0.02;
    report.ok = report.ok && entry.ok;
    report.dashboards.push(entry);
  }
} catch (err) {
  report.ok = false;
  report.error = String(err && err.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report, null, 2));
process.exit(report.ok ? 0 : 1);
