using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Registry;

/// <summary>
/// AWS registry events (AWS IoT Developer Guide, "Registry events": <c>$aws/events/thing/{name}/{created|updated|deleted}</c> and the thing type and group topics) with AWS's topics and fields, published through the
/// broker when <see cref="RegistryOptions.PublishEvents"/> is on. Published after the change is stored.
/// </summary>
internal sealed class RegistryEvents(RegistryOptions options, IBrokerPublisher broker, TimeProvider time)
{
    public void Thing(string operation, ThingRecord thing)
    {
        if (!options.PublishEvents)
        {
            return;
        }

        var body = Event("THING_EVENT", operation);
        body["thingId"] = thing.ThingId;
        body["thingName"] = thing.ThingName;
        body["versionNumber"] = thing.Version;
        body["thingTypeName"] = thing.ThingTypeName;
        body["attributes"] = Attributes(thing.Attributes);
        Publish($"$aws/events/thing/{thing.ThingName}/{operation.ToLowerInvariant()}", body);
    }

    public void ThingType(string operation, ThingTypeRecord type)
    {
        if (!options.PublishEvents)
        {
            return;
        }

        var body = Event("THING_TYPE_EVENT", operation);
        body["thingTypeId"] = type.ThingTypeId;
        body["thingTypeName"] = type.ThingTypeName;
        body["isDeprecated"] = type.Deprecated;
        body["deprecationDate"] = type.DeprecationDate?.ToUnixTimeMilliseconds();
        body["searchableAttributes"] = new JsonArray([.. type.SearchableAttributes.Select(a => (JsonNode?)a)]);
        body["description"] = type.Description;
        Publish($"$aws/events/thingType/{type.ThingTypeName}/{operation.ToLowerInvariant()}", body);
    }

    public void ThingGroup(string operation, ThingGroupRecord group, string? parentGroupId)
    {
        if (!options.PublishEvents)
        {
            return;
        }

        var body = Event("THING_GROUP_EVENT", operation);
        body["thingGroupId"] = group.ThingGroupId;
        body["thingGroupName"] = group.ThingGroupName;
        body["versionNumber"] = group.Version;
        body["parentGroupName"] = group.ParentGroupName;
        body["parentGroupId"] = parentGroupId;
        body["description"] = group.Description;
        body["rootToParentThingGroups"] = new JsonArray([.. group.Ancestors.Select(a => (JsonNode?)new JsonObject { ["groupArn"] = options.Arn($"thinggroup/{a}") })]);
        body["attributes"] = Attributes(group.Attributes);
        Publish($"$aws/events/thingGroup/{group.ThingGroupName}/{operation.ToLowerInvariant()}", body);
    }

    public void Membership(string operation, ThingGroupRecord group, ThingRecord thing)
    {
        if (!options.PublishEvents)
        {
            return;
        }

        var body = Event("THING_GROUP_MEMBERSHIP_EVENT", operation);
        body["groupArn"] = options.Arn($"thinggroup/{group.ThingGroupName}");
        body["groupId"] = group.ThingGroupId;
        body["thingArn"] = options.Arn($"thing/{thing.ThingName}");
        body["thingId"] = thing.ThingId;
        body["membershipId"] = $"{group.ThingGroupId}:{thing.ThingId}";
        Publish($"$aws/events/thingGroupMembership/thingGroup/{group.ThingGroupName}/thing/{thing.ThingName}/{operation.ToLowerInvariant()}", body);
    }

    private JsonObject Event(string type, string operation) => new()
    {
        ["eventType"] = type,
        ["eventId"] = Guid.NewGuid().ToString(),
        ["timestamp"] = time.GetUtcNow().ToUnixTimeMilliseconds(),
        ["operation"] = operation,
        ["accountId"] = options.AccountId,
    };

    private static JsonObject Attributes(IReadOnlyDictionary<string, string> attributes)
    {
        var result = new JsonObject();
        foreach (var (name, value) in attributes.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            result[name] = value;
        }

        return result;
    }

    private void Publish(string topic, JsonObject body) => broker.Publish(topic, Encoding.UTF8.GetBytes(body.ToJsonString()), 1);
}
