using OrleansIot.Bench;

// A load generator for any MQTT broker; see bench/README.md.
return await BenchCommand.RunAsync(args);
