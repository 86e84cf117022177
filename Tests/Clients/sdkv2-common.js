// What the SDK v2 scripts share: connecting over mTLS as AWS's samples do (MQTT 3.1.1 or 5), and what they print:
// one JSON line {"checks": {name: bool}, "values": {...}, "errors": [...]}.
'use strict';
const { mqtt, mqtt5, iot } = require('aws-iot-device-sdk-v2');
const { report } = require('./report');

const within = (promise, ms, what) => Promise.race([promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms))]);

// A promise made before the request whose answer resolves it.
function waiter() {
  let resolve; const promise = new Promise(r => { resolve = r; });
  return { promise, resolve };
}

// Connects with a certificate and key (files) to host:port, trusting only the CA file. Returns the connection (3.1.1)
// or client (5) for the service clients' constructors, and close().
async function connect({ host, port, ca, cert, key, clientId, mqtt5: useMqtt5 }) {
  if (useMqtt5) {
    const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(host, cert, key);
    builder.withCertificateAuthorityFromPath(undefined, ca);
    builder.withPort(port);
    builder.withConnectProperties({ clientId, keepAliveIntervalSeconds: 60 });
    const client = new mqtt5.Mqtt5Client(builder.build());
    const connected = waiter();
    client.on('connectionSuccess', () => connected.resolve(true));
    client.on('connectionFailure', e => connected.resolve(e.error ? String(e.error) : 'connection failure'));
    client.start();
    const result = await within(connected.promise, 15000, 'the MQTT 5 connection');
    if (result !== true) { client.stop(); client.close(); throw new Error(result); }
    return { mqtt5: client, close: async () => { client.stop(); client.close(); } };
  }
  const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(cert, key)
    .with_certificate_authority_from_path(undefined, ca)
    .with_endpoint(host)
    .with_port(port)
    .with_client_id(clientId)
    .with_clean_session(true)
    .build();
  const connection = new mqtt.MqttClient().new_connection(config);
  await within(connection.connect(), 15000, 'the MQTT 3.1.1 connection');
  return { connection, close: () => connection.disconnect() };
}

module.exports = { report, within, waiter, connect, QoS: mqtt.QoS };
