-- OrleansIot schema 001: what the Orleans 10.4.2 ADO.NET providers (clustering, grain persistence, reminders,
-- streaming) need on PostgreSQL. Written for this project from the providers' contract (query keys, parameter
-- names, result columns and semantics; see docs/architecture.md). Idempotent: safe to apply again.
--
-- How the providers use it: at start each provider reads table orleansquery (querykey -> querytext) and later
-- executes the text stored under a key with named parameters (@Name). Identifiers are unquoted, so they fold to
-- lower case; result columns are looked up case-insensitively. Boolean results are one row with one integer column.
-- All times are timestamptz holding UTC instants (Npgsql sends Orleans' DateTime parameters as timestamptz).

CREATE TABLE IF NOT EXISTS orleansquery (
    querykey  varchar(64) PRIMARY KEY,
    querytext text NOT NULL
);

-- ---------------------------------------------------------------------------------------------------------------
-- Clustering. One version row per cluster (deploymentid = ClusterId); its version is the only concurrency token:
-- every membership change must find the version the caller read and increment it in the same statement.
-- ---------------------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS orleansmembershipversiontable (
    deploymentid text        PRIMARY KEY,
    timestamp    timestamptz NOT NULL DEFAULT now(),
    version      integer     NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS orleansmembershiptable (
    deploymentid text        NOT NULL REFERENCES orleansmembershipversiontable (deploymentid) ON DELETE CASCADE,
    address      text        NOT NULL,   -- IPAddress.Parse reads it back, so text, not inet
    port         integer     NOT NULL,
    generation   integer     NOT NULL,
    siloname     text        NOT NULL,
    hostname     text        NOT NULL,
    status       integer     NOT NULL,   -- SiloStatus: 3 Active, 6 Dead, ...
    proxyport    integer     NOT NULL DEFAULT 0,
    suspecttimes text,                   -- Orleans' own "silo,time|silo,time" text, stored verbatim
    starttime    timestamptz NOT NULL,
    iamalivetime timestamptz NOT NULL,
    PRIMARY KEY (deploymentid, address, port, generation)
);

INSERT INTO orleansquery (querykey, querytext) VALUES
('InsertMembershipVersionKey', $q$
WITH inserted AS (
    INSERT INTO orleansmembershipversiontable (deploymentid) VALUES (@DeploymentId)
    ON CONFLICT (deploymentid) DO NOTHING
    RETURNING 1)
SELECT count(*)::integer FROM inserted;
$q$),
('InsertMembershipKey', $q$
WITH bumped AS (
    UPDATE orleansmembershipversiontable
       SET version = version + 1, timestamp = now()
     WHERE deploymentid = @DeploymentId AND version = @Version
       AND NOT EXISTS (SELECT 1 FROM orleansmembershiptable
                        WHERE deploymentid = @DeploymentId AND address = @Address
                          AND port = @Port AND generation = @Generation)
    RETURNING deploymentid),
inserted AS (
    INSERT INTO orleansmembershiptable
           (deploymentid, address, port, generation, siloname, hostname, status, proxyport, starttime, iamalivetime)
    SELECT deploymentid, @Address, @Port, @Generation, @SiloName, @HostName, @Status, @ProxyPort, @StartTime, @IAmAliveTime
      FROM bumped
    RETURNING 1)
SELECT count(*)::integer FROM inserted;
$q$),
('UpdateMembershipKey', $q$
WITH bumped AS (
    UPDATE orleansmembershipversiontable
       SET version = version + 1, timestamp = now()
     WHERE deploymentid = @DeploymentId AND version = @Version
       AND EXISTS (SELECT 1 FROM orleansmembershiptable
                    WHERE deploymentid = @DeploymentId AND address = @Address
                      AND port = @Port AND generation = @Generation)
    RETURNING deploymentid),
updated AS (
    UPDATE orleansmembershiptable m
       SET status = @Status, suspecttimes = @SuspectTimes, iamalivetime = GREATEST(m.iamalivetime, @IAmAliveTime)
      FROM bumped b
     WHERE m.deploymentid = b.deploymentid AND m.address = @Address AND m.port = @Port AND m.generation = @Generation
    RETURNING 1)
SELECT count(*)::integer FROM updated;
$q$),
('UpdateIAmAlivetimeKey', $q$
UPDATE orleansmembershiptable
   SET iamalivetime = GREATEST(iamalivetime, @IAmAliveTime)
 WHERE deploymentid = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation;
$q$),
('MembershipReadAllKey', $q$
SELECT v.version, m.address, m.port, m.generation, m.siloname, m.hostname, m.status, m.proxyport,
       m.suspecttimes, m.starttime, m.iamalivetime
  FROM orleansmembershipversiontable v
  LEFT JOIN orleansmembershiptable m ON m.deploymentid = v.deploymentid
 WHERE v.deploymentid = @DeploymentId;
$q$),
('MembershipReadRowKey', $q$
SELECT v.version, m.address, m.port, m.generation, m.siloname, m.hostname, m.status, m.proxyport,
       m.suspecttimes, m.starttime, m.iamalivetime
  FROM orleansmembershipversiontable v
  LEFT JOIN orleansmembershiptable m
         ON m.deploymentid = v.deploymentid AND m.address = @Address AND m.port = @Port AND m.generation = @Generation
 WHERE v.deploymentid = @DeploymentId;
$q$),
('GatewaysQueryKey', $q$
SELECT address, proxyport, generation
  FROM orleansmembershiptable
 WHERE deploymentid = @DeploymentId AND status = @Status AND proxyport > 0;
$q$),
('DeleteMembershipTableEntriesKey', $q$
DELETE FROM orleansmembershiptable WHERE deploymentid = @DeploymentId;
DELETE FROM orleansmembershipversiontable WHERE deploymentid = @DeploymentId;
$q$),
('CleanupDefunctSiloEntriesKey', $q$
DELETE FROM orleansmembershiptable
 WHERE deploymentid = @DeploymentId AND status = 6 AND iamalivetime < @IAmAliveTime;
$q$),
('CleanupDefunctSiloEntryKey', $q$
DELETE FROM orleansmembershiptable
 WHERE deploymentid = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation
   AND status = 6 AND starttime = @StartTime AND iamalivetime = @IAmAliveTime
   AND COALESCE(suspecttimes, '') = COALESCE(@SuspectTimes, '');
$q$)
ON CONFLICT (querykey) DO UPDATE SET querytext = EXCLUDED.querytext;

-- ---------------------------------------------------------------------------------------------------------------
-- Grain persistence. One row per (service, state name, grain key); version is the etag. The hashes only narrow
-- the lookup (they can collide); the unique key makes the first-insert race safe.
-- ---------------------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS orleansstorage (
    grainidhash            integer     NOT NULL,
    grainidn0              bigint      NOT NULL,
    grainidn1              bigint      NOT NULL,
    graintypehash          integer     NOT NULL,
    graintypestring        text        NOT NULL,
    grainidextensionstring text,
    serviceid              text        NOT NULL,
    payloadbinary          bytea,
    version                integer,
    modifiedon             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orleansstorage_key UNIQUE NULLS NOT DISTINCT
        (serviceid, graintypestring, grainidn0, grainidn1, grainidextensionstring)
);
CREATE INDEX IF NOT EXISTS orleansstorage_hash ON orleansstorage (grainidhash, graintypehash);

INSERT INTO orleansquery (querykey, querytext) VALUES
('ReadFromStorageKey', $q$
SELECT payloadbinary, version
  FROM orleansstorage
 WHERE grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash
   AND serviceid = @ServiceId AND graintypestring = @GrainTypeString
   AND grainidn0 = @GrainIdN0 AND grainidn1 = @GrainIdN1
   AND grainidextensionstring IS NOT DISTINCT FROM @GrainIdExtensionString;
$q$),
('WriteToStorageKey', $q$
WITH inserted AS (
    INSERT INTO orleansstorage (grainidhash, grainidn0, grainidn1, graintypehash, graintypestring,
                                grainidextensionstring, serviceid, payloadbinary, version)
    SELECT @GrainIdHash, @GrainIdN0, @GrainIdN1, @GrainTypeHash, @GrainTypeString,
           @GrainIdExtensionString, @ServiceId, @PayloadBinary, 1
     WHERE @GrainStateVersion IS NULL
    ON CONFLICT ON CONSTRAINT orleansstorage_key DO NOTHING
    RETURNING version),
updated AS (
    UPDATE orleansstorage
       SET payloadbinary = @PayloadBinary, version = version + 1, modifiedon = now()
     WHERE @GrainStateVersion IS NOT NULL
       AND grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash
       AND serviceid = @ServiceId AND graintypestring = @GrainTypeString
       AND grainidn0 = @GrainIdN0 AND grainidn1 = @GrainIdN1
       AND grainidextensionstring IS NOT DISTINCT FROM @GrainIdExtensionString
       AND version = @GrainStateVersion
    RETURNING version)
SELECT version AS newgrainstateversion FROM inserted
UNION ALL
SELECT version FROM updated;
$q$),
('ClearStorageKey', $q$
UPDATE orleansstorage
   SET payloadbinary = NULL, version = version + 1, modifiedon = now()
 WHERE grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash
   AND serviceid = @ServiceId AND graintypestring = @GrainTypeString
   AND grainidn0 = @GrainIdN0 AND grainidn1 = @GrainIdN1
   AND grainidextensionstring IS NOT DISTINCT FROM @GrainIdExtensionString
   AND version = @GrainStateVersion
RETURNING version;
$q$),
('DeleteStorageKey', $q$
DELETE FROM orleansstorage
 WHERE grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash
   AND serviceid = @ServiceId AND graintypestring = @GrainTypeString
   AND grainidn0 = @GrainIdN0 AND grainidn1 = @GrainIdN1
   AND grainidextensionstring IS NOT DISTINCT FROM @GrainIdExtensionString
   AND version = @GrainStateVersion
RETURNING version + 1;
$q$)
ON CONFLICT (querykey) DO UPDATE SET querytext = EXCLUDED.querytext;

-- ---------------------------------------------------------------------------------------------------------------
-- Reminders. grainhash is the uint ring hash reinterpreted as a signed int, so the two range queries below are
-- exactly the ring ranges (begin, end] Orleans asks for.
-- ---------------------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS orleansreminderstable (
    serviceid    text        NOT NULL,
    grainid      text        NOT NULL,
    remindername text        NOT NULL,
    starttime    timestamptz NOT NULL,
    period       bigint      NOT NULL,   -- milliseconds
    grainhash    integer     NOT NULL,
    version      integer     NOT NULL,
    PRIMARY KEY (serviceid, grainid, remindername)
);
CREATE INDEX IF NOT EXISTS orleansreminderstable_hash ON orleansreminderstable (serviceid, grainhash);

INSERT INTO orleansquery (querykey, querytext) VALUES
('ReadReminderRowsKey', $q$
SELECT grainid, remindername, starttime, period, version
  FROM orleansreminderstable
 WHERE serviceid = @ServiceId AND grainid = @GrainId;
$q$),
('ReadReminderRowKey', $q$
SELECT grainid, remindername, starttime, period, version
  FROM orleansreminderstable
 WHERE serviceid = @ServiceId AND grainid = @GrainId AND remindername = @ReminderName;
$q$),
('ReadRangeRows1Key', $q$
SELECT grainid, remindername, starttime, period, version
  FROM orleansreminderstable
 WHERE serviceid = @ServiceId AND grainhash > @BeginHash AND grainhash <= @EndHash;
$q$),
('ReadRangeRows2Key', $q$
SELECT grainid, remindername, starttime, period, version
  FROM orleansreminderstable
 WHERE serviceid = @ServiceId AND (grainhash > @BeginHash OR grainhash <= @EndHash);
$q$),
('UpsertReminderRowKey', $q$
INSERT INTO orleansreminderstable AS r (serviceid, grainid, remindername, starttime, period, grainhash, version)
VALUES (@ServiceId, @GrainId, @ReminderName, @StartTime, @Period, @GrainHash, 0)
ON CONFLICT (serviceid, grainid, remindername) DO UPDATE
   SET starttime = EXCLUDED.starttime, period = EXCLUDED.period, grainhash = EXCLUDED.grainhash,
       version = r.version + 1
RETURNING version;
$q$),
('DeleteReminderRowKey', $q$
WITH deleted AS (
    DELETE FROM orleansreminderstable
     WHERE serviceid = @ServiceId AND grainid = @GrainId AND remindername = @ReminderName AND version = @Version
    RETURNING 1)
SELECT count(*)::integer FROM deleted;
$q$),
('DeleteReminderRowsKey', $q$
DELETE FROM orleansreminderstable WHERE serviceid = @ServiceId;
$q$)
ON CONFLICT (querykey) DO UPDATE SET querytext = EXCLUDED.querytext;

-- ---------------------------------------------------------------------------------------------------------------
-- Streaming: a durable queue per (service, provider, queue). messageid grows in enqueue order; dequeued is the
-- delivery receipt; a message becomes visible again when its visibility timeout passes without a confirm.
-- ---------------------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS orleansstreammessage (
    serviceid  text        NOT NULL,
    providerid text        NOT NULL,
    queueid    text        NOT NULL,
    messageid  bigint      GENERATED ALWAYS AS IDENTITY,
    dequeued   integer     NOT NULL DEFAULT 0,
    visibleon  timestamptz NOT NULL,
    expireson  timestamptz NOT NULL,
    createdon  timestamptz NOT NULL,
    modifiedon timestamptz NOT NULL,
    payload    bytea       NOT NULL,
    PRIMARY KEY (serviceid, providerid, queueid, messageid)
);

CREATE TABLE IF NOT EXISTS orleansstreamdeadletter (
    serviceid  text        NOT NULL,
    providerid text        NOT NULL,
    queueid    text        NOT NULL,
    messageid  bigint      NOT NULL,
    dequeued   integer     NOT NULL,
    visibleon  timestamptz NOT NULL,
    expireson  timestamptz NOT NULL,
    createdon  timestamptz NOT NULL,
    modifiedon timestamptz NOT NULL,
    deadon     timestamptz NOT NULL,
    removeon   timestamptz NOT NULL,
    payload    bytea       NOT NULL,
    PRIMARY KEY (serviceid, providerid, queueid, messageid)
);

-- When each queue's housekeeping may next run (coordinates it across silos).
CREATE TABLE IF NOT EXISTS orleansstreamcontrol (
    serviceid  text        NOT NULL,
    providerid text        NOT NULL,
    queueid    text        NOT NULL,
    evictionon timestamptz NOT NULL,
    PRIMARY KEY (serviceid, providerid, queueid)
);

INSERT INTO orleansquery (querykey, querytext) VALUES
('QueueStreamMessageKey', $q$
INSERT INTO orleansstreammessage (serviceid, providerid, queueid, dequeued, visibleon, expireson, createdon, modifiedon, payload)
VALUES (@ServiceId, @ProviderId, @QueueId, 0, now(), now() + @ExpiryTimeout * interval '1 second', now(), now(), @Payload)
RETURNING serviceid, providerid, queueid, messageid;
$q$),
('GetStreamMessagesKey', $q$
WITH housekeeping AS (
    INSERT INTO orleansstreamcontrol AS c (serviceid, providerid, queueid, evictionon)
    VALUES (@ServiceId, @ProviderId, @QueueId, now() + @EvictionInterval * interval '1 second')
    ON CONFLICT (serviceid, providerid, queueid) DO UPDATE SET evictionon = EXCLUDED.evictionon
     WHERE c.evictionon <= now()
    RETURNING 1),
evicted AS (
    DELETE FROM orleansstreammessage m
     WHERE EXISTS (SELECT 1 FROM housekeeping)
       AND m.serviceid = @ServiceId AND m.providerid = @ProviderId AND m.queueid = @QueueId
       AND m.messageid IN (SELECT messageid FROM orleansstreammessage
                            WHERE serviceid = @ServiceId AND providerid = @ProviderId AND queueid = @QueueId
                              AND visibleon <= now() AND (expireson <= now() OR dequeued >= @MaxAttempts)
                            ORDER BY messageid LIMIT @EvictionBatchSize
                            FOR UPDATE SKIP LOCKED)
    RETURNING m.*),
buried AS (
    INSERT INTO orleansstreamdeadletter (serviceid, providerid, queueid, messageid, dequeued, visibleon, expireson,
                                         createdon, modifiedon, deadon, removeon, payload)
    SELECT serviceid, providerid, queueid, messageid, dequeued, visibleon, expireson, createdon, modifiedon,
           now(), now() + @RemovalTimeout * interval '1 second', payload
      FROM evicted
    ON CONFLICT DO NOTHING),
purged AS (
    DELETE FROM orleansstreamdeadletter d
     WHERE EXISTS (SELECT 1 FROM housekeeping)
       AND d.serviceid = @ServiceId AND d.providerid = @ProviderId AND d.queueid = @QueueId
       AND d.messageid IN (SELECT messageid FROM orleansstreamdeadletter
                            WHERE serviceid = @ServiceId AND providerid = @ProviderId AND queueid = @QueueId
                              AND removeon <= now()
                            ORDER BY messageid LIMIT @EvictionBatchSize)),
taken AS (
    SELECT messageid FROM orleansstreammessage
     WHERE serviceid = @ServiceId AND providerid = @ProviderId AND queueid = @QueueId
       AND visibleon <= now() AND expireson > now() AND dequeued < @MaxAttempts
     ORDER BY messageid LIMIT @MaxCount
     FOR UPDATE SKIP LOCKED)
UPDATE orleansstreammessage m
   SET dequeued = m.dequeued + 1, visibleon = now() + @VisibilityTimeout * interval '1 second', modifiedon = now()
  FROM taken t
 WHERE m.serviceid = @ServiceId AND m.providerid = @ProviderId AND m.queueid = @QueueId AND m.messageid = t.messageid
RETURNING m.serviceid, m.providerid, m.queueid, m.messageid, m.dequeued, m.visibleon, m.expireson,
          m.createdon, m.modifiedon, m.payload;
$q$),
('ConfirmStreamMessagesKey', $q$
WITH receipts AS (
    SELECT split_part(item, ':', 1)::bigint AS messageid, split_part(item, ':', 2)::integer AS receipt
      FROM unnest(string_to_array(@Items, '|')) AS item),
locked AS (
    SELECT m.messageid, r.receipt
      FROM orleansstreammessage m
      JOIN receipts r ON r.messageid = m.messageid AND m.dequeued = abs(r.receipt)
     WHERE m.serviceid = @ServiceId AND m.providerid = @ProviderId AND m.queueid = @QueueId
     ORDER BY m.messageid
       FOR UPDATE OF m),
confirmed AS (
    DELETE FROM orleansstreammessage m
     USING locked l
     WHERE l.receipt > 0 AND m.serviceid = @ServiceId AND m.providerid = @ProviderId AND m.queueid = @QueueId
       AND m.messageid = l.messageid
    RETURNING m.serviceid, m.providerid, m.queueid, m.messageid),
released AS (
    UPDATE orleansstreammessage m
       SET visibleon = now(), modifiedon = now()
      FROM locked l
     WHERE l.receipt < 0 AND m.serviceid = @ServiceId AND m.providerid = @ProviderId AND m.queueid = @QueueId
       AND m.messageid = l.messageid
    RETURNING m.serviceid, m.providerid, m.queueid, m.messageid)
SELECT serviceid, providerid, queueid, messageid FROM confirmed
UNION ALL
SELECT serviceid, providerid, queueid, messageid FROM released;
$q$),
('FailStreamMessageKey', $q$
WITH dead AS (
    DELETE FROM orleansstreammessage
     WHERE serviceid = @ServiceId AND providerid = @ProviderId AND queueid = @QueueId AND messageid = @MessageId
       AND dequeued >= @MaxAttempts
    RETURNING *),
buried AS (
    INSERT INTO orleansstreamdeadletter (serviceid, providerid, queueid, messageid, dequeued, visibleon, expireson,
                                         createdon, modifiedon, deadon, removeon, payload)
    SELECT serviceid, providerid, queueid, messageid, dequeued, visibleon, expireson, createdon, modifiedon,
           now(), now() + @RemovalTimeout * interval '1 second', payload
      FROM dead
    ON CONFLICT DO NOTHING)
UPDATE orleansstreammessage
   SET visibleon = now(), modifiedon = now()
 WHERE serviceid = @ServiceId AND providerid = @ProviderId AND queueid = @QueueId AND messageid = @MessageId
   AND dequeued < @MaxAttempts;
$q$),
('EvictStreamMessagesKey', $q$
WITH evicted AS (
    DELETE FROM orleansstreammessage m
     WHERE m.serviceid = @ServiceId AND m.providerid = @ProviderId AND m.queueid = @QueueId
       AND m.messageid IN (SELECT messageid FROM orleansstreammessage
                            WHERE serviceid = @ServiceId AND providerid = @ProviderId AND queueid = @QueueId
                              AND visibleon <= now() AND (expireson <= now() OR dequeued >= @MaxAttempts)
                            ORDER BY messageid LIMIT @MaxCount
                            FOR UPDATE SKIP LOCKED)
    RETURNING m.*)
INSERT INTO orleansstreamdeadletter (serviceid, providerid, queueid, messageid, dequeued, visibleon, expireson,
                                     createdon, modifiedon, deadon, removeon, payload)
SELECT serviceid, providerid, queueid, messageid, dequeued, visibleon, expireson, createdon, modifiedon,
       now(), now() + @RemovalTimeout * interval '1 second', payload
  FROM evicted
ON CONFLICT DO NOTHING;
$q$),
('EvictStreamDeadLettersKey', $q$
DELETE FROM orleansstreamdeadletter d
 WHERE d.serviceid = @ServiceId AND d.providerid = @ProviderId AND d.queueid = @QueueId
   AND d.messageid IN (SELECT messageid FROM orleansstreamdeadletter
                        WHERE serviceid = @ServiceId AND providerid = @ProviderId AND queueid = @QueueId
                          AND removeon <= now()
                        ORDER BY messageid LIMIT @MaxCount);
$q$)
ON CONFLICT (querykey) DO UPDATE SET querytext = EXCLUDED.querytext;
