// A backend written with the AWS SDK for JavaScript v3 (@aws-sdk/client-iot, @aws-sdk/client-iot-data-plane) against
// a node, with only the endpoint and the credentials changed: registry, policies, certificates, rules, shadows and
// publish, signed with SigV4; then the ways a signature is refused (wrong secret, unknown key, expired, tampered body),
// presigned URLs, and a reader key refused a change.
// Argument: {"api": "http://host:port/api", "data": "http://host:port", "admin": {accessKeyId, secretAccessKey},
//            "reader": {accessKeyId, secretAccessKey}, "thingName", "publishTopic"}
'use strict';
const crypto = require('node:crypto');
const iot = require('@aws-sdk/client-iot');
const data = require('@aws-sdk/client-iot-data-plane');
const { SignatureV4 } = require('@smithy/signature-v4');
const { report } = require('./report');

const args = JSON.parse(process.argv[2]);
const r = report();
const region = 'eu-west-1';   // any region: the node is one

// The SDK's Sha256 shape over Node's crypto (HMAC when given a secret).
class Sha256 {
  constructor(secret) { this.hash = secret ? crypto.createHmac('sha256', secret) : crypto.createHash('sha256'); }
  update(chunk) { this.hash.update(typeof chunk === 'string' ? Buffer.from(chunk) : chunk); }
  async digest() { return new Uint8Array(this.hash.digest()); }
}

const control = (credentials, extra = {}) => new iot.IoTClient({ endpoint: args.api, region, credentials, maxAttempts: 1, ...extra });
const errorName = async promise => { try { await promise; return 'no error'; } catch (e) { return e.name; } };
const json = bytes => JSON.parse(Buffer.from(bytes).toString('utf8'));

// Signs a request for the control plane with the SDK's own signer; send() then sends it as signed (or altered).
async function signed(method, path, body, { credentials = args.admin, signingDate, presignExpires } = {}) {
  const url = new URL(args.api + path);
  const signer = new SignatureV4({ credentials, region, service: 'iot', sha256: Sha256 });
  const request = {
    method, protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path: url.pathname, query: {},
    headers: { host: url.host, ...(body ? { 'content-type': 'application/json' } : {}) }, body,
  };
  return presignExpires
    ? signer.presign(request, { signingDate, expiresIn: presignExpires })
    : signer.sign(request, { signingDate });
}

async function send(request, body = request.body) {
  const query = new URLSearchParams(request.query).toString();
  const url = `${request.protocol}//${request.hostname}:${request.port}${request.path}${query ? '?' + query : ''}`;
  const headers = { ...request.headers };
  delete headers.host;
  const response = await fetch(url, { method: request.method, headers, body });
  return { status: response.status, errorType: response.headers.get('x-amzn-errortype'), body: await response.text() };
}

(async () => {
  const admin = control(args.admin);
  const thingName = args.thingName;
  try {
    // --- registry ---------------------------------------------------------------------------------------------------
    await admin.send(new iot.CreateThingTypeCommand({ thingTypeName: `${thingName}-type`, thingTypeProperties: { searchableAttributes: ['room'] } }));
    const created = await admin.send(new iot.CreateThingCommand({
      thingName, thingTypeName: `${thingName}-type`, attributePayload: { attributes: { room: 'lab' } },
    }));
    r.check('CreateThing', created.thingName === thingName && created.thingArn.endsWith(`thing/${thingName}`), JSON.stringify(created));
    await admin.send(new iot.UpdateThingCommand({ thingName, expectedVersion: 1, attributePayload: { attributes: { floor: '2' }, merge: true } }));
    const described = await admin.send(new iot.DescribeThingCommand({ thingName }));
    r.check('UpdateThing, DescribeThing', described.version === 2 && described.attributes.room === 'lab' && described.attributes.floor === '2'
      && described.thingTypeName === `${thingName}-type`, JSON.stringify(described));
    const listed = await admin.send(new iot.ListThingsCommand({ thingTypeName: `${thingName}-type` }));
    r.check('ListThings', listed.things.length === 1 && listed.things[0].thingName === thingName, JSON.stringify(listed));
    const group = `${thingName}-group`;
    await admin.send(new iot.CreateThingGroupCommand({ thingGroupName: group }));
    await admin.send(new iot.AddThingToThingGroupCommand({ thingGroupName: group, thingName }));
    const members = await admin.send(new iot.ListThingsInThingGroupCommand({ thingGroupName: group }));
    r.check('thing groups', members.things.includes(thingName), JSON.stringify(members));

    // --- identity and access ----------------------------------------------------------------------------------------
    const policyName = `${thingName}-policy`;
    await admin.send(new iot.CreatePolicyCommand({
      policyName,
      policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }),
    }));
    const keys = await admin.send(new iot.CreateKeysAndCertificateCommand({ setAsActive: true }));
    r.check('CreateKeysAndCertificate', keys.certificatePem.includes('BEGIN CERTIFICATE') && keys.keyPair.PrivateKey.includes('PRIVATE KEY'), keys.certificateArn);
    await admin.send(new iot.AttachPolicyCommand({ policyName, target: keys.certificateArn }));
    const attached = await admin.send(new iot.ListAttachedPoliciesCommand({ target: keys.certificateArn }));
    r.check('AttachPolicy', attached.policies.some(p => p.policyName === policyName), JSON.stringify(attached));
    await admin.send(new iot.AttachThingPrincipalCommand({ thingName, principal: keys.certificateArn }));
    const principals = await admin.send(new iot.ListThingPrincipalsCommand({ thingName }));
    r.check('AttachThingPrincipal, ListThingPrincipals', principals.principals.includes(keys.certificateArn), JSON.stringify(principals));

    // --- rules ------------------------------------------------------------------------------------------------------
    const ruleName = thingName.replace(/-/g, '_');
    const sql = `SELECT * FROM 'sdk/${thingName}/#'`;
    await admin.send(new iot.CreateTopicRuleCommand({
      ruleName, topicRulePayload: { sql, actions: [{ republish: { topic: `sdk-out/${thingName}`, roleArn: 'arn:aws:iam::000000000000:role/republish' } }] },
    }));
    const rule = await admin.send(new iot.GetTopicRuleCommand({ ruleName }));
    r.check('CreateTopicRule, GetTopicRule', rule.rule.sql === sql && rule.rule.actions[0].republish.topic === `sdk-out/${thingName}`, JSON.stringify(rule.rule));
    const rules = await admin.send(new iot.ListTopicRulesCommand({}));
    r.check('ListTopicRules', rules.rules.some(x => x.ruleName === ruleName), JSON.stringify(rules));

    // --- data plane -------------------------------------------------------------------------------------------------
    const dataPlane = new data.IoTDataPlaneClient({ endpoint: args.data, region, credentials: args.admin, maxAttempts: 1 });
    const updated = await dataPlane.send(new data.UpdateThingShadowCommand({ thingName, payload: Buffer.from(JSON.stringify({ state: { desired: { on: true } } })) }));
    r.check('UpdateThingShadow', json(updated.payload).state.desired.on === true, Buffer.from(updated.payload).toString());
    const shadow = await dataPlane.send(new data.GetThingShadowCommand({ thingName }));
    r.check('GetThingShadow', json(shadow.payload).state.delta.on === true, Buffer.from(shadow.payload).toString());
    await dataPlane.send(new data.PublishCommand({ topic: args.publishTopic, qos: 1, payload: Buffer.from('{"from":"sdk v3"}') }));
    r.check('Publish', true);

    const doomed = `${thingName}-gone`;
    await admin.send(new iot.CreateThingCommand({ thingName: doomed }));
    await admin.send(new iot.DeleteThingCommand({ thingName: doomed }));
    r.check('DeleteThing', await errorName(admin.send(new iot.DescribeThingCommand({ thingName: doomed }))) === 'ResourceNotFoundException');

    // --- refusals ---------------------------------------------------------------------------------------------------
    const wrongSecret = control({ accessKeyId: args.admin.accessKeyId, secretAccessKey: 'x'.repeat(40) });
    r.check('wrong secret: InvalidSignatureException', await errorName(wrongSecret.send(new iot.ListThingsCommand({}))) === 'InvalidSignatureException');
    const unknown = control({ accessKeyId: 'OIOT0000000000000000', secretAccessKey: args.admin.secretAccessKey });
    r.check('unknown key: UnrecognizedClientException', await errorName(unknown.send(new iot.ListThingsCommand({}))) === 'UnrecognizedClientException');
    const reader = control(args.reader);
    const readerList = await reader.send(new iot.ListThingsCommand({ thingTypeName: `${thingName}-type` }));
    r.check('reader key reads', readerList.things.length === 1);
    r.check('reader key: change refused', await errorName(reader.send(new iot.CreateThingCommand({ thingName: `${thingName}-reader` }))) === 'AccessDeniedException');

    const old = await send(await signed('GET', `/things/${thingName}`, undefined, { signingDate: new Date(Date.now() - 20 * 60 * 1000) }));
    r.check('signed 20 min ago: 403 Signature expired', old.status === 403 && old.errorType === 'InvalidSignatureException' && old.body.includes('Signature expired'), JSON.stringify(old));
    // The SDK corrects its clock from the refusal's Date header and retries, as against AWS.
    const skewed = control(args.admin, { systemClockOffset: -20 * 60 * 1000, maxAttempts: 3 });
    const afterSkew = await skewed.send(new iot.DescribeThingCommand({ thingName }));
    r.check('skewed SDK clock corrected', afterSkew.thingName === thingName && Math.abs(skewed.config.systemClockOffset) < 60 * 1000, String(skewed.config.systemClockOffset));

    const body = JSON.stringify({ attributePayload: { attributes: { room: 'a' } } });
    const tampered = await send(await signed('POST', `/things/${thingName}-tampered`, body), body.replace('"a"', '"b"'));
    r.check('tampered body: InvalidSignatureException', tampered.status === 403 && tampered.errorType === 'InvalidSignatureException', JSON.stringify(tampered));
    const intact = await send(await signed('POST', `/things/${thingName}-signed`, body));
    r.check('signed raw request accepted', intact.status === 200, JSON.stringify(intact));

    const presigned = await send(await signed('GET', `/things/${thingName}`, undefined, { presignExpires: 60 }));
    r.check('presigned URL', presigned.status === 200 && JSON.parse(presigned.body).thingName === thingName, JSON.stringify(presigned));
    const expired = await send(await signed('GET', `/things/${thingName}`, undefined, { presignExpires: 60, signingDate: new Date(Date.now() - 5 * 60 * 1000) }));
    r.check('expired presigned URL: 403', expired.status === 403 && expired.errorType === 'InvalidSignatureException', JSON.stringify(expired));
  } catch (e) {
    r.fail(e);
  }

  r.print();
})();
