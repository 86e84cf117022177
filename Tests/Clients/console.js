// The web console in real headless Chromium (Debian's, driven by playwright-core): a person signs in, finds a device,
// changes its desired state and watches the reported state the device sends back, watches a job finish and reads
// the rules and the audit log. Each step is a named check; screenshots of the main pages go to args.screenshots.
//
//   node console.js '{"base":"http://127.0.0.1:8080","key":"…","thing":"lamp-1","desired":"green-1","job":"job-1",
//                     "rule":"r1","screenshots":"/path","chromium":"/usr/bin/chromium"}'
'use strict';

const { chromium } = require('playwright-core');
const path = require('path');

const args = JSON.parse(process.argv[2]);
const checks = {};
const errors = [];
const consoleErrors = [];

async function step(name, action) {
  try {
    await action();
    checks[name] = true;
  } catch (e) {
    checks[name] = false;
    errors.push(`${name}: ${e.message.split('\n')[0]}`);
  }
}

async function shot(page, name) {
  if (args.screenshots) {
    await page.screenshot({ path: path.join(args.screenshots, `${name}.png`), fullPage: true });
  }
}

(async () => {
  const browser = await chromium.launch({
    executablePath: args.chromium || process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(15000);
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[014]/.test(m.text())) consoleErrors.push(m.text()); });

    await step('signInRefusesABadKey', async () => {
      await page.goto(`${args.base}/`);
      await page.fill('#api-key', 'not-a-key-0123456789');
      await page.click('#sign-in button[type=submit]');
      await page.locator('#error', { hasText: 'Sign-in refused' }).waitFor();
      await shot(page, 'sign-in');
    });

    await step('signsIn', async () => {
      await page.fill('#api-key', args.key);
      await page.click('#sign-in button[type=submit]');
      await page.locator('#things').waitFor();
      if (page.url().includes(args.key)) throw new Error('the key is in the URL');
      const stored = await page.evaluate(() => sessionStorage.getItem('orleansiot.apiKey'));
      if (stored !== args.key) throw new Error('the key is not in session storage');
      if (await page.locator('#error').isVisible()) throw new Error(await page.locator('#error').textContent());
    });

    await step('aBadQueryShowsTheError', async () => {
      await page.fill('#query', 'thingName:*bad');
      await page.click('#search button');
      await page.locator('#error', { hasText: 'InvalidQueryException' }).waitFor();
    });

    await step('findsTheDevice', async () => {
      await page.fill('#query', `thingName:${args.thing}`);
      await page.click('#search button');
      await page.locator('#things a.thing-link', { hasText: args.thing }).waitFor();
      const rows = await page.locator('#things tbody tr').count();
      if (rows !== 1) throw new Error(`${rows} rows for one thing`);
      await page.fill('#query', `attributes.room:${args.room}`);
      await page.click('#search button');
      await page.locator('#things a.thing-link', { hasText: args.thing }).waitFor();
      await shot(page, 'fleet');
    });

    await step('devicePageShowsItsShadow', async () => {
      await page.click(`#things a.thing-link:text-is("${args.thing}")`);
      await page.locator('#reported', { hasText: '"on": true' }).waitFor();
      const attributes = await page.locator('#attributes').textContent();
      if (!attributes.includes(`room=${args.room}`)) throw new Error(`attributes: ${attributes}`);
      await page.locator('#connectivity', { hasText: 'connected since' }).waitFor();
    });

    await step('liveTelemetryIsCharted', async () => {
      // The lamp publishes dt/{thing}/telemetry; the page watches +/{thing}/# and draws its numbers as they come.
      await page.locator('#telemetry-status', { hasText: 'watching' }).waitFor();
      await page.locator('#telemetry-messages tr', { hasText: `dt/${args.thing}/telemetry` }).first().waitFor({ timeout: 20000 });
      const line = page.locator('#telemetry-chart polyline[data-series="temperature"]');
      await line.waitFor({ state: 'attached' });
      const before = (await line.getAttribute('points')).split(' ').length;
      await page.waitForFunction((n) => {
        const now = document.querySelector('#telemetry-chart polyline[data-series="temperature"]');
        return now && now.getAttribute('points').split(' ').length > n;
      }, before, { timeout: 20000 });
      if (!(await page.locator('#telemetry-chart polyline[data-series="humidity"]').count())) throw new Error('no humidity line');
    });

    await step('connectionHistoryIsListed', async () => {
      try {
        // The earlier connection sent DISCONNECT; if the lamp's connect reached the node first, it was taken over.
        await page.locator('#connection-history td', { hasText: /^(CLIENT_INITIATED_DISCONNECT|DUPLICATE_CLIENTID)$/ }).first().waitFor();
      } catch (e) {
        throw new Error(`the history shows: ${await page.locator('#connection-history').textContent()}`);
      }
    });

    await step('desiredChangeBringsTheReportedState', async () => {
      await page.fill('#desired-editor', JSON.stringify({ color: args.desired }));
      await page.click('#save-desired');
      await page.locator('#saved', { hasText: 'saved as version' }).waitFor();
      // The device answers the delta with its reported state; the page shows it without a reload.
      await page.locator('#reported', { hasText: args.desired }).waitFor({ timeout: 20000 });
      await page.locator('#delta', { hasText: '—' }).waitFor({ timeout: 20000 });
      await shot(page, 'device');
    });

    await step('usageShowsTheDevicesTraffic', async () => {
      await page.click('#thing-usage');
      // The device's two reported updates arrived as MQTT messages; the chart has a bar group per day.
      await page.locator('#usage-total', { hasText: /[1-9]\d* messages in/ }).waitFor({ timeout: 20000 });
      const bars = await page.locator('#usage-chart rect').count();
      if (bars !== 7 * 4) throw new Error(`${bars} bars for 7 days of 4 series`);
      await shot(page, 'usage');
      await page.goBack();
      await page.locator('#desired-editor').waitFor();
    });

    await step('badDesiredJsonIsRefusedOnThePage', async () => {
      await page.fill('#desired-editor', '{not json');
      await page.click('#save-desired');
      await page.locator('#error', { hasText: 'not JSON' }).waitFor();
    });

    await step('jobProgressReachesDone', async () => {
      await page.click('#nav a[href="#/jobs"]');
      const row = page.locator(`#jobs tr[data-job="${args.job}"]`);
      await page.locator('#jobs table').waitFor();
      // Other jobs may come first: page on until this one is listed.
      for (let i = 0; i < 20 && !(await row.count()); i++) {
        const next = page.locator('#jobs-next');
        if (await next.isDisabled()) break;
        const before = await page.locator('#jobs .pager span').textContent();
        await next.click();
        await page.locator('#jobs .pager span', { hasNotText: before }).waitFor();
      }
      await row.waitFor();
      await row.locator('.progress-text', { hasText: '1 of 1 done (1 succeeded' }).waitFor({ timeout: 30000 });
      await shot(page, 'jobs');
    });

    await step('rulesAreListed', async () => {
      await page.click('#nav a[href="#/rules"]');
      await page.locator('#rules td', { hasText: args.rule }).waitFor();
    });

    await step('ruleTryItShowsTheOutput', async () => {
      await page.fill('#rule-sql', "SELECT temp * 2 AS doubled, topic(2) AS device FROM 'console/+/x' WHERE temp > 20");
      await page.fill('#try-topic', 'console/lamp-7/x');
      await page.fill('#try-payload', '{"temp": 21}');
      await page.click('#try-rule');
      await page.locator('#try-output', { hasText: '"doubled": 42' }).waitFor();
      await page.locator('#try-output', { hasText: '"device": "lamp-7"' }).waitFor();
      await page.fill('#try-payload', '{"temp": 19}');
      await page.click('#try-rule');
      await page.locator('#try-output', { hasText: 'did not select' }).waitFor();
      await page.fill('#try-payload', '{"temp": 21}');
      await page.click('#try-rule');
      await page.locator('#try-output', { hasText: '"doubled": 42' }).waitFor();
      await shot(page, 'rules');
    });

    await step('badSqlShowsTheError', async () => {
      await page.fill('#rule-sql', 'SELECT FROM WHERE');
      await page.click('#try-rule');
      await page.locator('#error', { hasText: 'SqlParseException' }).waitFor();
    });

    await step('ruleCreatedFromThePage', async () => {
      await page.fill('#rule-name', args.newRule);
      await page.fill('#rule-sql', "SELECT * FROM 'console/+/made'");
      await page.click('#save-rule');
      await page.locator('#rule-saved', { hasText: `created ${args.newRule}` }).waitFor();
      await page.locator('#rules a.rule-link', { hasText: args.newRule }).waitFor();
    });

    await step('policiesAreListedAndReadable', async () => {
      await page.click('#nav a[href="#/security"]');
      await page.locator('#policies').waitFor();
      // Other tests' policies may come first: page on until this one is listed.
      const link = page.locator('#policies a.policy-link', { hasText: args.policy });
      for (let i = 0; i < 40 && !(await link.count()); i++) {
        const next = page.locator('#policies-next');
        if (await next.isDisabled()) break;
        const before = await page.locator('#policies-pages .pager span').textContent();
        await next.click();
        await page.locator('#policies-pages .pager span', { hasNotText: before }).waitFor();
      }
      await link.click();
      await page.locator('#policy-document', { hasText: 'iot:Connect' }).waitFor();
      await shot(page, 'security');
    });

    await step('auditLogShowsTheChanges', async () => {
      await page.click('#nav a[href="#/audit"]');
      await page.locator('#audit td', { hasText: 'CreateThing' }).first().waitFor();
      await shot(page, 'audit');
    });

    await step('alarmShowsItsState', async () => {
      await page.click('#nav a[href="#/alarms"]');
      await page.locator(`#alarms tr[data-alarm="${args.alarm}"] td.alarm-state`, { hasText: 'ALARM' }).waitFor({ timeout: 20000 });
      await shot(page, 'alarms');
    });

    await step('clusterShowsThisNode', async () => {
      await page.click('#nav a[href="#/cluster"]');
      await page.locator('#nodes tbody tr').first().waitFor();
      const connections = Number(await page.locator('#nodes tbody tr td.connections').first().textContent());
      if (!(connections >= 1)) throw new Error(`${connections} connections (the test's device is connected)`);
      await shot(page, 'cluster');
    });

    await step('dashboardOpensForAnAdmin', async () => {
      await page.click('#nav a[href="#/dashboard"]');
      await page.waitForURL(/\/dashboard\/$/);
      await page.waitForFunction(() => document.title === 'Orleans Dashboard');
      await page.goBack();
      await page.locator('#nodes').waitFor();
    });

    await step('signOutForgetsTheKey', async () => {
      await page.click('#sign-out');
      await page.locator('#sign-in').waitFor();
      const stored = await page.evaluate(() => sessionStorage.getItem('orleansiot.apiKey'));
      if (stored !== null) throw new Error('the key is still stored');
    });

    checks.noScriptErrors = consoleErrors.length === 0;
    if (consoleErrors.length) errors.push(...consoleErrors.map((e) => `page: ${e}`));
  } finally {
    await browser.close();
  }

  console.log(JSON.stringify({ checks, errors }));
})().catch((e) => {
  console.log(JSON.stringify({ checks, errors: [...errors, `fatal: ${e.message}`] }));
});
