using System.Text;
using Orleans.Streams;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Rules;
using OrleansIot.Grains.Abstractions.Telemetry;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Rules;

/// <summary>
/// An evaluator reads the rule catalog at most once per <c>Iot:Rules:RefreshInterval</c> (1 s here), unless a batch
/// says that its gateway read a newer catalog: then at once, so a message published after a rule change was answered
/// meets the new rule.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RuleEvaluatorRefreshTests(ClusterFixture cluster)
{
    private async Task<long> CreateRuleAsync(string filter, string output)
    {
        var input = new TopicRuleInput($"SELECT * FROM '{filter}'", null, $$$"""[{"republish":{"topic":"{{{output}}}"}}]""", null, false, null);
        await cluster.Grains.GetGrain<IRuleGrain>("r_" + Guid.NewGuid().ToString("N")[..10]).Create(input);
        return await cluster.Grains.GetGrain<IRuleCatalogGrain>(IRuleCatalogGrain.Key).Version();
    }

    private Task WriteAsync(string clientId, string topic, long rulesVersion)
    {
        var partition = TelemetryPartitions.For(clientId, TelemetryPartitions.DefaultCount);
        var message = new TelemetryMessage(topic, Encoding.UTF8.GetBytes("{}"), clientId, 1, false, DateTimeOffset.UtcNow, "test") { MessageId = Guid.NewGuid() };
        return cluster.Cluster.Client.GetStreamProvider(StreamNames.Provider)
            .GetStream<TelemetryBatch>(StreamNames.Telemetry, TelemetryPartitions.StreamKey(partition))
            .OnNextAsync(new TelemetryBatch(partition, [message]) { RulesVersion = rulesVersion });
    }

    [Fact]
    public async Task ABatchFromAGatewayWithANewerCatalog_MeetsTheNewRule_BeforeTheInterval()
    {
        var root = Ids.NewId("rv");
        var device = $"{root}-dev";
        var first = await CreateRuleAsync($"{root}/a", $"out/{root}/a");
        await WriteAsync(device, $"{root}/a", first);
        await Eventually.True(() => Task.FromResult(RecordingBroker.Shared.On($"out/{root}/a").Count == 1), "the first rule's output");

        // The evaluator has just read the catalog; a second rule follows at once, and so does a message for it.
        var second = await CreateRuleAsync($"{root}/b", $"out/{root}/b");
        await WriteAsync(device, $"{root}/b", second);

        await Eventually.True(() => Task.FromResult(RecordingBroker.Shared.On($"out/{root}/b").Count == 1), "the second rule's output");
    }
}
