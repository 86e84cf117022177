// Fleet provisioning by claim with the AWS IoT Device SDK v2's identity client, as AWS's fleet provisioning sample
// does it: connect with the claim certificate, CreateKeysAndCertificate (or CreateCertificateFromCsr with the CSR
// given), RegisterThing with the template's parameters, then connect again with the new certificate.
//
//   node sdkv2-provision.js '{"host":"localhost","port":8883,"ca":"ca.pem","cert":"claim.pem","key":"claim.key",
//        "clientId":"claim-1","templateName":"t","parameters":{"SerialNumber":"1"},"csr":null,"csrKey":null,
//        "workDir":"/tmp/x","mqtt5":false}'
// With "csr" (a PEM request) and "csrKey" (its key file) the certificate comes from CreateCertificateFromCsr.
'use strict';
const fs = require('fs');
const path = require('path');
const { iotidentity } = require('aws-iot-device-sdk-v2');
const { report, within, waiter, connect, QoS } = require('./sdkv2-common');

const args = JSON.parse(process.argv[2]);
const r = report();

async function main() {
  let claim;
  try {
    claim = await connect(args);
    r.check('connect with claim', true);
  } catch (e) {
    r.check('connect with claim', false, e.message || String(e));
    return;
  }

  const identity = claim.mqtt5 ? iotidentity.IotIdentityClient.newFromMqtt5Client(claim.mqtt5) : new iotidentity.IotIdentityClient(claim.connection);
  const qos = QoS.AtLeastOnce;
  const created = waiter(), registered = waiter();
  let certificateFile, keyFile, thingName;
  try {
    const refused = e => created.resolve({ error: e });
    if (args.csr) {
      await identity.subscribeToCreateCertificateFromCsrAccepted({}, qos, (e, m) => created.resolve(e || m));
      await identity.subscribeToCreateCertificateFromCsrRejected({}, qos, (e, m) => refused(e || m));
      await identity.publishCreateCertificateFromCsr({ certificateSigningRequest: args.csr }, qos);
    } else {
      await identity.subscribeToCreateKeysAndCertificateAccepted({}, qos, (e, m) => created.resolve(e || m));
      await identity.subscribeToCreateKeysAndCertificateRejected({}, qos, (e, m) => refused(e || m));
      await identity.publishCreateKeysAndCertificate({}, qos);
    }
    const certificate = await within(created.promise, 10000, 'the new certificate');
    const ok = certificate.certificatePem && certificate.certificateOwnershipToken && (args.csr || certificate.privateKey);
    r.check('create certificate', ok, JSON.stringify(certificate));
    if (!ok) return;
    certificateFile = path.join(args.workDir, 'new.crt');
    fs.writeFileSync(certificateFile, certificate.certificatePem);
    keyFile = args.csr ? args.csrKey : path.join(args.workDir, 'new.key');
    if (!args.csr) fs.writeFileSync(keyFile, certificate.privateKey);

    const templateName = args.templateName;
    await identity.subscribeToRegisterThingAccepted({ templateName }, qos, (e, m) => registered.resolve(e || m));
    await identity.subscribeToRegisterThingRejected({ templateName }, qos, (e, m) => registered.resolve({ rejected: e || m }));
    await identity.publishRegisterThing({ templateName, certificateOwnershipToken: certificate.certificateOwnershipToken, parameters: args.parameters }, qos);
    const thing = await within(registered.promise, 10000, 'RegisterThing');
    thingName = thing.thingName;
    r.check('register thing', !thing.rejected && thingName, JSON.stringify(thing));
    r.value('thingName', thingName);
    r.value('deviceConfiguration', thing.deviceConfiguration);
  } catch (e) {
    r.fail(e);
  } finally {
    await within(Promise.resolve(claim.close()), 5000, 'the claim disconnect').catch(r.fail);
  }

  if (!thingName) return;
  try {
    const device = await connect({ ...args, cert: certificateFile, key: keyFile, clientId: thingName });
    r.check('connect with the new certificate', true);
    await within(Promise.resolve(device.close()), 5000, 'the disconnect');
  } catch (e) {
    r.check('connect with the new certificate', false, e.message || String(e));
  }
}

main().catch(r.fail).finally(() => { r.print(); process.exit(0); });
