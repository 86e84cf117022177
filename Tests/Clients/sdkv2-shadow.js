// A device written with the AWS IoT Device SDK v2 for JavaScript (aws-crt, the native client the Python, Java and
// C++ SDK v2 share) using its shadow client over mTLS, as in AWS's shadow sample, with only the endpoint, port and
// credentials changed.
//
//   node sdkv2-shadow.js '{"host":"localhost","port":8883,"ca":"ca.pem","cert":"c.pem","key":"k.pem",
//                          "clientId":"t1","thingName":"t1","mqtt5":false}'
'use strict';
const { iotshadow } = require('aws-iot-device-sdk-v2');
const { report, within, waiter, connect, QoS } = require('./sdkv2-common');

const args = JSON.parse(process.argv[2]);
const r = report();

async function main() {
  let device;
  try {
    device = await connect(args);
    r.check('connect', true);
  } catch (e) {
    r.check('connect', false, e.message || String(e));
    return;
  }

  const shadow = device.mqtt5 ? iotshadow.IotShadowClient.newFromMqtt5Client(device.mqtt5) : new iotshadow.IotShadowClient(device.connection);
  const thingName = args.thingName;
  const qos = QoS.AtLeastOnce;
  let accepted = waiter();
  const rejected = waiter(), got = waiter(), delta = waiter(), deleted = waiter();
  try {
    await shadow.subscribeToUpdateShadowAccepted({ thingName }, qos, (e, m) => accepted.resolve(e || m));
    await shadow.subscribeToUpdateShadowRejected({ thingName }, qos, (e, m) => rejected.resolve(e || m));
    await shadow.subscribeToGetShadowAccepted({ thingName }, qos, (e, m) => got.resolve(e || m));
    await shadow.subscribeToShadowDeltaUpdatedEvents({ thingName }, qos, (e, m) => delta.resolve(e || m));
    await shadow.subscribeToDeleteShadowAccepted({ thingName }, qos, (e, m) => deleted.resolve(e || m));
    r.check('subscribe', true);

    await shadow.publishUpdateShadow({ thingName, state: { reported: { temp: 20 } }, clientToken: 'c-1' }, qos);
    const update = await within(accepted.promise, 10000, 'update/accepted');
    // AWS keeps counting versions across a delete, so versions are checked relative to the first answer.
    const first = update.version;
    r.check('update accepted', Number.isInteger(first) && update.state.reported.temp === 20 && update.clientToken === 'c-1', JSON.stringify(update));

    await shadow.publishGetShadow({ thingName, clientToken: 'c-2' }, qos);
    const document = await within(got.promise, 10000, 'get/accepted');
    r.check('get accepted', document.state.reported.temp === 20 && document.version === first && document.clientToken === 'c-2', JSON.stringify(document));

    accepted = waiter();
    await shadow.publishUpdateShadow({ thingName, state: { desired: { temp: 25 } } }, qos);
    const change = await within(delta.promise, 10000, 'update/delta');
    r.check('delta', change.state.temp === 25 && change.version === first + 1, JSON.stringify(change));
    await within(accepted.promise, 10000, 'the second update/accepted');

    await shadow.publishUpdateShadow({ thingName, state: { reported: { temp: 21 } }, version: first, clientToken: 'c-3' }, qos);
    const refusal = await within(rejected.promise, 10000, 'update/rejected');
    r.check('stale version rejected', refusal.code === 409 && refusal.clientToken === 'c-3', JSON.stringify(refusal));

    await shadow.publishDeleteShadow({ thingName }, qos);
    const gone = await within(deleted.promise, 10000, 'delete/accepted');
    r.check('delete accepted', typeof gone.version === 'number', JSON.stringify(gone));
  } catch (e) {
    r.fail(e);
  } finally {
    try { await within(Promise.resolve(device.close()), 5000, 'the disconnect'); r.check('disconnect', true); }
    catch (e) { r.check('disconnect', false, e.message); }
  }
}

main().catch(r.fail).finally(() => { r.print(); process.exit(0); });
