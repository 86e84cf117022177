// A backend written with the AWS SDK for JavaScript v3 using fleet indexing against a node, with only the endpoint and
// the credentials changed (SigV4): things with attributes and shadows, SearchIndex (with paging), GetStatistics,
// GetCardinality, GetPercentiles, GetBucketsAggregation, the indexing configuration, DescribeIndex, ListIndices, a
// dynamic thing group, and AWS's errors for a bad query.
// Argument: {"api": "http://host:port/api", "data": "http://host:port", "admin": {accessKeyId, secretAccessKey}, "prefix"}
'use strict';
const iot = require('@aws-sdk/client-iot');
const data = require('@aws-sdk/client-iot-data-plane');
const { report } = require('./report');

const args = JSON.parse(process.argv[2]);
const r = report();
const region = 'eu-west-1';
const client = new iot.IoTClient({ endpoint: args.api, region, credentials: args.admin, maxAttempts: 1 });
const dataPlane = new data.IoTDataPlaneClient({ endpoint: args.data, region, credentials: args.admin, maxAttempts: 1 });
const errorName = async promise => { try { await promise; return 'no error'; } catch (e) { return e.name; } };

(async () => {
  const { prefix } = args;
  try {
    for (let i = 0; i < 5; i++) {
      const thingName = `${prefix}-${i}`;
      await client.send(new iot.CreateThingCommand({ thingName, attributePayload: { attributes: { model: i < 3 ? 'alpha' : 'beta' } } }));
      await dataPlane.send(new data.UpdateThingShadowCommand({
        thingName, payload: Buffer.from(JSON.stringify({ state: { reported: { temp: 10 * (i + 1), firmware: i % 2 === 0 ? '1.0' : '2.0' } } })),
      }));
    }

    const queryString = `thingName:${prefix}-* AND shadow.reported.firmware:1.0`;
    const found = await client.send(new iot.SearchIndexCommand({ indexName: 'AWS_Things', queryString }));
    r.check('SearchIndex', found.things.map(t => t.thingName).join(',') === `${prefix}-0,${prefix}-2,${prefix}-4`
      && JSON.parse(found.things[0].shadow).reported.temp === 10 && found.things[0].attributes.model === 'alpha', JSON.stringify(found));

    const first = await client.send(new iot.SearchIndexCommand({ queryString: `thingName:${prefix}-*`, maxResults: 2 }));
    const second = await client.send(new iot.SearchIndexCommand({ queryString: `thingName:${prefix}-*`, maxResults: 2, nextToken: first.nextToken }));
    r.check('SearchIndex pages', first.things.length === 2 && second.things[0].thingName === `${prefix}-2` && second.nextToken, JSON.stringify(second));

    const stats = await client.send(new iot.GetStatisticsCommand({ queryString: `thingName:${prefix}-*`, aggregationField: 'shadow.reported.temp' }));
    r.check('GetStatistics', stats.statistics.count === 5 && stats.statistics.average === 30 && stats.statistics.maximum === 50, JSON.stringify(stats));
    const cardinality = await client.send(new iot.GetCardinalityCommand({ queryString: `thingName:${prefix}-*`, aggregationField: 'attributes.model' }));
    r.check('GetCardinality', cardinality.cardinality === 2, JSON.stringify(cardinality));
    const percentiles = await client.send(new iot.GetPercentilesCommand({ queryString: `thingName:${prefix}-*`, aggregationField: 'shadow.reported.temp', percents: [50] }));
    r.check('GetPercentiles', percentiles.percentiles.length === 1 && percentiles.percentiles[0].value === 30, JSON.stringify(percentiles));
    const buckets = await client.send(new iot.GetBucketsAggregationCommand({
      queryString: `thingName:${prefix}-*`, aggregationField: 'shadow.reported.firmware', bucketsAggregationType: { termsAggregation: { maxBuckets: 5 } },
    }));
    r.check('GetBucketsAggregation', buckets.totalCount === 5 && buckets.buckets[0].keyValue === '1.0' && buckets.buckets[0].count === 3, JSON.stringify(buckets));

    const config = await client.send(new iot.GetIndexingConfigurationCommand({}));
    r.check('GetIndexingConfiguration', config.thingIndexingConfiguration.thingIndexingMode === 'REGISTRY_AND_SHADOW', JSON.stringify(config));
    const index = await client.send(new iot.DescribeIndexCommand({ indexName: 'AWS_Things' }));
    r.check('DescribeIndex', index.indexName === 'AWS_Things' && index.schema.startsWith('REGISTRY_AND_SHADOW'), JSON.stringify(index));
    const indices = await client.send(new iot.ListIndicesCommand({}));
    r.check('ListIndices', indices.indexNames.includes('AWS_Things'), JSON.stringify(indices));

    const group = `${prefix}-old`;
    const created = await client.send(new iot.CreateDynamicThingGroupCommand({ thingGroupName: group, queryString }));
    r.check('CreateDynamicThingGroup', created.thingGroupArn.endsWith(`thinggroup/${group}`) && created.queryString === queryString, JSON.stringify(created));
    const described = await client.send(new iot.DescribeThingGroupCommand({ thingGroupName: group }));
    r.check('DescribeThingGroup (dynamic)', described.queryString === queryString && described.indexName === 'AWS_Things', JSON.stringify(described));
    const members = await client.send(new iot.ListThingsInThingGroupCommand({ thingGroupName: group }));
    r.check('ListThingsInThingGroup (dynamic)', members.things.length === 3, JSON.stringify(members));
    await client.send(new iot.DeleteDynamicThingGroupCommand({ thingGroupName: group }));
    r.check('DeleteDynamicThingGroup', await errorName(client.send(new iot.DescribeThingGroupCommand({ thingGroupName: group }))) === 'ResourceNotFoundException');

    r.check('bad query: InvalidQueryException', await errorName(client.send(new iot.SearchIndexCommand({ queryString: 'thingName:*x' }))) === 'InvalidQueryException');
    r.check('unknown index: ResourceNotFoundException', await errorName(client.send(new iot.SearchIndexCommand({ indexName: 'nope', queryString: '*' }))) === 'ResourceNotFoundException');
  } catch (e) {
    r.fail(e);
  }
  r.print();
})();
