-- OrleansIot schema 007: forget Orleans' stream pubsub state written by builds before this one. Those builds
-- serialized it as System.Text.Json, which cannot be read back (a reactivated pubsub grain failed and the
-- telemetry stream stalled); it is now written with Orleans' serializer. The state is rebuilt by itself: stream
-- producers register again, and our consumers are implicit subscriptions, which are not stored. Idempotent.

DELETE FROM orleansstorage WHERE graintypestring LIKE '%PubSubRendezvous%';
