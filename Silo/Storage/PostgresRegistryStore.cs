using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Registry;

namespace OrleansIot.Silo.Storage;

/// <summary>
/// The registry in tables (deploy/postgres/004). Updates are conditional on the version they replace (0 rows: refused);
/// lists page in "C" collation after the previous page's last name, reading one row more than asked to know whether
/// another page follows. Every value is a parameter.
/// </summary>
internal sealed class PostgresRegistryStore(NpgsqlDataSource dataSource) : IRegistryStore
{
    private const string ThingColumns = "thing_name, thing_id, thing_type_name, attributes::text, version";
    private const string TypeColumns = "thing_type_name, thing_type_id, description, searchable_attributes, deprecated, deprecated_at, created_at";
    private const string GroupColumns = "thing_group_name, thing_group_id, ancestors, description, attributes::text, version, created_at, query_string";

    public async Task<ThingRecord?> GetThingAsync(string thingName) =>
        (await QueryAsync($"SELECT {ThingColumns} FROM iot_things WHERE thing_name = @name", ReadThing, ("name", thingName))).SingleOrDefault();

    public async Task<bool> SaveThingAsync(ThingRecord thing, long previousVersion)
    {
        var sql = previousVersion == 0
            ? "INSERT INTO iot_things (thing_name, thing_id, thing_type_name, attributes, version) VALUES (@name, @id, @type, @attributes::jsonb, @version) ON CONFLICT DO NOTHING"
            : "UPDATE iot_things SET thing_type_name = @type, attributes = @attributes::jsonb, version = @version, updated_at = now() WHERE thing_name = @name AND version = @previous";
        return await ExecuteAsync(sql, ("name", thing.ThingName), ("id", thing.ThingId), ("type", thing.ThingTypeName), ("attributes", Json(thing.Attributes)),
            ("version", thing.Version), ("previous", previousVersion)) == 1;
    }

    public async Task DeleteThingAsync(string thingName) => await ExecuteAsync("DELETE FROM iot_things WHERE thing_name = @name", ("name", thingName));

    public async Task<RegistryPage<ThingRecord>> ListThingsAsync(ThingQuery query)
    {
        var things = await QueryAsync(
            $"""
            SELECT {ThingColumns} FROM iot_things
             WHERE (@after IS NULL OR thing_name COLLATE "C" > @after)
               AND (@type IS NULL OR thing_type_name = @type)
               AND (@attribute IS NULL OR attributes ->> @attribute IS NOT NULL)
               AND (@value IS NULL OR (CASE WHEN @prefix THEN starts_with(attributes ->> @attribute, @value) ELSE attributes ->> @attribute = @value END))
             ORDER BY thing_name COLLATE "C" LIMIT @limit
            """,
            ReadThing,
            ("after", RegistryPaging.After(query.NextToken)), ("type", query.ThingTypeName), ("attribute", query.AttributeName), ("value", query.AttributeValue),
            ("prefix", query.UsePrefixAttributeValue), ("limit", query.MaxResults + 1));
        return RegistryPaging.Page(things, query.MaxResults, t => t.ThingName);
    }

    public async Task<int> CountThingsOfTypeAsync(string thingTypeName) =>
        (int)(await QueryAsync("SELECT count(*) FROM iot_things WHERE thing_type_name = @type", r => r.GetInt64(0), ("type", thingTypeName)))[0];

    public async Task<ThingTypeRecord?> GetThingTypeAsync(string thingTypeName) =>
        (await QueryAsync($"SELECT {TypeColumns} FROM iot_thing_types WHERE thing_type_name = @name", ReadType, ("name", thingTypeName))).SingleOrDefault();

    public async Task<bool> SaveThingTypeAsync(ThingTypeRecord thingType, bool create)
    {
        var sql = create
            ? $"INSERT INTO iot_thing_types ({TypeColumns}) VALUES (@name, @id, @description, @searchable, @deprecated, @deprecated_at, @created_at) ON CONFLICT DO NOTHING"
            : "UPDATE iot_thing_types SET deprecated = @deprecated, deprecated_at = @deprecated_at WHERE thing_type_name = @name";
        return await ExecuteAsync(sql, ("name", thingType.ThingTypeName), ("id", thingType.ThingTypeId), ("description", thingType.Description),
            ("searchable", thingType.SearchableAttributes.ToArray()), ("deprecated", thingType.Deprecated), ("deprecated_at", new NpgsqlParameter("deprecated_at", NpgsqlDbType.TimestampTz) { Value = (object?)thingType.DeprecationDate ?? DBNull.Value }),
            ("created_at", thingType.CreationDate)) == 1;
    }

    public async Task DeleteThingTypeAsync(string thingTypeName) => await ExecuteAsync("DELETE FROM iot_thing_types WHERE thing_type_name = @name", ("name", thingTypeName));

    public async Task<RegistryPage<ThingTypeRecord>> ListThingTypesAsync(string? thingTypeName, string? nextToken, int maxResults)
    {
        var types = await QueryAsync(
            $"""
            SELECT {TypeColumns} FROM iot_thing_types
             WHERE (@after IS NULL OR thing_type_name COLLATE "C" > @after) AND (@name IS NULL OR thing_type_name = @name)
             ORDER BY thing_type_name COLLATE "C" LIMIT @limit
            """,
            ReadType, ("after", RegistryPaging.After(nextToken)), ("name", thingTypeName), ("limit", maxResults + 1));
        return RegistryPaging.Page(types, maxResults, t => t.ThingTypeName);
    }

    public async Task<ThingGroupRecord?> GetThingGroupAsync(string groupName) =>
        (await QueryAsync($"SELECT {GroupColumns} FROM iot_thing_groups WHERE thing_group_name = @name", ReadGroup, ("name", groupName))).SingleOrDefault();

    public async Task<bool> SaveThingGroupAsync(ThingGroupRecord group, long previousVersion)
    {
        var sql = previousVersion == 0
            ? """
              INSERT INTO iot_thing_groups (thing_group_name, thing_group_id, ancestors, parent_group_name, description, attributes, version, created_at, query_string)
              VALUES (@name, @id, @ancestors, @parent, @description, @attributes::jsonb, @version, @created_at, @query) ON CONFLICT DO NOTHING
              """
            : "UPDATE iot_thing_groups SET description = @description, attributes = @attributes::jsonb, version = @version, query_string = @query WHERE thing_group_name = @name AND version = @previous";
        return await ExecuteAsync(sql, ("name", group.ThingGroupName), ("id", group.ThingGroupId), ("ancestors", group.Ancestors.ToArray()),
            ("parent", group.ParentGroupName), ("description", group.Description), ("attributes", Json(group.Attributes)), ("version", group.Version),
            ("created_at", group.CreationDate), ("previous", previousVersion), ("query", group.QueryString)) == 1;
    }

    public async Task DeleteThingGroupAsync(string groupName) => await ExecuteAsync("DELETE FROM iot_thing_groups WHERE thing_group_name = @name", ("name", groupName));

    public async Task<int> CountChildGroupsAsync(string groupName) =>
        (int)(await QueryAsync("SELECT count(*) FROM iot_thing_groups WHERE parent_group_name = @name", r => r.GetInt64(0), ("name", groupName)))[0];

    public async Task<RegistryPage<ThingGroupRecord>> ListThingGroupsAsync(string? parentGroup, string? namePrefix, bool recursive, string? nextToken, int maxResults)
    {
        var groups = await QueryAsync(
            $"""
            SELECT {GroupColumns} FROM iot_thing_groups
             WHERE (@after IS NULL OR thing_group_name COLLATE "C" > @after)
               AND (@prefix IS NULL OR starts_with(thing_group_name, @prefix))
               AND (@parent IS NULL OR (CASE WHEN @recursive THEN ancestors @> ARRAY[@parent] ELSE parent_group_name = @parent END))
             ORDER BY thing_group_name COLLATE "C" LIMIT @limit
            """,
            ReadGroup, ("after", RegistryPaging.After(nextToken)), ("prefix", namePrefix), ("parent", parentGroup), ("recursive", recursive), ("limit", maxResults + 1));
        return RegistryPaging.Page(groups, maxResults, g => g.ThingGroupName);
    }

    public async Task<bool> AddMemberAsync(string groupName, string thingName)
    {
        try
        {
            await ExecuteAsync("INSERT INTO iot_thing_group_members (thing_group_name, thing_name) VALUES (@group, @thing) ON CONFLICT DO NOTHING", ("group", groupName), ("thing", thingName));
            return true;
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.ForeignKeyViolation)
        {
            return false;   // the group (or the thing) was deleted meanwhile
        }
    }

    public async Task RemoveMemberAsync(string groupName, string thingName) =>
        await ExecuteAsync("DELETE FROM iot_thing_group_members WHERE thing_group_name = @group AND thing_name = @thing", ("group", groupName), ("thing", thingName));

    public async Task<IReadOnlyList<string>> GroupsOfAsync(string thingName) =>
        await QueryAsync("SELECT thing_group_name FROM iot_thing_group_members WHERE thing_name = @thing ORDER BY thing_group_name COLLATE \"C\"", r => r.GetString(0), ("thing", thingName));

    public async Task<RegistryPage<string>> ListMembersAsync(string groupName, bool recursive, string? nextToken, int maxResults)
    {
        var things = await QueryAsync(
            """
            SELECT DISTINCT m.thing_name COLLATE "C" FROM iot_thing_group_members m
             WHERE (m.thing_group_name = @group OR (@recursive AND m.thing_group_name IN (SELECT thing_group_name FROM iot_thing_groups WHERE ancestors @> ARRAY[@group])))
               AND (@after IS NULL OR m.thing_name COLLATE "C" > @after)
             ORDER BY 1 LIMIT @limit
            """,
            r => r.GetString(0), ("group", groupName), ("recursive", recursive), ("after", RegistryPaging.After(nextToken)), ("limit", maxResults + 1));
        return RegistryPaging.Page(things, maxResults, t => t);
    }

    private static ThingRecord ReadThing(NpgsqlDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), Attributes(r.GetString(3)), r.GetInt64(4));

    private static ThingTypeRecord ReadType(NpgsqlDataReader r) => new(
        r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetFieldValue<string[]>(3), r.GetBoolean(4),
        r.IsDBNull(5) ? null : r.GetFieldValue<DateTimeOffset>(5), r.GetFieldValue<DateTimeOffset>(6));

    private static ThingGroupRecord ReadGroup(NpgsqlDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetFieldValue<string[]>(2), r.IsDBNull(3) ? null : r.GetString(3), Attributes(r.GetString(4)), r.GetInt64(5),
        r.GetFieldValue<DateTimeOffset>(6), r.IsDBNull(7) ? null : r.GetString(7));

    private static Dictionary<string, string> Attributes(string json) =>
        JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? [];

    private static string Json(IReadOnlyDictionary<string, string> attributes) => JsonSerializer.Serialize(attributes);

    private async Task<List<T>> QueryAsync<T>(string sql, Func<NpgsqlDataReader, T> read, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(sql, parameters);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await reader.ReadAsync())
        {
            rows.Add(read(reader));
        }

        return rows;
    }

    private async Task<int> ExecuteAsync(string sql, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(sql, parameters);
        return await command.ExecuteNonQueryAsync();
    }

    private NpgsqlCommand Command(string sql, (string Name, object? Value)[] parameters)
    {
        var command = dataSource.CreateCommand(sql);
        foreach (var (name, value) in parameters)
        {
            // Typed even when null, so "@x IS NULL" needs no guessing by the server.
            command.Parameters.Add(value switch
            {
                NpgsqlParameter typed => typed,
                null => new NpgsqlParameter(name, NpgsqlDbType.Text) { Value = DBNull.Value },
                DateTimeOffset at => new NpgsqlParameter(name, NpgsqlDbType.TimestampTz) { Value = at },
                _ => new NpgsqlParameter(name, value),
            });
        }

        return command;
    }
}
