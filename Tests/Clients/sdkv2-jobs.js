// A device written with the AWS IoT Device SDK v2 for JavaScript using its jobs client over mTLS, as in AWS's jobs
// sample: on start, take the next pending execution (one was queued while it was away), download the firmware its document names (resuming
// with a range request), check its SHA-256, report SUCCEEDED. Only the endpoint, port and credentials differ from AWS.
//
//   node sdkv2-jobs.js '{"host":"localhost","port":8883,"ca":"ca.pem","cert":"c.pem","key":"k.pem",
//                        "clientId":"t1","thingName":"t1","mqtt5":false}'
'use strict';
const crypto = require('crypto');
const { iotjobs } = require('aws-iot-device-sdk-v2');
const { report, within, waiter, connect, QoS } = require('./sdkv2-common');

const args = JSON.parse(process.argv[2]);
const r = report();

// Downloads in two requests (the second resumes where the first stopped), as a device on a flaky link does.
async function download(url) {
  const head = await fetch(url, { method: 'HEAD' });
  const size = Number(head.headers.get('content-length'));
  const etag = head.headers.get('etag');
  const half = Math.floor(size / 2);
  const first = await fetch(url, { headers: { Range: `bytes=0-${half - 1}` } });
  const second = await fetch(url, { headers: { Range: `bytes=${half}-`, 'If-Range': etag } });
  if (first.status !== 206 || second.status !== 206) throw new Error(`range answers ${first.status} and ${second.status}`);
  return Buffer.concat([Buffer.from(await first.arrayBuffer()), Buffer.from(await second.arrayBuffer())]);
}

async function main() {
  let device;
  try {
    device = await connect(args);
    r.check('connect', true);
  } catch (e) {
    r.check('connect', false, e.message || String(e));
    return;
  }

  const received = [];
  if (device.mqtt5) device.mqtt5.on('messageReceived', e => received.push(e.message.topicName));
  else device.connection.on('message', topic => received.push(topic));
  const jobs = device.mqtt5 ? iotjobs.IotJobsClient.newFromMqtt5Client(device.mqtt5) : new iotjobs.IotJobsClient(device.connection);
  const thingName = args.thingName;
  const qos = QoS.AtLeastOnce;
  const next = [];
  let nextChanged = waiter();
  const started = waiter(), updated = waiter(), rejected = waiter();
  try {
    await jobs.subscribeToNextJobExecutionChangedEvents({ thingName }, qos, (e, m) => { next.push(e || m); nextChanged.resolve(); });
    await jobs.subscribeToStartNextPendingJobExecutionAccepted({ thingName }, qos, (e, m) => started.resolve(e || m));
    await jobs.subscribeToStartNextPendingJobExecutionRejected({ thingName }, qos, (e, m) => rejected.resolve(e || m));
    r.check('subscribe', true);

    await jobs.publishStartNextPendingJobExecution({ thingName, stepTimeoutInMinutes: 15, clientToken: 'start-1' }, qos);
    const start = await within(Promise.race([started.promise, rejected.promise.then(x => { throw new Error(JSON.stringify(x)); })]), 10000, 'start-next/accepted');
    const execution = start.execution;
    r.check('start next', execution.jobId === args.jobId && execution.status === 'IN_PROGRESS' && execution.versionNumber === 2 && start.clientToken === 'start-1', JSON.stringify(start));

    const firmware = await download(execution.jobDocument.url);
    const sha256 = crypto.createHash('sha256').update(firmware).digest('hex');
    r.value('bytes', firmware.length);
    r.check('download', sha256 === execution.jobDocument.sha256, `${sha256} vs ${execution.jobDocument.sha256}`);

    // As AWS's sample: the update answers are subscribed per job id (the SDK's MQTT 5 adapter routes answers by exact topic).
    await jobs.subscribeToUpdateJobExecutionAccepted({ thingName, jobId: execution.jobId }, qos, (e, m) => updated.resolve(e || m));
    await jobs.subscribeToUpdateJobExecutionRejected({ thingName, jobId: execution.jobId }, qos, (e, m) => rejected.resolve(e || m));
    nextChanged = waiter();
    await jobs.publishUpdateJobExecution({
      thingName, jobId: execution.jobId, status: iotjobs.model.JobStatus.SUCCEEDED,
      statusDetails: { firmware: execution.jobDocument.version }, expectedVersion: execution.versionNumber, includeJobExecutionState: true,
    }, qos);
    const update = await within(updated.promise, 10000, 'update/accepted');
    r.check('update', update.executionState && update.executionState.status === 'SUCCEEDED', JSON.stringify(update));

    await within(nextChanged.promise, 10000, 'the last notify-next');
    r.check('queue empty', next.length > 0 && !next[next.length - 1].execution, JSON.stringify(next));
  } catch (e) {
    r.fail(e);
    r.value('received', received);
  } finally {
    try { await within(Promise.resolve(device.close()), 5000, 'the disconnect'); r.check('disconnect', true); }
    catch (e) { r.check('disconnect', false, e.message); }
  }
}

main().catch(r.fail).finally(() => { r.print(); process.exit(0); });
