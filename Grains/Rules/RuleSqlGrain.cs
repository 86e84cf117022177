using OrleansIot.Grains.Abstractions.Rules;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Rules.Sql;

namespace OrleansIot.Grains.Rules;

/// <summary>Runs rule SQL on a sample message (<c>POST /api/rules/test</c>): the same engine the rules use.</summary>
[GrainType("rule-sql"), Orleans.Concurrency.StatelessWorker]
internal sealed class RuleSqlGrain(TimeProvider time) : Grain, IRuleSqlGrain
{
    public async Task<RuleTestResult> Test(RuleTestRequest request)
    {
        SqlStatement statement;
        try
        {
            statement = SqlStatement.Parse(request.Sql);
        }
        catch (SqlSyntaxException ex)
        {
            return new RuleTestResult(false, false, null, ex.Message, ex.Position);
        }

        var context = new SqlContext(request.Topic, request.Payload, request.ClientId, request.Principal, time.GetUtcNow().ToUnixTimeMilliseconds());
        var output = await statement.EvaluateAsync(context, (thing, shadow) => GrainFactory.GetGrain<IThingGrain>(thing).ReadShadow(shadow));
        return new RuleTestResult(statement.Matches(request.Topic), output is not null, output?.ToBytes(), null, null);
    }
}
