// Times the web console's fleet page in real headless Chromium (Debian's, through playwright-core from
// Tests/Clients): sign in once, then for each query open #/fleet?q=… and measure until the table of results is drawn
// (the page's SearchIndex call and its rendering), and the Next page likewise. Bounded by --runs per query.
//
//   (cd Tests/Clients && npm ci)   # once: playwright-core
//   node bench/console-fleet.js --base http://127.0.0.1:8180 --key KEY [--runs 20] [--rack 7] [--chromium /usr/bin/chromium]
'use strict';

const path = require('path');
const { chromium } = require(path.join(__dirname, '..', 'Tests', 'Clients', 'node_modules', 'playwright-core'));

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.base || !args.key) {
  console.error('usage: node bench/console-fleet.js --base http://127.0.0.1:8180 --key KEY [--runs 20] [--rack 7]');
  process.exit(2);
}
const runs = Number(args.runs ?? 20);
const queries = [
  ['every thing (the default)', 'thingName:*'],
  ['by attribute (a rack: 1,000 things)', `attributes.rack:${args.rack ?? 7}`],
  ['by shadow (50,000 things)', 'shadow.reported.on:true'],
  ['one thing by serial', 'attributes.serial:SN-4242'],
];

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

(async () => {
  const browser = await chromium.launch({ executablePath: args.chromium ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(30000);
    await page.goto(`${args.base}/`);
    await page.fill('#api-key', args.key);
    await page.click('#sign-in button[type=submit]');
    await page.locator('#things').waitFor();
    for (const [label, query] of queries) {
      const open = [];
      const next = [];
      for (let i = 0; i < runs; i++) {
        await page.evaluate(() => { location.hash = '#/cluster'; });
        await page.locator('#nodes').waitFor();
        let started = Date.now();
        await page.evaluate((q) => { location.hash = `#/fleet?q=${encodeURIComponent(q)}`; }, query);
        await page.locator('#things tbody tr').first().waitFor();
        open.push(Date.now() - started);
        if (!(await page.locator('#next').isDisabled())) {
          started = Date.now();
          await page.click('#next');
          await page.locator('#results .pager span', { hasText: 'page 2' }).waitFor();
          next.push(Date.now() - started);
        }
      }
      const report = (what, times) => {
        if (!times.length) return '';
        const sorted = [...times].sort((a, b) => a - b);
        return `${what} p50 ${percentile(sorted, 50)} ms, p95 ${percentile(sorted, 95)} ms, max ${sorted[sorted.length - 1]} ms`;
      };
      const rows = await page.locator('#things tbody tr').count();
      console.log(`${label} [${query}]: ${report('open', open)}; ${report('next page', next) || 'one page'} (${rows} rows on the last page shown)`);
    }
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
