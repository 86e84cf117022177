// A backend written with the AWS SDK for JavaScript v3 (@aws-sdk/client-iot) managing jobs against a node, with only
// the endpoint and the credentials changed (SigV4): a job template with a parameter, a job made from it over a thing,
// DescribeJob, ListJobs, GetJobDocument, UpdateJob, the executions, CancelJob and DeleteJob, and AWS's errors.
// Argument: {"api": "http://host:port/api", "admin": {accessKeyId, secretAccessKey}, "thingName", "artifactId"}
'use strict';
const iot = require('@aws-sdk/client-iot');
const { report } = require('./report');

const args = JSON.parse(process.argv[2]);
const r = report();
const client = new iot.IoTClient({ endpoint: args.api, region: 'eu-west-1', credentials: args.admin, maxAttempts: 1 });
const errorName = async promise => { try { await promise; return 'no error'; } catch (e) { return e.name; } };

(async () => {
  const { thingName, artifactId } = args;
  const templateId = `${thingName}-tpl`;
  const jobId = `${thingName}-job`;
  try {
    const template = await client.send(new iot.CreateJobTemplateCommand({
      jobTemplateId: templateId,
      description: 'firmware update',
      document: JSON.stringify({ version: '${aws:iot:parameter:version}', url: `\${iot:artifact-url:${artifactId}}` }),
      timeoutConfig: { inProgressTimeoutInMinutes: 30 },
    }));
    r.check('CreateJobTemplate', template.jobTemplateArn.endsWith(`jobtemplate/${templateId}`), JSON.stringify(template));
    const described = await client.send(new iot.DescribeJobTemplateCommand({ jobTemplateId: templateId }));
    r.check('DescribeJobTemplate', described.timeoutConfig.inProgressTimeoutInMinutes === 30 && described.createdAt instanceof Date, JSON.stringify(described));
    const templates = await client.send(new iot.ListJobTemplatesCommand({}));
    r.check('ListJobTemplates', templates.jobTemplates.some(t => t.jobTemplateId === templateId), JSON.stringify(templates));

    const thingArn = `arn:aws:iot:local:000000000000:thing/${thingName}`;
    const created = await client.send(new iot.CreateJobCommand({
      jobId, targets: [thingArn], jobTemplateArn: template.jobTemplateArn, documentParameters: { version: '4.2' },
      jobExecutionsRolloutConfig: { maximumPerMinute: 100 },
    }));
    r.check('CreateJob', created.jobId === jobId && created.jobArn.endsWith(`job/${jobId}`), JSON.stringify(created));
    r.check('CreateJob again: ResourceAlreadyExistsException', await errorName(client.send(new iot.CreateJobCommand({ jobId, targets: [thingArn], document: '{}' }))) === 'ResourceAlreadyExistsException');

    const document = JSON.parse((await client.send(new iot.GetJobDocumentCommand({ jobId }))).document);
    r.check('GetJobDocument', document.version === '4.2' && document.url === `\${iot:artifact-url:${artifactId}}`, JSON.stringify(document));

    let job = (await client.send(new iot.DescribeJobCommand({ jobId }))).job;
    r.check('DescribeJob', job.status === 'IN_PROGRESS' && job.timeoutConfig.inProgressTimeoutInMinutes === 30
      && job.jobExecutionsRolloutConfig.maximumPerMinute === 100 && job.createdAt instanceof Date && job.jobTemplateArn === template.jobTemplateArn, JSON.stringify(job));

    const listed = await client.send(new iot.ListJobsCommand({ status: 'IN_PROGRESS', maxResults: 250 }));
    r.check('ListJobs', listed.jobs.some(j => j.jobId === jobId && j.status === 'IN_PROGRESS'), JSON.stringify(listed));

    await client.send(new iot.UpdateJobCommand({ jobId, description: 'firmware 4.2', jobExecutionsRolloutConfig: { maximumPerMinute: 50 } }));
    job = (await client.send(new iot.DescribeJobCommand({ jobId }))).job;
    r.check('UpdateJob', job.description === 'firmware 4.2' && job.jobExecutionsRolloutConfig.maximumPerMinute === 50, JSON.stringify(job));

    let executions;
    for (let i = 0; i < 50; i++) {
      executions = await client.send(new iot.ListJobExecutionsForJobCommand({ jobId }));
      if (executions.executionSummaries.length === 1) break;
      await new Promise(resolve => setTimeout(resolve, 100));
    }
    r.check('ListJobExecutionsForJob', executions.executionSummaries[0].thingArn === thingArn
      && executions.executionSummaries[0].jobExecutionSummary.status === 'QUEUED', JSON.stringify(executions));
    const forThing = await client.send(new iot.ListJobExecutionsForThingCommand({ thingName }));
    r.check('ListJobExecutionsForThing', forThing.executionSummaries.some(e => e.jobId === jobId), JSON.stringify(forThing));
    const execution = (await client.send(new iot.DescribeJobExecutionCommand({ jobId, thingName }))).execution;
    r.check('DescribeJobExecution', execution.status === 'QUEUED' && execution.executionNumber === 1 && execution.queuedAt instanceof Date, JSON.stringify(execution));

    r.check('DeleteJob in progress: InvalidStateTransitionException', await errorName(client.send(new iot.DeleteJobCommand({ jobId }))) === 'InvalidStateTransitionException');
    const canceled = await client.send(new iot.CancelJobCommand({ jobId, reasonCode: 'superseded', comment: 'replaced by 4.3' }));
    r.check('CancelJob', canceled.jobId === jobId, JSON.stringify(canceled));
    job = (await client.send(new iot.DescribeJobCommand({ jobId }))).job;
    r.check('canceled', job.status === 'CANCELED' && job.reasonCode === 'superseded' && job.comment === 'replaced by 4.3', JSON.stringify(job));
    await client.send(new iot.DeleteJobCommand({ jobId }));
    r.check('DeleteJob', await errorName(client.send(new iot.DescribeJobCommand({ jobId }))) === 'ResourceNotFoundException');
    await client.send(new iot.DeleteJobTemplateCommand({ jobTemplateId: templateId }));
    r.check('DeleteJobTemplate', await errorName(client.send(new iot.DescribeJobTemplateCommand({ jobTemplateId: templateId }))) === 'ResourceNotFoundException');
  } catch (e) {
    r.fail(e);
  }
  r.print();
})();
